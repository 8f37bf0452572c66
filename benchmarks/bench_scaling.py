"""How ``VAETransformer``'s time and memory scale with the number of rows.

Protocol: for each N in ``--sizes``, N x 64 float32 low-rank rows written to a
``.npy`` file and opened with ``mmap_mode="r"``; in fresh worker processes
(this script with ``--worker``), after a warm-up, ``VAETransformer(
n_components=16, batch_size=256, max_iter=--epochs, early_stopping=False)``
is fitted and transforms all rows; skorch's epoch durations, ``transform``
time, ``log_likelihood`` (K=100) rows per second on min(N, 2000) rows, peak
and anonymous resident memory and tracemalloc peaks. What each memory figure
counts is explained in ``docs/benchmarks.md``. Command:
``python benchmarks/bench_scaling.py --threads 1 --sizes 1e4 1e5 1e6``.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import tracemalloc
import warnings

import _harness as harness
import numpy as np

N_FEATURES = 64
N_COMPONENTS = 16
HIDDEN_LAYER_SIZES = (256, 256)
BATCH_SIZE = 256
RANK = 8
NOISE = 0.5
CHUNK_ROWS = 65_536
LOGLIK_ROWS = 2000
N_IMPORTANCE_SAMPLES = 100
WARM_UP_ROWS = 2048
POLL_SECONDS = 0.005
MB = 1e6


# ---------------------------------------------------------------- data


def write_data(path, n_samples, seed=0):
    """Write ``n_samples`` low-rank-plus-noise float32 rows to a ``.npy`` file, chunk by chunk."""
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((RANK, N_FEATURES))
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_samples, N_FEATURES))
    for start in range(0, n_samples, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, n_samples)
        factors = rng.standard_normal((stop - start, RANK))
        noise = rng.standard_normal((stop - start, N_FEATURES))
        X[start:stop] = factors @ loadings + NOISE * noise
    X.flush()
    del X


# -------------------------------------------------------------- memory


def proc_status_bytes(field):
    """A ``kB`` field of ``/proc/self/status`` in bytes, or None where unavailable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def max_rss_bytes():
    """Peak resident set size of this process in bytes.

    ``VmHWM`` of ``/proc/self/status`` where it exists (it can be reset, see
    ``reset_max_rss``), else ``ru_maxrss``.
    """
    peak = proc_status_bytes("VmHWM")
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def reset_max_rss():
    """Reset the peak RSS to the current RSS (Linux >= 4.0); True on success.

    Without it the peak still holds the imports' and the warm-up's transient
    memory, which ``ru_maxrss`` can never forget.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


class AnonPeak:
    """Poll ``RssAnon`` in a thread and keep its peak since the last ``reset``."""

    def __init__(self, interval=POLL_SECONDS):
        self.interval = interval
        self.available = proc_status_bytes("RssAnon") is not None
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_status_bytes("RssAnon") or 0)
            self._stop.wait(self.interval)

    def reset(self):
        self.peak = proc_status_bytes("RssAnon") or 0

    def read(self):
        """Peak since the last ``reset`` (including the current value)."""
        self.peak = max(self.peak, proc_status_bytes("RssAnon") or 0)
        return self.peak if self.available else None

    def __enter__(self):
        if self.available:
            self.reset()
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


# --------------------------------------------------------------- worker


def make_estimator(epochs):
    """The benchmarked ``VAETransformer``."""
    from sklearn_vae import VAETransformer

    return VAETransformer(
        n_components=N_COMPONENTS,
        hidden_layer_sizes=HIDDEN_LAYER_SIZES,
        batch_size=BATCH_SIZE,
        max_iter=epochs,
        early_stopping=False,
        random_state=0,
    )


def warm_up(X):
    """One small fit, transform and log_likelihood, to pay first-call costs."""
    rows = X[:WARM_UP_ROWS]
    vae = make_estimator(1).fit(rows)
    vae.transform(rows)
    vae.log_likelihood(rows[:256], n_importance_samples=N_IMPORTANCE_SAMPLES, random_state=0)


def worker(args):
    """Measure one size in this (fresh) process; return a dict for JSON."""
    import torch
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X = np.load(args.path, mmap_mode="r")
    if not isinstance(X, np.memmap):
        raise RuntimeError("np.load did not return a numpy.memmap.")
    n_samples = X.shape[0]
    warm_up(X)
    result = {"n_samples": n_samples, "threads": torch.get_num_threads()}

    if args.worker == "memory":
        tracemalloc.start()
        vae = make_estimator(args.epochs)
        tracemalloc.reset_peak()
        start_traced = tracemalloc.get_traced_memory()[0]
        vae.fit(X)
        result["traced_fit"] = tracemalloc.get_traced_memory()[1] - start_traced
        tracemalloc.reset_peak()
        start_traced = tracemalloc.get_traced_memory()[0]
        Z = vae.transform(X)
        result["traced_transform"] = tracemalloc.get_traced_memory()[1] - start_traced
        tracemalloc.stop()
        result["output"] = Z.nbytes
        return result

    reset_max_rss()
    rss_before = proc_status_bytes("VmRSS")
    file_before = proc_status_bytes("RssFile")
    result["max_rss_before_over_rss"] = max_rss_bytes() - rss_before
    with AnonPeak() as anon:
        anon_before = anon.read()
        vae = make_estimator(args.epochs)
        vae.fit(X)
        result["anon_fit"] = None if anon_before is None else anon.read() - anon_before
        anon.reset()
        Z, result["transform_s"] = harness.timed(lambda: vae.transform(X))
        result["anon_transform"] = None if anon_before is None else anon.read() - anon_before
    result["peak_rss"] = max_rss_bytes() - rss_before
    file_after = proc_status_bytes("RssFile")
    result["rss_file"] = None if file_before is None else file_after - file_before
    result["output"] = Z.nbytes
    del Z
    durations = [float(d) for d in vae.net_.history[:, "dur"]]
    if len(durations) != args.epochs:
        raise RuntimeError(f"ran {len(durations)} epochs instead of {args.epochs}.")
    result["epoch_durations"] = durations

    m = min(n_samples, LOGLIK_ROWS)
    log_likelihood, result["loglik_s"] = harness.timed(
        lambda: vae.log_likelihood(X[:m], n_importance_samples=N_IMPORTANCE_SAMPLES, random_state=0)
    )
    result["loglik_rows"] = m
    if not np.all(np.isfinite(log_likelihood)):
        raise RuntimeError("log_likelihood returned non-finite values.")
    return result


def run_worker(mode, path, args):
    """Run this script as a ``--worker`` subprocess and parse its JSON answer."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--path", path]
    command += ["--epochs", str(args.epochs)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        raise RuntimeError(f"worker {mode} failed for {path} (exit {completed.returncode}).")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------- report


def exponent(sizes, seconds):
    """Slope of the least-squares line of log(seconds) against log(sizes)."""
    if len(sizes) < 2:
        return None
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def growth_per_row(sizes, values):
    """Bytes per extra row between the smallest and the largest size, or None."""
    if len(sizes) < 2 or values[0] is None or values[-1] is None:
        return None
    return (values[-1] - values[0]) / (sizes[-1] - sizes[0])


def summarise(result):
    """Derived per-row figures of one worker result, added to it."""
    n = result["n_samples"]
    result["epoch_s"] = float(np.mean(result["epoch_durations"]))
    result["train_us_per_row"] = result["epoch_s"] / n * 1e6
    result["transform_us_per_row"] = result["transform_s"] / n * 1e6
    result["loglik_rows_per_s"] = result["loglik_rows"] / result["loglik_s"]
    result["input"] = n * N_FEATURES * 4
    return result


def report(rows, header):
    """Print the time table, the memory table, the exponents and the growth per row."""
    harness.print_rows(
        rows,
        [
            ("n_samples", "N", ".0e"),
            ("epoch_s", "s/epoch", ".3f"),
            ("train_us_per_row", "train us/row", ".2f"),
            ("transform_s", "transform s", ".3f"),
            ("transform_us_per_row", "transform us/row", ".2f"),
            ("loglik_rows_per_s", "log_likelihood rows/s", ".0f"),
        ],
    )
    print()
    megabytes = [
        {k: v / MB if isinstance(v, int) and k != "n_samples" else v for k, v in r.items()}
        for r in rows
    ]
    harness.print_rows(
        megabytes,
        [("n_samples", "N", ".0e")] + [(key, f"{key} MB", ".1f") for key in MEMORY],
    )
    print(f"exponents of time against N: {header['exponents']}")
    print(f"growth per extra row, bytes (input: {N_FEATURES * 4}): {header['growth_per_row']}")


MEMORY = (
    "input",
    "output",
    "peak_rss",
    "rss_file",
    "anon_fit",
    "anon_transform",
    "traced_fit",
    "traced_transform",
)


# ---------------------------------------------------------------- main


def parse_size(text):
    value = float(text)
    if not value >= 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"size must be a positive whole number, got {text!r}")
    return int(value)


def parse_args(argv=None):
    """Command-line options."""
    parser = harness.parser(__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=parse_size,
        nargs="+",
        default=None,
        help="numbers of rows, floats allowed (1e6); 1e7 is a 2.56 GB file "
        "(default 1e4 1e5 1e6; quick 2e3 4e3)",
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs per fit (max_iter)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data")
    parser.add_argument("--tmpdir", default=None, help="where the .npy files are written")
    parser.add_argument("--worker", choices=["time", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [2_000, 4_000] if args.quick else [10_000, 100_000, 1_000_000]
    return args


def main(argv=None):
    """Write the data, run the workers per size, print the tables and write the results."""
    args = parse_args(argv)
    if args.worker is not None:
        with harness.thread_limit(args.threads):
            print(json.dumps(worker(args)))
        return 0
    run = harness.Run(
        "bench_scaling",
        args,
        model=f"{N_FEATURES}->{'->'.join(map(str, HIDDEN_LAYER_SIZES))}->{N_COMPONENTS}",
        batch_size=BATCH_SIZE,
        loglik_rows=LOGLIK_ROWS,
        n_importance_samples=N_IMPORTANCE_SAMPLES,
    )
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        for n_samples in args.sizes:
            path = os.path.join(tmp, f"X_{n_samples}.npy")
            write_data(path, n_samples, seed=args.seed)
            result = run_worker("time", path, args)
            traced = run_worker("memory", path, args)
            result.update({k: v for k, v in traced.items() if k.startswith("traced")})
            os.remove(path)
            run.add(**summarise(result))
            durations = " ".join(f"{d:.3f}" for d in result["epoch_durations"])
            print(f"  N={n_samples}: epochs (s) {durations}; worker threads {result['threads']}")
    sizes = [r["n_samples"] for r in run.rows]
    run.header["exponents"] = {
        "epoch": exponent(sizes, [r["epoch_s"] for r in run.rows]),
        "transform": exponent(sizes, [r["transform_s"] for r in run.rows]),
    }
    run.header["growth_per_row"] = {
        key: growth_per_row(sizes, [r[key] for r in run.rows])
        for key in ("traced_fit", "anon_fit", "traced_transform", "anon_transform", "peak_rss")
    }
    report(run.rows, run.header)
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
