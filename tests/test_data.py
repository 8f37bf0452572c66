"""Whole-batch data access, chunked statistics and the integer checks."""

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from sklearn_vae import VAETransformer
from sklearn_vae._checks import check_integer_valued
from sklearn_vae._data import (
    BatchIterator,
    RowDataset,
    Standardisation,
    _splitmix64,
    column_mean_std,
    column_statistics,
    combine_moments,
    first_non_integer,
    integer_valued_columns,
    iter_batches,
    iter_row_chunks,
    partial_moments,
    power_of_two_divisor,
    row_hashed_uniform,
    row_keyed_normal,
    summarise_columns,
)


def _X(n_samples=23, n_features=3):
    return np.arange(n_samples * n_features, dtype=np.float64).reshape(n_samples, n_features)


def test_dataset_reads_the_rows_of_its_indices_as_float32():
    X = _X()
    indices = np.array([2, 5, 7, 11])
    dataset = RowDataset(X, indices)
    assert len(dataset) == 4 and len(RowDataset(X)) == len(X)
    batch = dataset.batch(slice(1, 3))
    assert batch.dtype == torch.float32
    assert_array_equal(batch.numpy(), X[[5, 7]])
    assert_array_equal(dataset[3].numpy(), X[11])
    assert_array_equal(RowDataset(X).batch(np.array([0, 4]), dtype=np.float64).numpy(), X[[0, 4]])


def test_dataset_never_writes_to_read_only_input():
    X = _X()
    X.flags.writeable = False
    batch = RowDataset(X).batch(slice(0, 5), dtype=np.float64)
    batch += 1  # a copy of the batch, not a view of X
    assert_array_equal(X[:5], _X()[:5])


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 5, 23, 40])
def test_batch_iterator_yields_every_row_once(shuffle, batch_size):
    X = _X()
    if shuffle:
        iterator = BatchIterator(RowDataset(X), batch_size=batch_size, shuffle=True)
    else:  # not shuffling is the default
        iterator = BatchIterator(RowDataset(X), batch_size=batch_size)
    torch.manual_seed(0)
    batches = [batch for batch, y in iterator]
    assert len(batches) == len(iterator) == -(-len(X) // batch_size)
    assert all(len(b) == batch_size for b in batches[:-1])
    rows = np.concatenate([b.numpy() for b in batches])
    if shuffle:
        assert not np.array_equal(rows, X) or batch_size >= len(X)
        rows = rows[np.argsort(rows[:, 0])]
    assert_array_equal(rows, X)


def test_iter_batches_and_row_chunks_cover_the_rows_in_order():
    X = _X()
    assert_array_equal(np.concatenate([b.numpy() for b in iter_batches(X, 4)]), X)
    chunks = list(iter_row_chunks(X, chunk_rows=10))
    assert [start for start, _ in chunks] == [0, 10, 20]
    assert_array_equal(np.concatenate([c for _, c in chunks]), X)


@pytest.mark.parametrize("chunk_rows", [1, 7, 8192])
def test_column_mean_std_equals_numpy_with_unit_scale_for_constant_columns(chunk_rows):
    X = np.random.default_rng(0).normal(5.0, 3.0, size=(50, 4))
    X[:, 1] = 1e6  # constant: unit scale, as StandardScaler
    # Constant too, but its float64 standard deviation is 2e-10, not 0, from
    # rounding: below 10 eps relative to the mean, so also a unit scale.
    X[:, 3] = 1e6 + 0.3
    mean, std = column_mean_std(X, chunk_rows)
    assert_allclose(mean, X.mean(axis=0), rtol=1e-12)
    assert_allclose(std, [X[:, 0].std(), 1.0, X[:, 2].std(), 1.0], rtol=1e-12)


def test_column_mean_std_accumulates_float32_data_in_float64():
    X = np.random.default_rng(1).normal(1000.0, 1.0, size=(5000, 2)).astype(np.float32)
    mean, std = column_mean_std(X, 700)
    assert mean.dtype == np.float64
    assert_allclose(mean, X.astype(np.float64).mean(axis=0), rtol=1e-13)
    assert_allclose(std, X.astype(np.float64).std(axis=0), rtol=1e-9)


def test_column_mean_std_of_dequantised_data_adds_the_noise_moments():
    X = np.column_stack([np.full(40, 3.0), np.arange(40.0) % 5])
    mean, std = column_mean_std(X, 7, dequantized=True)
    assert_allclose(mean, X.mean(axis=0) + 0.5, rtol=1e-12)
    assert_allclose(std, np.sqrt(X.var(axis=0) + 1 / 12), rtol=1e-12)


def test_first_non_integer_finds_the_first_entry_across_chunks():
    X = np.zeros((20_000, 3))
    assert first_non_integer(X) is None
    X[9000, 2], X[15000, 0] = 0.5, -1.25
    assert first_non_integer(X) == (9000, 2)
    X[9000, 2] = 2.0
    assert first_non_integer(X) == (15000, 0)


def test_check_integer_valued_names_the_entry_and_the_remedy():
    X = np.array([[1.0, 2.0], [3.0, 4.5]])
    with pytest.raises(
        ValueError, match=r"^needs requires integer-valued X, but X\[1, 1\] = 4.5\. Do"
    ):
        check_integer_valued(X, "needs", "Do.")
    check_integer_valued(np.round(X), "needs", "Do.")


def test_one_summary_pass_agrees_with_each_check_across_chunks():
    rng = np.random.default_rng(0)
    X = rng.integers(-5, 9, size=(20_000, 4)).astype(float)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 3] = np.nan  # no observed entry
    X[15000, 0], X[9000, 2], X[12000, 2] = 0.5, -1.25, 7.5
    summary = summarise_columns(X, chunk_rows=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert_array_equal(summary.low[:3], np.nanmin(X[:, :3], axis=0))
        assert_array_equal(summary.high[:3], np.nanmax(X[:, :3], axis=0))
    assert (summary.low[3], summary.high[3], summary.n_observed[3]) == (0.0, 0.0, 0)
    assert_array_equal(summary.n_observed, (~np.isnan(X)).sum(axis=0))
    assert_array_equal(summary.integer, integer_valued_columns(X))
    assert summary.first_non_integer() == first_non_integer(X) == (9000, 2)
    assert summary.fraction_value[2] == -1.25 and summary.fraction_row[0] == 15000
    assert_array_equal(summary.largest_magnitude[:3], np.nanmax(np.abs(X[:, :3]), axis=0))
    assert summary.select([0, 1]).first_non_integer() == (15000, 0)
    assert summary.select(np.array([False, True, False, True])).first_non_integer() is None
    bounds = summary.support_bounds(np.array([True, False, True, False]))
    assert_array_equal(bounds[:, 1], [-np.inf, np.inf])
    assert_array_equal(bounds[:, 0], [summary.low[0], summary.high[0]])
    with pytest.raises(ValueError, match=r"X\[9000, 2\] = -1.25\. Do"):
        check_integer_valued(None, "needs", "Do.", summary=summary)


def test_the_summary_gives_the_statistics_the_passes_give():
    X = np.random.default_rng(1).normal(size=(3000, 3)) * [1.0, 1e300, 1e-300]
    for got, expected in zip(
        column_statistics(X, 97, summary=summarise_columns(X, 97)),
        column_statistics(X, 97),
        strict=True,
    ):
        assert_array_equal(got, expected)


_MASK = 2**64 - 1
_GAMMA = 0x9E3779B97F4A7C15


def _reference_splitmix64(h):
    """SplitMix64's output function (Steele, Lea and Flood 2014), on Python ints."""
    h = (h + _GAMMA) & _MASK
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK
    return h ^ (h >> 31)


def _reference_row_noise(row):
    """The documented hash: SplitMix64 over a row's values, then one draw per column."""
    h = 0
    for value in row:
        h = _reference_splitmix64(h ^ (int(value) & _MASK))
    return [
        (_reference_splitmix64((h + j * _GAMMA) & _MASK) >> 11) * 2.0**-53
        for j in range(1, len(row) + 1)
    ]


def test_splitmix64_matches_the_reference_generator():
    # The first output of the reference SplitMix64 generator seeded with 0.
    assert _reference_splitmix64(0) == 0xE220A8397B1DCDAF
    h = np.array([0, 1, 2**63, _MASK, 123456789], dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = _splitmix64(h)
    assert [int(v) for v in mixed] == [_reference_splitmix64(int(v)) for v in h]


def test_row_hashed_uniform_is_the_documented_hash_of_each_row():
    X = np.array([[0, 0, 0], [3, -1, 7], [-50, 49, 2**40], [7, -1, 3]], dtype=float)
    assert_array_equal(row_hashed_uniform(X), [_reference_row_noise(row) for row in X])


@pytest.mark.parametrize("scale", [1e-12, 1e-20, 1e-30])
def test_small_scale_columns_are_standardised_and_keep_their_units(scale):
    # A column's spread is compared with its own magnitude (as StandardScaler
    # does), not with an absolute threshold: data at 1e-20 are standardised,
    # and the scores move by exactly -log(scale) per column, the Jacobian.
    X = np.random.default_rng(0).normal(size=(300, 3))
    unit = VAETransformer(n_components=1, hidden_layer_sizes=(), max_iter=5, random_state=0)
    small = clone(unit)
    unit.fit(X)
    small.fit(X * scale)
    shift = -3 * np.log(scale)
    assert_allclose(small.score_samples(X * scale), unit.score_samples(X) + shift, rtol=1e-5)


def test_constant_columns_keep_a_unit_scale_at_any_magnitude():
    for value in (0.0, 1e-30, 3.0, 1e30):
        X = np.full((50, 1), value)
        mean, std = column_mean_std(X)
        assert std[0] == 1.0 and mean[0] == value


def test_row_hashed_uniform_hashes_a_missing_entry_as_its_stand_in_value():
    # NaN is hashed as -2**53, a value no float32 integer datum takes.
    X = np.array([[np.nan, 3.0, 7.0], [3.0, np.nan, np.nan]])
    expected = [_reference_row_noise(np.where(np.isnan(row), -(2.0**53), row)) for row in X]
    assert_array_equal(row_hashed_uniform(X), expected)


def test_row_hashed_uniform_of_integers_beyond_int64_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        noise = row_hashed_uniform(np.array([[1e300, 2.0], [-1e300, 2.0]]))
    assert np.all((noise >= 0) & (noise < 1))


def test_integer_valued_columns_reads_every_chunk_column_by_column():
    # More rows than a chunk (8192): the fraction in column 0 is in the first chunk.
    X = np.zeros((8193, 3))
    X[0, 0] = 0.5
    X[1, 1] = np.nan
    X[8192, 2] = 1.5
    assert_array_equal(integer_valued_columns(X), [False, True, False])


def test_iter_batches_adds_hashed_noise_to_the_given_columns_only():
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    columns = np.array([True, False])
    batches = torch.cat(list(iter_batches(X, 2, dequantize="hashed", columns=columns)))
    noise = row_hashed_uniform(X.astype(np.float32))
    assert_allclose(batches[:, 0].numpy(), X[:, 0] + noise[:, 0], rtol=1e-6)
    assert_array_equal(batches[:, 1].numpy(), X[:, 1])


def test_column_statistics_of_a_column_with_one_observed_entry():
    X = np.array([[5.0, 1.0], [np.nan, 3.0], [np.nan, 5.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy deprecation included
        mean, std = column_mean_std(X)
    assert_allclose(mean, [5.0, 3.0])
    assert_allclose(std, [1.0, np.sqrt(8 / 3)])  # a single value is constant: unit scale


def test_keyed_normal_draws_are_a_function_of_the_row_alone():
    # The same row gets the same draws alone, in any batch and at any position;
    # NaN payloads and the sign of zero do not matter, any other bit does.
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, 4)).astype(np.float32)
    rows[3, 1] = np.nan
    draws = row_keyed_normal(rows, 3, 2)
    assert draws.shape == (3, 50, 2) and draws.dtype == np.float32
    order = rng.permutation(50)
    assert_array_equal(row_keyed_normal(rows[order], 3, 2), draws[:, order])
    assert_array_equal(row_keyed_normal(rows[3:4], 3, 2), draws[:, 3:4])
    other_nan = rows[3:4].copy()
    other_nan.view(np.uint32)[0, 1] = 0x7FC00001
    assert_array_equal(row_keyed_normal(other_nan, 3, 2), draws[:, 3:4])
    signed = np.array(
        [[0.0, 1.0], [-0.0, 1.0], [0.0, np.nextafter(np.float32(1), np.float32(2))]], np.float32
    )
    keyed = row_keyed_normal(signed, 1, 2)
    assert_array_equal(keyed[:, 0], keyed[:, 1])
    assert not np.any(keyed[:, 0] == keyed[:, 2])


def test_keyed_normal_draws_are_independent_standard_normals():
    # 20,000 distinct rows, 2 draws of 3 components: 120,000 values. Each
    # mean has standard error 1/sqrt(n), each variance sqrt(2/n), each
    # correlation (between components, draws, and a row's first entry) 1/sqrt(n),
    # and the values pass a Kolmogorov-Smirnov test at the 1e-4 level.
    from scipy.stats import kstest

    rows = np.random.default_rng(1).normal(size=(20_000, 5)).astype(np.float32)
    draws = row_keyed_normal(rows, 2, 3).astype(np.float64)
    n = len(rows)
    columns = np.concatenate([draws[0], draws[1]], axis=1)
    assert np.all(np.abs(columns.mean(axis=0)) < 4 / np.sqrt(n))
    assert np.all(np.abs(columns.var(axis=0) - 1) < 4 * np.sqrt(2 / n))
    correlations = np.corrcoef(np.column_stack([columns, rows[:, 0]]), rowvar=False)
    off = correlations[~np.eye(len(correlations), dtype=bool)]
    assert np.all(np.abs(off) < 4 / np.sqrt(n)), off
    assert kstest(draws.ravel(), "norm").pvalue > 1e-4


def test_keyed_normal_draws_differ_between_distinct_rows():
    # The key is a bijection of the weighted sum of the bit patterns, injective on
    # one-column rows, so a million distinct rows get a million distinct streams;
    # two streams agreeing in all three float32 draws by chance has probability
    # below 1e-12 here. A key that kept only some of the sum's bits (35 of 64)
    # would give about 30 pairs of rows the same draws.
    rows = np.unique(np.random.default_rng(2).normal(size=2**20).astype(np.float32))[:, None]
    draws = row_keyed_normal(rows, 1, 3)[0]
    assert len(np.unique(draws, axis=0)) == len(rows)


def test_keyed_normal_draws_depend_on_the_float32_values_whatever_the_input_dtype():
    # The draws are keyed by the rows as the model sees them, float32: float64
    # rows (with a missing entry) and nested lists get their float32 cast's draws.
    rows = np.random.default_rng(3).normal(size=(6, 3))
    rows[2, 1] = np.nan
    expected = row_keyed_normal(rows.astype(np.float32), 2, 2)
    assert_array_equal(row_keyed_normal(rows, 2, 2), expected)
    assert_array_equal(row_keyed_normal(rows.tolist(), 2, 2), expected)


@pytest.mark.parametrize("dequantize", ["fresh", "hashed"])
def test_dequantised_batches_without_standardisation_keep_the_requested_dtype(dequantize):
    # The noise is added in the dtype asked for: a float32 batch stays float32.
    X = _X(6, 2)
    columns = np.array([True, False])
    dataset = RowDataset(X, dequantize=dequantize, columns=columns)
    for dtype, torch_dtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
        batch = dataset.batch(slice(0, 6), dtype=dtype)
        assert batch.dtype == torch_dtype
        assert_array_equal(batch[:, 1].numpy(), X[:, 1])
        assert np.all((batch[:, 0].numpy() >= X[:, 0]) & (batch[:, 0].numpy() < X[:, 0] + 1))


class _RowsRead:
    """An array that records how many rows each read takes (a memmap's reads)."""

    def __init__(self, X):
        self.X, self.shape, self.rows = X, X.shape, []

    def __getitem__(self, key):
        part = self.X[key]
        self.rows.append(len(part))
        return part


def test_statistics_and_log_jacobians_read_at_most_chunk_rows_rows_at_a_time():
    # What keeps a memmap from being copied whole: every pass over X reads
    # chunk_rows rows at a time, and gives what the same chunks of an ndarray give.
    X = np.random.default_rng(0).normal(size=(30, 3))
    X[[2, 11, 29], [0, 1, 0]] = np.nan
    expected = column_statistics(X, chunk_rows=7)
    standardisation = Standardisation(*expected, [True, True, False])
    calls = [
        (lambda X: column_statistics(X, chunk_rows=7), expected),
        (lambda X: column_mean_std(X, chunk_rows=7), column_mean_std(X, chunk_rows=7)),
        (lambda X: standardisation.log_jacobian(X, chunk_rows=7), None),
        (lambda X: standardisation.mean_log_jacobian(X, chunk_rows=7), None),
        (lambda X: standardisation.mean_log_jacobian(X, np.arange(3, 30), chunk_rows=7), None),
    ]
    for call, result in calls:
        recorded = _RowsRead(X)
        value = call(recorded)
        assert recorded.rows and max(recorded.rows) <= 7
        if result is not None:
            for actual, wanted in zip(value, result, strict=True):
                assert_array_equal(actual, wanted)


def test_mean_log_jacobian_is_the_mean_of_the_rows_log_jacobians():
    # Over all rows or the given ones, across chunks, for one row or none.
    X = np.random.default_rng(1).normal(size=(9, 3))
    X[[0, 4, 5, 8], [0, 1, 0, 1]] = np.nan
    standardisation = Standardisation(np.zeros(3), [2.0, 3.0, 5.0], np.ones(3), [1, 1, 0])
    per_row = standardisation.log_jacobian(X)
    total = standardisation.log_jacobian_total
    # Means of a few logs of order 1: exact to a few ulp.
    for rows in (None, np.array([0]), np.array([1, 4, 8]), np.arange(9)):
        for chunk_rows in (1, 2, 4, 100):
            wanted = per_row.mean() if rows is None else per_row[rows].mean()
            actual = standardisation.mean_log_jacobian(X, rows, chunk_rows=chunk_rows)
            assert actual == pytest.approx(wanted, rel=8 * np.finfo(np.float64).eps)
    assert standardisation.mean_log_jacobian(X, np.array([], dtype=int)) == total
    assert per_row[0] != total


def test_combined_moments_of_row_blocks_are_those_of_the_whole_array():
    # Blocks of uneven sizes and magnitudes, one without an observed entry in a
    # column: merged (as a Dask collection's partitions are), their moments are
    # the two-pass moments of the whole array, and so are the statistics.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)) * np.array([1e-3, 1.0, 1e3, 1e300]) + np.array([5, -2, 1e4, 0])
    X[rng.uniform(size=X.shape) < 0.1] = np.nan
    X[50:60, 0] = np.nan
    X[:50, 2] *= 1e-3  # a block with a smaller power of two than the whole
    summary = summarise_columns(X)
    divisor = power_of_two_divisor(summary)
    parts = []
    for block in np.split(X, [3, 50, 60, 61, 150]):
        block_summary = summarise_columns(block)
        block_divisor = power_of_two_divisor(block_summary)
        _, mean, squares = partial_moments(block, block_divisor)
        parts.append((block_summary.n_observed, mean, squares, block_divisor))
    count, mean, squares = combine_moments(parts, divisor)
    want_count, want_mean, want_squares = partial_moments(X, divisor)
    assert_array_equal(count, want_count)
    assert_allclose(mean, want_mean, rtol=1e-13)
    assert_allclose(squares, want_squares, rtol=1e-12)
    merged = column_statistics(None, summary=summary, moments=(count, mean, squares))
    for got, want in zip(merged, column_statistics(X), strict=True):
        assert_allclose(got, want, rtol=1e-12)


def test_a_stream_of_partitions_answers_for_itself_where_a_fit_reads_an_array():
    # A Dask collection's PartitionStream supplies its summary, split, datasets
    # and Jacobian; the array code paths hand over to it (tests/test_dask.py
    # checks the stream itself).
    from sklearn_vae import _training as training

    class Stream:
        summary = summarise_columns(np.array([[1.0], [3.0]]))  # divisor 2
        moments = (np.full(1, 2.0), np.full(1, 0.25), np.full(1, 2.0))
        shape = (2, 1)

        def split(self, params, rng):
            return "train", "valid"

        def dataset(self, rows, **options):
            return RowDataset(np.ones((5, 1)), **options)

        def mean_log_jacobian(self, standardisation, rows):
            return -1.5

    stream = Stream()
    assert summarise_columns(stream) is stream.summary
    params = {"early_stopping": False}
    assert training.split_rows(stream, params, None) == ("train", "valid")
    assert len(training._dataset(stream, [0])) == 5
    assert training._mean_log_jacobian(None, stream, [0]) == -1.5
    statistics = column_statistics(stream, summary=stream.summary, moments=stream.moments)
    assert_array_equal(statistics[0], [0.25])  # the moments given, not a pass over the stream
