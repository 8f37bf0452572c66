"""Helpers shared by the benchmark scripts: what was measured, and on how busy a machine."""

import os
import subprocess

import sklearn_vae

__all__ = ["library_state", "load_average"]


def library_state():
    """``sklearn_vae`` version, git commit and whether its sources differ from it.

    The library may change between runs; this line says which code was measured.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(sklearn_vae.__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "sklearn_vae"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        changed = [line[3:] for line in changed if line.strip()]
    except (OSError, subprocess.CalledProcessError):
        return f"sklearn_vae {sklearn_vae.__version__} (git state unknown)"
    state = f"uncommitted changes in {', '.join(changed)}" if changed else "clean"
    return f"sklearn_vae {sklearn_vae.__version__} at commit {commit} ({state})"


def load_average():
    """The 1, 5 and 15 minute load averages, or "n/a" where the platform has none."""
    try:
        return " ".join(f"{load:.2f}" for load in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"
