"""Log wattprint reports to an MLflow tracking server over its REST API (no ``mlflow`` import).

    from wattprint.integrations.mlflow import MlflowLogger
    ml = MlflowLogger("http://127.0.0.1:5000", experiment="energy")  # or MLFLOW_TRACKING_URI
    with wattprint.track() as t:
        train()
    ml.log_report(t.report)
    ml.finish()

Metrics are named ``wattprint.energy_j``, ``wattprint.carbon_g``, ... (units in the names);
the zone, PUE and intensity source become params; the full report (the CLI's JSON) is
uploaded as the artifact ``wattprint/report-<id>.json`` when the server proxies artifacts.
Credentials: ``MLFLOW_TRACKING_TOKEN`` (bearer) or ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD`` (basic), as MLflow's own client reads them.
"""

import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

_API = "/api/2.0/mlflow"


class MlflowError(RuntimeError):
    """The tracking server refused a request or could not be reached."""


def _now_ms():
    return int(time.time() * 1000)


class MlflowLogger:
    """One MLflow run, created on first use (or ``run_id=`` an existing one).

    ``tracking_uri``: ``http(s)://host:port`` (default ``MLFLOW_TRACKING_URI``);
    ``experiment``: name, created if missing (default ``MLFLOW_EXPERIMENT_NAME`` or
    ``Default``); ``run_id``: log into this run instead (default ``MLFLOW_RUN_ID``).
    """

    def __init__(self, tracking_uri=None, *, experiment=None, run_id=None, run_name=None,
                 timeout_s=10.0):
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise ValueError(
                "no MLflow tracking URI: pass tracking_uri='http://host:port' or set "
                "MLFLOW_TRACKING_URI"
            )
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                f"MLflow tracking URI {uri!r} is not http(s)://host[:port]; this logger talks "
                "to a tracking server over REST (file and database URIs need mlflow itself)"
            )
        self.tracking_uri = uri.rstrip("/")
        self.experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"
        self.run_name = run_name
        self.timeout_s = float(timeout_s)
        self.run_id = run_id or os.environ.get("MLFLOW_RUN_ID")
        self.experiment_id = None
        self._params_logged = set()

    # -- HTTP
    def _headers(self):
        h = {"Content-Type": "application/json"}
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if token:
            h["Authorization"] = f"Bearer {token}"
        elif user:
            pw = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
            h["Authorization"] = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
        return h

    def _call(self, method, path, body=None, query=None, raw=None, content_type=None):
        url = self.tracking_uri + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = self._headers()
        data = None
        if raw is not None:
            data = raw
            headers["Content-Type"] = content_type or "application/octet-stream"
        elif body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                text = resp.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")[:500]
            raise MlflowError(f"MLflow {method} {path}: HTTP {err.code}: {detail}") from err
        except (urllib.error.URLError, OSError) as err:
            raise MlflowError(
                f"MLflow {method} {path}: cannot reach {self.tracking_uri}: {err}"
            ) from err
        if not text:
            return {}
        try:
            return json.loads(text)
        except ValueError as err:
            raise MlflowError(f"MLflow {method} {path}: answer is not JSON: {text[:200]!r}") from err

    # -- runs
    def _experiment_id(self):
        if self.experiment_id is None:
            try:
                got = self._call("GET", _API + "/experiments/get-by-name",
                                 query={"experiment_name": self.experiment})
                self.experiment_id = got["experiment"]["experiment_id"]
            except MlflowError as err:
                if "RESOURCE_DOES_NOT_EXIST" not in str(err):
                    raise
                made = self._call("POST", _API + "/experiments/create", {"name": self.experiment})
                self.experiment_id = made["experiment_id"]
        return self.experiment_id

    def ensure_run(self):
        """The run id, creating the run on first use."""
        if self.run_id is None:
            body = {
                "experiment_id": self._experiment_id(),
                "start_time": _now_ms(),
                "tags": [{"key": "mlflow.source.name", "value": "wattprint"}],
            }
            if self.run_name:
                body["run_name"] = self.run_name
            made = self._call("POST", _API + "/runs/create", body)
            self.run_id = made["run"]["info"]["run_id"]
        return self.run_id

    def log_metrics(self, metrics, step=None):
        """Log ``{name: number}``; ``None`` values (metrics the report could not compute) are
        left out, never sent as 0."""
        ts = _now_ms()
        rows = [
            {"key": k, "value": float(v), "timestamp": ts, "step": int(step or 0)}
            for k, v in metrics.items()
            if v is not None and not isinstance(v, bool)
        ]
        for i in range(0, len(rows), 1000):  # the server's batch limit
            self._call("POST", _API + "/runs/log-batch",
                       {"run_id": self.ensure_run(), "metrics": rows[i:i + 1000]})

    def log_params(self, params):
        """Log ``{name: value}`` once each (MLflow params are immutable)."""
        rows = [
            {"key": k, "value": str(v)[:6000]}
            for k, v in params.items()
            if v is not None and k not in self._params_logged
        ]
        if rows:
            self._call("POST", _API + "/runs/log-batch",
                       {"run_id": self.ensure_run(), "params": rows})
            self._params_logged.update(r["key"] for r in rows)

    def log_report(self, report, step=None, prefix="wattprint.", artifact=True):
        """Log a :class:`wattprint.Report`: energy, carbon, duration, each domain's energy and
        every non-null metric; zone, PUE and sources as params; the JSON as an artifact."""
        d = report.to_dict()
        energy, carbon = d.get("energy", {}), d.get("carbon", {})
        metrics = {
            prefix + "energy_j": energy.get("total_j"),
            prefix + "facility_energy_j": energy.get("facility_j"),
            prefix + "carbon_g": carbon.get("total_g"),
            prefix + "carbon_operational_g": carbon.get("operational_g"),
            prefix + "duration_s": d.get("duration_s"),
        }
        for dom in energy.get("domains", []):
            metrics[f"{prefix}domain.{_key(dom['name'])}_j"] = dom.get("joules")
        for k, v in (d.get("metrics") or {}).items():
            if isinstance(v, (int, float)):
                metrics[prefix + "metrics." + k] = v
        for k, v in (d.get("overhead") or {}).items():
            if isinstance(v, (int, float)):
                metrics[prefix + "overhead." + k] = v
        self.log_metrics(metrics, step=step)
        self.log_params({
            prefix + "schema": d.get("schema"),
            prefix + "zone": carbon.get("zone") or None,
            prefix + "intensity_source": carbon.get("intensity_source") or None,
            prefix + "pue": energy.get("pue"),
        })
        if artifact:
            self.log_artifact_text(f"wattprint/report-{_key(d.get('id') or 'run')}.json",
                                   report.to_json(indent=2))

    def log_artifact_text(self, path, text):
        """Upload ``text`` as artifact ``path`` through the server's artifact proxy."""
        run = self._call("GET", _API + "/runs/get", query={"run_id": self.ensure_run()})
        uri = run["run"]["info"].get("artifact_uri", "")
        prefix = "mlflow-artifacts:/"
        if not uri.startswith(prefix):
            raise MlflowError(
                f"run artifact URI {uri!r} is not served by the tracking server "
                "(start it with --serve-artifacts), or pass artifact=False"
            )
        dest = uri[len(prefix):].strip("/") + "/" + path
        self._call("PUT", "/api/2.0/mlflow-artifacts/artifacts/" + urllib.parse.quote(dest),
                   raw=text.encode(), content_type="application/json")

    def finish(self, status="FINISHED"):
        """Mark the run ended (``FINISHED``, ``FAILED`` or ``KILLED``)."""
        if self.run_id is not None:
            self._call("POST", _API + "/runs/update",
                       {"run_id": self.run_id, "status": status, "end_time": _now_ms()})


def _key(name):
    """An MLflow-safe key part (letters, digits, ``_-./ `` only)."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in str(name))
