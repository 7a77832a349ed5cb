"""The one error type the data builders raise for bad input: its message names the file:line or key to fix;
and the one-line forms of other errors that both packages share."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable

# repr of a value in a one-line message: bounded before it is built (a YAML alias bomb expands to 10^10 items)
SHORT = reprlib.Repr()
SHORT.maxlevel, SHORT.maxstring, SHORT.maxother = 2, 60, 60
SHORT.maxtuple = SHORT.maxlist = SHORT.maxarray = SHORT.maxdict = SHORT.maxset = 4


class DataError(Exception):
    """Bad input that stops a build (the CLI prints it and exits 1, leaving no output file)."""


class RowError(DataError):
    """One bad row; `--on-error skip` counts and skips these instead of stopping."""


# line breaks and other control characters a user's data may carry into a message (a key "\r"), shown escaped
CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F) if code != 0x09}
CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029", 0x85: "\\x85"})


def single_line(text: str) -> str:
    """`text` with every character that would break or garble its line escaped: a message is one line."""
    return text.translate(CONTROL)


def first_line(err: BaseException) -> str:
    """The first line of a library's error message, for a one-line report that names our own location
    first."""
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


def yaml_problem(where: str, err) -> str:
    """A PyYAML error as one line, `where:line: problem` (and where the construct it was reading began), from
    its marks: PyYAML's own text spans several lines."""
    mark, context = getattr(err, "problem_mark", None), getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or first_line(err)
    if context is not None and getattr(err, "context", None):
        problem += f"; {err.context} at line {context.line + 1}"
    return (
        f"{where}:{mark.line + 1}: not valid YAML ({problem})"
        if mark
        else f"{where}: not valid YAML ({problem})"
    )


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """ " (did you mean `x`?)" with the known name nearest to `name`, or "" when none is near: the hint every
    unknown-name error of both packages ends with."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def validation_problem(err) -> str:
    """A pydantic `ValidationError` as one line, "`key`: problem (got value)" for each of its errors, joined
    by "; " (pydantic's own text spans several lines)."""
    parts = []
    for e in err.errors():
        key = ".".join(map(str, e["loc"]))
        parts.append(f"`{key}`: {e['msg']} (got {SHORT.repr(e['input']):.60})" if key else e["msg"])
    return "; ".join(parts)
