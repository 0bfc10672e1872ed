"""Metal's watchdog (the abort that ended the user's earlier run): the worker's environment on macOS."""

from __future__ import annotations

from farensed.host import metal


def test_a_macos_worker_gets_the_relaxed_watchdog_unless_turned_off():
    # Given the daemon's environment without the variable
    env = {"PATH": "/usr/bin"}
    # Then on macOS the worker gets it, and status says so; --no-metal-relax leaves it out
    assert metal.relax_env(env, True, "darwin")[metal.AGX_VAR] == "1"
    assert metal.describe(env, True, "darwin").startswith(f"{metal.AGX_VAR}=1 (set by farensed")
    assert metal.AGX_VAR not in metal.relax_env(env, False, "darwin")
    assert metal.describe(env, False, "darwin").startswith("off (--no-metal-relax)")


def test_the_users_own_value_wins_and_linux_is_left_alone():
    # Given a user who set the variable themselves
    env = {metal.AGX_VAR: "0"}
    # Then their value is kept (even with the option on) and status says where it came from
    assert metal.relax_env(env, True, "darwin")[metal.AGX_VAR] == "0"
    assert "set in the daemon's environment" in metal.describe(env, True, "darwin")
    # And on Linux nothing is added
    assert metal.relax_env({}, True, "linux") == {}
    assert metal.describe({}, True, "linux") == "not applicable (not macOS)"
