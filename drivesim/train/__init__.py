"""Training loops and losses, one entry per model."""
