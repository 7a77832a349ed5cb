"""Output files of a build, each written atomically: the JSONL, its manifest, the removed pairs and drops.

`<out>.jsonl` is what Axolotl trains on; beside it `<stem>.manifest.json` (spec, per-source origin and
counts, drop reasons, licences, output sha256), `<stem>.near_dups.jsonl` (kept text, removed text, cosine),
`<stem>.dropped.jsonl` (each filtered row with its reason) and, when decontamination ran,
`<stem>.contamination.jsonl` (removed text, nearest benchmark text, benchmark, cosine). Same build, same bytes: keys are sorted where
order is free and nothing depends on time or absolute paths.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from axolotl_nextai.atomic import atomic_write
from data_builders.build import Build
from data_builders.decontaminate import Decontaminated


def jsonl(rows) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def companion(out: Path, kind: str) -> Path:
    """`data/v5.jsonl` -> `data/v5.<kind>`."""
    return out.with_name(f"{out.name.removesuffix('.jsonl')}.{kind}")


def write_files(out: Path, text: str, rows: int, manifest: dict, companions: dict[str, list[dict]]) -> dict[str, Path]:
    """`out` and its companions `<stem>.<kind>.jsonl`, then the manifest with the output's name, rows and sha256."""
    manifest["output"] = {"file": out.name, "rows": rows, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    files = {"data": (out, text)}
    files.update({kind: (companion(out, f"{kind}.jsonl"), jsonl(lines)) for kind, lines in companions.items()})
    files["manifest"] = (companion(out, "manifest.json"),
                         json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    for path, content in files.values():
        with atomic_write(path) as f:
            f.write(content)
    return {kind: path for kind, (path, _) in files.items()}


def write_build(result: Build, out: Path) -> dict[str, Path]:
    """Write every file of `result`."""
    companions = {"near_dups": result.pairs,
                  "dropped": [{**r.to_json(), "filter_reason": why} for r, why in result.dropped]}
    if result.contamination is not None:
        companions["contamination"] = result.contamination
    return write_files(out, jsonl(r.to_json() for r in result.records), len(result.records), result.manifest,
                       companions)


def write_decontaminated(result: Decontaminated, out: Path) -> dict[str, Path]:
    """`out` (the kept rows, every field as read), `<stem>.contamination.jsonl` and `<stem>.manifest.json`."""
    return write_files(out, jsonl(result.rows), len(result.rows), result.manifest,
                       {"contamination": result.pairs})
