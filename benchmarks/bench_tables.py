"""Mixed-type tables with missing entries: likelihood, sample fidelity and speed.

Protocol: each table split ``train_test_split(df, test_size=0.25,
random_state=seed)`` for ``--seeds`` seeds; ``VAETransformer`` and
``HistogramDensity`` fitted on the raw DataFrame, scored by held-out
log-likelihood of the observed entries; samples compared with held-out rows by
a classifier two-sample test (C2ST ROC AUC, with the real rows' NaN mask),
against ctgan's TVAE; the VAE with ``prior="normal"``; fit times; and the
fit speed of a 100,000-row mixed table against an all-float one. Medians over seeds. Details in
``docs/benchmarks.md``. Command:
``OMP_NUM_THREADS=1 python benchmarks/bench_tables.py --threads 1``.
"""

import os
import sys
import time
import warnings
from collections import Counter, defaultdict

import _harness as harness
import numpy as np
import pandas as pd
from _harness import (
    load_breast_cancer_table,
    load_cars_table,
    load_penguins_table,
    load_wine_table,
    make_missing,
)
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

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
# The AUC the quality issue asks of the default on penguins.
TARGET_PENGUINS_AUC = 0.60
# The default VAE with the N(0, I) prior kept.
NORMAL = "VAE prior=normal"
TARGET_SPEED_RATIO = 0.5

NOT_SUPPORTED = "not supported"


# ---------------------------------------------------------------- two-sample test


def categorical_columns(df):
    """Names of the columns that are not numeric (strings, categories, bools, objects)."""
    return [
        column
        for column in df.columns
        if not pd.api.types.is_numeric_dtype(df[column]) or pd.api.types.is_bool_dtype(df[column])
    ]


def apply_missing_mask(synthetic, real):
    """``synthetic`` with NaN exactly where ``real`` has NaN, row by row.

    Both must have the same shape and columns; the result has ``real``'s index.
    Used so that a two-sample test compares the distribution of the observed
    entries and not the missingness pattern (the VAE samples complete rows
    for it, ``missing=False``).
    """
    synthetic = synthetic[list(real.columns)].set_axis(real.index, axis=0)
    return synthetic.mask(real.isna().to_numpy())


def _as_classifier_input(real, synthetic):
    """Stack ``real`` over ``synthetic``; non-numeric columns become one shared category."""
    columns = list(real.columns)
    categorical = set(categorical_columns(real)) | set(categorical_columns(synthetic[columns]))
    parts = []
    for frame in (real, synthetic):
        frame = frame[columns].reset_index(drop=True).copy()
        for column in columns:
            if column in categorical:
                frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
                frame[column] = frame[column].map(lambda v: None if v is None else str(v))
            else:
                frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        parts.append(frame)
    X = pd.concat(parts, ignore_index=True)
    for column in categorical:
        categories = sorted(X[column].dropna().unique())
        X[column] = pd.Categorical(X[column], categories=categories)
    y = np.r_[np.zeros(len(real), dtype=int), np.ones(len(synthetic), dtype=int)]
    return X, y


def classifier_two_sample_auc(real, synthetic, random_state):
    """Cross-validated ROC AUC of a classifier telling ``real`` rows from ``synthetic`` rows.

    ``real`` (label 0) and ``synthetic`` (label 1) are DataFrames with the same
    columns. Non-numeric columns are cast to ``category`` with the union of
    both sources' values, so both use the same codes; NaN stays NaN (handled
    natively by the classifier). The classifier is
    ``HistGradientBoostingClassifier(categorical_features="from_dtype")``,
    scored by 5-fold ``StratifiedKFold(shuffle=True)`` ROC AUC, both seeded
    with ``random_state``. Returns the mean AUC over folds: 0.5 means the
    classifier cannot tell the sources apart, 1.0 that it always can.
    """
    X, y = _as_classifier_input(real, synthetic)
    classifier = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=random_state
    )
    cv = StratifiedKFold(5, shuffle=True, random_state=random_state)
    return float(np.mean(cross_val_score(classifier, X, y, scoring="roc_auc", cv=cv)))


# ------------------------------------------------------------------------ results


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


def evaluate_vae(results, name, train, test, seed, model="VAE", sample=True, **params):
    """Fit the VAE (default, or ``params``); held-out log-likelihood, C2ST AUC and fit time."""
    vae = VAETransformer(random_state=seed, **params)
    fitted = guarded(lambda: harness.timed(lambda: vae.fit(train)))
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
    # Complete rows (missing=False): the test rows' own mask is applied to them below.
    samples = guarded(
        lambda: as_frame(vae.sample(len(test), random_state=seed, missing=False), test)
    )
    if isinstance(samples, Unavailable):
        results.add("auc", name, model, samples)
    else:
        auc = classifier_two_sample_auc(test, apply_missing_mask(samples, test), seed)
        results.add("auc", name, model, auc)


def evaluate_tvae(results, name, fit_rows, test, seed, epochs, model):
    """ctgan TVAE on ``fit_rows`` (complete): C2ST AUC of its masked samples, fit time."""
    try:
        from ctgan import TVAE
    except ImportError:
        TVAE = None
    if TVAE is None or len(fit_rows) < MIN_COMPLETE_ROWS:
        cell = Unavailable("ctgan not installed" if TVAE is None else f"n/a ({len(fit_rows)} rows)")
        results.add("auc", name, model, cell)
        results.add("fit", name, model, cell)
        return
    tvae = TVAE(epochs=epochs)
    tvae.set_random_state(seed)
    discrete = categorical_columns(fit_rows)
    try:
        _, seconds = harness.timed(lambda: tvae.fit(fit_rows, discrete_columns=discrete))
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
        evaluate_vae(results, name, train, test, seed, NORMAL, prior="normal")
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
        _, seconds = harness.timed(lambda: vae.fit(X))
    return len(X) * SPEED_EPOCHS / seconds


def run_speed(results, n_rows):
    """Fit speed (rows x epochs / s) of the mixed and numeric tables; the ratio of medians."""
    mixed, numeric = make_speed_tables(n_rows)
    print(
        f"\n=== speed: {n_rows} rows; mixed = 10 floats + 5 strings (3/8/15/30/50 "
        f"categories), {mixed.isna().to_numpy().mean():.1%} missing; numeric = 15 floats, "
        f"complete; VAETransformer(max_iter={SPEED_EPOCHS}, early_stopping=False)"
    )
    for repeat in range(SPEED_REPEATS):
        order = ("numeric", "mixed") if repeat % 2 == 0 else ("mixed", "numeric")
        for kind in order:
            X = mixed if kind == "mixed" else numeric
            results.add("speed", kind, "rows/s", guarded(lambda X=X: speed_fit(X)))
    print_measure(results, ["mixed", "numeric"], "fit speed, rows/s", "speed", ["rows/s"], ",.0f")
    mixed_speed = results.median("speed", "mixed", "rows/s")
    numeric_speed = results.median("speed", "numeric", "rows/s")
    if mixed_speed is None or numeric_speed is None:
        return None
    ratio = mixed_speed / numeric_speed
    print(f"ratio mixed / numeric: {ratio:.2f} (target >= {TARGET_SPEED_RATIO})")
    return ratio


# ------------------------------------------------------------------------ output


def print_measure(results, names, title, measure, models, fmt, note=""):
    print(f"\n=== {title}")
    present = [m for m in models if any(results.values[measure][n].get(m) for n in names)]
    rows = [(n, *(results.cell(measure, n, m, fmt) for m in present)) for n in names]
    print(harness.format_table(("table", *present), rows))
    if note:
        print(note)
    for n in names:
        for m in present:
            detail = results.detail(measure, n, m, fmt)
            if detail is not None:
                print(f"  {n} {m}: per seed {detail}")


def describe_data(names, frames, missing, results):
    """Shape, string columns, NaN fraction and complete training rows of each table."""
    data = {}
    for n in names:
        df = frames[n]
        data[n] = {
            "shape": list(df.shape),
            "string_columns": categorical_columns(df),
            "nan_fraction": float(df.isna().to_numpy().mean()),
            "missing": "20% MCAR" if missing[n] else "as loaded",
            "complete_train_rows": results.values["complete"][n].get("rows", []),
        }
    rows = [
        (
            n,
            f"{d['shape'][0]} x {d['shape'][1]}",
            ", ".join(d["string_columns"]),
            f"{d['nan_fraction']:.1%}",
            d["missing"],
            " ".join(f"{c:.0f}" for c in d["complete_train_rows"]),
        )
        for n, d in data.items()
    ]
    header = ("table", "shape", "string columns", "NaN", "missing", "complete train rows/seed")
    print("\n=== data")
    print(harness.format_table(header, rows))
    return data


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


def check_targets(results, names, missing, speed_ratio, quick):
    """Print the targets' verdicts and return them as dicts."""
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
    print(harness.format_table(("target", "verdict", "medians (VAE vs other)"), lines, left=3))
    print("TVAE: listwise where it could be fitted, else imputed.")
    return [dict(zip(("target", "verdict", "detail"), line, strict=True)) for line in lines]


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
    parser = harness.parser(__doc__.split("\n")[0])
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
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    if args.tvae_epochs is None:
        args.tvae_epochs = QUICK_TVAE_EPOCHS if args.quick else TVAE_EPOCHS
    if args.speed_rows is None:
        args.speed_rows = QUICK_SPEED_ROWS if args.quick else SPEED_ROWS
    return args


MEASURES = {
    "loglik": (
        "held-out log-likelihood of the observed entries, nats per row (higher is better)",
        ("VAE", NORMAL, "Histogram", "VAE listwise"),
        ".2f",
    ),
    "auc": (
        "C2ST ROC AUC, held-out rows vs samples with their NaN mask (0.5 is best)",
        ("VAE", NORMAL, "TVAE listwise", "TVAE imputed", "real vs real"),
        ".3f",
    ),
    "fit": ("fit time, wall seconds", ("VAE", NORMAL, "TVAE listwise", "TVAE imputed"), ".1f"),
}


def result_rows(results):
    """One row per measure, table and model: the median, and every seed's value or reason."""
    rows = []
    for measure in (*MEASURES, "speed"):
        for table, models in results.values[measure].items():
            for model, entries in models.items():
                rows.append(
                    {
                        "measure": measure,
                        "table": table,
                        "model": model,
                        "median": results.median(measure, table, model),
                        "per_seed": [e if isinstance(e, float) else e.text for e in entries],
                        # What the table shows when no seed has a number.
                        "text": entries[0].text if isinstance(entries[0], Unavailable) else None,
                    }
                )
    return rows


def main(argv=None):
    args = parse_args(argv)
    try:
        import ctgan

        versions = {"ctgan": ctgan.__version__, "pandas": pd.__version__}
    except ImportError:
        versions = {"ctgan": None, "pandas": pd.__version__}
    run = harness.Run("bench_tables", args)
    run.header["versions"].update(versions)
    results = Results()
    speed_ratio = None
    names = args.tables if "quality" in args.parts else []
    frames, missing = {}, {}
    with harness.thread_limit(args.threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in names:
            start = time.perf_counter()
            loader, missing[name] = TABLES[name]
            frames[name] = loader()
            evaluate_table(results, name, frames[name], missing[name], args.seeds, args.tvae_epochs)
            print(f"{name}: done in {time.perf_counter() - start:.0f} s")
        if names:
            run.header["tables"] = describe_data(names, frames, missing, results)
            for measure, (title, models, fmt) in MEASURES.items():
                print_measure(results, names, title, measure, models, fmt)
        if "speed" in args.parts:
            speed_ratio = run_speed(results, args.speed_rows)
    report_warnings([w for w in caught if not issubclass(w.category, ConvergenceWarning)])
    run.header["reasons"] = [
        {"model": model, "text": text, "reason": reason}
        for (model, text), reason in results.reasons.items()
    ]
    run.header["speed_ratio"] = speed_ratio
    run.header["targets"] = check_targets(results, names, missing, speed_ratio, args.quick)
    run.rows.extend(result_rows(results))
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
