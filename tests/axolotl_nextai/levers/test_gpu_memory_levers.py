"""The memory cap's arithmetic and its refusal before loading; the cap and expandable segments on a GPU
(marker `gpu`), each undone by its uninstall."""

import pytest
import torch

from axolotl_nextai.checks.config_checks import ConfigError
from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.expandable_segments import ExpandableSegments
from axolotl_nextai.levers.gpu_memory_cap import GB, GpuMemoryCap, memory_fraction
from axolotl_nextai.run.memory import peak_memory_gib

CAP, SEGMENTS = GpuMemoryCap(), ExpandableSegments()


def test_fraction_of_an_80_gb_card_for_a_40_gb_cap():
    assert memory_fraction(40, 80 * GB) == 0.5


def test_a_cap_above_the_card_is_one_line_before_loading():
    assert CAP.problems({CAP.key: 40}, Launch(device_bytes=80 * GB)) == []
    assert CAP.problems({CAP.key: 100}, Launch()) == []  # no card to compare with (recipe_check on a laptop)
    [problem] = CAP.problems({CAP.key: 100}, Launch(device_bytes=80 * GB))
    assert problem == (
        "`nextai_gpu_memory_cap_gb`: 100 GB is more than this card's 80.0 GB; a cap can only "
        "simulate a smaller card: lower it or remove the key"
    )
    with pytest.raises(ConfigError, match="100 GB is more than this card's 80.0 GB"):
        memory_fraction(100, 80 * GB)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU behaviour")
def test_without_cuda_neither_does_anything():
    assert "no CUDA device: no cap applied" in CAP.install({CAP.key: 40})
    assert "no CUDA device" in SEGMENTS.install({SEGMENTS.key: True})
    CAP.uninstall()
    SEGMENTS.uninstall()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cap_makes_a_larger_allocation_fail_until_uninstalled():
    before = torch.cuda.get_per_process_memory_fraction(0)
    CAP.install({CAP.key: 2.0})
    keep = torch.empty(int(1.5 * GB), dtype=torch.uint8, device="cuda")
    with pytest.raises(torch.OutOfMemoryError):
        torch.empty(int(1.0 * GB), dtype=torch.uint8, device="cuda")
    assert peak_memory_gib()[0] >= keep.numel() / 2**30
    CAP.uninstall()
    assert torch.cuda.get_per_process_memory_fraction(0) == before
    more = torch.empty(int(1.0 * GB), dtype=torch.uint8, device="cuda")
    del keep, more


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_expandable_segments_are_used_for_new_memory_until_uninstalled():
    assert "expandable segments" in SEGMENTS.install({SEGMENTS.key: True})
    assert segment_of(torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda"))["is_expandable"]
    SEGMENTS.uninstall()
    assert not segment_of(torch.empty(96 * 2**20, dtype=torch.uint8, device="cuda"))["is_expandable"]


def segment_of(tensor: torch.Tensor) -> dict:
    """The allocator segment that holds `tensor`."""
    address = tensor.data_ptr()
    return next(
        segment
        for segment in torch.cuda.memory_snapshot()
        if segment["address"] <= address < segment["address"] + segment["total_size"]
    )
