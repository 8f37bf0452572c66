"""DensityOutlierDetector's threshold: the share of new normal rows flagged is ``contamination``.

Every check compares a share of flagged rows with ``contamination`` = q within
4 standard deviations of its sampling spread: the flags of n_test rows are
binomial given the threshold, and the threshold, a q-quantile of m held-out
scores, cuts off a share of the population that varies by sqrt(q (1 - q) / m);
the two add, sd = sqrt(q (1 - q) (1 / n_test + 1 / m)). The training-score
quantile, the threshold before the detector held rows out, is computed beside
it from the same fitted detector and fails the same test.
"""

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_vae import DensityOutlierDetector, HistogramDensity, VAETransformer


def spread(level, n_test, n_held_out):
    """The standard deviation of the share of new rows below a ``level`` quantile."""
    return np.sqrt(level * (1 - level) * (1 / n_test + 1 / n_held_out))


def training_quantile(detector, X, level):
    """The threshold of the training scores' quantile, as the detector had it before."""
    return np.percentile(detector.score_samples(X), 100 * level)


# ------------------------------------------------------------ a Gaussian blob


@pytest.fixture(scope="module")
def blob():
    rng = np.random.default_rng(0)
    return rng.normal(size=(1000, 3)), rng.normal(size=(100_000, 3))


@pytest.mark.parametrize("contamination, level", [(0.1, 0.1), (0.3, 0.3), ("auto", 0.01)])
def test_gaussian_model_flags_the_contamination_share_of_new_rows(blob, contamination, level):
    X, X_new = blob
    detector = DensityOutlierDetector(
        GaussianMixture(random_state=0), contamination=contamination, random_state=0
    ).fit(X)
    flagged = np.mean(detector.predict(X_new) == -1)
    # Fewer than 100 (1 - q) / q rows are needed at q = 0.3: two folds of 200.
    n_held_out = 400 if level == 0.3 else len(X)
    assert abs(flagged - level) < 4 * spread(level, len(X_new), n_held_out)


def test_kernel_density_flags_the_contamination_share_where_training_scores_flag_all(blob):
    # A kernel density scores each training row with its own kernel: every new
    # row scores below the training quantile.
    X, X_new = blob
    X_new = X_new[:20_000]
    detector = DensityOutlierDetector(KernelDensity(bandwidth=0.3), random_state=0).fit(X)
    scores = detector.score_samples(X_new)
    tolerance = 4 * spread(0.1, len(X_new), len(X))
    assert abs(np.mean(scores < detector.offset_) - 0.1) < tolerance
    assert np.mean(scores < training_quantile(detector, X, 0.1)) > 0.1 + tolerance


class _LevelPerFit(GaussianMixture):
    """A Gaussian density moved by a level drawn at each fit, as a VAE's varies from run to run."""

    def fit(self, X, y=None):
        self.level_ = np.random.default_rng(len(X)).normal(scale=10.0)
        return super().fit(X)

    def score_samples(self, X):
        return super().score_samples(X) + self.level_


def test_fold_models_of_another_level_are_aligned_with_the_estimator(blob):
    X, X_new = blob
    detector = DensityOutlierDetector(_LevelPerFit(random_state=0), random_state=0).fit(X)
    flagged = np.mean(detector.predict(X_new) == -1)
    assert abs(flagged - 0.1) < 4 * spread(0.1, len(X_new), len(X))


# ------------------------------------------------------------ a small real table


def held_out_shares(estimator, X, contamination=0.1, level=0.1):
    """Shares of rows flagged by a detector fitted without them, each row held out once.

    Returns the share under ``offset_`` and under the training-score quantile.
    """
    n_flagged = n_flagged_before = 0
    for train, test in KFold(4, shuffle=True, random_state=0).split(X):
        detector = DensityOutlierDetector(estimator, contamination=contamination, random_state=0)
        detector.fit(X[train])
        scores = detector.score_samples(X[test])
        n_flagged += np.count_nonzero(scores < detector.offset_)
        n_flagged_before += np.count_nonzero(scores < training_quantile(detector, X[train], level))
    return n_flagged / len(X), n_flagged_before / len(X)


@pytest.fixture(scope="module")
def wine():
    return load_wine().data


def wine_tolerance(wine, level=0.1):
    return 4 * spread(level, len(wine), 0.75 * len(wine))


@pytest.mark.parametrize(
    "estimator",
    [
        make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)),
        make_pipeline(StandardScaler(), KernelDensity(bandwidth=0.5)),
    ],
    ids=["mixture", "kernel"],
)
def test_wine_flags_the_contamination_share_where_training_scores_flag_more(wine, estimator):
    share, share_before = held_out_shares(estimator, wine)
    assert abs(share - 0.1) < wine_tolerance(wine)
    assert share_before > 0.1 + wine_tolerance(wine)


def test_wine_histogram_flags_the_contamination_share(wine):
    share, share_before = held_out_shares(HistogramDensity(), wine)
    assert abs(share - 0.1) < wine_tolerance(wine)
    # The histogram overfits less: the training quantile flags more, but not always
    # outside the spread of 178 rows.
    assert share_before > share


def test_wine_vae_flags_the_contamination_share(wine):
    vae = VAETransformer(n_components=2, hidden_layer_sizes=(16,), max_iter=20, random_state=0)
    share, _ = held_out_shares(make_pipeline(StandardScaler(), vae), wine)
    assert abs(share - 0.1) < wine_tolerance(wine)


def test_wine_contamination_auto_flags_one_row_in_a_hundred(wine):
    estimator = make_pipeline(StandardScaler(), GaussianMixture(random_state=0))
    share, _ = held_out_shares(estimator, wine, contamination="auto", level=0.01)
    assert abs(share - 0.01) < wine_tolerance(wine, level=0.01)


def test_the_threshold_is_finite_when_many_held_out_rows_have_no_density():
    from sklearn_vae._outlier import quantile

    scores = np.array([-np.inf, -np.inf, -np.inf, -2.0, -1.0])
    assert quantile(scores, 0.2) == -2.0
    assert quantile(np.array([-3.0, -2.0, -1.0, 0.0, 1.0]), 0.25) == -2.0
