//! A minimal HTTP/1.1 client over one keep-alive TCP connection (tests and the load bench;
//! keeps the agent's dependency graph free of an HTTP client crate).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
    pub token: Option<String>,
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let w = TcpStream::connect(addr).expect("connect to the agent");
        w.set_nodelay(true).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Conn { w, r, token: None }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    /// A request as a program sends it: `Host: localhost`, JSON content type on POST.
    pub fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> Resp {
        let ct: &[(&str, &str)] = if method == "POST" {
            &[("Content-Type", "application/json")]
        } else {
            &[]
        };
        self.request_with(method, path, &[("Host", "localhost")], ct, body)
    }

    /// A request with exactly these headers (besides the token and `Content-Length`).
    pub fn request_with(
        &mut self,
        method: &str,
        path: &str,
        host: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let mut req = format!("{method} {path} HTTP/1.1\r\n");
        for (k, v) in host.iter().chain(headers) {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(t) = &self.token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len()));
        } else {
            req.push_str("\r\n");
        }
        self.w.write_all(req.as_bytes()).unwrap();
        self.read_response()
    }

    /// POST a binary body with this content type.
    pub fn send_bytes(&mut self, path: &str, content_type: &str, body: &[u8]) -> Resp {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(t) = &self.token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        req.push_str("\r\n");
        self.w.write_all(req.as_bytes()).unwrap();
        self.w.write_all(body).unwrap();
        self.read_response()
    }

    pub fn read_response(&mut self) -> Resp {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        let mut len = 0usize;
        let mut chunked = false;
        loop {
            line.clear();
            self.r.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.parse().unwrap();
                }
                if k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked") {
                    chunked = true;
                }
                headers.push((k, v));
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.r.read_line(&mut line).unwrap();
                let n = usize::from_str_radix(line.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                self.r.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            body.resize(len, 0);
            self.r.read_exact(&mut body).unwrap();
        }
        Resp {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    }
}

/// An agent configuration on 127.0.0.1 (any port), carbon at a fixed 100 g/kWh and PUE 1,
/// sampling every `interval_s`.
pub fn loopback_config(interval_s: f64) -> wattprint_agent::AgentConfig {
    let carbon = wattprint_agent::CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
        intensity_g_per_kwh: Some(100.0),
        pue: Some(1.0),
        ..Default::default()
    })
    .unwrap();
    let mut cfg = wattprint_agent::AgentConfig::new(carbon);
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.interval_s = interval_s;
    cfg
}

/// An agent serving on its own thread until [`Running::stop`] (or drop).
pub struct Running {
    /// Its HTTP address (`None` with no listener).
    pub addr: Option<std::net::SocketAddr>,
    /// Its metering proxy's address (`None` without `--proxy`).
    pub proxy: Option<std::net::SocketAddr>,
    pub shared: wattprint_agent::Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The HTTP address; panics when the agent has no listener.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr.expect("an HTTP listener")
    }

    /// The metering proxy's address; panics when the agent has none.
    pub fn proxy(&self) -> std::net::SocketAddr {
        self.proxy.expect("a metering proxy")
    }

    /// Stop serving and wait for the agent's thread (which panics through here if it failed).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("the agent's thread");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.shutdown();
        } else if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Bind `cfg` with `sensors` and serve on a thread.
pub fn serve(
    cfg: wattprint_agent::AgentConfig,
    sensors: Vec<Box<dyn wattprint_sensors::Sensor>>,
) -> Running {
    let agent = wattprint_agent::Agent::bind(cfg, sensors).expect("the agent binds");
    let addr = agent.local_addr();
    let proxy = agent.proxy_addr();
    let shared = agent.shared();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        agent
            .serve(async {
                let _ = rx.await;
            })
            .expect("the agent serves")
    });
    Running {
        addr,
        proxy,
        shared,
        stop: Some(tx),
        thread: Some(thread),
    }
}

/// [`serve`] with one fake RAPL counter drawing a constant 100 W (`package-0`).
pub fn serve_100w(cfg: wattprint_agent::AgentConfig) -> Running {
    serve(
        cfg,
        vec![Box::new(
            wattprint_sensors::fake::FakeSensor::constant_counter("package-0", 100.0, 0.0, 1e12),
        )],
    )
}
