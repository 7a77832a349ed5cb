"""nextai_fuse_accumulation: the loss arithmetic against transformers' own causal-LM loss, the pass splitting,
the config checks, and the same losses and adapter as the unfused recipe through the real Axolotl CLI."""

import itertools
import json

import pytest
import torch
from axolotl_launch import tiny_cpu_config, write_jsonl
from safetensors.torch import load_file
from transformers.loss.loss_utils import ForCausalLMLoss

from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.fused_accumulation import (
    FusedAccumulation,
    WeightedLoss,
    accumulation_token_weights,
    fused_batch_args,
    rows_of,
    split_rows,
    weighted_token_loss,
)

VOCAB = 11


def batch(lengths, trained, width=None, seed=0):
    """Right-padded labels (the last `trained[i]` tokens of row i trained) and random logits."""
    width = width or max(lengths)
    labels = torch.full((len(lengths), width), -100)
    gen = torch.Generator().manual_seed(seed)
    for row, (length, n) in enumerate(zip(lengths, trained, strict=True)):
        labels[row, length - n : length] = torch.randint(0, VOCAB, (n,), generator=gen)
    return torch.randn(len(lengths), width, VOCAB, generator=gen), labels


@pytest.mark.parametrize("micro_batch_size", [1, 2])
def test_weights_give_the_unfused_windows_loss(micro_batch_size):
    """Unfused (Axolotl 0.19): each micro-batch's mean over its label tokens, divided by the window's
    micro-batches."""
    logits, labels = batch([9, 5, 7, 3, 8], [4, 2, 5, 1, 3])
    micro = [slice(i, i + micro_batch_size) for i in range(0, 5, micro_batch_size)]
    unfused = sum(ForCausalLMLoss(logits[m], labels[m], VOCAB) for m in micro) / len(micro)
    weights = accumulation_token_weights(labels, micro_batch_size)
    fused = weighted_token_loss(logits, labels, weights)
    torch.testing.assert_close(fused, unfused)
    token_mean = ForCausalLMLoss(logits, labels, VOCAB)  # what a plain batch of 5 would train on
    assert abs(float(fused - token_mean)) > 1e-3


def test_token_weighted_accumulation_is_kept_where_the_trainer_uses_it():
    logits, labels = batch([6, 6, 4, 5], [3, 1, 2, 4])
    items = int((labels[:, 1:] != -100).sum())
    unfused = sum(
        ForCausalLMLoss(logits[i : i + 1], labels[i : i + 1], VOCAB, num_items_in_batch=items)
        for i in range(4)
    )
    fused = weighted_token_loss(logits, labels, accumulation_token_weights(labels, 1, items))
    torch.testing.assert_close(fused, unfused)


def test_weights_split_across_passes_add_up_to_the_whole_batch():
    logits, labels = batch([8, 8, 6, 2], [5, 3, 2, 1])
    weights = accumulation_token_weights(labels, 1)
    passes = split_rows(4, 8, 16)
    parts = sum(weighted_token_loss(logits[p], labels[p], weights[p]) for p in passes)
    torch.testing.assert_close(parts, weighted_token_loss(logits, labels, weights))


def test_a_micro_batch_without_label_tokens_weighs_nothing():
    labels = batch([4, 4], [0, 3])[1]
    weights = accumulation_token_weights(labels, 1)
    assert float(weights[0].sum()) == 0
    assert float(weights[1].sum()) == pytest.approx(0.5)  # its mean, over 2 micro-batches


@pytest.mark.parametrize(
    "rows,width,max_tokens,sizes",
    [
        (4, 256, 1024, [4]),
        (4, 384, 1024, [2, 2]),  # 2 rows fit: two even passes
        (
            4,
            320,
            1024,
            [2, 2],
        ),  # 3 would fit; two passes either way, the larger of them as small as it can be
        (4, 1024, 1024, [1, 1, 1, 1]),
        (4, 2048, 1024, [1, 1, 1, 1]),  # a row longer than the budget still gets a pass
        (3, 64, 64, [1, 1, 1]),
    ],
)
def test_split_rows(rows, width, max_tokens, sizes):
    passes = split_rows(rows, width, max_tokens)
    assert [p.stop - p.start for p in passes] == sizes
    assert passes[0].start == 0 and passes[-1].stop == rows
    assert all(a.stop == b.start for a, b in itertools.pairwise(passes))


def test_rows_of_slices_only_per_row_tensors():
    inputs = {
        "input_ids": torch.arange(12).view(4, 3),
        "labels": torch.zeros(4, 3),
        "scale": torch.tensor(2.0),
        "other": torch.zeros(3, 4),
        "flag": True,
    }
    part = rows_of(inputs, slice(1, 3), 4)
    assert part["input_ids"].tolist() == [[3, 4, 5], [6, 7, 8]] and part["labels"].shape == (2, 3)
    assert part["scale"] is inputs["scale"] and part["other"] is inputs["other"] and part["flag"] is True


def test_weighted_loss_is_the_models_own_outside_a_fused_step():
    logits, labels = batch([5, 4], [2, 2])
    loss = WeightedLoss(ForCausalLMLoss)
    torch.testing.assert_close(loss(logits, labels, VOCAB), ForCausalLMLoss(logits, labels, VOCAB))
    loss.weights = accumulation_token_weights(labels, 1)
    torch.testing.assert_close(loss(logits, labels, VOCAB), weighted_token_loss(logits, labels, loss.weights))
    assert loss.calls == 1


def test_trainer_batch_args():
    assert fused_batch_args(1, 4) == {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 1}
    assert fused_batch_args(2, 8) == {"per_device_train_batch_size": 16, "gradient_accumulation_steps": 1}


@pytest.mark.parametrize(
    "cfg,named",
    [
        ({"sample_packing": True}, "sample_packing: false"),
        ({"liger_fused_linear_cross_entropy": True}, "liger_fused_linear_cross_entropy: false"),
        (
            {"cut_cross_entropy": True, "chunked_cross_entropy": True},
            "cut_cross_entropy: false and chunked_cross_entropy",
        ),
        ({"rl": "dpo"}, "rl: dpo"),
        ({"reward_model": True}, "reward_model: True trains another loss"),
    ],
)
def test_configs_whose_math_fusing_would_change_are_refused(cfg, named):
    [problem] = FusedAccumulation().problems(cfg, Launch())
    assert named in problem


def test_the_v5_recipe_can_fuse(v5_recipe):
    assert FusedAccumulation().problems(v5_recipe, Launch()) == []


@pytest.fixture
def v5_recipe():
    import yaml
    from axolotl_launch import ROOT

    return yaml.safe_load((ROOT / "recipes" / "llama2-70b-v5.yml").read_text())


# --- through the real Axolotl CLI ---------------------------------------------------------------------------

STEPS = 8


@pytest.fixture(scope="module")
def fusion_runs(tiny_model, tmp_path_factory):
    """Unfused and fused runs of tiny-cpu.yml from one saved adapter (Axolotl does not seed the LoRA init, so
    two runs would otherwise start apart): v5-shaped rows of 16-256 tokens, 32 rows, 8 optimizer steps of
    4."""
    import sys

    from axolotl_launch import ROOT, launch_train
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sys.path.insert(0, str(ROOT / "bench" / "gpu"))
    from v5_shaped import make_rows

    work = tmp_path_factory.mktemp("fusion")
    data = write_jsonl(
        work / "rows.jsonl",
        make_rows(AutoTokenizer.from_pretrained(tiny_model), 4 * STEPS, scale=0.25, zipf=True),
    )
    adapters = {}
    for dropout in (0.0, 0.05):  # the dropout a loaded adapter trains with is its own config's
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_model)
        config = LoraConfig(
            r=4,
            lora_alpha=16,
            lora_dropout=dropout,
            target_modules=["o_proj", "down_proj"],
            # B not zero: A gets gradients too
            init_lora_weights=False,
            task_type="CAUSAL_LM",
        )
        adapters[dropout] = work / f"init-{dropout}"
        get_peft_model(model, config).save_pretrained(adapters[dropout])
    base = {"datasets": [{"path": str(data), "type": "axolotl_nextai.alpaca"}], "max_steps": STEPS}
    unfused = work / "unfused"
    runs = {
        "unfused": {"lora_model_dir": str(adapters[0.0]), "save_strategy": "steps", "save_steps": STEPS // 2},
        "fused": {"lora_model_dir": str(adapters[0.0]), "nextai_fuse_accumulation": True},
        # resumes the unfused run's checkpoint, fused, every window in one pass, with the speed levers of the
        # paper-exact fast run (matmuls kept from the forward, layer inputs offloaded and prefetched)
        "fused-resumed": {
            "lora_model_dir": str(adapters[0.0]),
            "nextai_fuse_accumulation": True,
            "nextai_fuse_accumulation_max_tokens": 4096,
            "nextai_saved_matmuls": ["gate_proj", "up_proj", "down_proj"],
            "activation_offloading": "hidden_states",
            "nextai_prefetch_offloaded_inputs": True,
            "resume_from_checkpoint": str(unfused / "out" / f"checkpoint-{STEPS // 2}"),
        },
        "unfused-dropout": {"lora_model_dir": str(adapters[0.05])},
        "fused-dropout": {"lora_model_dir": str(adapters[0.05]), "nextai_fuse_accumulation": True},
    }
    results = {}
    for name, extra in runs.items():
        folder = work / name
        folder.mkdir()
        result = launch_train(tiny_cpu_config(tiny_model, folder, **base, **extra), folder)
        assert result.returncode == 0, f"{name}: {result.stderr[-4000:]}"
        out = folder / "out"
        results[name] = {
            "report": json.loads((out / "nextai_report.json").read_text()),
            "adapter": load_file(out / "adapter_model.safetensors"),
            "log": result.stdout + result.stderr,
        }
    return results


def losses(run) -> dict:
    return {row["step"]: row["loss"] for row in run["report"]["history"]}


def max_weight_gap(a, b) -> float:
    return max(float((a["adapter"][key] - b["adapter"][key]).abs().max()) for key in a["adapter"])


@pytest.mark.slow
def test_fused_trains_the_same_rows_to_the_same_losses_and_adapter(fusion_runs):
    unfused, fused = fusion_runs["unfused"], fusion_runs["fused"]
    assert "rows drawn as one batch, trained in passes of at most 256 padded tokens" in fused["log"]
    for key in ("real_tokens", "trained_tokens"):  # the same rows, step by step
        assert [r[key] for r in fused["report"]["history"]] == [r[key] for r in unfused["report"]["history"]]
    passes = fused["report"]["history"][-1]["forward_passes"]
    assert unfused["report"]["history"][-1]["forward_passes"] == 4 * STEPS
    assert STEPS < passes < 4 * STEPS  # some windows in one pass, some split by the token budget
    assert losses(fused) == pytest.approx(losses(unfused), rel=1e-5)
    assert max_weight_gap(fused, unfused) < 1e-6
    assert fused["report"]["steps_per_epoch"] == unfused["report"]["steps_per_epoch"] == STEPS


@pytest.mark.slow
def test_a_fused_run_resumes_an_unfused_checkpoint_at_the_same_step(fusion_runs):
    """... with every window in one pass and the kept matmuls: the same rows and losses as unfused (and
    fused)."""
    unfused, resumed = fusion_runs["unfused"], fusion_runs["fused-resumed"]
    later = losses(resumed)
    assert sorted(later) == list(range(STEPS // 2 + 1, STEPS + 1))
    assert later == pytest.approx({step: losses(unfused)[step] for step in later}, rel=1e-5)
    assert max_weight_gap(resumed, unfused) < 1e-6
    tokens = {
        row["step"]: row["real_tokens"] - unfused["report"]["history"][STEPS // 2 - 1]["real_tokens"]
        for row in unfused["report"]["history"][STEPS // 2 :]
    }
    assert {row["step"]: row["real_tokens"] for row in resumed["report"]["history"]} == tokens
    assert "nextai_saved_matmuls: not recomputed in 4 layers: gate_proj, up_proj kept" in resumed["log"]
    assert "the first recomputed layer takes 2 kept outputs of 2 targeted" in resumed["log"]


@pytest.mark.slow
def test_with_dropout_fused_differs_from_unfused_only_as_much_as_dropout_itself(fusion_runs):
    """LoRA dropout draws its masks for the batch at once, so the runs part; by less than dropout moves a
    run."""
    unfused, fused = fusion_runs["unfused-dropout"], fusion_runs["fused-dropout"]
    yardstick = max_weight_gap(unfused, fusion_runs["unfused"])  # dropout 0.05 against 0, unfused
    assert 0 < max_weight_gap(fused, unfused) < 1.5 * yardstick
    steps = losses(unfused)
    loss_yardstick = max(abs(steps[s] - losses(fusion_runs["unfused"])[s]) for s in steps)
    assert max(abs(losses(fused)[s] - steps[s]) for s in steps) < 2 * loss_yardstick
