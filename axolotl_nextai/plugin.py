"""NextAIPlugin: thin glue from Axolotl's hooks to this package's checks, guards and run report.

A config error ends the training CLI with one line naming the config file and the key, not a traceback
(`report_config_errors_in_one_line`, installed when Axolotl imports the plugin).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from axolotl.integrations.base import BasePlugin, PluginManager
from axolotl.utils.logging import get_logger

from axolotl_nextai.boundary import guard_hooks, quiet_failed_plugin_imports
from axolotl_nextai.checks.attention import apply_changes, flash_attn_installed, resolve_attention
from axolotl_nextai.checks.config_checks import (
    PREFIX,
    ConfigError,
    check_alpaca_rows,
    check_dataset_files,
    check_finite,
    plugin_problems,
    report_config_errors_in_one_line,
    validate_plugin_keys,
    value_problems,
)
from axolotl_nextai.checks.cuda_only import keys_to_disable
from axolotl_nextai.checks.memory_budget import (
    architecture,
    budget,
    check_eager_attention,
    check_kept_outputs_fit_host,
    host_memory_available,
)
from axolotl_nextai.checks.recipe_check import find_typos, read_recipe
from axolotl_nextai.checks.trained_tokens import check_labels
from axolotl_nextai.levers.chunked_dequant import install as install_chunked_dequant
from axolotl_nextai.levers.cpu_embeddings import move_embeddings_to_cpu
from axolotl_nextai.levers.fused_accumulation import fuse_accumulation, fused_batch_args, fusion_problem
from axolotl_nextai.levers.saved_matmuls import install as install_saved_matmuls
from axolotl_nextai.levers.saved_matmuls import saved_matmuls_problems
from axolotl_nextai.levers.tiled_mlp import tile_model
from axolotl_nextai.run.callbacks import (
    CompleteAdapterCallback,
    FreezeGarbageCollectorCallback,
    RunReportCallback,
    SignalStopCallback,
    StopRecord,
    TimeBudgetCallback,
)
from axolotl_nextai.run.interrupt import stop_with_launcher
from axolotl_nextai.run.memory import apply_memory_cap, device_memory_bytes, use_expandable_segments
from axolotl_nextai.run.prepared_cache import content_digest, content_keyed_path, local_dataset_paths
from axolotl_nextai.run.time_budget import launch_time
from data_builders.quiet import silence_known_noise

LOG = get_logger(__name__)
report_config_errors_in_one_line()
quiet_failed_plugin_imports()
silence_known_noise()


def uses_plugin(cfg: Mapping) -> bool:
    """Entry-point discovery (Axolotl >= 0.21) fires every plugin for every config: act only when asked."""
    listed = any(str(name).startswith("axolotl_nextai") for name in cfg.get("plugins") or [])
    return listed or any(str(key).startswith(PREFIX) for key in cfg)


def fuses(cfg) -> bool:
    """`nextai_fuse_accumulation` is on and there is accumulation to fuse."""
    return bool(cfg.get("nextai_fuse_accumulation")) and (cfg.get("gradient_accumulation_steps") or 1) > 1


@guard_hooks
class NextAIPlugin(BasePlugin):
    """Validates `nextai_*` keys and dataset files before anything loads; adapts CUDA-only settings; keys
    prepared data by content; caps GPU memory; adds the run report, signal, time-budget and garbage-collector callbacks."""

    signal_stop: SignalStopCallback | None = None  # set when training starts; finished after the final save

    def get_input_args(self) -> str:
        return "axolotl_nextai.args.NextAIArgs"

    def register(self, cfg: dict) -> None:
        if not uses_plugin(cfg):
            return
        try:
            if cfg.get("axolotl_config_path"):  # Axolotl's parse kept the last of a key given twice, silently
                read_recipe(cfg["axolotl_config_path"])
            args = validate_plugin_keys(cfg)
            # Axolotl drops an unknown key without a word: `lora_alpah: 16` would train with the default alpha.
            problems = find_typos(cfg) + value_problems(cfg)
            fusion = fusion_problem(cfg) if args.nextai_fuse_accumulation else None
            if fusion:  # config only: before the dataset checks, which read files
                problems.append(fusion)
            problems += saved_matmuls_problems(cfg, torch.cuda.is_available())
            problems += plugin_problems(cfg, PluginManager.get_instance().plugins)
            if problems:
                raise ConfigError("; ".join(problems))
            if args.nextai_check_datasets:
                check_dataset_files(cfg)
                check_alpaca_rows(cfg)
            if cfg.get("attn_implementation") == "eager":  # its score tensors may not fit: say so before loading
                arch = architecture(str(cfg.get("base_model", "")))
                limit = budget(args.nextai_gpu_memory_cap_gb, device_memory_bytes())
                if arch and limit:
                    check_eager_attention(cfg, arch, limit)
            available = host_memory_available() if args.nextai_saved_matmuls else None
            if available is not None:  # the kept outputs fill host memory: say so before loading
                arch = architecture(str(cfg.get("base_model", "")))
                if arch:
                    check_kept_outputs_fit_host(cfg, arch, available)
        except ConfigError as err:
            where = cfg.get("axolotl_config_path")
            raise ConfigError(f"{where}: {err}" if where else str(err)) from None
        stop_with_launcher()
        changes, warning = resolve_attention(cfg, flash_attn_installed(), args.nextai_require_flash_attention)
        apply_changes(cfg, changes)
        if warning:
            LOG.warning(warning)
        disabled = keys_to_disable(cfg, torch.cuda.is_available())
        if disabled:
            LOG.warning(f"axolotl-nextai: no CUDA device, so Axolotl's LoRA kernels are off: {', '.join(disabled)} "
                        "set false (they need CUDA; see axolotl_nextai/checks/cuda_only.py)")
            cfg.update(dict.fromkeys(disabled, False))
        digest = content_digest(local_dataset_paths(cfg)) if args.nextai_content_keyed_prepared_data else None
        if digest:
            cfg["dataset_prepared_path"] = content_keyed_path(cfg.get("dataset_prepared_path"), digest)
            LOG.info(f"axolotl-nextai: prepared data keyed by dataset content: {cfg['dataset_prepared_path']}")
        LOG.info("axolotl-nextai: plugin registered, nextai_ keys valid")

    def load_datasets(self, cfg, preprocess: bool = False):
        """Axolotl's own dataset loading, then the label check (checks/trained_tokens.py): before the model loads,
        which nothing after this hook and before it can see the rows."""
        if not uses_plugin(cfg):
            return None
        check_finite(cfg)  # validated by now: the string "nan" Axolotl read as a float
        if preprocess or cfg.rl:
            return None
        from axolotl.common.datasets import load_datasets

        meta = load_datasets(cfg=cfg)
        warning = check_labels(meta.train_dataset, cfg.sequence_len, cfg.axolotl_config_path)
        if warning:
            LOG.warning(f"axolotl-nextai: {warning}")
        return meta

    def get_training_args(self, cfg) -> dict | None:
        if uses_plugin(cfg) and fuses(cfg):
            return fused_batch_args(cfg.micro_batch_size, cfg.gradient_accumulation_steps)
        return None

    def post_trainer_create(self, cfg, trainer) -> None:
        if not uses_plugin(cfg) or not cfg.nextai_fuse_accumulation:
            return
        if not fuses(cfg):
            LOG.warning("axolotl-nextai: nextai_fuse_accumulation: gradient_accumulation_steps is 1, nothing to fuse")
            return
        max_tokens = cfg.nextai_fuse_accumulation_max_tokens or cfg.sequence_len
        fuse_accumulation(trainer, cfg.micro_batch_size, max_tokens)
        LOG.info(f"axolotl-nextai: nextai_fuse_accumulation: each optimizer step's {cfg.micro_batch_size} x "
                 f"{cfg.gradient_accumulation_steps} rows drawn as one batch, trained in passes of at most "
                 f"{max_tokens} padded tokens, each micro-batch's loss weighted as unfused")

    def pre_model_load(self, cfg) -> None:
        if not uses_plugin(cfg):
            return
        check_finite(cfg)
        if cfg.nextai_gpu_memory_cap_gb is not None:
            LOG.info(apply_memory_cap(cfg.nextai_gpu_memory_cap_gb, cfg.local_rank or 0))
        if cfg.nextai_expandable_segments:
            LOG.info(use_expandable_segments())
        if cfg.nextai_dequant_chunk_mib is not None:
            LOG.info(install_chunked_dequant(cfg.nextai_dequant_chunk_mib))

    def post_model_build(self, cfg, model) -> None:
        # where Axolotl's selective_checkpointing hooks in: before the loader, PEFT's k-bit preparation and the
        # Trainer enable gradient checkpointing; PEFT's LoRA wrappers keep these modules as their base_layer
        if uses_plugin(cfg) and cfg.nextai_saved_matmuls:
            LOG.info(install_saved_matmuls(model, cfg.nextai_saved_matmuls))

    def pre_lora_load(self, cfg, model) -> None:
        # Axolotl 0.19 seeds nothing before the adapter exists (the Trainer seeds later): LoRA's A matrices were
        # drawn differently in every process despite `seed:`. Same seed, same initial adapter.
        if uses_plugin(cfg) and cfg.seed is not None:
            torch.manual_seed(cfg.seed)

    def post_model_load(self, cfg, model) -> None:
        if not uses_plugin(cfg):
            return
        if cfg.nextai_embeddings_on_cpu:
            moved = move_embeddings_to_cpu(model)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # the freed block goes back to the card, not to the allocator's cache
            LOG.info(f"nextai_embeddings_on_cpu: input embeddings ({moved / 2**20:,.0f} MiB) looked up on the CPU")
        if cfg.nextai_tiled_mlp_shards is not None:
            count = tile_model(model, cfg.nextai_tiled_mlp_shards)
            LOG.info(f"nextai_tiled_mlp_shards: {count} MLPs run in {cfg.nextai_tiled_mlp_shards} shards in training")

    def add_callbacks_post_trainer(self, cfg, trainer) -> list:
        if not uses_plugin(cfg):
            return []
        stop, launched_at = StopRecord(), launch_time()
        callbacks = [CompleteAdapterCallback()]
        if cfg.nextai_report:
            run_info = {"model": cfg.base_model, "lora_r": cfg.lora_r, "lora_target_modules": cfg.lora_target_modules}
            callbacks.append(RunReportCallback(cfg.output_dir, cfg.nextai_report_every_steps, cfg.nextai_peak_tflops,
                                               run_info, stop, launched_at))
        if cfg.nextai_gc_freeze:
            callbacks.append(FreezeGarbageCollectorCallback())
        if cfg.nextai_time_budget_hours is not None:
            callbacks.append(TimeBudgetCallback(cfg.nextai_time_budget_hours, cfg.nextai_time_budget_margin_minutes,
                                                cfg.nextai_time_budget_warmup_steps, cfg.nextai_time_budget_action,
                                                stop, launched_at))
        if cfg.nextai_checkpoint_on_signal:  # last: it sees every callback's save request of the step
            self.signal_stop = SignalStopCallback(stop)
            callbacks.append(self.signal_stop)
        return callbacks

    def post_train_unload(self, cfg) -> None:
        """The final adapter is saved: a second signal held during the save is delivered now."""
        if self.signal_stop is not None:
            self.signal_stop.finish()
