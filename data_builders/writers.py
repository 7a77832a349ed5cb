"""Output files of a build, each written atomically: the JSONL, its manifest, the removed pairs and drops.

`<out>.jsonl` is what Axolotl trains on; beside it `<stem>.manifest.json` (spec, per-source origin and
counts, drop reasons, licences, output sha256), `<stem>.near_dups.jsonl` (kept text, removed text, cosine)
and `<stem>.dropped.jsonl` (each filtered row with its reason). Same build, same bytes: keys are sorted where
order is free and nothing depends on time or absolute paths.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from axolotl_nextai.atomic import atomic_write
from data_builders.build import Build


def jsonl(rows) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def companion(out: Path, kind: str) -> Path:
    """`data/v5.jsonl` -> `data/v5.<kind>`."""
    return out.with_name(f"{out.name.removesuffix('.jsonl')}.{kind}")


def write_build(result: Build, out: Path) -> dict[str, Path]:
    """Write every file of `result`; the manifest records the JSONL's name, rows and sha256."""
    text = jsonl(r.to_json() for r in result.records)
    result.manifest["output"] = {"file": out.name, "rows": len(result.records),
                                 "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    files = {
        "data": (out, text),
        "near_dups": (companion(out, "near_dups.jsonl"), jsonl(result.pairs)),
        "dropped": (companion(out, "dropped.jsonl"),
                    jsonl({**r.to_json(), "filter_reason": why} for r, why in result.dropped)),
        "manifest": (companion(out, "manifest.json"), json.dumps(result.manifest, indent=2, ensure_ascii=False,
                                                                 sort_keys=True) + "\n"),
    }
    for path, content in files.values():
        with atomic_write(path) as f:
            f.write(content)
    return {kind: path for kind, (path, _) in files.items()}
