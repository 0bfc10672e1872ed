"""Sizes, defined once (no imports: every layer reads it)."""

GIB = 1024**3  # bytes in a GiB: memory.budget_gb and every *_gb figure are GiB
