"""NextAIPlugin: thin glue from Axolotl's hooks to this package's checks and run report."""

from __future__ import annotations

from collections.abc import Mapping

from axolotl.integrations.base import BasePlugin
from axolotl.utils.logging import get_logger

from axolotl_nextai.attention import apply_changes, flash_attn_installed, resolve_attention
from axolotl_nextai.config_checks import PREFIX, check_dataset_files, validate_plugin_keys
from axolotl_nextai.callbacks import RunReportCallback

LOG = get_logger(__name__)
PLUGIN_NAME = "axolotl_nextai.NextAIPlugin"


def uses_plugin(cfg: Mapping) -> bool:
    """Entry-point discovery (Axolotl >= 0.21) fires every plugin for every config: act only when asked."""
    listed = any(str(name).startswith("axolotl_nextai") for name in cfg.get("plugins") or [])
    return listed or any(str(key).startswith(PREFIX) for key in cfg)


class NextAIPlugin(BasePlugin):
    """Validates `nextai_*` keys and dataset files before anything loads; writes the run report."""

    def get_input_args(self) -> str:
        return "axolotl_nextai.args.NextAIArgs"

    def register(self, cfg: dict) -> None:
        if not uses_plugin(cfg):
            return
        args = validate_plugin_keys(cfg)
        if args.nextai_check_datasets:
            check_dataset_files(cfg)
        changes, warning = resolve_attention(cfg, flash_attn_installed(), args.nextai_require_flash_attention)
        apply_changes(cfg, changes)
        if warning:
            LOG.warning(warning)
        LOG.info("axolotl-nextai: plugin registered, nextai_ keys valid")

    def add_callbacks_post_trainer(self, cfg, trainer) -> list:
        if not uses_plugin(cfg) or not cfg.nextai_report:
            return []
        return [RunReportCallback(cfg.output_dir)]
