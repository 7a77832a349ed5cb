"""Axolotl's offloaded layer inputs brought back one layer ahead in backward
(`nextai_prefetch_offloaded_inputs`).

With `activation_offloading: hidden_states` and non-reentrant checkpointing (its default), Axolotl 0.19
(`CheckpointHiddenStatesOffload`) copies each checkpointed layer's input to pinned CPU memory in the forward
and copies it back when backward first needs it: the layer's recompute starts only after that copy, so the GPU
waits for it once a layer. Llama-2-70B at 4,096 tokens a micro-step: 64 MiB a layer, ~1.2 ms at ~55 GB/s, 80
times a micro-step (what the fast recipe's GPU idled: bench/results/gpu70b-fast-2026-12-01.md). Here restoring
a layer's input also starts the copy of the next one backward will ask for (the next lower id still on the
CPU), on Axolotl's own copy stream, so it arrives while this layer's recompute and backward run; one more
layer input is on the GPU at a time. (Axolotl's reentrant offloading checkpoint prefetches already.)

The values are the same tensors: only when the copy starts changes. The lever puts a subclass of Axolotl's
offloader in its module's namespace, where Axolotl's trainer looks it up when it builds one.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.contract import patch, unpatch

KEY = "nextai_prefetch_offloaded_inputs"
CLASS = "CheckpointHiddenStatesOffload"


def next_to_restore(
    on_cpu: Mapping[int, object],
    on_gpu: Mapping[int, object],
    prefetched: Mapping[int, object],
    restored: int,
) -> int | None:
    """The id backward restores after `restored`: the highest lower id still only on the CPU (ids count up in
    the forward; the forward's last few inputs are still on the GPU, in `on_gpu`)."""
    waiting = [
        tensor_id
        for tensor_id in on_cpu
        if tensor_id < restored and tensor_id not in on_gpu and tensor_id not in prefetched
    ]
    return max(waiting, default=None)


@functools.cache
def prefetching_offloader():
    """Axolotl's offloader with the prefetch (built on first use: importing this module imports no
    Axolotl)."""
    import torch
    from axolotl.monkeypatch import checkpoint_activation_offload

    class PrefetchingOffload(getattr(checkpoint_activation_offload, CLASS)):
        def copy_back(self, tensor_id: int):
            """Start the copy of one offloaded input to the GPU on the copy stream, as Axolotl restores it:
            (the GPU tensor, the copy's event)."""
            cpu_tensor, device, storage_offset, shape, stride, _ = self._tracker[tensor_id]
            with self._stream_context(self.s1):
                gpu_tensor = cpu_tensor.to(device, non_blocking=True)
                if gpu_tensor.storage_offset() != storage_offset or gpu_tensor.stride() != stride:
                    gpu_tensor = torch.as_strided(
                        gpu_tensor, size=shape, stride=stride, storage_offset=storage_offset
                    )
            return gpu_tensor, self.s1.record_event()

        def _restore_tensor(self, tensor_id):
            prefetched = self.__dict__.setdefault("nextai_prefetched", {})
            if tensor_id in prefetched:
                gpu_tensor, event = prefetched.pop(tensor_id)
                cpu_tensor, *_, buffer_key = self._tracker.pop(tensor_id)
                self.s0.wait_event(event)
                gpu_tensor.record_stream(self.s0)
                # reused once the copy is done
                self._pending_cpu_buffers.append((buffer_key, cpu_tensor, event))
                self.stats.restored_tensors += 1
                self.stats.restored_bytes += self._num_bytes(gpu_tensor)
            else:
                gpu_tensor = super()._restore_tensor(tensor_id)
            following = (
                next_to_restore(self._tracker, self._fwd_stash, prefetched, tensor_id)
                if self.use_streams
                else None
            )
            if following is not None:
                prefetched[following] = self.copy_back(following)
            return gpu_tensor

        def _sync_and_clear(self):
            super()._sync_and_clear()  # synchronizes both streams first: the prefetched copies are done
            self.__dict__.pop("nextai_prefetched", None)

    return PrefetchingOffload


class PrefetchOffloadedInputs:
    """`nextai_prefetch_offloaded_inputs`: Axolotl's non-reentrant hidden-states offloader, prefetching."""

    key = KEY
    hook = "pre_model_load"  # before Axolotl's trainer builds the offloader
    distributed = False

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        if cfg.get("activation_offloading") != "hidden_states":
            return [
                (
                    f"`{KEY}` prefetches the layer inputs that activation_offloading: hidden_states puts on "
                    "the CPU: set activation_offloading: hidden_states (got "
                    f"{cfg.get('activation_offloading')!r}) or remove the key"
                )
            ]
        if (cfg.get("gradient_checkpointing_kwargs") or {}).get("use_reentrant"):
            return [
                (
                    f"`{KEY}` serves the non-reentrant offloader (hidden_states' default); with "
                    "use_reentrant: true Axolotl's own offloading checkpoint already "
                    "prefetches: remove the key"
                )
            ]
        return []

    def install(self, cfg: Mapping, target: None = None) -> str:
        from axolotl.monkeypatch import checkpoint_activation_offload

        self.uninstall()
        patch(checkpoint_activation_offload, CLASS, prefetching_offloader(), KEY)
        return (
            f"{KEY}: Axolotl's offloaded layer inputs are copied back one layer ahead in backward "
            f"(axolotl.monkeypatch.checkpoint_activation_offload.{CLASS}, subclassed)"
        )

    def uninstall(self, target: None = None) -> None:
        from axolotl.monkeypatch import checkpoint_activation_offload

        unpatch(checkpoint_activation_offload, KEY)
