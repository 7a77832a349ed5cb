"""Output files of a build, written as one set: the JSONL, its manifest, the removed pairs and drops.

`<out>.jsonl` is what Axolotl trains on; beside it `<stem>.manifest.json` (spec, per-source origin and counts,
drop reasons, licences, output sha256), `<stem>.near_dups.jsonl` (kept text, removed text, cosine),
`<stem>.dropped.jsonl` (each filtered row with its reason) and, when decontamination ran,
`<stem>.contamination.jsonl` (removed text, nearest benchmark text, benchmark, cosine). Same build, same
bytes: keys are sorted where order is free and nothing depends on time or absolute paths. The files are
replaced together (a failed write changes none), a companion an earlier build left and this one does not write
is removed, and `check_out` refuses, before any work, an `--out` that cannot be written or whose files would
overwrite an input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from data_builders.atomic import unwritable, write_set
from data_builders.build import Build
from data_builders.decontaminate import Decontaminated
from data_builders.errors import DataError
from data_builders.json_text import dumps, jsonl

COMPANIONS = ("near_dups", "dropped", "contamination")  # `<stem>.<kind>.jsonl` beside the output


def companion(out: Path, kind: str) -> Path:
    """`data/v5.jsonl` -> `data/v5.<kind>`."""
    return out.with_name(f"{out.name.removesuffix('.jsonl')}.{kind}")


def output_files(out: Path) -> list[Path]:
    """Every file a build or a decontamination can write for `out`: the data, its companions, the manifest."""
    return [out, *(companion(out, f"{kind}.jsonl") for kind in COMPANIONS), companion(out, "manifest.json")]


def check_out(out: Path, inputs: Iterable[Path]) -> None:
    """A DataError unless `out` and its companions can be written and none of them is one of `inputs`."""
    read = {Path(p).resolve() for p in inputs}
    for path in output_files(out):
        if path.resolve() in read:
            raise DataError(
                f"--out {out}: would overwrite {path}, an input of this command; choose another --out"
            )
        if path.is_dir():
            raise DataError(f"--out {out}: {path} is a folder")
    problem = unwritable(out)
    if problem:
        raise DataError(f"--out {out}: {problem}")


def write_files(
    out: Path, text: str, rows: int, manifest: dict, companions: dict[str, list[dict]]
) -> dict[str, Path]:
    """`out` and its companions `<stem>.<kind>.jsonl`, then the manifest with the output's name, rows and
    sha256."""
    manifest["output"] = {
        "file": out.name,
        "rows": rows,
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
    files = {"data": (out, text)}
    files.update(
        {kind: (companion(out, f"{kind}.jsonl"), jsonl(lines)) for kind, lines in companions.items()}
    )
    files["manifest"] = (companion(out, "manifest.json"), dumps(manifest, indent=2, sort_keys=True) + "\n")
    written = {path for path, _ in files.values()}
    write_set(dict(files.values()), stale=[path for path in output_files(out) if path not in written])
    return {kind: path for kind, (path, _) in files.items()}


def write_build(result: Build, out: Path) -> dict[str, Path]:
    """Write every file of `result`."""
    companions = {
        "near_dups": result.pairs,
        "dropped": [{**r.to_json(), "filter_reason": why} for r, why in result.dropped],
    }
    if result.contamination is not None:
        companions["contamination"] = result.contamination
    return write_files(
        out, jsonl(r.to_json() for r in result.records), len(result.records), result.manifest, companions
    )


def write_decontaminated(result: Decontaminated, out: Path) -> dict[str, Path]:
    """`out` (the kept rows, every field as read), `<stem>.contamination.jsonl` and `<stem>.manifest.json`."""
    return write_files(
        out, jsonl(result.rows), len(result.rows), result.manifest, {"contamination": result.pairs}
    )
