"""Fit time with 1 thread, 2 threads and the default policy, on an idle and on a busy CPU.

Protocol: ``VAETransformer(..., early_stopping=False, random_state=0).fit``
of two networks, "digits" (the default network on ``load_digits``,
``likelihood="categorical"``, ``n_components=16``, 30 epochs) and "wide"
(``hidden_layer_sizes=(512, 512)`` on 4,096 x 256 normal rows, batches of
256, 3 epochs), with ``n_jobs`` None (the default), 1 and 2, interleaved in
``--repeats`` rounds: first on the idle machine, then while a busy-looping
process started before the fits takes a core. Reports each setting's busy /
idle ratio of median times. The machine must otherwise be idle. Command:
``python benchmarks/bench_threads.py``.
"""

import subprocess
import sys
import time
import warnings

import _harness as harness
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from sklearn_vae import VAETransformer

SETTINGS = (None, 1, 2)
BUSY_LOOP = "while True: pass"


def networks(quick):
    """``name -> (X, VAETransformer parameters)`` of the two networks measured."""
    wide = np.random.default_rng(0).standard_normal((4096, 256))
    digits = {"likelihood": "categorical", "n_components": 16, "max_iter": 3 if quick else 30}
    wide_params = {"hidden_layer_sizes": (512, 512), "batch_size": 256, "n_components": 16}
    return {
        "digits": (load_digits().data, digits),
        "wide": (wide, {**wide_params, "max_iter": 1 if quick else 3}),
    }


def fit(X, params, n_jobs):
    """One seeded fit of a fixed number of epochs."""
    vae = VAETransformer(**params, early_stopping=False, random_state=0, n_jobs=n_jobs)
    with warnings.catch_warnings():
        # Early stopping is off: the fixed epoch count is the point.
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)


def measure(run, repeats, quick):
    """Time every network and setting, idle and then busy; one row each."""
    for load in ("idle", "busy"):
        competitor = None
        if load == "busy":
            competitor = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
            time.sleep(1.0)
        try:
            for name, (X, params) in networks(quick).items():
                fit(X, params, 1)  # warm-up: lazy imports, allocator
                calls = {
                    n_jobs: lambda X=X, params=params, n_jobs=n_jobs: fit(X, params, n_jobs)
                    for n_jobs in SETTINGS
                }
                for n_jobs, timing in harness.interleaved(calls, repeats).items():
                    run.add(network=name, load=load, n_jobs=n_jobs, **timing)
                print(f"measured {name} ({load})")
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()


def ratios(rows):
    """Busy / idle ratio of the median times, for each network and setting."""
    median = {(r["network"], r["load"], r["n_jobs"]): r["median"] for r in rows}
    return [
        {
            "network": network,
            "n_jobs": n_jobs,
            "busy_over_idle": median[(network, "busy", n_jobs)] / median[(network, "idle", n_jobs)],
        }
        for network, load, n_jobs in median
        if load == "idle"
    ]


def main(argv=None):
    parser = harness.parser(__doc__.split("\n")[0], threads=False)
    parser.add_argument("--repeats", type=int, default=5, help="fits per setting and load")
    args = parser.parse_args(argv)
    # torch's own default on this machine: the policy decides within it.
    torch.set_num_threads(max(torch.get_num_threads(), 2))
    run = harness.Run("bench_threads", args, settings=list(SETTINGS))
    with threadpool_limits(limits=1, user_api="blas"):
        measure(run, 1 if args.quick else args.repeats, args.quick)
    run.header["busy_over_idle"] = ratios(run.rows)
    printed = [
        {**r, "setting": "None (default)" if r["n_jobs"] is None else str(r["n_jobs"])}
        for r in run.rows
    ]
    harness.print_rows(
        printed,
        [
            ("network", "network", ""),
            ("load", "CPU", ""),
            ("setting", "n_jobs", ""),
            ("median", "median s", ".2f"),
            ("min", "min s", ".2f"),
            ("max", "max s", ".2f"),
        ],
        left=3,
    )
    print()
    for ratio in run.header["busy_over_idle"]:
        print(
            f"{ratio['network']}, n_jobs={ratio['n_jobs']}: busy/idle {ratio['busy_over_idle']:.2f}"
            + (" (target for the default on digits: <= 1.5)" if ratio["n_jobs"] is None else "")
        )
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
