"""Helpers shared by the benchmark scripts: what was measured, and on how busy a machine."""

import os
import platform
import shlex
import subprocess
import sys

import numpy as np
import sklearn
import skorch
import torch
from threadpoolctl import threadpool_limits

import sklearn_vae

__all__ = [
    "add_threads_argument",
    "format_table",
    "library_state",
    "load_average",
    "print_environment",
    "start_run",
]


def print_environment(blas_threads=None):
    """Print the command line, the machine and the versions (and torch's thread count)."""
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}"
    )
    limit = "" if blas_threads is None else f"; BLAS/OpenMP limited to {blas_threads}"
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads{limit}), "
        f"skorch {skorch.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}"
    )


def format_table(header, rows, left=1):
    """Aligned plain-text table; the first ``left`` columns are left-aligned."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


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


def start_run(threads):
    """Use ``threads`` torch and BLAS threads, and print what is measured on which machine.

    BLAS is limited too: numpy's and scipy's oversubscribed threads distort every
    timing and slow scikit-learn's models many times over.
    """
    sys.stdout.reconfigure(line_buffering=True)
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    print_environment(threads)
    print(library_state())


def add_threads_argument(parser):
    """The ``--threads`` option every benchmark takes: torch and BLAS/OpenMP threads."""
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="torch threads, and BLAS/OpenMP threads (threadpoolctl)",
    )
