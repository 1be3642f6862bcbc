"""Overhead of the Python bindings: a begin/end pair, report assembly, `import wattprint`.

Prints a Markdown table (stdout). Run by scripts/bench-python.sh with a release wheel.
"""

import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time


def fake_rapl(root):
    dev = root / "devices/virtual/powercap/intel-rapl"
    zone = dev / "intel-rapl:0"
    zone.mkdir(parents=True)
    cls = root / "class/powercap"
    cls.mkdir(parents=True)
    os.symlink(dev, cls / "intel-rapl")
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    (zone / "energy_uj").write_text(f"{1000000:020d}\n")
    os.symlink(zone, cls / "intel-rapl:0")


def pair_us(meter, n):
    """Median over 7 batches of the per-pair time of n begin/end pairs, µs."""
    per = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(n):
            meter.end(meter.begin("b"))
        per.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(per)


def report_us(meter, n):
    per = []
    for _ in range(5):
        reports = [meter.end(meter.begin("b")) for _ in range(n)]
        t0 = time.perf_counter()
        for r in reports:
            r.energy_j
        per.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(per)


def import_ms(runs=25):
    code = "import time; t=time.perf_counter(); import wattprint; print(time.perf_counter()-t)"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([sys.executable, "-c", "import wattprint"], check=True, env=env)  # warm caches
    xs = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True, env=env)
        xs.append(float(out.stdout) * 1e3)
    return statistics.median(xs), max(xs)


def main():
    import wattprint

    rows = []
    with tempfile.TemporaryDirectory() as d:
        fake_rapl(pathlib.Path(d))
        os.environ["WATTPRINT_SYSFS_ROOT"] = d
        m = wattprint.Meter()
        del os.environ["WATTPRINT_SYSFS_ROOT"]
        doms = [x["source"] for x in m.domains]
        rows.append(("begin/end pair, fake RAPL powercap tree (1 zone, tmpfs/disk file reads)",
                     f"{pair_us(m, 20000):.1f} µs", f"sensors: {', '.join(doms)}"))
        rows.append(("report assembly, first access (per report)",
                     f"{report_us(m, 500):.0f} µs", "lazy: paid only when a report is read"))
    with tempfile.TemporaryDirectory() as d:
        os.environ["WATTPRINT_SYSFS_ROOT"] = d
        os.environ["WATTPRINT_PROCFS_ROOT"] = d
        m = wattprint.Meter()
        del os.environ["WATTPRINT_SYSFS_ROOT"], os.environ["WATTPRINT_PROCFS_ROOT"]
        assert m.domains == [], m.domains
        rows.append(("begin/end pair, no sensor: the bindings and the meter's bookkeeping",
                     f"{pair_us(m, 20000):.1f} µs", "what the Python layer adds at most"))
    m = wattprint.Meter()
    doms = sorted({x["source"] for x in m.domains}) or ["none"]
    rows.append(("begin/end pair, this machine's sensors", f"{pair_us(m, 5000):.1f} µs",
                 f"sensors: {', '.join(doms)}"))
    med, worst = import_ms()
    rows.append(("`import wattprint` (fresh interpreter)", f"{med:.1f} ms",
                 f"median of 25; slowest {worst:.1f} ms"))
    load = os.getloadavg()[0]
    print(f"Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs (load average {load:.1f} while measured), "
          f"wattprint {wattprint.__version__} (release wheel)\n")
    print("| measurement | result | notes |")
    print("|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
