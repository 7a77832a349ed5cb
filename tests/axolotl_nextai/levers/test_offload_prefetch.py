"""nextai_prefetch_offloaded_inputs: which offloaded layer input backward asks for next, the config refused in
one line without hidden-states offloading or with reentrant checkpointing (installing and undoing it is
test_contract.py's), and on CUDA (the GPU machine runs this file before the 70B runs) the same loss and LoRA
gradients with the prefetching offloader as with Axolotl's own, every input restored."""

import pytest
import torch
from axolotl.monkeypatch import checkpoint_activation_offload

from axolotl_nextai.checks.config_checks import ConfigError
from axolotl_nextai.levers.offload_prefetch import KEY, PrefetchOffloadedInputs, next_to_restore
from axolotl_nextai.plugin import NextAIPlugin

LEVER = PrefetchOffloadedInputs()


def test_the_next_input_is_the_highest_lower_id_still_on_the_cpu():
    on_cpu = dict.fromkeys([1, 2, 3, 4, 5])
    assert next_to_restore(on_cpu, on_gpu={}, prefetched={}, restored=6) == 5
    assert next_to_restore(on_cpu, on_gpu={5: None}, prefetched={}, restored=6) == 4  # still on the GPU
    assert next_to_restore(on_cpu, on_gpu={}, prefetched={5: None}, restored=6) == 4  # already on its way
    assert next_to_restore(on_cpu, on_gpu={}, prefetched={}, restored=3) == 2
    assert next_to_restore({7: None}, on_gpu={}, prefetched={}, restored=3) is None  # backward is past it


def test_installed_axolotl_builds_the_prefetching_offloader():
    from axolotl.monkeypatch.checkpoint_activation_offload import (
        get_checkpoint_hidden_states_offloading_ctx_manager,
    )

    original = checkpoint_activation_offload.CheckpointHiddenStatesOffload
    try:
        assert LEVER.install({KEY: True}).startswith(f"{KEY}: ")
        offloader = get_checkpoint_hidden_states_offloading_ctx_manager()
        assert type(offloader) is not original and isinstance(offloader, original)
    finally:
        LEVER.uninstall()
    assert type(get_checkpoint_hidden_states_offloading_ctx_manager()) is original


@pytest.mark.parametrize("offloading", [None, True, "legacy"])
def test_without_hidden_states_offloading_the_key_is_refused_in_one_line(offloading):
    cfg = {KEY: True, "activation_offloading": offloading}
    (problem,) = LEVER.problems(cfg, None)
    assert problem.startswith(f"`{KEY}` prefetches the layer inputs")
    assert LEVER.problems({**cfg, "activation_offloading": "hidden_states"}, None) == []
    reentrant = {
        **cfg,
        "activation_offloading": "hidden_states",
        "gradient_checkpointing_kwargs": {"use_reentrant": True},
    }
    assert "already prefetches" in LEVER.problems(reentrant, None)[0]
    with pytest.raises(ConfigError, match=f"`{KEY}`.*set activation_offloading: hidden_states"):
        NextAIPlugin().register(
            {"plugins": ["axolotl_nextai.NextAIPlugin"], "nextai_check_datasets": False, **cfg}
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="Axolotl offloads only accelerator tensors")
def test_on_cuda_the_prefetched_inputs_train_the_same(tiny_model):
    from axolotl.monkeypatch.checkpoint_activation_offload import (
        get_checkpoint_hidden_states_offloading_ctx_manager,
    )
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from axolotl_nextai.models.checkpoint import qlora_quantization

    def step():
        model = AutoModelForCausalLM.from_pretrained(
            tiny_model, quantization_config=qlora_quantization(), device_map="cuda"
        )
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        torch.manual_seed(0)
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, target_modules=["o_proj", "down_proj"]))
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.1)
        model.train()
        offload = get_checkpoint_hidden_states_offloading_ctx_manager()
        losses = []
        for seed in (1, 2):  # twice: the second step reuses the pooled CPU buffers
            torch.manual_seed(seed)
            ids = torch.randint(0, model.config.vocab_size, (2, 64), device="cuda")
            with offload:
                loss = model(input_ids=ids, labels=ids).loss
                loss.backward()
            losses.append(loss.detach())
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        return losses, grads, offload.stats

    reference = step()
    try:
        LEVER.install({KEY: True})
        run = step()
    finally:
        LEVER.uninstall()
    torch.testing.assert_close(run[0], reference[0], rtol=0, atol=0)
    for name, grad in reference[1].items():
        torch.testing.assert_close(run[1][name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert run[2].offloaded_tensors == run[2].restored_tensors == reference[2].restored_tensors > 0
