"""make_log_likelihood_scorer ranks models by held-out log-likelihood."""

import pickle

import numpy as np
import pytest
from conftest import FAST
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sklearn_vae import VAETransformer, make_log_likelihood_scorer


def test_scores_a_vae_by_its_mean_importance_weighted_log_likelihood(fitted_vae, X_small):
    scorer = make_log_likelihood_scorer(n_importance_samples=20, random_state=3)
    expected = fitted_vae.log_likelihood(X_small, n_importance_samples=20, random_state=3).mean()
    assert scorer(fitted_vae, X_small) == expected
    # The importance-weighted estimate is never looser than the ELBO in
    # expectation; under N(0, I) it is tighter by a margin: more than three
    # standard errors of the per-row differences (independent across rows).
    # (A mixture prior's KL term is estimated from each row's draws, and on
    # 200 rows their spread hides a margin that small.)
    normal = VAETransformer(**FAST, prior="normal").fit(X_small)
    gain = normal.log_likelihood(
        X_small, n_importance_samples=20, random_state=3
    ) - normal.score_samples(X_small)
    assert gain.mean() > 3 * gain.std(ddof=1) / np.sqrt(len(gain))


def test_falls_back_to_score_samples_without_log_likelihood(X_small):
    gmm = GaussianMixture(n_components=2, random_state=0).fit(X_small)
    assert make_log_likelihood_scorer()(gmm, X_small) == pytest.approx(gmm.score(X_small))


@pytest.mark.parametrize("n_steps", [1, 2, 3])
def test_scores_a_pipeline_by_its_final_step(X_small, n_steps):
    steps = [("scale", StandardScaler()), ("shift", FunctionTransformer(lambda X: X + 1.0))]
    pipe = Pipeline([*steps[: n_steps - 1], ("vae", VAETransformer(**FAST))]).fit(X_small)
    scorer = make_log_likelihood_scorer(n_importance_samples=10)
    expected = pipe[-1].log_likelihood(
        pipe[:-1].transform(X_small) if n_steps > 1 else X_small,
        n_importance_samples=10,
        random_state=0,
    )
    assert scorer(pipe, X_small) == expected.mean()


def test_compares_a_vae_and_a_gaussian_mixture_in_one_search(X_small):
    # The data are Gaussian (factor analysis), so the single full-covariance
    # Gaussian is the true model family; the search must rank both candidates
    # and report each one's held-out score in nats, higher is better.
    pipe = Pipeline([("model", VAETransformer(**FAST))])
    grid = [{"model": [VAETransformer(**FAST)]}, {"model": [GaussianMixture(random_state=0)]}]
    scorer = make_log_likelihood_scorer(n_importance_samples=10)
    search = GridSearchCV(pipe, grid, scoring=scorer, cv=2).fit(X_small)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    assert isinstance(search.best_estimator_[-1], GaussianMixture)


def test_scorer_pickles_and_describes_itself(fitted_vae, X_small):
    scorer = make_log_likelihood_scorer(n_importance_samples=5, random_state=1)
    assert repr(scorer) == "make_log_likelihood_scorer(n_importance_samples=5, random_state=1)"
    assert pickle.loads(pickle.dumps(scorer))(fitted_vae, X_small) == scorer(fitted_vae, X_small)


def test_defaults_are_100_importance_samples_and_seed_0(fitted_vae, X_small):
    default = make_log_likelihood_scorer()
    assert repr(default) == "make_log_likelihood_scorer(n_importance_samples=100, random_state=0)"
    one = make_log_likelihood_scorer(n_importance_samples=1)(fitted_vae, X_small)
    assert one == fitted_vae.log_likelihood(X_small, n_importance_samples=1, random_state=0).mean()


@pytest.mark.parametrize("bad", [0, -1, 2.5, "100"])
def test_invalid_number_of_importance_samples(bad):
    with pytest.raises(ValueError, match="n_importance_samples must be a positive integer"):
        make_log_likelihood_scorer(n_importance_samples=bad)
