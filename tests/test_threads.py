"""The thread policy: a count fixed by the work of a training step, no import side effect."""

import copy
import os
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
from sklearn_vae._threads import THREADED_WORK, n_threads, torch_threads

STREAM = {**FAST, "early_stopping": False}
needs_mkl = pytest.mark.skipif(
    not torch.backends.mkl.is_available(), reason="torch without MKL: no MKL_CBWR to set"
)


@pytest.fixture
def two_torch_threads():
    """torch with two intra-op threads, as on a 2-core machine; the caller's count comes back."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


# The fixed rule.


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


def test_a_default_fit_of_a_small_network_trains_and_scores_on_one_thread(
    two_torch_threads, monkeypatch
):
    # Below THREADED_WORK multiply-adds per step, whatever the machine's load:
    # the count is the same on every run, so a seeded fit's bits are too.
    monkeypatch.delitem(os.environ, "OMP_NUM_THREADS", raising=False)
    training, scoring = _recorded_threads(None, make_factor_data(200))
    assert set(training) == set(scoring) == {1}
    assert torch.get_num_threads() == 2


def test_a_default_fit_of_a_large_network_uses_the_available_threads(
    two_torch_threads, monkeypatch
):
    monkeypatch.delitem(os.environ, "OMP_NUM_THREADS", raising=False)
    X = make_factor_data(300)
    ThreadRecordingEncoder.seen = []
    # A trunk 100,000 wide: with its posterior head about 1.2e6 weights, so a
    # batch of 128 rows is above THREADED_WORK multiply-adds.
    vae = VAETransformer(
        **{**STREAM, "max_iter": 1, "hidden_layer_sizes": (128,)},
        encoder=ThreadRecordingEncoder,
        encoder_params={"width": 100_000},
        batch_size=128,
    )
    vae.fit(X)
    n_weights = sum(p.numel() for p in vae.net_.module_.parameters())
    assert n_weights * 128 >= THREADED_WORK
    assert set(ThreadRecordingEncoder.seen[1:]) == {2}
    monkeypatch.setitem(os.environ, "OMP_NUM_THREADS", "1")  # a joblib or Dask worker's budget
    ThreadRecordingEncoder.seen = []
    vae.fit(X)
    assert set(ThreadRecordingEncoder.seen[1:]) == {1}


def test_two_seeded_default_fits_give_the_same_bits(two_torch_threads):
    X = load_digits().data[:300]
    fits = [
        VAETransformer(likelihood="categorical", max_iter=3, random_state=0).fit(X)
        for _ in range(2)
    ]
    for got, expected in zip(
        fits[0].net_.module_.parameters(), fits[1].net_.module_.parameters(), strict=True
    ):
        assert_array_equal(got.detach().numpy(), expected.detach().numpy())
    assert_array_equal(fits[0].score_samples(X), fits[1].score_samples(X))


def _run(code, **env):
    """What ``code`` prints in a fresh interpreter, without MKL_CBWR or OMP_NUM_THREADS
    unless ``env`` sets them."""
    unset = {"MKL_CBWR", "OMP_NUM_THREADS"}
    environment = {key: value for key, value in os.environ.items() if key not in unset}
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**environment, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.split()


def test_importing_the_package_changes_no_environment_variable_and_no_torch_state():
    code = """
        import os, torch
        before = (dict(os.environ), torch.get_num_threads(), torch.random.get_rng_state())
        import sklearn_vae
        after = (dict(os.environ), torch.get_num_threads(), torch.random.get_rng_state())
        keys = set(before[0]) | set(after[0])
        changed = [k for k in keys if before[0].get(k) != after[0].get(k)]
        print(changed == [], before[1] == after[1], bool(torch.equal(before[2], after[2])))
    """
    assert _run(code) == ["True", "True", "True"]


FIT_AT_TWO_COUNTS = """
    import numpy as np, torch
    from sklearn.datasets import load_digits
    from sklearn_vae import VAETransformer
    torch.set_num_threads(2)
    X = load_digits().data[:400]
    fits = [
        VAETransformer(likelihood="categorical", max_iter=2, early_stopping=False,
                       random_state=0, n_jobs=n_jobs).fit(X)
        for n_jobs in (1, 2)
    ]
    same = all(
        torch.equal(a, b)
        for a, b in zip(fits[0].net_.module_.parameters(), fits[1].net_.module_.parameters())
    )
    print(same)
"""


@needs_mkl
def test_a_users_strict_mkl_mode_makes_the_bits_independent_of_the_thread_count():
    # The documented opt-in: MKL_CBWR=AUTO,STRICT set before Python starts.
    # (Whether the default mode's bits differ at two threads depends on the
    # CPU, so only the opt-in's promise is asserted.)
    assert _run(FIT_AT_TWO_COUNTS, MKL_CBWR="AUTO,STRICT") == ["True"]
