"""`report.to_dict()` has the shape of `wattprint run --json` (the same serde structs): same
keys at every level, same carbon provenance for the same zone, on the same fake sensors."""

import json
import os
import pathlib
import subprocess

import pytest

import wattprint

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _cli():
    exe = os.environ.get("WATTPRINT_CLI")
    if not exe:
        target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        exe = target / "debug" / "wattprint"
    exe = pathlib.Path(exe)
    assert exe.is_file(), (
        f"the wattprint CLI is not built at {exe}: run `cargo build -p wattprint-cli` or set "
        "WATTPRINT_CLI (scripts/test.d/python.sh does both)"
    )
    return exe


def _close(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12, abs=0)
    return a == b


def _keys(v, prefix=""):
    out = set()
    if isinstance(v, dict):
        for k, x in v.items():
            out.add(prefix + k)
            out |= _keys(x, prefix + k + ".")
    elif isinstance(v, list) and v and isinstance(v[0], dict):
        out |= _keys(v[0], prefix + "[].")
    return out


def test_to_dict_has_the_cli_json_shape(rapl, tmp_path):
    out = subprocess.run(
        [str(_cli()), "run", "--json", "--no-store", "--zone", "FR", "--", "true"],
        capture_output=True, text=True, env=dict(os.environ, WATTPRINT_DB=str(tmp_path / "db")),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    with wattprint.track(zone="FR") as t:
        rapl.add_j(1.0)
    py = t.report.to_dict()
    # `labels` (the window's name) is the only addition: it is optional in the schema.
    assert _keys(py) - {"labels", "labels.window"} == _keys(cli)
    assert py["labels"] == {"window": "track"}
    for k in ("zone", "intensity_g_per_kwh", "intensity_source", "intensity_year", "basis"):
        assert py["carbon"][k] == cli["carbon"][k], k
    assert [d["name"] for d in py["energy"]["domains"]] == [
        d["name"] for d in cli["energy"]["domains"]
    ]
    assert py["schema"] == cli["schema"] == "wattprint.run/v1"
    assert py["energy"]["total_j"] == pytest.approx(1.0, abs=1e-6)


def test_store_true_puts_the_window_in_the_cli_history(rapl, tmp_path, monkeypatch):
    db = tmp_path / "history.sqlite"
    monkeypatch.setenv("WATTPRINT_DB", str(db))
    with wattprint.track("stored", store=True, zone="FR") as t:
        rapl.add_j(2.0)
    with wattprint.track("not stored") as u:
        rapl.add_j(1.0)
    out = subprocess.run([str(_cli()), "runs", "--json", "--limit", "0"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)
    assert [r["id"] for r in runs] == [t.report.to_dict()["id"]]
    mine = t.report.to_dict()
    # The history keeps floats to the last bit or one ulp off: compare numbers closely.
    for k in ("energy", "carbon", "work", "metrics", "labels", "started_at", "duration_s"):
        assert _close(runs[0][k], mine[k]), (k, runs[0][k], mine[k])
    assert u.report.to_dict()["id"] != runs[0]["id"]


def test_store_failure_is_a_warning_not_a_lost_report(rapl, tmp_path, monkeypatch):
    (tmp_path / "dir.sqlite").mkdir()
    monkeypatch.setenv("WATTPRINT_DB", str(tmp_path / "dir.sqlite"))
    with wattprint.track(store=True) as t:
        rapl.add_j(2.0)
    assert t.report.energy_j == pytest.approx(2.0, abs=1e-6)
    assert any("not stored in the history" in w for w in t.report.warnings), t.report.warnings
