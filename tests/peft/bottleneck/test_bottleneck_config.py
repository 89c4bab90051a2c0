"""AdapterSpec: validation and the hidden width per sublayer."""

from __future__ import annotations

import pytest

from mfmrec.peft import BLOCK, CROSS, FFN, KINDS, SELF, AdapterSpec


def test_spec_validation():
    with pytest.raises(ValueError, match="reduction_factor"):
        AdapterSpec(reduction_factor=0)
    with pytest.raises(ValueError, match="unknown adapter kinds"):
        AdapterSpec(kinds=frozenset({"lora"}))
    with pytest.raises(ValueError, match="bottleneck"):
        AdapterSpec(bottleneck=0)
    with pytest.raises(ValueError, match="at least one"):
        AdapterSpec(kinds=frozenset())
    with pytest.raises(ValueError, match="activation"):
        AdapterSpec(activation="tanh")


def test_default_spec_covers_every_kind():
    assert AdapterSpec().kinds == frozenset(KINDS) == {SELF, CROSS, FFN, BLOCK}


def test_reduction_is_fixed_or_follows_the_width():
    assert AdapterSpec(reduction_factor=8).reduction_for(512) == 8
    assert AdapterSpec(reduction_factor=8).reduction_for(16) == 8
    # bottleneck: r = width // bottleneck, at least 1 (IISAN's adapter_dim)
    spec = AdapterSpec(bottleneck=8)
    assert [spec.reduction_for(w) for w in (16, 24, 40, 112, 4)] == [2, 3, 5, 14, 1]
    assert [w // spec.reduction_for(w) for w in (16, 24, 40, 112, 4)] == [8, 8, 8, 8, 4]
