"""`nextai-eval`: the paper's HELM subset through lm-evaluation-harness, as a Table-8-shaped row."""
