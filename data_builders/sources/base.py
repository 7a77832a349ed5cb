"""What every source adapter declares (`SourceSpec`) and the one loader they all share.

A source is data: a hub id pinned to a revision, the columns its rows must have (and their types), a
licence, whether an LLM wrote it, and one pure function from an original row to Alpaca records. The loader
reads the same original schema from the hub or from a local jsonl / json / parquet / csv file, checks each
row against the declared columns, and reports a bad row by file:line, naming the columns it did find.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from data_builders.errors import DataError, RowError, first_line
from data_builders.files import MISSING, decode, file_problem, read_input
from data_builders.json_text import loads
from data_builders.records import Record

FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".jsonl.gz")


def file_sha256(path: Path) -> str:
    """sha256 of a file read in 1 MiB blocks (model files run to gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class SourceSpec:
    name: str
    hub_id: str
    revision: str  # pinned: the commit the Table 1 row counts were checked against, or "main" if unknown
    split: str
    columns: dict[str, type]  # required column -> str or list (a list of str)
    licence: str
    llm_generated: bool | None
    to_records: Callable[[dict, int], list[Record]]
    config: str | None = None
    optional: dict[str, type] = field(default_factory=dict)  # columns checked when a row has them
    # a repository served by a loading script (datasets >= 4 refuses them): the data files it reads, at the
    # revision, and how they become rows (default: each file parsed by its suffix); sources/hub.py
    hub_files: tuple[str, ...] = ()
    hub_rows: Callable[[list[tuple[PurePosixPath, Path]]], Iterator[tuple[str, dict | Exception]]] | None = (
        None
    )
    expand: Callable[[dict, int], list[dict]] | None = None  # a row holding several (FaithDial's dialogues)


@dataclass
class Loaded:
    """One source read and converted; `origin` goes into the manifest (hub revision or file sha256)."""

    records: list[Record]
    rows_in: int
    origin: dict
    bad_rows: int = 0
    bad_examples: list[str] = field(default_factory=list)


def find_source_file(name: str, source_dir: Path, kind: str = "source") -> Path:
    """`DIR/<name>.jsonl|.json|.parquet|.csv`, the first that exists; `kind` names it in the error, and says
    what one that exists but is no regular file is (a FIFO, a folder, a symlink loop)."""
    for suffix in FILE_SUFFIXES:
        path = source_dir / f"{name}{suffix}"
        problem = file_problem(path)
        if problem is None:
            return path
        if problem != MISSING:
            raise DataError(f"{kind} file {path}: {problem}")
    wanted = "|".join(FILE_SUFFIXES)
    raise DataError(f"missing {kind} file: no {name}{{{wanted}}} in {source_dir}")


def read_file(path: Path) -> tuple[Iterator[tuple[str, dict | Exception]], dict]:
    """A local file's rows (see `parse_rows`; `.jsonl.gz` is read as the JSONL inside) and its origin for a
    manifest (name, sha256 of the file as stored), the file read once."""
    if file_problem(path) == MISSING:
        raise DataError(f"missing source file: {path}")
    data = read_input(path)
    origin = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest()}
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: not a readable gzip file ({err})") from None
    return parse_rows(path, data), origin


def parse_rows(path: PurePosixPath | Path, data: bytes) -> Iterator[tuple[str, dict | Exception]]:
    """(location, row) for each row of `data`, the bytes of `path`; a row that cannot be parsed comes as a
    RowError."""
    if not data.strip():
        raise DataError(f"{path}: empty file")
    kind = Path(path.name.removesuffix(".gz")).suffix  # x.jsonl.gz arrives decompressed
    if kind == ".jsonl":
        for lineno, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = loads(raw.decode("utf-8"), str(path), lineno)
            except UnicodeDecodeError as err:
                yield (
                    where,
                    RowError(f"{where}: not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"),
                )
                continue
            except RowError as err:
                yield where, err
                continue
            yield where, row if isinstance(row, dict) else RowError(f"{where}: expected a JSON object")
    elif kind == ".json":
        rows = loads(decode(data, str(path)), str(path))
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON array of objects")
        for i, row in enumerate(rows):
            where = f"{path}: row {i}"
            yield where, row if isinstance(row, dict) else RowError(f"{where}: expected a JSON object")
    elif kind == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except (pa.ArrowException, OSError) as err:
            raise DataError(f"{path}: not a readable parquet file ({first_line(err)})") from None
        try:
            # strings are UTF-8 (the writer may not have checked; Python needs them so)
            table.validate(full=True)
        except pa.ArrowInvalid as err:
            raise DataError(
                f"{path}: a string column holds bytes that are not UTF-8 ({first_line(err)})"
            ) from None
        for i, row in enumerate(table.to_pylist()):
            yield f"{path}: row {i}", row
    elif kind == ".csv":
        yield from csv_rows(path, decode(data, str(path)))
    else:
        raise DataError(f"{path}: unsupported file type (use {', '.join(FILE_SUFFIXES)})")


def csv_rows(path: Path, text: str) -> Iterator[tuple[str, dict | Exception]]:
    """(location, row) per CSV record, keyed by the header; a record with more or fewer fields than the header
    comes as a RowError (csv would key the extra ones None, or fill the missing ones with None)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            where = f"{path}:{reader.line_num}"
            extra, missing = row.pop(None, []), sum(value is None for value in row.values())
            if extra or missing:
                fields = len(reader.fieldnames) + len(extra) - missing
                yield where, RowError(f"{where}: {fields} fields, the header has {len(reader.fieldnames)}")
            else:
                yield where, row
    except csv.Error as err:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({err})") from None


def check_row(row: dict, columns: dict[str, type], where: str) -> None:
    """Raise a RowError naming the missing field (and the fields the row has) or the wrongly typed one."""
    for column, kind in columns.items():
        if column not in row:
            raise RowError(f"{where}: missing required field '{column}' (row has: {', '.join(sorted(row))})")
        value = row[column]
        if not isinstance(value, kind) or (kind is list and not all(isinstance(v, str) for v in value)):
            want = "a list of str" if kind is list else kind.__name__
            raise RowError(f"{where}: field '{column}' must be {want}, got {type(value).__name__}")


def check_optional(row: dict, optional: dict[str, type], where: str) -> None:
    """`check_row` for the columns of `optional` that `row` has; absent ones are fine."""
    check_row(row, {column: kind for column, kind in optional.items() if column in row}, where)


def checked_rows(
    rows: Iterable[tuple[str, dict | Exception]],
    columns: dict[str, type],
    optional: dict[str, type] | None = None,
) -> Iterator[tuple[str, dict]]:
    """(location, row) for each of `rows`, a parse error re-raised and each row checked against `columns`
    (and against `optional` for the columns of it the row has)."""
    for where, row in rows:
        if isinstance(row, Exception):
            raise row
        check_row(row, columns, where)
        if optional:
            check_optional(row, optional, where)
        yield where, row


def read_rows(
    path: Path, columns: dict[str, type], optional: dict[str, type] | None = None
) -> tuple[list[dict], dict]:
    """Every row of a local file, the first bad one raising (see `checked_rows`), and the file's origin."""
    rows, origin = read_file(path)
    return [row for _, row in checked_rows(rows, columns, optional)], origin


def expanded(
    rows: Iterable[tuple[str, dict | Exception]], expand: Callable[[dict, int], list[dict]]
) -> Iterator[tuple[str, dict | Exception]]:
    """Each row that holds several (`expand`) as its parts, located as "<row>, part <j>"; a bad one as a
    RowError."""
    for index, (where, row) in enumerate(rows):
        if isinstance(row, Exception):
            yield where, row
            continue
        try:
            parts = expand(row, index)
        except ValueError as err:
            yield where, RowError(f"{where}: {err}")
            continue
        yield from ((where if part is row else f"{where}, part {j}", part) for j, part in enumerate(parts))


def load(spec: SourceSpec, path: Path | None, on_error: str = "fail", hub=None) -> Loaded:
    """Read `path` (or the Hub when None: `hub`, a sources.hub.HubSource, or located now), check and convert
    every row; skip bad rows only if asked."""
    if path is None:
        from data_builders.sources.hub import locate

        hub = hub or locate(spec)
        rows, origin = hub.rows(), hub.origin
    else:
        rows, origin = read_file(path)
    if spec.expand is not None:
        rows = expanded(rows, spec.expand)
    loaded = Loaded(records=[], rows_in=0, origin=origin)
    for index, (where, row) in enumerate(rows):
        loaded.rows_in += 1
        try:
            if isinstance(row, Exception):
                raise row
            check_row(row, spec.columns, where)
            check_optional(row, spec.optional, where)
            try:
                loaded.records.extend(spec.to_records(row, index))
            except ValueError as err:
                raise RowError(f"{where}: {err}") from None
        except RowError as err:
            if on_error != "skip":
                raise
            loaded.bad_rows += 1
            if len(loaded.bad_examples) < 5:
                loaded.bad_examples.append(str(err))
    if loaded.rows_in == 0:
        raise DataError(f"{path or spec.hub_id}: empty (no rows)")
    return loaded
