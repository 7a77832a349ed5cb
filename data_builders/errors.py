"""The one error type the data builders raise for bad input: its message names the file:line or key to fix."""


class DataError(Exception):
    """Bad input that stops a build (the CLI prints it and exits 1, leaving no output file)."""


class RowError(DataError):
    """One bad row; `--on-error skip` counts and skips these instead of stopping."""
