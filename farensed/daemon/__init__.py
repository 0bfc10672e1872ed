"""The farensed daemon: spool intake, the worker process, control requests and status.json. No mlx here."""
