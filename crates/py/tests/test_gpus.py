"""The job's GPUs in Python: the visibility variables this process sees, or ``gpus=``, over the
test suite's fake NVML (five scripted GPUs, compiled here). NVML loads once per process, so
each case runs in a fresh interpreter."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import wattprint

FAKE_NVML_C = pathlib.Path(__file__).parents[2] / "sensors/tests/fake_nvml/fake_nvml.c"
VISIBILITY = ["CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES",
              "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL",
              "SLURM_STEP_GPUS", "SLURM_JOB_GPUS"]

CODE = """
import json, sys, time, wattprint
try:
    m = wattprint.Meter(**json.loads(sys.argv[1]))
except (TypeError, ValueError) as e:
    print(json.dumps({"error": type(e).__name__ + ": " + str(e)}))
    sys.exit(0)
w = m.begin("w")
time.sleep(0.3)
print(json.dumps(m.end(w).to_dict()))
"""


@pytest.fixture
def fake_node(rapl, tmp_path):
    """Run a Meter in a child interpreter on the fake NVML node; returns its report dict."""
    cc = shutil.which("cc")
    assert cc, "a C compiler (cc) is needed to build the fake NVML library"
    lib = tmp_path / "libnvidia-ml.so.1"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(FAKE_NVML_C)], check=True)

    def run(env=None, **options):
        e = {k: v for k, v in os.environ.items() if k not in VISIBILITY}
        e.update(WATTPRINT_NVML_LIB=str(lib), WATTPRINT_AMDSMI_LIB=str(tmp_path / "none.so"))
        e.update(env or {})
        out = subprocess.run([sys.executable, "-c", CODE, json.dumps(options)], env=e,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    return run


def gpu_domains(r):
    return [d["name"] for d in r["energy"]["domains"] if d["kind"] == "gpu"]


def test_the_gpus_this_process_sees_are_measured(fake_node):
    r = fake_node({"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert gpu_domains(r) == ["gpu-1"]
    assert [g["domain"] for g in r["host"]["other_gpus"]] == ["gpu-0", "gpu-2", "gpu-3", "gpu-4"]
    assert r["host"]["gpu_selection"] == "CUDA_VISIBLE_DEVICES=1 (CUDA_DEVICE_ORDER=PCI_BUS_ID)"


def test_gpus_keyword_overrides_the_environment(fake_node):
    r = fake_node({"CUDA_VISIBLE_DEVICES": ""}, gpus=[0, "gpu-4"])
    assert gpu_domains(r) == ["gpu-0", "gpu-4"]
    assert r["host"]["gpu_selection"] == "--gpus 0,gpu-4"
    assert len(gpu_domains(fake_node({"CUDA_VISIBLE_DEVICES": "1"}, gpus="all"))) == 5
    assert gpu_domains(fake_node(gpus="GPU-22222222")) == ["gpu-2"]
    assert gpu_domains(fake_node(gpus=[])) == []


def test_a_gpus_keyword_naming_no_gpu_is_a_value_error(fake_node):
    assert fake_node(gpus="7")["error"].startswith("ValueError: gpus=7: `7` names no GPU here")
    assert "entry `0;1` is not an index" in fake_node(gpus="0;1")["error"]


@pytest.mark.parametrize("bad, message", [
    (True, "gpus entries must be int or str, not bool"),
    (1.5, "gpus entries must be int or str, not float"),
    ([0, None], "gpus entries must be int or str, not NoneType"),
])
def test_bad_gpus_types_are_type_errors(rapl, bad, message):
    with pytest.raises(TypeError, match=message):
        wattprint.Meter(gpus=bad)
