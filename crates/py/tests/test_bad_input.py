"""Bad input gets a Python exception with a clear message, never an interpreter crash."""

import math

import pytest

import wattprint


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        ({"pue": "high"}, TypeError, "pue must be a number, not str"),
        ({"pue": True}, TypeError, "pue must be a number, not bool"),
        ({"pue": 0.5}, ValueError, "pue"),
        ({"pue": math.nan}, ValueError, "pue"),
        ({"flops": -1}, ValueError, "flops must be a finite number >= 0"),
        ({"flops": math.inf}, ValueError, "flops"),
        ({"tokens": "many"}, TypeError, "tokens must be a number"),
        ({"inferences": [1]}, TypeError, "inferences must be a number"),
        ({"inferences": False}, TypeError, "not bool"),
        ({"zone": 33}, TypeError, "zone must be a str, not int"),
        ({"store": "yes"}, TypeError, "store must be a bool"),
        ({"sensors": "model"}, TypeError, "sensors must be a list of str"),
        ({"sensors": ["rapl"]}, ValueError, "unknown sensor `rapl`"),
        ({"zone": "Atlantis"}, ValueError, "unknown zone `Atlantis`"),
        ({"share": 2.0}, ValueError, "share"),
        ({"embodied_kg": -1.0}, ValueError, "embodied_kg"),
        ({"live": "nowhere"}, ValueError, "live"),
        ({"intensity_file": 3}, TypeError, "intensity_file must be a str or os.PathLike"),
        ({"intensity_file": "/nonexistent/i.csv"}, ValueError, "i.csv"),
        ({"mode": "dream"}, ValueError, "unknown mode `dream`"),
        ({"precision": "fp64"}, ValueError, "unknown precision `fp64`"),
        ({"params": 7e9}, ValueError, "params needs mode"),
        ({"flops": 1.0, "params": 7e9, "tokens": 1.0, "mode": "train"}, ValueError, "not both"),
    ],
)
def test_bad_option_values(rapl, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        wattprint.Meter(**kwargs)
    with pytest.raises(exc, match=message):
        wattprint.track(**kwargs)


def test_unknown_option_names_are_type_errors(rapl):
    with pytest.raises(TypeError, match="unknown option `zoen`; options are: zone, pue"):
        wattprint.Meter(zoen="FR")
    with pytest.raises(TypeError, match="zoen"):
        wattprint.track(zoen="FR")


def test_positional_options_are_refused(rapl):
    with pytest.raises(TypeError):
        wattprint.Meter("FR")


def test_bad_add_work_values(rapl):
    with wattprint.track():
        with pytest.raises(ValueError, match="tokens must be a finite number >= 0"):
            wattprint.add_work(tokens=-5)
        with pytest.raises(TypeError, match="flops must be a number"):
            wattprint.add_work(flops="1e9")
        with pytest.raises(TypeError):
            wattprint.add_work(5)


def test_bad_track_arguments(rapl):
    with pytest.raises(TypeError, match="name must be a str"):
        wattprint.track(42)
    with pytest.raises(TypeError, match="meter must be a wattprint.Meter"):
        wattprint.track(meter="m")
    with pytest.raises(TypeError, match="pass options to wattprint.Meter"):
        wattprint.track(meter=wattprint.Meter(), pue=1.2)


def test_begin_name_must_be_a_string(meter):
    with pytest.raises(TypeError):
        meter.begin(3)


def test_windows_cannot_be_made_from_python(meter):
    with pytest.raises(TypeError):
        wattprint.Window()
