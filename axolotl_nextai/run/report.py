"""The run report: what a run did and what it cost, in `<output_dir>/nextai_report.{json,md,png}`.

`summarize` turns the per-step history the callback collects into the report (pure, tested without a
Trainer); `table9_markdown` renders it as a row shaped like the paper's Table 9 (trainable parameters, peak
GPU memory, time) plus throughput columns; `plot_report` draws loss, real tokens/s and memory over steps.
`nextai-report OUTPUT_DIR` prints it (used by `make demo` and `make demo-tiny`).

The loss of one logged step depends on which rows that step drew: first-step 2.1 -> last-step 2.3 can be a run
that learned. Beside those two, the report gives the mean over the first and the last quarter of the logged
steps (at most 50 each) and, when the recipe holds out an eval split (`val_set_size`), the eval loss at each
evaluation: the same rows every time.

Tokens are *real* tokens: not padding (`attention_mask != 0`), prompt included, since the 6N FLOP per token
of MFU is spent on every token the model computes; `trained_tokens` (labels not -100) are reported beside.
Memory is null without CUDA, never zero: a CPU run measured nothing.
With several ranks (`world_size`), tokens are summed over them, tokens/s per GPU and MFU are a rank's share of
that sum, and peak memory is the highest rank's: one report for the run, written by rank 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import click
from pydantic import BaseModel, ConfigDict, ValidationError

from axolotl_nextai.run.throughput import mfu, rate
from axolotl_nextai.run.time_budget import HOUR
from data_builders.atomic import atomic_write
from data_builders.boundary import Guarded
from data_builders.errors import DataError, validation_problem
from data_builders.files import MISSING, file_problem, read_text
from data_builders.json_text import dumps, finite_or_null, loads

REPORT_NAME = "nextai_report.json"
TABLE_NAME = "nextai_report.md"
PLOT_NAME = "nextai_report.png"
START = {"elapsed_s": 0.0, "real_tokens": 0, "trained_tokens": 0}  # the history row before the first step
LOSS_WINDOW = 50  # at most this many logged steps in each mean of `loss_means`


def _max_or_none(values) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def loss_means(values: list[float]) -> tuple[float | None, float | None, int]:
    """Mean loss over the first and the last quarter of the logged steps (at least 1, at most `LOSS_WINDOW`
    each), and that window: a start and an end a reader can compare, unlike two single steps' rows."""
    if not values:
        return None, None, 0
    window = min(LOSS_WINDOW, max(1, len(values) // 4))
    return sum(values[:window]) / window, sum(values[-window:]) / window, window


def summarize(history: list[dict], run: Mapping) -> dict:
    """The report: `run`'s fields (model, parameters, steps, timings, stop reason) plus what `history` gives.

    `history` has one row per optimizer step of this session, in order: `step`, `elapsed_s` since training
    began, cumulative `real_tokens` and `trained_tokens`, and where known `loss`, `learning_rate`,
    `memory_allocated_gib`, `memory_reserved_gib`. `run` must hold `trainable_params`, `total_params`,
    `linear_params`, `peak_tflops`, `steps_per_epoch`, `max_steps`, `seconds_per_step`, `wall_time_s`; the
    callback adds `final` (training has ended) and `stop_reason` / `stop_step` (set when it ended early).
    """
    losses = [{"step": row["step"], "loss": row["loss"]} for row in history if row.get("loss") is not None]
    values = [row["loss"] for row in losses]
    rows = []
    for i, row in enumerate(history):
        before = history[i - 1] if i else START
        rows.append(
            {
                **row,
                "tokens_per_s": rate(
                    row["real_tokens"], before["real_tokens"], row["elapsed_s"], before["elapsed_s"]
                ),
            }
        )
    # Steady state: from the end of the first step (it pays one-off costs) to the last; the first alone if
    # one.
    since = history[0] if len(history) > 1 else START
    last = history[-1] if history else START
    tokens_per_s = rate(last["real_tokens"], since["real_tokens"], last["elapsed_s"], since["elapsed_s"])
    sps = run["seconds_per_step"]
    trainable, total = run["trainable_params"], run["total_params"]
    per_gpu = tokens_per_s / run.get("world_size", 1) if tokens_per_s else None
    start_mean, end_mean, window = loss_means(values)
    return {
        **run,
        "steps": len(values),
        "losses": losses,
        "first_loss": values[0] if values else None,
        "final_loss": values[-1] if values else None,
        "start_loss_mean": start_mean,
        "end_loss_mean": end_mean,
        "loss_window": window,
        "loss_finite": all(math.isfinite(v) for v in values),
        "trainable_pct": 100.0 * trainable / total if total else None,
        "real_tokens": last["real_tokens"],
        "trained_tokens": last["trained_tokens"],
        "computed_tokens": last.get("computed_tokens"),  # padding included
        "forward_passes": last.get("forward_passes"),
        "tokens_per_s": tokens_per_s,  # summed over the ranks
        "tokens_per_s_per_gpu": per_gpu,
        # of one GPU's peak
        "mfu": mfu(per_gpu, run["linear_params"], run["peak_tflops"]) if per_gpu else None,
        "projected_epoch_h": sps * run["steps_per_epoch"] / HOUR if sps else None,
        "projected_run_h": sps * run["max_steps"] / HOUR if sps else None,
        "peak_memory_allocated_gib": _max_or_none(row.get("memory_allocated_gib") for row in history),
        "peak_memory_reserved_gib": _max_or_none(row.get("memory_reserved_gib") for row in history),
        "history": rows,
    }


def fmt(value, spec: str, unit: str = "") -> str:
    """`value` formatted with its unit, or "n/a" when it was not measured."""
    return "n/a" if value is None else format(value, spec) + unit


def fmt_pct(fraction: float | None) -> str:
    return fmt(None if fraction is None else 100 * fraction, ".3g", " %")


def fmt_hours(hours: float | None) -> str:
    return fmt(hours, ".3g", " h")


TABLE9_COLUMNS = [
    ("Model", lambda r: str(r.get("model"))),
    ("LoRA r", lambda r: str(r.get("lora_r"))),
    ("LoRA targets", lambda r: ", ".join(r.get("lora_target_modules") or []) or "n/a"),
    ("Trainable params", lambda r: f"{r['trainable_params']:,}"),
    ("Trainable %", lambda r: fmt(r["trainable_pct"], ".4f")),
    ("Peak allocated (GiB)", lambda r: fmt(r["peak_memory_allocated_gib"], ".2f")),
    ("Peak reserved (GiB)", lambda r: fmt(r["peak_memory_reserved_gib"], ".2f")),
    ("GPUs", lambda r: str(r.get("world_size", 1))),
    ("Real tokens/s", lambda r: fmt(r["tokens_per_s"], ",.1f")),
    ("Real tokens/s per GPU", lambda r: fmt(r.get("tokens_per_s_per_gpu"), ",.1f")),
    ("MFU per GPU", lambda r: fmt_pct(r["mfu"])),
    ("Wall time (h)", lambda r: fmt(r["wall_time_s"] / HOUR, ".3g")),
    ("Projected epoch (h)", lambda r: fmt(r["projected_epoch_h"], ".3g")),
]


def table9_markdown(report: Mapping) -> str:
    """A Markdown table: header and one row for this run, columns as in `TABLE9_COLUMNS`."""
    header = "| " + " | ".join(name for name, _ in TABLE9_COLUMNS) + " |"
    rule = "|" + "---|" * len(TABLE9_COLUMNS)
    row = "| " + " | ".join(cell(report) for _, cell in TABLE9_COLUMNS) + " |"
    return f"{header}\n{rule}\n{row}\n"


def plot_report(report: Mapping, path: Path) -> None:
    """PNG of loss, real tokens/s and peak memory against the optimizer step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["history"]
    steps = [row["step"] for row in rows]
    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    axes[0].plot([r["step"] for r in report["losses"]], [r["loss"] for r in report["losses"]], marker=".")
    axes[0].set_ylabel("loss")
    axes[1].plot(steps, [row["tokens_per_s"] for row in rows], marker=".")
    axes[1].set_ylabel("real tokens/s")
    if report["peak_memory_allocated_gib"] is None:
        axes[2].text(
            0.5, 0.5, "GPU memory: n/a (no CUDA)", ha="center", va="center", transform=axes[2].transAxes
        )
    else:
        axes[2].plot(steps, [row["memory_allocated_gib"] for row in rows], label="allocated")
        axes[2].plot(steps, [row["memory_reserved_gib"] for row in rows], label="reserved")
        axes[2].legend()
    axes[2].set_ylabel("peak memory (GiB)")
    axes[2].set_xlabel("optimizer step")
    fig.suptitle(f"{report.get('model')}: {report['tokens_per_s'] or 0:,.1f} real tok/s")
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=80)
    plt.close(fig)


def write_run_report(report: Mapping, output_dir: str | Path, final: bool) -> str | None:
    """The JSON always; the Table 9 row and the plot when `final` (they cost more than a progress update).

    Returns why the plot is missing, if it is: matplotlib is not in the GPU machine's wheel set
    (docs/gpu-machine.md), and a missing plot must not cost the rest of the report.
    """
    output_dir = Path(output_dir)
    with atomic_write(output_dir / REPORT_NAME) as f:
        f.write(dumps(finite_or_null(report), indent=2))  # a NaN loss is null (and `loss_finite` false)
    if not final:
        return None
    with atomic_write(output_dir / TABLE_NAME) as f:
        f.write(table9_markdown(report))
    try:
        plot_report(report, output_dir / PLOT_NAME)
    except ImportError as exc:
        return f"no {PLOT_NAME}: {exc} (pip install matplotlib)"
    return None


class Printed(BaseModel):
    """The fields of a report that `main` prints, with their types: a report missing one, or written by
    something else, is refused in one line instead of failing half way through the printout."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    steps: int
    global_step: int
    max_steps: int
    first_loss: float | None
    final_loss: float | None
    trainable_params: int
    total_params: int
    trainable_pct: float | None
    linear_params: int
    peak_memory_allocated_gib: float | None
    peak_memory_reserved_gib: float | None
    device: str
    tokens_per_s: float | None
    mfu: float | None
    peak_tflops: float
    wall_time_s: float
    process_time_s: float
    projected_epoch_h: float | None
    stop_reason: str | None
    stop_step: int | None


def read_report(output_dir: Path) -> dict:
    """`output_dir`'s report, checked to hold what `main` prints; a DataError naming the folder or file."""
    problem = file_problem(output_dir)
    if problem == MISSING:
        raise DataError(f"{output_dir}: does not exist (give a run's output_dir)")
    if problem != "is a folder":
        raise DataError(
            f"{output_dir}: {'is a file' if problem is None else problem}; give a run's output_dir"
        )
    path = output_dir / REPORT_NAME
    if file_problem(path) == MISSING:
        raise DataError(
            f"{output_dir}: no {REPORT_NAME} in it: not a run's output_dir, or the run wrote no report "
            "yet (the first comes after nextai_report_every_steps steps; nextai_report: false writes none)"
        )
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: empty (a disk that filled up while it was written?)")
    report = loads(text, str(path))
    if not isinstance(report, dict):
        raise DataError(f"{path}: not a run report (a JSON object)")
    try:
        Printed.model_validate(report)
    except ValidationError as err:
        raise DataError(f"{path}: not a complete run report: {validation_problem(err)}") from None
    return report


def loss_line(report: Mapping) -> str:
    """ "loss: first -> last over N logged steps", and the means and eval losses a reader can compare."""
    line = (
        f"{fmt(report['first_loss'], '.4f')} -> {fmt(report['final_loss'], '.4f')} over {report['steps']} "
        f"logged steps (step {report['global_step']} of {report['max_steps']})"
    )
    if report.get("loss_window") and report["steps"] > 1:
        line += (
            f"; mean of the first and last {report['loss_window']}: {fmt(report['start_loss_mean'], '.4f')} "
            f"-> {fmt(report['end_loss_mean'], '.4f')}"
        )
    evals = report.get("eval_losses") or []
    if evals:
        line += (
            f"; eval loss (the same held-out rows each time): {evals[0]['loss']:.4f} at step "
            f"{evals[0]['step']} -> {evals[-1]['loss']:.4f} at step {evals[-1]['step']}"
        )
    return line


@click.command(cls=Guarded)
@click.argument("output_dir", type=click.Path(path_type=Path))
def main(output_dir: Path) -> None:
    """Print a finished run's adapter path, loss, cost and throughput, from OUTPUT_DIR/nextai_report.json."""
    report = read_report(output_dir)
    adapter = output_dir / "adapter_model.safetensors"
    stopped = f"at step {report['stop_step']}: {report['stop_reason']}" if report["stop_reason"] else "no"
    print(f"adapter:    {adapter if adapter.exists() else 'not written (see the training log)'}")
    print(f"loss:       {loss_line(report)}")
    print(
        f"trainable:  {report['trainable_params']:,} of {report['total_params']:,} "
        f"({fmt(report['trainable_pct'], '.4f', ' %')}); linear weights N = {report['linear_params']:,}"
    )
    print(
        f"memory:     peak {fmt(report['peak_memory_allocated_gib'], '.2f', ' GiB')} allocated, "
        f"{fmt(report['peak_memory_reserved_gib'], '.2f', ' GiB')} reserved ({report['device']})"
    )
    ranks = report.get("world_size", 1)
    per_gpu = (
        f" ({fmt(report.get('tokens_per_s_per_gpu'), ',.1f')} per GPU, {ranks} ranks)" if ranks > 1 else ""
    )
    print(
        f"throughput: {fmt(report['tokens_per_s'], ',.1f')} real tokens/s{per_gpu}, MFU "
        f"{fmt_pct(report['mfu'])} of {report['peak_tflops']:g} TFLOP/s per GPU"
    )
    print(
        f"time:       {report['wall_time_s']:.1f} s training, {report['process_time_s']:.1f} s since launch; "
        f"projected epoch {fmt_hours(report['projected_epoch_h'])}"
    )
    print(f"stopped early: {stopped}")
    print(f"table row:  {output_dir / TABLE_NAME}; plot: {output_dir / PLOT_NAME}")


if __name__ == "__main__":
    main()
