"""What the training objective buys on digits: ELBO against the IWAE bound, and weight averaging.

What is measured
----------------
The digits protocol of the README (``load_digits``,
``train_test_split(test_size=0.25, random_state=0)``): the categorical VAE
on the raw integers and the Gaussian VAE with ``dequantize=True`` (fitted
on the raw integers, scored with row-hashed noise), both with
``n_components=16`` and every other parameter at its default except the
training objective:

- ``elbo, n_draws=1``: the default.
- ``elbo, n_draws=5``: the ELBO's expectation estimated with 5 draws per row.
- ``iwae, n_draws=5`` and ``iwae, n_draws=10``: the importance-weighted bound
  of Burda et al. on K = 5 or 10 draws.
- ``elbo1+average`` and ``iwae5+average``: the default and ``iwae5`` with
  ``average=True``, a moving average of the weights (decay 0.998 per step)
  validated, stopped early and kept as the fitted model.

Each setting is fitted with ``--seeds`` values of ``random_state`` (0, 1,
...). A row gives the mean ± std over seeds of the held-out
``log_likelihood`` (IWAE estimate, K = ``--n-importance-samples``, default
1000, ``random_state=0``), the mean held-out ELBO (``score``), the mean
number of epochs and the mean fit time with its ratio to the default's.
Fit times are wall-clock seconds on whatever else the machine runs.

Targets (issue #10): categorical −91.5 or better, Gaussian with
``dequantize=True`` −103 or better, at most 2x the default's fit time.

Run with ``python benchmarks/bench_objectives.py --help`` for the options.
"""

import argparse
import time

import numpy as np
from _common import add_threads_argument, format_table, start_run
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklearn_vae import VAETransformer

MODELS = {
    "categorical": {"likelihood": "categorical"},
    "gaussian_dequantize": {"likelihood": "gaussian", "dequantize": True},
}
OBJECTIVES = {
    "elbo1": {"objective": "elbo", "n_draws": 1},
    "elbo5": {"objective": "elbo", "n_draws": 5},
    "iwae5": {"objective": "iwae", "n_draws": 5},
    "iwae10": {"objective": "iwae", "n_draws": 10},
    "elbo1+average": {"objective": "elbo", "n_draws": 1, "average": True},
    "iwae5+average": {"objective": "iwae", "n_draws": 5, "average": True},
}
TARGETS = {"categorical": -91.5, "gaussian_dequantize": -103.0}


def fit_and_score(train, test, model, objective, seed, k):
    vae = VAETransformer(
        n_components=16, random_state=seed, **MODELS[model], **OBJECTIVES[objective]
    )
    start = time.perf_counter()
    vae.fit(train)
    seconds = time.perf_counter() - start
    log_likelihood = vae.log_likelihood(test, n_importance_samples=k, random_state=0).mean()
    return float(log_likelihood), float(vae.score(test)), vae.n_iter_, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--objectives", nargs="+", choices=list(OBJECTIVES), default=list(OBJECTIVES)
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-importance-samples", type=int, default=1000)
    add_threads_argument(parser)
    args = parser.parse_args()
    start_run(args.threads)
    X = load_digits().data
    train, test = train_test_split(X, test_size=0.25, random_state=0)
    rows = []
    for model in args.models:
        default_time = None
        for objective in args.objectives:
            runs = np.array(
                [
                    fit_and_score(train, test, model, objective, seed, args.n_importance_samples)
                    for seed in range(args.seeds)
                ]
            )
            ll, elbo, epochs, seconds = runs.T
            if objective == "elbo1":
                default_time = seconds.mean()
            ratio = "" if default_time is None else f"{seconds.mean() / default_time:.2f}"
            met = "met" if ll.mean() >= TARGETS[model] else "missed"
            rows.append(
                [
                    model,
                    objective,
                    f"{ll.mean():.2f} ± {ll.std():.2f}",
                    " ".join(f"{value:.2f}" for value in ll),
                    f"{elbo.mean():.2f}",
                    f"{epochs.mean():.0f}",
                    f"{seconds.mean():.0f}",
                    ratio,
                    f"{TARGETS[model]} {met}",
                ]
            )
            print(" ".join(rows[-1]), flush=True)
    print()
    header = [
        "model",
        "objective",
        "log-likelihood",
        "per seed",
        "ELBO",
        "epochs",
        "fit s",
        "x default",
        "target",
    ]
    print(format_table(header, rows, left=4))
    print(f"\nheld-out log_likelihood K={args.n_importance_samples}, n_components=16")


if __name__ == "__main__":
    main()
