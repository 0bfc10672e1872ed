"""The farensed daemon: spool queue, supervisor, control requests and status.json. No mlx here."""
