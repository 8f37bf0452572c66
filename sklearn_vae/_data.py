"""Whole-batch data access for skorch: rows are sliced, never indexed one by one."""

import numpy as np
import torch

__all__ = [
    "RowDataset",
    "BatchIterator",
    "iter_batches",
    "iter_row_chunks",
    "first_non_integer",
    "column_mean_std",
]


class RowDataset(torch.utils.data.Dataset):
    """Rows of a 2-D array (in memory or a ``numpy.memmap``), as float32 batches.

    Only the rows of a batch are read and converted, so neither a float32 copy
    of the whole array nor a per-row Python call is ever made.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated data; it is never modified.
    indices : ndarray of int, default=None
        Rows of ``X`` that make up the dataset; all rows when None.
    dequantize : None, "fresh" or int, default=None
        Uniform noise ``U(0, 1)`` added to every batch of integer data: None
        adds none, ``"fresh"`` draws new noise for every batch from torch's
        global generator (training), and an int seeds fixed noise, the same
        for a given batch in every epoch (validation).
    """

    def __init__(self, X, indices=None, *, dequantize=None):
        self.X = X
        self.indices = indices
        self.dequantize = dequantize

    def __len__(self):
        return self.X.shape[0] if self.indices is None else len(self.indices)

    def batch(self, positions, dtype=np.float32):
        """Tensor of the rows at ``positions`` (a slice or sorted ints)."""
        rows = positions if self.indices is None else self.indices[positions]
        batch = np.asarray(self.X[rows], dtype=dtype)
        if self.dequantize == "fresh":
            batch = torch.from_numpy(batch)
            return batch + torch.rand(batch.shape, dtype=batch.dtype)
        if self.dequantize is not None:
            # The same noise for the same batch in every epoch: seeded by the
            # batch's first position.
            first = positions.start if isinstance(positions, slice) else int(positions[0])
            noise = np.random.default_rng((self.dequantize, first)).random(batch.shape)
            return torch.from_numpy(batch + noise.astype(dtype))
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


def iter_batches(X, batch_size, dtype=np.float32):
    """Yield tensors of consecutive row batches of ``X``, converted one at a time."""
    dataset = RowDataset(X)
    for start in range(0, len(dataset), batch_size):
        yield dataset.batch(slice(start, start + batch_size), dtype=dtype)


def iter_row_chunks(X, chunk_rows=8192):
    """Yield ``(start, X[start:start + chunk_rows])`` over the rows of ``X``."""
    for start in range(0, X.shape[0], chunk_rows):
        yield start, X[start : start + chunk_rows]


def first_non_integer(X):
    """``(row, column)`` of the first non-integer entry of ``X``, or None; read in chunks."""
    for start, chunk in iter_row_chunks(X):
        fractional = np.argwhere(chunk != np.round(chunk))
        if len(fractional):
            row, col = fractional[0]
            return int(start + row), int(col)
    return None


def column_mean_std(X, chunk_rows=8192, *, dequantized=False):
    """Per-column mean and standard deviation of ``X``, read in row chunks.

    Two passes in float64 over chunks, so a ``numpy.memmap`` is never copied
    whole. Constant columns get a standard deviation of 1. With
    ``dequantized=True`` the moments are those of ``X + U``, ``U ~ U(0, 1)``
    independent of ``X``: the mean plus 1/2 and the variance plus 1/12 (so no
    column is constant).
    """
    n_samples = X.shape[0]
    mean = sum(chunk.sum(axis=0, dtype=np.float64) for _, chunk in iter_row_chunks(X, chunk_rows))
    mean = mean / n_samples
    squares = sum(((chunk - mean) ** 2).sum(axis=0) for _, chunk in iter_row_chunks(X, chunk_rows))
    if dequantized:
        return mean + 0.5, np.sqrt(squares / n_samples + 1 / 12)
    std = np.sqrt(squares / n_samples)
    # Constant columns keep a unit scale, as in StandardScaler.
    std[std < 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))] = 1.0
    return mean, std
