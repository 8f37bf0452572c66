"""Samples and decoder means keep the training dtypes: no wrap-around, no infinity.

An integer column's output is clipped to its training range (the observed
minimum and maximum, as SDV does by default), so it never wraps around its
dtype; a float column's output to its dtype's finite range, so a finite
training column never gives an infinite value. ``VAETransformer`` and
``HistogramDensity`` agree; models saved without the recorded range fall back
to the dtype's range.
"""

import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.base import BaseEstimator

from sklearn_vae import HistogramDensity, VAETransformer
from sklearn_vae._sampling import encode_given
from sklearn_vae._schema import TableSchema, validate_table

INTEGER_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float32", "float64"]
DTYPES = INTEGER_DTYPES + FLOAT_DTYPES + ["Int64"]


def _vae(**params):
    tiny = dict(n_components=1, hidden_layer_sizes=(2,), max_iter=1, random_state=0)
    return VAETransformer(**{**tiny, **params})


def _fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lattice and convergence warnings
        return estimator.fit(X)


def _limits(dtype):
    dtype = np.dtype(getattr(pd.api.types.pandas_dtype(dtype), "numpy_dtype", dtype))
    if dtype.kind == "f":
        return -float(np.finfo(dtype).max), float(np.finfo(dtype).max)
    return int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)


def _column(values, dtype):
    if dtype == "Int64":
        return pd.array(values, dtype="Int64")
    return np.array(values, dtype=dtype)


def _assert_within(samples, training):
    """Each column of ``samples`` has its training dtype, no infinity, and stays in range."""
    assert samples.dtypes.to_dict() == training.dtypes.to_dict()
    for name in training.columns:
        column, observed = samples[name], training[name].dropna()
        assert column.notna().all()
        if pd.api.types.is_integer_dtype(column.dtype):
            assert observed.min() <= column.min() and column.max() <= observed.max(), name
        else:
            low, high = _limits(column.dtype)
            assert np.isfinite(column.to_numpy(dtype=float)).all(), name
            assert low <= column.min() and column.max() <= high


# --------------------------------------------------------- the cases


def test_int8_column_near_its_maximum_never_wraps_to_negative_values():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(100, 128, 300).astype(np.int8)})
    for estimator in (_vae(max_iter=2), HistogramDensity()):
        samples = _fit(estimator, df).sample(5000, random_state=0)
        _assert_within(samples, df)
        # The model draws beyond 127 (which wrapped to -128 before): they are clipped.
        assert (samples["a"] == 127).mean() > (df["a"] == 127).mean() / 2


def test_uint64_column_near_two_to_the_64_stays_there():
    df = pd.DataFrame({"u": np.array([2**64 - 1, 2**64 - 2, 2**64 - 100], dtype=np.uint64)})
    samples = _fit(_vae(), df).sample(50, random_state=0)
    _assert_within(samples, df)  # not near 0, where the cast wrapped them
    # The histogram refuses integers beyond float64's exact ones, naming the column.
    with pytest.raises(ValueError, match="Column 'u' holds integers up to 1.84e\\+19"):
        HistogramDensity().fit(df)


@pytest.mark.parametrize("estimator", [_vae(), HistogramDensity()], ids=["vae", "histogram"])
def test_float_column_at_the_edge_of_float64_samples_no_infinity(estimator):
    df = pd.DataFrame({"f": [1.7e308, -1.7e308, 1.6e308, -1.5e308, 0.0]})
    samples = _fit(estimator, df).sample(2000, random_state=0, clip=False)
    _assert_within(samples, df)
    largest = np.finfo(np.float64).max
    # Unclipped, the draws beyond float64's range come back as its largest value.
    assert np.isin([-largest, largest], samples["f"]).any()


def test_numeric_arrays_sample_within_the_training_range_in_the_models_units():
    # A dequantised integer column of an array holds x + U(0, 1): below high + 1.
    rng = np.random.default_rng(0)
    X = rng.integers(100, 128, (300, 2)).astype(np.int8)
    samples = _fit(_vae(max_iter=2), X).sample(3000, random_state=0)
    assert samples.dtype == np.float64
    assert samples.min() >= 100 and samples.max() < 128
    assert (samples > 127).any()  # the last cell keeps its continuous draws
    hist = _fit(HistogramDensity(), X).sample(3000, random_state=0)
    assert_array_equal(hist, np.floor(hist))
    assert hist.min() == 100 and hist.max() == 127
    wide = np.array([[1.7e308, 1.0], [-1.7e308, 2.0], [1.6e308, 3.0]])
    for estimator in (_vae(), HistogramDensity()):
        assert np.isfinite(_fit(estimator, wide).sample(2000, random_state=0)).all()


def test_integer_array_modelled_as_integers_samples_within_its_training_range():
    X = np.random.default_rng(0).poisson(3.0, size=(200, 2))
    vae = _fit(_vae(likelihood="poisson"), X)
    samples = vae.sample(3000, random_state=0)
    assert_array_equal(samples, np.floor(samples))
    assert (samples.min(axis=0) >= X.min(axis=0)).all()
    assert (samples.max(axis=0) <= X.max(axis=0)).all()


def test_inverse_transform_keeps_integer_columns_within_their_training_range():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "small": rng.integers(-128, -100, 200).astype(np.int8),
            "count": pd.array(rng.poisson(3.0, 200), dtype="Int64"),
            "f": rng.normal(size=200).astype(np.float32),
        }
    )
    vae = _fit(_vae(n_components=2), df)
    far = np.array([[-1e6, 1e6], [1e6, -1e6], [1e30, 1e30], [-1e30, -1e30]])
    _assert_within(vae.inverse_transform(far), df)
    assert np.isfinite(vae.inverse_transform(far)["f"]).all()


# ----------------------------------------------------------- recorded range


def test_the_schema_records_each_numeric_columns_range_exactly():
    df = pd.DataFrame(
        {
            "u": np.array([2**64 - 1, 2**63], dtype=np.uint64),
            "n": pd.array([None, -(2**63)], dtype="Int64"),
            "f": np.array([np.nan, -2.5], dtype=np.float32),
            "s": ["a", "b"],
        }
    )
    columns = TableSchema().fit(df).columns_
    assert [(c.low, c.high) for c in columns] == [
        (2**63, 2**64 - 1),
        (-(2**63), -(2**63)),
        (-2.5, -2.5),
        (None, None),
    ]
    assert all(type(c.low) is int for c in columns[:2]) and type(columns[2].low) is float
    X = np.array([[3, -7], [9, 2**62]], dtype=np.int64)
    assert [(c.low, c.high) for c in TableSchema().fit(X).columns_] == [(3, 9), (-7, 2**62)]
    floats = np.array([[np.nan, 1.5], [0.5, -4.0], [np.nan, np.nan]])
    assert [(c.low, c.high) for c in TableSchema().fit(floats).columns_] == [
        (0.5, 0.5),
        (-4.0, 1.5),
    ]


@pytest.mark.parametrize("dtype", INTEGER_DTYPES + ["Int64"])
def test_far_decoded_values_give_the_training_extremes_exactly(dtype):
    low, high = _limits(dtype)
    df = pd.DataFrame({"i": _column([low, high, high], dtype)})
    schema = TableSchema().fit(df)
    far = np.array([[1e30], [-1e30], [float(high)], [float(low)], [np.inf], [-np.inf]])
    expected = [high, low, high, low, high, low]
    assert schema.decode(far)["i"].tolist() == expected
    assert schema.decode(far)["i"].dtype == df["i"].dtype
    inner = TableSchema().fit(pd.DataFrame({"i": _column([low + 1, high - 1], dtype)}))
    assert inner.decode(far)["i"].tolist() == [high - 1, low + 1] * 3
    inner.columns_[0].low = inner.columns_[0].high = None  # a model saved before the range
    assert inner.decode(far)["i"].tolist() == expected


def test_an_integer_array_at_any_magnitude_decodes_its_largest_value_to_itself():
    for high in (7, 2**62):
        schema = TableSchema(dequantize=True).fit(np.array([[0], [high]], dtype=np.int64))
        assert schema.decode(np.array([[float(high)], [1e30]]))[0, 0] == float(high)
        assert schema.decode(np.array([[1e30]]))[0, 0] == max(float(high), high + 1 - 2**-50)


def test_a_missing_entry_of_a_nullable_integer_column_decodes_to_na():
    schema = TableSchema().fit(pd.DataFrame({"n": pd.array([1, None, 4], dtype="Int64")}))
    decoded = schema.decode(np.array([[2.0], [np.nan], [9.0]]))["n"]
    assert decoded.dtype == "Int64" and decoded.isna().tolist() == [False, True, False]
    assert decoded[[0, 2]].tolist() == [2, 4]


def test_an_empty_array_records_no_range():
    assert [c.low for c in TableSchema().fit(np.empty((0, 2))).columns_] == [None, None]


def test_an_array_is_read_in_chunks_for_its_range():
    X = np.zeros((20_000, 1))
    X[:, 0] = np.arange(20_000) - 7.0
    X[:8192] = np.nan  # a whole first chunk missing, later chunks not
    X[10_000] = 1e6  # the largest in the second of three chunks
    column = TableSchema().fit(X).columns_[0]
    assert (column.low, column.high) == (8192 - 7.0, 1e6)


def test_more_training_data_widens_the_recorded_range():
    class Estimator(BaseEstimator):
        likelihood, dequantize = "auto", False

    estimator = Estimator()
    first = pd.DataFrame({"i": np.array([3, 5], dtype=np.int16), "s": ["a", "b"]})
    validate_table(estimator, first, reset=True)
    validate_table(estimator, first.assign(i=np.array([-2, 4], dtype=np.int16)), reset=False)
    assert estimator.schema_.columns_[0].low == 3  # scoring data changes nothing
    before = estimator.schema_
    validate_table(
        estimator,
        first.assign(i=np.array([-2, 4], dtype=np.int16)),
        reset=False,
        extend_ranges=True,
    )
    validate_table(
        estimator,
        first.assign(i=np.array([4, 40], dtype=np.int16)),
        reset=False,
        extend_ranges=True,
    )
    assert (estimator.schema_.columns_[0].low, estimator.schema_.columns_[0].high) == (-2, 40)
    assert estimator.schema_.columns_[1].low is None
    # A new schema: a fit that fails restores the old one with the estimator's attributes.
    assert (before.columns_[0].low, before.columns_[0].high) == (3, 5)
    # A chunk where the column is missing leaves its range as it was.
    holes = first.assign(i=pd.array([None, None], dtype="Int16"))
    estimator.schema_.columns_[0].dtype = holes["i"].dtype
    validate_table(estimator, holes.iloc[:1].assign(s="a"), reset=False, extend_ranges=True)
    assert (estimator.schema_.columns_[0].low, estimator.schema_.columns_[0].high) == (-2, 40)
    # A model saved before the range was recorded keeps its dtype's range.
    estimator.schema_.columns_[0].low = estimator.schema_.columns_[0].high = None
    validate_table(estimator, first, reset=False, extend_ranges=True)
    assert estimator.schema_.columns_[0].low is None
    array = Estimator()
    validate_table(array, np.array([[1.0, 2.0]]), reset=True)
    validate_table(array, np.array([[0.5, np.nan]]), reset=False, extend_ranges=True)
    assert [(c.low, c.high) for c in array.schema_.columns_] == [(0.5, 1.0), (2.0, 2.0)]


def test_a_saved_model_without_the_range_loads_and_falls_back_to_the_dtypes_range():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(100, 128, 300).astype(np.int8)})
    vae = _fit(_vae(max_iter=2), df)
    state = vae.__getstate__()
    for column in state["schema_"]["columns_"]:
        del column["low"], column["high"]  # as saved before the range was recorded
    old = VAETransformer.__new__(VAETransformer)
    old.__setstate__(state)
    assert old.schema_.columns_[0].low is None
    samples = old.sample(5000, random_state=0)["a"]
    # Clipped to int8 only: the same draws as the new model's, beyond its training range.
    assert samples.dtype == np.int8 and samples.min() < 100
    assert_array_equal(samples.clip(100, 127), vae.sample(5000, random_state=0)["a"])
    # A pickled schema of that time: its ColumnSpec objects lack the attributes.
    schema = pickle.loads(pickle.dumps(vae.schema_))
    for column in schema.columns_:
        del column.__dict__["low"], column.__dict__["high"]
    decoded = pickle.loads(pickle.dumps(schema)).decode(np.array([[300.5], [-300.0]]))
    assert decoded["a"].tolist() == [127, -128]


def test_a_model_with_a_huge_range_survives_skops():
    sio = pytest.importorskip("skops.io")
    df = pd.DataFrame({"u": np.array([2**64 - 1, 2**63 + 5], dtype=np.uint64)})
    vae = _fit(_vae(), df)
    data = sio.dumps(vae)
    loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert loaded.schema_.columns_[0].high == 2**64 - 1
    pd.testing.assert_frame_equal(loaded.sample(20, random_state=0), vae.sample(20, random_state=0))


# --------------------------------------------------------------- given values


def test_given_values_come_back_as_given_outside_the_training_range():
    df = pd.DataFrame({"i": np.array([10, 20, 30], dtype=np.int16), "f": [0.5, 1.5, 2.5]})
    schema = TableSchema().fit(df)
    given = np.array([[200.0, np.nan]])
    decoded = schema.decode(np.array([[200.0, 1.0], [200.0, 2.0]]), given=given)
    assert decoded["i"].tolist() == [200, 200] and decoded["i"].dtype == np.int16
    assert schema.decode(np.array([[200.0, 1.0]]))["i"].tolist() == [30]
    array = TableSchema().fit(df.to_numpy()[:, :1].astype(np.int16))
    assert array.decode(np.array([[200.0]]), given=given[:, :1]).tolist() == [[200.0]]
    # A dequantised integer of an array holds x + U(0, 1): just below 31.
    assert array.decode(np.array([[200.0]])).tolist() == [[np.nextafter(31.0, 0.0)]]


@pytest.mark.parametrize(
    "value, fits", [(32767, True), (-32768, True), (32768, False), (-32769, False)]
)
def test_a_given_value_outside_its_columns_dtype_is_refused(value, fits):
    df = pd.DataFrame({"i": np.array([10, 20, 30], dtype=np.int16), "f": [0.5, 1.5, 2.5]})
    vae = _fit(_vae(), df)
    if fits:
        assert encode_given(vae, {"i": value})[0, 0] == value
        return
    message = f"given sets column 'i' to {value:g}, outside the range of its dtype int16 (-32768 to"
    with pytest.raises(ValueError, match=re.escape(message)):
        vae.sample(2, given={"i": value})


def test_a_given_float_beyond_float32s_range_is_refused():
    df = pd.DataFrame({"f": np.array([0.5, 1.5], dtype=np.float32), "g": [1.0, 2.0]})
    vae = _fit(_vae(), df)
    with pytest.raises(ValueError, match="given sets column 'f' to 1e\\+39, outside"):
        encode_given(vae, {"f": 1e39})
    assert encode_given(vae, {"f": 3e38})[0, 0] == 3e38


# ----------------------------------------------------------------- property


def _edge_values(dtype):
    low, high = _limits(dtype)
    if isinstance(low, int):
        near = [low + 1, low + 2, high - 1, high - 2]
    else:
        near = [np.nextafter(low, 0.0), np.nextafter(high, 0.0), low / 2, high / 3]
    return [value for value in [low, high, 0, *near] if low <= value <= high]


@st.composite
def edge_tables(draw):
    """One- or two-column tables of a numeric dtype each, holding values at its edges."""
    n_rows = draw(st.integers(2, 8))
    columns = {}
    for j in range(draw(st.integers(1, 2))):
        dtype = draw(st.sampled_from(DTYPES))
        values = draw(st.lists(st.sampled_from(_edge_values(dtype)), min_size=n_rows))
        columns[f"c{j}"] = _column(values[:n_rows], dtype)
    return pd.DataFrame(columns)


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(df=edge_tables())
def test_samples_at_the_dtypes_edges_keep_dtype_and_range_and_are_finite(df):
    _assert_within(_fit(_vae(), df).sample(200, random_state=0), df)
    try:
        hist = _fit(HistogramDensity(), df)
    except ValueError as error:  # integers beyond float64's exact ones get no unit bins
        assert "beyond 2**53 - 2" in str(error)
        return
    _assert_within(hist.sample(200, random_state=0), df)
