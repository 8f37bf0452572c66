"""The per-column rule: float columns of integers as integers, constant columns as point masses."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_vae import HistogramDensity, VAEImputer, VAETransformer
from sklearn_vae._data import row_hashed_uniform

TINY = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)


def _fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence
        return estimator.fit(X)


def _answers(n=200, seed=0):
    """A 3-level answer stored as float beside a normal column."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"answer": rng.integers(1, 4, n).astype(float), "x": rng.normal(size=n)})


# ------------------------------------------------------- float columns of integers


def test_a_float_column_of_integers_is_dequantised_in_the_histograms_units():
    df = _answers()
    # (Under "auto", three levels are a categorical over them: tests/test_unseen.py.)
    vae = _fit(VAETransformer(**TINY, dequantize=True), df)
    assert [(c.likelihood, c.dequantize) for c in vae.schema_.columns_] == [
        ("gaussian", True),
        ("gaussian", False),
    ]
    # The answer's score is the density of answer + U(0, 1), U a fixed
    # function of the row: the units of a probability of the integers.
    only = df.assign(x=np.nan)
    noise = row_hashed_uniform(only.to_numpy())[:, 0]
    assert_array_equal(
        vae.score_samples(only), vae.score_samples(only.assign(answer=only.answer + noise))
    )
    # The histogram bins the answer by unit-width integer bins: its density
    # there is the frequency of each level, a probability in the same units.
    hist = HistogramDensity().fit(df)
    assert_array_equal(hist.bin_edges_[0], [1.0, 2.0, 3.0, 4.0])
    frequencies = df.answer.value_counts(normalize=True).sort_index().to_numpy()
    assert np.allclose(
        np.exp(hist.score_samples(only)[:3]), frequencies[df.answer[:3].astype(int) - 1], rtol=0.05
    )


def test_dequantize_true_fits_a_mixed_table_and_false_keeps_the_raw_gaussian():
    df = _answers()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        vae = _fit(VAETransformer(**TINY, dequantize=True), df)
    assert [c.dequantize for c in vae.schema_.columns_] == [True, False]
    with pytest.warns(UserWarning, match="integer-valued columns, but its column 'answer' is"):
        raw = VAETransformer(**TINY, dequantize=False).fit(df)
    assert [c.dequantize for c in raw.schema_.columns_] == [False, False]
    # True asks for dequantisation: a table without a column of integers is refused.
    with pytest.raises(
        ValueError, match=r"dequantize=True requires integer-valued X, but X\[0, 'x'\]"
    ):
        _fit(VAETransformer(**TINY, dequantize=True), df[["x"]])


def test_samples_of_a_float_column_of_integers_are_integer_valued_floats():
    df = _answers()
    X = df.to_numpy()
    for data in (df, X):
        samples = _fit(VAETransformer(**TINY), data).sample(300, random_state=0)
        answer = np.asarray(samples)[:, 0]
        assert answer.dtype == np.float64
        assert_array_equal(answer, np.floor(answer))
        assert answer.min() >= 1 and answer.max() <= 3
        hist = HistogramDensity().fit(data).sample(300, random_state=0)
        assert_array_equal(np.asarray(hist)[:, 0], np.floor(np.asarray(hist)[:, 0]))


def test_a_held_out_non_integer_is_scored_as_it_is_without_changing_the_other_rows():
    df = _answers()
    vae = _fit(VAETransformer(**TINY), df)
    rows = df[:5]
    odd = pd.concat([rows, rows[:1].assign(answer=2.5)], ignore_index=True)
    scores = vae.score_samples(odd)
    # The integers keep their noise beside a non-integer; 2.5 gets none.
    assert_array_equal(scores[:5], vae.score_samples(rows))
    assert scores[5] == vae.score_samples(odd[5:])[0]
    assert np.isfinite(scores[5])


def test_continuous_columns_are_untouched_by_the_rule():
    X = np.random.default_rng(0).normal(size=(60, 3))
    X[::7, 1] = np.nan
    auto = _fit(VAETransformer(**TINY), X)
    off = _fit(VAETransformer(**TINY, dequantize=False), X)
    assert_array_equal(auto.transform(X), off.transform(X))
    assert_array_equal(auto.score_samples(X), off.score_samples(X))
    assert_array_equal(auto.sample(5, random_state=0), off.sample(5, random_state=0))


# ------------------------------------------------------------------- point masses


def _with_constants(n=60, seed=0):
    rng = np.random.default_rng(seed)
    base = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    constants = pd.DataFrame(
        {
            "nine": np.full(n, 9.0),
            "half": np.full(n, 0.5),
            "four": np.full(n, 4, dtype=np.int64),
            "flag": np.zeros(n, dtype=bool),
            "label": ["x"] * n,
        }
    )
    return base, pd.concat([base, constants], axis=1)


CONSTANTS = {"nine": 9.0, "half": 0.5, "four": 4, "flag": False, "label": "x"}


def test_constant_columns_are_point_masses_that_sample_their_value():
    _, df = _with_constants()
    vae = _fit(VAETransformer(**TINY), df)
    assert [c.likelihood for c in vae.schema_.columns_][2:] == ["point_mass"] * 5
    samples = vae.sample(50, random_state=0)
    for name, value in CONSTANTS.items():
        assert samples[name].dtype == df[name].dtype
        assert (samples[name] == value).all()
    hist = HistogramDensity().fit(df).sample(50, random_state=0)
    for name, value in CONSTANTS.items():
        assert hist[name].dtype == df[name].dtype
        assert (hist[name] == value).all()


def test_a_constant_column_adds_log_one_minus_m_or_zero_and_another_value_its_tail():
    base, df = _with_constants()
    # The point masses take no input and no output of the network: the same
    # model as without them.
    with_constants = _fit(VAETransformer(**TINY), df)
    without = _fit(VAETransformer(**TINY), base)
    assert_array_equal(with_constants.transform(df), without.transform(base))
    # An integer or a label constant is one level that keeps m = 1 / (n + 1) for
    # the other values (tests/test_unseen.py): its value adds log(1 - m), a float
    # or a boolean constant exactly 0.
    shift = 3 * np.log1p(-1 / (len(df) + 1))
    iwae = dict(n_importance_samples=10, random_state=0)
    for method, kwargs in (("score_samples", {}), ("log_likelihood", iwae)):
        got = getattr(with_constants, method)(df, **kwargs)
        assert_allclose(got, getattr(without, method)(base, **kwargs) + shift, rtol=0, atol=1e-12)
    hist = HistogramDensity().fit(df)
    expected = HistogramDensity().fit(base).score_samples(base) + shift
    assert_allclose(hist.score_samples(df), expected, rtol=0, atol=1e-12)
    for name, other in {"half": 0.25, "flag": True}.items():
        changed = df[:3].assign(**{name: other})
        assert_array_equal(with_constants.score_samples(changed), [-np.inf] * 3)
        assert_array_equal(with_constants.log_likelihood(changed, **iwae), [-np.inf] * 3)
        assert_array_equal(hist.score_samples(changed), [-np.inf] * 3)
    # Another integer: missing, plus its tail log(m / 2) - s log 2, s steps away.
    changed = df[:3].assign(four=[5, 2, 4])
    missing = with_constants.score_samples(changed.assign(four=np.nan))
    m = 1 / (len(df) + 1)
    tails = [np.log(m / 2) - np.log(2), np.log(m / 2) - 2 * np.log(2), np.log1p(-m)]
    assert_allclose(with_constants.score_samples(changed), missing + tails, rtol=0, atol=1e-12)


def test_a_constant_array_column_with_missing_entries_is_sampled_and_imputed_as_its_value():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=60), rng.normal(size=60), np.full(60, 9.0)])
    X[::4, 2] = np.nan
    X[1::4, 0] = np.nan
    vae = _fit(VAETransformer(**TINY), X)
    assert vae.schema_.columns_[2].likelihood == "point_mass"
    assert_array_equal(vae.sample(20, random_state=0, missing=False)[:, 2], 9.0)
    scores = vae.score_samples(np.array([[0.0, 0.0, 9.0], [0.0, 0.0, 8.0], [0.0, 0.0, np.nan]]))
    # 45 observed entries of 9: m = 1 / 46; 8 is one step below, so its row scores
    # as the row with it missing (the same draws) plus its tail.
    assert np.isfinite(scores[0])
    assert_allclose(scores[1] - scores[2], np.log(1 / 92) - np.log(2), rtol=0, atol=1e-12)
    imputer = VAEImputer(estimator=VAETransformer(**TINY), n_estimators=1, random_state=0)
    filled = _fit(imputer, X).transform(X)
    assert_array_equal(filled[:, 2], 9.0)
    assert_array_equal(filled[~np.isnan(X)], X[~np.isnan(X)])
    # A value of probability 0 is kept as given, and conditions on nothing.
    odd = imputer.transform(np.array([[np.nan, 0.5, 1000.0]]))
    assert_array_equal(
        odd, [[imputer.transform(np.array([[np.nan, 0.5, 9.0]]))[0, 0], 0.5, 1000.0]]
    )


def test_imputer_fills_constant_table_columns_with_their_value():
    _, df = _with_constants()
    missing = df.astype({"flag": "boolean", "four": "Int64"})
    for name in CONSTANTS:
        missing.loc[::3, name] = None
    missing.loc[1::3, "a"] = np.nan
    imputer = VAEImputer(estimator=VAETransformer(**TINY), n_estimators=1, random_state=0)
    filled = _fit(imputer, missing).transform(missing)
    for name, value in CONSTANTS.items():
        assert (filled[name] == value).all()
        assert filled[name].dtype == missing[name].dtype


def test_more_training_data_with_a_second_value_of_a_point_mass_is_refused():
    _, df = _with_constants()
    vae = _fit(VAETransformer(**TINY), df[:30])
    with pytest.raises(ValueError, match=r"Column 'nine' held one value in fit \(9 as"):
        vae.partial_fit(df[30:].assign(nine=8.0))
    assert vae.n_iter_ == 3  # left as it was


def test_point_masses_and_dequantised_columns_are_saved_and_checked_at_load():
    _, df = _with_constants()
    df = df.assign(answer=np.arange(len(df)) % 30 * 1.0)  # 30 levels: dequantised
    vae = _fit(VAETransformer(**TINY), df)
    loaded = pickle.loads(pickle.dumps(vae))
    assert_array_equal(loaded.score_samples(df), vae.score_samples(df))
    assert_array_equal(loaded.sample(5, random_state=0), vae.sample(5, random_state=0))
    state = vae.__getstate__()
    state["schema_"]["columns_"][2]["value"] = 8.0
    with pytest.raises(ValueError, match="point masses .* are not the schema's constant columns"):
        VAETransformer().__setstate__(state)
    state = vae.__getstate__()
    state["_dequantized"] = np.zeros(len(df.columns), dtype=bool)
    with pytest.raises(ValueError, match="_dequantized is"):
        VAETransformer().__setstate__(state)
    hist = HistogramDensity().fit(df)
    state = hist.__getstate__()
    state["_point_values"] = np.full(len(df.columns), np.nan)
    with pytest.raises(ValueError, match=r"_point_values\[2\] is nan, but column 'nine'"):
        HistogramDensity().__setstate__(state)
    # A histogram saved before point masses has none.
    state = hist.__getstate__()
    del state["_point_values"]
    old = HistogramDensity()
    old.__setstate__(
        {
            **state,
            "schema_": {
                **state["schema_"],
                "columns_": [{**c, "value": None} for c in state["schema_"]["columns_"]],
            },
        }
    )
    assert np.isnan(old._point_values).all()
