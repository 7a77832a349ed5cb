"""The peaks the run report shows: none without CUDA, never zeros."""

import pytest
import torch

from axolotl_nextai.run.memory import device_memory_bytes, peak_memory_gib


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU behaviour")
def test_without_cuda_no_memory_figures():
    assert peak_memory_gib() == (None, None) and device_memory_bytes() is None
