"""The run report: what a run did, in `<output_dir>/nextai_report.json`.

`python -m axolotl_nextai.report OUTPUT_DIR` prints it (used by `make demo`).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path


REPORT_NAME = "nextai_report.json"


def summarize(losses: list[dict], trainable: int, total: int, wall_s: float, output_dir: str) -> dict:
    """The report as a plain dict: losses are `{"step", "loss"}` rows in step order."""
    values = [row["loss"] for row in losses]
    return {
        "output_dir": output_dir,
        "steps": len(values),
        "losses": losses,
        "first_loss": values[0] if values else None,
        "final_loss": values[-1] if values else None,
        "loss_finite": all(math.isfinite(v) for v in values),
        "trainable_params": trainable,
        "total_params": total,
        "trainable_pct": 100.0 * trainable / total if total else None,
        "wall_time_s": round(wall_s, 3),
    }


def main(argv: list[str] | None = None) -> None:
    """Print a finished run's adapter path, loss, trainable parameters and wall time."""
    output_dir = Path((argv or sys.argv[1:] or ["."])[0])
    report = json.loads((output_dir / REPORT_NAME).read_text())
    adapter = output_dir / "adapter_model.safetensors"
    print(f"adapter:   {adapter if adapter.exists() else 'not written (see the training log)'}")
    print(f"loss:      {report['first_loss']:.4f} -> {report['final_loss']:.4f} over {report['steps']} logged steps")
    print(f"trainable: {report['trainable_params']:,} of {report['total_params']:,} ({report['trainable_pct']:.4f} %)")
    print(f"wall time: {report['wall_time_s']:.1f} s")


if __name__ == "__main__":
    main()
