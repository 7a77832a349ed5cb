"""Train a run's config without Axolotl: stock transformers + PEFT, or Unsloth, for rows beside the Axolotl
runs.

    python3 bench/gpu/standalone.py --engine hf|unsloth CFG.yml

CFG.yml is what `bench/gpu/run_config.py` writes for an Axolotl run (so the same checkpoint, data, LoRA,
batch, optimizer, schedule, steps, memory cap and output folder); this script reads those keys and trains them
with the Hugging Face Trainer, rows tokenized by the recipe's own Alpaca strategy, `group_by_length` and
Axolotl's padding to a multiple of 64, and the plugin's run-report and garbage-collector callbacks, so
`nextai_report.json` is counted the same way. A config with `sample_packing` trains as each engine's users
pack: TRL's `SFTTrainer` with `packing` (best-fit decreasing into `sequence_len`-token packs, padding-free:
the packs of a micro-batch flattened into one row whose `position_ids` restart at each row, so that no row
attends to another), and for `hf` TRL's `activation_offloading` where the config offloads (the layer inputs
checkpointing keeps go to the CPU). What differs is only the model underneath:

- `hf`: `from_pretrained` of the NF4 checkpoint with the config's attention (SDPA where it asks for
  FlashAttention-2, absent on the GPU machine), peft's `prepare_model_for_kbit_training` with norms,
  embeddings and lm_head cast back to bf16 (what Axolotl does), LoRA by `get_peft_model`, checkpointing with
  `use_reentrant: True` (docs/gpu-memory.md: the stock baseline; packed: non-reentrant, which TRL's offloading
  needs);
- `unsloth`: `FastLanguageModel.from_pretrained` and `get_peft_model` with
  `use_gradient_checkpointing="unsloth"`, what Unsloth's documentation shows for QLoRA.

The trainer normalises the loss its own way (token-weighted over the accumulation window): this is a speed
comparison, not a loss one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PAD_MULTIPLE = 64  # Axolotl's collator pads every batch to a multiple of 64 (pad_to_sequence_len unset)
PROFILE_PLUGIN = "bench.gpu.step_profile.StepProfilePlugin"


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tokenized(rows: list[dict], tokenizer, cfg: dict) -> list[dict]:
    """The rows as the recipe's `type: axolotl_nextai.alpaca` tokenizes them."""
    from axolotl_nextai.alpaca import tokenize_example

    return [
        tokenize_example(
            tokenizer,
            row["instruction"],
            row.get("input") or "",
            row["output"],
            cfg["sequence_len"],
            cfg.get("train_on_inputs", False),
        )
        for row in rows
    ]


def sampling_strategy(cfg: dict) -> str:
    """The Trainer's row order for the Axolotl keys: file order (`curriculum_sampling`), grouped, or
    random."""
    if cfg.get("curriculum_sampling"):
        return "sequential"
    return "group_by_length" if cfg.get("group_by_length") else "random"


def attention(cfg: dict) -> str:
    """The config's attention where transformers has it without extra packages, else SDPA."""
    wanted = cfg.get("attn_implementation")
    return wanted if wanted in ("sdpa", "flex_attention", "eager") else "sdpa"


def checkpointing_kwargs(cfg: dict) -> dict:
    """Reentrant for unpacked rows (the stock baseline of docs/gpu-memory.md); TRL's offloading needs
    non-reentrant."""
    return {"use_reentrant": not cfg.get("sample_packing")}


def load_hf(cfg: dict):
    """Stock transformers + peft QLoRA, bf16 norms/embeddings/lm_head as Axolotl leaves them."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    cuda = torch.cuda.is_available()
    # on a CPU, bf16 matmuls run in software: there the 4-bit layers compute in fp32, as Axolotl's do with
    # bf16 off
    cpu_compute = (
        {}
        if cuda
        else {
            "quantization_config": BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.float32,
            )
        }
    )
    model = AutoModelForCausalLM.from_pretrained(
        cfg["base_model"],
        dtype=torch.bfloat16 if cuda else torch.float32,
        attn_implementation=attention(cfg),
        device_map={"": 0} if cuda else None,
        **cpu_compute,
    )
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs=checkpointing_kwargs(cfg)
    )
    if cuda:
        for name, module in model.named_modules():
            if "norm" in name or name.endswith(("embed_tokens", "lm_head")):
                module.to(torch.bfloat16)
    lora = LoraConfig(
        r=cfg["lora_r"],
        lora_alpha=cfg["lora_alpha"],
        lora_dropout=cfg["lora_dropout"],
        target_modules=cfg["lora_target_modules"],
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora), AutoTokenizer.from_pretrained(cfg["base_model"])


def load_unsloth(cfg: dict):
    """Unsloth's documented QLoRA path."""
    import torch
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=cfg["base_model"],
        max_seq_length=cfg["sequence_len"],
        dtype=torch.bfloat16 if torch.cuda.is_available() else None,
        load_in_4bit=True,
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=cfg["lora_r"],
        lora_alpha=cfg["lora_alpha"],
        lora_dropout=cfg["lora_dropout"],
        target_modules=cfg["lora_target_modules"],
        bias="none",
        use_gradient_checkpointing="unsloth",
        random_state=cfg.get("seed", 42),
    )
    return model, tokenizer


def train(engine: str, cfg: dict) -> dict:
    """Train `cfg` with `engine`; returns the run report the plugin's callback wrote."""
    if engine == "unsloth":
        import unsloth  # noqa: F401  (first: it patches transformers, peft and trl as they load)
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from axolotl_nextai.levers.gpu_memory_cap import GpuMemoryCap
    from axolotl_nextai.run.callbacks import FreezeGarbageCollectorCallback, RunReportCallback, StopRecord
    from axolotl_nextai.run.report import REPORT_NAME
    from axolotl_nextai.run.time_budget import launch_time

    cuda = torch.cuda.is_available()
    if cuda and cfg.get("nextai_gpu_memory_cap_gb"):
        print(GpuMemoryCap().install({"nextai_gpu_memory_cap_gb": cfg["nextai_gpu_memory_cap_gb"]}))
    model, tokenizer = (load_unsloth if engine == "unsloth" else load_hf)(cfg)
    print(
        json.dumps(
            {"attn_implementation": getattr(model.config, "_attn_implementation", None), "engine": engine}
        )
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = tokenized(read_rows(Path(cfg["datasets"][0]["path"])), tokenizer, cfg)
    common = {  # the arguments both trainers take
        "output_dir": cfg["output_dir"],
        "per_device_train_batch_size": cfg["micro_batch_size"],
        "gradient_accumulation_steps": cfg["gradient_accumulation_steps"],
        "learning_rate": cfg["learning_rate"],
        "lr_scheduler_type": cfg["lr_scheduler"],
        "warmup_steps": cfg["warmup_steps"],
        "weight_decay": cfg["weight_decay"],
        "optim": cfg["optimizer"],
        "bf16": cuda,
        "max_steps": cfg["max_steps"],
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "seed": cfg.get("seed", 42),
        # Unsloth checkpoints through its own wrapper (set in get_peft_model)
        "gradient_checkpointing": engine == "hf",
        "gradient_checkpointing_kwargs": checkpointing_kwargs(cfg),
    }
    report = RunReportCallback(
        cfg["output_dir"],
        cfg.get("nextai_report_every_steps", 10),
        cfg.get("nextai_peak_tflops", 312.0),
        {
            "model": cfg["base_model"],
            "lora_r": cfg["lora_r"],
            "lora_target_modules": cfg["lora_target_modules"],
            "engine": engine,
        },
        StopRecord(),
        launch_time(),
    )
    callbacks = [report, FreezeGarbageCollectorCallback()]
    if cfg.get("sample_packing"):
        from trl import SFTConfig, SFTTrainer

        # TRL's needs an accelerator
        offload = engine == "hf" and bool(cfg.get("activation_offloading")) and cuda
        args = SFTConfig(
            **common,
            max_length=cfg["sequence_len"],
            packing=True,
            packing_strategy="bfd",
            padding_free=True,
            activation_offloading=offload,
        )
        data = Dataset.from_list([{"input_ids": row["input_ids"], "labels": row["labels"]} for row in rows])
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=callbacks
        )
    else:
        args = TrainingArguments(
            **common, remove_unused_columns=False, train_sampling_strategy=sampling_strategy(cfg)
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, pad_to_multiple_of=PAD_MULTIPLE),
            callbacks=callbacks,
        )
    if PROFILE_PLUGIN in (cfg.get("plugins") or []):  # as the Axolotl runs that list it
        from bench.gpu.step_profile import profile_callback

        trainer.add_callback(profile_callback(trainer))
    trainer.train()
    return json.loads((Path(cfg["output_dir"]) / REPORT_NAME).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["hf", "unsloth"], required=True)
    parser.add_argument("config", type=Path, help="a run's config, as bench/gpu/run_config.py writes it")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    report = train(args.engine, yaml.safe_load(args.config.read_text()))
    print(
        f"{args.engine}: {report['global_step']} steps, {report['tokens_per_s'] or 0:,.1f} real tok/s, "
        f"peak allocated {report['peak_memory_allocated_gib']} GiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
