"""Record filters, one rule per module; each returns None to keep a record or the reason it drops it."""
