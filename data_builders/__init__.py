"""Data builders: the paper's instruction mixture from its sources, as Alpaca JSONL with a manifest."""
