"""A source's rows from the Hugging Face Hub: located before any row is read, then read as a local copy is.

Two ways in, by how the repository is published:
- data files `datasets` reads by itself (Dolly's JSONL, Platypus' parquet under a `configs:` card, codegen and
  user-defined sources): `datasets.load_dataset_builder` resolves the files at the pinned revision and checks
  the config (the split is checked against its files), then `download_and_prepare` fetches them.
- repositories still served by a loading script (FaithDial, Multi-News, LIMA), which `datasets` >= 4 refuses
  to run ("Dataset scripts are no longer supported"): the source names the script's own data files
  (`SourceSpec.hub_files`), `huggingface_hub` checks them (a HEAD each; offline, the local HF cache) and later
  downloads them at the commit it resolved, and the source reads them (`SourceSpec.hub_rows`).

Every Hub problem a user can meet (gated, offline, a repository, revision or file renamed, a wrong config or
split) is one line naming the source, what the Hub said and the way out: a local copy (--source-dir, --path).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from data_builders.errors import DataError, first_line
from data_builders.sources.base import SourceSpec, parse_rows

HF_FILE = re.compile(r"^hf://datasets/[^@]+@[0-9a-f]{40}/(?P<path>.+)$")  # a data file datasets resolved


@dataclass
class HubSource:
    """A source found on the Hub (or in the local HF cache): where its rows are, and a reader of them."""

    origin: dict  # hub_id, revision as pinned, the commit it resolved to, the files read
    rows: Callable[[], Iterator[tuple[str, dict | Exception]]]


def short(revision: str) -> str:
    return revision[:12] if re.fullmatch(r"[0-9a-f]{40}", revision) else revision


def way_out(spec: SourceSpec, problem: str) -> DataError:
    return DataError(
        f"source {spec.name}: {spec.hub_id}@{short(spec.revision)}: {problem}; give a local copy "
        f"with --source-dir DIR or --path {spec.name}=FILE"
    )


def hub_problem(err: Exception, hub_id: str, revision: str = "main", config: str | None = None) -> str | None:
    """What a Hub or `datasets` error about `hub_id` means for the user, in a few words; None for an error
    that is not one of theirs."""
    import httpx
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub import errors

    text = first_line(err)
    chain = [err]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 10:
        chain.append(cause)
    if isinstance(err, errors.GatedRepoError) or (isinstance(err, DatasetNotFoundError) and "gated" in text):
        return (
            f"gated on the Hub and this machine has no access (accept its terms at "
            f"https://huggingface.co/datasets/{hub_id}, then `hf auth login` or set HF_TOKEN)"
        )
    unreachable = (
        errors.OfflineModeIsEnabled,
        errors.LocalEntryNotFoundError,
        ConnectionError,
        httpx.TransportError,
    )
    # huggingface_hub 1.x retries a refused connection on the client it has just closed: "client has been
    # closed"
    if any(isinstance(e, unreachable) for e in chain) or "client has been closed" in text:
        return "the Hub cannot be reached (offline: HF_HUB_OFFLINE=1, or no network) and no copy is cached"
    if isinstance(err, errors.RevisionNotFoundError) or (
        isinstance(err, DatasetNotFoundError) and text.startswith("Revision")
    ):
        return f"the Hub has no revision {revision} of it"
    if isinstance(err, (errors.RepositoryNotFoundError, DatasetNotFoundError)):
        return "no such dataset on the Hub (renamed, or private)"
    if isinstance(err, errors.EntryNotFoundError):
        return f"a file it names is not there ({text}): the repository's layout changed"
    if isinstance(err, RuntimeError) and "scripts are no longer supported" in text:
        return f"served by a loading script, which datasets >= 4 no longer runs ({text})"
    if isinstance(err, errors.HfHubHTTPError):
        return f"the Hub answered {text}"
    if isinstance(err, ValueError) and text.startswith("BuilderConfig"):  # "'x' not found. Available: [...]"
        return f"no config {config!r} ({text})"
    if isinstance(err, ValueError):
        return text
    return None


def translated(spec: SourceSpec, call: Callable):
    """`call()`, a Hub or `datasets` error re-raised as a one-line DataError naming the source and the way
    out."""
    try:
        return call()
    except DataError:
        raise
    except Exception as err:
        problem = hub_problem(err, spec.hub_id, spec.revision, spec.config)
        if problem is None:
            raise
        raise way_out(spec, problem) from None


def locate(spec: SourceSpec) -> HubSource:
    """Check that the Hub (offline: the local HF cache) has `spec`'s rows at its revision, reading none of
    them."""
    if not spec.hub_id:
        raise DataError(
            f"source {spec.name}: no hub id; give a local copy with --source-dir DIR or --path "
            f"{spec.name}=FILE"
        )
    return translated(spec, lambda: located_files(spec) if spec.hub_files else located_dataset(spec))


def located_dataset(spec: SourceSpec) -> HubSource:
    from datasets import load_dataset_builder

    builder = load_dataset_builder(spec.hub_id, spec.config, revision=spec.revision)
    splits = builder.config.data_files or {}
    if splits and spec.split not in splits:
        raise way_out(spec, f"no split '{spec.split}' (splits: {', '.join(splits)})")
    files = [m["path"] for f in splits.get(spec.split, []) if (m := HF_FILE.match(str(f)))]
    # the module's
    commit = builder.hash if re.fullmatch(r"[0-9a-f]{40}", builder.hash or "") else spec.revision

    def rows():
        builder.download_and_prepare()
        for i, row in enumerate(builder.as_dataset(split=spec.split)):
            yield f"{spec.hub_id}@{short(commit)}: row {i}", row

    return HubSource(
        {"hub_id": spec.hub_id, "revision": spec.revision, "commit": commit, "files": files},
        lambda: reported(spec, rows),
    )


def located_files(spec: SourceSpec) -> HubSource:
    from huggingface_hub import (
        constants,
        get_hf_file_metadata,
        hf_hub_download,
        hf_hub_url,
        try_to_load_from_cache,
    )

    if constants.HF_HUB_OFFLINE:
        cached = [
            try_to_load_from_cache(spec.hub_id, p, revision=spec.revision, repo_type="dataset")
            for p in spec.hub_files
        ]
        if not all(isinstance(c, str) for c in cached):
            raise way_out(spec, hub_problem(ConnectionError(), spec.hub_id))
        commits = {snapshot_commit(Path(c), p) for c, p in zip(cached, spec.hub_files, strict=True)}
    else:
        commits = {
            get_hf_file_metadata(
                hf_hub_url(spec.hub_id, p, repo_type="dataset", revision=spec.revision)
            ).commit_hash
            for p in spec.hub_files
        }
    commit = one_commit(spec, commits)

    def rows():
        # by the revision, not the commit: the cache then maps the revision to its files, for a build offline
        local = [
            Path(hf_hub_download(spec.hub_id, p, repo_type="dataset", revision=spec.revision))
            for p in spec.hub_files
        ]
        one_commit(
            spec, {commit} | {snapshot_commit(f, p) for f, p in zip(local, spec.hub_files, strict=True)}
        )
        labels = [PurePosixPath(f"{spec.hub_id}@{short(commit)}/{p}") for p in spec.hub_files]
        yield from (spec.hub_rows or file_rows)(list(zip(labels, local, strict=True)))

    return HubSource(
        {"hub_id": spec.hub_id, "revision": spec.revision, "commit": commit, "files": list(spec.hub_files)},
        lambda: reported(spec, rows),
    )


def snapshot_commit(local: Path, path_in_repo: str) -> str:
    """The commit of a file in the HF cache, from its place: <cache>/snapshots/<commit>/<path in repo>."""
    return local.parents[len(PurePosixPath(path_in_repo).parts) - 1].name


def one_commit(spec: SourceSpec, commits: set[str]) -> str:
    if len(commits) != 1:
        raise way_out(
            spec,
            f"its files come from {len(commits)} commits ({', '.join(sorted(commits))}): "
            f"{spec.revision} moved while they were read; run the build again",
        )
    return commits.pop()


def file_rows(files: list[tuple[PurePosixPath, Path]]) -> Iterator[tuple[str, dict | Exception]]:
    """The rows of downloaded JSON / JSONL / parquet / CSV files, one after another, located by their Hub
    path."""
    for label, local in files:
        yield from parse_rows(label, local.read_bytes())


def reported(spec: SourceSpec, rows: Callable[[], Iterator]) -> Iterator:
    """`rows()`, a download that fails half-way reported as `locate` reports a missing source."""
    iterator = translated(spec, rows)
    while True:
        try:
            item = translated(spec, lambda: next(iterator))
        except StopIteration:
            return
        yield item
