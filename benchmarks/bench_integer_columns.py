"""Which likelihood should an integer column get by default?

Protocol: for penguins' ``year`` and auto-mpg's ``Cylinders`` and
``Weight_in_lbs``, the held-out IWAE (K=1000, nats per row) of the whole
table with that column modelled as a dequantised Gaussian (the ``"auto"``
rule), categorical or Poisson, on the MLP of two 256-wide layers (the
default network before ``hidden_layer_sizes="auto"``, which measured it);
5-fold CV per seed, the median over seeds of fold 0, and the count of folds
whose held-out rows cannot be scored. Command:
``OMP_NUM_THREADS=1 python benchmarks/bench_integer_columns.py --threads 1``.
"""

import sys
import warnings

import _harness as harness
import numpy as np
from sklearn.model_selection import KFold

from sklearn_vae import VAETransformer

CASES = {
    "penguins: year": (harness.load_penguins_table, ["year"]),
    "cars: Cylinders": (harness.load_cars_table, ["Cylinders"]),
    "cars: Weight_in_lbs": (harness.load_cars_table, ["Weight_in_lbs"]),
}
VARIANTS = ["gaussian (auto)", "categorical", "poisson"]
N_FOLDS = 5


def likelihood_for(variant, columns):
    if variant == "gaussian (auto)":
        return "auto"
    return {column: variant for column in columns}


def held_out(df, columns, variant, seeds, max_iter):
    """Fold 0's mean held-out IWAE for each seed, and the count of folds it cannot score."""
    scores, failures = [], 0
    for seed in range(seeds):
        folds = KFold(N_FOLDS, shuffle=True, random_state=seed).split(df)
        for fold, (train, test) in enumerate(folds):
            vae = VAETransformer(
                likelihood=likelihood_for(variant, columns),
                hidden_layer_sizes=(256, 256),  # the likelihoods compared on one network
                max_iter=max_iter,
                random_state=seed,
            )
            try:
                vae.fit(df.iloc[train])
                value = vae.log_likelihood(df.iloc[test], n_importance_samples=1000, random_state=0)
            except ValueError:
                failures += 1
                continue
            if fold == 0:
                scores.append(float(np.mean(value)))
    return scores, failures


def main(argv=None):
    parser = harness.parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    run = harness.Run("bench_integer_columns", args, n_importance_samples=1000, folds=N_FOLDS)
    max_iter = 5 if args.quick else 500
    cases = list(CASES.items())[:1] if args.quick else CASES.items()
    with harness.thread_limit(args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case, (loader, columns) in cases:
            df = loader()
            for variant in VARIANTS:
                if variant == "poisson" and df[columns[0]].min() > 1000:
                    continue  # not a count
                scores, failures = held_out(df, columns, variant, args.seeds, max_iter)
                run.add(
                    column=case,
                    likelihood=variant,
                    nats=float(np.median(scores)) if scores else None,
                    per_seed=scores,
                    failed_folds=failures,
                    folds=N_FOLDS * args.seeds,
                )
            print(f"  {case} done")
    print("held-out log-likelihood of the whole table, nats per row (median over seeds, fold 0)")
    harness.print_rows(
        run.rows,
        [
            ("column", "integer column", ""),
            ("likelihood", "likelihood", ""),
            ("nats", "nats", ".2f"),
            ("failed_folds", "folds that fail", "d"),
            ("folds", "of", "d"),
        ],
        left=2,
    )
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
