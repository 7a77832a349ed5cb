"""Model tools: architecture table and closed-form footprint, tiny / synthetic / real (SmolLM2) checkpoints,
loading a base model with its adapter."""
