"""The spool's on-disk model, shared by the daemon and the client (as pueue has pueue_lib):
job records and their ids (records), control requests (requests), the spool's folders
(folders) and the daemon's single-instance lock (lock).

Nothing is imported here, so `farensectl status` pays only for lock.py (no pydantic). No mlx.
"""
