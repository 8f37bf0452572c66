"""Zeroing Adam's negligible moments: what is zeroed, when, and that the weights keep their bits."""

from types import SimpleNamespace

import numpy as np
import torch
from conftest import FAST, make_factor_data
from numpy.testing import assert_array_equal

from sklearn_vae import VAETransformer
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
    values = [0.5, -1e-3, 2e-34, -2e-34, 5e-35, -5e-35, 1e-40, -1e-40, 0.0]
    optimizer, state = _adam_with_state(values)
    zero_negligible(optimizer)
    expected = np.array([0.5, -1e-3, 2e-34, -2e-34, 0, 0, 0, 0, 0], dtype=np.float32)
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


def test_callback_zeroes_every_n_training_steps_and_ignores_validation_batches():
    net, state = _fake_net([1e-40, 1.0])
    callback = ZeroNegligibleMoments(every_n_steps=4)
    for _ in range(3):
        callback.on_batch_end(net, training=True)
        callback.on_batch_end(net, training=False)
    assert state["exp_avg"][0].item() != 0
    assert net.steps_since_zeroing_ == 3
    callback.on_batch_end(net, training=True)
    assert state["exp_avg"][0].item() == 0
    assert state["exp_avg"][1].item() == 1.0
    assert net.steps_since_zeroing_ == 0


def test_callback_counts_no_step_for_a_batch_passed_without_training():
    net, state = _fake_net([1e-40])
    callback = ZeroNegligibleMoments(every_n_steps=1)
    callback.on_batch_end(net)
    assert state["exp_avg"][0].item() != 0
    assert not hasattr(net, "steps_since_zeroing_")


def test_callback_count_survives_a_new_callback_on_the_same_net():
    # The estimator's set_params at each partial_fit re-initialises its callbacks.
    net, state = _fake_net([1e-40])
    for _ in range(2):
        ZeroNegligibleMoments(every_n_steps=3).on_batch_end(net, training=True)
    assert state["exp_avg"][0].item() != 0
    ZeroNegligibleMoments(every_n_steps=3).on_batch_end(net, training=True)
    assert state["exp_avg"][0].item() == 0


def test_defaults_clear_moments_before_beta1_decays_them_to_subnormals():
    # From NEGLIGIBLE_MOMENT to float32's smallest normal takes more steps at beta1 = 0.9
    # than lie between two passes.
    steps_to_subnormal = np.log(NEGLIGIBLE_MOMENT / TINY) / -np.log(0.9)
    assert ZERO_EVERY_N_STEPS < steps_to_subnormal


def test_fit_counts_its_steps_across_partial_fit_calls():
    X = make_factor_data(n_samples=64, n_features=4)
    vae = VAETransformer(batch_size=16, **FAST)
    vae.partial_fit(X)
    assert "zero_negligible_moments" in dict(vae.net_.callbacks_)
    assert vae.net_.steps_since_zeroing_ == 4 % ZERO_EVERY_N_STEPS
    vae.partial_fit(X)
    assert vae.net_.steps_since_zeroing_ == 8 % ZERO_EVERY_N_STEPS
