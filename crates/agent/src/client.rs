//! The agent's HTTP client side (engine scrapes, the metering proxy's upstream): hyper's
//! HTTP/1.1 client over one TCP connection per request, plain `http://` only (engines are
//! reached on the same host or a private network; see `docs/serving.md`).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// A parsed `http://HOST:PORT/PATH` URL.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
}

impl HttpUrl {
    /// Parse `http://HOST[:PORT][/PATH]` (port 80 by default, path `/`). Errors say what is
    /// accepted.
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        let Some(rest) = s.strip_prefix("http://") else {
            return Err(format!(
                "{s:?}: give a plain http://HOST:PORT/PATH URL (https is not supported: put the engine on loopback or a private network)"
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!("{s:?}: credentials in the URL are not supported"));
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, tail) = r
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: unclosed '[' in the host"))?;
            let port = match tail.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("{s:?}: bad port {p:?}"))?,
                None => 80,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("{s:?}: bad port {p:?}"))?,
                ),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c))
        {
            return Err(format!("{s:?}: no valid host"));
        }
        if path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(format!(
                "{s:?}: the path holds spaces or control characters"
            ));
        }
        Ok(HttpUrl {
            host,
            port,
            path_and_query: path.to_string(),
        })
    }

    /// `host:port` as a `Host` header value.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same server with another path.
    pub fn with_path(&self, path: &str) -> HttpUrl {
        HttpUrl {
            path_and_query: path.to_string(),
            ..self.clone()
        }
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path_and_query)
    }
}

/// Open a connection to `url`'s server and hand back hyper's request sender; the
/// connection is driven by a task that ends with it.
pub async fn connect<B>(url: &HttpUrl) -> Result<hyper::client::conn::http1::SendRequest<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("connecting to {}: {e}", url.authority()))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {}: {e}", url.authority()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// `GET url`: the body of a 2xx answer, at most `max_bytes`, all within `timeout`.
pub async fn get(url: &HttpUrl, timeout: Duration, max_bytes: usize) -> Result<Vec<u8>, String> {
    let fetch = async {
        let mut sender = connect::<Empty<Bytes>>(url).await?;
        let req = hyper::Request::get(url.path_and_query.as_str())
            .header(hyper::header::HOST, url.authority())
            .header(hyper::header::ACCEPT, "text/plain;version=0.0.4")
            .header(hyper::header::USER_AGENT, "wattprint-agent")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("building the request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("GET {url}: reading the body: {e}"))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > max_bytes {
                    return Err(format!(
                        "GET {url}: the answer is larger than {max_bytes} bytes"
                    ));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf)
    };
    tokio::time::timeout(timeout, fetch).await.map_err(|_| {
        format!(
            "GET {url}: no complete answer within {} s",
            timeout.as_secs_f64()
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_ipv6() {
        let u = HttpUrl::parse("http://localhost").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path_and_query.as_str()),
            ("localhost", 80, "/")
        );
        let u = HttpUrl::parse("http://[::1]:9000/m?x=1").unwrap();
        assert_eq!(u.authority(), "[::1]:9000");
        assert_eq!(u.to_string(), "http://[::1]:9000/m?x=1");
        assert!(HttpUrl::parse("http://a:b/").is_err());
        assert!(HttpUrl::parse("http://u:p@h:1/").is_err());
        assert!(HttpUrl::parse("ftp://h/").is_err());
    }
}
