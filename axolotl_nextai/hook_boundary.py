"""The training CLI's error boundary for the plugin's hooks: an exception no check of ours caught becomes one
line naming the hook and the config file, plus how to see the traceback (`NEXTAI_DEBUG=1`, as for every
command: data_builders/boundary.py). `ConfigError`s pass through as they are: already one line.

Under `accelerate launch`, the launcher adds its own `CalledProcessError` traceback after a failed trainer;
`accelerate launch -q` (one process) exits 1 without it, so our line is the last one printed. With several
processes accelerate hands the ranks to torch's elastic agent, which prints its failure summary whatever the
flags (README: "When a run fails").
"""

from __future__ import annotations

import functools
import inspect

from axolotl.integrations.base import BasePlugin, PluginManager, load_plugin
from axolotl.utils.logging import get_logger

from axolotl_nextai.checks.config_checks import ConfigError, HookError
from data_builders.boundary import debugging, how_to_debug
from data_builders.errors import first_line

LOG = get_logger(__name__)
HOOKS = frozenset(
    name for name, _ in inspect.getmembers(BasePlugin, inspect.isfunction) if not name.startswith("_")
)


def config_path(args: tuple) -> str:
    cfg = args[0] if args else None
    path = cfg.get("axolotl_config_path") if hasattr(cfg, "get") else None
    return f" (config {path})" if path else ""


def guard(name: str, method):
    @functools.wraps(method)
    def hook(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except ConfigError:
            raise
        except Exception as err:
            if debugging():
                raise
            raise HookError(
                f"axolotl-nextai {name}{config_path(args)}: unexpected {type(err).__name__}: "
                f"{first_line(err)} ({how_to_debug()}, and please report it)"
            ) from err

    return hook


def guard_hooks(cls: type[BasePlugin]) -> type[BasePlugin]:
    """`cls` with every Axolotl hook it defines behind the boundary (a class decorator)."""
    for name in HOOKS & set(vars(cls)):
        setattr(cls, name, guard(name, vars(cls)[name]))
    return cls


def quiet_failed_plugin_imports() -> None:
    """PATCH (Axolotl 0.19-0.21 `PluginManager.register`): a `plugins:` entry that does not import is logged
    in one line instead of a traceback; the plugin's `register` then refuses the config (`plugin_problems`),
    where Axolotl would train on without it. Installed once, when Axolotl imports this plugin, so it covers
    the entries listed after ours; `PluginManager.register.nextai_original` is Axolotl's own, to undo it. Off
    under `NEXTAI_DEBUG=1`."""
    if hasattr(PluginManager.register, "nextai_original"):
        return
    original = PluginManager.register

    def register(self, plugin_name: str):
        if debugging():
            return original(self, plugin_name)
        try:
            self.plugins[plugin_name] = load_plugin(plugin_name)
        except ImportError as exc:
            LOG.error(f"plugin {plugin_name} did not import ({type(exc).__name__}: {first_line(exc)})")
        return None

    register.nextai_original = original
    PluginManager.register = register
