"""Scores are correct log-densities of X in its own units.

These tests check mathematical facts rather than reference numbers:
a density integrates to one, the ELBO <= the IWAE bound <= log p(x), a
linear-Gaussian VAE is factor analysis and its marginal is known in closed
form, and a discrete model's log-probabilities are <= 0.
"""

import copy

import joblib
import numpy as np
import pytest
import torch
from conftest import make_factor_data, peak_rss_growth
from sklearn.datasets import load_wine
from sklearn.decomposition import FactorAnalysis
from torch.distributions import MultivariateNormal

from sklearn_vae import VAETransformer
from sklearn_vae._likelihoods import MIN_SCALE

# Float32 values per tensor of importance-sampling work (sklearn_vae._vae._IWAE_BUDGET).
IWAE_BUDGET = 2**22


def _standard_error(values):
    return values.std(ddof=1) / np.sqrt(len(values))


@pytest.fixture(scope="module")
def bimodal_1d():
    """1-D data far from unit scale, so a missing log-Jacobian would show."""
    rng = np.random.default_rng(0)
    x = np.where(rng.uniform(size=600) < 0.3, rng.normal(-1, 0.3, 600), rng.normal(1, 0.5, 600))
    return 1000.0 + 50.0 * x[:, None]


@pytest.fixture(scope="module")
def bimodal_vae(bimodal_1d):
    return VAETransformer(
        n_components=1, hidden_layer_sizes=(32,), learning_rate_init=1e-2, random_state=0
    ).fit(bimodal_1d)


def test_importance_weighted_density_integrates_to_one(bimodal_1d, bimodal_vae):
    # exp(IWAE) is an unbiased estimate of p(x), so its integral estimates 1.
    # The grid spans +-10 data standard deviations with a step of 1/200 of one:
    # trapezoid and tail errors are far below 1e-3. The Monte Carlo error is
    # estimated from two independent seeds.
    sd = bimodal_1d.std()
    grid = np.linspace(bimodal_1d.min() - 10 * sd, bimodal_1d.max() + 10 * sd, 6000)[:, None]
    integrals = [
        np.trapezoid(np.exp(log_density), grid[:, 0])
        for log_density in (
            bimodal_vae.log_likelihood(grid, n_importance_samples=200, random_state=seed)
            for seed in (0, 1)
        )
    ]
    monte_carlo_sd = abs(integrals[0] - integrals[1]) / np.sqrt(2)
    assert abs(np.mean(integrals) - 1) < max(4 * monte_carlo_sd, 1e-3) + 1e-3


def test_iwae_chunking_changes_only_monte_carlo_noise(bimodal_1d, bimodal_vae):
    # The K proposals are drawn in chunks and combined with a running
    # log-sum-exp; a wrong combination (a lost chunk, a per-chunk normaliser)
    # would shift every row by a constant. Different chunkings must agree
    # within Monte Carlo error: 4 standard errors of the per-row differences.
    module = bimodal_vae.net_.module_.double().eval()
    x = torch.as_tensor(bimodal_vae._standardisation.transform(bimodal_1d[:300]))
    results = []
    for seed, chunk_size in ((0, 3), (1, 64)):
        torch.manual_seed(seed)
        with torch.inference_mode():
            results.append(module.importance_weighted_bound(x, 64, chunk_size).numpy())
    module.float()
    difference = results[0] - results[1]
    assert abs(difference.mean()) < 4 * _standard_error(difference)


@pytest.fixture(scope="module")
def factor_model_fits():
    X = make_factor_data(3000, n_features=8, n_components=2, seed=1)
    X_train, X_test = X[:2000], X[2000:]
    vae = VAETransformer(
        n_components=2, hidden_layer_sizes=(), learning_rate_init=1e-2, random_state=0
    ).fit(X_train)
    fas = {k: FactorAnalysis(n_components=k).fit(X_train) for k in (1, 2)}
    return X_train, X_test, vae, fas


def _exact_linear_vae_log_density(vae, X):
    """log p(x) of a linear-Gaussian VAE: N(b, W W^T + diag(s^2)) plus the log-Jacobian."""
    module = vae.net_.module_
    head = module.decoder.head
    with torch.no_grad():
        W, b = head.loc.weight.double(), head.loc.bias.double()
        scale = torch.nn.functional.softplus(head.raw_scale.value.double()) + MIN_SCALE
        # The model's units: X standardised in float64 by the estimator.
        target = torch.as_tensor(vae._standardisation.transform(X))
        marginal = MultivariateNormal(b, W @ W.T + torch.diag(scale**2))
        return marginal.log_prob(target).numpy() + vae._standardisation.log_jacobian(X)


def _closed_form_linear_vae_elbo(vae, X):
    """ELBO of a linear-Gaussian VAE in closed form, plus the log-Jacobian.

    With t the standardised x, p(t | z) = N(W z + b, diag(s^2)) and
    q(z | x) = N(m, diag(v)): E_q[log p(t | z)] = sum_j -1/2 log(2 pi s_j^2)
    - ((t - W m - b)_j^2 + (W^2 v)_j) / (2 s_j^2), and
    KL(q || N(0, I)) = 1/2 sum_k (v_k + m_k^2 - 1 - log v_k).
    """
    module = copy.deepcopy(vae.net_.module_).double()
    head = module.decoder.head
    with torch.no_grad():
        W, b = head.loc.weight, head.loc.bias
        s2 = (torch.nn.functional.softplus(head.raw_scale.value) + MIN_SCALE) ** 2
        t = torch.as_tensor(vae._standardisation.transform(X))
        q = module.posterior(t)
        m, v = q.mean, q.variance
        residual = t - m @ W.T - b
        expected = -0.5 * torch.log(2 * np.pi * s2) - (residual**2 + v @ (W**2).T) / (2 * s2)
        kl = 0.5 * (v + m**2 - 1 - torch.log(v)).sum(-1)
        return (expected.sum(-1) - kl).numpy() + vae._standardisation.log_jacobian(X)


def test_linear_vae_elbo_is_exact(factor_model_fits):
    # log p(x | z) is quadratic in z for a linear-Gaussian decoder, and the
    # fixed draws have exactly zero mean and identity second moment (whitened
    # in float64, stored in float32: 1e-7 relative), so score_samples is the
    # closed-form ELBO to 1e-6 nats, and a lower bound on log p(x) row by row.
    _, X_test, vae, _ = factor_model_fits
    elbo = vae.score_samples(X_test)
    np.testing.assert_allclose(elbo, _closed_form_linear_vae_elbo(vae, X_test), rtol=0, atol=1e-6)
    assert np.all(elbo <= _exact_linear_vae_log_density(vae, X_test) + 1e-6)


def test_linear_vae_iwae_matches_exact_marginal(factor_model_fits):
    # E[IWAE] tends to log p(x) from below, with a bias of order 1/K; at
    # K = 1000 it is far below the Monte Carlo error of the mean over 1000
    # held-out rows. So the mean of exact - IWAE is zero within three
    # standard errors of the per-row differences (independent across rows),
    # in both directions, and the IWAE is not looser than the ELBO.
    _, X_test, vae, _ = factor_model_fits
    exact = _exact_linear_vae_log_density(vae, X_test)
    iwae = vae.log_likelihood(X_test, n_importance_samples=1000, random_state=0)
    elbo = vae.score_samples(X_test)
    assert abs((exact - iwae).mean()) < 3 * _standard_error(exact - iwae)
    assert (iwae - elbo).mean() > -3 * _standard_error(iwae - elbo)


def test_linear_vae_cannot_beat_factor_analysis_on_training_data(factor_model_fits):
    # Factor analysis is the maximum-likelihood fit of the linear VAE's model
    # class, so the VAE's exact training log-likelihood cannot exceed it (up to
    # FactorAnalysis's own convergence tolerance, tol=1e-2 on the total).
    X_train, _, vae, fas = factor_model_fits
    vae_train = _exact_linear_vae_log_density(vae, X_train).mean()
    assert vae_train <= fas[2].score(X_train) + 1e-2 / len(X_train)


def test_linear_vae_held_out_likelihood_is_close_to_factor_analysis(factor_model_fits):
    # "Close" is measured against the resolution that matters for model
    # selection: the VAE with k components must be nearer to FactorAnalysis(k)
    # than FactorAnalysis(k - 1) is, and the held-out difference must be
    # explained by the training-set optimisation gap plus 3 paired standard errors.
    X_train, X_test, vae, fas = factor_model_fits
    vae_test = vae.log_likelihood(X_test, n_importance_samples=1000, random_state=0)
    fa_test = fas[2].score_samples(X_test)
    difference = fa_test - vae_test
    optimisation_gap = fas[2].score(X_train) - _exact_linear_vae_log_density(vae, X_train).mean()
    assert abs(difference.mean()) <= optimisation_gap + 3 * _standard_error(difference)
    assert abs(difference.mean()) < fas[2].score(X_test) - fas[1].score(X_test)


def test_constant_feature_has_finite_scores():
    # Constant features keep a unit scale and the decoder variance is floored,
    # so the density stays finite instead of going to infinity.
    X = make_factor_data(300)
    X[:, 0] = 4.0
    vae = VAETransformer(n_components=2, hidden_layer_sizes=(16,), max_iter=30, random_state=0)
    vae.fit(X)
    assert np.all(np.isfinite(vae.score_samples(X)))
    assert np.all(np.isfinite(vae.log_likelihood(X, n_importance_samples=10, random_state=0)))


def test_log_likelihood_memory_stays_bounded_for_large_k(tmp_path):
    # 256 rows (one scoring batch) through a decoder 64 units wide: the K
    # proposals are processed in chunks whose widest tensor holds the budget
    # of 2**22 float32 values (16 MiB), 256 proposals here. Going from K = 256
    # (one chunk, run twice to settle the allocator) to K = 4096 (16 chunks)
    # must not grow the peak by more than 4 such tensors; holding all K draws
    # at once would need tensors of 256 MiB.
    X = make_factor_data(256)
    vae = VAETransformer(n_components=2, hidden_layer_sizes=(64,), max_iter=2, random_state=0)
    vae.fit(X)
    assert IWAE_BUDGET // (256 * 64) == 256
    joblib.dump((vae, X), tmp_path / "model.joblib")
    growth = peak_rss_growth(
        f"import joblib; vae, X = joblib.load({str(tmp_path / 'model.joblib')!r})",
        "for _ in range(2): vae.log_likelihood(X, n_importance_samples=256, random_state=0)",
        "values = vae.log_likelihood(X, n_importance_samples=4096, random_state=0)",
    )
    assert growth < 4 * IWAE_BUDGET * 4


def _training_estimates(vae, X, objective, n_draws, repeats):
    """The module's training-mode objective, summed over the rows of X, ``repeats`` times."""
    module = copy.deepcopy(vae.net_.module_).double().train()
    module.objective, module.n_draws = objective, n_draws
    # The module's units: X standardised by the estimator, the log-Jacobian added back.
    x = torch.as_tensor(vae._standardisation.transform(X))
    jacobian = vae._standardisation.log_jacobian(X).sum()
    torch.manual_seed(0)
    with torch.no_grad():
        return np.array(
            [float((lambda r, k: (r - k).sum())(*module(x))) + jacobian for _ in range(repeats)]
        )


def test_elbo_objective_with_l_draws_is_unbiased_with_variance_over_l(factor_model_fits):
    # E[estimate] is the exact ELBO (score_samples, exact for the linear model)
    # for any L, and the variance falls as 1/L: with 200 repeats each, the ratio
    # of sample variances lies within F(199, 199)'s 99.99% interval [0.58, 1.72]
    # around 16.
    _, X_test, vae, _ = factor_model_fits
    X = X_test[:50]
    exact = vae.score_samples(X).sum()
    one, sixteen = (_training_estimates(vae, X, "elbo", L, 200) for L in (1, 16))
    for estimates in (one, sixteen):
        assert abs(estimates.mean() - exact) < 4 * _standard_error(estimates)
    assert 16 * 0.58 < one.var(ddof=1) / sixteen.var(ddof=1) < 16 * 1.72


def test_iwae_objective_approaches_the_exact_log_likelihood(factor_model_fits):
    # ELBO <= E[IWAE_K] <= log p(x); with K = 500 on the linear model the
    # bound closes most of the ELBO's gap (> half of it) and never exceeds
    # log p(x) by more than 4 standard errors of the repeats.
    _, X_test, vae, _ = factor_model_fits
    X = X_test[:50]
    elbo = vae.score_samples(X).sum()
    exact = _exact_linear_vae_log_density(vae, X).sum()
    estimates = _training_estimates(vae, X, "iwae", 500, 20)
    assert estimates.mean() > elbo + (exact - elbo) / 2
    assert estimates.mean() < exact + 4 * _standard_error(estimates)


def test_iwae_objective_trains_and_rejects_a_beta():
    X = make_factor_data(200)
    vae = VAETransformer(
        n_components=2,
        hidden_layer_sizes=(8,),
        objective="iwae",
        n_draws=5,
        max_iter=5,
        random_state=0,
    ).fit(X)
    assert np.all(np.isfinite(vae.loss_curve_)) and vae.net_.module_.n_draws == 5
    with pytest.raises(ValueError, match="objective='iwae' does not have. Set beta=1.0"):
        vae.set_params(beta=0.5).fit(X)


def _latent_class_data(likelihood, n_samples, n_features=10, seed=0):
    """Rows whose columns share a latent class: codes 0-3, binary, or noisy reals."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 4, size=(n_samples, 1))
    X = np.clip(first + rng.integers(-1, 2, size=(n_samples, n_features)), 0, 3).astype(float)
    if likelihood == "bernoulli":
        return (X > 1).astype(float)
    if likelihood == "gaussian":
        return X + 0.3 * rng.normal(size=X.shape)
    return X


def _reference_elbo(vae, X, n_draws=400, seed=0):
    """An independent float64 Monte Carlo ELBO: ``n_draws`` fresh draws per row, exact KL."""
    module = copy.deepcopy(vae.net_.module_).double().eval()
    x = torch.as_tensor(vae._standardisation.transform(X))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        q = module.posterior(x)
        eps = torch.randn(n_draws, *q.mean.shape, generator=generator, dtype=torch.float64)
        z = q.mean + q.stddev * eps
        reconstruction = module.log_prob_given(z, x).mean(0)
        if module.has_mixture_prior:
            # No closed form: the negative entropy minus E_q[log p(z)] on the draws.
            kl = -q.entropy() - module.prior.log_prob(z).mean(0)
        else:
            kl = torch.distributions.kl_divergence(q, module.prior)
        elbo = reconstruction - kl
    return elbo.numpy() + vae._standardisation.log_jacobian(X)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli", "categorical", "poisson"])
def test_score_samples_is_an_unbiased_elbo_with_errors_independent_across_rows(likelihood):
    # score_samples averages one antithetic pair of draws keyed on each row:
    # unbiased for the ELBO, with an error independent across distinct rows.
    # Against an independent 400-draw float64 estimate, the mean per-row
    # difference is then zero within 4 standard errors of the differences.
    # Duplicate rows share their draws (and so their error), so only distinct
    # rows are compared. Draws shared by all rows would move every difference
    # together, and a missing KL or biased draws would shift them: either
    # fails this test.
    X = _latent_class_data(likelihood, 1500)
    # Under N(0, I): a mixture prior's KL term adds its own noise (its
    # estimator is tested in test_prior.py).
    vae = VAETransformer(
        n_components=2, hidden_layer_sizes=(16,), max_iter=5, prior="normal", random_state=0
    )
    vae.set_params(likelihood=likelihood, learning_rate_init=1e-2).fit(X[:300])
    X = np.unique(X, axis=0)
    assert len(X) > 100
    difference = vae.score_samples(X) - _reference_elbo(vae, X)
    assert abs(difference.mean()) < 4 * _standard_error(difference)
    # The noise is real (a Monte Carlo estimate), but small against the scores.
    assert 0 < difference.std() < 0.1 * np.abs(vae.score_samples(X)).mean()


def test_a_rows_score_does_not_depend_on_its_batch_mates(fitted_vae, X_small):
    # Scored in float32 on batches padded to one fixed shape, with draws keyed
    # on the row: a row scored alone and in the middle of 1,000 random rows
    # (some with missing entries, which switch the encoder's missing path on)
    # gets the same score, at the tolerance of scikit-learn's
    # check_methods_sample_order_invariance.
    rng = np.random.default_rng(0)
    mates = rng.normal(size=(1000, X_small.shape[1])) * X_small.std(axis=0) + X_small.mean(axis=0)
    mates[rng.uniform(size=mates.shape) < 0.1] = np.nan
    for row in (X_small[:1], np.where(np.arange(X_small.shape[1]) == 0, np.nan, X_small[1:2])):
        batch = np.concatenate([mates[:537], row, mates[537:]])
        np.testing.assert_allclose(
            fitted_vae.score_samples(batch)[537],
            fitted_vae.score_samples(row)[0],
            rtol=1e-7,
            atol=1e-9,
        )


def test_a_row_beyond_float32_gets_the_nan_score_message(fitted_vae, X_small):
    # 1e300 is finite, but infinite in the float32 batch the model scores, and
    # its squared distance overflows float64 when the row is scored again
    # there: the row's score is NaN, and score_samples names the row (the
    # ELBO's distributions skip torch's argument checks, which would fail
    # first with a message about a Normal's loc).
    X = X_small[:3].copy()
    X[1, 0] = 1e300
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="log-density of row 1 of X"):
        fitted_vae.score_samples(X)


def test_linear_vae_reaches_factor_analysis_on_a_small_table():
    # A small table shaped like wine: 133 training rows (bench_density.py's
    # split) from the 5-factor model FactorAnalysis fits to load_wine, in its
    # units, spanning five orders of magnitude; 5000 held-out rows. With
    # default settings the linear VAE is that model class and must reach
    # FactorAnalysis's held-out log-likelihood. Early stopping trains it on
    # n_fit = 119 of the rows, and a maximum-likelihood fit on n_fit rows
    # loses chi2_p / (2 n_fit) nats of held-out log-likelihood to the truth
    # (p free parameters; Akaike), which FactorAnalysis, on more rows, loses
    # less of: the VAE may fall short by that loss's mean plus 3 standard
    # deviations, (p + 3 sqrt(2 p)) / (2 n_fit) = 0.50 nats here, plus 3
    # standard errors of the paired per-row differences on the test rows.
    # Over 4 data seeds x 2 random states it falls 0.00 to 0.14 short; from
    # random weights (no factor-analysis start) 1.2 short.
    k = 5
    truth = FactorAnalysis(n_components=k).fit(load_wine().data)
    rows = np.random.default_rng(0).multivariate_normal(
        truth.mean_, truth.get_covariance(), size=133 + 5000
    )
    X_train, X_test = rows[:133], rows[133:]
    (n, d) = X_train.shape
    vae = VAETransformer(n_components=k, hidden_layer_sizes=(), random_state=0).fit(X_train)
    fa = FactorAnalysis(n_components=k).fit(X_train)
    difference = fa.score_samples(X_test) - _exact_linear_vae_log_density(vae, X_test)
    n_fit = n - int(np.ceil(vae.validation_fraction * n))
    p = d * k + 2 * d - k * (k - 1) // 2
    allowance = (p + 3 * np.sqrt(2 * p)) / (2 * n_fit)
    assert difference.mean() < 3 * _standard_error(difference) + allowance


@pytest.mark.parametrize("method", ["score_samples", "log_likelihood"])
@pytest.mark.parametrize("value", [1e20, 1e40])
def test_a_row_beyond_float32s_reach_is_scored_again_in_float64(
    fitted_vae, X_small, monkeypatch, method, value
):
    # At 1e20 standard deviations the squared distance overflows float32, at
    # 1e40 the value itself: that row alone is scored again in float64, where
    # its log-density is finite and far below the others'; the other rows
    # keep their float32 scores, bit for bit, and no overflow is warned about.
    import warnings

    from sklearn_vae._evaluation import FittedModel

    evaluate, calls = FittedModel.evaluate, []

    def spy(self, fn, X, *args, **kwargs):
        calls.append((len(X), kwargs.get("dtype")))
        return evaluate(self, fn, X, *args, **kwargs)

    monkeypatch.setattr(FittedModel, "evaluate", spy)
    score = getattr(fitted_vae, method)
    kwargs = {"n_importance_samples": 20, "random_state": 0} if method == "log_likelihood" else {}
    X = X_small[:4].copy()
    ordinary = score(X, **kwargs)
    assert calls == [(4, torch.float32)]
    X[2, 0] = value
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score(X, **kwargs)
    assert calls == [(4, torch.float32), (1, torch.float64)]
    assert np.isfinite(scores[2]) and scores[2] < -(value**2) / 100
    np.testing.assert_array_equal(np.delete(scores, 2), np.delete(ordinary, 2))
