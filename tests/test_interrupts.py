"""A KeyboardInterrupt during training leaves every estimator consistent.

After at least one epoch of the call completed, the model keeps the last one
(its best weights under early stopping) and warns; before that, the interrupt
is raised again and the estimator is as it was before the call. The
interrupts are raised from inside a batch here, and sent as a real SIGINT to
a process that trains at the end.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_factor_data, warned_from
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError
from skorch.callbacks import EarlyStopping

from sklearn_vae import (
    DensityOutlierDetector,
    TrainingInterruptedWarning,
    VAEImputer,
    VAETransformer,
)
from sklearn_vae._net import CompletedEpochs, VAENet

TINY = dict(n_components=2, hidden_layer_sizes=(8,), random_state=0, n_iter_no_change=1000)
# 200 rows: two training batches per epoch (one under early stopping's split).
X = make_factor_data(200)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class Interrupter:
    """Raise ``KeyboardInterrupt`` from the ``at``-th call of a patched method (1-based).

    With ``every=True``, from every call after it too; ``threads`` records the
    threads it raised in.
    """

    def __init__(self, monkeypatch, cls, method, at, every=False):
        self.calls, self.at, self.threads = 0, at, set()
        original = getattr(cls, method)

        def patched(*args, **kwargs):
            self.calls += 1
            if self.calls == self.at or (every and self.calls > self.at):
                self.threads.add(threading.get_ident())
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        monkeypatch.setattr(cls, method, patched)


def batches_per_epoch(vae):
    n_rows = len(X) - (int(np.ceil(0.1 * len(X))) if vae.early_stopping else 0)
    return int(np.ceil(n_rows / 128))


def outputs(vae):
    """Every output of a fitted VAE, and the state that training goes on from."""
    Z = vae.transform(X)
    state = vae.net_.optimizer_.state_dict()["state"]
    return {
        "transform": Z,
        "inverse_transform": vae.inverse_transform(Z),
        "score_samples": vae.score_samples(X),
        "sample": vae.sample(5, random_state=0),
        "log_likelihood": vae.log_likelihood(X[:20], n_importance_samples=10, random_state=0),
        "adam": np.concatenate([s[k].numpy().ravel() for s in state.values() for k in s]),
        "curves": np.array(
            [vae.n_iter_, len(vae.net_.history), *vae.loss_curve_, *(vae.validation_scores_ or [])]
        ),
    }


def assert_same(expected, actual):
    assert expected.keys() == actual.keys()
    for name in expected:
        assert_array_equal(actual[name], expected[name], err_msg=name, strict=True)


# ----------------------------------------------------------- VAETransformer


@pytest.mark.parametrize("average", [False, 0.9])
@pytest.mark.parametrize("early_stopping", [True, False])
@pytest.mark.parametrize("step", ["train_step", "validation_step"])
def test_fit_interrupted_in_a_batch_keeps_the_last_completed_epoch_bit_for_bit(
    monkeypatch, step, early_stopping, average
):
    if step == "validation_step" and not early_stopping:
        pytest.skip("no validation batches without early stopping")
    params = dict(TINY, early_stopping=early_stopping, average=average)
    # Five epochs, uninterrupted, then three more with warm_start.
    reference = VAETransformer(**params, max_iter=5).fit(X)
    expected = outputs(reference)
    per_epoch = batches_per_epoch(reference) if step == "train_step" else 1
    Interrupter(monkeypatch, VAENet, step, at=5 * per_epoch + 1)  # the first batch of epoch 6
    vae = VAETransformer(**params, max_iter=50)
    with pytest.warns(TrainingInterruptedWarning) as record:
        vae.fit(X)
    monkeypatch.undo()
    message = str(record[0].message)
    assert "interrupted (KeyboardInterrupt) in epoch 6" in message
    assert "keeps epoch 5" in message and "n_iter_=5" in message
    assert "warm_start=True" in message and "partial_fit" in message
    assert warned_from(record[0], __file__)
    assert vae.n_iter_ == len(vae.loss_curve_) == 5
    assert_same(expected, outputs(vae))
    # Training goes on exactly as from the uninterrupted fit.
    for model in (reference, vae):
        model.set_params(warm_start=True, max_iter=3).fit(X)
    assert_same(outputs(reference), outputs(vae))


def test_the_warning_names_the_best_epoch_whose_weights_early_stopping_keeps(monkeypatch):
    # A learning rate so high that the validation score soon gets worse.
    params = dict(TINY, learning_rate_init=0.5, max_iter=8)
    reference = VAETransformer(**params).fit(X)
    best = int(np.argmax(reference.validation_scores_)) + 1
    assert best < 8
    Interrupter(monkeypatch, VAENet, "validation_step", at=9)
    with pytest.warns(TrainingInterruptedWarning, match=f"best weights, those of epoch {best}:"):
        vae = VAETransformer(**params, warm_start=False).set_params(max_iter=50).fit(X)
    monkeypatch.undo()
    assert_same(outputs(reference), outputs(vae))


@pytest.mark.parametrize("where", ["before_the_copy", "after_early_stopping"])
def test_interrupt_at_the_end_of_an_epoch_keeps_the_epochs_whose_end_completed(monkeypatch, where):
    # Between the epoch's scores and the copy of its state: the epoch is not kept.
    # Inside early stopping's bookkeeping of epoch 4, after its scores: epoch 3 is kept.
    cls = CompletedEpochs if where == "before_the_copy" else EarlyStopping
    reference = VAETransformer(**TINY, max_iter=3).fit(X)
    Interrupter(monkeypatch, cls, "on_epoch_end", at=4)
    with pytest.warns(TrainingInterruptedWarning, match="in epoch 4"):
        vae = VAETransformer(**TINY, max_iter=50).fit(X)
    monkeypatch.undo()
    assert_same(outputs(reference), outputs(vae))


def test_interrupt_at_the_end_of_training_raises_and_keeps_the_fitted_model(monkeypatch):
    # After the epochs, outside skorch's catch: nothing of the call is kept.
    from sklearn_vae._averaging import WeightAveraging

    vae = VAETransformer(**TINY, max_iter=2, warm_start=True).fit(X)
    expected = outputs(vae)
    Interrupter(monkeypatch, WeightAveraging, "on_train_end", at=1)
    with pytest.raises(KeyboardInterrupt):
        vae.fit(X)
    monkeypatch.undo()
    assert_same(expected, outputs(vae))


def test_fresh_fit_interrupted_in_its_first_epoch_raises_and_leaves_no_model(monkeypatch):
    Interrupter(monkeypatch, VAENet, "train_step", at=1)
    vae = VAETransformer(**TINY, max_iter=5)
    with pytest.raises(KeyboardInterrupt):
        vae.fit(X)
    assert not hasattr(vae, "net_")
    with pytest.raises(NotFittedError):
        vae.transform(X)


@pytest.mark.parametrize("warm_start", [False, True])
def test_refit_interrupted_in_its_first_epoch_raises_and_keeps_the_fitted_model(
    monkeypatch, warm_start
):
    vae = VAETransformer(**TINY, max_iter=3, warm_start=warm_start).fit(X)
    twin = VAETransformer(**TINY, max_iter=3, warm_start=warm_start).fit(X)
    expected = outputs(vae)
    Interrupter(monkeypatch, VAENet, "train_step", at=2)
    with pytest.raises(KeyboardInterrupt):
        vae.fit(X)
    monkeypatch.undo()
    assert_same(expected, outputs(vae))
    # Nothing of the interrupted call is left: the next fit is the twin's.
    for model in (vae, twin):
        model.fit(X)
    assert_same(outputs(twin), outputs(vae))


def test_refit_interrupted_while_choosing_its_network_raises_and_keeps_the_fitted_model(
    monkeypatch,
):
    # hidden_layer_sizes="auto" on 200 rows fits its folds first: an interrupt in a
    # fold's second epoch is the fit's, before its own first epoch.
    params = {**TINY, "hidden_layer_sizes": "auto", "max_iter": 3}
    vae = VAETransformer(**params).fit(X)
    expected = outputs(vae)
    Interrupter(monkeypatch, VAENet, "train_step", at=3)
    with pytest.raises(KeyboardInterrupt):
        vae.fit(X)
    monkeypatch.undo()
    assert_same(expected, outputs(vae))


def test_partial_fit_interrupted_raises_and_leaves_the_model_as_before_the_call(monkeypatch):
    vae = VAETransformer(**TINY).partial_fit(X).partial_fit(X)
    twin = VAETransformer(**TINY).partial_fit(X).partial_fit(X)
    expected = outputs(vae)
    Interrupter(monkeypatch, VAENet, "train_step", at=2)
    with pytest.raises(KeyboardInterrupt):
        vae.partial_fit(X)
    monkeypatch.undo()
    assert_same(expected, outputs(vae))
    for model in (vae, twin):
        model.partial_fit(X)
    assert_same(outputs(twin), outputs(vae))


def test_first_partial_fit_interrupted_leaves_no_model(monkeypatch):
    Interrupter(monkeypatch, VAENet, "train_step", at=1)
    vae = VAETransformer(**TINY)
    with pytest.raises(KeyboardInterrupt):
        vae.partial_fit(X)
    assert not hasattr(vae, "net_") and not hasattr(vae, "n_features_in_")


def test_error_in_a_warm_start_puts_the_weights_back(monkeypatch):
    # Not only interrupts: any error in training leaves the trained-on net as it was.
    vae = VAETransformer(**TINY, max_iter=3, warm_start=True).fit(X)
    expected = outputs(vae)

    def diverge(self, batch, **kwargs):
        raise RuntimeError("diverged")

    original = VAENet.train_step
    calls = []

    def step(self, batch, **kwargs):
        calls.append(1)
        return (diverge if len(calls) == 4 else original)(self, batch, **kwargs)

    monkeypatch.setattr(VAENet, "train_step", step)
    with pytest.raises(RuntimeError, match="diverged"):
        vae.fit(X)
    monkeypatch.undo()
    assert_same(expected, outputs(vae))


# ------------------------------------------------------ imputer and detector


def holes():
    Xh = X.copy()
    Xh[np.random.default_rng(0).random(X.shape) < 0.2] = np.nan
    return Xh


@pytest.mark.parametrize("fitted_before", [False, True])
def test_imputer_interrupted_in_a_member_raises_and_trains_no_further_member(
    monkeypatch, fitted_before
):
    Xh = holes()
    imputer = VAEImputer(
        VAETransformer(**TINY, max_iter=4), n_estimators=3, n_importance_samples=10, random_state=0
    )
    expected = imputer.fit(Xh).transform(Xh) if fitted_before else None
    # Epoch 3 of the second member: its fit alone would keep two epochs.
    per_epoch = batches_per_epoch(imputer.estimator)
    interrupter = Interrupter(monkeypatch, VAENet, "train_step", at=(4 + 2) * per_epoch + 1)
    with pytest.raises(KeyboardInterrupt):
        imputer.fit(Xh)
    monkeypatch.undo()
    assert interrupter.calls == interrupter.at
    if fitted_before:
        assert_array_equal(imputer.transform(Xh), expected)
    else:
        assert not hasattr(imputer, "estimators_") and not hasattr(imputer, "n_features_in_")


def test_imputer_interrupted_in_a_thread_of_its_parallel_fit_raises(monkeypatch):
    from joblib import parallel_backend

    # Every member is interrupted: a thread cannot be stopped from outside.
    interrupter = Interrupter(monkeypatch, VAENet, "train_step", at=3, every=True)
    imputer = VAEImputer(VAETransformer(**TINY, max_iter=4), n_estimators=2, n_jobs=2)
    with parallel_backend("threading"), pytest.raises(KeyboardInterrupt):
        imputer.fit(holes())
    assert not hasattr(imputer, "estimators_")
    for _ in range(200):  # the other member's thread ends at its next step
        if len(interrupter.threads) == 2:
            break
        time.sleep(0.05)
    assert len(interrupter.threads) == 2


def test_detector_keeps_the_interrupted_vae_at_its_last_completed_epoch(monkeypatch):
    reference = VAETransformer(**TINY, max_iter=2).fit(X)
    Interrupter(monkeypatch, VAENet, "train_step", at=2 * batches_per_epoch(reference) + 1)
    detector = DensityOutlierDetector(VAETransformer(**TINY, max_iter=50), random_state=0)
    with pytest.warns(TrainingInterruptedWarning, match="keeps epoch 2"):
        detector.fit(X)
    monkeypatch.undo()
    assert detector.estimator_.n_iter_ == 2
    assert_same(outputs(reference), outputs(detector.estimator_))
    assert np.isfinite(detector.decision_function(X)).all()


def test_detector_interrupted_before_an_epoch_raises_and_keeps_its_fit(monkeypatch):
    detector = DensityOutlierDetector(VAETransformer(**TINY, max_iter=2), random_state=0).fit(X)
    expected = detector.decision_function(X)
    Interrupter(monkeypatch, VAENet, "train_step", at=1)
    with pytest.raises(KeyboardInterrupt):
        detector.set_params(method="score_samples").fit(X)
    monkeypatch.undo()
    assert detector._method == "log_likelihood"
    assert_array_equal(detector.decision_function(X), expected)


# ------------------------------------------------------------- real SIGINT

_SCRIPT = """
import signal, sys, warnings
# As in a terminal, whatever the test process left to its children (a
# process pool may ignore or block SIGINT, which both are inherited).
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
import numpy as np
from sklearn_vae import VAEImputer, VAETransformer
from sklearn_vae import TrainingInterruptedWarning

X = np.random.default_rng(0).normal(size=(2000, 6))
vae = VAETransformer(n_components=2, hidden_layer_sizes=(32,), max_iter=100000,
                     n_iter_no_change=100000, verbose=1, random_state=0)
if sys.argv[1] == "vae":
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vae.fit(X)
    kinds = [w.category.__name__ for w in caught]
    print("result", vae.n_iter_, len(vae.loss_curve_), len(vae.validation_scores_),
          len(vae.net_.history), np.isfinite(vae.score_samples(X)).all(), kinds, flush=True)
else:
    X[::3, 0] = np.nan
    imputer = VAEImputer(vae, n_estimators=2)
    try:
        imputer.fit(X)
    except KeyboardInterrupt:
        print("result interrupted", hasattr(imputer, "estimators_"), flush=True)
"""


def _interrupt_after_two_epochs(kind, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    process = subprocess.Popen(
        [sys.executable, "-u", str(script), kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        epochs = 0
        for line in process.stdout:
            # skorch's table: a row per completed epoch, starting with its number.
            if line.split() and line.split()[0].isdigit():
                epochs += 1
                if epochs == 2:
                    os.kill(process.pid, signal.SIGINT)
                    break
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    return out.splitlines()[-1].split(maxsplit=1)[1]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")
def test_real_sigint_during_fit_leaves_a_consistent_model_and_a_warning(tmp_path):
    result = _interrupt_after_two_epochs("vae", tmp_path)
    n_iter, n_losses, n_scores, n_history, finite, kinds = result.split(maxsplit=5)
    assert int(n_iter) >= 2
    assert n_iter == n_losses == n_scores == n_history
    assert finite == "True"
    assert kinds == "['TrainingInterruptedWarning']"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")
def test_real_sigint_during_an_imputer_fit_raises_and_leaves_it_unfitted(tmp_path):
    assert _interrupt_after_two_epochs("imputer", tmp_path) == "interrupted False"


def test_the_fit_keeps_its_torch_threads_after_an_interrupt(monkeypatch):
    threads = torch.get_num_threads()
    Interrupter(monkeypatch, VAENet, "train_step", at=1)
    with pytest.raises(KeyboardInterrupt):
        VAETransformer(**TINY, n_jobs=2).fit(X)
    assert torch.get_num_threads() == threads


def test_the_state_is_copied_at_every_epoch_end_but_the_calls_last():
    # The last epoch's copy would never be used: training ends with it.
    vae = VAETransformer(**TINY, max_iter=3, early_stopping=False).fit(X)
    completed = dict(vae.net_.callbacks_)["completed_epochs"]
    assert completed.n_completed_ == 3 and completed.last_.n_epochs == 2
