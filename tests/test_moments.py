"""Zeroing Adam's negligible moments: what is zeroed, when, and that the weights keep their bits."""

from types import SimpleNamespace

import numpy as np
import torch
from conftest import FAST, make_factor_data
from numpy.testing import assert_array_equal

from sklearn_vae import VAETransformer, _moments
from sklearn_vae._moments import (
    NEGLIGIBLE_MOMENT,
    ZERO_EVERY_N_STEPS,
    ZeroNegligibleMoments,
    zero_negligible,
)

TINY = torch.finfo(torch.float32).tiny


def _subnormals(tensor):
    return int(((tensor != 0) & (tensor.abs() < TINY)).sum())


def _adam_with_state(values):
    """An Adam optimiser whose one parameter's moments hold ``values``."""
    parameter = torch.nn.Parameter(torch.zeros(len(values)))
    optimizer = torch.optim.Adam([parameter])
    optimizer.state[parameter] = {
        "step": torch.tensor(3.0),
        "exp_avg": torch.tensor(values, dtype=torch.float32),
        "exp_avg_sq": torch.tensor(np.abs(values), dtype=torch.float32),
    }
    return optimizer, optimizer.state[parameter]


def test_zero_negligible_zeroes_both_moments_below_the_threshold_of_either_sign():
    values = [0.5, -1e-3, 1.005e-34, -1.005e-34, 0.995e-34, -0.995e-34, 1e-40, -1e-40, 0.0]
    optimizer, state = _adam_with_state(values)
    zero_negligible(optimizer)
    expected = np.array([0.5, -1e-3, 1.005e-34, -1.005e-34, 0, 0, 0, 0, 0], dtype=np.float32)
    assert_array_equal(state["exp_avg"].numpy(), expected)
    assert_array_equal(state["exp_avg_sq"].numpy(), np.abs(expected))
    assert state["step"].item() == 3.0


def test_zero_negligible_takes_its_threshold():
    optimizer, state = _adam_with_state([1e-3, 1e-5])
    zero_negligible(optimizer, threshold=1e-4)
    assert_array_equal(state["exp_avg"].numpy(), np.array([1e-3, 0], dtype=np.float32))


def _train(threshold=None, n_steps=1200):
    """Adam on weights whose gradients stop (dead units) or shrink to 1e-20 after 20 steps.

    With ``threshold``, the moments below it are zeroed after each step. Returns the
    weights and the number of subnormal first moments seen over the steps.
    """
    generator = torch.Generator().manual_seed(0)
    n = 600
    parameter = torch.nn.Parameter(torch.rand(n, generator=generator) * 2 - 1)
    optimizer = torch.optim.Adam([parameter], lr=1e-3)
    live, tiny = torch.arange(n) < 200, (torch.arange(n) >= 200) & (torch.arange(n) < 400)
    subnormal = 0
    for step in range(n_steps):
        gradient = torch.randn(n, generator=generator)
        if step >= 20:
            gradient = torch.where(live, gradient, torch.where(tiny, gradient * 1e-20, 0.0))
        parameter.grad = gradient
        optimizer.step()
        if threshold is not None:
            zero_negligible(optimizer, threshold=threshold)
        subnormal += _subnormals(optimizer.state[parameter]["exp_avg"])
    return parameter.detach().clone(), subnormal


def test_zeroing_keeps_the_weights_bits_and_no_moment_goes_subnormal():
    # Without zeroing the dead units' first moments decay through the subnormal range
    # (so the comparison covers it); with it they stop at 0 and the weights are the same.
    plain, subnormal_plain = _train()
    zeroed, subnormal_zeroed = _train(threshold=NEGLIGIBLE_MOMENT)
    assert subnormal_plain > 0
    assert subnormal_zeroed == 0
    assert_array_equal(zeroed.numpy(), plain.numpy())


def test_zeroing_at_a_threshold_that_matters_moves_the_weights():
    # The comparison above is sharp: zeroing moments up to 1e-6 changes the weights.
    plain, _ = _train(n_steps=60)
    zeroed, _ = _train(threshold=1e-6, n_steps=60)
    assert not np.array_equal(zeroed.numpy(), plain.numpy())


def _fake_net(values):
    optimizer, state = _adam_with_state(values)
    return SimpleNamespace(optimizer_=optimizer), state


def _batch_end_at_step(callback, net, state, step, **kwargs):
    state["step"] = torch.tensor(float(step))
    callback.on_batch_end(net, **kwargs)


def test_callback_zeroes_after_every_n_th_adam_step_only():
    net, state = _fake_net([1e-40, 1.0])
    callback = ZeroNegligibleMoments(every_n_steps=4)
    for step in (1, 2, 3, 5, 6, 7, 9):
        _batch_end_at_step(callback, net, state, step, training=True)
    assert state["exp_avg"][0].item() != 0
    _batch_end_at_step(callback, net, state, 8, training=True)
    assert state["exp_avg"][0].item() == 0
    assert state["exp_avg"][1].item() == 1.0


def test_callback_ignores_validation_batches_and_batches_passed_without_training():
    net, state = _fake_net([1e-40])
    callback = ZeroNegligibleMoments(every_n_steps=4)
    _batch_end_at_step(callback, net, state, 4, training=False)
    _batch_end_at_step(callback, net, state, 4)
    assert state["exp_avg"][0].item() != 0


def test_callback_does_nothing_before_the_first_step():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
    ZeroNegligibleMoments(every_n_steps=1).on_batch_end(
        SimpleNamespace(optimizer_=optimizer), training=True
    )
    assert not optimizer.state


def test_defaults_clear_moments_before_beta1_decays_them_to_subnormals():
    # From NEGLIGIBLE_MOMENT to float32's smallest normal takes more steps at beta1 = 0.9
    # than lie between two passes.
    steps_to_subnormal = np.log(NEGLIGIBLE_MOMENT / TINY) / -np.log(0.9)
    assert ZERO_EVERY_N_STEPS < steps_to_subnormal


def test_fit_zeroes_at_adam_steps_counted_across_partial_fit_calls(monkeypatch):
    # Four calls of 4 steps each (58 training rows in batches of 16): one pass, at step 16.
    steps = []
    monkeypatch.setattr(
        _moments,
        "zero_negligible",
        lambda optimizer: steps.append(int(next(iter(optimizer.state.values()))["step"])),
    )
    X = make_factor_data(n_samples=64, n_features=4)
    vae = VAETransformer(batch_size=16, **FAST)
    for _ in range(4):
        vae.partial_fit(X)
    assert ZERO_EVERY_N_STEPS == 16
    assert steps == [16]
