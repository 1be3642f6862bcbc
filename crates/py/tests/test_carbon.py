"""Carbon options: the same library as `wattprint run` (zones with provenance, PUE, fallback)."""

import pytest

import wattprint

J_PER_KWH = 3.6e6


def test_zone_gives_operational_carbon_from_the_zone_factor(rapl):
    with wattprint.track(zone="FR", pue=1.2) as t:
        # 0.00001 kWh: the fake lands it between two reads microseconds apart, which a 2 kW
        # zone can plausibly do (36 kJ could not: the interval would be dropped).
        rapl.add_j(36.0)
    c = t.report.carbon
    assert c["zone"] == "FR"
    assert c["fallback"] is False
    assert c["intensity_g_per_kwh"] > 0
    assert c["intensity_source"]
    assert c["operational_g"] == pytest.approx(1e-5 * 1.2 * c["intensity_g_per_kwh"], rel=1e-9)
    assert t.report.carbon_g == pytest.approx(c["operational_g"] + c["embodied_g"], rel=1e-9)
    assert t.report.facility_energy_j == pytest.approx(36.0 * 1.2, rel=1e-9)


def test_zone_from_the_environment_as_the_cli_does(rapl, monkeypatch):
    monkeypatch.setenv("WATTPRINT_ZONE", "DE")
    with wattprint.track() as t:
        rapl.add_j(1.0)
    assert t.report.carbon["zone"] == "DE"


def test_no_zone_is_a_stated_fallback(rapl, monkeypatch):
    monkeypatch.delenv("WATTPRINT_ZONE", raising=False)
    with wattprint.track() as t:
        rapl.add_j(1.0)
    assert t.report.carbon["fallback"] is True
    assert any("zone" in w.lower() for w in t.report.warnings), t.report.warnings


def test_zones_differ(rapl):
    reports = {}
    for zone in ("FR", "PL"):
        with wattprint.track(zone=zone) as t:
            rapl.add_j(3_600_000.0)
        reports[zone] = t.report.carbon["operational_g"]
    assert reports["PL"] > reports["FR"] > 0
