"""The moving average of the weights (``average``): its arithmetic, its swaps, and the estimator."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import FAST, make_factor_data
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from sklearn_vae import VAETransformer
from sklearn_vae._averaging import DEFAULT_DECAY, WeightAveraging, average_decay
from sklearn_vae._persistence import _averaging_from_state, _averaging_state


def _adam_steps(vae):
    return int(next(iter(vae.net_.optimizer_.state.values()))["step"])


def _parameters(module):
    return [p.detach().clone() for p in module.parameters()]


def _set(module, values):
    with torch.no_grad():
        for parameter, value in zip(module.parameters(), values, strict=True):
            parameter.copy_(value)


def _assert_equal(actual, expected):
    for a, e in zip(actual, expected, strict=True):
        assert_array_equal(a.numpy(), e.numpy())


def _trained_fake_net(decay, n_steps):
    """A stand-in net whose weights take ``n_steps`` known values, with the callback's hooks."""
    torch.manual_seed(0)
    net = SimpleNamespace(module_=nn.Linear(3, 2))
    callback = WeightAveraging(decay)
    callback.on_train_begin(net)
    steps = []
    for _ in range(n_steps):
        steps.append([torch.randn_like(p) for p in net.module_.parameters()])
        _set(net.module_, steps[-1])
        callback.on_batch_end(net, training=True)
    return net, callback, steps


def _assert_close(actual, expected):
    # The callback averages in float32: a few steps of weights of order 1 round
    # at about 1e-7 each, far below the differences between steps (order 1).
    for a, e in zip(actual, expected, strict=True):
        assert_allclose(a.numpy(), e.numpy(), rtol=1e-6, atol=1e-6)


def _moving_average(steps, decay):
    """``w_avg <- decay * w_avg + (1 - decay) * w``, starting at the first step's weights."""
    average = [value.double() for value in steps[0]]
    for step in steps[1:]:
        average = [decay * a + (1 - decay) * w.double() for a, w in zip(average, step, strict=True)]
    return average


@pytest.mark.parametrize("decay", [0.5, 0.9])
def test_validation_sees_the_moving_average_of_the_training_steps(decay):
    net, callback, steps = _trained_fake_net(decay, n_steps=6)
    callback.on_batch_begin(net, training=False)
    _assert_close(_parameters(net.module_), _moving_average(steps, decay))


def test_the_next_epoch_trains_the_raw_weights_again():
    net, callback, steps = _trained_fake_net(0.9, n_steps=4)
    callback.on_batch_begin(net, training=False)
    average = _parameters(net.module_)
    # A second validation batch must not take the average for the raw weights.
    callback.on_batch_begin(net, training=False)
    _assert_equal(_parameters(net.module_), average)
    callback.on_epoch_begin(net)
    _assert_equal(_parameters(net.module_), steps[-1])
    assert net.weight_averaging_.raw is None
    callback.on_epoch_begin(net)
    _assert_equal(_parameters(net.module_), steps[-1])


def test_training_ends_on_the_average_and_keeps_the_raw_weights_for_the_next_call():
    net, callback, steps = _trained_fake_net(0.9, n_steps=4)
    callback.on_train_end(net)
    _assert_close(_parameters(net.module_), _moving_average(steps, 0.9))
    _assert_equal(net.weight_averaging_.raw, steps[-1])
    # The next call trains on from the raw weights, and the average goes on.
    callback.on_train_begin(net)
    _assert_equal(_parameters(net.module_), steps[-1])
    assert int(net.weight_averaging_.average.n_averaged) == 4


def test_a_changed_decay_applies_from_the_next_call():
    net, _, steps = _trained_fake_net(0.5, n_steps=3)
    callback = WeightAveraging(0.9)
    callback.on_train_begin(net)
    extra = [torch.full_like(p, 2.0) for p in net.module_.parameters()]
    _set(net.module_, extra)
    callback.on_batch_end(net, training=True)
    callback.on_train_end(net)
    expected = [0.9 * a + 0.1 * 2.0 for a in _moving_average(steps, 0.5)]
    _assert_close(_parameters(net.module_), expected)


def test_average_decay_maps_the_parameter():
    assert average_decay(False) is None
    assert average_decay(True) == DEFAULT_DECAY
    # numpy's booleans, which the parameter validation accepts as booleans.
    assert average_decay(np.False_) is None
    assert average_decay(np.True_) == DEFAULT_DECAY
    assert average_decay(0.25) == 0.25


# ------------------------------------------------------------ the estimator


@pytest.mark.parametrize("early_stopping", [False, True])
def test_the_fitted_module_is_the_average(early_stopping):
    X = make_factor_data(200)
    vae = VAETransformer(**{**FAST, "max_iter": 4}, average=0.9, early_stopping=early_stopping)
    vae.fit(X)
    state = vae.net_.weight_averaging_
    raw = state.raw
    assert raw is not None
    fitted = _parameters(vae.net_.module_)
    assert any(not torch.equal(f, r) for f, r in zip(fitted, raw, strict=True))
    if not early_stopping:
        # Without validation the last average is kept; with it, the best epoch's.
        _assert_equal(fitted, _parameters(state.average))
    # The average has taken in every training step.
    assert int(state.average.n_averaged) == _adam_steps(vae)


def test_without_average_there_is_no_averaging():
    X = make_factor_data(100)
    vae = VAETransformer(**{**FAST, "max_iter": 2}).fit(X)
    assert getattr(vae.net_, "weight_averaging_", None) is None
    assert dict(vae.net_.callbacks_)["weight_averaging"].decay is None


def test_average_true_uses_the_default_decay():
    X = make_factor_data(100)
    vae = VAETransformer(**{**FAST, "max_iter": 2}, average=True).fit(X)
    assert dict(vae.net_.callbacks_)["weight_averaging"].decay == DEFAULT_DECAY


def test_partial_fit_continues_the_raw_weights_and_their_average():
    X = make_factor_data(300)
    vae = VAETransformer(**FAST, early_stopping=False, average=0.9)
    for _ in range(3):
        vae.partial_fit(X)
        state = vae.net_.weight_averaging_
        # One average over every Adam step of every call, and the module holds it.
        assert int(state.average.n_averaged) == _adam_steps(vae)
        _assert_equal(_parameters(vae.net_.module_), _parameters(state.average))
        raw = [value.clone() for value in state.raw]
    # The next call starts from the raw weights: Adam's moments belong to them.
    callback = dict(vae.net_.callbacks_)["weight_averaging"]
    callback.on_train_begin(vae.net_)
    _assert_equal(_parameters(vae.net_.module_), raw)


@pytest.mark.parametrize("average", [0.0, 1.0, 1.5, -0.1, "yes"])
def test_invalid_average_is_rejected(average):
    with pytest.raises(InvalidParameterError, match="average"):
        VAETransformer(average=average).fit(make_factor_data(20))


@pytest.mark.parametrize("ended", [False, True])
def test_the_state_round_trips_through_arrays(ended):
    # Mid-training (the module holds the raw weights, ``raw`` is None) and after
    # training (the module holds the average, ``raw`` the raw weights).
    net, callback, _ = _trained_fake_net(0.9, n_steps=3)
    if ended:
        callback.on_train_end(net)
    arrays = _averaging_state(net)
    copy = SimpleNamespace(module_=nn.Linear(3, 2))
    _set(copy.module_, _parameters(net.module_))
    copy.weight_averaging_ = _averaging_from_state(copy, arrays)
    state, restored = net.weight_averaging_, copy.weight_averaging_
    _assert_equal(_parameters(restored.average), _parameters(state.average))
    assert int(restored.average.n_averaged) == int(state.average.n_averaged) == 3
    if ended:
        _assert_equal(restored.raw, state.raw)
    else:
        assert state.raw is None and restored.raw is None


def test_a_net_without_averaging_has_no_averaging_state():
    assert _averaging_state(SimpleNamespace(module_=nn.Linear(2, 1))) is None


def test_warm_start_applies_a_changed_average():
    X = make_factor_data(200)
    params = {**FAST, "max_iter": 2}
    vae = VAETransformer(**params, early_stopping=False, warm_start=True, average=0.9)
    vae.fit(X)
    steps = _adam_steps(vae)
    vae.set_params(average=0.5).fit(X)
    assert dict(vae.net_.callbacks_)["weight_averaging"].decay == 0.5
    assert int(vae.net_.weight_averaging_.average.n_averaged) == _adam_steps(vae) == 2 * steps
    # Off: training goes on from the averaged weights, and no average is kept.
    averaged = _parameters(vae.net_.module_)
    vae.set_params(average=False, max_iter=1).fit(X)
    assert vae.net_.weight_averaging_ is None
    assert dict(vae.net_.callbacks_)["weight_averaging"].decay is None
    assert not all(
        torch.equal(a, b) for a, b in zip(_parameters(vae.net_.module_), averaged, strict=True)
    )
    # On again: a new average of this call's steps only.
    vae.set_params(average=0.9).fit(X)
    assert (
        int(vae.net_.weight_averaging_.average.n_averaged)
        == _adam_steps(vae) - 2 * steps - steps // 2
    )
