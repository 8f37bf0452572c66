"""Data access: row batches for skorch, one summary pass over the columns, standardisation.

Rows are sliced, never indexed one by one, and every pass over ``X`` reads it
in chunks of rows, so a ``numpy.memmap`` is never copied whole.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ._power import fit_lambda, yeo_johnson, yeo_johnson_inverse, yeo_johnson_log_derivative
from ._random import permutation, uniform

__all__ = [
    "RowDataset",
    "BatchIterator",
    "iter_batches",
    "iter_row_chunks",
    "first_non_integer",
    "integer_valued_columns",
    "is_integer_array",
    "column_mean_std",
    "column_statistics",
    "power_of_two_divisor",
    "partial_moments",
    "combine_moments",
    "ColumnSummary",
    "summarise_columns",
    "Standardisation",
    "strided_rows",
    "row_hashed_uniform",
    "row_keyed_normal",
]


class RowDataset(torch.utils.data.Dataset):
    """Rows of a 2-D array (in memory or a ``numpy.memmap``), as float32 batches.

    Only the rows of a batch are read and converted, so neither a float32 copy
    of the whole array nor a per-row Python call is ever made. Missing entries
    stay NaN.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated data; it is never modified.
    indices : ndarray of int, default=None
        Rows of ``X`` that make up the dataset; all rows when None.
    dequantize : None, "fresh" or "hashed", default=None
        Uniform noise ``U(0, 1)`` added to every batch of integer data: None
        adds none, ``"fresh"`` draws new noise for every batch from the
        seeded section's generator (training, :mod:`._random`), and ``"hashed"`` adds
        :func:`row_hashed_uniform` noise, a fixed function of each row's
        values, to the integers only (validation and scoring: other values
        are already continuous).
    columns : ndarray of bool of shape (n_features,), default=None
        The columns that get the noise; all when None.
    standardisation : Standardisation, default=None
        Applied in float64 to every batch, after the noise (which is in the
        units of ``X``) and before the cast to ``dtype``, so values of any
        finite magnitude reach float32 as standardised numbers.
    """

    def __init__(self, X, indices=None, *, dequantize=None, columns=None, standardisation=None):
        self.X = X
        self.indices = indices
        self.dequantize = dequantize
        self.columns = columns
        self.standardisation = standardisation

    def __len__(self):
        return self.X.shape[0] if self.indices is None else len(self.indices)

    def batch(self, positions, dtype=np.float32):
        """Tensor of the rows at ``positions`` (a slice or sorted ints)."""
        rows = positions if self.indices is None else self.indices[positions]
        standardisation = self.standardisation
        # Standardised data are read in float64 and cast once standardised.
        read = dtype if standardisation is None else np.float64
        batch = np.asarray(self.X[rows], dtype=read)
        if self.dequantize == "fresh":
            # Drawn in float32, as many values as the batch holds, whatever ``read``.
            noise = uniform(batch.shape).numpy()
            if self.columns is not None:
                noise = noise * self.columns.astype(np.float32)
            batch = batch + noise
        elif self.dequantize == "hashed":
            batch = add_hashed_noise(batch, self.columns)
        if standardisation is not None:
            batch = standardisation.transform(batch).astype(dtype, copy=False)
        elif not batch.flags.writeable:  # a view of read-only input: copy the batch only
            batch = batch.copy()
        return torch.from_numpy(batch)

    def __getitem__(self, i):
        return self.batch(slice(i, i + 1))[0]

    def n_batches(self, batch_size):
        """Number of batches of ``batch_size`` rows in an epoch."""
        return -(-len(self) // batch_size)

    def batches(self, batch_size, shuffle=False):
        """Yield the tensors of an epoch's batches, in a seeded random order if ``shuffle``.

        Shuffling draws a permutation from the seeded section's generator
        (:mod:`._random`).
        """
        n = len(self)
        order = permutation(n).numpy() if shuffle else None
        for start in range(0, n, batch_size):
            if order is None:
                positions = slice(start, start + batch_size)
            else:
                # Sorting inside a batch keeps memmap reads sequential and
                # does not change which rows form the batch.
                positions = np.sort(order[start : start + batch_size])
            yield self.batch(positions)


class BatchIterator:
    """Iterable over ``(X_batch, None)`` pairs, used as skorch's iterator.

    skorch calls it as ``iterator(dataset, batch_size=..., shuffle=...)``; the
    dataset makes the batches (``dataset.batches``), so a dataset that streams
    its rows from elsewhere trains through the same net.
    """

    def __init__(self, dataset, batch_size, shuffle=False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return self.dataset.n_batches(self.batch_size)

    def __iter__(self):
        for batch in self.dataset.batches(self.batch_size, self.shuffle):
            yield batch, None


def iter_batches(
    X, batch_size, dtype=np.float32, dequantize=None, columns=None, standardisation=None
):
    """Yield tensors of consecutive row batches of ``X``, converted one at a time."""
    dataset = RowDataset(X, dequantize=dequantize, columns=columns, standardisation=standardisation)
    for start in range(0, len(dataset), batch_size):
        yield dataset.batch(slice(start, start + batch_size), dtype=dtype)


# Stands for a missing entry when hashing a row (beyond float32's exact integers).
_MISSING_HASH = -(2.0**53)
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(h):
    """The SplitMix64 finaliser: a bijective mix of 64-bit integers (wrapping)."""
    h = h + _GOLDEN_GAMMA
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def add_hashed_noise(batch, columns=None):
    """``batch`` plus :func:`row_hashed_uniform` noise on the integers of ``columns`` (None: all).

    How dequantised integers are scored: other values are continuous already
    and stay as they are. The noise is cast to ``batch``'s dtype.
    """
    noise = row_hashed_uniform(batch).astype(batch.dtype)
    if columns is not None:
        noise *= columns
    noise *= batch == np.floor(batch)
    return batch + noise


def dequantized_view(rows, dequantized):
    """``rows`` as the model scores them: row-hashed noise on the integers of the
    ``dequantized`` columns (a float64 copy), or ``rows`` themselves when there are none."""
    if dequantized is None or not np.any(dequantized):
        return rows
    return add_hashed_noise(np.asarray(rows, dtype=np.float64), dequantized)


def row_hashed_uniform(rows):
    """Uniform ``[0, 1)`` noise that is a fixed pseudo-random function of each row.

    A row of integers is hashed (SplitMix64 over its values), and the hash
    seeds one value per column. The same row gets the same noise wherever it
    stands, so scores of dequantised integer data are deterministic and do
    not depend on row order or on scoring a subset.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_features)
        Rows whose non-missing entries are integers (NaN is hashed as a
        value of its own).

    Returns
    -------
    noise : ndarray of shape (n_rows, n_features), dtype float64
    """
    rows = np.asarray(rows)
    # Integers beyond int64 (1e300, say) all cast to one value: still a fixed
    # function of the row, so the cast's warning is silenced.
    with np.errstate(invalid="ignore"):
        values = np.where(np.isnan(rows), _MISSING_HASH, rows).astype(np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        h = np.zeros(values.shape[0], dtype=np.uint64)
        for column in values.T:
            h = _splitmix64(h ^ column)
        columns = np.arange(1, values.shape[1] + 1, dtype=np.uint64)
        bits = _splitmix64(h[:, None] + columns * _GOLDEN_GAMMA)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


# Salts the keys of row_keyed_normal, so its stream differs from row_hashed_uniform's.
_NORMAL_SALT = np.uint64(0x5EED0F5C0E5A3B1D)
# The bits of every missing entry (NaN) of a float32 row, whatever its payload.
_NAN_BITS = np.float32(np.nan).view(np.uint32)


def row_keyed_normal(rows, n_draws, n_components):
    """Standard normal draws that are a fixed pseudo-random function of each row.

    The row's key is a multilinear hash of its entries' float32 bit patterns
    (NaN as one pattern, ``-0.0`` as ``0.0``): their sum weighted by fixed
    odd 64-bit multipliers, one per column, wrapping, so rows that differ in
    one entry always get different keys. The key, mixed by SplitMix64,
    seeds a SplitMix64 stream turned into normals by the Box-Muller
    transform. The same row gets the same draws wherever it
    stands and whatever its batch-mates, and different rows get independent
    draws, so a Monte Carlo score built on them is deterministic and
    invariant to row order and to scoring a subset.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_features), dtype float32
        The rows as the model sees them.
    n_draws : int
        Draws per row.
    n_components : int
        Size of each draw.

    Returns
    -------
    draws : ndarray of shape (n_draws, n_rows, n_components), dtype float32
    """
    rows = np.ascontiguousarray(rows, dtype=np.float32) + np.float32(0.0)  # -0.0 becomes 0.0
    bits = np.where(np.isnan(rows), _NAN_BITS, rows.view(np.uint32)).astype(np.uint64)
    counters = np.arange(1, n_draws * n_components + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        columns = np.arange(1, rows.shape[1] + 1, dtype=np.uint64)
        multipliers = _splitmix64(columns * _GOLDEN_GAMMA) | np.uint64(1)
        key = _splitmix64((bits * multipliers).sum(axis=1, dtype=np.uint64) ^ _NORMAL_SALT)
        stream = _splitmix64(key[:, None] + counters * _GOLDEN_GAMMA)
    # Each 64-bit output gives Box-Muller's two uniforms, 32 bits each; 1 - u is in (0, 1].
    upper = (stream >> np.uint64(32)).astype(np.float64) * 2.0**-32
    lower = (stream & np.uint64(0xFFFFFFFF)).astype(np.float64) * 2.0**-32
    normal = np.sqrt(-2.0 * np.log1p(-upper)) * np.cos(2.0 * np.pi * lower)
    return normal.reshape(len(rows), n_draws, n_components).transpose(1, 0, 2).astype(np.float32)


def iter_row_chunks(X, chunk_rows=8192):
    """Yield ``(start, X[start:start + chunk_rows])`` over the rows of ``X``."""
    for start in range(0, X.shape[0], chunk_rows):
        yield start, X[start : start + chunk_rows]


def first_non_integer(X):
    """``(row, column)`` of the first non-integer entry of ``X``, or None; read in chunks.

    Missing entries (NaN) are skipped.
    """
    for start, chunk in iter_row_chunks(X):
        with np.errstate(invalid="ignore"):
            fractional = (chunk != np.round(chunk)) & ~np.isnan(chunk)
        if fractional.any():
            # The first True in row-major order, without listing every fractional entry.
            row, col = np.unravel_index(np.argmax(fractional), fractional.shape)
            return int(start + row), int(col)
    return None


def integer_valued_columns(X):
    """Boolean mask of the columns of ``X`` whose observed entries are all integers."""
    integer = np.ones(X.shape[1], dtype=bool)
    for _, chunk in iter_row_chunks(X):
        with np.errstate(invalid="ignore"):
            integer &= ~((chunk != np.round(chunk)) & ~np.isnan(chunk)).any(axis=0)
    return integer


@dataclass(frozen=True)
class ColumnSummary:
    """What one pass over the rows of ``X`` learns of each column.

    Every check, warning and statistic of a fit reads it, so the training
    data is read once for all of them (the exact moments of
    :func:`column_statistics` need the range first, and take two more).

    Attributes
    ----------
    low, high : ndarray of shape (n_features,)
        Smallest and largest observed values; 0 for a column with no
        observed entry.
    n_observed : ndarray of shape (n_features,)
        Number of observed (not NaN) entries.
    fraction_row : ndarray of shape (n_features,)
        Row of the first entry that is not an integer, -1 where every
        observed entry is one.
    fraction_value : ndarray of shape (n_features,)
        That entry's value (NaN where there is none).
    """

    low: np.ndarray
    high: np.ndarray
    n_observed: np.ndarray
    fraction_row: np.ndarray
    fraction_value: np.ndarray

    @property
    def integer(self):
        """Boolean mask of the columns whose observed entries are all integers."""
        return self.fraction_row < 0

    @property
    def largest_magnitude(self):
        """Per column, the largest absolute observed value."""
        return np.maximum(np.abs(self.low), np.abs(self.high))

    def select(self, columns):
        """The summary of the columns ``columns`` (a mask or positions)."""
        return ColumnSummary(
            self.low[columns],
            self.high[columns],
            self.n_observed[columns],
            self.fraction_row[columns],
            self.fraction_value[columns],
        )

    def first_non_integer(self):
        """``(row, column)`` of the first non-integer entry in row-major order, or None."""
        if self.integer.all():
            return None
        rows = np.where(self.integer, np.iinfo(np.int64).max, self.fraction_row)
        col = int(np.argmin(rows))  # the first column of the smallest row
        return int(rows[col]), col

    def support_bounds(self, columns):
        """``(2, n_features)``: the training range of ``columns``, -inf and inf elsewhere.

        Inferred values of a dequantised integer column are clipped to it.
        """
        return np.where(columns, np.stack([self.low, self.high]), np.array([[-np.inf], [np.inf]]))


def summarise_columns(X, chunk_rows=8192):
    """The :class:`ColumnSummary` of ``X``, from one pass over its rows in chunks.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated float data; NaN marks a missing entry.
    chunk_rows : int, default=8192
        Rows read at a time.

    Returns
    -------
    summary : ColumnSummary
    """
    if hasattr(X, "summary"):  # a stream of partitions learned it in its own pass
        return X.summary
    n_features = X.shape[1]
    low, high = np.full(n_features, np.inf), np.full(n_features, -np.inf)
    n_observed = np.zeros(n_features, dtype=np.int64)
    fraction_row = np.full(n_features, -1, dtype=np.int64)
    fraction_value = np.full(n_features, np.nan)
    for start, chunk in iter_row_chunks(X, chunk_rows):
        missing = np.isnan(chunk)
        n_observed += len(chunk) - missing.sum(axis=0)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing chunk column
            np.fmin(low, np.nanmin(chunk, axis=0), out=low)
            np.fmax(high, np.nanmax(chunk, axis=0), out=high)
            fractional = (chunk != np.round(chunk)) & ~missing
        new = fractional.any(axis=0) & (fraction_row < 0)
        if new.any():
            rows = np.argmax(fractional[:, new], axis=0)
            fraction_row[new] = start + rows
            fraction_value[new] = chunk[rows, np.flatnonzero(new)]
    seen = low <= high
    return ColumnSummary(
        np.where(seen, low, 0.0),
        np.where(seen, high, 0.0),
        n_observed,
        fraction_row,
        fraction_value,
    )


def power_of_two_divisor(summary):
    """Per column, the power of two ``d`` with ``1 <= max |x| / d < 2`` (of a ColumnSummary)."""
    _, exponent = np.frexp(summary.largest_magnitude)
    return np.ldexp(1.0, exponent - 1)


def partial_moments(X, divisor, chunk_rows=8192):
    """``(count, mean, squares)`` of ``X / divisor`` per column, from two passes in chunks.

    ``count`` is the number of observed entries (at least 1, as a float),
    ``squares`` the sum of squared deviations from ``mean``. Missing entries
    are skipped. :func:`combine_moments` merges those of several row blocks.
    """
    total = np.zeros(X.shape[1])
    count = np.zeros(X.shape[1])
    for _, chunk in iter_row_chunks(X, chunk_rows):
        total += np.nansum(chunk / divisor, axis=0, dtype=np.float64)
        count += np.sum(~np.isnan(chunk), axis=0)
    count = np.maximum(count, 1)
    mean = total / count
    squares = np.zeros(X.shape[1])
    for _, chunk in iter_row_chunks(X, chunk_rows):
        squares += np.nansum((chunk / divisor - mean) ** 2, axis=0)
    return count, mean, squares


def combine_moments(parts, divisor):
    """The :func:`partial_moments` of the union of row blocks, in units of ``divisor``.

    Parameters
    ----------
    parts : list of (n_observed, mean, squares, block_divisor)
        Each block's number of observed entries (0 allowed) and its moments
        in units of its own power-of-two divisor, at most ``divisor``: the
        rescaling is by a power of two, exact.
    divisor : ndarray of shape (n_features,)
        The divisor of the union (:func:`power_of_two_divisor` of its summary).

    Returns
    -------
    count, mean, squares : ndarray of shape (n_features,)
        As :func:`partial_moments` returns them; the blocks are merged with the
        pairwise update of Chan, Golub and LeVeque, which keeps the squares'
        sum free of cancellation.
    """
    count = np.zeros(len(divisor))
    mean = np.zeros(len(divisor))
    squares = np.zeros(len(divisor))
    for n_block, block_mean, block_squares, block_divisor in parts:
        n_block = np.asarray(n_block, dtype=np.float64)
        ratio = block_divisor / divisor
        block_mean, block_squares = block_mean * ratio, block_squares * ratio**2
        total = count + n_block
        share = np.divide(n_block, total, out=np.zeros_like(total), where=total > 0)
        delta = block_mean - mean
        mean = mean + delta * share
        squares = squares + block_squares + delta**2 * count * share
        count = total
    return np.maximum(count, 1), mean, squares


def column_statistics(X, chunk_rows=8192, *, dequantized=False, summary=None, moments=None):
    """Per-column mean and standard deviation of ``X``, computed without overflow.

    Three passes in float64 over row chunks, so a ``numpy.memmap`` is never
    copied whole: the columns' ranges (read from ``summary``, a
    :class:`ColumnSummary` of ``X``, when given), then the mean and the variance of
    ``X / d``, where the divisor ``d`` is the power of two with ``1 <= max |x|
    / d < 2``. Dividing by a power of two is exact, so the statistics are
    those of ``X`` to the last bit, and no sum overflows: finite data give
    finite statistics at any scale, 1e-300 or 1e300. Missing entries (NaN)
    are skipped. ``moments``, the ``(count, mean, squares)`` of ``X / d``
    when they are known (:func:`combine_moments` of a Dask collection's
    partitions), replaces the two passes; ``X`` is then not read.

    A column is constant when its variance is within the rounding error of
    its own values (``StandardScaler``'s test, relative to the column's
    magnitude). It is centred on its midrange and gets a standard deviation
    of 1, as in ``StandardScaler``, or its half-range where that is larger
    (near 1e300 rounding alone spreads a column by 1e284), so its training
    values stay within 2 of its centre once standardised. Where
    ``dequantized`` (a bool, or one per column) is True, the moments are those
    of ``X + U``, ``U ~ U(0, 1)`` independent of ``X``: the mean plus 1/2 and
    the variance plus 1/12 (so no such column is constant).

    Returns
    -------
    mean, std : ndarray of shape (n_features,)
        In units of ``divisor``: the moments of ``X / divisor``, finite and
        normal numbers for any finite ``X`` (in the units of ``X`` the
        standard deviation of subnormal data would round to 0).
    divisor : ndarray of shape (n_features,)
        The power of two ``d`` of each column (at least 1 for a constant
        one): :class:`Standardisation` computes ``(x / d - mean) / std``,
        which does not overflow for any training value.
    """
    if summary is None:
        summary = summarise_columns(X, chunk_rows)
    low, high = summary.low, summary.high
    divisor = power_of_two_divisor(summary)
    if moments is None:
        moments = partial_moments(X, divisor, chunk_rows)
    count, mean, squares = moments
    variance = squares / count
    eps = np.finfo(np.float64).eps
    constant = variance <= count * eps * variance + (count * np.abs(mean) * eps) ** 2
    dequantized = np.broadcast_to(np.asarray(dequantized, dtype=bool), mean.shape)
    # An integer column's divisor is at least 1: (1 / d)**2 does not overflow.
    variance[dequantized] += (1 / divisor[dequantized]) ** 2 / 12
    mean[dequantized] += 0.5 / divisor[dequantized]
    std = np.sqrt(variance)
    unit = constant & ~dequantized
    half_range = high / 2 - low / 2
    unit_divisor = np.maximum(divisor, 1.0)
    mean[unit] = ((low + half_range) / unit_divisor)[unit]
    std[unit] = (np.maximum(half_range, 1.0) / unit_divisor)[unit]
    divisor[unit] = unit_divisor[unit]
    return mean, std, divisor


def column_mean_std(X, chunk_rows=8192, *, dequantized=False):
    """Per-column mean and standard deviation of ``X`` in its units; see ``column_statistics``."""
    mean, std, divisor = column_statistics(X, chunk_rows, dequantized=dequantized)
    return mean * divisor, std * divisor


class Standardisation:
    """The float64 map ``x -> (x - loc) / scale`` of some columns, power-mapped, and its inverse.

    It is computed as ``(x / d - loc_d) / scale_d`` with the power of two
    ``d`` and the moments of ``X / d`` of :func:`column_statistics`, which is
    exact and does not overflow for any finite training value. A column with
    a Yeo–Johnson exponent other than 1 (:mod:`._power`) is then mapped by
    ``(psi(u; lambda) - shift) / spread``. Columns not in ``columns`` pass
    unchanged.

    Parameters
    ----------
    loc, scale, divisor : ndarray of shape (n_features,)
        As returned by :func:`column_statistics`: ``loc`` and ``scale`` in
        units of ``divisor``.
    columns : ndarray of bool of shape (n_features,)
        The columns that are standardised.
    lambdas, shift, spread : ndarray of shape (n_features,), default=None
        Each column's Yeo–Johnson exponent and the centre and scale of the
        mapped column (1, 0 and 1, the identity, when None):
        :meth:`with_power_map` fits them.
    noisy : ndarray of bool of shape (n_features,), default=None
        The dequantised columns (none when None): the model sees their
        integers plus noise, and their power terms of the log-Jacobian are
        taken at the value the model scores, ``x`` plus
        :func:`add_hashed_noise`'s noise.

    Attributes
    ----------
    column_log_jacobian : ndarray of shape (n_features,)
        The constant part of ``log |dt / dx|``, ``-log scale_d - log d - log
        spread``, of each column, in float64 (0 for the columns that pass
        unchanged). A power-mapped entry adds ``log psi'(u)``, which depends
        on its value.
    log_jacobian_total : float
        Their sum.
    power : ndarray of bool of shape (n_features,)
        The power-mapped columns.
    """

    def __init__(
        self, loc, scale, divisor, columns, lambdas=None, shift=None, spread=None, noisy=None
    ):
        self.columns = np.asarray(columns, dtype=bool)
        keep = ~self.columns
        self._loc = np.where(keep, 0.0, loc)
        self._scale = np.where(keep, 1.0, scale)
        self.divisor = np.where(keep, 1.0, divisor)
        ones = np.ones(len(self.columns))
        self.lambdas = np.where(keep, 1.0, ones if lambdas is None else lambdas)
        self.power = self.columns & (self.lambdas != 1.0)
        self.shift = np.where(self.power, 0.0 if shift is None else shift, 0.0)
        self.spread = np.where(self.power, 1.0 if spread is None else spread, 1.0)
        self.noisy = np.zeros_like(self.columns) if noisy is None else np.asarray(noisy, bool)
        self.column_log_jacobian = -(
            np.log(self._scale) + np.log(self.divisor) + np.log(self.spread)
        )
        self.log_jacobian_total = float(self.column_log_jacobian.sum())

    def arguments(self):
        """The constructor's arguments that rebuild this map exactly (a saved model's)."""
        return {
            "loc": self._loc,
            "scale": self._scale,
            "divisor": self.divisor,
            "columns": self.columns,
            "lambdas": self.lambdas,
            "shift": self.shift,
            "spread": self.spread,
            "noisy": self.noisy,
        }

    def with_power_map(self, sample, columns, noisy):
        """This map with Yeo–Johnson exponents fitted to ``sample`` (rows of ``X``) in ``columns``.

        The exponents are those of :func:`._power.fit_lambda` on the
        standardised ``columns`` (a boolean mask within :attr:`columns`) of
        ``sample``, with ``U(0, 1)`` noise (seeded) on the integers of the
        ``noisy`` ones; ``shift`` and ``spread`` are the mean and standard
        deviation of each mapped column there. The sample is read in chunks of
        rows, and one column is mapped at a time.
        """
        columns = np.flatnonzero(np.asarray(columns, dtype=bool) & self.columns)
        U = np.empty((sample.shape[0], len(columns)))
        # Independent noise: the row-hashed kind repeats on repeated rows,
        # and a column of few levels would look like a handful of atoms.
        noise = np.random.default_rng(0)
        for start, chunk in iter_row_chunks(sample, 1024):
            chunk = np.asarray(chunk, dtype=np.float64)
            if noisy.any():
                integers = noisy & (chunk == np.floor(chunk))
                chunk = chunk + noise.random(chunk.shape) * integers
            U[start : start + len(chunk)] = self._standardise(chunk)[:, columns]
        n_features = len(self.columns)
        lambdas, shift, spread = np.ones(n_features), np.zeros(n_features), np.ones(n_features)
        for position, j in enumerate(columns):
            values = U[:, position][~np.isnan(U[:, position])]
            lambdas[j] = fit_lambda(values)
            if lambdas[j] != 1.0:
                mapped = yeo_johnson(values, lambdas[j])
                shift[j], spread[j] = mapped.mean(), max(mapped.std(), np.finfo(float).tiny)
        arguments = {
            **self.arguments(),
            "lambdas": lambdas,
            "shift": shift,
            "spread": spread,
            "noisy": noisy,
        }
        return Standardisation(**arguments)

    @property
    def loc(self):
        """The centre of each column in the units of ``X`` (0 where unchanged)."""
        return self._loc * self.divisor

    @property
    def scale(self):
        """The scale of each column in the units of ``X`` (1 where unchanged)."""
        return self._scale * self.divisor

    def _standardise(self, X):
        """``(x / d - loc_d) / scale_d``, before the power map, in float64."""
        with np.errstate(over="ignore"):
            return (np.asarray(X, dtype=np.float64) / self.divisor - self._loc) / self._scale

    def transform(self, X):
        """Standardised float64 copy of ``X`` (NaN stays NaN)."""
        out = self._standardise(X)
        if self.power.any():
            p = self.power
            out[:, p] = (yeo_johnson(out[:, p], self.lambdas[p]) - self.shift[p]) / self.spread[p]
        return out

    def power_arguments(self):
        """``(power, lambdas, shift, spread)``: what the power map's inverse reads."""
        return self.power, self.lambdas, self.shift, self.spread

    def inverse_transform(self, T, power=True):
        """``T`` mapped back to the units of ``X``, in float64.

        With ``power=False`` the power-mapped columns of ``T`` are taken as
        already mapped back (conditional means, :func:`._power.expected_inverse`):
        only their standardisation is undone.
        """
        T = np.array(T, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            if power and self.power.any():
                p = self.power
                mapped = T[:, p] * self.spread[p] + self.shift[p]
                T[:, p] = yeo_johnson_inverse(mapped, self.lambdas[p])
            return (T * self._scale + self._loc) * self.divisor

    def log_jacobian(self, X, chunk_rows=8192):
        """Per row, ``log |dt / dx|`` summed over the row's observed standardised entries.

        A complete row of unmapped columns gets exactly the total; the terms
        of missing entries are taken off it and those of power-mapped ones
        added, so a row's value does not depend on the other rows.
        """
        out = np.full(X.shape[0], self.log_jacobian_total)
        if not self.columns.any():
            return out
        for start, chunk in iter_row_chunks(X, chunk_rows):
            out[start : start + len(chunk)] += self._entry_terms(chunk)
        return out

    def mean_log_jacobian(self, X, rows=None, chunk_rows=8192):
        """Mean of :meth:`log_jacobian` over ``rows`` of ``X`` (all when None), in chunks."""
        n_rows = X.shape[0] if rows is None else len(rows)
        if not self.columns.any() or n_rows == 0:
            return self.log_jacobian_total
        total = 0.0
        for start in range(0, n_rows, chunk_rows):
            where = slice(start, start + chunk_rows)
            total += self._entry_terms(X[where] if rows is None else X[rows[where]]).sum()
        return self.log_jacobian_total + total / n_rows

    def _entry_terms(self, chunk):
        """Per row of ``chunk``, what its values add to the total: the power map's
        ``log psi'`` of its observed entries, less the constant terms of its missing ones."""
        missing = np.isnan(chunk[:, self.columns])
        terms = np.zeros(len(chunk))
        if missing.any():
            terms -= np.where(missing, self.column_log_jacobian[self.columns], 0.0).sum(axis=1)
        if self.power.any():
            p = self.power
            if (p & self.noisy).any():
                chunk = add_hashed_noise(np.asarray(chunk, dtype=np.float64), self.noisy)
            u = self._standardise(chunk)[:, p]
            terms += np.nansum(yeo_johnson_log_derivative(u, self.lambdas[p]), axis=1)
        return terms


def strided_rows(X, max_rows):
    """Every ``k``-th row of ``X`` from the first, at most ``max_rows`` of them, in float64.

    ``X`` is an array (a ``numpy.memmap`` is read at those rows only) or a
    stream of partitions with its own ``strided_rows``.
    """
    if hasattr(X, "strided_rows"):
        return X.strided_rows(max_rows)
    step = max(-(-X.shape[0] // max_rows), 1)
    return np.asarray(X[::step], dtype=np.float64)


def is_integer_array(X):
    """Whether ``X`` is a numeric array (not a DataFrame) whose observed entries are integers."""
    if hasattr(X, "columns") or hasattr(X, "iloc"):
        return False
    X = np.asarray(X)
    if X.dtype.kind not in "biuf" or X.ndim != 2 or X.size == 0:
        return False
    X = X.astype(np.float64)
    with np.errstate(invalid="ignore"):
        observed = X[~np.isnan(X)]
    return bool(observed.size) and bool(np.all(observed == np.round(observed)))
