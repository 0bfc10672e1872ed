"""macOS GPU watchdog: the worker runs with AGX_RELAX_CDM_CTXSTORE_TIMEOUT=1 (pure functions).

A long Metal command buffer on a Mac the user is working on can be killed by the OS with
kIOGPUCommandBufferCallbackErrorImpactingInteractivity, which ended the user's earlier
overnight run. MLX issue #3267 (wontfix: OS policy) reports that this variable in the
training process's environment resolves it. farensed sets it for the worker on macOS unless
the user set it themselves (their value wins) or turned it off (`farensed run --no-metal-relax`).
The retry path for the abort stays in place (daemon/policy.py: gpu_fault).
"""

from __future__ import annotations

import sys

AGX_VAR = "AGX_RELAX_CDM_CTXSTORE_TIMEOUT"


def applies(platform: str | None = None) -> bool:
    return (platform or sys.platform) == "darwin"


def relax_env(env: dict[str, str], enabled: bool = True, platform: str | None = None) -> dict[str, str]:
    """`env` with the variable set for a macOS worker (a value already there is kept)."""
    if enabled and applies(platform) and AGX_VAR not in env:
        return {**env, AGX_VAR: "1"}
    return env


def describe(env: dict[str, str], enabled: bool = True, platform: str | None = None) -> str:
    """What status and doctor say about it for a worker started with `env` and this setting."""
    if not applies(platform):
        return "not applicable (not macOS)"
    if AGX_VAR in env:
        return f"{AGX_VAR}={env[AGX_VAR]} (set in the daemon's environment)"
    if enabled:
        return f"{AGX_VAR}=1 (set by farensed for the worker; --no-metal-relax turns it off)"
    return f"off (--no-metal-relax): {AGX_VAR} is not set"
