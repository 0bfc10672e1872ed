"""The shared core that the client, the daemon and the worker all read (as pueue has pueue_lib): the job
file and its spec, the job's states, the run folder's files, status.json, the spool, paths, errors,
exit codes and logs. No mlx here."""
