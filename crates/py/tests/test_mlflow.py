"""The MLflow logger against a real `mlflow server` on 127.0.0.1 (installed into the test
virtualenv by scripts/test.d/python.sh), with a sqlite backend in a temporary directory."""

import json
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

import wattprint
from wattprint.integrations.mlflow import MlflowError, MlflowLogger

STANDINS = pathlib.Path(__file__).parent / "standins"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    exe = shutil.which("mlflow", path=str(pathlib.Path(sys.executable).parent))
    assert exe, (
        "the `mlflow` server is not installed in this virtualenv; scripts/test.d/python.sh "
        "installs it (pip install mlflow==...)"
    )
    d = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = open(d / "server.log", "wb")
    proc = subprocess.Popen(
        [
            exe, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{d}/mlflow.db",
            "--artifacts-destination", str(d / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=d,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"mlflow server exited ({proc.returncode}):\n"
                    + (d / "server.log").read_text(errors="replace")[-3000:]
                )
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    "mlflow server not healthy after 180 s:\n"
                    + (d / "server.log").read_text(errors="replace")[-3000:]
                )
            time.sleep(0.25)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _get(uri, path, **query):
    url = uri + path + ("?" + urllib.parse.urlencode(query) if query else "")
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read()
    return json.loads(body) if path.startswith("/api/2.0/mlflow/") else body


def test_log_report_metrics_params_and_artifact(mlflow_server, rapl):
    ml = MlflowLogger(mlflow_server, experiment="wattprint-tests", run_name="unit")
    with wattprint.track("job", pue=1.25) as t:
        wattprint.add_work(inferences=3)
        rapl.add_j(9.0)
    ml.log_report(t.report, step=7)
    ml.finish()

    run = _get(mlflow_server, "/api/2.0/mlflow/runs/get", run_id=ml.run_id)["run"]
    assert run["info"]["status"] == "FINISHED"
    assert run["info"]["run_name"] == "unit"
    metrics = {m["key"]: m for m in run["data"]["metrics"]}
    assert metrics["wattprint.energy_j"]["value"] == pytest.approx(9.0, abs=1e-6)
    assert metrics["wattprint.energy_j"]["step"] == 7
    assert metrics["wattprint.facility_energy_j"]["value"] == pytest.approx(11.25, abs=1e-6)
    assert metrics["wattprint.domain.package-0_j"]["value"] == pytest.approx(9.0, abs=1e-6)
    assert metrics["wattprint.metrics.joules_per_inference"]["value"] == pytest.approx(3.0)
    # Metrics the report could not compute are absent, not zero.
    assert "wattprint.metrics.flops_per_watt" not in metrics
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["wattprint.schema"] == "wattprint.run/v1"
    assert params["wattprint.pue"] == "1.25"

    exp_run = run["info"]["artifact_uri"].split("mlflow-artifacts:/", 1)[1].strip("/")
    name = f"wattprint/report-{t.report.to_dict()['id']}.json"
    body = _get(mlflow_server, f"/api/2.0/mlflow-artifacts/artifacts/{exp_run}/{name}")
    assert json.loads(body) == t.report.to_dict()


def test_existing_experiment_is_reused(mlflow_server, rapl):
    a = MlflowLogger(mlflow_server, experiment="shared-exp")
    b = MlflowLogger(mlflow_server, experiment="shared-exp")
    a.log_metrics({"x_j": 1.0})
    b.log_metrics({"x_j": 2.0})
    assert a.experiment_id == b.experiment_id
    assert a.run_id != b.run_id


def test_callback_logs_each_epoch_to_mlflow(mlflow_server, rapl, monkeypatch):
    monkeypatch.syspath_prepend(str(STANDINS))
    for name in list(sys.modules):
        if name.split(".")[0] == "lightning" or name == "wattprint.integrations.lightning":
            monkeypatch.delitem(sys.modules, name)
    import lightning.pytorch as pl
    from wattprint.integrations.lightning import WattprintCallback

    ml = MlflowLogger(mlflow_server, experiment="callbacks")
    cb = WattprintCallback(every_n_steps=2, mlflow=ml)
    pl.Trainer(max_epochs=3, batches_per_epoch=2, callbacks=[cb]).fit(
        lambda e, i: rapl.add_j(1.0 + e)
    )
    ml.finish()
    hist = _get(
        mlflow_server, "/api/2.0/mlflow/metrics/get-history",
        run_id=ml.run_id, metric_key="wattprint.epoch.energy_j",
    )["metrics"]
    assert sorted((m["step"], round(m["value"], 6)) for m in hist) == [
        (2, 2.0), (4, 4.0), (6, 6.0)
    ]
    total = _get(mlflow_server, "/api/2.0/mlflow/runs/get", run_id=ml.run_id)["run"]["data"]
    assert {m["key"]: m["value"] for m in total["metrics"]}["wattprint.energy_j"] == (
        pytest.approx(12.0, abs=1e-6)
    )


def test_server_errors_are_clear(mlflow_server):
    ml = MlflowLogger(mlflow_server, run_id="0" * 32)
    with pytest.raises(MlflowError, match="HTTP"):
        ml.log_metrics({"energy_j": 1.0})


def test_unreachable_server_and_bad_uris(monkeypatch):
    port = _free_port()
    ml = MlflowLogger(f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(MlflowError, match="cannot reach"):
        ml.log_metrics({"energy_j": 1.0})
    with pytest.raises(ValueError, match="not http"):
        MlflowLogger("file:///tmp/mlruns")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError, match="no MLflow tracking URI"):
        MlflowLogger()
