"""The training worker: the only package of the service that imports mlx (the daemon runs it as a
subprocess). farensed.demo.model, a setup tool, imports mlx too; nothing else does."""
