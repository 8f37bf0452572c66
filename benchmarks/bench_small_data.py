"""Does the default training reach the optimum on small data?

What is measured
----------------
Held-out mean log-likelihood (nats per row, higher is better) on ``load_wine``
(178 x 13) and ``load_breast_cancer`` (569 x 30), unscaled, with the split of
``bench_density.py``: ``train_test_split(X, test_size=0.25, random_state=0)``.
Every model has ``n_components=k`` (``--n-components``, default 5) and keeps
every other default:

- ``VAE linear``: ``VAETransformer(hidden_layer_sizes=(), likelihood="gaussian")``,
  the factor-analysis model; it cannot beat ``FactorAnalysis`` in expectation,
  so its gap to it measures how far training stops from the optimum.
- ``VAE default``: ``VAETransformer(likelihood="gaussian")``, hidden layers
  (256, 256).
- ``FactorAnalysis(n_components=k)``: exact log-likelihood (``score``).

A VAE row gives the median over ``--seeds`` values of ``random_state`` (0,
1, ...) of the held-out ``log_likelihood`` (IWAE bound, K=1000,
``random_state=0``), with the per-seed values and the median number of epochs.

The linear VAE is trained from two starts:

- ``random``: random weights, the only start before the factor-analysis
  start existed, reproduced by replacing the private method
  ``VAETransformer._start_linear_gaussian`` with one that does nothing.
- ``factor analysis``: the default, the factor-analysis fit of the
  standardised training rows' covariance (``sklearn_vae._linear_start``).

The default VAE has hidden layers, so it always starts from random weights.

Target: the linear VAE within 0.5 nats of ``FactorAnalysis`` on both tables.

Run with ``python benchmarks/bench_small_data.py --help`` for the options.
"""

import argparse
import warnings
from contextlib import contextmanager

import numpy as np
from _common import add_threads_argument, format_table, start_run
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_vae import VAETransformer

DATASETS = {"wine": load_wine, "breast_cancer": load_breast_cancer}
RUNS = {
    "VAE linear, random start": ({"hidden_layer_sizes": ()}, False),
    "VAE linear, factor analysis start": ({"hidden_layer_sizes": ()}, True),
    "VAE default": ({}, True),
}
IMPORTANCE_SAMPLES = 1000
TARGET_GAP = 0.5


@contextmanager
def linear_start(enabled):
    """Train linear-Gaussian VAEs from random weights unless ``enabled``."""
    saved = VAETransformer._start_linear_gaussian
    if not enabled:
        VAETransformer._start_linear_gaussian = lambda self, X, rows: None
    try:
        yield
    finally:
        VAETransformer._start_linear_gaussian = saved


def held_out_vae(train, test, k, seed, params):
    vae = VAETransformer(n_components=k, likelihood="gaussian", random_state=seed, **params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        vae.fit(train)
    capped = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    score = vae.log_likelihood(test, n_importance_samples=IMPORTANCE_SAMPLES, random_state=0)
    return float(score.mean()), vae.n_iter_, capped


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--n-components", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    add_threads_argument(parser)
    args = parser.parse_args()
    start_run(args.threads)
    k = args.n_components
    rows, verdicts = [], []
    for name in args.datasets:
        X = DATASETS[name]().data
        train, test = train_test_split(X, test_size=0.25, random_state=0)
        fa = FactorAnalysis(n_components=k).fit(train).score(test)
        rows.append([name, "FactorAnalysis", f"{fa:.2f}", "", ""])
        for run in args.runs:
            params, start = RUNS[run]
            with linear_start(start):
                runs = [held_out_vae(train, test, k, seed, params) for seed in range(args.seeds)]
            scores = [score for score, _, _ in runs]
            median = float(np.median(scores))
            epochs = int(np.median([n_iter for _, n_iter, _ in runs]))
            capped = sum(capped for _, _, capped in runs)
            rows.append(
                [
                    name,
                    run,
                    f"{median:.2f}",
                    " ".join(f"{score:.2f}" for score in scores),
                    f"{epochs}" + (f" ({capped} at max_iter)" if capped else ""),
                ]
            )
            print(f"{name} {run}: {median:.2f} ({epochs} epochs)", flush=True)
            gap = fa - median
            verdicts.append(f"{name}: {run}: FA - VAE = {gap:+.2f} nats")
            if run == "VAE linear, factor analysis start":
                met = "met" if gap <= TARGET_GAP else "MISSED"
                verdicts[-1] += f" (target: within {TARGET_GAP}: {met})"
    print()
    header = ["dataset", "model", "median nats", "per seed", "median epochs"]
    print(format_table(header, rows, left=2))
    print()
    print(f"n_components={k}, held-out log_likelihood K={IMPORTANCE_SAMPLES}, unscaled data")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
