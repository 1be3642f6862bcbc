"""Shared fixtures: a fake RAPL powercap tree (the documented WATTPRINT_SYSFS_ROOT seam) whose
counters the tests advance by known amounts, so every energy figure has a known answer."""

import os

import pytest

import wattprint
from wattprint import _track


class FakeRapl:
    """``<root>/class/powercap/intel-rapl:0`` (package-0) laid out as the kernel does, with a
    counter the test advances by exact joules (written in place, fixed width)."""

    RANGE_UJ = 262_143_328_850

    def __init__(self, root):
        self.root = root
        dev = root / "devices/virtual/powercap/intel-rapl"
        self.zone = dev / "intel-rapl:0"
        self.zone.mkdir(parents=True)
        (dev / "enabled").write_text("1\n")
        cls = root / "class/powercap"
        cls.mkdir(parents=True)
        os.symlink(dev, cls / "intel-rapl")
        (self.zone / "name").write_text("package-0\n")
        (self.zone / "max_energy_range_uj").write_text(f"{self.RANGE_UJ}\n")
        # 2 kW: the tests land joules between reads microseconds apart; a 125 W zone would
        # drop such an interval as implausible (wattprint_core::trust::implausible_interval).
        (self.zone / "constraint_0_max_power_uw").write_text("2000000000\n")
        (self.zone / "constraint_0_name").write_text("long_term\n")
        os.symlink(self.zone, cls / "intel-rapl:0")
        self.uj = 1_000_000
        self._write()

    def _write(self):
        with open(self.zone / "energy_uj", "r+" if (self.zone / "energy_uj").exists() else "w") as f:
            f.seek(0)
            f.write(f"{self.uj:020d}\n")

    def add_j(self, joules):
        """Advance the package counter by ``joules`` (wrapping as the hardware does)."""
        self.uj = (self.uj + round(joules * 1e6)) % self.RANGE_UJ
        self._write()


def write_fake_procfs(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Test CPU\nphysical id\t: 0\n\n")
    (root / "meminfo").write_text("MemTotal:       1000000 kB\n")
    (root / "stat").write_text(f"cpu  {10:020d} 0 0 {100:020d} 0 0 0 0 0 0\n")
    (root / "sys/kernel").mkdir(parents=True, exist_ok=True)
    (root / "sys/kernel/hostname").write_text("testhost\n")


@pytest.fixture
def rapl(tmp_path, monkeypatch):
    """A fake RAPL tree; meters opened while it is active read it (the meter cache is cleared
    before and after)."""
    fake = FakeRapl(tmp_path / "sys")
    write_fake_procfs(tmp_path / "proc")
    monkeypatch.setenv("WATTPRINT_SYSFS_ROOT", str(tmp_path / "sys"))
    monkeypatch.setenv("WATTPRINT_PROCFS_ROOT", str(tmp_path / "proc"))
    monkeypatch.delenv("WATTPRINT_WORK_FILE", raising=False)
    _track._meters.clear()
    yield fake
    _track._meters.clear()


@pytest.fixture
def meter(rapl):
    return wattprint.Meter()
