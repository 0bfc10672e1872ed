"""The tiny demo model, built and warmed up by scripts/setup: not part of training.

    python -m farensed.demo.model [--home DIR] [--if-missing] [--force]   build.py (+ pretrain.py)
    python -m farensed.demo.model.warmup [--home DIR]                      the demo's kernel compile

Like the worker, and only as a setup tool run in its own process, this package imports mlx
(lazily, inside the functions that need it). The daemon and the client never import it.
"""
