"""DensityOutlierDetector: the outlier API over any density estimator."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_vae import DensityOutlierDetector, HistogramDensity, VAETransformer

TINY_VAE = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0)


@parametrize_with_checks(
    [
        DensityOutlierDetector(GaussianMixture(random_state=0)),
        # The IWAE estimate of method="auto" depends on the batch: not row-order invariant.
        DensityOutlierDetector(VAETransformer(**TINY_VAE), method="score_samples"),
    ]
)
def test_sklearn_estimator_suite(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(200, 3))


@pytest.fixture(scope="module")
def gmm_detector(X):
    return DensityOutlierDetector(GaussianMixture(random_state=0), contamination=0.15).fit(X)


def test_offset_is_the_contamination_quantile_of_training_scores(gmm_detector, X):
    scores = GaussianMixture(random_state=0).fit(X).score_samples(X)
    assert gmm_detector.offset_ == pytest.approx(np.percentile(scores, 15.0))


def test_fraction_of_training_rows_predicted_outlier_is_contamination(gmm_detector, X):
    assert np.mean(gmm_detector.predict(X) == -1) == pytest.approx(0.15, abs=1 / len(X))


def test_decision_function_is_score_samples_minus_offset(gmm_detector, X):
    np.testing.assert_allclose(
        gmm_detector.decision_function(X), gmm_detector.score_samples(X) - gmm_detector.offset_
    )


def test_predict_is_the_sign_of_decision_function_and_fit_predict_agrees(gmm_detector, X):
    X_new = np.vstack([X[:20], X[:20] * 4])
    decision = gmm_detector.decision_function(X_new)
    predicted = gmm_detector.predict(X_new)
    assert set(predicted) == {-1, 1}
    np.testing.assert_array_equal(predicted, np.where(decision < 0, -1, 1))
    np.testing.assert_array_equal(clone(gmm_detector).fit_predict(X), gmm_detector.predict(X))


def test_far_rows_are_outliers(gmm_detector):
    assert gmm_detector.predict(np.full((1, 3), 10.0))[0] == -1


def test_background_is_subtracted_from_the_score(X):
    detector = DensityOutlierDetector(
        GaussianMixture(random_state=0), background=HistogramDensity()
    ).fit(X)
    expected = GaussianMixture(random_state=0).fit(X).score_samples(X)
    expected -= HistogramDensity().fit(X).score_samples(X)
    np.testing.assert_allclose(detector.score_samples(X), expected)


def test_background_auto_means_none_for_a_given_estimator(gmm_detector):
    assert gmm_detector.background_ is None


def test_pipeline_is_scored_through_its_score_samples(X):
    pipeline = make_pipeline(StandardScaler(), KernelDensity(bandwidth=0.5))
    detector = DensityOutlierDetector(pipeline).fit(X)
    np.testing.assert_allclose(detector.score_samples(X), clone(pipeline).fit(X).score_samples(X))
    assert detector.n_features_in_ == 3


def test_log_likelihood_of_a_pipeline_transforms_then_calls_the_last_step(X):
    pipeline = make_pipeline(StandardScaler(), VAETransformer(**TINY_VAE))
    detector = DensityOutlierDetector(pipeline, method="log_likelihood", random_state=0)
    detector.fit(X)
    fitted = detector.estimator_
    expected = fitted[-1].log_likelihood(
        fitted[0].transform(X), n_importance_samples=100, random_state=detector._seed
    )
    np.testing.assert_allclose(detector.score_samples(X), expected)
    assert not np.allclose(expected, fitted.score_samples(X))
    np.testing.assert_array_equal(detector.score_samples(X[:5]), detector.score_samples(X[:5]))


def test_default_on_integers_is_a_dequantised_vae_against_an_integer_histogram():
    X = np.random.default_rng(0).integers(0, 5, size=(60, 4)).astype(float)
    detector = DensityOutlierDetector(random_state=0)
    estimator, background = detector._make_estimators(X)
    assert estimator.get_params()["dequantize"] is True
    assert estimator.likelihood == "gaussian"
    assert background.bins == "integer"
    estimator, background = detector._make_estimators(X + 0.5)
    assert estimator.likelihood == "auto" and not estimator.dequantize
    assert background is None


def test_dataframe_with_missing_values_and_a_vae():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    df.iloc[::7, 1] = np.nan
    detector = DensityOutlierDetector(VAETransformer(**TINY_VAE)).fit(df)
    scores = detector.score_samples(df)
    assert np.isfinite(scores).all()
    assert list(detector.feature_names_in_) == ["a", "b", "c"]
    assert detector.__sklearn_tags__().input_tags.allow_nan


def test_method_auto_uses_log_likelihood_where_the_estimator_has_one(X):
    vae = VAETransformer(**TINY_VAE)
    detector = DensityOutlierDetector(vae, random_state=0).fit(X)
    expected = detector.estimator_.log_likelihood(
        X, n_importance_samples=100, random_state=detector._seed
    )
    np.testing.assert_allclose(detector.score_samples(X), expected)
    elbo = DensityOutlierDetector(vae, method="score_samples").fit(X)
    np.testing.assert_allclose(elbo.score_samples(X), elbo.estimator_.score_samples(X))


def test_allow_nan_tag_follows_the_estimator():
    assert not DensityOutlierDetector(GaussianMixture()).__sklearn_tags__().input_tags.allow_nan
    assert DensityOutlierDetector(HistogramDensity()).__sklearn_tags__().input_tags.allow_nan


def test_estimator_without_score_samples_is_a_type_error(X):
    with pytest.raises(TypeError, match="LinearRegression"):
        DensityOutlierDetector(LinearRegression()).fit(X)


def test_log_likelihood_without_the_method_says_to_use_score_samples(X):
    detector = DensityOutlierDetector(GaussianMixture(), method="log_likelihood")
    with pytest.raises(ValueError, match="GaussianMixture.*score_samples"):
        detector.fit(X)


class _ColumnsOnly:
    """A table-like object with ``columns`` but no ``iloc`` (as a polars DataFrame)."""

    columns = ["a", "b"]

    def __array__(self, dtype=None, copy=None):
        return np.zeros((3, 2), dtype=np.int64)


class _IlocOnly(_ColumnsOnly):
    columns = property(lambda self: (_ for _ in ()).throw(AttributeError("columns")))
    iloc = None


def test_only_two_d_numeric_arrays_of_integers_count_as_integer_data():
    from sklearn_vae._data import is_integer_array

    integers = np.arange(6).reshape(3, 2)
    assert is_integer_array(integers)
    assert is_integer_array(np.array([[4]]))  # one entry is enough
    assert is_integer_array(np.array([[1.0, np.nan], [2.0, 3.0]]))  # missing entries ignored
    assert not is_integer_array(integers + 0.5)
    assert not is_integer_array(np.arange(6))  # 1-D
    assert not is_integer_array(integers.astype(object))  # not a numeric dtype
    assert not is_integer_array(integers.astype(str))
    assert not is_integer_array(np.empty((0, 2)))
    assert not is_integer_array(pd.DataFrame(integers))
    assert not is_integer_array(_ColumnsOnly())
    assert not is_integer_array(_IlocOnly())


def test_default_vae_is_seeded_by_random_state():
    estimator, _ = DensityOutlierDetector(random_state=3)._make_estimators(np.zeros((4, 2)))
    assert estimator.random_state == 3


def _scaled_pipeline():
    return make_pipeline(
        StandardScaler(), FunctionTransformer(lambda Z: 2.0 * Z), VAETransformer(**TINY_VAE)
    )


def test_method_auto_reads_log_likelihood_from_the_last_step_of_a_longer_pipeline(X):
    # Three steps: the last step's log_likelihood on the output of the first two
    # (a middle step alone, or the middle step as the density, would differ).
    detector = DensityOutlierDetector(_scaled_pipeline(), random_state=0).fit(X)
    fitted = detector.estimator_
    expected = fitted[-1].log_likelihood(
        fitted[:-1].transform(X), n_importance_samples=100, random_state=detector._seed
    )
    np.testing.assert_allclose(detector.score_samples(X), expected)


def test_one_step_pipeline_scores_the_raw_input(X):
    detector = DensityOutlierDetector(make_pipeline(VAETransformer(**TINY_VAE)), random_state=0)
    fitted = detector.fit(X).estimator_
    expected = fitted[-1].log_likelihood(X, n_importance_samples=100, random_state=detector._seed)
    np.testing.assert_allclose(detector.score_samples(X), expected)


def test_scores_are_float64_where_the_estimator_gives_float32(X):
    X32 = X.astype(np.float32)
    assert GaussianMixture(random_state=0).fit(X32).score_samples(X32).dtype == np.float32
    detector = DensityOutlierDetector(GaussianMixture(random_state=0)).fit(X32)
    assert detector.score_samples(X32).dtype == np.float64


def test_a_row_scoring_exactly_the_offset_is_an_integer_inlier():
    # With 5 rows and contamination 0.25, the quantile's position 0.25 * 4 = 1
    # is a row: offset_ is that row's score, its decision exactly 0, and
    # predict's "decision < 0 is an outlier" keeps it an inlier.
    X = np.random.default_rng(1).normal(size=(5, 2))
    detector = DensityOutlierDetector(GaussianMixture(random_state=0), contamination=0.25)
    decision = detector.fit(X).decision_function(X)
    assert np.count_nonzero(decision == 0.0) == 1
    predicted = detector.predict(X)
    assert predicted.dtype.kind == "i"
    assert predicted[decision == 0.0][0] == 1
    assert np.count_nonzero(predicted == -1) == 1


@pytest.mark.parametrize(
    "estimator, background, allow_nan",
    [
        (None, "auto", True),  # the default VAE takes NaN
        (HistogramDensity(), None, True),
        (HistogramDensity(), HistogramDensity(), True),
        (HistogramDensity(), GaussianMixture(), False),  # a background without NaN
        (GaussianMixture(), HistogramDensity(), False),
    ],
)
def test_allow_nan_tag_needs_both_estimator_and_background(estimator, background, allow_nan):
    detector = DensityOutlierDetector(estimator, background=background)
    assert detector.__sklearn_tags__().input_tags.allow_nan is allow_nan
