"""Which likelihood should an integer column get by default?

Measures, for the integer columns of two real tables, the held-out
log-likelihood of the whole table (IWAE, K=1000, nats per row; integer
entries as log-probabilities, so every variant is in the same units) when
those columns are modelled by:

- ``"gaussian"`` with dequantisation (the ``likelihood="auto"`` rule): a
  Gaussian density of ``x + U(0, 1)``, whose score is a lower bound on the
  log-probability of the integer ``x``;
- ``"categorical"`` over the integers from the column's training minimum to
  its maximum;
- ``"poisson"`` (counts only).

It also counts the cross-validation folds (5-fold, per seed) in which a
variant cannot score the held-out part at all, because a held-out integer
lies outside what the training part defined (a categorical model gives it
probability 0).

Tables: penguins' ``year`` (2007-2009) and auto-mpg's ``Cylinders`` (3-8, a
count) and ``Weight_in_lbs`` (1613-5140, a wide integer measurement).

Run::

    python benchmarks/bench_integer_columns.py --threads 1
"""

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _common import format_table, print_environment
from _tables import load_cars_table, load_penguins_table
from sklearn.model_selection import KFold

from sklearn_vae import VAETransformer

CASES = {
    "penguins: year": (load_penguins_table, ["year"]),
    "cars: Cylinders": (load_cars_table, ["Cylinders"]),
    "cars: Weight_in_lbs": (load_cars_table, ["Weight_in_lbs"]),
}
VARIANTS = ["gaussian (auto)", "categorical", "poisson"]


def likelihood_for(variant, columns):
    if variant == "gaussian (auto)":
        return "auto"
    return {column: variant for column in columns}


def held_out(df, columns, variant, seeds):
    """Median over seeds of the mean held-out IWAE, and the count of folds it cannot score."""
    scores, failures = [], 0
    for seed in range(seeds):
        folds = KFold(5, shuffle=True, random_state=seed).split(df)
        for fold, (train, test) in enumerate(folds):
            vae = VAETransformer(likelihood=likelihood_for(variant, columns), random_state=seed)
            try:
                vae.fit(df.iloc[train])
                value = vae.log_likelihood(df.iloc[test], n_importance_samples=1000, random_state=0)
            except ValueError:
                failures += 1
                continue
            if fold == 0:
                scores.append(float(np.mean(value)))
    return (np.median(scores) if scores else np.nan), failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    print_environment()
    start = time.perf_counter()
    rows = []
    for case, (loader, columns) in CASES.items():
        df = loader()
        row = [case]
        for variant in VARIANTS:
            if variant == "poisson" and df[columns[0]].min() > 1000:
                row.append("—")
                continue
            score, failures = held_out(df, columns, variant, args.seeds)
            row.append(f"{score:.2f} ({failures}/{5 * args.seeds} folds fail)")
        rows.append(row)
        print(f"  {case} done", file=sys.stderr, flush=True)
    print(
        "held-out log-likelihood of the whole table, nats per row (median over seeds of "
        "fold 0); folds where held-out rows cannot be scored"
    )
    print(format_table(["integer column", *VARIANTS], rows))
    print(f"total time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
