"""NextAIPlugin: thin glue from Axolotl's hooks to this package's checks, guards and run report.

A config error ends the training CLI with one line naming the config file and the key, not a traceback
(`report_config_errors_in_one_line`, installed when Axolotl imports the plugin).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from axolotl.integrations.base import BasePlugin, PluginManager
from axolotl.utils.logging import get_logger

from axolotl_nextai.checks.attention import apply_changes, flash_attn_installed, resolve_attention
from axolotl_nextai.checks.config_checks import (
    PREFIX,
    ConfigError,
    alpaca_row_problems,
    check_finite,
    missing_files,
    plugin_key_problems,
    plugin_problems,
    report_config_errors_in_one_line,
    value_problems,
)
from axolotl_nextai.checks.cuda_only import keys_to_disable
from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.checks.memory_budget import memory_problems
from axolotl_nextai.checks.multi_rank import fsdp_problems
from axolotl_nextai.checks.recipe_check import find_typos, read_recipe
from axolotl_nextai.checks.trained_tokens import check_labels
from axolotl_nextai.hook_boundary import guard_hooks, quiet_failed_plugin_imports
from axolotl_nextai.levers import LEVERS, Hook, at_hook
from axolotl_nextai.levers.contract import MISSING, lever_problems
from axolotl_nextai.levers.fused_accumulation import fused_batch_args, fuses, trainer_class
from axolotl_nextai.run.callbacks import (
    CompleteAdapterCallback,
    FreezeGarbageCollectorCallback,
    RunReportCallback,
    StopCallback,
    StopRecord,
    TimeBudgetCallback,
)
from axolotl_nextai.run.interrupt import stop_with_launcher
from axolotl_nextai.run.prepared_cache import content_digest, content_keyed_path, local_dataset_paths
from axolotl_nextai.run.ranks import StepAgreement, end_in_one_line_when_a_rank_is_lost, join_cpu_ranks
from axolotl_nextai.run.time_budget import launch_time
from data_builders.quiet import silence_known_noise

LOG = get_logger(__name__)
report_config_errors_in_one_line()
end_in_one_line_when_a_rank_is_lost()
quiet_failed_plugin_imports()
silence_known_noise()


def uses_plugin(cfg: Mapping) -> bool:
    """Entry-point discovery (Axolotl >= 0.21) fires every plugin for every config: act only when asked."""
    listed = any(str(name).startswith("axolotl_nextai") for name in cfg.get("plugins") or [])
    return listed or any(str(key).startswith(PREFIX) for key in cfg)


def config_problems(cfg: Mapping, launch: Launch) -> list[str]:
    """Everything the plugin can find wrong with a config before anything loads, all of it: keys and values,
    every lever's rules, what cannot fit the card, missing files and unreadable rows."""
    ours = plugin_key_problems(cfg)
    # Axolotl drops an unknown key without a word: `lora_alpah: 16` would train with the default alpha.
    problems = (
        ours + find_typos({k: v for k, v in cfg.items() if not k.startswith(PREFIX)}) + value_problems(cfg)
    )
    if not ours:  # the levers' rules read their keys as args.py types them
        problems += lever_problems(LEVERS, cfg, launch) + memory_problems(cfg, launch) + fsdp_problems(cfg)
    try:
        resolve_attention(cfg, flash_attn_installed(), cfg.get("nextai_require_flash_attention") is True)
    except ConfigError as err:
        problems.append(str(err))
    if cfg.get("nextai_check_datasets") is not False:
        problems += missing_files(cfg) + alpaca_row_problems(cfg)
    problems += plugin_problems(cfg, PluginManager.get_instance().plugins)
    if cfg.get("axolotl_config_path"):  # Axolotl's parse kept the last of a key given twice, silently
        try:
            read_recipe(cfg["axolotl_config_path"])
        except ConfigError as err:
            problems.append(str(err))
    return problems


def install_levers(cfg, hook: Hook, target) -> None:
    for lever in at_hook(cfg, hook):
        LOG.info(lever.install(cfg, target))


@guard_hooks
class NextAIPlugin(BasePlugin):
    """Checks the whole config before anything loads (keys, every lever's rules, memory, dataset files);
    adapts CUDA-only settings; keys prepared data by content; installs the levers switched on
    (`levers.LEVERS`) at their hooks; adds the run report, signal, time-budget and garbage-collector
    callbacks."""

    stop_callback: StopCallback | None = None  # set when training starts; finished after the final save

    def __init__(self):
        super().__init__()
        # what `register` changed in the config: key -> value before (MISSING: absent)
        self.cfg_before: dict = {}

    def get_input_args(self) -> str:
        return "axolotl_nextai.args.NextAIArgs"

    def register(self, cfg: dict) -> None:
        if not uses_plugin(cfg):
            return
        launch = Launch.here(cfg)
        problems = config_problems(cfg, launch)
        if problems:
            where = cfg.get("axolotl_config_path")
            raise ConfigError("; ".join([f"{where}: {problems[0]}" if where else problems[0], *problems[1:]]))
        if launch.architecture is None:
            LOG.warning(
                f"axolotl-nextai: base_model {cfg.get('base_model')!r} has no config.json on this machine "
                "and is not in axolotl_nextai/models/architectures.py: the memory checks are skipped"
            )
        stop_with_launcher()
        joined = join_cpu_ranks()
        if joined:
            LOG.info(joined)
        changes, warning = resolve_attention(
            cfg, flash_attn_installed(), cfg.get("nextai_require_flash_attention")
        )
        self.edit(cfg, changes)
        if warning:
            LOG.warning(warning)
        disabled = keys_to_disable(cfg, launch.cuda)
        if disabled:
            LOG.warning(
                f"axolotl-nextai: no CUDA device, so Axolotl's LoRA kernels are off: {', '.join(disabled)} "
                "set false (they need CUDA; see axolotl_nextai/checks/cuda_only.py)"
            )
            self.edit(cfg, dict.fromkeys(disabled, False))
        keyed = cfg.get("nextai_content_keyed_prepared_data") is not False
        digest = content_digest(local_dataset_paths(cfg)) if keyed else None
        if digest:
            self.edit(
                cfg, {"dataset_prepared_path": content_keyed_path(cfg.get("dataset_prepared_path"), digest)}
            )
            LOG.info(
                f"axolotl-nextai: prepared data keyed by dataset content: {cfg['dataset_prepared_path']}"
            )
        LOG.info("axolotl-nextai: plugin registered, nextai_ keys valid")

    def edit(self, cfg, changes: Mapping) -> None:
        """`apply_changes` to the raw config, remembering what was there for `on_config_validation_error`."""
        for key in changes:
            self.cfg_before.setdefault(key, cfg.get(key, MISSING))
        apply_changes(cfg, changes)

    def on_config_validation_error(self, cfg) -> None:
        """Axolotl rejected the config after `register`: give it back as it was written."""
        for key, before in self.cfg_before.items():
            if before is MISSING:
                cfg.pop(key, None)
            else:
                cfg[key] = before
        self.cfg_before.clear()

    def load_datasets(self, cfg, preprocess: bool = False):
        """Axolotl's own dataset loading, then the label check (checks/trained_tokens.py): before the model
        loads, which nothing after this hook and before it can see the rows."""
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

    def get_trainer_cls(self, cfg):
        return trainer_class(cfg) if uses_plugin(cfg) and fuses(cfg) else None

    def post_trainer_create(self, cfg, trainer) -> None:
        if uses_plugin(cfg):
            install_levers(cfg, "post_trainer_create", trainer)

    def pre_model_load(self, cfg) -> None:
        if uses_plugin(cfg):
            check_finite(cfg)
            install_levers(cfg, "pre_model_load", None)

    def post_model_build(self, cfg, model) -> None:
        if uses_plugin(cfg):
            install_levers(cfg, "post_model_build", model)

    def pre_lora_load(self, cfg, model) -> None:
        # Axolotl 0.19 seeds nothing before the adapter exists (the Trainer seeds later): LoRA's A matrices
        # were drawn differently in every process despite `seed:`. Same seed, same initial adapter.
        if uses_plugin(cfg) and cfg.seed is not None:
            torch.manual_seed(cfg.seed)

    def post_model_load(self, cfg, model) -> None:
        if uses_plugin(cfg):
            install_levers(cfg, "post_model_load", model)

    def add_callbacks_post_trainer(self, cfg, trainer) -> list:
        if not uses_plugin(cfg):
            return []
        stop, launched_at = StopRecord(), launch_time()
        # the process group's timeout (Axolotl's ddp_timeout)
        agreement = StepAgreement(trainer.args.ddp_timeout)
        callbacks = [CompleteAdapterCallback()]
        if cfg.nextai_report:
            run_info = {
                "model": cfg.base_model,
                "lora_r": cfg.lora_r,
                "lora_target_modules": cfg.lora_target_modules,
            }
            callbacks.append(
                RunReportCallback(
                    cfg.output_dir,
                    cfg.nextai_report_every_steps,
                    cfg.nextai_peak_tflops,
                    run_info,
                    stop,
                    launched_at,
                    agreement,
                )
            )
        if cfg.nextai_gc_freeze:
            callbacks.append(FreezeGarbageCollectorCallback())
        if cfg.nextai_time_budget_hours is not None:
            callbacks.append(
                TimeBudgetCallback(
                    cfg.nextai_time_budget_hours,
                    cfg.nextai_time_budget_margin_minutes,
                    cfg.nextai_time_budget_warmup_steps,
                    cfg.nextai_time_budget_action,
                    stop,
                    launched_at,
                )
            )
        if cfg.nextai_checkpoint_on_signal or cfg.nextai_time_budget_hours is not None:
            # last: it sees every callback's save request of the step, and agrees the stop with the other
            # ranks
            self.stop_callback = StopCallback(stop, agreement, catch_signals=cfg.nextai_checkpoint_on_signal)
            callbacks.append(self.stop_callback)
        return callbacks

    def post_train_unload(self, cfg) -> None:
        """The final adapter is saved: a second signal held during the save is delivered now."""
        if self.stop_callback is not None:
            self.stop_callback.finish()
