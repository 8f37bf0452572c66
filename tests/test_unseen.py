"""Values not seen in fit: Good–Turing's mass m = max(n1, 1) / (n + 1), exact shifts, no failed
batch."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_vae import DensityOutlierDetector, HistogramDensity, VAEImputer, VAETransformer

TINY = dict(n_components=1, hidden_layer_sizes=(8,), max_iter=3, random_state=0)
# 16 observed labels, two of them (c, d) seen once: m = 2 / (16 + 1).
LABELS = ["a"] * 8 + ["b"] * 6 + ["c", "d"]
MASS = 2 / 17


def _table(labels=LABELS, seed=0):
    rng = np.random.default_rng(seed)
    n = len(labels) + 2
    return pd.DataFrame(
        {"x": rng.normal(size=n), "c": pd.Series(list(labels) + [None, None], dtype=object)}
    )


def _fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of short fits
        return estimator.fit(X)


def _without_counts(vae):
    """The model as a file saved before the label counts were kept loads it: m = 0."""
    state = vae.__getstate__()
    del state["_label_counts"]
    old = VAETransformer.__new__(VAETransformer)
    old.__setstate__(state)
    return old


def _queries(X, label="Djibouti"):
    """Rows 0-3 of X, with an unseen label in row 0, and the same rows with it missing."""
    unseen = X.iloc[:4].copy()
    unseen.loc[0, "c"] = label
    missing = unseen.copy()
    missing.loc[0, "c"] = None
    return unseen, missing


# ------------------------------------------------------------------ VAE


@pytest.fixture(scope="module")
def vae():
    return _fit(VAETransformer(**TINY), _table())


@pytest.mark.parametrize("method", ["score_samples", "log_likelihood"])
def test_an_unseen_label_scores_its_row_missing_plus_log_m(vae, method):
    unseen, missing = _queries(_table())
    kwargs = {} if method == "score_samples" else {"n_importance_samples": 4, "random_state": 0}
    scores, reference = (getattr(vae, method)(rows, **kwargs) for rows in (unseen, missing))
    assert_allclose(scores[0], reference[0] + np.log(MASS), rtol=0, atol=1e-12)
    assert_array_equal(scores[1:], reference[1:])


@pytest.mark.parametrize("method", ["score_samples", "log_likelihood"])
def test_seen_labels_shift_by_log_one_minus_m(vae, method):
    X = _table()
    kwargs = {} if method == "score_samples" else {"n_importance_samples": 4, "random_state": 0}
    scores, unshifted = (
        getattr(model, method)(X, **kwargs) for model in (vae, _without_counts(vae))
    )
    seen = X["c"].notna().to_numpy()
    assert_allclose(scores - unshifted, np.where(seen, np.log1p(-MASS), 0.0), rtol=0, atol=1e-12)
    if method == "score_samples":
        assert vae.score(X) == np.mean(scores)


def test_without_a_label_seen_once_one_is_counted():
    X = _table(["a"] * 8 + ["b"] * 8)  # n1 = 0: m = 1 / (16 + 1)
    vae = _fit(VAETransformer(**TINY), X)
    unseen, missing = _queries(X)
    scores = vae.score_samples(unseen)  # no exception for the batch
    assert_allclose(scores[0], vae.score_samples(missing)[0] + np.log(1 / 17), atol=1e-12)
    assert_array_equal(scores[1:], vae.score_samples(X.iloc[1:4]))
    seen = X["c"].notna().to_numpy()
    assert_allclose(
        vae.score_samples(X) - _without_counts(vae).score_samples(X),
        np.where(seen, np.log1p(-1 / 17), 0.0),
        rtol=0,
        atol=1e-12,
    )


def test_a_single_label_column_is_a_proper_distribution_with_the_unseen_outcome():
    vae = _fit(
        VAETransformer(n_components=1, hidden_layer_sizes=(8,), max_iter=50, random_state=0),
        pd.DataFrame({"c": LABELS}),
    )
    rows = pd.DataFrame({"c": ["a", "b", "c", "d", "new"]})
    # The unseen row has nothing else to score: exactly log m, with no model call.
    assert vae.score_samples(rows)[4] == np.log(MASS)
    # The seen labels share 1 - m: the IWAE estimate of each probability is unbiased,
    # within about 0.3% at this K (measured over seeds), so their sum is 1 - m.
    for seed in (0, 1):
        scores = vae.log_likelihood(rows, n_importance_samples=20_000, random_state=seed)
        assert scores[4] == np.log(MASS)
        assert np.exp(scores).sum() == pytest.approx(1.0, abs=0.01)


def test_partial_fit_counts_labels_over_every_chunk_and_fit_over_its_data():
    chunks = [_table(["a", "a", "b", "c"], seed=1), _table(["b", "a", "c", "c"], seed=2)]
    vae = VAETransformer(**TINY)
    for chunk in chunks:
        vae.partial_fit(chunk)
    # a: 3, b: 2, c: 3 over both chunks: no label seen once, m = 1 / 9; the first
    # chunk alone had m = 2 / 5 (b and c seen once among 4).
    unseen, missing = _queries(chunks[0])
    assert_allclose(
        vae.score_samples(unseen)[0] - vae.score_samples(missing)[0], np.log(1 / 9), atol=1e-12
    )
    single = VAETransformer(**TINY).partial_fit(chunks[0])
    assert_allclose(
        single.score_samples(unseen)[0] - single.score_samples(_queries(chunks[0])[1])[0],
        np.log(2 / 5),
        atol=1e-12,
    )
    # A warm-started fit counts the data it is given (fitting the same data twice
    # does not halve m).
    warm = _fit(VAETransformer(**TINY, warm_start=True), _table())
    _fit(warm, _table())
    unseen, missing = _queries(_table())
    assert_allclose(
        warm.score_samples(unseen)[0] - warm.score_samples(missing)[0], np.log(MASS), atol=1e-12
    )


def test_sample_and_transform_and_given_stay_with_seen_labels(vae):
    # The training table has missing labels, so samples keep them (missing="auto").
    assert set(vae.sample(200, random_state=0, missing=False)["c"]) <= {"a", "b", "c", "d"}
    unseen, missing = _queries(_table())
    assert_array_equal(vae.transform(unseen), vae.transform(missing))
    with pytest.raises(ValueError, match="'Djibouti' \\(row 0\\), a category not seen in fit"):
        vae.sample(1, given={"c": "Djibouti"})


def test_the_imputer_conditions_on_an_unseen_label_as_missing_and_returns_it():
    X = _table()
    imputer = _fit(
        VAEImputer(VAETransformer(**TINY), n_estimators=2, n_importance_samples=20, random_state=0),
        X,
    )
    unseen, missing = _queries(X)
    unseen.loc[0, "x"] = missing.loc[0, "x"] = np.nan
    filled, reference = imputer.transform(unseen), imputer.transform(missing)
    assert filled.loc[0, "c"] == "Djibouti"
    pd.testing.assert_series_equal(filled["x"], reference["x"])


def test_saved_counts_round_trip_and_damaged_counts_are_refused(vae):
    unseen, _ = _queries(_table())
    loaded = pickle.loads(pickle.dumps(vae))
    assert_array_equal(loaded.score_samples(unseen), vae.score_samples(unseen))
    assert np.isfinite(loaded.score_samples(unseen)).all()
    # A file without counts loads as the model before them: m = 0.
    assert _without_counts(vae).score_samples(unseen)[0] == -np.inf
    for counts, reason in [
        ([None, np.array([8, 6, 1])], r"_label_counts\[1\] has shape \(3,\)"),
        ([None, np.array([8, 6, -1, 1])], r"_label_counts\[1\] holds a negative count"),
        ([np.array([1]), np.array([8, 6, 1, 1])], "holds counts for a column without labels"),
        ([np.array([8, 6, 1, 1])], "not a list of 2 entries"),
    ]:
        state = vae.__getstate__()
        state["_label_counts"] = counts
        with pytest.raises(ValueError, match=reason):
            VAETransformer.__new__(VAETransformer).__setstate__(state)


# ------------------------------------------------------------ histogram


def test_histogram_gives_an_unseen_label_log_m_and_a_seen_one_log_of_one_minus_m():
    X = _table()
    hist = HistogramDensity().fit(X)
    unseen, missing = _queries(X)
    scores, reference = hist.score_samples(unseen), hist.score_samples(missing)
    assert_allclose(scores[0], reference[0] + np.log(MASS), rtol=0, atol=1e-12)
    # A seen label k: (1 - m) (c_k + alpha) / (n + alpha K), alpha = 1, K = 4 labels.
    counts = {"a": 8, "b": 6, "c": 1, "d": 1}
    label = X["c"][1]
    with_label = scores[1] - hist.score_samples(unseen.iloc[[1]].assign(c=None))[0]
    assert_allclose(with_label, np.log1p(-MASS) + np.log((counts[label] + 1) / (16 + 4)))


def test_histogram_of_one_label_column_sums_to_one_with_the_unseen_outcome():
    hist = HistogramDensity().fit(pd.DataFrame({"c": LABELS}))
    scores = hist.score_samples(pd.DataFrame({"c": ["a", "b", "c", "d", "new"]}))
    assert_allclose(np.exp(scores).sum(), 1.0, rtol=1e-14)
    assert scores[4] == np.log(MASS)


def test_a_column_of_labels_each_seen_once_keeps_mass_for_its_seen_labels():
    # An identifier column: m = 3 / (3 + 1), so a seen label keeps 1 - m = 1 / 4 of
    # its smoothed frequency (1 + alpha) / (n + alpha K) = 2 / 6, alpha = 1, K = 3.
    hist = HistogramDensity().fit(pd.DataFrame({"id": ["u", "v", "w"]}))
    assert_allclose(
        hist.score_samples(pd.DataFrame({"id": ["u", "z"]})),
        [np.log(1 / 4 * 2 / 6), np.log(3 / 4)],
        rtol=0,
        atol=1e-12,
    )


def test_a_damaged_histogram_count_is_refused():
    hist = HistogramDensity().fit(_table())
    state = hist.__getstate__()
    state["bin_counts_"] = [state["bin_counts_"][0], np.array([8, 6, -1, 1])]
    with pytest.raises(ValueError, match=r"bin_counts_\[1\] holds a negative count"):
        HistogramDensity.__new__(HistogramDensity).__setstate__(state)


# ------------------------------------------------------------- detector


def test_the_detector_flags_a_label_not_seen_in_fit_by_its_lower_score():
    X = _table(["a", "b"] * 150)  # n = 300, no label seen once: m = 1 / 301
    detector = _fit(DensityOutlierDetector(VAETransformer(**TINY), cv=2, random_state=0), X)
    unseen, missing = _queries(X)
    assert_allclose(
        detector.decision_function(unseen)[0],
        detector.decision_function(missing)[0] + np.log(1 / 301),
        atol=1e-12,
    )
    assert detector.predict(unseen)[0] == -1
    assert_array_equal(detector.predict(unseen)[1:], detector.predict(missing)[1:])


def test_a_model_saved_without_counts_gives_an_unseen_label_minus_inf_and_the_detector_flags_it():
    X = _table(["a", "b"] * 15)
    detector = _fit(
        DensityOutlierDetector(
            VAETransformer(**TINY), background=HistogramDensity(), cv=2, random_state=0
        ),
        X,
    )
    detector.estimator_ = _without_counts(detector.estimator_)
    unseen, _ = _queries(X)
    assert detector.decision_function(unseen)[0] == -np.inf  # not NaN with a background
    assert detector.predict(unseen)[0] == -1
    assert np.isfinite(detector.decision_function(unseen)[1:]).all()


class _SeenRowsOnly(HistogramDensity):
    """A density of the training rows alone: every other row has log-density -inf."""

    def fit(self, X, y=None):
        self.rows_ = {tuple(row) for row in np.asarray(X).tolist()}
        return super().fit(X)

    def score_samples(self, X):
        seen = [tuple(row) in self.rows_ for row in np.asarray(X).tolist()]
        return np.where(seen, super().score_samples(X), -np.inf)


def test_the_detector_refuses_a_threshold_when_no_held_out_row_has_a_density():
    X = np.random.default_rng(0).normal(size=(20, 2))
    message = (
        "None of the 20 rows held out to set the threshold could be scored by the "
        "_SeenRowsOnly fitted on the other rows: each has log-density -inf under it"
    )
    with pytest.raises(ValueError, match=message):
        DensityOutlierDetector(_SeenRowsOnly(), cv=2, random_state=0).fit(X)


def test_a_declared_category_absent_from_fit_is_a_seen_label_not_one_seen_once():
    X = pd.DataFrame({"c": pd.Categorical(LABELS, categories=["a", "b", "c", "d", "e"])})
    hist = HistogramDensity().fit(X)
    scores = hist.score_samples(pd.DataFrame({"c": ["e", "new"]}))
    assert scores[1] == np.log(MASS)  # e, counted 0 times, is not among the n1 = 2
    # e has its smoothed frequency alpha / (n + alpha K), alpha = 1, K = 5, times 1 - m.
    assert_allclose(scores[0], np.log1p(-MASS) + np.log(1 / (16 + 5)))


# ----------------------------------------------------------- integer levels

# Levels 1..5 of an integer column: counts 1: 2, 2: 1, 3: 5, 4: 0, 5: 1 (n = 9), so
# n1 = 2 levels seen once and m = 2 / (9 + 1).
LEVELS = [1, 1, 2, 3, 3, 3, 3, 3, 5]
LEVEL_MASS = 2 / 10


def _levels_table(levels=LEVELS, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=len(levels)), "k": np.array(levels)})


@pytest.fixture(scope="module")
def leveled():
    return _fit(VAETransformer(**TINY), _levels_table())


def test_a_column_of_few_integers_is_a_categorical_over_its_levels_under_auto():
    X = _levels_table().assign(
        f=np.where(np.arange(9) % 3, 2.0, np.nan),
        wide=np.arange(9) * 4,
        ten=[0, 1, 2, 3, 4, 5, 6, 7, 9],
        eleven=[0, 1, 2, 3, 4, 5, 6, 7, 10],
    )
    columns = {c.name: c for c in _fit(VAETransformer(**TINY), X).schema_.columns_}
    assert (columns["k"].likelihood, columns["k"].dequantize) == ("categorical", False)
    assert columns["ten"].likelihood == "categorical"
    assert (columns["eleven"].likelihood, columns["eleven"].dequantize) == ("gaussian", True)
    # A float column of integers with missing values too; 33 integers are too many.
    assert columns["f"].likelihood == "point_mass"
    assert (columns["wide"].likelihood, columns["wide"].dequantize) == ("gaussian", True)
    # dequantize=True or False keeps the dequantised Gaussian of integer dtypes.
    for dequantize in (True, False):
        vae = _fit(VAETransformer(**TINY, dequantize=dequantize), X)
        assert vae.schema_.columns_[1].likelihood == "gaussian"
    # The histogram bins integer columns itself.
    assert HistogramDensity().fit(X).schema_.columns_[1].likelihood == "gaussian"


@pytest.mark.parametrize("method", ["score_samples", "log_likelihood"])
def test_an_integer_beyond_the_levels_scores_its_row_missing_plus_a_geometric_tail(leveled, method):
    X = _levels_table()
    kwargs = {} if method == "score_samples" else {"n_importance_samples": 4, "random_state": 0}
    score = getattr(leveled, method)
    # k steps below 1 or above 5 (a non-integer counts as the integer below it).
    beyond = X.iloc[[0, 1, 2, 3]].assign(k=[0, -2, 6, 8.5])
    steps = np.array([1, 3, 1, 3])
    reference = score(beyond.assign(k=np.nan), **kwargs)
    assert_allclose(
        score(beyond, **kwargs),
        reference + np.log(LEVEL_MASS / 2) - steps * np.log(2),
        rtol=0,
        atol=1e-12,
    )
    # A seen level shifts by log(1 - m) from the model without counts.
    unshifted = getattr(_without_counts(leveled), method)(X, **kwargs)
    assert_allclose(score(X, **kwargs) - unshifted, np.log1p(-LEVEL_MASS), rtol=0, atol=1e-12)


def test_one_integer_column_is_a_proper_distribution_over_all_integers():
    vae = _fit(
        VAETransformer(n_components=1, hidden_layer_sizes=(8,), max_iter=50, random_state=0),
        pd.DataFrame({"k": LEVELS}),
    )
    integers = np.arange(-60, 67)
    scores = vae.log_likelihood(
        pd.DataFrame({"k": integers}), n_importance_samples=20_000, random_state=0
    )
    # The tails hold m, each side half, to within 2**-55; the levels share 1 - m, by
    # an unbiased IWAE estimate within about 0.3% at this K, as for labels above.
    inside = (integers >= 1) & (integers <= 5)
    assert_allclose(np.exp(scores[~inside]).sum(), LEVEL_MASS, rtol=1e-12)
    assert np.exp(scores[inside]).sum() == pytest.approx(1 - LEVEL_MASS, abs=0.01)
    # Samples stay on the levels, from the smallest to the largest seen in fit.
    assert set(vae.sample(200, random_state=0)["k"]) <= {1, 2, 3, 4, 5}


def test_a_constant_integer_column_reserves_mass_for_the_other_integers():
    X = pd.DataFrame({"x": np.random.default_rng(0).normal(size=9), "k": np.full(9, 7)})
    vae = _fit(VAETransformer(**TINY), X)
    assert vae.schema_.columns_[1].likelihood == "point_mass"
    rows = X.iloc[:3].assign(k=[7, 9, 5])
    reference = vae.score_samples(rows.assign(k=np.nan))
    # n = 9 entries, none of a level seen once: m = max(0, 1) / 10.
    assert_allclose(
        vae.score_samples(rows) - reference,
        [np.log1p(-0.1), np.log(0.05) - 2 * np.log(2), np.log(0.05) - 2 * np.log(2)],
        rtol=0,
        atol=1e-12,
    )
    assert (vae.sample(20, random_state=0)["k"] == 7).all()


def test_partial_fit_keeps_the_first_levels_and_counts_only_values_on_them():
    vae = VAETransformer(**TINY)
    vae.partial_fit(_levels_table())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.partial_fit(_levels_table([5, 9, 9, 2], seed=1))  # 9 is beyond the levels
    column = vae.schema_.columns_[1]
    assert (column.low, column.high) == (1, 5)
    # Counts 1: 2, 2: 2, 3: 5, 4: 0, 5: 2 (n = 11): no level seen once, m = 1 / 12.
    assert_array_equal(vae._label_counts[1], [2, 2, 5, 0, 2])
    rows = _levels_table().iloc[:1].assign(k=7)
    assert_allclose(
        vae.score_samples(rows) - vae.score_samples(rows.assign(k=np.nan)),
        np.log(1 / 24) - 2 * np.log(2),
        atol=1e-12,
    )


def test_saved_level_counts_round_trip_and_damaged_ones_are_refused(leveled):
    X = _levels_table().assign(k=[0, 1, 2, 3, 4, 5, 6, 7, 8])
    loaded = pickle.loads(pickle.dumps(leveled))
    assert_array_equal(loaded.score_samples(X), leveled.score_samples(X))
    state = leveled.__getstate__()
    state["_label_counts"] = [None, np.array([2, 1, 5, 0])]
    with pytest.raises(ValueError, match=r"_label_counts\[1\] has shape \(4,\)"):
        VAETransformer.__new__(VAETransformer).__setstate__(state)
