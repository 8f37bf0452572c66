"""Dask collections: fits that stream partitions, lazy transforms and scores.

Imported only when a Dask DataFrame or array reaches an estimator method, so
``import sklearn_vae`` never imports dask. A fit reads the collection in one
summary pass, in which every partition is reduced to a few numbers per
column (counts, ranges, the first non-integer entry, exact moments, label
counts) that are combined on the client into what an in-memory fit learns of
its data; training then computes one partition at a time (see
:class:`PartitionStream`).
"""

import warnings
from numbers import Integral

import dask
import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import _check_feature_names, _check_n_features

from ._checks import short_list, short_repr
from ._column_kinds import no_recognition
from ._data import (
    ColumnSummary,
    RowDataset,
    combine_moments,
    dequantized_view,
    partial_moments,
    power_of_two_divisor,
    summarise_columns,
)
from ._random import draw_seed, permutation
from ._schema import TableSchema, check_observed, is_dataframe, validate_table

__all__ = ["PartitionStream", "training_stream", "map_rows", "map_sample"]


# ------------------------------------------------------------ partitions


def _meta(X):
    """The empty partition Dask declares for ``X``: a DataFrame, or an array of its dtype."""
    if is_dataframe(X):
        return X._meta
    if getattr(X, "ndim", None) != 2 or not hasattr(X, "rechunk"):
        raise TypeError(
            f"Expected a Dask DataFrame or a 2-D Dask array, got {type(X).__name__} "
            f"with {getattr(X, 'ndim', '?')} dimension(s). Convert it, for example with "
            "to_dask_array() or reshape(-1, 1)."
        )
    if X.dtype.kind not in "fiu":
        raise TypeError(
            f"A Dask array must be numeric; X has dtype {X.dtype}. Pass a Dask DataFrame to "
            "model booleans, strings or other labels."
        )
    return np.empty((0, X.shape[1]), dtype=X.dtype)


def _blocks(X):
    """``(blocks, meta, is_frame)``: one Delayed per partition (row block) of ``X``."""
    meta = _meta(X)
    if is_dataframe(X):
        return list(X.to_delayed()), meta, True
    # One block per row range: every partition holds all the columns.
    return list(X.rechunk({1: -1}).to_delayed().ravel()), meta, False


def _same_dtype(a, b):
    if isinstance(a, pd.CategoricalDtype) or isinstance(b, pd.CategoricalDtype):
        # Categories may differ between partitions: the model takes their union.
        return isinstance(a, pd.CategoricalDtype) and isinstance(b, pd.CategoricalDtype)
    return a == b


def check_block(block, meta, position):
    """Raise ``ValueError`` when partition ``position`` disagrees with the collection's meta."""
    where = f"Partition {position} of X"
    if not is_dataframe(meta):
        if block.ndim != 2 or block.shape[1] != meta.shape[1] or block.dtype != meta.dtype:
            raise ValueError(
                f"{where} has shape {block.shape} and dtype {block.dtype}, but the Dask array "
                f"declares {meta.shape[1]} columns of dtype {meta.dtype}. Every block must "
                "hold the declared columns and dtype: fix the function that builds the "
                "blocks, or cast with X.astype(...)."
            )
        return
    columns, declared = list(block.columns), list(meta.columns)
    if columns != declared:
        missing = [name for name in declared if name not in columns]
        extra = [name for name in columns if name not in declared]
        raise ValueError(
            f"{where} has the columns {short_list(columns, 10)}, but the Dask DataFrame "
            f"declares {short_list(declared, 10)} (its meta; missing: {short_list(missing)}, "
            f"unexpected: {short_list(extra)}). Every partition must hold the declared "
            "columns in order: select them in the function that builds the partitions, "
            "or pass meta= to match what it returns."
        )
    for j, name in enumerate(declared):
        have, want = block.dtypes.iloc[j], meta.dtypes.iloc[j]
        if not _same_dtype(have, want):
            raise ValueError(
                f"{where} has column {short_repr(name)} of dtype {have}, but the Dask "
                f"DataFrame declares {want} (its meta). Every partition must hold the "
                f"declared dtypes: cast the column with X.astype({{{name!r}: ...}}) or in the "
                "function that builds the partitions."
            )


def _is_numeric(dtype):
    """Whether a column's values are encoded as they are (numbers, not labels or booleans)."""
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    return pd.api.types.is_numeric_dtype(dtype)


def _in_partition(position, error):
    return type(error)(f"Partition {position} of X: {error}")


def summarise_block(block, meta, position):
    """What a fit learns of one partition, small whatever its rows (runs on a worker).

    Returns a dict: ``n_rows``; ``missing``, the missing entries per column;
    for the numeric columns (every column of an array) their
    :class:`ColumnSummary` (``numeric``), exact ranges in the column dtypes
    (``ranges``) and moments (``moments``); for the other columns their
    label counts (``counts``, label -> count) and a category dtype's
    categories (``categories``).
    """
    check_block(block, meta, position)
    if is_dataframe(block):
        numeric = [j for j in range(block.shape[1]) if _is_numeric(block.dtypes.iloc[j])]
        values = np.empty((len(block), len(numeric)))
        ranges, counts, categories = [], {}, {}
        for k, j in enumerate(numeric):
            series = block.iloc[:, j]
            values[:, k] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            observed = series.notna().any()
            ranges.append((series.min(), series.max()) if observed else None)
        missing = block.isna().to_numpy()
        for j in range(block.shape[1]):
            if j in numeric:
                continue
            series = block.iloc[:, j]
            if isinstance(series.dtype, pd.CategoricalDtype):
                categories[j] = list(series.dtype.categories)
            try:
                tally = series.value_counts(dropna=True, sort=False)
            except TypeError:  # an unhashable value: the schema's own message names it
                try:
                    TableSchema().fit(block.iloc[:, [j]])
                except ValueError as error:
                    raise _in_partition(position, error) from None
                raise
            counts[j] = {label: int(n) for label, n in tally.items() if n > 0}
        names = list(block.columns)
        rows = np.where(missing, np.nan, 0.0)
        rows[:, numeric] = values
    else:
        values = np.asarray(block, dtype=np.float64)
        ranges = [None] * block.shape[1]
        if len(block):
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column
                ranges = list(zip(np.nanmin(block, axis=0), np.nanmax(block, axis=0), strict=True))
        counts, categories = {}, {}
        missing, rows, names = np.isnan(values), values, list(range(block.shape[1]))
    try:
        check_observed(rows, names)
    except ValueError as error:
        raise _in_partition(position, error) from None
    summary = summarise_columns(values)
    divisor = power_of_two_divisor(summary)
    _, mean, squares = partial_moments(values, divisor)
    return {
        "n_rows": len(block),
        "missing": missing.sum(axis=0),
        "numeric": summary,
        "moments": (summary.n_observed, mean, squares, divisor),
        "ranges": ranges,
        "counts": counts,
        "categories": categories,
    }


# ------------------------------------------------- combining the summaries


def _combine_ranges(parts, n_numeric):
    """Per numeric column, the exact ``(low, high)`` over the partitions, or None."""
    ranges = []
    for k in range(n_numeric):
        seen = [part["ranges"][k] for part in parts if part["ranges"][k] is not None]
        seen = [(a, b) for a, b in seen if not (pd.isna(a) or pd.isna(b))]
        ranges.append((min(a for a, _ in seen), max(b for _, b in seen)) if seen else None)
    return ranges


def _combine_numeric(parts, offsets):
    """The :class:`ColumnSummary` of the numeric columns of every partition together."""
    summaries = [part["numeric"] for part in parts]
    n_numeric = len(summaries[0].low)
    low, high = np.full(n_numeric, np.inf), np.full(n_numeric, -np.inf)
    n_observed = np.zeros(n_numeric, dtype=np.int64)
    fraction_row = np.full(n_numeric, -1, dtype=np.int64)
    fraction_value = np.full(n_numeric, np.nan)
    for summary, offset in zip(summaries, offsets, strict=True):
        seen = summary.n_observed > 0
        low = np.where(seen, np.fmin(low, summary.low), low)
        high = np.where(seen, np.fmax(high, summary.high), high)
        n_observed += summary.n_observed
        new = (fraction_row < 0) & (summary.fraction_row >= 0)
        fraction_row[new] = offset + summary.fraction_row[new]
        fraction_value[new] = summary.fraction_value[new]
    seen = n_observed > 0
    low, high = np.where(seen, low, 0.0), np.where(seen, high, 0.0)
    return ColumnSummary(low, high, n_observed, fraction_row, fraction_value)


def _pad(values, length):
    """``values`` repeated at the end to ``length`` (missing when there are none)."""
    if not values:
        return [None] * length
    return list(values) + [values[-1]] * (length - len(values))


def _proxy_table(meta, parts, numeric, ranges):
    """A small table the schema learns exactly what it would learn of the whole collection.

    Each column holds its training range (numbers) or every label seen in
    any partition (the union), in its declared dtype; a category dtype gets
    the union of the partitions' categories, in the order they first appear.
    """
    columns = {}
    for j in range(meta.shape[1]):
        if j in numeric:
            limits = ranges[numeric.index(j)]
            columns[j] = [] if limits is None else list(limits)
        else:
            columns[j] = list(dict.fromkeys(label for part in parts for label in part["counts"][j]))
    length = max(2, *(len(values) for values in columns.values()))
    table = {}
    for j, values in columns.items():
        dtype = meta.dtypes.iloc[j]
        if isinstance(dtype, pd.CategoricalDtype):
            declared = dict.fromkeys(c for part in parts for c in part["categories"].get(j, []))
            dtype = pd.CategoricalDtype(list(declared), ordered=dtype.ordered)
        padded = _pad(values, length)
        if not values and pd.api.types.is_numeric_dtype(dtype):
            padded = [np.nan] * length
        table[j] = pd.Series(np.fromiter(padded, dtype=object, count=length), dtype=dtype)
    frame = pd.DataFrame(table)
    frame.columns = meta.columns
    return frame


def _label_moments(codes, counts):
    """``(low, high, n, mean, squares)`` of a label column from its codes' counts.

    The moments are of ``code / d``, ``d`` the power of two of the largest code.
    """
    codes, counts = np.asarray(codes, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    if n == 0:
        return 0.0, 0.0, 0, 0.0, 0.0
    low, high = codes.min(), codes.max()
    _, exponent = np.frexp(max(abs(low), abs(high)))
    divisor = np.ldexp(1.0, exponent - 1)
    mean = float((counts * (codes / divisor)).sum() / n)
    squares = float((counts * (codes / divisor - mean) ** 2).sum())
    return low, high, int(n), mean, squares


class PartitionStream:
    """A Dask collection as training data: its summary and its partitions, one at a time.

    It stands where a fit reads an array: :func:`~._data.summarise_columns`
    returns :attr:`summary`, :func:`~._data.column_statistics` reads
    :attr:`moments`, and :func:`~._training.train` trains on :meth:`dataset`,
    whose batches compute one partition at a time.

    Parameters
    ----------
    X : dask DataFrame or 2-D dask array
    estimator : estimator with a ``schema_``
        Encodes each partition as the fit validated the collection.
    """

    def __init__(self, X, estimator):
        self.blocks, self.meta, self.is_frame = _blocks(X)
        self.estimator = estimator

    # -------------------------------------------------------------- learn

    def learn(self, *, reset, extend_ranges=False):
        """The summary pass: validate the collection and learn its schema and statistics."""
        tasks = [
            dask.delayed(summarise_block)(block, self.meta, position)
            for position, block in enumerate(self.blocks)
        ]
        parts = dask.compute(*tasks)
        self.lengths = np.array([part["n_rows"] for part in parts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.missing = np.stack([part["missing"] for part in parts])
        n_columns = self.missing.shape[1]
        if self.is_frame:
            numeric = [j for j in range(n_columns) if _is_numeric(self.meta.dtypes.iloc[j])]
        else:
            numeric = list(range(n_columns))
        ranges = _combine_ranges(parts, len(numeric))
        # A column's first non-integer entry joins its range, so that the schema
        # tells float columns of integers from real-valued ones as it would in memory.
        fractions = _combine_numeric(parts, offsets).fraction_value
        ranges = [
            limits if limits is None or np.isnan(fraction) else [*limits, fraction]
            for limits, fraction in zip(ranges, fractions, strict=True)
        ]
        if self.is_frame:
            proxy = _proxy_table(self.meta, parts, numeric, ranges)
        else:
            proxy = np.array(
                [[np.nan] * 3 if limits is None else [*limits, limits[0]][:3] for limits in ranges],
                dtype=np.float64 if self.meta.dtype.kind == "f" else self.meta.dtype,
            ).T
        if self.lengths.sum() == 0:
            proxy = proxy[:0]  # the schema's own message for an empty X
        if not reset:
            self._check_known_labels(parts)
        # String columns of a collection are labels: recognising dates, numbers
        # or identifiers needs the values, which the summary does not keep.
        with no_recognition():
            validate_table(self.estimator, proxy, reset=reset, extend_ranges=extend_ranges)
        self._summarise(parts, numeric, offsets)
        return self

    def _check_known_labels(self, parts):
        """Raise ``ValueError`` naming the first partition with a label the fitted model lacks."""
        for j, column in enumerate(self.estimator.schema_.columns_):
            if column.categories is None:
                continue
            known = pd.Index(column.categories, dtype=object)
            for position, part in enumerate(parts):
                counts = part["counts"].get(j, {})
                labels = np.fromiter(counts, dtype=object, count=len(counts))
                unseen = labels[known.get_indexer(labels) < 0]
                if len(unseen):
                    raise ValueError(
                        f"Partition {position} of X: column {short_repr(column.name)} holds "
                        f"{short_repr(unseen[0])}, a category not seen in fit ({len(known)} "
                        f"categories: {short_list(known, 10)}). partial_fit and warm_start "
                        "continue the fitted model, whose categories are fixed: fit anew on "
                        "data that contains it, or declare every category with a pandas "
                        "'category' dtype before the first fit."
                    )

    def _summarise(self, parts, numeric, offsets):
        """Set :attr:`summary` and :attr:`moments` of the encoded columns."""
        n_columns = self.missing.shape[1]
        low, high = np.zeros(n_columns), np.zeros(n_columns)
        n_observed = np.zeros(n_columns, dtype=np.int64)
        fraction_row = np.full(n_columns, -1, dtype=np.int64)
        fraction_value = np.full(n_columns, np.nan)
        numbers = _combine_numeric(parts, offsets)
        low[numeric], high[numeric] = numbers.low, numbers.high
        n_observed[numeric] = numbers.n_observed
        fraction_row[numeric] = numbers.fraction_row
        fraction_value[numeric] = numbers.fraction_value
        count, mean, squares = np.zeros(n_columns), np.zeros(n_columns), np.zeros(n_columns)
        divisor = power_of_two_divisor(numbers)
        count[numeric], mean[numeric], squares[numeric] = combine_moments(
            [part["moments"] for part in parts], divisor
        )
        labels = [j for j in range(n_columns) if j not in numeric]
        for j in labels:
            tally = {}
            for part in parts:
                for label, n in part["counts"][j].items():
                    tally[label] = tally.get(label, 0) + n
            categories = pd.Index(self.estimator.schema_.columns_[j].categories, dtype=object)
            codes = categories.get_indexer(np.fromiter(tally, dtype=object, count=len(tally)))
            known = codes >= 0
            moments = _label_moments(codes[known], np.array(list(tally.values()))[known])
            low[j], high[j], n_observed[j], mean[j], squares[j] = moments
            count[j] = max(n_observed[j], 1)
        self.summary = ColumnSummary(low, high, n_observed, fraction_row, fraction_value)
        # A label column's moments are in units of its codes' power of two, the
        # divisor column_statistics takes from this summary.
        self.moments = (count, mean, squares)

    # -------------------------------------------------------------- read

    @property
    def shape(self):
        return int(self.lengths.sum()), self.missing.shape[1]

    def encoded(self, position):
        """The encoded float matrix of partition ``position``, computed now."""
        block = self.blocks[position].compute()
        check_block(block, self.meta, position)
        try:
            return validate_table(self.estimator, block, reset=False)
        except ValueError as error:
            raise _in_partition(position, error) from None

    def iter_encoded(self):
        """The encoded matrices of the non-empty partitions, one computed at a time."""
        for position in self._positions(None):
            yield self.encoded(position)

    def __getitem__(self, rows):
        """Rows ``start:stop`` (a slice), read from the partitions that hold them."""
        start, stop, _ = rows.indices(self.shape[0])
        ends = np.cumsum(self.lengths)
        pieces = []
        for position in np.flatnonzero((ends > start) & (ends - self.lengths < stop)):
            first = ends[position] - self.lengths[position]
            block = self.encoded(position)
            pieces.append(block[max(start - first, 0) : stop - first])
        return np.concatenate(pieces) if pieces else np.empty((0, self.shape[1]))

    def strided_rows(self, max_rows):
        """Every ``k``-th row from the first, at most ``max_rows``, as of an in-memory table."""
        step = max(-(-self.shape[0] // max_rows), 1)
        starts = np.cumsum(self.lengths) - self.lengths
        pieces = [np.empty((0, self.shape[1]))]
        for position in self._positions(None):
            first = -starts[position] % step
            if first < self.lengths[position]:
                # A copy: a view would hold the whole partition.
                pieces.append(self.encoded(position)[first::step].copy())
        return np.concatenate(pieces).astype(np.float64)

    def _positions(self, partitions):
        """The non-empty partitions among ``partitions`` (all when None)."""
        positions = np.arange(len(self.blocks)) if partitions is None else np.asarray(partitions)
        return positions[self.lengths[positions] > 0]

    def dataset(self, partitions, **options):
        """The :class:`PartitionDataset` of the rows of ``partitions`` (all when None)."""
        return PartitionDataset(self, self._positions(partitions), **options)

    def split(self, params, rng):
        """Training and validation partitions (sorted), or None and None without early stopping.

        Early stopping holds out whole partitions: ``ceil(validation_fraction
        * n)`` of the ``n`` non-empty ones, drawn from ``rng``.
        """
        if not params["early_stopping"]:
            return None, None
        positions = self._positions(None)
        fraction = params["validation_fraction"]
        n_valid = int(np.ceil(fraction * len(positions)))
        if n_valid >= len(positions):
            raise ValueError(
                f"X has {len(positions)} non-empty partition(s), too few to hold out "
                f"validation_fraction={fraction} of them for early stopping: on a Dask "
                "collection, early stopping holds out whole partitions, and none would be "
                "left to train on. Repartition X into more partitions (for example "
                "X.repartition(npartitions=10)) or set early_stopping=False."
            )
        order = rng.permutation(len(positions))
        return np.sort(positions[order[n_valid:]]), np.sort(positions[order[:n_valid]])

    def mean_log_jacobian(self, standardisation, partitions):
        """The mean log-Jacobian of the rows of ``partitions``.

        From their missing counts alone, unless a column is power-mapped:
        its term depends on each value, and the partitions are read.
        """
        positions = self._positions(partitions)
        n_rows = self.lengths[positions].sum()
        columns = standardisation.columns
        if not columns.any() or n_rows == 0:
            return standardisation.log_jacobian_total
        if standardisation.power.any():
            total = sum(
                float(standardisation.log_jacobian(self.encoded(position)).sum())
                for position in positions
            )
            return total / n_rows
        missing = self.missing[positions].sum(axis=0)[columns]
        terms = (missing * standardisation.column_log_jacobian[columns]).sum()
        return standardisation.log_jacobian_total - terms / n_rows

    def standardised_moments(self, partitions, standardisation, dequantized=None):
        """Mean and biased covariance of the standardised rows, one partition at a time
        (dequantised columns as :func:`~._linear_start.standardised_moments` reads them)."""
        n_columns = self.shape[1]
        total, products, n_rows = np.zeros(n_columns), np.zeros((n_columns, n_columns)), 0
        for position in self._positions(partitions):
            chunk = dequantized_view(self.encoded(position), dequantized)
            chunk = np.nan_to_num(standardisation.transform(chunk), nan=0.0)
            total += chunk.sum(axis=0)
            products += chunk.T @ chunk
            n_rows += len(chunk)
        mean = total / n_rows
        return mean, products / n_rows - np.outer(mean, mean)


class PartitionDataset(torch.utils.data.Dataset):
    """The rows of some partitions, read one partition at a time.

    An epoch (:meth:`batches`) visits the partitions in a random order drawn
    from the seeded section's generator, computes one, and yields its rows
    in batches exactly as a :class:`~._data.RowDataset` of it does
    (shuffled within the partition when ``shuffle``), before the next is
    computed: the partition's encoded matrix is the one held in memory.
    """

    def __init__(self, stream, positions, **options):
        self.stream = stream
        self.positions = positions
        self.options = options

    def __len__(self):
        return int(self.stream.lengths[self.positions].sum())

    def n_batches(self, batch_size):
        return int((-(-self.stream.lengths[self.positions] // batch_size)).sum())

    def batches(self, batch_size, shuffle=False):
        n = len(self.positions)
        order = permutation(n).numpy() if shuffle else np.arange(n)
        for k in order:
            block = RowDataset(self.stream.encoded(self.positions[k]), **self.options)
            yield from block.batches(batch_size, shuffle)
            del block  # before the next partition is computed


def training_stream(estimator, X, *, reset, extend_ranges=False):
    """The :class:`PartitionStream` of ``X``, after its summary pass; validates as fit does."""
    return PartitionStream(X, estimator).learn(reset=reset, extend_ranges=extend_ranges)


# -------------------------------------------------------- lazy per-row maps


def _apply(block, estimator, method, kwargs):
    return getattr(estimator, method)(block, **kwargs)


def map_rows(estimator, method, X, n_outputs=None, **kwargs):
    """Lazy ``estimator.method(X)`` of a Dask collection, partition by partition.

    Returns a Dask array of float64 with one row per row of ``X``: 2-D with
    ``n_outputs`` columns, or 1-D when ``n_outputs`` is None. Rows of a
    DataFrame's partitions are not counted ahead, so their chunk sizes are
    unknown (NaN) until computed, as for ``X.to_dask_array()``.
    """
    shape = (0,) if n_outputs is None else (0, n_outputs)
    # The columns are checked now, on the collection's meta, not at compute time.
    meta = _meta(X)
    _check_feature_names(estimator, meta, reset=False)
    _check_n_features(estimator, meta, reset=False)
    if is_dataframe(X):
        return X.map_partitions(_apply, estimator, method, kwargs, meta=np.empty(shape))
    X = X.rechunk({1: -1})
    if n_outputs is None:
        return X.map_blocks(
            _apply, estimator, method, kwargs, dtype=np.float64, drop_axis=1, meta=np.empty(shape)
        )
    return X.map_blocks(
        _apply,
        estimator,
        method,
        kwargs,
        dtype=np.float64,
        chunks=(X.chunks[0], (n_outputs,)),
        meta=np.empty(shape),
    )


def _partition_seed(seed, number):
    """The seed of partition ``number``'s draws: a function of the call's seed and the number."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def _sample_partition(block, estimator, n_samples, seed, how, meta, partition_info=None):
    if len(block) == 0:
        return meta
    number = partition_info["number"] if partition_info else 0
    return estimator.sample(
        n_samples, random_state=_partition_seed(seed, number), given=block, **how
    )


def _sample_block(block, estimator, n_samples, seed, how, meta, block_info=None):
    number = block_info[None]["chunk-location"][0] if block_info else 0
    return _sample_partition(block, estimator, n_samples, seed, how, meta, {"number": number})


def map_sample(estimator, given, n_samples, random_state, how):
    """Lazy ``estimator.sample(n_samples, given=given)`` of a Dask collection of conditions.

    Partition ``k`` of ``given`` gets ``n_samples`` draws per row, seeded by
    ``random_state`` (an int, or one drawn from it now) and ``k`` alone: the
    result does not depend on how the partitions are scheduled. A model
    fitted on a DataFrame returns a Dask DataFrame with the training dtypes
    (a Dask array of conditions takes the fitted column names); one fitted
    on an array returns a Dask array.
    """
    seed = random_state if isinstance(random_state, Integral) else draw_seed(random_state)
    names = getattr(estimator, "feature_names_in_", None)
    if not is_dataframe(given) and names is not None:
        _meta(given)  # a 2-D numeric array, or a clear error
        given = given.rechunk({1: -1}).to_dask_dataframe(columns=list(names))
    meta_in = _meta(given)
    _check_feature_names(estimator, meta_in, reset=False)
    _check_n_features(estimator, meta_in, reset=False)
    # The dtypes of the output, from one draw of the joint.
    meta = estimator.sample(1, random_state=0, missing=False)[:0]
    if is_dataframe(given):
        return given.map_partitions(
            _sample_partition, estimator, n_samples, seed, how, meta, meta=meta
        )
    given = given.rechunk({1: -1})
    return given.map_blocks(
        _sample_block,
        estimator,
        n_samples,
        seed,
        how,
        meta,
        dtype=np.float64,
        chunks=(tuple(n * n_samples for n in given.chunks[0]), given.chunks[1]),
        meta=meta,
    )
