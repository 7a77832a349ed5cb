"""One run's GPU memory as nvidia-smi sees it, every 0.5 s until stopped: the card's total and the run's own.

    python3 bench/gpu/gpu_memory_probe.py --gpu 0 --match /tmp/cfg-NAME.yml > NAME.smi.txt

Each line is `card_mib run_mib`: the card's memory.used, and the memory of the processes that nvidia-smi's
`--query-compute-apps` lists on that card whose command line holds MATCH (the run's config path), or `-` when
it lists none of them (not started yet, or a sandbox that hides process ids: then only the card's total is
known). With several lanes on one card (`GPUS=0,0,0`) only the second column is one run's. Both include what
PyTorch's counters miss: the CUDA context, cuBLAS workspace and the paged optimizer's managed memory.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path


def nvidia_smi(gpu: str, query: str) -> str:
    return subprocess.run(
        ["nvidia-smi", "-i", gpu, query, "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""  # gone, or not visible from here


def run_mib(apps: str, match: str) -> int | None:
    """Memory of the listed processes (`pid, used_memory` lines) whose command line holds `match`; None if
    none."""
    used = []
    for line in apps.splitlines():
        pid, _, mib = (part.strip() for part in line.partition(","))
        if pid.isdigit() and mib.isdigit() and match in command_line(int(pid)):
            used.append(int(mib))
    return sum(used) if used else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", required=True, help="nvidia-smi's index of the card")
    parser.add_argument("--match", required=True, help="text in the run's command line (its config path)")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between samples")
    args = parser.parse_args()
    while True:
        card = nvidia_smi(args.gpu, "--query-gpu=memory.used").strip() or "-"
        own = run_mib(nvidia_smi(args.gpu, "--query-compute-apps=pid,used_memory"), args.match)
        print(card, "-" if own is None else own, flush=True)
        time.sleep(args.every)


if __name__ == "__main__":
    main()
