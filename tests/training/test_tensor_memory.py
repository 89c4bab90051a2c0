"""The CPU tensor-peak probe: what is live at the start, plus the block's highest net
allocation, from the profiler's records."""

import torch

from mfmrec.training.tensor_memory import (
    TensorPeakProbe,
    model_and_optimizer_tensors,
    peak_of,
    storage_bytes,
)

MIB = 2**20


def test_storage_bytes_counts_each_storage_once():
    base = torch.zeros(MIB // 4)  # 1 MiB of float32
    view = base[: MIB // 8]
    other = torch.zeros(MIB // 8)  # 0.5 MiB
    assert storage_bytes([base, view, base.view(2, -1), other]) == MIB + MIB // 2


def test_model_and_optimizer_tensors_include_the_moments():
    lin = torch.nn.Linear(64, 32)
    opt = torch.optim.AdamW(lin.parameters())
    weights = storage_bytes(model_and_optimizer_tensors(lin))
    lin(torch.randn(4, 64)).sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    after = storage_bytes(model_and_optimizer_tensors(lin, opt))
    # AdamW keeps two float32 moments per parameter (plus a scalar step each)
    assert after >= 3 * weights
    assert weights == (64 * 32 + 32) * 4


def test_peak_of_replays_frees_and_names_the_live_allocations():
    records = [(1, 4, 10, 4, "a"), (2, 10, 11, 6, "b"), (3, 6, 10, -4, "a"),
               (4, 8, 12, 2, "c")]
    added, sites = peak_of(records)
    assert added == 10
    assert sites == [("b", 6), ("a", 4)]
    assert peak_of([]) == (0, [])


def test_probe_sees_a_transient_peak_and_the_resident_tensors():
    keep = torch.ones(MIB // 4)  # live before the block: resident
    with TensorPeakProbe([keep]) as probe:
        big = torch.ones(8 * MIB // 4)  # 8 MiB, freed inside the block
        del big
        small = torch.ones(2 * MIB // 4)  # 2 MiB, still live at the end
    assert probe.error is None, probe.error
    result = probe.result
    assert result.resident == MIB
    assert 8 * MIB <= result.added < 9 * MIB  # the freed 8 MiB set the peak, not the end
    assert result.peak == result.resident + result.added
    assert result.sites and result.sites[0][1] >= 8 * MIB
    assert result.as_dict(top=1)["sites_at_peak"][0][1] == result.sites[0][1]
    assert small.numel() == MIB // 2
