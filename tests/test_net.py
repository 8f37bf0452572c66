"""The training criterion weights the KL term by beta, and training uses it."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import FAST, make_factor_data
from numpy.testing import assert_allclose
from torch.distributions import kl_divergence

from sklearn_vae import VAETransformer
from sklearn_vae._net import NegativeELBO, StopOnNonFiniteLoss


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0])
def test_negative_elbo_is_minus_mean_of_reconstruction_minus_beta_kl(beta):
    reconstruction = torch.tensor([-3.0, -5.0, -1.5])
    kl = torch.tensor([0.25, 1.0, 2.0])
    expected = -np.mean([-3.0 - beta * 0.25, -5.0 - beta * 1.0, -1.5 - beta * 2.0])
    assert_allclose(NegativeELBO(beta)(reconstruction, kl).item(), expected, rtol=1e-6)


def test_negative_elbo_defaults_to_the_elbo():
    reconstruction, kl = torch.tensor([-2.0, -4.0]), torch.tensor([1.0, 3.0])
    assert NegativeELBO()(reconstruction, kl).item() == pytest.approx(5.0)


def test_training_loss_difference_between_betas_is_the_mean_kl():
    # One epoch of one batch: the recorded training loss is computed on the
    # initial weights, before the single optimiser step, with the same seed and
    # hence the same weights and reparametrisation draws for every beta. The
    # loss is -(mean log p(x | z) - beta * mean KL), so the loss with beta = 2
    # minus the loss with beta = 1 is the mean KL of the initial model. With a
    # learning rate of 1e-10 the fitted weights are the initial ones to float32
    # precision, so that KL can be recomputed from the fitted module.
    X = make_factor_data(200)
    params = {
        **FAST,
        "max_iter": 1,
        "early_stopping": False,
        "batch_size": len(X),
        "learning_rate_init": 1e-10,
    }
    fits = {beta: VAETransformer(**params, beta=beta).fit(X) for beta in (1.0, 2.0)}
    module = copy.deepcopy(fits[2.0].net_.module_).double().eval()
    with torch.no_grad():
        q = module.posterior(torch.as_tensor(fits[2.0]._standardisation.transform(X)))
        mean_kl = kl_divergence(q, module.prior).mean().item()
    assert mean_kl > 0.1  # the check below is not a comparison of zeros
    difference = fits[2.0].loss_curve_[0] - fits[1.0].loss_curve_[0]
    # float32 sums over 200 rows of values of order 10: relative error < 1e-5.
    assert_allclose(difference, mean_kl, rtol=1e-5)


@pytest.mark.parametrize("training, stage", [(True, "training"), (False, "validation")])
def test_non_finite_loss_stops_training_naming_stage_epoch_batch_and_learning_rate(training, stage):
    net = SimpleNamespace(history=[{}, {}, {}], lr=0.05)
    callback = StopOnNonFiniteLoss()
    callback.on_epoch_begin(net)
    finite = (torch.tensor([[1.0, float("nan")]]), None)  # NaN: a missing entry, no fault
    callback.on_batch_end(net, batch=finite, training=training, loss=torch.tensor(1e30))
    message = (
        rf"^Training diverged: the {stage} loss became inf in epoch 3, batch 2, whose inputs "
        r"were finite\. The usual cause is a learning rate that is too high "
        r"\(learning_rate_init=0\.05; try a value 10 times smaller\)\. No model was fitted\.$"
    )
    with pytest.raises(RuntimeError, match=message):
        callback.on_batch_end(net, batch=finite, training=training, loss=torch.tensor(float("inf")))
    with pytest.raises(RuntimeError, match="loss became nan in epoch 3, batch 3"):
        callback.on_batch_end(net, batch=finite, training=training, loss=torch.tensor(float("nan")))
    infinite = (torch.tensor([[1.0, float("inf")]]), None)
    message = (
        rf"^Training diverged: the {stage} loss became nan in epoch 3, batch 4, which held "
        r"infinite values: X has entries beyond float32's range \(about 3\.4e38\), in which "
        r"the model trains\. Rescale X \(for example divide the column by a power of ten\)\. "
        r"No model was fitted\.$"
    )
    with pytest.raises(RuntimeError, match=message):
        callback.on_batch_end(
            net, batch=infinite, training=training, loss=torch.tensor(float("nan"))
        )
    with pytest.raises(RuntimeError, match="batch 5, whose inputs were finite"):
        callback.on_batch_end(net, batch=None, training=training, loss=torch.tensor(float("inf")))
    callback.on_epoch_begin(net)
    with pytest.raises(RuntimeError, match="batch 1,"):
        callback.on_batch_end(net, batch=finite, training=training, loss=torch.tensor(float("nan")))
    callback.on_batch_end(net, training=training, loss=None)
