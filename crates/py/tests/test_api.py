"""track(), Meter windows, reports and add_work, on a fake RAPL tree with known energies."""

import asyncio
import json
import threading

import pytest

import wattprint


def test_track_measures_the_block_energy_exactly(rapl):
    with wattprint.track() as t:
        rapl.add_j(12.5)
    r = t.report
    assert r.energy_j == pytest.approx(12.5, abs=1e-6)
    assert r.domains_j == {"package-0": pytest.approx(12.5, abs=1e-6)}
    assert r.duration_s >= 0.0
    d = r.to_dict()
    assert d["schema"] == "wattprint.run/v1"
    assert d["energy"]["domains"][0]["source"] == "rapl-powercap"
    assert d["energy"]["domains"][0]["method"] == "counter"
    assert d["metrics"]["energy_to_solution_j"] == pytest.approx(12.5, abs=1e-6)
    # RAPL counters carry +/- 5 %, through the total and the carbon.
    assert r.energy_j_low == pytest.approx(12.5 * 0.95, abs=1e-6)
    assert r.energy_j_high == pytest.approx(12.5 * 1.05, abs=1e-6)
    assert d["energy"]["domains"][0]["joules_low"] == pytest.approx(12.5 * 0.95, abs=1e-6)
    assert r.carbon_g_low <= r.carbon_g <= r.carbon_g_high
    assert "J (" in repr(r)


def test_sensors_chooses_the_model_and_the_choice_keys_the_shared_meter(rapl):
    with wattprint.track(sensors=["model"]) as t:
        rapl.add_j(12.5)
    d = t.report.to_dict()
    names = [x["name"] for x in d["energy"]["domains"]]
    assert names == ["cpu-model", "memory-model"]
    assert all(x["method"] == "model" for x in d["energy"]["domains"])
    with wattprint.track(sensors=["model"]) as t2:
        pass
    with wattprint.track(sensors=["-model"]) as t3:
        rapl.add_j(1.0)
    # The same list reuses one meter; another list opens another.
    assert len(wattprint._track._meters) == 2
    assert [x["name"] for x in t3.report.to_dict()["energy"]["domains"]] == ["package-0"]
    assert t2.report is not None


def test_a_stuck_package_is_rejected_and_the_model_counts(rapl, monkeypatch):
    # No advance over more than 0.1 s: a package always draws power, so its counter is dead.
    import time

    with wattprint.track() as t:
        time.sleep(0.15)
    e = t.report.to_dict()["energy"]
    assert e["rejected"][0]["domain"] == "package-0"
    assert e["rejected"][0]["verdict"] == "stuck"
    assert e["rejected"][0]["replaced_by"] == ["cpu-model"]
    assert e["total_j"] > 0
    assert e["model_filled_j"] == pytest.approx(e["total_j"])


def test_report_exists_when_the_block_raises_and_the_exception_propagates(rapl):
    t = wattprint.track()
    with pytest.raises(ZeroDivisionError):
        with t:
            rapl.add_j(3.0)
            1 / 0
    assert t.report is not None
    assert t.report.energy_j == pytest.approx(3.0, abs=1e-6)


def test_to_dict_is_the_json_report(rapl):
    with wattprint.track() as t:
        rapl.add_j(1.0)
    assert t.report.to_dict() == json.loads(t.report.to_json())
    assert t.report.to_dict() == json.loads(t.report.to_json(indent=2))
    # The shortcut getters are views of the same report.
    d = t.report.to_dict()
    assert t.report.energy == d["energy"]
    assert t.report.carbon == d["carbon"]
    assert t.report.work == d["work"]
    assert t.report.metrics == d["metrics"]
    assert t.report.overhead == d["overhead"]
    assert t.report.warnings == d["warnings"]
    assert t.report.carbon_g == d["carbon"]["total_g"]
    assert t.report.facility_energy_j == d["energy"]["facility_j"]


def test_bare_decorator_measures_each_call(rapl):
    @wattprint.track
    def step(j):
        rapl.add_j(j)
        return j * 2

    assert step(2.0) == 4.0
    assert step.last_report.energy_j == pytest.approx(2.0, abs=1e-6)
    assert step(5.0) == 10.0
    assert step.last_report.energy_j == pytest.approx(5.0, abs=1e-6)
    assert step.__name__ == "step"


def test_decorator_with_options_and_a_raising_function(rapl):
    @wattprint.track("named", pue=1.5)
    def boom():
        rapl.add_j(4.0)
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()
    r = boom.last_report
    assert r.energy_j == pytest.approx(4.0, abs=1e-6)
    assert r.pue == 1.5
    assert r.facility_energy_j == pytest.approx(6.0, abs=1e-6)


def test_async_functions_are_measured(rapl):
    @wattprint.track
    async def job():
        rapl.add_j(7.0)
        await asyncio.sleep(0)
        return "ok"

    assert asyncio.run(job()) == "ok"
    assert job.last_report.energy_j == pytest.approx(7.0, abs=1e-6)


def test_meter_windows_nest_and_overlap(meter, rapl):
    a = meter.begin("a")
    rapl.add_j(1.0)
    b = meter.begin("b")
    rapl.add_j(2.0)
    ra = meter.end(a)  # a ends while b is still open: overlapping
    rapl.add_j(4.0)
    c = meter.begin("c")
    rapl.add_j(8.0)
    rc = meter.end(c)
    rb = meter.end(b)
    assert (a.name, b.name, c.name) == ("a", "b", "c")
    assert ra.energy_j == pytest.approx(3.0, abs=1e-6)
    assert rb.energy_j == pytest.approx(14.0, abs=1e-6)
    assert rc.energy_j == pytest.approx(8.0, abs=1e-6)


def test_nested_tracks_share_the_meter_and_count_each_joule_in_each(rapl):
    with wattprint.track("outer") as outer:
        rapl.add_j(1.0)
        with wattprint.track("inner") as inner:
            rapl.add_j(2.0)
    assert outer.meter is inner.meter
    assert inner.report.energy_j == pytest.approx(2.0, abs=1e-6)
    assert outer.report.energy_j == pytest.approx(3.0, abs=1e-6)


def test_counter_wraparound_inside_a_window(meter, rapl):
    rapl.uj = rapl.RANGE_UJ - 500_000  # 0.5 J before the wrap
    rapl.add_j(0.0)
    w = meter.begin("wrap")
    rapl.add_j(2.0)  # wraps
    assert meter.end(w).energy_j == pytest.approx(2.0, abs=1e-6)


def test_ending_twice_raises_window_error(meter):
    w = meter.begin("once")
    meter.end(w)
    with pytest.raises(wattprint.WindowError, match="not open"):
        meter.end(w)
    assert issubclass(wattprint.WindowError, ValueError)


def test_ending_on_another_meter_raises(meter, rapl):
    other = wattprint.Meter()
    w = meter.begin("mine")
    with pytest.raises(wattprint.WindowError, match="another Meter"):
        other.end(w)
    meter.end(w)


def test_end_takes_a_window(meter):
    with pytest.raises(TypeError, match="Window"):
        meter.end(1)
    with pytest.raises(TypeError):
        meter.end()


def test_ending_in_another_thread_works(meter, rapl):
    w = meter.begin("threaded")
    rapl.add_j(6.0)
    out = {}

    def end():
        out["r"] = meter.end(w)

    th = threading.Thread(target=end)
    th.start()
    th.join()
    assert out["r"].energy_j == pytest.approx(6.0, abs=1e-6)
    with pytest.raises(wattprint.WindowError):
        meter.end(w)


def test_many_threads_begin_and_end_concurrently(meter, rapl):
    errors = []
    reports = []

    def worker(i):
        try:
            for _ in range(50):
                w = meter.begin(f"t{i}")
                reports.append(meter.end(w))
        except Exception as e:  # pragma: no cover - the assertion below shows it
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(reports) == 400
    assert all(r.energy_j >= 0.0 for r in reports)


def test_reusing_a_running_tracker_is_refused(rapl):
    t = wattprint.track()
    with t:
        with pytest.raises(RuntimeError, match="already running"):
            t.__enter__()


def test_meter_lists_its_domains(meter):
    doms = meter.domains
    assert [d["name"] for d in doms] == ["package-0"]
    assert doms[0]["kind"] == "cpu-package"
    assert "domains" in repr(meter)


def test_add_work_counts_in_the_open_tracks_only(rapl):
    with wattprint.track("outer") as outer:
        wattprint.add_work(inferences=10, tokens=1000)
        with wattprint.track("inner") as inner:
            wattprint.add_work(inferences=5)
            rapl.add_j(10.0)
    assert inner.report.work["inferences"] == 5
    assert outer.report.work["inferences"] == 15
    assert outer.report.work["tokens"] == 1000
    assert inner.report.work["tokens"] is None
    assert inner.report.metrics["joules_per_inference"] == pytest.approx(2.0, abs=1e-6)


def test_declared_work_option(rapl):
    with wattprint.track(inferences=4) as t:
        rapl.add_j(8.0)
    assert t.report.work["inferences"] == 4
    assert t.report.metrics["joules_per_inference"] == pytest.approx(2.0, abs=1e-6)


def test_add_work_outside_any_track_is_an_error(rapl):
    with pytest.raises(RuntimeError, match="outside any wattprint.track"):
        wattprint.add_work(tokens=3)


def test_add_work_under_wattprint_run_appends_to_the_work_file(rapl, tmp_path, monkeypatch):
    path = tmp_path / "work"
    monkeypatch.setenv("WATTPRINT_WORK_FILE", str(path))
    wattprint.add_work(tokens=3, flops=1.5e12)
    wattprint.add_work(inferences=2)
    assert path.read_text().splitlines() == ["tokens=3", "flops=1500000000000", "inferences=2"]


def test_meter_add_work(meter, rapl):
    w = meter.begin("w")
    meter.add_work(flops=2e9)
    rapl.add_j(1.0)
    r = meter.end(w)
    assert r.work["flops"] == 2e9


def test_report_progress_writes_the_work_file_and_checks_its_values(rapl, tmp_path, monkeypatch):
    from wattprint import _track

    monkeypatch.setattr(_track, "_last_progress", [None])
    assert wattprint.report_progress(1, 10) is False  # not under `wattprint run`
    path = tmp_path / "work"
    monkeypatch.setenv("WATTPRINT_WORK_FILE", str(path))
    monkeypatch.setattr(_track, "_last_progress", [None])
    assert wattprint.report_progress(1, 10)
    assert wattprint.report_progress(fraction=0.5)
    # Less than 0.1 % further: skipped; the last report never is.
    assert not wattprint.report_progress(fraction=0.5004)
    assert wattprint.report_progress(2000, 2000)
    assert path.read_text().splitlines() == ["step=1 total=10", "progress=0.5", "step=2000 total=2000"]
    for bad in [dict(step=5, total=4), dict(step=-1, total=4), dict(step=1, total=0),
                dict(fraction=1.5), dict(fraction="half")]:
        with pytest.raises(ValueError):
            wattprint.report_progress(**bad)
    with pytest.raises(TypeError):
        wattprint.report_progress(3)
    with pytest.raises(TypeError):
        wattprint.report_progress(1, 2, fraction=0.5)

