"""Where a job's model comes from: a local folder (resolved against the home) or the hub. No mlx here:
the worker, the validator, the daemon and the client all ask this."""

from __future__ import annotations

from farensed.core.paths import Home


def looks_like_hub_id(value: str, home: Home) -> bool:
    """'org/name' that is not a local path (its first part is not a folder of the home)."""
    parts = value.split("/")
    return (len(parts) == 2 and all(parts) and not value.startswith((".", "~", "/"))
            and not home.resolve(parts[0]).exists())


def local_or_hub(value: str, home: Home) -> str:
    """What mlx_lm.load takes: the local folder when it exists, else the hub id as written."""
    local = home.resolve(value)
    return str(local) if local.exists() else value
