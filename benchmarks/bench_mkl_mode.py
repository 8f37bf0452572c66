"""What MKL's strict reproducibility mode costs: fit times under it and MKL's default.

``import sklearn_vae`` sets ``MKL_CBWR=AUTO,STRICT`` (unless the variable is
set), under which torch's matrix products give the same bits with any thread
count; ``AUTO`` is MKL's default mode, the fastest code path without that
promise. The mode is fixed for the life of a process, so each measurement is
a child process of its own, and the two modes alternate: a pair is one child
of each, in alternating order from pair to pair, so a drift of the machine
affects both alike.

A child fits the default network on ``load_digits`` (``likelihood="categorical"``,
``n_components=16``, ``--epochs`` epochs, early stopping off) with ``n_jobs=1``
and ``n_jobs=2`` alternately, ``--fits`` times each after one warm-up fit, and
reports the median seconds of each. The table gives, per thread count, the
median over pairs of each mode's time and of the per-pair ratio strict /
default.

Run on an otherwise idle machine: ``python benchmarks/bench_mkl_mode.py``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from _common import format_table, library_state, load_average, print_environment

MODES = {"strict": "AUTO,STRICT", "default": "AUTO"}

CHILD = """
import json, statistics, sys, time, warnings
import torch
torch.set_num_threads(max(torch.get_num_threads(), 2))
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn_vae import VAETransformer
from sklearn_vae._threads import thread_invariant_blas
epochs, fits = int(sys.argv[1]), int(sys.argv[2])
X = load_digits().data
def fit(n_jobs):
    vae = VAETransformer(likelihood="categorical", n_components=16, max_iter=epochs,
                         early_stopping=False, random_state=0, n_jobs=n_jobs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    return time.perf_counter() - start
fit(1)
times = {1: [], 2: []}
for _ in range(fits):
    for n_jobs in times:
        times[n_jobs].append(fit(n_jobs))
print(json.dumps({"strict": thread_invariant_blas(),
                  "median": {n: statistics.median(t) for n, t in times.items()}}))
"""


def run_child(mode, epochs, fits):
    """``(whether the child's MKL was strict, {threads: median seconds})``."""
    env = {**os.environ, "MKL_CBWR": MODES[mode]}
    env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(epochs), str(fits)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["strict"], {int(n): s for n, s in result["median"].items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=5, help="children of each mode")
    parser.add_argument("--fits", type=int, default=5, help="fits per thread count in a child")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of each fit")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    print_environment()
    print(library_state())
    print(f"load average before: {load_average()}")
    medians = {mode: {1: [], 2: []} for mode in MODES}
    ratios = {1: [], 2: []}
    for pair in range(args.pairs):
        order = list(MODES) if pair % 2 == 0 else list(MODES)[::-1]
        result = {}
        for mode in order:
            strict, result[mode] = run_child(mode, args.epochs, args.fits)
            if strict != (mode == "strict"):
                raise RuntimeError(f"the {mode} child's MKL mode was not as asked")
        for threads in (1, 2):
            for mode in MODES:
                medians[mode][threads].append(result[mode][threads])
            ratios[threads].append(result["strict"][threads] / result["default"][threads])
        print(
            f"pair {pair + 1}: strict / default "
            + ", ".join(f"{t} thread(s) {ratios[t][-1]:.3f}" for t in (1, 2))
        )
    print(f"load average after: {load_average()}")
    rows = [
        [
            str(threads),
            f"{statistics.median(medians['strict'][threads]):.3f}",
            f"{statistics.median(medians['default'][threads]):.3f}",
            f"{statistics.median(ratios[threads]):.3f}",
            f"{min(ratios[threads]):.3f}-{max(ratios[threads]):.3f}",
        ]
        for threads in (1, 2)
    ]
    header = ["threads", "strict s", "default s", "strict/default", "range"]
    print(format_table(header, rows))


if __name__ == "__main__":
    main()
