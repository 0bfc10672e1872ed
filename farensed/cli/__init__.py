"""Command-line entry points: farensectl (client) and farensed (daemon). No mlx here."""
