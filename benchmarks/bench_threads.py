"""Fit time with 1 thread, 2 threads and the default policy, on an idle and on a busy CPU.

What is measured
----------------
The wall-clock time of ``VAETransformer(...).fit(X)`` for two networks:

- "digits": the default network on ``load_digits`` (``likelihood="categorical"``,
  ``n_components=16``, 30 epochs, early stopping off): 457k weights, batches of
  128, 5.8e7 multiply-adds per training step, below the fixed rule's threshold
  of 1e8, under which that rule uses one thread;
- "wide": ``hidden_layer_sizes=(512, 512)`` on 4,096 rows of 256 standard normal
  columns, batches of 256, 3 epochs: 1.08e6 weights, 2.8e8 multiply-adds per step,
  above the threshold, where the fixed rule uses torch's thread count.

With MKL in its strict reproducibility mode (what ``import sklearn_vae``
asks for; the script prints whether it holds), ``n_jobs=None`` times 1 and 2
threads on training batches and trains on the faster, timing again every so
often. Run as ``MKL_CBWR=AUTO python bench_threads.py`` to measure the fixed
rule instead (the policy before the timed choice, under MKL's default mode).

Each network is fitted with ``n_jobs=None`` (the default), ``n_jobs=1`` and
``n_jobs=2``, first on an idle machine, then while this script runs one
competing CPU-bound process (a Python busy loop) of its own. The settings are
interleaved within each repeat, so slow drifts of the machine affect them alike;
the table gives the median of ``--repeats`` fits and the range.

The targets of the thread policy, for the default fit on digits: with one
competing process at most 1.5x its idle time; on an idle machine within 1.1x of
the fastest thread setting.

The machine must otherwise be idle (check the load average printed first).
Run with ``python benchmarks/bench_threads.py --help`` for the options.
"""

import argparse
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from _common import format_table, library_state, load_average, print_environment
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from sklearn_vae import VAETransformer
from sklearn_vae._threads import thread_invariant_blas

SETTINGS = (None, 1, 2)
BUSY_LOOP = "while True: pass"


def networks():
    """``name -> (X, VAETransformer parameters)`` of the two networks measured."""
    wide = np.random.default_rng(0).standard_normal((4096, 256))
    return {
        "digits": (
            load_digits().data,
            {"likelihood": "categorical", "n_components": 16, "max_iter": 30},
        ),
        "wide": (
            wide,
            {
                "hidden_layer_sizes": (512, 512),
                "batch_size": 256,
                "n_components": 16,
                "max_iter": 3,
            },
        ),
    }


def time_fit(X, params, n_jobs):
    """Seconds of one seeded fit."""
    vae = VAETransformer(**params, early_stopping=False, random_state=0, n_jobs=n_jobs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Early stopping is off: the fixed epoch count is the point.
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    return time.perf_counter() - start


def measure(repeats):
    """``(network, load, n_jobs) -> list of seconds``."""
    times = {}
    for load in ("idle", "busy"):
        competitor = None
        if load == "busy":
            competitor = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
            time.sleep(1.0)
        try:
            for name, (X, params) in networks().items():
                time_fit(X, params, 1)  # warm-up: lazy imports, allocator
                for _ in range(repeats):
                    for n_jobs in SETTINGS:
                        times.setdefault((name, load, n_jobs), []).append(
                            time_fit(X, params, n_jobs)
                        )
                print(f"measured {name} ({load})")
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
    return times


def report(times):
    """Print the times, then the policy's targets for the default fit on digits."""
    rows = []
    for (name, load, n_jobs), seconds in times.items():
        rows.append(
            [
                name,
                load,
                "None (default)" if n_jobs is None else str(n_jobs),
                f"{statistics.median(seconds):.2f}",
                f"{min(seconds):.2f}-{max(seconds):.2f}",
            ]
        )
    print(format_table(["network", "CPU", "n_jobs", "median s", "range s"], rows, left=3))

    def median(name, load, n_jobs):
        return statistics.median(times[(name, load, n_jobs)])

    print()
    for name in ("digits", "wide"):
        idle_default = median(name, "idle", None)
        fastest = min(median(name, "idle", n_jobs) for n_jobs in SETTINGS)
        busy_ratio = median(name, "busy", None) / idle_default
        idle_ratio = idle_default / fastest
        print(
            f"{name}: default busy/idle {busy_ratio:.2f} (target for digits <= 1.5), "
            f"default idle / fastest idle {idle_ratio:.2f} (target for digits <= 1.1), "
            f"2 threads busy/idle {median(name, 'busy', 2) / median(name, 'idle', 2):.2f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fits per setting and load")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    # torch's own default on this machine: the policy decides within it.
    torch.set_num_threads(max(torch.get_num_threads(), 2))
    print_environment()
    print(library_state())
    timed = "timed choice" if thread_invariant_blas() else "fixed rule (MKL not in strict mode)"
    print(f"n_jobs=None: {timed}")
    print(f"load average before: {load_average()}")
    with threadpool_limits(limits=1, user_api="blas"):
        times = measure(args.repeats)
    print(f"load average after: {load_average()}")
    report(times)


if __name__ == "__main__":
    main()
