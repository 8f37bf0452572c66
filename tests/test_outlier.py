"""DensityOutlierDetector: the outlier API over any density estimator."""

import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.estimator_checks import check_outliers_train, parametrize_with_checks

from sklearn_vae import DensityOutlierDetector, HistogramDensity, VAETransformer
from sklearn_vae._schema import TableSchema

TINY_VAE = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0)


SUITE = [
    DensityOutlierDetector(GaussianMixture(random_state=0)),
    # The IWAE estimate of method="auto" depends on the batch: not row-order invariant.
    # Two folds: three fits of the VAE per detector fit.
    DensityOutlierDetector(VAETransformer(**TINY_VAE), cv=2, method="score_samples"),
]

# scikit-learn's checks expect contamination to be the share of the training rows
# that fit(X).predict(X) flags; here it is the share of new rows, and fit_predict
# scores each training row out of fold. The rest of both checks is run below.
TRAINING_SHARE = {
    "check_outliers_train": "contamination is the share of new rows flagged",
    "check_outliers_fit_predict": "fit_predict flags rows by their out-of-fold scores",
}


@parametrize_with_checks(SUITE, expected_failed_checks=lambda estimator: TRAINING_SHARE)
def test_sklearn_estimator_suite(estimator, check):
    check(estimator)


class _NoveltyDetector(DensityOutlierDetector):
    """The detector as scikit-learn's checks treat ``LocalOutlierFactor(novelty=True)``."""

    novelty = True


@pytest.mark.parametrize("estimator", SUITE, ids=["gmm", "vae"])
def test_sklearn_outlier_checks_but_the_training_share(estimator):
    novelty = _NoveltyDetector(**estimator.get_params(deep=False))
    check_outliers_train(type(novelty).__name__, novelty)
    # check_outliers_fit_predict, but that fit_predict and fit().predict() agree:
    X = np.random.default_rng(0).normal(size=(300, 2))
    X[:30] *= 8
    predicted = clone(estimator).set_params(contamination=0.1).fit_predict(X)
    assert predicted.shape == (300,) and predicted.dtype.kind == "i"
    assert_array_equal(np.unique(predicted), [-1, 1])
    assert np.count_nonzero(predicted == -1) == 30


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(200, 3))


@pytest.fixture(scope="module")
def gmm_detector(X):
    detector = DensityOutlierDetector(
        GaussianMixture(random_state=0), contamination=0.15, random_state=0
    )
    return detector.fit(X)


def _held_out_scores(fit, X, seed, n_splits=5, n_folds=None):
    """The detector's out-of-fold scores, by hand (NaN for rows not held out).

    ``fit(rows)`` returns a function scoring rows of ``X`` under a model fitted
    on ``X[rows]``. Each fold's scores are moved by the median difference between
    the model fitted on every row and the fold's model, on the rows both were
    fitted on (a seeded 1000 of them at most).
    """
    n_samples = len(X)
    shared = np.arange(n_samples)
    if n_samples > 1000:
        shared = np.sort(np.random.default_rng(seed).choice(n_samples, 1000, replace=False))
    on_every_row = fit(np.arange(n_samples))(shared)
    scores = np.full(n_samples, np.nan)
    folds = list(KFold(n_splits, shuffle=True, random_state=seed).split(X))
    for train, test in folds[:n_folds]:
        score = fit(train)
        in_fit = np.isin(shared, train)
        scores[test] = score(test) + np.median(on_every_row[in_fit] - score(shared[in_fit]))
    return scores


def _fit_mixture(X):
    def fit(rows):
        model = GaussianMixture(random_state=0).fit(X[rows])
        return lambda scored: model.score_samples(X[scored])

    return fit


def _out_of_fold_scores(X, seed, n_splits=5):
    return _held_out_scores(_fit_mixture(X), X, seed, n_splits)


def test_offset_is_the_contamination_quantile_of_out_of_fold_scores(gmm_detector, X):
    scores = _out_of_fold_scores(X, gmm_detector._seed)
    assert gmm_detector.offset_ == pytest.approx(np.percentile(scores, 15.0), rel=1e-12)
    training = GaussianMixture(random_state=0).fit(X).score_samples(X)
    assert gmm_detector.offset_ < np.percentile(training, 15.0)


def test_estimator_is_fitted_on_every_row(gmm_detector, X):
    expected = GaussianMixture(random_state=0).fit(X).score_samples(X)
    np.testing.assert_array_equal(gmm_detector.score_samples(X), expected)


def test_fit_predict_flags_the_contamination_share_by_out_of_fold_scores(gmm_detector, X):
    detector = clone(gmm_detector)
    predicted = detector.fit_predict(X)
    scores = _out_of_fold_scores(X, detector._seed)
    np.testing.assert_array_equal(predicted, np.where(scores < detector.offset_, -1, 1))
    assert np.count_nonzero(predicted == -1) == 30  # 15% of 200
    assert detector.offset_ == gmm_detector.offset_


def test_decision_function_is_score_samples_minus_offset(gmm_detector, X):
    np.testing.assert_allclose(
        gmm_detector.decision_function(X), gmm_detector.score_samples(X) - gmm_detector.offset_
    )


def test_predict_is_the_sign_of_decision_function(gmm_detector, X):
    X_new = np.vstack([X[:20], X[:20] * 4])
    decision = gmm_detector.decision_function(X_new)
    predicted = gmm_detector.predict(X_new)
    assert set(predicted) == {-1, 1}
    np.testing.assert_array_equal(predicted, np.where(decision < 0, -1, 1))


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
    detector = DensityOutlierDetector(pipeline, cv=2, method="log_likelihood", random_state=0)
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
    # The defaults' per-column rule gives each column of five integers its levels.
    assert estimator.get_params() == VAETransformer(random_state=0).get_params()
    assert all(c.likelihood == "categorical" for c in TableSchema("auto", "auto").fit(X).columns_)
    assert background.bins == "integer"
    estimator, background = detector._make_estimators(X + 0.5)
    assert estimator.get_params() == VAETransformer(random_state=0).get_params()
    assert background is None


def test_dataframe_with_missing_values_and_a_vae():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    df.iloc[::7, 1] = np.nan
    detector = DensityOutlierDetector(VAETransformer(**TINY_VAE), cv=2).fit(df)
    scores = detector.score_samples(df)
    assert np.isfinite(scores).all()
    assert list(detector.feature_names_in_) == ["a", "b", "c"]
    assert detector.__sklearn_tags__().input_tags.allow_nan


def test_method_auto_uses_log_likelihood_where_the_estimator_has_one(X):
    vae = VAETransformer(**TINY_VAE)
    detector = DensityOutlierDetector(vae, cv=2, random_state=0).fit(X)
    expected = detector.estimator_.log_likelihood(
        X, n_importance_samples=100, random_state=detector._seed
    )
    np.testing.assert_allclose(detector.score_samples(X), expected)
    elbo = DensityOutlierDetector(vae, cv=2, method="score_samples").fit(X)
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
    detector = DensityOutlierDetector(_scaled_pipeline(), cv=2, random_state=0).fit(X)
    fitted = detector.estimator_
    expected = fitted[-1].log_likelihood(
        fitted[:-1].transform(X), n_importance_samples=100, random_state=detector._seed
    )
    np.testing.assert_allclose(detector.score_samples(X), expected)


def test_one_step_pipeline_scores_the_raw_input(X):
    pipeline = make_pipeline(VAETransformer(**TINY_VAE))
    detector = DensityOutlierDetector(pipeline, cv=2, random_state=0)
    fitted = detector.fit(X).estimator_
    expected = fitted[-1].log_likelihood(X, n_importance_samples=100, random_state=detector._seed)
    np.testing.assert_allclose(detector.score_samples(X), expected)


def test_scores_are_float64_where_the_estimator_gives_float32(X):
    X32 = X.astype(np.float32)
    assert GaussianMixture(random_state=0).fit(X32).score_samples(X32).dtype == np.float32
    detector = DensityOutlierDetector(GaussianMixture(random_state=0)).fit(X32)
    assert detector.score_samples(X32).dtype == np.float64


def test_a_row_scoring_exactly_the_offset_is_an_integer_inlier():
    # With 5 rows (5 folds of one) and contamination 0.25, the quantile's
    # position 0.25 * 4 = 1 is a row: offset_ is that row's out-of-fold score,
    # and "below the offset is an outlier" keeps it an inlier.
    X = np.random.default_rng(1).normal(size=(5, 2))
    detector = DensityOutlierDetector(GaussianMixture(random_state=0), contamination=0.25)
    predicted = detector.fit_predict(X)
    scores = _out_of_fold_scores(X, detector._seed)
    assert np.count_nonzero(scores == detector.offset_) == 1
    assert predicted.dtype.kind == "i"
    assert predicted[scores == detector.offset_][0] == 1
    assert np.count_nonzero(predicted == -1) == 1
    # predict: a new row whose decision is exactly 0 is an inlier too.
    detector.offset_ = float(detector.score_samples(X[:1])[0])
    assert detector.decision_function(X[:1])[0] == 0.0
    assert detector.predict(X[:1]).tolist() == [1]


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


# ------------------------------------------------------------- the threshold


def test_quantile_is_percentiles_interpolation_and_the_finite_neighbour_next_to_infinity():
    from sklearn_vae._outlier import quantile

    finite = np.random.default_rng(0).normal(size=11)
    assert quantile(finite, 0.13) == np.percentile(finite, 13.0)
    assert quantile(np.array([-np.inf, 1.0, 2.0, 3.0]), 0.1) == 1.0
    assert quantile(np.array([1.0, 2.0, 3.0, np.inf]), 0.9) == 3.0
    # More than the level without density: the lowest finite score, unless there is none.
    assert quantile(np.array([-np.inf, -np.inf, 1.0]), 0.1) == 1.0
    assert quantile(np.array([-np.inf, -np.inf]), 0.1) == -np.inf


def test_level_shift_is_the_median_finite_difference_and_zero_without_one():
    from sklearn_vae._outlier import level_shift

    assert (
        level_shift(np.array([1.0, 2.0, -np.inf, np.inf]), np.array([0.0, 0.0, 0.0, np.inf])) == 1.5
    )
    assert level_shift(np.array([-np.inf]), np.array([0.0])) == 0.0


def test_contamination_auto_is_the_one_percent_quantile_of_out_of_fold_scores(X):
    detector = DensityOutlierDetector(
        GaussianMixture(random_state=0), contamination="auto", random_state=0
    ).fit(X)
    scores = _out_of_fold_scores(X, detector._seed)
    assert detector.offset_ == pytest.approx(np.percentile(scores, 1.0), rel=1e-12)
    assert np.count_nonzero(detector.fit_predict(X) == -1) == 2  # 1% of 200


@pytest.mark.parametrize(
    "params, match",
    [
        ({"contamination": "high"}, "'contamination' parameter .*'auto'"),
        ({"contamination": 0.0}, "'contamination' parameter .* range \\(0.0, 0.5\\]"),
        ({"contamination": 0.6}, "'contamination' parameter"),
        ({"cv": 1}, "'cv' parameter .* range \\[2, inf\\)"),
        ({"cv": 2.5}, "'cv' parameter"),
    ],
)
def test_invalid_contamination_and_cv_are_parameter_errors(X, params, match):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=match):
        DensityOutlierDetector(GaussianMixture(), **params).fit(X)


@pytest.mark.parametrize(
    "n_samples, contamination, n_folds",
    [
        (2000, 0.1, 3),  # 900 rows needed, 400 a fold
        (4500, 0.1, 1),  # exactly 900 in the first fold
        (6000, 0.1, 1),  # more than the 1000 rows that align the folds in a fold
        (2000, 0.5, 1),  # 100 rows needed
        (300, 0.1, 5),  # fewer rows than needed: every fold
    ],
)
def test_fit_uses_the_first_folds_that_hold_out_enough_rows(n_samples, contamination, n_folds):
    X = np.random.default_rng(2).normal(size=(n_samples, 2))
    detector = DensityOutlierDetector(
        GaussianMixture(random_state=0), contamination=contamination, random_state=0
    ).fit(X)
    scores = _held_out_scores(_fit_mixture(X), X, detector._seed, n_folds=n_folds)
    assert np.count_nonzero(~np.isnan(scores)) == n_folds * n_samples // 5
    expected = np.percentile(scores[~np.isnan(scores)], 100 * contamination)
    assert detector.offset_ == pytest.approx(expected, rel=1e-12)
    # fit_predict scores every row out of fold.
    n_flagged = np.count_nonzero(detector.fit_predict(X) == -1)
    assert n_flagged == round(n_samples * contamination)


def test_cv_sets_the_number_of_folds(X):
    detector = DensityOutlierDetector(GaussianMixture(random_state=0), cv=3, random_state=0)
    detector.fit(X)
    scores = _out_of_fold_scores(X, detector._seed, n_splits=3)
    assert detector.offset_ == pytest.approx(np.percentile(scores, 10.0), rel=1e-12)


def test_the_background_of_each_fold_is_fitted_on_its_rows_and_subtracted(X):
    detector = DensityOutlierDetector(
        GaussianMixture(random_state=0), background=HistogramDensity(bins=4), random_state=0
    ).fit(X)

    def fit(rows):
        density = GaussianMixture(random_state=0).fit(X[rows])
        background = HistogramDensity(bins=4).fit(X[rows])
        return lambda scored: density.score_samples(X[scored]) - background.score_samples(X[scored])

    scores = _held_out_scores(fit, X, detector._seed)
    assert detector.offset_ == pytest.approx(np.percentile(scores, 10.0), rel=1e-12)


def test_fold_models_score_with_the_detectors_importance_samples():
    X = np.random.default_rng(0).normal(size=(60, 3))
    detector = DensityOutlierDetector(
        VAETransformer(**TINY_VAE), cv=2, n_importance_samples=7, random_state=0
    ).fit(X)

    def fit(rows):
        vae = VAETransformer(**TINY_VAE).fit(X[rows])
        return lambda scored: vae.log_likelihood(
            X[scored], n_importance_samples=7, random_state=detector._seed
        )

    scores = _held_out_scores(fit, X, detector._seed, n_splits=2)
    assert detector.offset_ == pytest.approx(np.percentile(scores, 10.0), rel=1e-12)


def test_one_row_is_too_few_to_hold_out(X):
    with pytest.raises(ValueError, match="n_samples = 1: .* at least 2 samples"):
        DensityOutlierDetector(HistogramDensity()).fit(X[:1])


def test_a_fold_that_cannot_be_fitted_is_named_in_the_error(X):
    # Two rows: each fold model is fitted on one, too few for GaussianMixture.
    with pytest.raises(ValueError, match="GaussianMixture failed on calibration fold 1 of 2 "):
        DensityOutlierDetector(GaussianMixture()).fit(X[:2])


class _KnownFirstColumn(GaussianMixture):
    """A density that refuses rows whose first entry it did not see in fit (as an unseen label)."""

    calls = []  # the number of rows of each score_samples call

    def fit(self, X, y=None):
        self.seen_ = set(np.asarray(X)[:, 0].tolist())
        return super().fit(X)

    def score_samples(self, X):
        X = np.asarray(X)
        self.calls.append(len(X))
        unseen = [value for value in X[:, 0].tolist() if value not in self.seen_]
        if unseen:
            raise ValueError(f"{unseen[0]} was not seen in fit")
        return super().score_samples(X)


def test_a_held_out_row_its_fold_cannot_score_is_an_outlier():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 3, size=1000), rng.normal(size=1000)]).astype(float)
    X[[7, 400], 0] = [5.0, 6.0]  # two values seen once: their folds never saw them
    detector = DensityOutlierDetector(_KnownFirstColumn(random_state=0), random_state=0)
    _KnownFirstColumn.calls.clear()
    predicted = detector.fit_predict(X)
    assert np.isfinite(detector.offset_)
    assert predicted[7] == predicted[400] == -1
    assert np.count_nonzero(predicted == -1) == 100
    # Found by halving the folds of 200 rows: 1 + 2 * 8 calls for a fold with one;
    # 5 more for the other folds, and 6 for the rows that align the folds.
    assert len(_KnownFirstColumn.calls) <= 11 + 2 * 2 * 8


def test_an_identifier_column_leaves_no_held_out_row_scored_and_is_an_error(X):
    from sklearn_vae._random import draw_seed

    X = np.column_stack([np.arange(len(X)), X])  # a new value in every row
    detector = DensityOutlierDetector(_KnownFirstColumn(random_state=0), random_state=0)
    # The seed that fit draws: the first row of the first fold held out fails first.
    first_fold = next(KFold(5, shuffle=True, random_state=draw_seed(0)).split(X))[1]
    message = (
        "None of the 200 rows held out to set the threshold could be scored by the "
        f"_KnownFirstColumn fitted on the other rows: {X[first_fold[0], 0]} was not seen"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        detector.fit(X)
    assert not hasattr(detector, "offset_")


def test_an_interrupt_in_a_fold_is_raised_and_leaves_the_detector_as_it_was(monkeypatch):
    from sklearn_vae._net import VAENet

    X = np.random.default_rng(0).normal(size=(200, 3))
    vae = VAETransformer(**TINY_VAE, early_stopping=False)
    detector = DensityOutlierDetector(vae, method="score_samples", random_state=0).fit(X)
    expected = detector.decision_function(X)
    # The fit on all rows takes 5 epochs of 2 batches; a fold on 160 rows 2 batches
    # an epoch: call 13 is in the first fold's second epoch, after a completed one.
    calls = []
    original = VAENet.train_step

    def train_step(net, *args, **kwargs):
        calls.append(None)
        if len(calls) == 13:
            raise KeyboardInterrupt
        return original(net, *args, **kwargs)

    monkeypatch.setattr(VAENet, "train_step", train_step)
    with pytest.raises(KeyboardInterrupt):
        detector.set_params(contamination=0.3).fit(X)
    monkeypatch.undo()
    assert len(calls) == 13
    assert_array_equal(detector.decision_function(X), expected)
