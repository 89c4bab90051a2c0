"""Peak FLOP/s: datasheet GPUs, the CPU matmul benchmark and its cache."""

from __future__ import annotations

import json

import pytest
import torch

from mfmrec.training import peak as peak_mod
from mfmrec.training.peak import (
    CACHE_FILE,
    CACHED,
    DATASHEET,
    MEASURED,
    cache_dir,
    datasheet_peak,
    matmul_precision,
    measure_matmul,
    peak_flops,
)


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """A fake benchmark that counts its calls, and an empty cache folder."""
    calls = []

    def fake(device, precision, budget_s=1.0):
        calls.append(precision)
        return 5e10

    monkeypatch.setattr(peak_mod, "measure_matmul", fake)
    monkeypatch.setenv("MFMREC_CACHE", str(tmp_path / "cache"))
    return calls


def test_the_benchmark_runs_once_and_is_read_back(counted, tmp_path):
    first = peak_flops("cpu", "fp32")
    second = peak_flops("cpu", "fp32")
    assert counted == ["fp32"]
    assert (first.flops_per_s, first.source) == (5e10, MEASURED)
    assert (second.flops_per_s, second.source) == (5e10, CACHED)
    stored = json.loads((tmp_path / "cache" / CACHE_FILE).read_text())
    (key,) = stored
    assert key.startswith("cpu|") and f"threads {torch.get_num_threads()}" in key
    assert key.endswith("|fp32") and torch.__version__ in key
    peak_flops("cpu", "bf16")  # another precision: another measurement, same file
    assert counted == ["fp32", "bf16"] and len(json.loads(
        (tmp_path / "cache" / CACHE_FILE).read_text())) == 2


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", "BAD_ENTRY"])
def test_a_damaged_cache_is_measured_again(counted, tmp_path, damage):
    path = tmp_path / "cache" / CACHE_FILE
    path.parent.mkdir(parents=True)
    if damage == "BAD_ENTRY":
        peak_flops("cpu", "fp32")
        stored = json.loads(path.read_text())
        damage = json.dumps({k: {"flops_per_s": -1} for k in stored})
        counted.clear()
    path.write_text(damage)
    result = peak_flops("cpu", "fp32")
    assert counted == ["fp32"] and result.source == MEASURED
    assert all(v["flops_per_s"] == 5e10 for v in json.loads(path.read_text()).values())
    assert peak_flops("cpu", "fp32").source == CACHED


def test_an_unwritable_cache_only_costs_a_measurement(counted, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MFMREC_CACHE", str(blocker / "sub"))  # a file in the way
    assert peak_flops("cpu", "fp32").source == MEASURED
    assert peak_flops("cpu", "fp32").source == MEASURED and len(counted) == 2


def test_cache_folder_order(monkeypatch, tmp_path):
    monkeypatch.setenv("MFMREC_CACHE", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("MFMREC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "mfmrec"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "mfmrec"


@pytest.mark.parametrize("name,precision,expected", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989e12),
    ("NVIDIA H100 PCIe", "bf16", 756e12),
    ("NVIDIA H200", "fp16", 989e12),
    ("NVIDIA A100-SXM4-80GB", "tf32", 156e12),
    ("NVIDIA L4", "bf16", 121e12),
    ("NVIDIA L40S", "bf16", 362e12),
    ("Tesla V100-SXM2-16GB", "bf16", None),  # no bf16 tensor cores
    ("NVIDIA GeForce GTX 1080", "fp32", None),
])
def test_datasheet_table(name, precision, expected):
    assert datasheet_peak(name, precision) == expected


def test_a_known_gpu_reads_the_datasheet_and_an_unknown_one_is_measured(counted, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
    peak = peak_flops(torch.device("cuda"), "bf16")
    assert (peak.flops_per_s, peak.source, peak.device) == (989e12, DATASHEET, "NVIDIA H200")
    assert counted == []
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Some Future GPU")
    assert peak_flops(torch.device("cuda"), "bf16").source == MEASURED and counted == ["bf16"]
    with pytest.raises(ValueError, match="precision"):
        peak_flops("cpu", "int8")


def test_matmul_precision_of_a_run():
    cpu = torch.device("cpu")
    assert [matmul_precision(p, cpu) for p in ("bf16", "fp16", "no")] == ["bf16", "fp16",
                                                                           "fp32"]


def test_the_real_benchmark_measures_something():
    assert measure_matmul(torch.device("cpu"), "fp32", budget_s=0.05) > 1e6
