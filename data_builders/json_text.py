"""Strict JSON in and out, in one place: what Python's `json` lets through that breaks a later stage, refused
where the file is read, naming file:line.

Read: a duplicate key (`json` keeps the last, silently), `NaN` / `Infinity` (not JSON; `json` accepts them),
nesting deeper than `MAX_DEPTH` (`json` raises RecursionError near 1,000 levels; Arrow and our walkers choke
before), and a lone surrogate: `"\\ud800"` is valid JSON that decodes to a `str` no UTF-8 file can hold, so it
passed every row check and crashed exact dedup, decontamination, Arrow and the held-out loss. A row holding
one is refused (a RowError: `--on-error skip` counts it) rather than repaired, since the text around it is
suspect too. Written: `allow_nan=False` everywhere, so a NaN that slips through fails loudly instead of
writing a file no other JSON reader parses.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable

from data_builders.errors import RowError

MAX_DEPTH = 64  # a row or config nests 3-4 levels; 64 is far above any real one and far below Python's limit
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # the escape of a UTF-16 surrogate, paired or not
SURROGATE = re.compile("[\ud800-\udfff]")  # one left in a decoded str: it had no partner


class Refused(ValueError):
    """Raised inside `json.loads` by the hooks below; `loads` names the file."""


def unique_keys(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) < len(pairs):
        seen = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise Refused(f"key `{twice}` given twice")
    return out


def no_constant(name: str):
    raise Refused(f"{name} is not a JSON number")


def depth(value) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def lone_surrogate(value, field: str = "") -> str | None:
    """The field (`instruction`, `meta.tags[2]`) of the first str in `value` holding a lone surrogate, or
    None."""
    stack = [(value, field)]
    while stack:
        item, name = stack.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return name or "the value"
        elif isinstance(item, dict):
            for key, child in item.items():
                if SURROGATE.search(key):
                    return f"{name}.{key!a}".lstrip(".")
                stack.append((child, f"{name}.{key}".lstrip(".")))
        elif isinstance(item, list):
            stack.extend((child, f"{name}[{i}]") for i, child in enumerate(item))
    return None


def loads(text: str, where: str, line: int | None = None):
    """`text` parsed as strict JSON (see the module docstring); a RowError naming `where` (a file) and the
    line: `line` when `text` is that one line of the file, else where the parser stopped."""
    at = f"{where}:{line}" if line is not None else where
    try:
        value = json.loads(text, object_pairs_hook=unique_keys, parse_constant=no_constant)
    except json.JSONDecodeError as err:
        if line is not None:
            raise RowError(f"{at}: malformed JSON ({err.msg} at column {err.colno})") from None
        raise RowError(f"{where}:{err.lineno}: malformed JSON ({err.msg})") from None
    except Refused as err:
        raise RowError(f"{at}: not strict JSON ({err})") from None
    except RecursionError:
        raise RowError(f"{at}: nested deeper than {MAX_DEPTH} levels") from None
    if (text.count("[") + text.count("{") > MAX_DEPTH) and depth(value) > MAX_DEPTH:
        raise RowError(f"{at}: nested deeper than {MAX_DEPTH} levels")
    if "\\u" in text and SURROGATE_ESCAPE.search(text):
        field = lone_surrogate(value)
        if field:
            raise RowError(
                f"{at}: field '{field}' holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without "
                "its pair), text no UTF-8 file can hold; fix or drop the row"
            )
    return value


def finite_or_null(value):
    """`value` with every NaN or infinite float replaced by None (for a report whose loss may be NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def dumps(value, **options) -> str:
    """`json.dumps` as every file we write uses it: strict (a NaN raises), UTF-8 text kept as it is."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False, **options)


def jsonl(rows: Iterable) -> str:
    """JSON Lines, one strict JSON object a line."""
    return "".join(dumps(row) + "\n" for row in rows)
