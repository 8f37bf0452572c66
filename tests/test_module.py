"""The torch model: fixed draws, prior, posterior and the two bounds."""

import copy

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from torch import nn

from sklearn_vae._module import InputEncoding, VAEModule, balanced_normal_draws


@pytest.mark.parametrize("n_pairs, n_components", [(8, 1), (8, 3), (16, 8)])
def test_balanced_draws_are_antithetic_with_zero_mean_and_identity_second_moment(
    n_pairs, n_components
):
    torch.manual_seed(0)
    eps = balanced_normal_draws(n_pairs, n_components)
    assert eps.shape == (2 * n_pairs, n_components) and eps.dtype == torch.float32
    assert_array_equal(eps[n_pairs:], -eps[:n_pairs])
    eps = eps.double()
    # Whitened in float64, then stored in float32: each entry is rounded by at
    # most 2**-24 relative, so each second moment moves by at most
    # 2 * 2**-24 * mean |e_i e_j| <= 2**-23 (Cauchy-Schwarz, unit variances).
    assert_allclose(eps.mean(0).numpy(), 0.0, atol=1e-12)
    assert_allclose((eps.T @ eps / len(eps)).numpy(), np.eye(n_components), atol=2**-23)


def test_balanced_draws_come_from_torch_global_generator():
    torch.manual_seed(0)
    first = balanced_normal_draws(8, 2)
    torch.manual_seed(0)
    assert_array_equal(first, balanced_normal_draws(8, 2))
    assert not torch.equal(first, balanced_normal_draws(8, 2))


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def module():
    from sklearn_vae._likelihoods import GaussianLikelihood

    torch.manual_seed(0)
    likelihood = GaussianLikelihood(3)
    vae = VAEModule(likelihood, n_components=2, hidden_layer_sizes=(8,))
    vae.set_input_scaling(np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 1.0]))
    return vae.double().eval()


def test_score_noise_has_at_least_eight_pairs(module):
    # 2 * max(n_components, 8) fixed draws, 4 fixed validation draws.
    assert module.score_noise.shape == (16, 2)
    assert module.validation_noise.shape == (4, 2)
    assert_array_equal(module.validation_noise[2:], -module.validation_noise[:2])


def test_prior_is_standard_normal_over_the_latent_space(module):
    prior = module.prior
    assert prior.event_shape == (2,)
    z = torch.tensor([[0.0, 0.0], [1.0, -2.0]], dtype=torch.float64)
    expected = -np.log(2 * np.pi) - 0.5 * (z**2).sum(-1).numpy()
    assert_allclose(prior.log_prob(z).numpy(), expected, rtol=1e-12)


def test_posterior_standardises_its_input(module):
    # The encoder sees (x - loc) / scale, and no missing mask for a complete row.
    x = torch.tensor([[3.0, -1.5, 1.5]], dtype=torch.float64)
    standardised = (x - module.inputs.loc) / module.inputs.scale
    direct = module.encoder(standardised)
    assert_allclose(module.posterior(x).mean.numpy(), direct.mean.numpy(), rtol=1e-12)
    assert torch.all(module.posterior(x).stddev >= 1e-4)


def test_eval_forward_is_the_validation_draw_average_and_elbo_the_score_draw_average(module):
    x = torch.randn(5, 3, dtype=torch.float64)
    q = module.posterior(x)
    kl = torch.distributions.kl_divergence(q, module.prior)

    def average(noise):
        z = q.mean + q.stddev * noise[:, None, :]
        return module.log_prob_given(z, x).mean(0)

    with torch.no_grad():
        reconstruction, forward_kl = module(x)
        assert_allclose(reconstruction.numpy(), average(module.validation_noise).numpy())
        assert_allclose(forward_kl.numpy(), kl.numpy())
        assert_allclose(
            module.elbo(x).numpy(), (average(module.score_noise) - kl).numpy(), rtol=1e-12
        )


def test_training_forward_uses_one_reparametrised_draw(module):
    train = copy.deepcopy(module).train()
    x = torch.randn(4, 3, dtype=torch.float64)
    torch.manual_seed(1)
    reconstruction, _ = train(x)
    torch.manual_seed(1)
    z = train.posterior(x).rsample()
    assert_allclose(reconstruction.detach().numpy(), train.log_prob_given(z, x).detach().numpy())


def test_training_forward_averages_n_draws_reparametrised_draws(module):
    # With n_draws = L > 1 the reconstruction term is the mean over L draws,
    # row by row (one draw, or one mean over the whole batch, would be another
    # estimate).
    train = copy.deepcopy(module).train()
    train.n_draws = 2
    x = torch.randn(4, 3, dtype=torch.float64)
    torch.manual_seed(1)
    reconstruction, _ = train(x)
    torch.manual_seed(1)
    z = train.posterior(x).rsample((2,))
    expected = train.log_prob_given(z, x).mean(0)
    assert reconstruction.shape == (4,)
    assert_allclose(reconstruction.detach().numpy(), expected.detach().numpy(), rtol=1e-12)


def test_eval_iwae_forward_is_the_log_mean_weight_over_the_validation_draws(module):
    # objective="iwae" in eval mode (skorch's validation): log (1/4) sum_k
    # p(x, z_k) / q(z_k | x) over z_k = mu + sigma * eps_k, the 4 fixed
    # validation draws, and a zero KL.
    iwae = copy.deepcopy(module)
    iwae.objective = "iwae"
    x = torch.randn(5, 3, dtype=torch.float64)
    q = iwae.posterior(x)
    z = q.mean + q.stddev * iwae.validation_noise[:, None, :]
    log_w = iwae.log_prob_given(z, x) + iwae.prior.log_prob(z) - q.log_prob(z)
    expected = torch.logsumexp(log_w, dim=0) - np.log(4)
    bound, kl = iwae(x)
    assert_allclose(bound.numpy(), expected.numpy(), rtol=1e-12)
    assert_array_equal(kl.numpy(), 0.0)


@pytest.mark.parametrize("hidden_layer_sizes", [(8,), ()])
def test_the_encoder_tells_a_missing_entry_from_an_observed_mean(hidden_layer_sizes):
    # A missing entry enters the encoding as 0, the standardised training mean;
    # what tells the two apart is the missing-entry weights (of the first
    # layer, or of the posterior head without hidden layers). They start at
    # zero, so an untrained encoder treats both alike; once non-zero, the
    # posteriors differ (without hidden layers, the means by the weight, 1).
    from sklearn_vae._likelihoods import GaussianLikelihood
    from sklearn_vae._module import MaskedLinear

    torch.manual_seed(0)
    vae = VAEModule(GaussianLikelihood(3), n_components=2, hidden_layer_sizes=hidden_layer_sizes)
    vae.set_input_scaling(np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 1.0]))
    vae = vae.double().eval()
    x = torch.tensor([[float("nan"), -1.5, 1.5], [1.0, -1.5, 1.5]], dtype=torch.float64)
    fresh = vae.posterior(x).mean
    assert_array_equal(fresh[0].numpy(), fresh[1].numpy())
    for layer in vae.encoder.modules():
        if isinstance(layer, MaskedLinear):
            nn.init.ones_(layer.missing_weight)
    mean = vae.posterior(x).mean
    if hidden_layer_sizes:
        assert not torch.allclose(mean[0], mean[1])
    else:
        assert_allclose((mean[0] - mean[1]).numpy(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("n_samples, chunk_size", [(1, 4), (7, 3), (8, 8)])
def test_importance_weighted_bound_with_chunks_equals_one_log_mean_exp(
    module, n_samples, chunk_size
):
    # The same draws, taken chunk by chunk, give log (1/K) sum_k w_k exactly.
    x = torch.randn(6, 3, dtype=torch.float64)
    q = module.posterior(x)
    torch.manual_seed(2)
    with torch.no_grad():
        bound = module.importance_weighted_bound(x, n_samples, chunk_size)
        torch.manual_seed(2)
        log_w = []
        for start in range(0, n_samples, chunk_size):
            z = q.sample((min(chunk_size, n_samples - start),))
            log_w.append(module.log_prob_given(z, x) + module.prior.log_prob(z) - q.log_prob(z))
        expected = torch.logsumexp(torch.cat(log_w), 0) - np.log(n_samples)
    assert_allclose(bound.numpy(), expected.numpy(), rtol=1e-12)


def test_reconstruct_mean_and_sample_are_the_decoders_gaussian_in_standardised_units(module):
    # The estimator standardises Gaussian columns and maps outputs back; the
    # module's own outputs are in the units it is fed.
    z = torch.zeros(2000, 2, dtype=torch.float64)
    mean = module.reconstruct_mean(z)
    loc, _ = module.decoder(z)
    assert_array_equal(mean.numpy(), loc.numpy())
    torch.manual_seed(3)
    draws = module.sample_given(z)
    # Every row has the same p(x | z = 0): the draws' mean is within 4
    # standard errors of its mean, and their spread is its scale.
    sd = module.likelihood.distribution(module.decoder(z)).stddev[0].numpy()
    assert np.all(np.abs(draws.mean(0).numpy() - mean[0].numpy()) < 4 * sd / np.sqrt(len(z)))
    assert_allclose(draws.std(0).numpy(), sd, rtol=4 / np.sqrt(2 * len(z)))


def test_encoder_and_decoder_stack_every_hidden_layer():
    from sklearn_vae._likelihoods import GaussianLikelihood

    vae = VAEModule(GaussianLikelihood(5), n_components=2, hidden_layer_sizes=(8, 4))
    trunk = [layer.out_features for layer in vae.encoder.trunk if isinstance(layer, nn.Linear)]
    assert [vae.encoder.first.out_features, *trunk] == [8, 4]
    widths = [layer.out_features for layer in vae.decoder.trunk if isinstance(layer, nn.Linear)]
    assert widths == [4, 8]
    x = torch.randn(3, 5)
    assert vae.posterior(x).mean.shape == (3, 2)
    assert vae.elbo(x).shape == (3,)


def test_posterior_scale_is_floored_at_1e_4(module):
    # softplus of a very negative pre-activation is ~1e-44: the floor is what remains.
    floored = copy.deepcopy(module)
    nn.init.zeros_(floored.encoder.raw_scale.weight)
    nn.init.constant_(floored.encoder.raw_scale.bias, -100.0)
    q = floored.posterior(torch.randn(4, 3, dtype=torch.float64))
    # The scale itself, not stddev (torch takes the square root of its square).
    assert_allclose(q.base_dist.scale.numpy(), 1e-4, rtol=1e-12)
    expected = 2 * (-np.log(1e-4) - 0.5 * np.log(2 * np.pi))
    assert_allclose(q.log_prob(q.mean).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_input_encoding_standardises_numbers_one_hots_levels_and_zeroes_missing(dtype):
    # Feature 0 is a number (mean 1, sd 2); feature 1 has levels 5, 6, 7 (codes 0..2).
    encoding = InputEncoding(2, one_hot=[(1, 5.0, 3)])
    encoding.loc.copy_(torch.tensor([1.0, 0.0]))
    encoding.scale.copy_(torch.tensor([2.0, 1.0]))
    nan = float("nan")
    x = torch.tensor(
        [[3.0, 5.0], [1.0, 7.0], [nan, 6.0], [5.0, nan], [1.0, 4.0], [1.0, 9.0]], dtype=dtype
    )
    features, missing = encoding.to(dtype)(x)
    expected = [
        [1.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 1.0, 0.0],  # a missing number enters as 0
        [2.0, 0.0, 0.0, 0.0],  # a missing level enters as no level
        [0.0, 1.0, 0.0, 0.0],  # outside the levels: the nearest one (transform allows it)
        [0.0, 0.0, 0.0, 1.0],
    ]
    assert features.dtype == dtype and encoding.n_outputs == 4
    assert_array_equal(features.numpy(), expected)
    assert_array_equal(missing.numpy(), np.isnan(x.numpy()))
    complete, none_missing = encoding.to(dtype)(x[:2])
    assert_array_equal(complete.numpy(), expected[:2])
    assert none_missing is None


def test_elbo_with_row_draws_averages_each_draw_and_its_negative_minus_the_analytic_kl(module):
    # Draws of shape (n_pairs, n_rows, n_components): row i uses its own
    # draws and their negatives; the result is float64 even for a float32 module.
    single = copy.deepcopy(module).float()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=generator)
    noise = torch.randn(2, 5, 2, generator=generator)
    q = single.posterior(x)
    eps = torch.cat([noise, -noise])
    reconstruction = single.log_prob_given(q.mean + q.stddev * eps, x).double().mean(0)
    loc, scale = q.mean.double(), q.stddev.double()
    kl = 0.5 * (loc**2 + scale**2 - 1 - 2 * torch.log(scale)).sum(-1)
    with torch.no_grad():
        elbo = single.elbo(x, noise)
        assert elbo.dtype == torch.float64
        assert_allclose(elbo.numpy(), (reconstruction - kl).numpy(), rtol=1e-12)
        # Row 0's draws enter row 0 only.
        moved = noise.clone()
        moved[:, 1:] = torch.randn(2, 4, 2)
        assert single.elbo(x, moved)[0] == elbo[0]


@pytest.mark.parametrize(
    "likelihood, hidden, user_decoder, quadratic",
    [
        ("gaussian", (), False, True),
        ("gaussian", (4,), False, False),
        ("gaussian", (), True, False),
        ("bernoulli", (), False, False),
    ],
)
def test_elbo_is_quadratic_only_for_the_affine_default_decoder_of_a_gaussian(
    likelihood, hidden, user_decoder, quadratic
):
    from sklearn_vae._likelihoods import BernoulliLikelihood, GaussianLikelihood
    from sklearn_vae._networks import build_trunk

    kind = {"gaussian": GaussianLikelihood, "bernoulli": BernoulliLikelihood}[likelihood]
    vae = VAEModule(
        kind(3),
        n_components=2,
        hidden_layer_sizes=hidden,
        decoder=(lambda n: build_trunk("decoder", nn.Linear(n, 4), None, n))
        if user_decoder
        else None,
    )
    assert vae.elbo_is_quadratic is quadratic
