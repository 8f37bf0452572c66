"""Whole-batch data access for skorch: rows are sliced, never indexed one by one."""

import numpy as np
import torch

__all__ = [
    "RowDataset",
    "BatchIterator",
    "iter_batches",
    "iter_row_chunks",
    "first_non_integer",
    "integer_valued_columns",
    "is_integer_array",
    "check_integer_valued",
    "column_mean_std",
    "row_hashed_uniform",
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
        adds none, ``"fresh"`` draws new noise for every batch from torch's
        global generator (training), and ``"hashed"`` adds
        :func:`row_hashed_uniform` noise, a fixed function of each row's
        values (validation and scoring).
    columns : ndarray of bool of shape (n_features,), default=None
        The columns that get the noise; all when None.
    """

    def __init__(self, X, indices=None, *, dequantize=None, columns=None):
        self.X = X
        self.indices = indices
        self.dequantize = dequantize
        self.columns = columns

    def __len__(self):
        return self.X.shape[0] if self.indices is None else len(self.indices)

    def batch(self, positions, dtype=np.float32):
        """Tensor of the rows at ``positions`` (a slice or sorted ints)."""
        rows = positions if self.indices is None else self.indices[positions]
        batch = np.asarray(self.X[rows], dtype=dtype)
        if self.dequantize == "fresh":
            batch = torch.from_numpy(batch)
            noise = torch.rand(batch.shape, dtype=batch.dtype)
            if self.columns is not None:
                noise = noise * torch.from_numpy(self.columns).to(batch.dtype)
            return batch + noise
        if self.dequantize == "hashed":
            noise = row_hashed_uniform(batch).astype(dtype)
            if self.columns is not None:
                noise *= self.columns
            return torch.from_numpy(batch + noise)
        if not batch.flags.writeable:  # a view of read-only input: copy the batch only
            batch = batch.copy()
        return torch.from_numpy(batch)

    def __getitem__(self, i):
        return self.batch(slice(i, i + 1))[0]


class BatchIterator:
    """Iterable over ``(X_batch, None)`` pairs, used as skorch's iterator.

    skorch calls it as ``iterator(dataset, batch_size=..., shuffle=...)``.
    Shuffling draws a permutation from torch's global generator, which the
    estimator seeds from ``random_state``.
    """

    def __init__(self, dataset, batch_size, shuffle=False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = torch.randperm(n).numpy() if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                positions = slice(start, start + self.batch_size)
            else:
                # Sorting inside a batch keeps memmap reads sequential and
                # does not change which rows form the batch.
                positions = np.sort(order[start : start + self.batch_size])
            yield self.dataset.batch(positions), None


def iter_batches(X, batch_size, dtype=np.float32, dequantize=None, columns=None):
    """Yield tensors of consecutive row batches of ``X``, converted one at a time."""
    dataset = RowDataset(X, dequantize=dequantize, columns=columns)
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


def check_integer_valued(X, requirement, remedy, names=None):
    """Raise ``ValueError`` naming the first non-integer entry of ``X``, if any.

    The message reads "``requirement`` requires integer-valued X, but
    X[row, col] = value. ``remedy``", where ``col`` is the column's position,
    or its name in ``names`` when given.
    """
    position = first_non_integer(X)
    if position is not None:
        row, col = position
        column = col if names is None else repr(names[col])
        raise ValueError(
            f"{requirement} requires integer-valued X, but X[{row}, {column}] = "
            f"{X[row, col]:g}. {remedy}"
        )


def column_mean_std(X, chunk_rows=8192, *, dequantized=False):
    """Per-column mean and standard deviation of the observed entries of ``X``.

    Two passes in float64 over row chunks, so a ``numpy.memmap`` is never
    copied whole; missing entries (NaN) are skipped. Constant columns get a
    standard deviation of 1. Where ``dequantized`` (a bool, or one per column)
    is True, the moments are those of ``X + U``, ``U ~ U(0, 1)`` independent
    of ``X``: the mean plus 1/2 and the variance plus 1/12 (so no such column
    is constant).
    """
    total = np.zeros(X.shape[1])
    count = np.zeros(X.shape[1])
    for _, chunk in iter_row_chunks(X, chunk_rows):
        total += np.nansum(chunk, axis=0, dtype=np.float64)
        count += np.sum(~np.isnan(chunk), axis=0)
    count = np.maximum(count, 1)
    mean = total / count
    squares = np.zeros(X.shape[1])
    for _, chunk in iter_row_chunks(X, chunk_rows):
        squares += np.nansum((chunk - mean) ** 2, axis=0)
    variance = squares / count
    # Constant columns keep a unit scale. The test is StandardScaler's: the
    # variance is within the rounding error of the column's own values, so a
    # column of any magnitude, 1e-30 or 1e30, is standardised.
    eps = np.finfo(np.float64).eps
    constant = variance <= count * eps * variance + (count * np.abs(mean) * eps) ** 2
    dequantized = np.broadcast_to(np.asarray(dequantized, dtype=bool), mean.shape)
    std = np.sqrt(variance + dequantized / 12)
    mean = mean + dequantized / 2
    std[constant & ~dequantized] = 1.0
    return mean, std


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
