"""The mixture prior: its ELBO, its draws, and ``prior="mixture"`` on the estimator."""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_vae import VAETransformer
from sklearn_vae import _fit_steps as fit_steps
from sklearn_vae import _prior as prior
from sklearn_vae._likelihoods import GaussianLikelihood
from sklearn_vae._module import VAEModule
from sklearn_vae._prior import CANDIDATES
from sklearn_vae._random import standard_normal, torch_seed

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def make_module(n_components):
    torch.manual_seed(0)
    module = VAEModule(GaussianLikelihood(3), n_components, hidden_layer_sizes=(8,))
    module.set_input_scaling(np.zeros(3), np.ones(3))
    return module.double().eval()


def two_components(n_components):
    weights = np.array([0.3, 0.7])
    means = np.stack([np.full(n_components, -6.0), np.full(n_components, 3.0)])
    covariances = np.stack([np.eye(n_components) * 0.25, np.eye(n_components) * 2.0])
    return weights, means, covariances


@torch.no_grad()
def test_a_one_component_standard_normal_mixture_scores_as_the_standard_prior():
    # The shared draws are whitened: their average of the quadratic log N(z; 0, I)
    # is exact, so the entropy-and-draws KL equals the analytic one.
    module = make_module(2)
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    standard = module.elbo(x)
    bound = module.importance_weighted_bound
    with torch_seed(0, "cpu"):
        standard_iwae = bound(x, 50, 16)
    module.set_prior(np.ones(1), np.zeros((1, 2)), np.eye(2)[None])
    assert module.has_mixture_prior and not module.elbo_is_quadratic
    # The draws were whitened in float64 and stored in float32: each second
    # moment is off by at most 2**-23, so the average of -|z|^2 / 2 by at
    # most 2**-24 * (sum of the posterior scales)^2 (antithetic: means exact).
    scales = module.posterior(x).stddev.sum(1).numpy()
    error = np.abs(module.elbo(x).numpy() - standard.numpy())
    assert (error <= 2**-24 * scales**2 + 1e-12).all()
    with torch_seed(0, "cpu"):
        assert_allclose(bound(x, 50, 16).numpy(), standard_iwae.numpy(), rtol=1e-12)
    module.set_prior()
    assert not module.has_mixture_prior
    assert_array_equal(module.elbo(x).numpy(), standard.numpy())


@torch.no_grad()
def test_the_row_keyed_mixture_elbo_is_unbiased_against_quadrature():
    # One latent variable: the ELBO integral is computed on a fine grid, and
    # the estimate over n antithetic pairs must lie within 5 of its standard
    # errors, sqrt(Var_q[f] / n) bounding the antithetic average's.
    module = make_module(1)
    module.set_prior(*two_components(1))
    x = torch.tensor([[0.3, -1.0, 2.0], [-1.5, 0.2, 0.0]], dtype=torch.float64)
    q = module.posterior(x)
    grid = torch.linspace(-12, 12, 200001, dtype=torch.float64)[:, None, None]
    z = q.mean + q.stddev * grid
    density = torch.exp(-0.5 * grid[..., 0] ** 2) / np.sqrt(2 * np.pi)
    integrand = module.log_prob_given(z, x) + module.prior.log_prob(z) - q.log_prob(z)
    step = float(grid[1, 0, 0] - grid[0, 0, 0])
    exact = (density * integrand).sum(0) * step
    variance = (density * (integrand - exact) ** 2).sum(0) * step
    n_pairs = 20000
    noise = torch.randn(
        n_pairs, 2, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    estimate = module.elbo(x, noise)
    assert (torch.abs(estimate - exact) < 5 * torch.sqrt(variance / n_pairs)).all()
    # The standard prior's ELBO differs by more than that: the test sees the prior.
    module.set_prior()
    assert (torch.abs(module.elbo(x, noise) - exact) > 10 * torch.sqrt(variance / n_pairs)).all()


@torch.no_grad()
def test_a_linear_models_mixture_elbo_estimates_the_prior_term_alone():
    # An affine decoder and a Gaussian likelihood: log p(x | z) is quadratic
    # in z, its expectation is exact over the whitened shared draws, and only
    # E_q[log p(z)] is left to the row's draws. So the estimate is the
    # closed-form standard-prior ELBO with E_q[log N(z; 0, I)] (analytic)
    # swapped for the draws' mean of the mixture's log-density, in float64.
    torch.manual_seed(0)
    module = VAEModule(GaussianLikelihood(3), 2, hidden_layer_sizes=())
    module.set_input_scaling(np.zeros(3), np.ones(3))
    module = module.double().eval()
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    standard = module.elbo(x)
    q = module.posterior(x)
    standard_prior_term = -0.5 * (q.mean**2 + q.variance).sum(1) - np.log(2 * np.pi)
    noise = torch.randn(3, 6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    module.set_prior(*two_components(2))
    assert module.reconstruction_is_quadratic and not module.elbo_is_quadratic
    z = q.mean + q.stddev * torch.cat([noise, -noise])
    mixture_prior_term = module.prior.log_prob(z).mean(0)
    expected = standard - standard_prior_term + mixture_prior_term
    assert_allclose(module.elbo(x, noise).numpy(), expected.numpy(), rtol=1e-12)


def test_prior_draws_follow_the_mixture_and_the_standard_prior_draws_are_unchanged():
    module = make_module(1)
    with torch_seed(0, "cpu"):
        standard = module.draw_prior(5)
    with torch_seed(0, "cpu"):
        assert_array_equal(standard.numpy(), standard_normal((5, 1), torch.float64).numpy())
    module.set_prior(*two_components(1))
    n = 40000
    with torch_seed(0, "cpu"):
        Z = module.draw_prior(n).numpy()[:, 0]
    assert Z.dtype == np.float64
    # Components at -6 (sd 0.5) and 3 (sd 1.41), weights 0.3 and 0.7: split
    # at -3, 6 and 4.2 standard deviations from them.
    first = Z < -3
    assert abs(first.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / n)
    assert abs(Z[first].mean() + 6.0) < 5 * 0.5 / np.sqrt(first.sum())
    assert abs(Z[~first].mean() - 3.0) < 5 * np.sqrt(2.0 / (~first).sum())
    # The sample variance's standard error is about sigma^2 sqrt(2 / n).
    assert abs(Z[~first].var() - 2.0) < 5 * 2.0 * np.sqrt(2 / (~first).sum())


def blobs(n_samples, seed):
    rng = np.random.default_rng(seed)
    centres = np.array([[-4.0, -4, 0, 0], [4, -4, 0, 0], [0, 4, 4, -4]])
    labels = rng.integers(0, 3, n_samples)
    return centres[labels] + 0.5 * rng.standard_normal((n_samples, 4)), centres


TINY = dict(n_components=2, hidden_layer_sizes=(16,), max_iter=60, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    X, centres = blobs(400, 0)
    normal = VAETransformer(prior="normal", **TINY).fit(X)
    mixture = VAETransformer(**TINY).fit(X)  # the default prior
    return X, centres, normal, mixture


def test_the_mixture_prior_changes_the_prior_only_and_raises_the_held_out_elbo(fitted):
    X, centres, normal, mixture = fitted
    assert mixture.prior == "mixture"
    assert normal.n_prior_components_ == 1
    assert mixture.n_prior_components_ in CANDIDATES
    assert mixture.net_.module_.prior_logits.shape == (mixture.n_prior_components_,)
    # The networks are trained under N(0, I) in both: the same codes.
    assert_array_equal(mixture.transform(X), normal.transform(X))
    test, _ = blobs(300, 1)
    assert mixture.score(test) > normal.score(test)
    assert (
        mixture.log_likelihood(test, random_state=0).mean()
        > normal.log_likelihood(test, random_state=0).mean()
    )


def test_mixture_samples_land_nearer_the_data(fitted):
    X, centres, normal, mixture = fitted

    def distance(samples):
        return np.min(np.linalg.norm(samples[:, None] - centres[None], axis=2), axis=1).mean()

    assert distance(mixture.sample(2000, random_state=0)) < distance(
        normal.sample(2000, random_state=0)
    )


def test_a_saved_mixture_model_answers_as_fitted(fitted):
    skops = pytest.importorskip("skops.io")
    X, _, _, mixture = fitted
    data = skops.dumps(mixture)
    for loaded in (
        pickle.loads(pickle.dumps(mixture)),
        skops.loads(data, trusted=skops.get_untrusted_types(data=data)),
    ):
        assert loaded.n_prior_components_ == mixture.n_prior_components_
        assert_array_equal(loaded.score_samples(X), mixture.score_samples(X))
        assert_array_equal(loaded.sample(7, random_state=2), mixture.sample(7, random_state=2))
        assert_array_equal(
            loaded.log_likelihood(X[:20], n_importance_samples=30, random_state=0),
            mixture.log_likelihood(X[:20], n_importance_samples=30, random_state=0),
        )


def test_partial_fit_and_no_validation_rows_keep_the_standard_prior(fitted):
    X, _, _, mixture = fitted
    again = pickle.loads(pickle.dumps(mixture)).partial_fit(X)
    assert again.n_prior_components_ == 1 and not again.net_.module_.has_mixture_prior
    unvalidated = VAETransformer(prior="mixture", early_stopping=False, **TINY).fit(X)
    assert unvalidated.n_prior_components_ == 1


def test_a_failed_warm_fit_keeps_the_fitted_mixture(fitted, monkeypatch):
    X, _, _, mixture = fitted
    vae = pickle.loads(pickle.dumps(mixture)).set_params(warm_start=True)
    before = vae.score_samples(X)

    def fail(*args, **kwargs):
        raise RuntimeError("training failed")

    monkeypatch.setattr(fit_steps, "train_net", fail)
    with pytest.raises(RuntimeError, match="training failed"):
        vae.fit(X)
    assert vae.net_.module_.has_mixture_prior
    assert_array_equal(vae.score_samples(X), before)


class CodesModel:
    """A stand-in for the fitted model: its "rows" are the posterior moments."""

    def __init__(self, noise=(None, None)):
        self.seen, self.noise, self.noise_seen = [], noise, []

    def scoring_noise(self, X):
        return self.noise

    def evaluate(self, fn, X, dequantize=None, columns=None):
        self.seen.append(X)
        self.noise_seen.append((dequantize, columns))
        return X


def test_codes_are_of_rows_dequantised_as_in_scoring():
    # A dequantised model's codes are of noisy rows, as scored: the codes of
    # the bare integers sit on a few points, and a mixture fitted to them
    # misses the codes of held-out rows.
    X = np.hstack([np.zeros((5, 2)), np.ones((5, 2))])
    model = CodesModel(noise=("hashed", np.array([1])))
    prior._codes(model, X, np.arange(5), np.random.default_rng(0))
    assert model.noise_seen == [model.noise]


def test_codes_draw_from_each_rows_posterior_of_at_most_max_rows(monkeypatch):
    n_components, n_rows = 2, 50
    rng = np.random.default_rng(0)
    loc = rng.normal(size=(n_rows, n_components))
    X = np.hstack([loc, np.full((n_rows, n_components), 0.5)])
    model, rows = CodesModel(), np.arange(10, n_rows)
    monkeypatch.setattr(prior, "MAX_ROWS", 16)
    codes = prior._codes(model, X, rows, np.random.default_rng(1))
    chosen = model.seen[0]
    # 16 distinct rows of ``rows``, in order, each drawn DRAWS_PER_ROW times.
    assert len(chosen) == 16 and len({tuple(r) for r in chosen}) == 16
    picked = [int(np.flatnonzero((X == r).all(1))[0]) for r in chosen]
    assert picked == sorted(picked) and min(picked) >= 10
    assert codes.shape == (prior.DRAWS_PER_ROW * 16, n_components)
    eps = (codes.reshape(prior.DRAWS_PER_ROW, 16, n_components) - chosen[:, :2]) / 0.5
    # Standard normal draws: mean 0 and variance 1 within 5 standard errors.
    assert abs(eps.mean()) < 5 / np.sqrt(eps.size)
    assert abs(eps.var() - 1) < 5 * np.sqrt(2 / eps.size)
    monkeypatch.setattr(prior, "MAX_ROWS", 100)
    prior._codes(model, X, rows, np.random.default_rng(1))
    assert_array_equal(model.seen[1], X[rows])


def test_the_standard_normal_log_density_is_the_mean_of_scipys():
    from scipy.stats import multivariate_normal

    Z = np.random.default_rng(0).normal(size=(30, 3)) * 2
    expected = multivariate_normal(np.zeros(3), np.eye(3)).logpdf(Z).mean()
    assert_allclose(prior._standard_normal_log_density(Z), expected, rtol=1e-12)


def test_choose_prior_keeps_a_mixture_only_where_it_beats_the_standard_normal():
    rng = np.random.default_rng(0)
    n = 400
    # Training codes in two clusters: the validation codes decide.
    centres = np.where(rng.random(n) < 0.5, -3.0, 3.0)[:, None] * np.ones((1, 2))
    clustered = np.hstack([centres + 0.3 * rng.normal(size=(n, 2)), np.full((n, 2), 0.1)])
    train, valid = np.arange(300), np.arange(300, n)
    mixture = prior.choose_prior(CodesModel(), clustered, train, valid, seed=0)
    assert mixture is not None and mixture.n_components in CANDIDATES
    # Validation codes from N(0, I) itself, training codes elsewhere: N(0, I) wins.
    standard = clustered.copy()
    standard[valid, :2] = rng.normal(size=(len(valid), 2))
    standard[valid, 2:] = 1e-3
    assert prior.choose_prior(CodesModel(), standard, train, valid, seed=0) is None
    # No more components than training rows.
    few = prior.choose_prior(CodesModel(), clustered, train[:3], valid, seed=0)
    assert few is None or few.n_components <= 3


def test_codes_of_max_rows_rows_are_those_rows_draws_in_order(monkeypatch):
    # At exactly MAX_ROWS rows nothing is subsampled: the stream goes to the draws.
    rng = np.random.default_rng(0)
    X = np.hstack([rng.normal(size=(12, 2)), rng.uniform(0.5, 1.0, size=(12, 2))])
    monkeypatch.setattr(prior, "MAX_ROWS", 12)
    codes = prior._codes(CodesModel(), X, np.arange(12), np.random.default_rng(1))
    eps = np.random.default_rng(1).standard_normal((prior.DRAWS_PER_ROW, 12, 2))
    assert_array_equal(codes, (X[:, :2] + X[:, 2:] * eps).reshape(-1, 2))


def test_choose_prior_is_seeded_and_fits_as_many_components_as_training_rows():
    # Two training rows, far apart, with narrow posteriors; validation codes near them.
    X = np.array([[-3.0, -3, 0.05, 0.05], [3, 3, 0.05, 0.05], [-3, -3, 0.05, 0.05]] * 2)
    X[3:, :2] += 0.01
    first = prior.choose_prior(CodesModel(), X, np.array([0, 1]), np.arange(2, 6), seed=3)
    assert first is not None and first.n_components == 2
    again = prior.choose_prior(CodesModel(), X, np.array([0, 1]), np.arange(2, 6), seed=3)
    assert_array_equal(again.means_, first.means_)


def test_choose_prior_gives_the_same_mixture_for_the_same_seed():
    # Two overlapping clusters: EM's result depends on its initialisation.
    rng = np.random.default_rng(0)
    loc = np.concatenate([rng.normal(-1, 1, (60, 2)), rng.normal(1.5, 0.7, (60, 2))])
    X = np.hstack([loc, np.full((120, 2), 0.3)])
    fits = [
        prior.choose_prior(CodesModel(), X, np.arange(90), np.arange(90, 120), seed=3)
        for _ in range(2)
    ]
    assert fits[0] is not None
    assert_array_equal(fits[1].means_, fits[0].means_)
    assert_array_equal(fits[1].covariances_, fits[0].covariances_)


def test_prior_draws_are_the_seeded_uniforms_components_and_normals(monkeypatch):
    # Each draw: eps ~ N(0, I) first, then a float64 uniform picks the component
    # whose cumulative weight first exceeds it.
    import sklearn_vae._module as module_code

    module = make_module(1)
    weights, means, covariances = two_components(1)
    module.set_prior(weights, means, covariances)
    with torch_seed(5, "cpu"):
        Z = module.draw_prior(200).numpy()[:, 0]
    with torch_seed(5, "cpu"):
        eps = standard_normal((200, 1), torch.float64).numpy()[:, 0]
        u = module_code.uniform((200,), torch.float64).numpy()
    first = u < weights[0]
    sd = np.sqrt(covariances[:, 0, 0])
    expected = np.where(first, means[0, 0] + sd[0] * eps, means[1, 0] + sd[1] * eps)
    assert_allclose(Z, expected, rtol=1e-6, atol=0)
    # A uniform at the top of its range (float rounding of the weights' sum) is the last component.
    monkeypatch.setattr(module_code, "uniform", lambda shape, dtype: torch.ones(shape, dtype=dtype))
    with torch_seed(5, "cpu"):
        top = module.draw_prior(3).numpy()[:, 0]
    with torch_seed(5, "cpu"):
        eps = standard_normal((3, 1), torch.float64).numpy()[:, 0]
    assert_allclose(top, means[1, 0] + sd[1] * eps, rtol=1e-6)
