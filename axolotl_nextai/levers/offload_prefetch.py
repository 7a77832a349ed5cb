"""Axolotl's offloaded layer inputs brought back one layer ahead in backward (`nextai_prefetch_offloaded_inputs`).

With `activation_offloading: hidden_states` and non-reentrant checkpointing (its default), Axolotl 0.19
(`CheckpointHiddenStatesOffload`) copies each checkpointed layer's input to pinned CPU memory in the forward and
copies it back when backward first needs it:
the layer's recompute starts only after that copy, so the GPU waits for it once a layer. Llama-2-70B at 4,096
tokens a micro-step: 64 MiB a layer, ~1.2 ms at ~55 GB/s, 80 times a micro-step (~0.1 s, the 3 % the fast recipe's
GPU idled with flex attention, bench/results/gpu70b-fast-2026-12-01.md). Here restoring a layer's input also starts
the copy of the next one backward will ask for (the next lower id still on the CPU), on Axolotl's own copy
stream, so it arrives while this layer's recompute and backward run; one more layer input is on the GPU at a time.

The values are the same tensors: only when the copy starts changes. A patch into Axolotl: installed once,
marked on the method (`__nextai_patch__`), undone by `uninstall`.
"""

from __future__ import annotations

from collections.abc import Mapping

KEY = "nextai_prefetch_offloaded_inputs"
MARK = "__nextai_patch__"


def prefetch_problem(cfg: Mapping) -> str | None:
    """Why the key cannot apply to this config, or None."""
    if not cfg.get(KEY):
        return None
    if cfg.get("activation_offloading") != "hidden_states":
        return (f"`{KEY}` prefetches the layer inputs that activation_offloading: hidden_states puts on the CPU: "
                f"set activation_offloading: hidden_states (got {cfg.get('activation_offloading')!r}) or remove the key")
    if (cfg.get("gradient_checkpointing_kwargs") or {}).get("use_reentrant"):
        return (f"`{KEY}` serves the non-reentrant offloader (hidden_states' default); with use_reentrant: true "
                "Axolotl's own offloading checkpoint already prefetches: remove the key")
    return None


def next_to_restore(on_cpu: Mapping[int, object], on_gpu: Mapping[int, object], prefetched: Mapping[int, object],
                    restored: int) -> int | None:
    """The id backward restores after `restored`: the highest lower id still only on the CPU (ids count up in
    the forward; the forward's last few inputs are still on the GPU, in `on_gpu`)."""
    waiting = [tensor_id for tensor_id in on_cpu
               if tensor_id < restored and tensor_id not in on_gpu and tensor_id not in prefetched]
    return max(waiting, default=None)


def copy_back(manager, tensor_id: int):
    """Start the copy of one offloaded input to the GPU on the manager's copy stream, as Axolotl restores it:
    (the GPU tensor, the copy's event)."""
    import torch

    cpu_tensor, device, storage_offset, shape, stride, _ = manager._tracker[tensor_id]
    with manager._stream_context(manager.s1):
        gpu_tensor = cpu_tensor.to(device, non_blocking=True)
        if gpu_tensor.storage_offset() != storage_offset or gpu_tensor.stride() != stride:
            gpu_tensor = torch.as_strided(gpu_tensor, size=shape, stride=stride, storage_offset=storage_offset)
    return gpu_tensor, manager.s1.record_event()


def install() -> str:
    """Patch `CheckpointHiddenStatesOffload` (idempotent). Returns what was done, for the log."""
    from axolotl.monkeypatch.checkpoint_activation_offload import CheckpointHiddenStatesOffload as Offload

    if getattr(Offload._restore_tensor, MARK, None):
        return f"{KEY}: already installed"
    restore, clear = Offload._restore_tensor, Offload._sync_and_clear

    def restore_and_prefetch(self, tensor_id):
        prefetched = self.__dict__.setdefault("nextai_prefetched", {})
        if tensor_id in prefetched:
            gpu_tensor, event = prefetched.pop(tensor_id)
            cpu_tensor, *_, buffer_key = self._tracker.pop(tensor_id)
            self.s0.wait_event(event)
            gpu_tensor.record_stream(self.s0)
            self._pending_cpu_buffers.append((buffer_key, cpu_tensor, event))  # reused once the copy is done
            self.stats.restored_tensors += 1
            self.stats.restored_bytes += self._num_bytes(gpu_tensor)
        else:
            gpu_tensor = restore(self, tensor_id)
        following = next_to_restore(self._tracker, self._fwd_stash, prefetched, tensor_id) if self.use_streams else None
        if following is not None:
            prefetched[following] = copy_back(self, following)
        return gpu_tensor

    def sync_and_clear(self):
        clear(self)  # synchronizes both streams first: the prefetched copies are done
        self.__dict__.pop("nextai_prefetched", None)

    for patched, original in ((restore_and_prefetch, restore), (sync_and_clear, clear)):
        patched.__wrapped__ = original
        setattr(patched, MARK, KEY)
    Offload._restore_tensor, Offload._sync_and_clear = restore_and_prefetch, sync_and_clear
    return (f"{KEY}: Axolotl's offloaded layer inputs are copied back one layer ahead in backward "
            "(axolotl.monkeypatch.checkpoint_activation_offload patched)")


def uninstall() -> None:
    """Put Axolotl's own methods back."""
    from axolotl.monkeypatch.checkpoint_activation_offload import CheckpointHiddenStatesOffload as Offload

    for name in ("_restore_tensor", "_sync_and_clear"):
        method = getattr(Offload, name)
        if getattr(method, MARK, None):
            setattr(Offload, name, method.__wrapped__)
