"""This machine and its neighbours: BLAS, Metal, the background service (launchd/systemd), doctor,
host facts and the hosts of a data-parallel job. No mlx here."""
