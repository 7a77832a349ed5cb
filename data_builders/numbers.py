"""Numbers are finite: NaN compares False with everything, so a range check written as "bad if below the low
end" let `--threshold nan` or `learning_rate: nan` through, and `inf` passed every "greater than 0". Each kind
of input gets its check here: a click option type and a walk over a parsed config (pydantic models of ours say
`allow_inf_nan=False`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import click


def is_finite(value) -> bool:
    """False only for a float (or a numpy float) that is NaN or infinite."""
    return not isinstance(value, float) or math.isfinite(value)


def non_finite(value, key: str = "") -> Iterator[tuple[str, float]]:
    """(key path, value) of every NaN or infinite float in a parsed config, nested mappings and lists
    included."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from non_finite(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from non_finite(item, f"{key}[{index}]")
    elif not is_finite(value):
        yield key, value


class FiniteFloatRange(click.FloatRange):
    """`click.FloatRange` that also refuses nan and inf (its bounds alone let nan through)."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)
