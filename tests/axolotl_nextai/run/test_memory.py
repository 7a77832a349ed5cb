"""The memory cap's arithmetic; the cap itself on a GPU (marker `gpu`)."""

import pytest
import torch

from axolotl_nextai.run.memory import (
    GB,
    apply_memory_cap,
    device_memory_bytes,
    memory_fraction,
    peak_memory_gib,
    use_expandable_segments,
)


def test_fraction_of_an_80_gb_card_for_a_40_gb_cap():
    assert memory_fraction(40, 80 * GB) == 0.5


def test_a_cap_above_the_card_is_refused():
    with pytest.raises(ValueError, match="more than this card"):
        memory_fraction(100, 80 * GB)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU behaviour")
def test_without_cuda_no_cap_and_no_memory_figures():
    assert "no CUDA device" in apply_memory_cap(40)
    assert peak_memory_gib() == (None, None)
    assert "no CUDA device" in use_expandable_segments() and device_memory_bytes() is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cap_makes_a_larger_allocation_fail():
    apply_memory_cap(2.0)
    keep = torch.empty(int(1.5 * GB), dtype=torch.uint8, device="cuda")
    with pytest.raises(torch.OutOfMemoryError):
        torch.empty(int(1.0 * GB), dtype=torch.uint8, device="cuda")
    assert peak_memory_gib()[0] >= keep.numel() / 2**30


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_expandable_segments_are_used_for_new_memory():
    assert "expandable segments" in use_expandable_segments()
    keep = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda")
    assert any(segment.get("is_expandable") for segment in torch.cuda.memory_snapshot())
    del keep
