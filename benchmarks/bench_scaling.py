"""How ``VAETransformer``'s time and memory scale with the number of rows.

What is measured
----------------
For each size N in ``--sizes`` (default ``1e4 1e5 1e6``) the data are N rows of
64 float32 features: low-rank Gaussian (8 factors) plus isotropic noise,
seeded. They are written chunk by chunk to a ``.npy`` file in a temporary
directory (so generating them never holds N x 64 values in memory) and opened
with ``np.load(mmap_mode="r")``: the estimator reads the same ``numpy.memmap``
code path as data larger than memory. The file is freshly written, so its
pages are normally still in the OS page cache: this measures the library, not
the disk.

The model is ``VAETransformer(n_components=16, hidden_layer_sizes=(256, 256),
batch_size=256, max_iter=--epochs, early_stopping=False, random_state=0)``.

Every N runs in fresh worker processes (this script re-run with
``--worker``, answering with one line of JSON), because the peak resident
set size cannot be reset within a process. Before measuring, a worker warms
up torch (one small fit, ``transform`` and ``log_likelihood`` on the first
2048 rows), so first-call costs do not inflate the smallest N.

Times (the ``time`` worker)
    * seconds per training epoch: skorch's own ``dur`` column of
      ``vae.net_.history`` (mean over the epochs), so validation, the column
      statistics and net construction done by ``fit`` are not counted;
    * ``transform(X)`` on all N rows, timed with ``time.perf_counter``;
    * ``log_likelihood(X[:m], n_importance_samples=100, random_state=0)`` on
      m = min(N, 2000) rows, reported in rows per second. Its cost per row
      does not depend on N (the model has the same size for every N), and on
      all rows it would take minutes at N = 1e6, so a fixed slice is scored.

    Per-row costs (microseconds per row) are reported for training and
    ``transform``, and a least-squares line of log(time) against log(N) gives
    the measured exponents; linear scaling is an exponent of about 1.

Memory
    The baseline is taken after imports, opening the memmap and the warm-up.

    * ``peak RSS``: the peak resident set size during fit + transform
      (``VmHWM``, reset to the current RSS at the baseline through
      ``/proc/self/clear_refs``; ``ru_maxrss``, which cannot be reset, where
      that is unavailable) minus the resident set size at the baseline. It
      includes the memmap's file-backed
      pages: every epoch reads every row, so up to the whole file (N x 64 x 4
      bytes, printed as ``input``) is counted although none of it is a copy
      and the kernel may drop those pages at any time. ``file pages`` is the
      growth of ``RssFile`` (file-backed resident memory) from the baseline
      to the end of ``transform``.
    * ``anon``: the peak of anonymous (not file-backed) resident memory
      (``RssAnon`` of ``/proc/self/status``, polled every 5 ms by a thread)
      above the baseline, separately during ``fit`` and ``transform``. This
      counts every real allocation, torch's included, and excludes the file.
    * ``traced``: in a second worker (the ``memory`` worker, so the tracing
      overhead does not touch the timings), the ``tracemalloc`` peak during
      ``fit`` and during ``transform``. numpy reports its buffers to
      tracemalloc (torch's CPU allocator does not), so this is the cleanest
      measure of array copies: a whole-input copy would show as N x 64 x 4
      bytes or more.

    What must grow with N: shuffling draws a ``torch.randperm`` of N int64
    (8 bytes per row) each epoch, and ``transform`` returns N x 16 float64
    (128 bytes per row, printed as ``output``) which it assembles from
    per-batch pieces (so about twice that at the peak). Everything else
    should stay bounded by a few batches. (With glibc's malloc, the per-batch
    pieces that ``transform`` keeps interleave with each batch's freed
    temporaries on the heap, so ``anon`` can exceed the output several times
    over without any array being copied; ``traced`` tells the two apart.)
    The growth per extra row between the smallest and the largest N is
    printed next to the input's 256 bytes per row.

Sizes
    ``--sizes`` takes floats (``1e6``). ``--sizes 1e7`` also works: the file
    is 10^7 x 64 x 4 = 2.56 GB on disk (in ``--tmpdir``) and an epoch takes
    several minutes (about 46 us per row on one thread of a loaded 2-core
    machine, so about 8 minutes per epoch and 2 for ``transform``), run
    twice (``time`` and ``memory`` workers).

Run with ``python benchmarks/bench_scaling.py --help`` for the options.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings

import numpy as np
from _common import format_table, load_average, print_environment

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
    """Write low-rank-plus-noise float32 data to a ``.npy`` file, chunk by chunk.

    Parameters
    ----------
    path : str
        Destination ``.npy`` file.
    n_samples : int
        Number of rows; there are ``N_FEATURES`` columns.
    seed : int, default=0
        Seed of the NumPy generator; the rows depend on it only (the chunks
        are drawn in order from one generator).
    """
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
    if args.threads is not None:
        torch.set_num_threads(args.threads)
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
        start = time.perf_counter()
        Z = vae.transform(X)
        result["transform_s"] = time.perf_counter() - start
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
    start = time.perf_counter()
    log_likelihood = vae.log_likelihood(
        X[:m], n_importance_samples=N_IMPORTANCE_SAMPLES, random_state=0
    )
    result["loglik_s"] = time.perf_counter() - start
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


def mb(n_bytes):
    return "n/a" if n_bytes is None else f"{n_bytes / MB:.1f}"


def exponent(sizes, seconds):
    """Slope of the least-squares line of log(seconds) against log(sizes)."""
    if len(sizes) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def growth_per_row(sizes, values):
    """Bytes per extra row between the smallest and the largest size, or None."""
    if len(sizes) < 2 or values[0] is None or values[-1] is None:
        return None
    return (values[-1] - values[0]) / (sizes[-1] - sizes[0])


def report(results):
    """Print the time table, the memory table, the exponents and the growth."""
    sizes = [r["n_samples"] for r in results]
    epoch_s = [float(np.mean(r["epoch_durations"])) for r in results]
    transform_s = [r["transform_s"] for r in results]
    rows = []
    for r, t_epoch, t_transform in zip(results, epoch_s, transform_s, strict=True):
        n = r["n_samples"]
        rows.append(
            (
                f"{n:.0e}" if n >= 10_000 else str(n),
                f"{t_epoch:.3f}",
                f"{t_epoch / n * 1e6:.2f}",
                f"{t_transform:.3f}",
                f"{t_transform / n * 1e6:.2f}",
                f"{r['loglik_rows'] / r['loglik_s']:.0f}",
            )
        )
    header = (
        "N",
        "s/epoch",
        "train us/row",
        "transform s",
        "transform us/row",
        "log_likelihood rows/s",
    )
    print(format_table(header, rows))
    print(
        f"log_likelihood: m = min(N, {LOGLIK_ROWS}) rows, "
        f"n_importance_samples={N_IMPORTANCE_SAMPLES}"
    )
    print()

    rows = []
    for r in results:
        n = r["n_samples"]
        rows.append(
            (
                f"{n:.0e}" if n >= 10_000 else str(n),
                mb(n * N_FEATURES * 4),
                mb(r["output"]),
                mb(r["peak_rss"]),
                mb(r["rss_file"]),
                mb(r["anon_fit"]),
                mb(r["anon_transform"]),
                mb(r["traced_fit"]),
                mb(r["traced_transform"]),
            )
        )
    header = (
        "N",
        "input MB",
        "output MB",
        "peak RSS MB",
        "file pages MB",
        "anon fit MB",
        "anon transform MB",
        "traced fit MB",
        "traced transform MB",
    )
    print(format_table(header, rows))
    print(
        "peak RSS: peak RSS (VmHWM) during fit+transform minus RSS at the baseline (includes "
        "the memmap's file pages)\nfile pages: RssFile growth from the baseline to the end; "
        "anon: peak RssAnon above the baseline\ntraced: tracemalloc peak (numpy buffers and "
        "Python objects), separate worker; output: transform's result"
    )
    before = max(r["max_rss_before_over_rss"] for r in results)
    if before > 0:
        print(
            f"(the peak RSS could not be reset and was already up to {mb(before)} MB above "
            "the RSS at the baseline, from imports and warm-up; peak RSS is inflated by at "
            "most that)"
        )
    print()

    print(
        f"exponent of time vs N (least squares on log-log, target ~1): "
        f"epoch {exponent(sizes, epoch_s):.3f}, transform {exponent(sizes, transform_s):.3f}"
    )
    input_per_row = N_FEATURES * 4
    for name, key in [
        ("traced fit", "traced_fit"),
        ("anon fit", "anon_fit"),
        ("traced transform", "traced_transform"),
        ("anon transform", "anon_transform"),
        ("peak RSS", "peak_rss"),
    ]:
        growth = growth_per_row(sizes, [r[key] for r in results])
        if growth is not None:
            print(
                f"memory growth per extra row, {name:<16}: {growth:8.2f} bytes "
                f"(input is {input_per_row} bytes/row)"
            )
    print(
        "expected growth: fit ~8 bytes/row (int64 shuffle permutation), plus column_mean_std's "
        "float64 chunk of up to 8192 rows (4.2 MB) below N = 8192; transform ~128-256 "
        "bytes/row (its N x 16 float64 output, written batch by batch into one array)"
    )
    print(
        "anon above traced would be allocator behaviour, not an array copy (tracemalloc sees "
        "every numpy buffer)"
    )


# ---------------------------------------------------------------- main


def parse_size(text):
    value = float(text)
    if not value >= 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"size must be a positive whole number, got {text!r}")
    return int(value)


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=parse_size,
        nargs="+",
        default=[10_000, 100_000, 1_000_000],
        help="numbers of rows, floats allowed (1e6); 1e7 is a 2.56 GB file",
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs per fit (max_iter)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's default)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the data")
    parser.add_argument("--tmpdir", default=None, help="where the .npy files are written")
    parser.add_argument("--worker", choices=["time", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    """Write the data, run the workers per size and print the tables."""
    args = parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args)))
        return 0

    import torch

    sys.stdout.reconfigure(line_buffering=True)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print_environment()
    print(
        f"data: N x {N_FEATURES} float32 .npy opened with mmap_mode='r'; model "
        f"{N_FEATURES}->{'->'.join(map(str, HIDDEN_LAYER_SIZES))}->{N_COMPONENTS}; "
        f"batch {BATCH_SIZE}; {args.epochs} epoch(s) per fit"
    )
    print(f"load average before: {load_average()}")

    results = []
    start_all = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        for n_samples in args.sizes:
            path = os.path.join(tmp, f"X_{n_samples}.npy")
            start = time.perf_counter()
            write_data(path, n_samples, seed=args.seed)
            written = time.perf_counter() - start
            result = run_worker("time", path, args)
            result.update(
                {
                    k: v
                    for k, v in run_worker("memory", path, args).items()
                    if k.startswith("traced")
                }
            )
            os.remove(path)
            durations = " ".join(f"{d:.3f}" for d in result["epoch_durations"])
            print(
                f"  N={n_samples}: data written in {written:.1f} s; epochs (s): {durations}; "
                f"worker threads {result['threads']}; load average {load_average()}"
            )
            results.append(result)
    print(f"load average after: {load_average()}; total {time.perf_counter() - start_all:.0f} s")
    print()
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
