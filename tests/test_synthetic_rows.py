"""VAETransformer.sample as synthetic rows: the training missingness, the training range,
and one condition per row of ``given``."""

import pickle
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from _linear_gaussian import (
    assert_standard_normal,
    gaussian_conditional,
    linear_imputer,
    linear_vae_marginal,
)
from conftest import make_label_table
from numpy.testing import assert_array_equal

import sklearn_vae._sampling as sampling
from sklearn_vae import HistogramDensity, VAETransformer
from sklearn_vae._inference import impute_encoded

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TINY = {"n_components": 2, "hidden_layer_sizes": (8,), "max_iter": 2, "random_state": 0}
N_DRAWS = 4000


def _within_binomial(count, n, p, n_sd=4.0):
    """``count`` of ``n`` Bernoulli(p) draws lies within ``n_sd`` standard errors of ``n p``."""
    return abs(count - n * p) < n_sd * np.sqrt(n * p * (1 - p))


def _patterned_table(n=400):
    """Half the rows complete, 30% missing ``x`` alone, 20% missing ``k`` and ``c`` together."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "c": pd.Series(rng.choice(["a", "b"], n), dtype=object),
            "f": rng.normal(size=n).astype(np.float32),
        }
    )
    df.loc[: 0.3 * n - 1, "x"] = np.nan
    df.loc[0.3 * n : 0.5 * n - 1, ["k", "c"]] = None
    return df


@pytest.fixture(scope="module")
def patterned_vae():
    return VAETransformer(**TINY).fit(_patterned_table())


def _pattern_counts(samples):
    missing = samples.isna()
    return {
        "complete": int((~missing.any(axis=1)).sum()),
        "x": int((missing["x"] & ~missing[["k", "c", "f"]].any(axis=1)).sum()),
        "kc": int((missing["k"] & missing["c"] & ~missing[["x", "f"]].any(axis=1)).sum()),
    }


# ------------------------------------------------------------------ missingness


def test_the_record_holds_the_exact_count_of_each_training_pattern():
    # 20,000 rows span three chunks of the reading, with patterns repeated
    # across them: the record is the count of each row's pattern, in order.
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20_000, 10))
    X[rng.uniform(size=X.shape) < 0.05] = np.nan
    expected = Counter(map(tuple, np.isnan(X)))
    record = sampling.record_missingness(X)
    patterns = np.unpackbits(record["patterns"], axis=1, count=10).astype(bool)
    assert {tuple(p): c for p, c in zip(patterns, record["counts"], strict=True)} == expected
    assert [tuple(p) for p in patterns] == sorted(expected, key=lambda p: np.packbits(p).tobytes())
    assert_array_equal(record["column_counts"], np.isnan(X).sum(axis=0))
    assert record["n_rows"] == 20_000


def test_samples_reproduce_the_training_missingness_patterns(patterned_vae):
    # Each row takes a pattern of the training rows with its share: 50%
    # complete, 30% x missing, 20% k and c missing, each share within 4
    # binomial standard errors; every row has one of these patterns (x
    # missing with k, or k without c, would be a pattern never seen in fit).
    samples = patterned_vae.sample(N_DRAWS, random_state=0)
    counts = _pattern_counts(samples)
    assert sum(counts.values()) == N_DRAWS
    for name, share in {"complete": 0.5, "x": 0.3, "kc": 0.2}.items():
        assert _within_binomial(counts[name], N_DRAWS, share), (name, counts)


def test_missing_entries_keep_the_training_dtypes(patterned_vae):
    df = _patterned_table()
    samples = patterned_vae.sample(200, random_state=1)
    assert samples.dtypes.equals(df.dtypes)
    assert samples["x"].isna().any() and samples["k"].isna().any()
    assert samples["k"][samples["k"].isna()].map(lambda v: v is pd.NA).all()
    assert samples["c"][samples["c"].isna()].map(lambda v: v is None).all()


def test_observed_entries_are_those_of_complete_samples(patterned_vae):
    # The patterns are drawn apart from the values: masking changes nothing else.
    masked = patterned_vae.sample(300, random_state=2)
    complete = patterned_vae.sample(300, random_state=2, missing=False)
    assert not complete.isna().any().any()
    observed = masked.notna()
    assert masked.where(observed).equals(complete.where(observed))
    assert patterned_vae.sample(300, random_state=2, missing=True).equals(masked)


def test_a_complete_training_table_gives_complete_rows():
    df = _patterned_table().dropna().reset_index(drop=True)
    vae = VAETransformer(**TINY).fit(df)
    samples = vae.sample(500, random_state=0)
    assert not samples.isna().any().any()
    assert samples.equals(vae.sample(500, random_state=0, missing=True))


def test_numpy_integer_and_boolean_columns_become_nullable_where_entries_go_missing():
    # Only a later partial_fit chunk can leave a numpy int64 or bool column
    # missing; its samples then come back in pandas' nullable dtypes, holding pd.NA.
    rng = np.random.default_rng(6)
    first = pd.DataFrame({"i": rng.integers(0, 9, 100), "b": rng.uniform(size=100) < 0.5})
    second = first.astype({"i": float, "b": object})
    second.loc[:29, "i"] = np.nan
    second.loc[40:59, "b"] = None
    vae = VAETransformer(**TINY).partial_fit(first).partial_fit(second)
    samples = vae.sample(400, random_state=0)
    assert samples.dtypes.to_dict() == {"i": pd.Int64Dtype(), "b": pd.BooleanDtype()}
    assert _within_binomial(samples["i"].isna().sum(), 400, 30 / 200)
    assert samples["b"][samples["b"].isna()].map(lambda v: v is pd.NA).all()
    assert samples["b"].isna().any()
    assert_array_equal(vae.sample(400, random_state=0, missing=False).dtypes, [np.int64, bool])


def test_a_float_array_gets_nan():
    X = np.random.default_rng(0).normal(size=(200, 3))
    X[:100, 1] = np.nan
    samples = VAETransformer(**TINY).fit(X).sample(400, random_state=0)
    assert samples.dtype == np.float64
    assert _within_binomial(np.isnan(samples[:, 1]).sum(), 400, 0.5)
    assert not np.isnan(samples[:, [0, 2]]).any()


def test_partial_fit_accumulates_the_patterns_of_its_chunks():
    # The first chunk has x missing in 50 of its 200 rows, the second k in
    # 150 of its 200: over the 400 rows, rates of 1/8 and 3/8, never together.
    df = _patterned_table().fillna({"x": 0.0, "k": 1, "c": "a"})
    first, second = df[:200].copy(), df[200:].copy()
    first.loc[:49, "x"] = np.nan
    second.loc[250:, "k"] = pd.NA
    vae = VAETransformer(**TINY).partial_fit(first).partial_fit(second)
    samples = vae.sample(N_DRAWS, random_state=0)
    assert _within_binomial(samples["x"].isna().sum(), N_DRAWS, 50 / 400)
    assert _within_binomial(samples["k"].isna().sum(), N_DRAWS, 150 / 400)
    assert not (samples["x"].isna() & samples["k"].isna()).any()


def test_beyond_the_pattern_cap_columns_are_missing_independently(monkeypatch):
    # With a cap of 2 patterns, the 3 patterns of the table leave each
    # column's rate, drawn independently: x and k now go missing together in
    # about 0.3 * 0.2 of the rows, which the patterns never gave.
    monkeypatch.setattr(sampling, "MAX_PATTERNS", 2)
    vae = VAETransformer(**TINY).fit(_patterned_table())
    assert vae._missingness["patterns"] is None
    samples = vae.sample(N_DRAWS, random_state=0)
    missing = samples.isna()
    for column, rate in {"x": 0.3, "k": 0.2, "c": 0.2, "f": 0.0}.items():
        assert _within_binomial(missing[column].sum(), N_DRAWS, rate) or rate == 0.0
    assert not missing["f"].any()
    assert _within_binomial((missing["x"] & missing["k"]).sum(), N_DRAWS, 0.3 * 0.2)


def test_given_columns_are_never_missing(patterned_vae):
    samples = patterned_vae.sample(300, random_state=0, given={"x": 0.5}, n_importance_samples=10)
    assert_array_equal(samples["x"], 0.5)
    assert samples["k"].isna().any()


def test_bad_missing_and_clip_are_refused(patterned_vae):
    with pytest.raises(ValueError, match="missing must be 'auto', True or False, got 'yes'"):
        patterned_vae.sample(2, missing="yes")
    with pytest.raises(ValueError, match="clip must be True or False, got 1"):
        patterned_vae.sample(2, clip=1)


# ------------------------------------------------------------------ clipping


def test_numeric_samples_stay_within_the_training_range_unless_clip_is_false():
    # Two epochs leave a wide decoder: its draws leave the training range,
    # which clip=True closes and clip=False shows.
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(19, 80, 300), "x": rng.normal(size=300)})
    vae = VAETransformer(**TINY).fit(df)
    clipped = vae.sample(N_DRAWS, random_state=0)
    free = vae.sample(N_DRAWS, random_state=0, clip=False)
    assert clipped.dtypes.equals(df.dtypes) and free.dtypes.equals(df.dtypes)
    for name in df:
        low, high = df[name].min(), df[name].max()
        assert low <= clipped[name].min() and clipped[name].max() <= high
        assert free[name].min() < low or free[name].max() > high
        inside = (free[name] >= low) & (free[name] <= high)
        assert_array_equal(clipped[name][inside], free[name][inside])


def test_an_array_is_clipped_to_its_range_and_given_values_are_kept():
    X = np.random.default_rng(1).normal(size=(200, 3))
    vae = VAETransformer(**TINY).fit(X)
    samples = vae.sample(N_DRAWS, random_state=0)
    assert (samples >= X.min(axis=0)).all() and (samples <= X.max(axis=0)).all()
    assert (vae.sample(N_DRAWS, random_state=0, clip=False) > X.max(axis=0)).any()
    far = X[:, 0].max() + 1.0
    assert_array_equal(vae.sample(3, given={0: far}, n_importance_samples=5)[:, 0], far)


def test_histogram_tails_are_clipped_unless_clip_is_false():
    X = np.random.default_rng(2).normal(size=(300, 2))
    histogram = HistogramDensity().fit(X)
    clipped = histogram.sample(N_DRAWS, random_state=0)
    free = histogram.sample(N_DRAWS, random_state=0, clip=False)
    assert (clipped >= X.min(axis=0)).all() and (clipped <= X.max(axis=0)).all()
    assert ((free < X.min(axis=0)) | (free > X.max(axis=0))).any()
    assert_array_equal(clipped, np.clip(free, X.min(axis=0), X.max(axis=0)))


def test_histogram_integer_tails_leave_the_range_only_with_clip_false():
    counts = pd.DataFrame({"k": np.random.default_rng(3).poisson(3, 300)})
    histogram = HistogramDensity().fit(counts)
    clipped = histogram.sample(N_DRAWS, random_state=0)["k"]
    free = histogram.sample(N_DRAWS, random_state=0, clip=False)["k"]
    assert clipped.between(counts["k"].min(), counts["k"].max()).all()
    assert not free.between(counts["k"].min(), counts["k"].max()).all()
    assert free.dtype == counts["k"].dtype


# ----------------------------------------------------------- given, row by row


@pytest.fixture(scope="module")
def table_vae():
    return VAETransformer(**TINY).fit(make_label_table(seed=4))


def test_each_row_of_given_gets_its_draws_in_order(table_vae):
    # y = 5 lies beyond the training maximum: a given value is never clipped.
    given = pd.DataFrame({"s": ["a", None, "c"], "n": [None, 7, 3], "y": [5.0, None, None]})
    samples = table_vae.sample(2, random_state=0, given=given, n_importance_samples=20)
    assert len(samples) == 6
    assert_array_equal(samples["s"][[0, 1, 4, 5]], ["a", "a", "c", "c"])
    assert_array_equal(samples["y"][[0, 1]], 5.0)
    assert_array_equal(samples["n"][2:], [7, 7, 3, 3])
    assert samples.dtypes.equals(table_vae.sample(1).dtypes)


def test_one_row_of_given_gives_the_single_condition_draws(table_vae):
    # A one-row given draws as a single condition always did: its encoded row
    # repeated n_samples times, filled by one call of impute_encoded with the
    # same random_state, decoded; a dict and a one-row DataFrame alike.
    row = pd.DataFrame({"s": ["b"], "n": [None], "y": [-0.5]})
    encoded = np.repeat([[1.0, np.nan, -0.5]], 5, axis=0)
    filled = impute_encoded(
        [table_vae._fitted_model()],
        encoded,
        table_vae.schema_,
        sample=True,
        n_samples=30,
        random_state=3,
    )
    expected = table_vae.schema_.decode(filled, given=encoded, clip=True)
    for given in ({"s": "b", "y": -0.5}, row, row.astype(object)):
        drawn = table_vae.sample(5, random_state=3, given=given, n_importance_samples=30)
        assert drawn.equals(expected)


def test_a_row_with_nothing_given_draws_from_the_joint():
    # On the linear-Gaussian model, the rows of the first condition follow
    # its exact conditional, those of the second (nothing given) the exact
    # marginal N(mean, covariance), both within sampling error.
    vae = linear_imputer().estimator_
    given = np.array([[4.0, np.nan, np.nan, 1.5, np.nan], [np.nan] * 5])
    n = 400
    samples = vae.sample(n, random_state=0, given=given, missing=False, clip=False)
    assert samples.shape == (2 * n, 5)
    mean, covariance = linear_vae_marginal(vae)
    observed = ~np.isnan(given[0])
    exact, conditional_cov = gaussian_conditional(mean, covariance, observed, given[0, observed])
    assert_array_equal(samples[:n, observed], np.tile(given[0, observed], (n, 1)))
    assert_standard_normal(samples[:n, ~observed] - exact, conditional_cov)
    assert_standard_normal(samples[n:] - mean, covariance)


def test_rows_with_different_conditions_follow_their_own_conditional_means():
    # Three conditions on x_0 and x_3: each block of draws is whitened by its
    # own exact conditional; swapping the blocks' conditions would fail.
    vae = linear_imputer().estimator_
    values = np.array([[4.0, 1.5], [-3.0, 0.0], [0.5, -2.0]])
    given = np.full((3, 5), np.nan)
    given[:, [0, 3]] = values
    n = 300
    samples = vae.sample(n, random_state=1, given=given, missing=False, clip=False)
    mean, covariance = linear_vae_marginal(vae)
    observed = ~np.isnan(given[0])
    exact, conditional_cov = gaussian_conditional(mean, covariance, observed, values)
    for i in range(3):
        block = samples[i * n : (i + 1) * n]
        assert_standard_normal(block[:, ~observed] - exact[i], conditional_cov)


def test_a_given_value_out_of_its_dtype_is_refused_in_any_row(table_vae):
    given = pd.DataFrame({"s": ["a", None], "n": [None, 2.0**70], "y": [None, None]})
    with pytest.raises(ValueError, match="given sets column 'n' to 1.18059e\\+21"):
        table_vae.sample(1, given=given)


# ------------------------------------------------------------------ persistence


def test_a_saved_model_samples_the_same_rows(patterned_vae):
    loaded = pickle.loads(pickle.dumps(patterned_vae))
    assert loaded.sample(300, random_state=5).equals(patterned_vae.sample(300, random_state=5))
    sio = pytest.importorskip("skops.io")
    loaded = sio.loads(sio.dumps(patterned_vae), trusted=["sklearn_vae._vae.VAETransformer"])
    assert loaded.sample(300, random_state=5).equals(patterned_vae.sample(300, random_state=5))


def test_a_model_saved_without_missingness_samples_complete_rows(patterned_vae):
    state = patterned_vae.__getstate__()
    del state["_missingness"]
    older = VAETransformer.__new__(VAETransformer)
    older.__setstate__(state)
    samples = older.sample(300, random_state=0)
    assert not samples.isna().any().any()
    assert samples.equals(patterned_vae.sample(300, random_state=0, missing=False))
    with pytest.raises(ValueError, match="missing=True needs the missing entries"):
        older.sample(3, missing=True)


def _damage(record, part):
    record = dict(record)
    if part == "counts":
        record["counts"] = record["counts"] + np.eye(len(record["counts"]), dtype=np.int64)[0]
    elif part == "pattern_width":
        record["patterns"] = np.zeros((3, 2), np.uint8)
    elif part == "pattern_dtype":
        record["patterns"] = record["patterns"].astype(np.int64)
    elif part == "padding":
        record["patterns"] = record["patterns"] | np.uint8(1)
    elif part == "column_counts":
        record["column_counts"] = record["column_counts"][:-1]
    elif part == "n_rows":
        record["n_rows"] = -1
    else:
        del record["counts"]
    return record


@pytest.mark.parametrize(
    "part",
    ["counts", "pattern_width", "pattern_dtype", "padding", "column_counts", "n_rows", "key"],
)
def test_damaged_missingness_is_refused_at_load(patterned_vae, part):
    state = patterned_vae.__getstate__()
    state["_missingness"] = _damage(state["_missingness"], part)
    with pytest.raises(ValueError, match="(?s)does not match the model.*_missingness"):
        VAETransformer.__new__(VAETransformer).__setstate__(state)
