"""Imputation quality of VAEImputer against scikit-learn's imputers.

What is measured
----------------
For each complete table, a fraction (``--fractions``, default 20% and 50%) of
ALL entries, labels included, is removed completely at random
(``_tables.make_missing(df, fraction, seed)``, seeds 0, 1, ...). Each method
imputes the incomplete table (fitted on it, no other data), and is scored on
the removed entries only:

- RMSE on the removed numeric entries, in standardised units: each column's
  error is divided by the standard deviation of the complete column, and the
  squared errors of all removed numeric entries are pooled (constant columns
  are left out). Lower is better.
- accuracy on the removed categorical (string) entries. Higher is better.
- variance ratio: for each numeric column, the variance of the imputed
  values over the removed entries divided by the variance of the true
  removed values, averaged over columns. 1 reproduces the marginal spread;
  mean imputation shrinks it (below 1). Its median over columns is reported
  too: one column with a tiny spread (a digits pixel almost always 0, where
  a single fill one level off is many standard deviations) can move the
  mean far from what the other columns show.

Each number is the median over ``--seeds`` seeds.

Tables
    ``breast_cancer`` (569 x 31) and ``wine`` (178 x 14): the 30 / 13 float
    features plus the class as a string column (``_tables``' loaders with
    ``missing=0``). ``digits`` (1797 x 64, pixels 0..16 as float columns).
    ``penguins`` (Palmer penguins, complete rows only: 333 x 8; species,
    island and sex as strings, four floats, year as an integer; year becomes
    a float column once entries are removed, as for every method).

Methods
    ``VAEImputer(random_state=seed)``, its own default VAE (``--vae`` sets
    a ``VAETransformer``'s parameters instead), with the defaults
    ``n_estimators=5`` (``--n-estimators``) and ``n_importance_samples=1000``
    (conditional mean). "VAE 1 model" is the first model of the same
    ensemble imputing alone: what one model gives, without a fit of its own. Digits, all numeric,
    reach it as an integer array, whose default VAE is the dequantised
    Gaussian; the other tables as DataFrames (``likelihood="auto"``). And the
    same fitted model with ``sample_posterior=True`` ("VAE draw", reported for
    the variance ratio; a draw is not meant to minimise RMSE). Baselines, all
    from scikit-learn, see numeric input: string columns are ordinal-encoded
    (``OrdinalEncoder``, missing kept as NaN) and their imputed codes rounded
    and clipped to a valid code; numeric columns are standardised with the
    observed means and standard deviations first (KNN distances need it):
    ``SimpleImputer`` (mean; most frequent code for strings), ``KNNImputer``
    (5 neighbours), ``IterativeImputer`` (BayesianRidge, ``max_iter=10``) and
    missForest as ``IterativeImputer(RandomForestRegressor(n_estimators=50,
    max_features="sqrt"), max_iter=5)`` (regression on the codes of string
    columns, then rounding: a simplification of missForest's classifiers).

Command: all four tables in one run::

    OMP_NUM_THREADS=1 python benchmarks/bench_imputation.py --threads 1

The saved results come from two runs side by side, one per core:
``--tables wine penguins breast_cancer`` (``benchmarks/results/bench_imputation.txt``)
and ``--tables digits`` (``benchmarks/results/bench_imputation_digits.txt``).
"""

import argparse
import copy
import sys
import time
import warnings

import numpy as np
import pandas as pd
from _common import add_threads_argument, format_table, load_average, start_run
from _tables import load_breast_cancer_table, load_penguins_table, load_wine_table, make_missing
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.preprocessing import OrdinalEncoder

from sklearn_vae import VAEImputer, VAETransformer


def _digits():
    return pd.DataFrame(load_digits().data).add_prefix("pixel_")


TABLES = {
    "wine": lambda: load_wine_table(missing=0),
    "penguins": lambda: load_penguins_table().dropna().reset_index(drop=True),
    "breast_cancer": lambda: load_breast_cancer_table(missing=0),
    "digits": _digits,
}


def _is_label(series):
    return not pd.api.types.is_numeric_dtype(series)


def _baseline(make_imputer, incomplete, labels):
    """Impute with a numeric scikit-learn imputer; see the module docstring."""
    numeric = [c for c in incomplete.columns if c not in labels]
    X = pd.DataFrame(index=incomplete.index)
    loc = incomplete[numeric].mean()
    scale = incomplete[numeric].std().replace(0, 1).fillna(1)
    X[numeric] = (incomplete[numeric] - loc) / scale
    encoder = None
    if labels:
        encoder = OrdinalEncoder(encoded_missing_value=np.nan).fit(incomplete[labels])
        X[labels] = encoder.transform(incomplete[labels])
    filled = pd.DataFrame(make_imputer(labels, list(X.columns)).fit_transform(X), columns=X.columns)
    out = incomplete.copy()
    out[numeric] = filled[numeric] * scale + loc
    if labels:
        sizes = np.array([len(c) for c in encoder.categories_])
        codes = np.clip(np.rint(filled[labels].to_numpy()), 0, sizes - 1).astype(int)
        out[labels] = encoder.inverse_transform(codes)
    return out


def _simple(labels, columns):
    from sklearn.compose import ColumnTransformer

    numeric = [c for c in columns if c not in labels]
    parts = [("mean", SimpleImputer(strategy="mean", keep_empty_features=True), numeric)]
    if labels:
        parts.append(
            ("mode", SimpleImputer(strategy="most_frequent", keep_empty_features=True), labels)
        )
    return ColumnTransformer(parts).set_output(transform="pandas")


def _reorder(make):
    """The baseline's output columns in the input's order (ColumnTransformer reorders)."""

    def wrapped(labels, columns):
        imputer = make(labels, columns)

        class _Ordered:
            def fit_transform(self, X):
                out = imputer.fit_transform(X)
                out.columns = [c.split("__", 1)[1] for c in out.columns]
                return out[columns].to_numpy()

        return _Ordered()

    return wrapped


BASELINES = {
    "Simple": _reorder(_simple),
    "KNN": lambda labels, columns: KNNImputer(n_neighbors=5, keep_empty_features=True),
    "Iterative": lambda labels, columns: IterativeImputer(
        max_iter=10, random_state=0, keep_empty_features=True
    ),
    "missForest": lambda labels, columns: IterativeImputer(
        RandomForestRegressor(n_estimators=50, max_features="sqrt", random_state=0, n_jobs=1),
        max_iter=5,
        random_state=0,
        keep_empty_features=True,
    ),
}


def score(complete, incomplete, imputed, labels):
    """RMSE (standardised), accuracy, and the mean and median over columns of the variance ratio."""
    squared, ratios, hits, n_labels = [], [], 0, 0
    for column in complete.columns:
        removed = incomplete[column].isna().to_numpy() & complete[column].notna().to_numpy()
        if not removed.any():
            continue
        truth = complete[column].to_numpy()[removed]
        guess = imputed[column].to_numpy()[removed]
        if column in labels:
            hits += int((truth.astype(str) == guess.astype(str)).sum())
            n_labels += len(truth)
            continue
        sd = complete[column].astype(float).std()
        if not sd > 1e-12:
            continue
        truth, guess = truth.astype(float) / sd, guess.astype(float) / sd
        squared.append((truth - guess) ** 2)
        if removed.sum() > 2 and truth.var() > 1e-12:
            ratios.append(guess.var() / truth.var())
    rmse = float(np.sqrt(np.concatenate(squared).mean()))
    accuracy = hits / n_labels if n_labels else np.nan
    return rmse, accuracy, float(np.mean(ratios)), float(np.median(ratios))


def run_vae(incomplete, seed, args):
    """The imputer's own default VAE, unless ``--vae`` names parameters.

    An all-numeric table is passed as an array, as a user would pass one:
    on digits, an integer array, the default VAE is the dequantised Gaussian.
    """
    vae = VAETransformer(random_state=seed, **args.vae_params) if args.vae_params else None
    imputer = VAEImputer(
        vae,
        n_estimators=args.n_estimators,
        n_importance_samples=args.n_importance_samples,
        random_state=seed,
    )
    numeric = all(pd.api.types.is_numeric_dtype(dtype) for dtype in incomplete.dtypes)
    X = incomplete.to_numpy(dtype=np.float64) if numeric else incomplete

    def as_table(filled):
        return pd.DataFrame(filled, columns=incomplete.columns) if numeric else filled

    start = time.perf_counter()
    mean = as_table(imputer.fit_transform(X))
    fit_time = time.perf_counter() - start
    # The first model alone: a shallow copy of the fitted imputer holding one member.
    alone = copy.copy(imputer)
    alone.estimators_ = imputer.estimators_[:1]
    one_model = as_table(alone.transform(X))
    draw = as_table(imputer.set_params(sample_posterior=True).transform(X))
    imputations = {"VAE": mean, "VAE 1 model": one_model, "VAE draw": draw}
    return imputations, fit_time, imputer.estimator_.n_iter_


def evaluate(name, complete, fraction, seed, args, results):
    labels = [c for c in complete.columns if _is_label(complete[c])]
    incomplete = make_missing(complete, fraction, seed)
    imputations, fit_time, epochs = run_vae(incomplete, seed, args)
    times = {"VAE": fit_time}
    for method, make in BASELINES.items():
        start = time.perf_counter()
        imputations[method] = _baseline(make, incomplete, labels)
        times[method] = time.perf_counter() - start
    for method, imputed in imputations.items():
        key = (name, fraction, method)
        results.setdefault(key, []).append(
            (*score(complete, incomplete, imputed, labels), times.get(method, np.nan))
        )
    print(
        f"  {name} {fraction:.0%} seed {seed}: VAE {epochs} epochs, "
        + ", ".join(f"{m} {t:.1f}s" for m, t in times.items())
    )


METHODS = ("VAE", "Simple", "KNN", "Iterative", "missForest", "VAE 1 model", "VAE draw")


def report(results, names, fractions):
    for index, (measure, form) in enumerate(
        (
            ("RMSE on removed numeric entries, standardised units (lower is better)", ".3f"),
            ("accuracy on removed categorical entries (higher is better)", ".3f"),
            ("variance ratio imputed / true on removed numeric entries (1 is faithful)", ".2f"),
            ("the same variance ratio, median over columns instead of mean", ".2f"),
            ("wall seconds (VAE: fit + mean imputation)", ".1f"),
        )
    ):
        print(f"\n=== {measure}; median over seeds")
        rows = []
        for name in names:
            for fraction in fractions:
                cells = []
                for method in METHODS:
                    values = [r[index] for r in results.get((name, fraction, method), [])]
                    value = np.median(values) if values else np.nan
                    cells.append("-" if np.isnan(value) else format(value, form))
                rows.append((name, f"{fraction:.0%}", *cells))
        print(format_table(("table", "missing", *METHODS), rows, left=2))
    print("\n=== target: VAE has the best RMSE (among VAE and the 4 baselines) at 20% missing")
    wins = 0
    for name in names:
        medians = {
            m: np.median([r[0] for r in results[(name, 0.2, m)]])
            for m in METHODS
            if m not in ("VAE 1 model", "VAE draw") and (name, 0.2, m) in results
        }
        if not medians:
            continue
        best = min(medians, key=medians.get)
        wins += best == "VAE"
        print(f"  {name}: best {best} ({medians[best]:.3f}); VAE {medians['VAE']:.3f}")
    print(f"  VAE best on {wins} of {len(names)} tables (target: at least 3 of 4)")
    print("  (--- results so far: a partial report, printed as each table completes)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", nargs="+", choices=list(TABLES), default=list(TABLES))
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.2, 0.5])
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 3, quick 1)")
    parser.add_argument("--n-importance-samples", type=int, default=1000)
    parser.add_argument("--n-estimators", type=int, default=5, help="VAEImputer's n_estimators")
    parser.add_argument(
        "--vae",
        nargs="*",
        default=[],
        metavar="PARAM=VALUE",
        help="VAETransformer parameters other than the defaults, e.g. n_components=16",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    args.vae_params = {k: eval(v) for k, v in (p.split("=", 1) for p in args.vae)}  # noqa: S307
    if args.quick:
        args.vae_params.setdefault("max_iter", 20)
        args.n_importance_samples = min(args.n_importance_samples, 100)
    return args


def main(argv=None):
    args = parse_args(argv)
    start_run(args.threads)
    print(f"load average before: {load_average()}")
    mode = "QUICK (smoke run)" if args.quick else "full"
    print(
        f"mode: {mode}; seeds: {args.seeds}; fractions: {args.fractions}; K = "
        f"{args.n_importance_samples}; n_estimators = {args.n_estimators}; "
        f"VAE parameters: {args.vae_params or 'defaults'}"
    )
    start = time.perf_counter()
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in args.tables:
            complete = TABLES[name]()
            print(f"{name}: {complete.shape[0]} x {complete.shape[1]}")
            for fraction in args.fractions:
                for seed in range(args.seeds):
                    evaluate(name, complete, fraction, seed, args, results)
            done = args.tables[: args.tables.index(name) + 1]
            if name != args.tables[-1]:
                print(f"\n--- results so far ({', '.join(done)})")
                report(results, done, args.fractions)
    print("\n--- final results")
    report(results, args.tables, args.fractions)
    print(f"\nload average after: {load_average()}")
    print(f"total time: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
