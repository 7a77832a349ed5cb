"""What every `nextai_` lever is: a key, a hook, its config rules, an install that says what it did, an undo.

A `Protocol` (as torchtune's recipe interfaces), not a base class: a lever shares no code by inheritance. The
plugin loops over the table in `levers/__init__.py`: in `register` over every lever's `problems` (all of them
reported together, before anything loads), at each hook over the levers switched on there. A lever not yet
tested with several processes (`distributed = False`) is refused under a world size above 1 or FSDP.

A patch is marked on the object it changes (`patch`), as accelerate keeps `_old_forward` on a hooked module:
the lever's key and what was there before. A second install replaces the first (every `install` undoes its own
patches first, so nothing is wrapped twice), and `unpatch` / `uninstall` put back what was there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from axolotl_nextai.checks.launch import Launch, several_processes

Hook = Literal["pre_model_load", "post_model_build", "post_model_load", "post_trainer_create"]
PATCHES = "_nextai_patches"  # on a patched object: {attribute: (lever key, what was there before or MISSING)}
MISSING = object()  # the attribute came from the class: restoring it means deleting the instance's


class Lever(Protocol):
    """One `nextai_` lever. `install` gets the hook's object: None before the model loads (a process-wide
    setting), the model at `post_model_build` and `post_model_load`, the Trainer at `post_trainer_create`."""

    key: str  # the config key that switches it on (any value but null / false / [])
    hook: Hook  # the Axolotl hook it installs at
    distributed: bool  # tested with several processes / FSDP2; refused there otherwise

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        """Every reason this config cannot use the lever, one line each naming the key(s) and the fix."""
        ...

    def install(self, cfg: Mapping, target: Any) -> str:
        """Switch the lever on (replacing an earlier install); returns the log line saying what it did."""
        ...

    def uninstall(self, target: Any) -> None:
        """Put back what `install` changed; nothing to do when it is not installed."""
        ...


def switched_on(cfg: Mapping, lever: Lever) -> bool:
    return cfg.get(lever.key) not in (None, False, [])


def lever_problems(levers: tuple[Lever, ...], cfg: Mapping, launch: Launch) -> list[str]:
    """The problems of every lever the config switches on, its refusal under several processes included."""
    problems = []
    for lever in levers:
        if not switched_on(cfg, lever):
            continue
        several = several_processes(cfg, launch)
        if several and not lever.distributed:
            problems.append(
                f"`{lever.key}` is not tested with {several} yet: remove it, or train in one "
                "process without FSDP"
            )
        problems += lever.problems(cfg, launch)
    return problems


def patch(obj: Any, name: str, new: Any, key: str) -> None:
    """Set `obj.<name>` to `new`, marked as the lever `key`'s; the first patch remembers what was there.
    Another lever's patch of the same attribute is an error: undoing one would silently drop the other."""
    patches = vars(obj).setdefault(PATCHES, {})
    owner = patches.get(name)
    if owner is not None and owner[0] != key:
        raise RuntimeError(f"{key}: {type(obj).__name__}.{name} is already patched by {owner[0]}")
    if owner is None:
        patches[name] = (key, vars(obj).get(name, MISSING))
    setattr(obj, name, new)


def patched(obj: Any, key: str) -> list[str]:
    """The attributes of `obj` that lever `key` has patched."""
    return [name for name, (owner, _) in vars(obj).get(PATCHES, {}).items() if owner == key]


def unpatch(obj: Any, key: str) -> int:
    """Put back every attribute of `obj` that lever `key` patched; returns how many."""
    patches = vars(obj).get(PATCHES, {})
    names = patched(obj, key)
    for name in names:
        _, before = patches.pop(name)
        if before is MISSING:
            delattr(obj, name)
        else:
            setattr(obj, name, before)
    if not patches:
        vars(obj).pop(PATCHES, None)
    return len(names)


def unpatch_modules(model, key: str) -> int:
    """`unpatch` on `model` and each of its submodules; returns how many attributes were put back."""
    return sum(unpatch(module, key) for module in model.modules())
