"""The one error type nextai-eval raises for what a user can cause: a flag, a task name or an input file it
cannot run (`--limit`, `--tasks`, `--data-dir`, `--heldout`, ...). The CLI prints it as a usage error (exit
2); anything else raised while scoring, a ValueError inside lm-eval included, is a bug and reaches the
boundary as one."""

from __future__ import annotations

from data_builders.errors import DataError


class EvalInputError(DataError):
    """Bad input to nextai-eval, one line naming the option or file:line. A DataError, so one that escapes the
    CLI's own handling still ends as that line (data_builders/boundary.py), never as a traceback."""
