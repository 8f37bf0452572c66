"""Imputation quality of VAEImputer against scikit-learn's imputers.

Protocol: a fraction (``--fractions``) of all entries of a complete table,
labels included, is removed completely at random (seeds 0, 1, ...); each
method imputes the incomplete table and is scored on the removed entries:
RMSE of numeric entries in standardised units, accuracy of categorical ones,
and the variance ratio imputed / true; medians over ``--seeds``. Methods and
tables are described in ``docs/benchmarks.md``. Command:
``OMP_NUM_THREADS=1 python benchmarks/bench_imputation.py --threads 1``.
"""

import copy
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import _harness as harness
import numpy as np
import pandas as pd
from _harness import load_breast_cancer_table, load_penguins_table, load_wine_table, make_missing
from report import IMPUTATION_METHODS
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
    """Impute with a numeric scikit-learn imputer.

    String columns are ordinal-encoded (missing kept as NaN), their imputed
    codes rounded and clipped; numeric columns are standardised first.
    """
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


# HyperImpute runs in its own environment (``make hyperimpute-env``): it needs pandas < 3.
HYPERIMPUTE_PYTHON = harness.ROOT / ".venv-hyperimpute" / "bin" / "python"
HYPERIMPUTE_WORKER = Path(__file__).resolve().parent / "hyperimpute_worker.py"


class HyperImpute:
    """HyperImpute's default imputer, run by ``hyperimpute_worker.py`` in its environment.

    Refuses a result equal to the mean fill, which is what HyperImpute returns
    when run under pandas 3.
    """

    def __init__(self, method="hyperimpute", random_state=0):
        self.method = method
        self.random_state = random_state

    def fit_transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        with tempfile.TemporaryDirectory() as folder:
            source, target = Path(folder, "in.npz"), Path(folder, "out.npz")
            np.savez(source, X=X)
            command = [HYPERIMPUTE_PYTHON, HYPERIMPUTE_WORKER, self.method, self.random_state]
            done = subprocess.run(
                [str(part) for part in (*command, source, target)],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
            if done.returncode != 0:
                raise RuntimeError(f"HyperImpute failed: {done.stderr[-2000:]}")
            with np.load(target) as result:
                filled, pandas = result["X"], str(result["pandas"])
        mean_fill = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        if np.allclose(filled, mean_fill):
            raise RuntimeError(
                f"HyperImpute ({self.method}, pandas {pandas}) returned the mean fill; "
                "rebuild its environment with make hyperimpute-env."
            )
        return filled


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
if HYPERIMPUTE_PYTHON.exists():
    BASELINES["HyperImpute"] = lambda labels, columns: HyperImpute(random_state=0)


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

    filled, fit_time = harness.timed(lambda: imputer.fit_transform(X))
    mean = as_table(filled)
    # The first model alone: a shallow copy of the fitted imputer holding one member.
    alone = copy.copy(imputer)
    alone.estimators_ = imputer.estimators_[:1]
    one_model = as_table(alone.transform(X))
    draw = as_table(imputer.set_params(sample_posterior=True).transform(X))
    imputations = {"VAE": mean, "VAE 1 model": one_model, "VAE draw": draw}
    return imputations, fit_time, imputer.estimator_.n_iter_


MEASURES = ("rmse", "accuracy", "variance_ratio", "variance_ratio_median", "seconds")


def evaluate(name, complete, fraction, seed, args, results):
    """Impute one incomplete copy of ``complete``; append each method's scores to ``results``."""
    labels = [c for c in complete.columns if _is_label(complete[c])]
    incomplete = make_missing(complete, fraction, seed)
    imputations, fit_time, epochs = run_vae(incomplete, seed, args)
    times = {"VAE": fit_time}
    for method, make in BASELINES.items():
        imputations[method], times[method] = harness.timed(
            lambda make=make: _baseline(make, incomplete, labels)
        )
    for method, imputed in imputations.items():
        scores = (*score(complete, incomplete, imputed, labels), times.get(method))
        seeds = results.setdefault((name, fraction, method), {m: [] for m in MEASURES})
        for measure, value in zip(MEASURES, scores, strict=True):
            seeds[measure].append(value)
        if method == "VAE":
            seeds.setdefault("epochs", []).append(epochs)
    print(
        f"  {name} {fraction:.0%} seed {seed}: VAE {epochs} epochs, "
        + ", ".join(f"{m} {t:.1f}s" for m, t in times.items())
    )


# The columns of the printed tables: the docs' order, kept once in the report.
METHODS = IMPUTATION_METHODS


def median(values):
    """Median of the numbers in ``values`` (None and NaN left out), or None."""
    numbers = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.median(numbers)) if numbers else None


def report(rows):
    """Print one table per measure, then the 20% target."""
    for measure, title, fmt in (
        ("rmse", "RMSE on removed numeric entries, standardised units (lower is better)", ".3f"),
        ("accuracy", "accuracy on removed categorical entries (higher is better)", ".3f"),
        ("variance_ratio", "variance ratio imputed / true, mean over columns", ".2f"),
        ("variance_ratio_median", "the same variance ratio, median over columns", ".2f"),
        ("seconds", "wall seconds (VAE: fit + mean imputation)", ".1f"),
    ):
        print(f"\n=== {title}; median over seeds")
        cells = {(r["table"], r["missing"], r["method"]): r[measure] for r in rows}
        keys = dict.fromkeys((r["table"], r["missing"]) for r in rows)
        body = [
            (
                table,
                f"{fraction:.0%}",
                *(harness.cell(cells.get((table, fraction, m)), fmt) for m in METHODS),
            )
            for table, fraction in keys
        ]
        print(harness.format_table(("table", "missing", *METHODS), body, left=2))
    print(f"\n=== target: VAE has the best RMSE (among VAE and {len(BASELINES)} baselines) at 20%")
    best = {}
    for r in rows:
        if r["missing"] == 0.2 and r["method"] not in ("VAE 1 model", "VAE draw"):
            if r["table"] not in best or r["rmse"] < best[r["table"]]["rmse"]:
                best[r["table"]] = r
    for table, r in best.items():
        print(f"  {table}: best {r['method']} ({r['rmse']:.3f})")
    wins = sum(r["method"] == "VAE" for r in best.values())
    print(f"  VAE best on {wins} of {len(best)} tables (target: at least 3 of 4)")


def parse_args(argv=None):
    parser = harness.parser(__doc__.split("\n")[0])
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
    run = harness.Run("bench_imputation", args, shapes={})
    if "HyperImpute" not in BASELINES:
        print("no HyperImpute column: `make hyperimpute-env` builds its environment")
    results = {}
    with harness.thread_limit(args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in args.tables:
            complete = TABLES[name]()
            run.header["shapes"][name] = list(complete.shape)
            print(f"{name}: {complete.shape[0]} x {complete.shape[1]}")
            for fraction in args.fractions:
                for seed in range(args.seeds):
                    evaluate(name, complete, fraction, seed, args, results)
    for (name, fraction, method), seeds in results.items():
        run.add(
            table=name,
            missing=fraction,
            method=method,
            **{measure: median(values) for measure, values in seeds.items()},
            per_seed=seeds,
        )
    report(run.rows)
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
