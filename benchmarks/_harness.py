"""What every benchmark script shares: options, thread limits, timing, environment, result files.

A script builds its options with :func:`parser`, opens a :class:`Run`, adds one
dict per measured row and writes ``benchmarks/results/<name>.json`` (or
``--output``): ``{"header": {...}, "rows": [...]}``. The header says what was
measured on which code and machine; ``benchmarks/report.py`` turns the rows
into the tables of ``docs/benchmarks.md``.
"""

import argparse
import contextlib
import datetime
import inspect
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import skorch
import torch
from threadpoolctl import threadpool_limits

import sklearn_vae
from sklearn_vae import __version__ as library_version

__all__ = [
    "RESULTS",
    "Run",
    "cell",
    "environment",
    "format_table",
    "git_state",
    "interleaved",
    "load_breast_cancer_table",
    "load_cars_table",
    "load_penguins_table",
    "load_wine_table",
    "low_rank_data",
    "make_missing",
    "parser",
    "print_rows",
    "summary",
    "thread_limit",
    "time_calls",
    "timed",
]

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
# The checkout of the library measured (the one imported, which PYTHONPATH may choose).
LIBRARY_ROOT = Path(inspect.getfile(sklearn_vae)).resolve().parent.parent


# ----------------------------------------------------------------------- options


def parser(description, *, threads=True, quick=True):
    """An ``ArgumentParser`` with the options every script shares.

    ``--output`` (the result file), ``--threads`` (torch and BLAS/OpenMP
    threads, default every core) and ``--quick`` (tiny sizes: a smoke run of
    the script in seconds, not a measurement).
    """
    result = argparse.ArgumentParser(description=description)
    result.add_argument(
        "--output", type=Path, default=None, help="result file (default: results/<script>.json)"
    )
    if threads:
        result.add_argument(
            "--threads",
            type=int,
            default=os.cpu_count(),
            help="torch threads, and BLAS/OpenMP threads (threadpoolctl)",
        )
    if quick:
        result.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    return result


@contextlib.contextmanager
def thread_limit(threads):
    """Use ``threads`` torch and BLAS/OpenMP threads inside the block, then restore.

    ``OMP_NUM_THREADS`` is set too, for child processes started inside.
    ``None`` changes nothing.
    """
    if threads is None:
        yield
        return
    saved_torch, saved_env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(saved_torch)
        if saved_env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved_env


# ------------------------------------------------------------------- environment


def git_state(root=LIBRARY_ROOT):
    """``{"commit": str, "dirty": bool, "changed": [paths]}`` of the imported library's checkout.

    ``dirty`` is whether ``sklearn_vae/`` or ``benchmarks/`` (the result
    files aside) differ from the commit. ``commit`` is None outside git.
    """

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout

    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        status = git("status", "--porcelain", "--", "sklearn_vae", "benchmarks")
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None, "changed": []}
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    changed = [path for path in changed if not path.startswith("benchmarks/results/")]
    return {"commit": commit, "dirty": bool(changed), "changed": changed}


def load_average():
    """The 1, 5 and 15 minute load averages, or None where the platform has none."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _relative(arg):
    """A path of this checkout as written from its root (``benchmarks/...``); else ``arg``."""
    path = Path(arg)
    if not (path.is_absolute() or path.exists()):
        return arg
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(ROOT))
    parts = path.resolve().parts
    return str(Path(*parts[parts.index("benchmarks") :])) if "benchmarks" in parts else arg


def environment(argv=None):
    """The header of a result file: command, date, code, versions and machine."""
    argv = sys.argv if argv is None else argv
    return {
        "command": shlex.join(["python", *(_relative(arg) for arg in argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
        "versions": {
            "python": platform.python_version(),
            "sklearn_vae": library_version,
            "torch": torch.__version__,
            "skorch": skorch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "machine": {"platform": platform.machine(), "cpu_count": os.cpu_count()},
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load_average(),
    }


def _plain(value):
    """``value`` as JSON: numpy scalars and arrays as numbers and lists, NaN as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    return value


class Run:
    """One run of a benchmark: its header, its rows, and the result file they go to.

    Parameters
    ----------
    name : str
        The script's name, ``bench_x``; the default file is ``results/<name>.json``.
    args : argparse.Namespace
        The parsed options: recorded in the header; ``args.output`` overrides
        the file, ``args.quick`` marks a smoke run.
    **header
        More header fields: the protocol's constants, units, notes.
    """

    def __init__(self, name, args, **header):
        sys.stdout.reconfigure(line_buffering=True)
        self.name = name
        self.path = getattr(args, "output", None) or RESULTS / f"{name}.json"
        self.header = {"benchmark": name, **environment()}
        self.header["options"] = {k: v for k, v in vars(args).items() if k != "output"}
        self.header.update(header)
        self.rows = []
        self._start = time.perf_counter()
        env = self.header
        git = env["git"]
        state = "unknown" if git["commit"] is None else git["commit"]
        if git["dirty"]:
            state += f" with uncommitted changes in {', '.join(git['changed'])}"
        print(f"command: {env['command']}")
        print(f"code: sklearn_vae {env['versions']['sklearn_vae']} at {state}")
        print(
            "versions: "
            + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if k != "sklearn_vae")
        )
        print(
            f"machine: {env['machine']['platform']}, {env['machine']['cpu_count']} CPUs, "
            f"torch threads {env['torch_threads']}, load average {env['load_average_before']}"
        )
        if getattr(args, "quick", False):
            print("QUICK run: a smoke test of the script, not a measurement")

    def add(self, **row):
        """Append one row (typed fields) and return it."""
        self.rows.append(row)
        return row

    def write(self):
        """Write the result file and return its path."""
        self.header["load_average_after"] = load_average()
        self.header["seconds"] = round(time.perf_counter() - self._start, 1)
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        content = {"header": _plain(self.header), "rows": _plain(self.rows)}
        path.write_text(json.dumps(content, indent=1, allow_nan=False) + "\n")
        print(f"\ntotal {self.header['seconds']:.0f} s; results written to {path}")
        return path


# ------------------------------------------------------------------------ timing


def summary(values):
    """``{"median", "min", "max"}`` of a list of numbers."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def timed(call):
    """``(call(), seconds it took)``."""
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def time_calls(call, repeats, warmup=0):
    """Seconds of ``repeats`` calls of ``call()``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def interleaved(calls, repeats, reference=None, alternate=True, reported=False):
    """Time several calls in rounds, and each one's ratio to ``reference`` within a round.

    Each round calls every entry of ``calls`` (name -> zero-argument
    callable) once, in order, or in reverse order every other round when
    ``alternate``: slow drifts of the machine then touch them alike. The wall
    time of each call is taken, or, when ``reported``, the seconds the call
    returns (its own measurement, such as skorch's epoch durations).

    Returns
    -------
    dict of name -> dict
        ``seconds`` (list, one per round), ``median``, ``min``, ``max``, and,
        with a ``reference``, ``ratios`` (this call's seconds over the
        reference's in the same round) and their ``ratio`` (median),
        ``ratio_min`` and ``ratio_max``.
    """
    names = list(calls)
    seconds = {name: [] for name in names}
    for round_ in range(repeats):
        order = names[::-1] if alternate and round_ % 2 else names
        for name in order:
            start = time.perf_counter()
            own = calls[name]()
            seconds[name].append(float(own) if reported else time.perf_counter() - start)
    results = {name: {"seconds": values, **summary(values)} for name, values in seconds.items()}
    if reference is not None:
        for name in names:
            ratios = [a / b for a, b in zip(seconds[name], seconds[reference], strict=True)]
            results[name]["ratios"] = ratios
            results[name]["ratio"] = statistics.median(ratios)
            results[name]["ratio_min"], results[name]["ratio_max"] = min(ratios), max(ratios)
    return results


# ------------------------------------------------------------------------ tables


def format_table(header, rows, left=1):
    """Aligned plain-text table of strings; the first ``left`` columns are left-aligned."""
    rows = [[str(cell) for cell in row] for row in rows]
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


def cell(value, fmt=""):
    """One table cell: ``—`` for None, else ``format(value, fmt)``."""
    return "—" if value is None else format(value, fmt)


def print_rows(rows, columns, left=1):
    """Print dict rows as a table; ``columns`` is a list of ``(key, title, format)``."""
    header = [title for _, title, _ in columns]
    body = [[cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows]
    print(format_table(header, body, left=left))


# -------------------------------------------------------------------------- data


def low_rank_data(n_samples, n_features, rank=8, noise=0.5, seed=0, dtype=np.float32):
    """Low-rank Gaussian rows plus isotropic noise: ``factors @ loadings + noise * eps``."""
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n_samples, rank))
    loadings = rng.standard_normal((rank, n_features))
    X = factors @ loadings + noise * rng.standard_normal((n_samples, n_features))
    return X.astype(dtype)


def load_penguins_table():
    """Palmer penguins, 344 x 8: three string columns, four floats, int ``year``; NaN in six."""
    from palmerpenguins import load_penguins

    return load_penguins().reset_index(drop=True)


def load_cars_table():
    """Auto-mpg, 406 x 8, without ``Name``; ``Year`` as int64 calendar years."""
    from vega_datasets import local_data

    df = local_data.cars().drop(columns="Name")
    df["Year"] = df["Year"].dt.year.astype("int64")
    return df.reset_index(drop=True)


def make_missing(df, fraction, random_state):
    """A copy of ``df`` with each entry set to NaN with probability ``fraction`` (MCAR)."""
    rng = np.random.default_rng(random_state)
    return df.mask(rng.random(df.shape) < fraction)


def _labelled_table(loader, missing, random_state):
    import pandas as pd

    bunch = loader(as_frame=True)
    df = bunch.data.astype("float64").reset_index(drop=True)
    names = np.array([f"class_{k}" for k in range(len(bunch.target_names))])
    df["label"] = pd.Series(names[bunch.target.to_numpy()], dtype="str")
    return make_missing(df, missing, random_state) if missing else df


def load_wine_table(missing=0.2, random_state=0):
    """``load_wine``, 178 x 14: 13 floats and a string ``label``, then ``missing`` MCAR."""
    from sklearn.datasets import load_wine

    return _labelled_table(load_wine, missing, random_state)


def load_breast_cancer_table(missing=0.2, random_state=0):
    """``load_breast_cancer``, 569 x 31: 30 floats and a string ``label``, then ``missing`` MCAR."""
    from sklearn.datasets import load_breast_cancer

    return _labelled_table(load_breast_cancer, missing, random_state)


# ------------------------------------------------------------- plain torch reference


class PlainVAE(torch.nn.Module):
    """A Gaussian VAE written in plain torch, shaped as ``VAETransformer``'s default network.

    Encoder ``n_features -> 256 -> 256 -> (mean, scale) of n_components``
    with ReLUs, the mirrored decoder giving a mean and a scale per feature
    (scales ``softplus + floor``), a standard normal prior: the reference
    against which the library's training loop and scoring are timed.
    """

    def __init__(self, n_features, n_components=16, hidden_layer_sizes=(256, 256)):
        super().__init__()

        def mlp(n_inputs, widths):
            layers = []
            for width in widths:
                layers += [torch.nn.Linear(n_inputs, width), torch.nn.ReLU()]
                n_inputs = width
            return torch.nn.Sequential(*layers), n_inputs

        self.encoder, width = mlp(n_features, hidden_layer_sizes)
        self.encoder_loc = torch.nn.Linear(width, n_components)
        self.encoder_scale = torch.nn.Linear(width, n_components)
        self.decoder, width = mlp(n_components, tuple(reversed(hidden_layer_sizes)))
        self.decoder_loc = torch.nn.Linear(width, n_features)
        self.decoder_scale = torch.nn.Linear(width, n_features)

    def posterior(self, x):
        h = self.encoder(x)
        scale = torch.nn.functional.softplus(self.encoder_scale(h)) + 1e-4
        return torch.distributions.Independent(
            torch.distributions.Normal(self.encoder_loc(h), scale), 1
        )

    def elbo(self, x):
        """One-draw ELBO of each row (reparametrised), with the analytic KL."""
        q = self.posterior(x)
        h = self.decoder(q.rsample())
        scale = torch.nn.functional.softplus(self.decoder_scale(h)) + 1e-3
        log_prob = torch.distributions.Normal(self.decoder_loc(h), scale).log_prob(x).sum(-1)
        prior = torch.distributions.Independent(
            torch.distributions.Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean)), 1
        )
        return log_prob - torch.distributions.kl_divergence(q, prior)


def standardise(X):
    """``X`` standardised column by column, as a float32 tensor."""
    X = np.asarray(X, dtype=np.float64)
    return torch.from_numpy(((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32))
