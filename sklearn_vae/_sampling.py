"""Synthetic rows that look like the training table: its missingness, within its range.

A fit records which entries of its training rows were missing
(:func:`record_missingness`): the distinct patterns of missing columns, each
with its count of rows, bit-packed, accumulated over ``partial_fit`` calls.
Beyond :data:`MAX_PATTERNS` distinct patterns it keeps each column's count of
missing entries instead. :func:`synthetic_rows` turns the model's complete
draws into output rows: it masks a pattern drawn for each row with
probability proportional to its count, independently of the values (missing
completely at random), and decodes them, clipped to the training range or
not. The draws of the patterns come from their own seed, so the values of the
entries left observed are those of ``missing=False``, bit for bit.
"""

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from torch.distributions import Categorical

from ._checks import short_list, short_repr
from ._column_kinds import check_given_names, input_names
from ._data import iter_row_chunks
from ._inference import impute_encoded
from ._random import draw, draw_seed, torch_seed, uniform
from ._schema import validate_table

__all__ = [
    "MAX_PATTERNS",
    "check_missingness",
    "check_sampling_options",
    "encode_given",
    "record_missingness",
    "synthetic_rows",
]

#: Distinct missingness patterns kept; beyond them, each column's missing count.
MAX_PATTERNS = 1024


def record_missingness(X, previous=None):
    """The missingness of the training rows ``X``, added to ``previous`` (more data).

    Returns a dict of plain values: ``patterns``, the distinct patterns of
    missing entries bit-packed along the columns (``np.packbits``), uint8 of
    shape ``(n_patterns, ceil(n_features / 8))`` in lexicographic order, or
    None beyond :data:`MAX_PATTERNS`; ``counts``, int64, the rows of each
    pattern (None with ``patterns``); ``column_counts``, int64 of shape
    ``(n_features,)``, the missing entries of each column; ``n_rows``, an int.
    ``X`` is read in row chunks, so a ``numpy.memmap`` is not copied whole.
    """
    n_features = X.shape[1]
    column_counts = np.zeros(n_features, dtype=np.int64)
    n_rows = 0
    tally = {}
    if previous is not None:
        column_counts += previous["column_counts"]
        n_rows = previous["n_rows"]
        if previous["patterns"] is None:
            tally = None
        else:
            tally = dict(
                zip(map(bytes, previous["patterns"]), previous["counts"].tolist(), strict=True)
            )
    width = (n_features + 7) // 8
    # A pattern's bytes as one numpy scalar: np.unique sorts them as a 1-D array.
    as_keys = np.dtype((np.void, width))
    for _, chunk in iter_row_chunks(X):
        missing = np.isnan(chunk)
        column_counts += missing.sum(axis=0)
        n_rows += len(chunk)
        if tally is None:
            continue
        partial = missing.any(axis=1)
        complete = bytes(width)
        tally[complete] = tally.get(complete, 0) + len(chunk) - int(partial.sum())
        packed = np.ascontiguousarray(np.packbits(missing[partial], axis=1))
        keys, counts = np.unique(packed.view(as_keys).ravel(), return_counts=True)
        for key, count in zip(keys, counts.tolist(), strict=True):
            tally[key.tobytes()] = tally.get(key.tobytes(), 0) + count
        if len(tally) > MAX_PATTERNS:
            tally = None
    record = {"patterns": None, "counts": None, "column_counts": column_counts, "n_rows": n_rows}
    if tally is not None:
        tally = {key: count for key, count in tally.items() if count}
        keys = sorted(tally)
        record["patterns"] = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, width)
        record["counts"] = np.array([tally[key] for key in keys], dtype=np.int64)
    return record


def _unpack(patterns, n_features):
    return np.unpackbits(patterns, axis=1, count=n_features).astype(bool)


def check_missingness(record, n_features):
    """Raise ``ValueError`` naming what is wrong with a loaded :func:`record_missingness`."""
    if not isinstance(record, dict) or set(record) != {
        "patterns",
        "counts",
        "column_counts",
        "n_rows",
    }:
        raise ValueError("_missingness is not a dict of patterns, counts, column_counts, n_rows")
    n_rows, column_counts = record["n_rows"], record["column_counts"]
    if not isinstance(n_rows, int | np.integer) or n_rows < 1:
        raise ValueError(f"_missingness['n_rows'] is {short_repr(n_rows)}, not a positive int")
    _check_counts("column_counts", column_counts, (n_features,), n_rows)
    patterns, counts = record["patterns"], record["counts"]
    if patterns is None and counts is None:
        return
    width = (n_features + 7) // 8
    if not isinstance(patterns, np.ndarray) or patterns.dtype != np.uint8:
        raise ValueError("_missingness['patterns'] is not a uint8 array")
    if patterns.ndim != 2 or patterns.shape[1] != width or not 0 < len(patterns) <= MAX_PATTERNS:
        raise ValueError(
            f"_missingness['patterns'] has shape {patterns.shape}; the model needs "
            f"(1 to {MAX_PATTERNS}, {width})"
        )
    _check_counts("counts", counts, (len(patterns),), n_rows)
    unpacked = _unpack(patterns, n_features)
    if (
        counts.min() < 1
        or counts.sum() != n_rows
        or len(np.unique(patterns, axis=0)) != len(patterns)
        or np.packbits(unpacked, axis=1).tobytes() != patterns.tobytes()
        or unpacked.all(axis=1).any()
        or not np.array_equal(counts @ unpacked, column_counts)
    ):
        raise ValueError(
            "_missingness['patterns'] and ['counts'] do not describe distinct patterns "
            "of the training rows that agree with ['column_counts'] and ['n_rows']"
        )


def _check_counts(part, counts, shape, n_rows):
    if (
        not isinstance(counts, np.ndarray)
        or counts.dtype != np.int64
        or counts.shape != shape
        or (counts < 0).any()
        or (counts > n_rows).any()
    ):
        raise ValueError(
            f"_missingness[{part!r}] is not an int64 array of shape {shape} with "
            f"entries from 0 to n_rows"
        )


def _draw_missing(record, n_rows, seed):
    """Which entries of ``n_rows`` new rows are missing: bool, ``(n_rows, n_features)``.

    Each row gets a recorded pattern with probability proportional to its
    count; without patterns, each entry is missing with its column's rate,
    independently, and a row drawn with every entry missing is drawn again.
    """
    n_features = len(record["column_counts"])
    with torch_seed(seed, "cpu"):
        if record["patterns"] is not None:
            counts = torch.as_tensor(record["counts"], dtype=torch.float64)
            codes = draw(Categorical(probs=counts), (n_rows,)).long().numpy()
            return _unpack(record["patterns"], n_features)[codes]
        rates = record["column_counts"] / record["n_rows"]
        mask = np.zeros((n_rows, n_features), dtype=bool)
        redraw = np.ones(n_rows, dtype=bool)
        while redraw.any():
            mask[redraw] = uniform((int(redraw.sum()), n_features), torch.float64).numpy() < rates
            redraw = mask.all(axis=1)
        return mask


def _holds_missing(series):
    """``series`` in a dtype that holds missing entries: numpy ints and booleans become
    pandas' nullable dtypes of the same width."""
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iub":
        return series.astype(pd.array(series.to_numpy()[:0]).dtype)
    return series


def _mask(decoded, mask):
    """``decoded`` (decode's output) with the entries of ``mask`` missing."""
    if isinstance(decoded, pd.DataFrame):
        for j in np.flatnonzero(mask.any(axis=0)):
            series = _holds_missing(decoded.iloc[:, j])
            other = None if series.dtype == object else np.nan
            decoded.isetitem(j, series.where(~mask[:, j], other))
        return decoded
    # An object array holds labels (of a boolean array: never missing in fit).
    decoded[mask] = None if decoded.dtype == object else np.nan
    return decoded


def check_sampling_options(missing, clip, record):
    """Raise ``ValueError`` for a ``missing`` or ``clip`` that ``sample`` does not take."""
    if isinstance(missing, str) and missing != "auto" or missing not in ("auto", True, False):
        raise ValueError(f"missing must be 'auto', True or False, got {short_repr(missing)}.")
    if not isinstance(clip, bool | np.bool_):
        raise ValueError(f"clip must be True or False, got {short_repr(clip)}.")
    if not isinstance(missing, str) and missing and record is None:
        raise ValueError(
            "missing=True needs the missing entries of the training data, which this model "
            "was saved without (by an earlier version). Refit it, or pass missing='auto'."
        )


def synthetic_rows(model, schema, record, n_samples, given, random_state, **how):
    """The rows of ``VAETransformer.sample``, after its checks of the arguments.

    Parameters
    ----------
    model : FittedModel
    schema : TableSchema
    record : dict or None
        The fit's :func:`record_missingness`; None in models saved before it.
    n_samples : int
    given : ndarray of shape (n_samples * n_conditions, n_features) or None
        The encoded given values of each output row, NaN where free: never
        masked, never clipped. None samples the joint.
    random_state : int, RandomState instance or None
    **how
        ``missing``, ``clip`` and ``n_importance_samples`` as ``sample``
        takes them.

    Notes
    -----
    The values are drawn first, as they were before ``missing`` and
    ``clip`` existed (a one-row ``given`` by the same call of
    :func:`~._inference.impute_encoded`), then the patterns of missing
    entries from a seed drawn after them: the entries left observed are
    those of ``missing=False``, bit for bit.
    """
    rng = check_random_state(random_state)
    if given is None:
        encoded = model.sample(n_samples, draw_seed(rng))
    else:
        K = how["n_importance_samples"]
        encoded = impute_encoded([model], given, schema, sample=True, n_samples=K, random_state=rng)
    decoded = schema.decode(encoded, given=given, clip=bool(how["clip"]))
    if not how["missing"] or record is None or not record["column_counts"].any():
        return decoded
    mask = _draw_missing(record, len(encoded), draw_seed(rng))
    if given is not None:
        mask &= np.isnan(given)
    return _mask(decoded, mask)


def encode_given(estimator, given):
    """The encoded rows of ``given``, NaN where a column is free.

    ``given`` is a dict ``{column: value}`` (column names when fitted on a
    DataFrame, positions otherwise), or a DataFrame or array of one or more
    rows with NaN (or None) in the free columns; a row may leave every
    column free, as long as one row fixes one. A value outside its column's
    dtype (300 for an ``int8`` column) raises a ``ValueError``: the samples
    could not hold it.
    """
    schema = estimator.schema_
    if isinstance(given, dict):
        names = input_names(schema)
        unknown = [key for key in given if key not in names]
        if unknown:
            what = "column names" if schema.is_frame_ else "column positions"
            raise ValueError(
                f"given names {short_list(unknown)}, which are not {what} seen in fit: "
                f"{short_list(names, 10)}."
            )
        check_given_names(schema, given)
        values = [[given.get(name, None) for name in names]]
        if schema.is_frame_:
            given = pd.DataFrame(values, columns=pd.Index(names), dtype=object)
        elif not schema.has_labels:
            given = np.array([[np.nan if v is None else v for v in values[0]]], dtype=np.float64)
        else:
            given = np.array(values, dtype=object)
    elif not hasattr(given, "iloc"):
        given = np.asarray(given)
        given = given.reshape(1, -1) if given.ndim == 1 else given
    if given.ndim != 2 or given.shape[0] < 1:
        raise ValueError(f"given must hold rows of columns, got an array of shape {given.shape}.")
    fixed = ~np.asarray(pd.isna(given)).all(axis=1)
    if not fixed.any():
        raise ValueError(
            "given fixes no column; pass at least one {column: value}, or given=None "
            "for unconditional samples."
        )
    rows = given.iloc[fixed] if hasattr(given, "iloc") else given[fixed]
    encoded = np.full((len(fixed), schema.n_columns), np.nan)
    encoded[fixed] = validate_table(estimator, rows, reset=False)
    schema.check_given(encoded)
    return encoded
