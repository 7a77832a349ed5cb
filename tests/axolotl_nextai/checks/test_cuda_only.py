"""The one rule for CUDA-only settings on a machine without CUDA."""

from axolotl_nextai.checks.cuda_only import LORA_KERNEL_KEYS, keys_to_disable


def test_unset_and_true_kernels_are_disabled_without_cuda():
    cfg = {"lora_qkv_kernel": True, "lora_o_kernel": False}
    assert keys_to_disable(cfg, cuda_available=False) == [
        "lora_qkv_kernel",
        "lora_mlp_kernel",
        "lora_embedding_kernel",
    ]


def test_nothing_changes_with_cuda():
    assert keys_to_disable({}, cuda_available=True) == []
    assert keys_to_disable(dict.fromkeys(LORA_KERNEL_KEYS, False), cuda_available=False) == []
