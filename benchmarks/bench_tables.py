"""Mixed-type tables with missing entries: likelihood, sample fidelity and speed.

The quality bars of issue #8 for ``VAETransformer`` and ``HistogramDensity``
fitted on raw pandas DataFrames (string, int and float columns, NaN anywhere).

What is measured
----------------
Tables (loaders in ``_tables.py``)
    ``penguins``: ``palmerpenguins.load_penguins()``, 344 x 8, three string
    columns, four floats, int ``year``; NaN in six columns.
    ``cars``: auto-mpg, ``vega_datasets.local_data.cars()`` without ``Name``
    (an identifier), ``Year`` converted to an int year; 406 x 8.
    ``wine`` and ``breast_cancer``: ``load_wine`` / ``load_breast_cancer``
    features as float columns plus the class as a string column
    (``"class_0"``, ...), then 20% of ALL entries (label included) removed
    completely at random (``make_missing``, seed 0; the same table for every
    seed).

Protocol
    For each table and each seed (``--seeds``, default 3: 0, 1, 2):
    ``train_test_split(df, test_size=0.25, random_state=seed)`` (no
    stratification). Every number in a table is the median over seeds; the
    per-seed values are printed under it.

Held-out log-likelihood (nats per row, higher is better)
    Mean over test rows of ``score_samples(test)``: for the VAE
    (``VAETransformer(random_state=seed)``, every other parameter at its
    default, so ``likelihood="auto"`` once it exists) the per-row
    log-probability of the OBSERVED entries with NaN entries marginalised;
    for ``HistogramDensity()`` (independent columns, defaults) the same units
    with NaN entries skipped. Continuous columns contribute log-densities in
    the table's own units, string columns log-probabilities; both models score
    the same entries, so the numbers are comparable. On the 20%-missing tables
    the same VAE is also fitted on the complete training rows only
    (listwise deletion, ``train.dropna()``) and scored on the same held-out
    observed entries. With 20% MCAR in every column, few rows are complete
    (``0.8 ** 14`` = 4% of wine's rows, ``0.8 ** 31`` = 0.1% of breast
    cancer's): a fit on fewer than 10 complete rows is reported as ``n/a``.

Fidelity of samples: classifier two-sample test (C2ST)
    ``classifier_two_sample_auc(real, synthetic, seed)``: the held-out real
    rows (label 0) against as many sampled rows (label 1);
    ``HistGradientBoostingClassifier(categorical_features="from_dtype",
    random_state=seed)`` with string columns cast to ``category`` over the
    union of both sources' values, mean 5-fold ROC AUC
    (``StratifiedKFold(5, shuffle=True, random_state=seed)``). 0.5 means the
    classifier cannot tell samples from real rows; lower is better.

    Missingness mask: the held-out rows have NaN, samples of a model of the
    observed entries are complete, so a classifier could win on the NaN
    pattern alone. To test the joint distribution of the values and not the
    missingness, n = len(test) rows are sampled and then, row by row, the
    entries that are NaN in the i-th real held-out row are set to NaN in the
    i-th sampled row (``apply_missing_mask``) before the classifier sees them.
    TVAE samples get the same mask.

    Models: the VAE above (``vae.sample(n, random_state=seed)``); ctgan's
    ``TVAE`` (default settings, ``epochs=300``, ``set_random_state(seed)``),
    which needs complete rows, so it is fitted on ``train.dropna()`` with
    ``discrete_columns`` = the string columns ("TVAE listwise"; ``n/a`` below
    10 complete rows, ``failed`` if ctgan raises); on the 20%-missing tables
    also TVAE fitted on the training part with NaN filled by the column
    median (numbers) or mode (strings) from the training part ("TVAE
    imputed"), so that TVAE has a number on every table. It is a reference,
    not a tuned baseline: the fill puts ~20% of each column's mass on one
    value, TVAE reproduces that spike, and the classifier can see it in the
    observed entries of the samples. The real-vs-real
    floor: the same test of the held-out rows against as many training rows
    drawn without replacement (``train.sample(len(test),
    random_state=seed)``), the AUC of two samples of the same distribution
    (about 0.5, its spread is the test's noise at this size).

Fit time
    Wall seconds of ``fit`` (VAE: the whole call, early stopping included;
    TVAE: ``fit`` on the rows it is given).

Speed (``--parts speed``)
    A synthetic 100,000-row table (``--speed-rows``) with 10 float and 5
    string columns (3, 8, 15, 30 and 50 categories; labels like ``"c3_17"``)
    and 10% of entries missing completely at random, against a 15-column
    all-float complete table with as many rows. Both come from the same
    4-factor latent model (floats: linear maps of the factors plus noise, at
    different scales and offsets; categories: quantile bins of noisy linear
    projections of the factors), so they have structure. Each run fits
    ``VAETransformer(max_iter=3, early_stopping=False, random_state=0)`` on
    both, alternating which goes first; speed is rows x epochs / fit wall
    seconds, median of 3 runs, and the ratio mixed / numeric (target >= 0.5).

Estimators that do not accept a table yet
    A ``ValueError`` or ``TypeError`` raised by a ``VAETransformer`` or
    ``HistogramDensity`` call is reported as ``not supported`` (with the first
    message under the table), so the script runs end to end before those
    estimators take DataFrames and fills in the rows once they do. Any other
    exception is a bug and stops the script.

Targets (summary at the end): VAE median AUC <= 0.65 on penguins; VAE AUC <
TVAE AUC on every table (TVAE listwise where it could be fitted, else TVAE
imputed); VAE fit time < TVAE fit time on every table (same choice); VAE
log-likelihood > histogram on every table; all-rows VAE > listwise VAE on the
20%-missing tables; speed ratio >= 0.5. Each is FAIL when a measured table
fails it, PASS when every table was measured and passes, and ``—`` otherwise
(not measurable yet, or a table without a number: listwise deletion leaves
wine and breast_cancer with fewer than 10 complete rows, so that target stays
``—`` at 20% missing).

``--quick``: one seed, TVAE for 30 epochs, a 10,000-row speed table: a smoke
run, not a measurement.

Run with ``python benchmarks/bench_tables.py --help`` for the options, e.g.
``OMP_NUM_THREADS=1 python benchmarks/bench_tables.py --threads 1``.
"""

import argparse
import os
import sys
import time
import warnings
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
from _common import add_threads_argument, format_table, load_average, start_run
from _tables import (
    apply_missing_mask,
    categorical_columns,
    classifier_two_sample_auc,
    load_breast_cancer_table,
    load_cars_table,
    load_penguins_table,
    load_wine_table,
    make_missing,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_vae import HistogramDensity, VAETransformer

# name -> (loader, 20%-missing table?)
TABLES = {
    "penguins": (load_penguins_table, False),
    "cars": (load_cars_table, False),
    "wine": (lambda: load_wine_table(missing=0.2, random_state=0), True),
    "breast_cancer": (lambda: load_breast_cancer_table(missing=0.2, random_state=0), True),
}
MIN_COMPLETE_ROWS = 10
# The VAE (early stopping holds out one row) fits from two complete rows.
MIN_VAE_ROWS = 2
# Importance samples for the VAE's held-out log-likelihood.
IWAE_SAMPLES = 1000
TVAE_EPOCHS, QUICK_TVAE_EPOCHS = 300, 30
SPEED_ROWS, QUICK_SPEED_ROWS = 100_000, 10_000
SPEED_EPOCHS = 3
SPEED_REPEATS = 3
TARGET_PENGUINS_AUC = 0.65
TARGET_SPEED_RATIO = 0.5

NOT_SUPPORTED = "not supported"


class Unavailable:
    """Why a cell has no number: ``text`` goes in the table, ``reason`` under it."""

    def __init__(self, text, reason=""):
        self.text, self.reason = text, reason


class Results:
    """``values[measure][table][model]``: per-seed floats, or an ``Unavailable``."""

    def __init__(self):
        self.values = defaultdict(lambda: defaultdict(dict))
        self.reasons = {}

    def add(self, measure, table, model, value):
        cell = self.values[measure][table]
        if isinstance(value, Unavailable):
            if value.reason:
                self.reasons.setdefault((model, value.text), value.reason)
            cell.setdefault(model, [])
            cell[model].append(value)
        else:
            cell.setdefault(model, []).append(float(value))

    def median(self, measure, table, model):
        """Median over the seeds with a number, or None."""
        numbers = [v for v in self.values[measure][table].get(model, []) if isinstance(v, float)]
        return float(np.median(numbers)) if numbers else None

    def cell(self, measure, table, model, fmt):
        entries = self.values[measure][table].get(model)
        if not entries:
            return "—"
        numbers = [v for v in entries if isinstance(v, float)]
        if not numbers:
            return entries[0].text
        text = format(float(np.median(numbers)), fmt)
        if len(numbers) < len(entries):
            text += f" ({len(numbers)}/{len(entries)})"
        return text

    def detail(self, measure, table, model, fmt):
        entries = self.values[measure][table].get(model, [])
        if not any(isinstance(v, float) for v in entries):
            return None
        return " ".join(format(v, fmt) if isinstance(v, float) else v.text for v in entries)


def guarded(call):
    """``call()``, or ``Unavailable("not supported")`` on a ValueError/TypeError from it."""
    try:
        return call()
    except (ValueError, TypeError) as error:
        message = str(error).strip().split("\n")[0]
        return Unavailable(NOT_SUPPORTED, f"{type(error).__name__}: {message[:160]}")


def timed(call):
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def as_frame(samples, like):
    """Samples as a DataFrame with ``like``'s columns (the estimator may return an array)."""
    if isinstance(samples, pd.DataFrame):
        return samples.reset_index(drop=True)
    return pd.DataFrame(np.asarray(samples), columns=like.columns)


def fill_missing(train):
    """NaN filled by the training column's median (numbers) or mode (strings)."""
    filled = train.copy()
    for column in filled.columns:
        if column in categorical_columns(train):
            fill = train[column].mode(dropna=True).iloc[0]
        else:
            fill = train[column].median()
            if pd.api.types.is_integer_dtype(train[column]):
                fill = round(fill)
        filled[column] = filled[column].fillna(fill)
    return filled


# ------------------------------------------------------------------------ models


def evaluate_vae(results, name, train, test, seed, model="VAE", sample=True):
    """Fit the default VAE; held-out log-likelihood, and C2ST AUC and fit time."""
    fitted = guarded(lambda: timed(lambda: VAETransformer(random_state=seed).fit(train)))
    if isinstance(fitted, Unavailable):
        results.add("loglik", name, model, fitted)
        if sample:
            results.add("auc", name, model, fitted)
            results.add("fit", name, model, fitted)
        return
    vae, seconds = fitted
    if model == "VAE listwise":
        # Listwise deletion can lose a category entirely; the held-out rows
        # that hold it then cannot be scored: listwise deletion failed there.
        try:
            nats = float(
                np.mean(vae.log_likelihood(test, n_importance_samples=IWAE_SAMPLES, random_state=0))
            )
        except ValueError as error:
            nats = Unavailable("lost a category", str(error).split(";")[0][:160])
        results.add("loglik", name, model, nats)
        return
    nats = guarded(
        lambda: float(
            np.mean(vae.log_likelihood(test, n_importance_samples=IWAE_SAMPLES, random_state=0))
        )
    )
    results.add("loglik", name, model, nats)
    if not sample:
        return
    results.add("fit", name, model, seconds)
    samples = guarded(lambda: as_frame(vae.sample(len(test), random_state=seed), test))
    if isinstance(samples, Unavailable):
        results.add("auc", name, model, samples)
    else:
        auc = classifier_two_sample_auc(test, apply_missing_mask(samples, test), seed)
        results.add("auc", name, model, auc)


def evaluate_tvae(results, name, fit_rows, test, seed, epochs, model):
    """ctgan TVAE on ``fit_rows`` (complete): C2ST AUC of its masked samples, fit time."""
    from ctgan import TVAE

    if len(fit_rows) < MIN_COMPLETE_ROWS:
        cell = Unavailable(f"n/a ({len(fit_rows)} rows)")
        results.add("auc", name, model, cell)
        results.add("fit", name, model, cell)
        return
    tvae = TVAE(epochs=epochs)
    tvae.set_random_state(seed)
    discrete = categorical_columns(fit_rows)
    try:
        _, seconds = timed(lambda: tvae.fit(fit_rows, discrete_columns=discrete))
        samples = as_frame(tvae.sample(len(test)), test)
    except Exception as error:  # ctgan's own failures are results, not bugs here
        message = str(error).strip().split("\n")[0][:160]
        cell = Unavailable("failed", f"{type(error).__name__}: {message}")
        results.add("auc", name, model, cell)
        results.add("fit", name, model, cell)
        return
    results.add("fit", name, model, seconds)
    auc = classifier_two_sample_auc(test, apply_missing_mask(samples, test), seed)
    results.add("auc", name, model, auc)


def evaluate_table(results, name, df, missing, seeds, tvae_epochs):
    for seed in range(seeds):
        train, test = train_test_split(df, test_size=0.25, random_state=seed)
        train, test = train.reset_index(drop=True), test.reset_index(drop=True)
        complete = train.dropna().reset_index(drop=True)
        results.add("complete", name, "rows", len(complete))

        evaluate_vae(results, name, train, test, seed)
        histogram = guarded(
            lambda train=train, test=test: float(
                np.mean(HistogramDensity().fit(train).score_samples(test))
            )
        )
        results.add("loglik", name, "Histogram", histogram)
        if missing:
            if len(complete) < MIN_VAE_ROWS:
                results.add(
                    "loglik", name, "VAE listwise", Unavailable(f"n/a ({len(complete)} rows)")
                )
            else:
                evaluate_vae(results, name, complete, test, seed, "VAE listwise", sample=False)

        evaluate_tvae(results, name, complete, test, seed, tvae_epochs, "TVAE listwise")
        if missing:
            evaluate_tvae(
                results, name, fill_missing(train), test, seed, tvae_epochs, "TVAE imputed"
            )
        floor = train.sample(len(test), random_state=seed)
        results.add("auc", name, "real vs real", classifier_two_sample_auc(test, floor, seed))


# ------------------------------------------------------------------------- speed


def make_speed_tables(n_rows, seed=0, n_factors=4):
    """A mixed table (10 floats, 5 strings, 10% MCAR) and a 15-float complete table."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n_rows, n_factors))

    def floats(n_columns):
        W = rng.standard_normal((n_factors, n_columns))
        scale = 10.0 ** rng.uniform(-1, 3, n_columns)
        offset = rng.uniform(-100, 100, n_columns)
        X = (Z @ W + 0.5 * rng.standard_normal((n_rows, n_columns))) * scale + offset
        return {f"x{j}": X[:, j] for j in range(n_columns)}

    mixed = pd.DataFrame(floats(10))
    for j, n_categories in enumerate((3, 8, 15, 30, 50)):
        projection = Z @ rng.standard_normal(n_factors) + 0.3 * rng.standard_normal(n_rows)
        edges = np.quantile(projection, np.linspace(0, 1, n_categories + 1)[1:-1])
        codes = np.searchsorted(edges, projection)
        labels = np.array([f"c{j}_{k}" for k in range(n_categories)])
        mixed[f"s{j}"] = pd.Series(labels[codes], dtype="str")
    mixed = make_missing(mixed, 0.1, seed + 1)
    numeric = pd.DataFrame(floats(15))
    return mixed, numeric


def speed_fit(X):
    vae = VAETransformer(max_iter=SPEED_EPOCHS, early_stopping=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, seconds = timed(lambda: vae.fit(X))
    return len(X) * SPEED_EPOCHS / seconds


def run_speed(n_rows):
    mixed, numeric = make_speed_tables(n_rows)
    print(
        f"\n=== speed: {n_rows} rows; mixed = 10 floats + 5 strings (3/8/15/30/50 "
        f"categories), {mixed.isna().to_numpy().mean():.1%} missing; numeric = 15 floats, "
        f"complete; VAETransformer(max_iter={SPEED_EPOCHS}, early_stopping=False)"
    )
    speeds = {"mixed": [], "numeric": []}
    reason = None
    for repeat in range(SPEED_REPEATS):
        order = ("numeric", "mixed") if repeat % 2 == 0 else ("mixed", "numeric")
        for kind in order:
            if kind == "mixed" and reason is not None:
                continue
            result = guarded(lambda kind=kind: speed_fit(mixed if kind == "mixed" else numeric))
            if isinstance(result, Unavailable):
                reason = result.reason
            else:
                speeds[kind].append(result)
    rows = []
    for kind in ("mixed", "numeric"):
        values = speeds[kind]
        median = f"{np.median(values):,.0f}" if values else NOT_SUPPORTED
        runs = " ".join(f"{v:,.0f}" for v in values) if values else "—"
        rows.append((kind, median, runs))
    print(format_table(("table", "rows/s (median)", "runs"), rows))
    if reason:
        print(f"mixed: {NOT_SUPPORTED} ({reason})")
    if speeds["mixed"] and speeds["numeric"]:
        ratio = float(np.median(speeds["mixed"]) / np.median(speeds["numeric"]))
        print(f"ratio mixed / numeric: {ratio:.2f} (target >= {TARGET_SPEED_RATIO})")
        return ratio
    print("ratio mixed / numeric: —")
    return None


# ------------------------------------------------------------------------ output


def print_measure(results, names, title, measure, models, fmt, note=""):
    print(f"\n=== {title}")
    present = [m for m in models if any(results.values[measure][n].get(m) for n in names)]
    rows = [(n, *(results.cell(measure, n, m, fmt) for m in present)) for n in names]
    print(format_table(("table", *present), rows))
    if note:
        print(note)
    for n in names:
        for m in present:
            detail = results.detail(measure, n, m, fmt)
            if detail is not None:
                print(f"  {n} {m}: per seed {detail}")


def print_data(names, frames, missing, results):
    rows = []
    for n in names:
        df = frames[n]
        complete = results.values["complete"][n].get("rows", [])
        rows.append(
            (
                n,
                f"{df.shape[0]} x {df.shape[1]}",
                ", ".join(categorical_columns(df)),
                f"{df.isna().to_numpy().mean():.1%}",
                "20% MCAR" if missing[n] else "as loaded",
                " ".join(str(int(c)) for c in complete),
            )
        )
    header = ("table", "shape", "string columns", "NaN", "missing", "complete train rows/seed")
    print("\n=== data")
    print(format_table(header, rows))


def verdict(pairs, better):
    """FAIL if a measured (table, a, b) pair fails, PASS if all pass and none is missing, else —."""
    measured = [(t, a, b) for t, a, b in pairs if a is not None and b is not None]
    if not measured:
        return "—", ""
    skipped = [t for t, a, b in pairs if a is None or b is None]
    text = "; ".join(f"{t} {a:.3g} vs {b:.3g}" for t, a, b in measured)
    if skipped:
        text += f"; not measured on {', '.join(skipped)}"
    if not all(better(a, b) for _, a, b in measured):
        return "FAIL", text
    return ("—" if skipped else "PASS"), text


def listwise_verdict(results, names, missing):
    """Seed by seed: the all-rows VAE wins where it scores higher, or where listwise
    deletion left nothing to fit or lost a category it then cannot score."""
    wins, seeds, notes = 0, 0, []
    for name in names:
        if not missing[name]:
            continue
        rows = results.values["loglik"][name]
        for full, listwise in zip(rows.get("VAE", []), rows.get("VAE listwise", []), strict=True):
            if not isinstance(full, float):
                return "—", "the all-rows VAE has no number"
            seeds += 1
            if isinstance(listwise, float):
                wins += full > listwise
                notes.append(f"{name} {full:.3g} vs {listwise:.3g}")
            else:
                wins += 1
                notes.append(f"{name} {full:.3g} vs {listwise.text}")
    if not seeds:
        return "—", ""
    return ("PASS" if wins == seeds else "FAIL"), f"{wins}/{seeds} seeds: " + "; ".join(notes)


def tvae_reference(results, measure, name):
    value = results.median(measure, name, "TVAE listwise")
    if value is None:
        value = results.median(measure, name, "TVAE imputed")
    return value


def print_targets(results, names, missing, speed_ratio, quick):
    med = results.median
    lines = []
    if "penguins" in names:
        auc = med("auc", "penguins", "VAE")
        line = (
            ("—", "")
            if auc is None
            else ("PASS" if auc <= TARGET_PENGUINS_AUC else "FAIL", f"{auc:.3f}")
        )
        lines.append((f"VAE median AUC <= {TARGET_PENGUINS_AUC} on penguins", *line))
    pairs = [(n, med("auc", n, "VAE"), tvae_reference(results, "auc", n)) for n in names]
    lines.append(("VAE AUC < TVAE AUC on every table", *verdict(pairs, lambda a, b: a < b)))
    pairs = [(n, med("fit", n, "VAE"), tvae_reference(results, "fit", n)) for n in names]
    lines.append(("VAE fit s < TVAE fit s on every table", *verdict(pairs, lambda a, b: a < b)))
    pairs = [(n, med("loglik", n, "VAE"), med("loglik", n, "Histogram")) for n in names]
    lines.append(("VAE log-lik > Histogram on every table", *verdict(pairs, lambda a, b: a > b)))
    lines.append(
        ("all-rows VAE > listwise VAE (missing tables)", *listwise_verdict(results, names, missing))
    )
    if speed_ratio is None:
        lines.append((f"speed ratio mixed/numeric >= {TARGET_SPEED_RATIO}", "—", ""))
    else:
        ok = "PASS" if speed_ratio >= TARGET_SPEED_RATIO else "FAIL"
        lines.append(
            (f"speed ratio mixed/numeric >= {TARGET_SPEED_RATIO}", ok, f"{speed_ratio:.2f}")
        )
    print("\n=== targets" + (" (quick run: not a measurement)" if quick else ""))
    print(format_table(("target", "verdict", "medians (VAE vs other)"), lines, left=3))
    print("TVAE: listwise where it could be fitted, else imputed.")


def report_warnings(caught):
    counts = Counter()
    for warning in caught:
        message = str(warning.message).strip().split("\n")[0][:150]
        counts[(warning.category.__name__, warning.filename.split(os.sep)[-1], message)] += 1
    if counts:
        print("\n=== warnings raised during the run (count, category, file, message)")
        for (category, filename, message), count in counts.most_common():
            print(f"  {count:4d}  {category}  {filename}: {message}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tables", nargs="+", choices=list(TABLES), default=list(TABLES), help="tables to run"
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("quality", "speed"),
        default=["quality", "speed"],
        help="quality tables, speed section, or both (default)",
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 3, quick 1)")
    parser.add_argument(
        "--tvae-epochs", type=int, default=None, help=f"TVAE epochs (default {TVAE_EPOCHS})"
    )
    parser.add_argument(
        "--speed-rows", type=int, default=None, help=f"speed table rows (default {SPEED_ROWS})"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    if args.tvae_epochs is None:
        args.tvae_epochs = QUICK_TVAE_EPOCHS if args.quick else TVAE_EPOCHS
    if args.speed_rows is None:
        args.speed_rows = QUICK_SPEED_ROWS if args.quick else SPEED_ROWS
    return args


def main(argv=None):
    args = parse_args(argv)
    start_run(args.threads)
    try:
        import ctgan

        print(f"ctgan {ctgan.__version__}, pandas {pd.__version__}")
    except ImportError:
        print(f"ctgan not installed, pandas {pd.__version__}")
    print(f"load average before: {load_average()}")
    mode = "QUICK (smoke run)" if args.quick else "full"
    print(
        f"mode: {mode}; seeds: {args.seeds}; TVAE epochs: {args.tvae_epochs}; "
        "split: train_test_split(test_size=0.25, random_state=seed); medians over seeds"
    )

    total_start = time.perf_counter()
    results = Results()
    speed_ratio = None
    names = args.tables if "quality" in args.parts else []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames, missing = {}, {}
        for name in names:
            start = time.perf_counter()
            loader, missing[name] = TABLES[name]
            frames[name] = loader()
            evaluate_table(results, name, frames[name], missing[name], args.seeds, args.tvae_epochs)
            print(f"{name}: done in {time.perf_counter() - start:.0f} s")
        if names:
            print_data(names, frames, missing, results)
            print_measure(
                results,
                names,
                "held-out log-likelihood of the observed entries, nats per row (higher is better)",
                "loglik",
                ("VAE", "Histogram", "VAE listwise"),
                ".2f",
                "VAE listwise: fitted on train.dropna(), scored on the same held-out entries.",
            )
            print_measure(
                results,
                names,
                "C2ST ROC AUC, held-out rows vs samples with their NaN mask (0.5 is best)",
                "auc",
                ("VAE", "TVAE listwise", "TVAE imputed", "real vs real"),
                ".3f",
                "TVAE listwise: fitted on train.dropna(); TVAE imputed: on train with NaN "
                "filled by median/mode; real vs real: held-out vs as many training rows.",
            )
            print_measure(
                results,
                names,
                f"fit time, wall seconds ({args.threads} thread(s))",
                "fit",
                ("VAE", "TVAE listwise", "TVAE imputed"),
                ".1f",
            )
            if results.reasons:
                print("\nwhy cells are empty (first message per model):")
                for (model, text), reason in results.reasons.items():
                    print(f"  {model}: {text}: {reason}")
        if "speed" in args.parts:
            speed_ratio = run_speed(args.speed_rows)
    report_warnings([w for w in caught if not issubclass(w.category, ConvergenceWarning)])
    n_convergence = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    if n_convergence:
        print(f"{n_convergence} ConvergenceWarning(s) (fits that reached max_iter)")
    if names or speed_ratio is not None or "speed" in args.parts:
        print_targets(results, names, missing if names else {}, speed_ratio, args.quick)
    print(f"\nload average after: {load_average()}")
    print(f"total time: {time.perf_counter() - total_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
