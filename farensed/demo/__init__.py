"""The README's first command (run.py: daemon, submit, watch, results) and the tiny demo model that
scripts/setup builds (model/: the only place besides worker/ that imports mlx)."""
