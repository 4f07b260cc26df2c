"""The layer catalogue: one module per layer family."""
