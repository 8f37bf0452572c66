"""The thread policy: the fixed rule, the timed choice of a fit, and results that ignore both."""

import copy
import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST, make_factor_data
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from torch import nn

from sklearn_vae import VAETransformer
from sklearn_vae._threads import (
    MIN_PROBE_INTERVAL,
    PROBE_BATCHES,
    PROBE_OVERHEAD,
    THREADED_WORK,
    FastestThreads,
    ThreadTuner,
    fit_thread_counts,
    n_threads,
    request_thread_invariant_blas,
    thread_invariant_blas,
    torch_threads,
)

STREAM = {**FAST, "early_stopping": False}
needs_mkl = pytest.mark.skipif(
    not torch.backends.mkl.is_available(),
    reason="torch without MKL: a fit keeps the fixed thread rule",
)


@pytest.fixture
def two_torch_threads():
    """torch with two intra-op threads, as on a 2-core machine; the caller's count comes back."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


# The fixed rule (scoring, inference, and fits where the count would change the bits).


def test_default_threads_follow_the_work_of_a_training_step(two_torch_threads, monkeypatch):
    monkeypatch.delitem(os.environ, "OMP_NUM_THREADS", raising=False)
    below = THREADED_WORK // 128 - 1
    assert n_threads(None, below, 128) == 1
    assert n_threads(None, below + 1, 128) == 2
    monkeypatch.setitem(os.environ, "OMP_NUM_THREADS", "1")
    assert n_threads(None, below + 1, 128) == 1
    for not_a_count in ("0", "two", "-1"):  # ignored, as OpenMP ignores them
        monkeypatch.setitem(os.environ, "OMP_NUM_THREADS", not_a_count)
        assert n_threads(None, below + 1, 128) == 2


def test_explicit_n_jobs_counts_threads_as_scikit_learn_does(monkeypatch):
    monkeypatch.setattr(joblib, "cpu_count", lambda: 4)
    assert [n_threads(n_jobs, 1, 1) for n_jobs in (1, 3, -1, -2, -4, -9)] == [1, 3, 4, 3, 1, 1]


def test_torch_threads_restores_the_callers_count(two_torch_threads):
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with torch_threads(2):  # the count the block starts with, changed inside it
        torch.set_num_threads(1)
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == 2


def test_n_jobs_zero_is_refused():
    with pytest.raises(ValueError, match="n_jobs"):
        VAETransformer(n_jobs=0).fit(make_factor_data(50))


# The candidates of a fit.


@needs_mkl
def test_a_default_cpu_fit_times_powers_of_two_up_to_the_available_threads(monkeypatch):
    assert thread_invariant_blas()
    monkeypatch.delitem(os.environ, "OMP_NUM_THREADS", raising=False)
    previous = torch.get_num_threads()
    try:
        for available, expected in [(1, (1,)), (2, (1, 2)), (6, (1, 2, 4, 6)), (8, (1, 2, 4, 8))]:
            torch.set_num_threads(available)
            assert fit_thread_counts(None, 10, 10, "cpu") == expected
        monkeypatch.setitem(os.environ, "OMP_NUM_THREADS", "2")
        assert fit_thread_counts(None, 10, 10, "cpu") == (1, 2)
        # An explicit n_jobs, or a fit on another device, keeps its one count.
        assert fit_thread_counts(4, 10, 10, "cpu") == (4,)
        assert fit_thread_counts(None, 10, 10, torch.device("meta")) == (1,)
    finally:
        torch.set_num_threads(previous)


# FastestThreads, on a clock the test drives: each batch takes the time its count is given.


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def run_batches(chooser, clock, seconds, n_batches, training=True):
    """The counts ``chooser`` gives ``n_batches`` batches; ``seconds(count)`` is a batch's time."""
    used = []
    for _ in range(n_batches):
        count = chooser.begin_batch(training)
        used.append(count)
        clock.now += seconds(count)
        chooser.end_batch(training)
    return used


# Binary fractions, so that the clock's sums are exact.
IDLE = {1: 2**-8, 2: 2**-9}.__getitem__
BUSY = {1: 2**-8, 2: 2**-6}.__getitem__
PROBE = 1 + PROBE_BATCHES


def test_a_probe_runs_each_count_then_trains_on_the_fastest():
    for seconds, fastest in [(IDLE, 2), (BUSY, 1)]:
        clock = FakeClock()
        chooser = FastestThreads((1, 2), clock=clock)
        used = run_batches(chooser, clock, seconds, 2 * PROBE + 50)
        assert used == [1] * PROBE + [2] * PROBE + [fastest] * 50
        assert chooser.best == fastest


def test_the_first_batch_after_a_switch_is_not_timed():
    # Two threads settle slowly, then one of their timed batches is slow too: the median of
    # the timed batches is still the fast time, that of all four batches would not be.
    two_thread = [1.0] + [2**-9] * (PROBE_BATCHES - 1) + [1.0]
    clock, times = FakeClock(), iter([2**-8] * PROBE + two_thread)
    chooser = FastestThreads((1, 2), clock=clock)
    run_batches(chooser, clock, lambda count: next(times), 2 * PROBE)
    assert np.median(two_thread) > 2**-8
    assert chooser.best == 2


def test_the_choice_is_the_lowest_median_not_the_lowest_mean():
    # One slow two-thread batch (another process woke up) lifts their mean above one
    # thread's, but not their median.
    two_thread = [2**-9] * (PROBE_BATCHES - 1) + [1.0]
    times = iter([2**-8] * PROBE + [2**-9] + two_thread)
    clock = FakeClock()
    chooser = FastestThreads((1, 2), clock=clock)
    run_batches(chooser, clock, lambda count: next(times), 2 * PROBE)
    assert np.mean(two_thread) > 2**-8
    assert chooser.best == 2


def test_validation_batches_use_the_chosen_count_and_leave_the_probe_alone():
    clock = FakeClock()
    chooser = FastestThreads((1, 2), clock=clock)
    used = run_batches(chooser, clock, IDLE, PROBE + 1)
    # Mid-probe, a validation batch runs on the current choice (the largest count before any
    # probe ends) and is not timed; the probe goes on where it was.
    assert run_batches(chooser, clock, lambda count: 2**-10, 1, training=False) == [2]
    used += run_batches(chooser, clock, IDLE, PROBE - 1 + 3)
    assert used == [1] * PROBE + [2] * PROBE + [2] * 3
    assert run_batches(chooser, clock, IDLE, 1, training=False) == [chooser.best] == [2]
    # Before a probe has ended, the choice is the largest candidate, of any number of them.
    assert FastestThreads((1, 2, 4), clock=clock).begin_batch(training=False) == 4


@pytest.mark.parametrize(
    ("seconds", "best"),
    [(IDLE, 2), (BUSY, 1)],
    ids=["cheap probe: the shortest interval", "costly probe: its cost over the overhead"],
)
def test_the_next_probe_waits_until_the_last_one_cost_its_share_of_the_time(seconds, best):
    clock = FakeClock()
    chooser = FastestThreads((1, 2), clock=clock)
    used = run_batches(chooser, clock, seconds, 2 * PROBE)
    probe_time = PROBE * (seconds(1) + seconds(2))
    lost = probe_time - 2 * PROBE * seconds(best)
    wait = max(lost / PROBE_OVERHEAD, MIN_PROBE_INTERVAL)
    assert (wait == MIN_PROBE_INTERVAL) == (best == 2)
    # Batches at the chosen count until the clock reaches the start plus the wait.
    n_between = int(np.ceil((100.0 + wait - clock.now) / seconds(best)))
    used = run_batches(chooser, clock, seconds, n_between + 2 * PROBE)
    assert used == [best] * n_between + [1] * PROBE + [2] * PROBE


def test_a_load_that_comes_and_goes_moves_the_choice_at_the_next_probes():
    clock, load = FakeClock(), {"busy": False}
    chooser = FastestThreads((1, 2), clock=clock)
    seconds = lambda count: (BUSY if load["busy"] else IDLE)(count)  # noqa: E731
    run_batches(chooser, clock, seconds, 2 * PROBE)
    assert chooser.best == 2
    # Each phase runs past the next probe: the longest wait is that of a busy probe.
    longest = 2 * PROBE * (BUSY(2) - BUSY(1)) / PROBE_OVERHEAD
    for busy, best in [(True, 1), (False, 2)]:
        load["busy"] = busy
        used = run_batches(chooser, clock, seconds, int(longest / IDLE(2)) + 2 * PROBE)
        # Only the probe's timings count: the last phase's are gone when it ends.
        assert chooser.best == best and used[-1] == best


def test_a_probe_judges_on_its_own_timings_only():
    # After several busy probes the load goes: the first idle probe alone moves the choice.
    clock = FakeClock()
    chooser = FastestThreads((1, 2), clock=clock)
    busy_wait = PROBE * (BUSY(2) - BUSY(1)) / PROBE_OVERHEAD
    run_batches(chooser, clock, BUSY, 2 * PROBE + int(3 * busy_wait / BUSY(1)))
    assert chooser.best == 1
    used = []
    while used[-PROBE:] != [2] * PROBE:  # until the idle probe's two-thread batches have run
        used += run_batches(chooser, clock, IDLE, 1)
    assert chooser.best == 2


# ThreadTuner, the skorch callback around it.


def test_the_tuner_leaves_torch_alone_when_off(two_torch_threads):
    for counts in (None, (1,)):
        tuner = ThreadTuner(counts)
        tuner.on_train_begin(net=None)
        tuner.on_batch_begin(net=None, training=True)
        tuner.on_batch_end(net=None, training=True)
        assert tuner.chooser_ is None and torch.get_num_threads() == 2


def test_the_tuner_sets_the_chosen_count_and_keeps_its_timing_across_calls(two_torch_threads):
    assert not hasattr(pickle.loads(pickle.dumps(ThreadTuner((1, 2)))), "chooser_")
    tuner = ThreadTuner((1, 2))
    tuner.on_train_begin(net=None)
    counts = []
    for _ in range(2 * PROBE + 1):
        tuner.on_batch_begin(net=None, training=True)
        counts.append(torch.get_num_threads())
        tuner.on_batch_end(net=None, training=True)
    # The probe, then the count it chose.
    assert counts == [1] * PROBE + [2] * PROBE + [tuner.chooser_.best]
    chooser = tuner.chooser_
    tuner.on_train_begin(net=None)  # the next partial_fit call, same candidates
    assert tuner.chooser_ is chooser
    tuner.set_params(counts=(1, 2, 4))
    tuner.on_train_begin(net=None)
    assert tuner.chooser_ is not chooser and tuner.chooser_.counts == (1, 2, 4)
    restored = pickle.loads(pickle.dumps(tuner))
    assert not hasattr(restored, "chooser_") and restored.counts == (1, 2, 4)
    restored.on_train_begin(net=None)
    assert restored.chooser_.counts == (1, 2, 4)


class ThreadRecordingEncoder(nn.Module):
    """An encoder trunk that records torch's thread count at every forward pass."""

    seen = []

    def __init__(self, n_inputs, width=8):
        super().__init__()
        self.layer = nn.Linear(n_inputs, width)

    def forward(self, x):
        ThreadRecordingEncoder.seen.append(torch.get_num_threads())
        return torch.relu(self.layer(x))


def _recorded_threads(n_jobs, X):
    """The thread counts of the training passes, then those of scoring and transform."""
    ThreadRecordingEncoder.seen = []
    vae = VAETransformer(**STREAM, encoder=ThreadRecordingEncoder, n_jobs=n_jobs).fit(X)
    # The first pass builds the net (its width is read at initialisation).
    training = ThreadRecordingEncoder.seen[1:]
    ThreadRecordingEncoder.seen = []
    vae.score_samples(X)
    vae.transform(X)
    return training, ThreadRecordingEncoder.seen


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_fit_and_scoring_run_with_the_threads_of_n_jobs(two_torch_threads, monkeypatch, n_jobs):
    monkeypatch.delitem(os.environ, "OMP_NUM_THREADS", raising=False)
    training, scoring = _recorded_threads(n_jobs, make_factor_data(200))
    assert set(training) == set(scoring) == {n_jobs}
    assert torch.get_num_threads() == 2


@needs_mkl
def test_a_default_fit_times_both_counts_and_scoring_keeps_the_fixed_rule(
    two_torch_threads, monkeypatch
):
    monkeypatch.delitem(os.environ, "OMP_NUM_THREADS", raising=False)
    training, scoring = _recorded_threads(None, make_factor_data(200))
    assert training[: 2 * PROBE] == [1] * PROBE + [2] * PROBE
    assert set(scoring) == {1}
    assert torch.get_num_threads() == 2
    # A budget of one thread (a joblib or Dask worker) leaves nothing to time.
    monkeypatch.setitem(os.environ, "OMP_NUM_THREADS", "1")
    training, _ = _recorded_threads(None, make_factor_data(200))
    assert set(training) == {1}


# Results that do not depend on the count.


def test_scores_do_not_depend_on_thread_count(fitted_vae, X_small):
    vae = copy.deepcopy(fitted_vae).set_params(n_jobs=1)
    one = vae.score_samples(X_small)
    two = vae.set_params(n_jobs=2).score_samples(X_small)
    assert_allclose(one, two, rtol=1e-12)


def _mixed_table():
    rng = np.random.default_rng(0)
    X = make_factor_data(300)
    X[rng.random(X.shape) < 0.2] = np.nan
    table = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    table["label"] = pd.Series(rng.choice(["a", "b", "c"], size=300)).where(rng.random(300) > 0.1)
    return table


CONFIGURATIONS = {
    "categorical digits": lambda: (load_digits().data[:600], {"likelihood": "categorical"}),
    "table with NaN and a label": lambda: (_mixed_table(), {"hidden_layer_sizes": (64, 64)}),
    "dequantised, importance-weighted": lambda: (
        load_digits().data[:600],
        {"likelihood": "gaussian", "dequantize": True, "objective": "iwae", "n_draws": 5},
    ),
}


def _double_products_are_thread_invariant():
    """Whether MKL's float64 products give the same bits at one and two threads here.

    Strict mode covers float32 products on every CPU measured, but float64
    ones only on some: on an AMD EPYC, a 100 x 1088 times 1088 x 256 float64
    product differs in its last bits between the counts (float32 does not).
    """
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(100, 1088, generator=generator, dtype=torch.float64)
    b = torch.randn(1088, 256, generator=generator, dtype=torch.float64)
    products = []
    for count in (1, 2):
        torch.set_num_threads(count)
        products.append(a @ b)
    return bool(torch.equal(*products))


@needs_mkl
@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_fitted_bits_do_not_depend_on_thread_count(two_torch_threads, name):
    assert thread_invariant_blas()
    double_invariant = _double_products_are_thread_invariant()
    X, params = CONFIGURATIONS[name]()
    fits = [
        VAETransformer(**params, max_iter=3, early_stopping=False, random_state=0, n_jobs=n_jobs)
        for n_jobs in (1, 2, None)
    ]
    results = []
    for vae in fits:
        vae.fit(X)
        weights = [p.detach().numpy().copy() for p in vae.net_.module_.parameters()]
        results.append((weights, vae.score_samples(X[:100]), vae.transform(X[:100])))
    for weights, scores, latents in results[1:]:
        for got, expected in zip(weights, results[0][0], strict=True):
            assert_array_equal(got, expected)
        assert_array_equal(scores, results[0][1])
        if double_invariant:
            assert_array_equal(latents, results[0][2])
        else:
            # transform evaluates in float64: the products' rounding, about
            # 1088 * 2**-53 relative on sums of unit-sized terms, and no more
            # (different weights move the latents by 1e-6 or more).
            assert_allclose(latents, results[0][2], rtol=0, atol=1e-13)


@pytest.mark.parametrize(
    ("mode", "strict"), [(None, False), (1, False), (2, False), (0x10002, True), (0x10009, True)]
)
def test_the_mode_is_strict_when_mkls_strict_flag_is_set(monkeypatch, mode, strict):
    # None: no MKL in torch; 1: MKL's default; 2: AUTO; 0x10002: AUTO,STRICT; 0x10009: AVX2,STRICT.
    query = None if mode is None else (lambda flags: mode & flags)
    monkeypatch.setattr("sklearn_vae._threads._mkl_mode_query", lambda: query)
    assert thread_invariant_blas() is strict
    monkeypatch.delitem(os.environ, "OMP_NUM_THREADS", raising=False)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert fit_thread_counts(None, 10, 10, "cpu") == ((1, 2) if strict else (1,))
    finally:
        torch.set_num_threads(previous)


def test_the_import_asks_for_the_strict_mode_and_keeps_a_users_setting(monkeypatch):
    monkeypatch.delitem(os.environ, "MKL_CBWR", raising=False)
    request_thread_invariant_blas()
    assert os.environ["MKL_CBWR"] == "AUTO,STRICT"
    monkeypatch.setitem(os.environ, "MKL_CBWR", "AVX2")
    request_thread_invariant_blas()
    assert os.environ["MKL_CBWR"] == "AVX2"


def _run(*pieces, **env):
    """The words ``pieces`` print in a fresh interpreter whose ``MKL_CBWR`` is ``env``'s, if any.

    Nor does it inherit a thread budget (a Dask test may leave ``OMP_NUM_THREADS`` set).
    """
    unset = {"MKL_CBWR", "OMP_NUM_THREADS"}
    environment = {key: value for key, value in os.environ.items() if key not in unset}
    completed = subprocess.run(
        [sys.executable, "-c", "".join(textwrap.dedent(piece) for piece in pieces)],
        env={**environment, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.split()


CHECK = """
    import sklearn_vae
    import torch
    from sklearn_vae._threads import fit_thread_counts, thread_invariant_blas
    torch.set_num_threads(2)
    print(thread_invariant_blas(), fit_thread_counts(None, 10, 10, "cpu") == (1,))
"""

DIFFERENCE_AT_TWO_THREADS = """
    x = torch.randn(128, 1088, generator=torch.Generator().manual_seed(0))
    w = torch.randn(1088, 256, generator=torch.Generator().manual_seed(1))
    torch.set_num_threads(1)
    one = x @ w
    torch.set_num_threads(2)
    print(bool((one != x @ w).any()))
"""


@needs_mkl
def test_without_mkls_strict_mode_the_count_changes_the_bits_and_fits_keep_one_count():
    # The mode is what makes the bits above equal. MKL_CBWR=AUTO, a user's own setting, is
    # kept, and a default fit keeps one count. On Intel CPUs the product then differs at two
    # threads; on an AMD EPYC MKL's float32 path for this shape agrees without the mode too.
    mode, one_count, differs = _run(CHECK, DIFFERENCE_AT_TWO_THREADS, MKL_CBWR="AUTO")
    assert (mode, one_count) == ("False", "True")
    cpuinfo = "/proc/cpuinfo"
    amd = os.path.exists(cpuinfo) and "AuthenticAMD" in open(cpuinfo).read()
    assert differs == "True" or amd
    # Unset, sklearn_vae asks for the mode on import, and the same product agrees.
    assert _run(CHECK, DIFFERENCE_AT_TWO_THREADS) == ["True", "False", "False"]


@needs_mkl
def test_mkl_used_before_the_import_keeps_fits_on_the_fixed_rule():
    first = """
        import torch
        torch.ones(64, 64) @ torch.ones(64, 64)
    """
    assert _run(first, CHECK) == ["False", "True"]
