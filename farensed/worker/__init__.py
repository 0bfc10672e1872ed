"""The training worker: the only package that imports mlx."""
