"""TableSchema: per-column kinds and likelihoods of a table, and its numeric encoding.

Both estimators model a table through one float64 matrix with a column per
input column: numbers as they are, booleans as 0/1, labels (strings,
categories, any hashable) as integer codes, and NaN for every missing entry
(NaN, None, ``pd.NA``, ``NaT``). This module learns that encoding from the
training table and maps new tables to it and model output back to the
training dtypes, so neither estimator has a second job.

Model output goes back within what the training column allows: an integer
column within its training range (so it never wraps around its dtype), a
float column within its dtype's finite range (never infinite).
"""

import copy
import warnings
from dataclasses import dataclass, replace
from numbers import Number

import numpy as np
import pandas as pd
from sklearn.utils.validation import _check_feature_names, _check_n_features, validate_data

from ._checks import short_list, short_repr
from ._column_kinds import (
    decode_time,
    model_frame,
    recognise,
    warn_recognised,
    with_dropped,
)
from ._data import integer_valued_columns, iter_row_chunks
from ._rules import (
    LARGEST_INTEGER,
    POINT_MASS,
    constant_value,
    dequantizes,
    integer_valued,
    on_training_values,
    resolve,
)

__all__ = [
    "ColumnSpec",
    "TableSchema",
    "LIKELIHOOD_NAMES",
    "validate_table",
    "check_observed",
    "is_dataframe",
    "UNSEEN_CODE",
]

#: Likelihood names a column can be given.
LIKELIHOOD_NAMES = ("gaussian", "bernoulli", "categorical", "poisson")

#: Code of a label not seen in fit, before it is turned into an error or a
#: missing entry (``encode(..., unknown="keep")`` leaves it in the matrix).
UNSEEN_CODE = -1


@dataclass
class ColumnSpec:
    """What the model knows about one column.

    Attributes
    ----------
    name : object
        The column's label in the DataFrame, or its position in an array.
    kind : {"float", "integer", "boolean", "label"}
        What the values are, from the column's dtype.
    dtype : numpy or pandas dtype
        The training dtype, restored by :meth:`TableSchema.decode`.
    likelihood : str
        The resolved likelihood name; ``"point_mass"`` for a column with one
        distinct observed training value (under ``"auto"``).
    categories : ndarray or None
        For ``"label"`` and ``"boolean"`` columns, the labels; a label is
        encoded as its index in this array.
    dequantize : bool
        Whether a Gaussian models this integer column (or float column of
        integers) as ``x + U(0, 1)``, uniform noise added in training.
    shared_levels : bool
        For a numeric ``"categorical"`` column: whether it shares its integer
        levels with the other such columns (``likelihood="categorical"`` for
        a whole matrix) instead of having its own.
    low, high : int, float or None
        For ``"integer"`` and ``"float"`` columns, the smallest and largest
        training value, exactly (Python ints for integer columns, which
        float64 does not hold beyond 2**53); None for the other kinds, and
        in models saved before the range was recorded, which fall back to
        the dtype's range.
    recognised : {"labels", "number", "datetime", "duration"} or None
        What fit recognised in a column of strings or times (see
        ``_column_kinds``): labels with null-like strings missing, numbers
        stored as text, dates and times or durations (``"float"`` columns in
        days); None for other columns.
    parse_format, parsed_dtype : str or None
        A date column's format (None for a datetime dtype) and the dtype its
        model output is decoded to.
    value : float or None
        For a ``"point_mass"`` column, its one value as encoded (the number,
        or the code of the label); None for the other columns, and in
        models saved before point masses.
    """

    name: object
    kind: str
    dtype: object
    likelihood: str
    categories: np.ndarray | None = None
    dequantize: bool = False
    shared_levels: bool = False
    low: int | float | None = None
    high: int | float | None = None
    recognised: str | None = None
    parse_format: str | None = None
    parsed_dtype: str | None = None
    value: float | None = None


def is_dataframe(X):
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


def _value_type(value):
    if isinstance(value, (bool, np.bool_)):
        return "booleans"
    if isinstance(value, str):
        return "strings"
    if isinstance(value, Number):
        return "numbers"
    return "other objects"


def _raise_unhashable(name, row, value):
    raise ValueError(
        f"Column {short_repr(name)} holds a value of type {type(value).__name__!r} in row "
        f"{row} ({short_repr(value)}), which cannot be a label: labels must be hashable. "
        "Convert its values to strings (.astype(str)) or to tuples (.map(tuple)), or drop "
        "the column."
    )


def _check_hashable(name, values):
    """Raise the ``ValueError`` of :func:`_raise_unhashable` for the first unhashable value."""
    for row, value in enumerate(values):
        try:
            hash(value)
        except TypeError:
            _raise_unhashable(name, row, value)


def _column_kind(name, series):
    """The kind of a pandas column, from its dtype (and its values for object columns)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "label"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        missing = series.isna().to_numpy()
        types = {}
        for row, value in enumerate(series.to_numpy(dtype=object)):
            if missing[row]:
                continue
            try:
                hash(value)
            except TypeError:
                _raise_unhashable(name, row, value)
            types.setdefault(_value_type(value), value)
            if len(types) > 1:
                (first, a), (second, b) = types.items()
                raise ValueError(
                    f"Column {short_repr(name)} mixes {first} and {second} (for example "
                    f"{short_repr(a)} and {short_repr(b)}). Give it one type: cast it with "
                    ".astype(str) to model it as labels, or with pd.to_numeric(..., "
                    "errors='coerce') to model it as numbers (unparseable entries become "
                    "missing)."
                )
        return "boolean" if set(types) == {"booleans"} else "label"
    raise TypeError(
        f"Column {short_repr(name)} has dtype {dtype}, which cannot be modelled. Convert it "
        "to numbers, booleans, labels or datetimes first."
    )


def _raise_all_missing(name):
    raise ValueError(
        f"Column {short_repr(name)} is missing in every training row, so nothing can be "
        "learned about it. Drop the column, or pass rows where it is observed."
    )


def _object_array(values):
    """A 1-D object array of ``values``, each an element (tuples are not unpacked)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _categories(series, missing, kind):
    """The labels of a label or boolean column, in code order."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        # Declared categories are all modelled, also those absent from this
        # sample (for example from a cross-validation fold).
        return np.asarray(series.dtype.categories, dtype=object)
    if kind == "boolean":
        return np.array([False, True], dtype=object)
    values = set(series[~missing].tolist())
    try:
        return _object_array(sorted(values))
    except TypeError:  # labels of several types (bytes and tuples) have no order
        return _object_array(list(dict.fromkeys(series[~missing].tolist())))


def _label_codes(column, values):
    """The codes of the labels ``values`` (an object array) of ``column``; -1 if unknown."""
    index = pd.Index(column.categories, dtype=object)
    try:
        return index.get_indexer(values)
    except TypeError:  # an unhashable value
        _check_hashable(column.name, values)
        raise


# ------------------------------------------------------------- numeric range


def _numpy_dtype(dtype):
    """The numpy dtype of a numeric column's values (that of a nullable pandas dtype for one)."""
    return np.dtype(getattr(dtype, "numpy_dtype", dtype))


def _dtype_limits(dtype):
    """The smallest and largest value of a numeric dtype: Python ints for an integer dtype."""
    dtype = _numpy_dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return int(info.min), int(info.max)
    largest = float(np.finfo(dtype).max)
    return -largest, largest


def _training_range(column):
    """The recorded training range of a numeric column, or its dtype's range when absent."""
    if column.low is None:
        return _dtype_limits(column.dtype)
    return column.low, column.high


def _exact(value, kind):
    return int(value) if kind == "integer" else float(value)


def _series_range(series, kind):
    """``(low, high)`` of a column's observed values, exactly; None for labels or no values."""
    if kind not in ("integer", "float") or not series.notna().any():
        return None
    return _exact(series.min(), kind), _exact(series.max(), kind)


def _array_range(X, kind):
    """``(low, high)``, each per column, of a numeric array's observed values; NaN where none.

    Read in row chunks, so a ``numpy.memmap`` is not copied whole.
    """
    low = high = None
    for _, chunk in iter_row_chunks(X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing chunk column
            chunk_low, chunk_high = np.nanmin(chunk, axis=0), np.nanmax(chunk, axis=0)
        low = chunk_low if low is None else np.fmin(low, chunk_low)
        high = chunk_high if high is None else np.fmax(high, chunk_high)
    if low is None:
        return [None] * X.shape[1]
    return [
        None if kind == "float" and np.isnan(a) else (_exact(a, kind), _exact(b, kind))
        for a, b in zip(low, high, strict=True)
    ]


def _decode_integers(column, values, keep, clip=None):
    """An integer column of model output in its dtype, within its training range.

    Entries of ``keep`` (given values), and every entry when ``clip`` is
    False, are only kept within the dtype's range.
    """
    missing = np.isnan(values)
    # A dequantised column models x + U(0, 1): its integer is the floor.
    values = np.floor(values) if column.dequantize else np.rint(values)
    dtype = _numpy_dtype(column.dtype)
    # Within the dtype first, so that the cast cannot wrap around. float64 rounds
    # the largest int64 up to 2**63, which int64 does not hold: values are cast
    # from below the dtype's largest value, and those above it become that value.
    smallest, largest = _dtype_limits(dtype)
    top = np.nextafter(float(largest), 0.0)
    integers = np.clip(np.where(missing, 0.0, values), float(smallest), top).astype(dtype)
    integers[values > top] = largest
    low, high = _training_range(column) if clip is not False else (smallest, largest)
    clipped = np.clip(integers, np.array(low, dtype=dtype), np.array(high, dtype=dtype))
    if keep is not None:
        clipped = np.where(keep, integers, clipped)
    decoded = pd.array(clipped, dtype=column.dtype)
    if missing.any():
        decoded[missing] = pd.NA
    return pd.Series(decoded)


def _decode_column(column, values, keep=None, clip=None):
    """One column of model output back to its training type and range (see ``decode``)."""
    if column.recognised in ("datetime", "duration"):
        if clip and column.low is not None:
            clipped = np.clip(values, column.low, column.high)
            values = clipped if keep is None else np.where(keep, values, clipped)
        return decode_time(column, values)
    if column.categories is not None:
        codes = np.clip(np.rint(values), 0, len(column.categories) - 1).astype(np.intp)
        if isinstance(column.dtype, pd.CategoricalDtype):
            return pd.Categorical.from_codes(codes, dtype=column.dtype)
        labels = column.categories[codes]
        return pd.Series(labels, dtype=column.dtype)
    if column.kind == "integer":
        return _decode_integers(column, values, keep, clip)
    # A float column's draw beyond its dtype's range is its largest finite value.
    low, high = _training_range(column) if clip else _dtype_limits(column.dtype)
    clipped = np.clip(values, low, high)
    if keep is not None:
        clipped = np.where(keep, values, clipped)
    return pd.Series(clipped).astype(column.dtype)


def _array_bounds(column, clip=None):
    """Where a column of a numeric array's model output is clipped, in the model's units.

    A dequantised integer column holds ``x + U(0, 1)``: its values may
    reach just below ``high + 1``, the cell of the largest training integer.
    """
    if not (column.kind == "integer" if clip is None else clip):
        return _dtype_limits(column.dtype)
    low, high = (float(limit) for limit in _training_range(column))
    if column.dequantize:
        high = max(high, float(np.nextafter(high + 1.0, -np.inf)))
    return low, high


class TableSchema:
    """Learns the columns of a table and encodes tables as float64 matrices.

    Parameters
    ----------
    likelihood : str or dict
        ``"auto"``, one likelihood name for every column, or a dict from
        column names (DataFrames) or positions (arrays) to likelihood names;
        columns a dict does not name follow the ``"auto"`` rule.
    dequantize : bool or "auto"
        Whether integer columns, and float columns of integers, modelled by
        a Gaussian are dequantised (True or ``"auto"``; an integer column
        under ``"auto"`` always is).

    Attributes
    ----------
    columns_ : list of ColumnSpec
        One entry per column, in order, with the training range of each
        numeric column.
    is_frame_ : bool
        Whether the training data were a DataFrame (outputs are then
        DataFrames too).
    """

    def __init__(self, likelihood="auto", dequantize="auto"):
        self.likelihood = likelihood
        self.dequantize = dequantize

    def __repr__(self):
        if not hasattr(self, "columns_"):
            return f"TableSchema(likelihood={self.likelihood!r}, dequantize={self.dequantize!r})"
        lines = [f"TableSchema of {len(self.columns_)} columns:"]
        for column in self.columns_[:20]:
            levels = "" if column.categories is None else f", {len(column.categories)} levels"
            kind = column.kind if column.recognised in (None, "labels") else column.recognised
            lines.append(
                f"  {str(column.name)[:40]!r}: {kind}, {column.dtype}, "
                f"likelihood={column.likelihood!r}{levels}"
            )
        if len(self.columns_) > 20:
            lines.append(f"  ... and {len(self.columns_) - 20} more columns")
        if getattr(self, "dropped_", None):
            lines.append(f"  dropped at fit: {short_list(e['name'] for e in self.dropped_)}")
        return "\n".join(lines)

    # ------------------------------------------------------------- learn

    def fit(self, X):
        """Learn the columns of ``X`` (a DataFrame or a 2-D array); returns self."""
        self.is_frame_ = is_dataframe(X)
        frame = self._frame(X)
        if frame is None:
            X = X if isinstance(X, np.ndarray) else np.asarray(X)
            self._check_spec_names(list(range(X.shape[1])))
            self._fit_array(X)
        else:
            self._check_spec_names(list(frame.columns))
            self._fit_frame(frame)
        return self

    def _frame(self, X):
        """``X`` as a DataFrame when it is one or holds objects; None for a numeric array."""
        if is_dataframe(X):
            return X
        if np.asarray(X).dtype.kind in "OUS":
            return pd.DataFrame(np.asarray(X, dtype=object))
        return None

    def _check_spec_names(self, names):
        if not isinstance(self.likelihood, dict):
            return
        unknown = [key for key in self.likelihood if key not in names]
        if unknown:
            what = "column names" if self.is_frame_ else "column positions"
            raise ValueError(
                f"likelihood names {short_list(unknown)}, which are not {what} of X. The "
                f"{what} are {short_list(names, 10)}."
            )
        bad = {k: v for k, v in self.likelihood.items() if v not in LIKELIHOOD_NAMES}
        if bad:
            name, value = next(iter(bad.items()))
            raise ValueError(
                f"likelihood gives {short_repr(value)} for column {short_repr(name)}"
                f"{f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''}; each column's "
                f"likelihood must be one of {list(LIKELIHOOD_NAMES)}."
            )

    def _spec(self, name):
        if isinstance(self.likelihood, dict):
            return self.likelihood.get(name, "auto")
        return self.likelihood

    def _fit_array(self, X):
        kind = {"f": "float", "i": "integer", "u": "integer", "b": "boolean"}.get(X.dtype.kind)
        if kind is None:
            raise TypeError(f"X has dtype {X.dtype}, which cannot be modelled.")
        if kind == "boolean":
            self._fit_frame(pd.DataFrame(X))
            return
        ranges = _array_range(X, kind)
        if len(X) and None in ranges:
            _raise_all_missing(ranges.index(None))
        # Read only where it decides something: the rule of dequantize.
        integers = np.full(X.shape[1], kind == "integer")
        if kind == "float" and dequantizes(self.dequantize):
            within = [
                limits is not None and max(map(abs, limits)) <= LARGEST_INTEGER for limits in ranges
            ]
            integers = integer_valued_columns(X) & np.array(within, dtype=bool)
        columns = []
        for j, limits in enumerate(ranges):
            low, high = (None, None) if limits is None else limits
            likelihood, dequantize = resolve(
                j,
                kind,
                self._spec(j),
                0,
                self.dequantize,
                integers=bool(integers[j]),
                constant=low is not None and low == high,
                limits=limits,
            )
            value = float(low) if likelihood == POINT_MASS else None
            columns.append(
                ColumnSpec(
                    j,
                    kind,
                    X.dtype,
                    likelihood,
                    dequantize=dequantize,
                    low=low,
                    high=high,
                    value=value,
                )
            )
        self._mark_shared_levels(columns)
        self.columns_ = columns

    def _fit_frame(self, frame):
        columns, self.dropped_ = [], []
        for position, name in enumerate(frame.columns):
            series = frame.iloc[:, position]
            found = recognise(series) if self.is_frame_ else None
            if found is not None and found.series is None:
                self.dropped_.append({"position": position, "name": name, "kind": found.kind})
                continue
            series, parse = (series, {}) if found is None else (found.series, found.spec)
            missing = series.isna().to_numpy()
            if len(series) and missing.all():
                _raise_all_missing(name)
            kind = _column_kind(name, series)
            categories = None
            if kind in ("label", "boolean"):
                categories = _categories(series, missing, kind)
            n_categories = 0 if categories is None else len(categories)
            low, high = _series_range(series, kind) or (None, None)
            value = constant_value(series, missing, kind, categories, (low, high))
            likelihood, dequantize = resolve(
                name,
                kind,
                self._spec(name),
                n_categories,
                self.dequantize,
                integers=kind == "float" and integer_valued(series, missing),
                constant=value is not None,
                limits=None if low is None else (low, high),
            )
            columns.append(
                ColumnSpec(
                    name,
                    kind,
                    series.dtype,
                    likelihood,
                    categories,
                    dequantize,
                    low=low,
                    high=high,
                    value=value if likelihood == POINT_MASS else None,
                    **parse,
                )
            )
        self._mark_shared_levels(columns)
        self.columns_ = columns
        warn_recognised(columns, self.dropped_)

    def _mark_shared_levels(self, columns):
        """One likelihood string for a matrix: numeric categorical columns share levels."""
        if isinstance(self.likelihood, dict) or self.likelihood != "categorical":
            return
        for column in columns:
            column.shared_levels = column.kind in ("float", "integer")

    def widened(self, X):
        """A copy whose recorded numeric ranges cover ``X`` too, more training data.

        ``X`` is a table with the training columns, already checked as
        :func:`validate_table` checks it (a warm-started fit, or a
        ``partial_fit`` after the first). This schema is left as it is, so an
        estimator that restores its attributes after a failed fit restores
        the ranges too, and a thread decoding with it meanwhile is not
        disturbed.
        """
        frame = self._frame(X)
        if frame is None:
            X = X if isinstance(X, np.ndarray) else np.asarray(X)
            ranges = _array_range(X, self.columns_[0].kind)
        else:
            frame = model_frame(self, frame)
            ranges = [
                _series_range(frame.iloc[:, j], column.kind)
                for j, column in enumerate(self.columns_)
            ]
        schema = copy.copy(self)
        # A column's integer levels are fixed by the first fit (the model's outputs).
        schema.columns_ = [
            column
            if limits is None or column.low is None or column.likelihood == "categorical"
            else replace(column, low=min(column.low, limits[0]), high=max(column.high, limits[1]))
            for column, limits in zip(self.columns_, ranges, strict=True)
        ]
        return schema

    # ------------------------------------------------------------ encode

    @property
    def n_columns(self):
        return len(self.columns_)

    @property
    def names(self):
        return [c.name for c in self.columns_]

    @property
    def label_columns(self):
        """Positions of the columns encoded as codes (labels and booleans)."""
        return [j for j, c in enumerate(self.columns_) if c.categories is not None]

    @property
    def has_labels(self):
        """Whether a column is encoded as codes, so that tables are read as objects."""
        return any(c.categories is not None for c in self.columns_)

    def encode(self, X, *, unknown="error"):
        """The float64 matrix of ``X``: numbers, 0/1, codes, and NaN where missing.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_columns)
            A table with the training columns (already checked for names and
            count). A numeric array is returned as it is (no copy).
        unknown : {"error", "missing", "keep"}
            What a label not seen in fit becomes: a ``ValueError`` naming the
            column and the label, a missing entry, or the code
            :data:`UNSEEN_CODE` (an observed entry, for the score methods).

        Returns
        -------
        encoded : ndarray of shape (n_samples, n_columns)
        """
        if not is_dataframe(X):
            array = X if isinstance(X, np.ndarray) else np.asarray(X)
            if array.dtype.kind in "fiu" and not self.has_labels:
                return array
            X = pd.DataFrame(np.asarray(array, dtype=object))
        X = model_frame(self, X)
        encoded = np.empty((len(X), self.n_columns))
        for j, column in enumerate(self.columns_):
            series = X.iloc[:, j]
            if column.categories is not None:
                encoded[:, j] = self._encode_labels(column, j, series, unknown)
                continue
            try:
                encoded[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Column {short_repr(column.name)} held numbers in fit, but now holds "
                    f"values such as {short_repr(series.dropna().iloc[0])}. Pass the column "
                    "as it was in fit."
                ) from None
        return encoded

    def _encode_labels(self, column, j, series, unknown):
        """The codes of a label column as floats, NaN where missing (or unknown, if allowed)."""
        missing = series.isna().to_numpy()
        codes = _label_codes(column, series.astype(object).to_numpy()).astype(np.float64)
        unseen = np.flatnonzero((codes == UNSEEN_CODE) & ~missing)
        if unknown == "error" and len(unseen):
            self._raise_unknown(column, series.iloc[unseen[0]], unseen[0])
        codes[missing | ((codes == UNSEEN_CODE) & (unknown != "keep"))] = np.nan
        return codes

    @staticmethod
    def _raise_unknown(column, value, row):
        n_categories = len(column.categories)
        raise ValueError(
            f"Column {short_repr(column.name)} holds {short_repr(value)} (row {row}), a "
            f"category not seen in fit ({n_categories} categories: "
            f"{short_list(column.categories)}). Refit on data that contains it, or declare "
            "every category with a pandas 'category' dtype before fitting."
        )

    # ------------------------------------------------------------ decode

    def decode(self, encoded, given=None, clip=None):
        """Model output (one float per column) back to the training types.

        Codes become their labels, integer and boolean columns get their
        training dtypes back. A DataFrame when fitted on one, else an array
        (float64 for numeric training data, object for labels).

        Every value stays where the training column allows: an integer
        column within its training range, which also keeps it within its
        dtype; a float column within its dtype's finite range, so a finite
        training column never gives an infinite value. Output of a numeric
        array keeps the model's units (a dequantised integer column holds
        ``x + U(0, 1)``, below ``high + 1``), but for a float column of
        integers, which comes back as the floor of the model's value within
        its training range, and a constant column, which comes back as its
        one value.

        Parameters
        ----------
        encoded : ndarray of shape (n_samples, n_columns)
            Model output, in the encoded units.
        given : ndarray of shape (1, n_columns) or (n_samples, n_columns), default=None
            The encoded given values of a conditional sample, NaN where a
            column is free: these entries come back as they were given, not
            clipped to the training range.
        clip : bool or None, default=None
            Where numeric columns are clipped: every one within its training
            range (True) or within its dtype's only (False). None clips the
            integer columns to their training range, the floats to their
            dtype's.
        """
        keep = None if given is None else np.broadcast_to(~np.isnan(given), encoded.shape)
        encoded = on_training_values(self.columns_, encoded, keep)
        if not self.is_frame_ and not self.has_labels:
            low, high = np.array([_array_bounds(column, clip) for column in self.columns_]).T
            clipped = np.clip(encoded, low, high)
            return clipped if keep is None else np.where(keep, encoded, clipped)
        frame = pd.DataFrame(index=pd.RangeIndex(len(encoded)))
        for j, column in enumerate(self.columns_):
            keep_j = None if keep is None else keep[:, j]
            frame[j] = _decode_column(column, encoded[:, j], keep_j, clip)
        if not self.is_frame_:
            return frame.to_numpy()
        frame.columns = pd.Index(self.names)
        return with_dropped(self, frame)

    def check_given(self, encoded):
        """Raise ``ValueError`` when a given value lies outside its column's dtype.

        A sample holds the given values in the training dtypes: an ``int8``
        column cannot be given 300.
        """
        for j, column in enumerate(self.columns_):
            if column.categories is not None:
                continue
            low, high = _dtype_limits(column.dtype)
            outside = (encoded[:, j] < float(low)) | (encoded[:, j] > float(high))
            if outside.any():
                value = encoded[np.argmax(outside), j]
                raise ValueError(
                    f"given sets column {short_repr(column.name)} to {value:g}, outside the "
                    f"range of its dtype {column.dtype} ({low:g} to {high:g}), which the "
                    "samples hold it in. Give a value within that range."
                )


def validate_table(estimator, X, *, reset, unknown="error", extend_ranges=False):
    """Check ``X`` as ``validate_data`` does and return its encoded float matrix.

    A DataFrame keeps its column types: its feature names and count are
    checked with scikit-learn's own helpers, and it is encoded by the
    estimator's ``schema_`` (learned here when ``reset``). Anything else must
    be numeric and goes through ``validate_data``; a float array comes back
    without a copy. Missing entries (NaN) are allowed, infinite values are
    not, and neither is a row with no observed entry.

    Parameters
    ----------
    estimator : estimator with ``likelihood`` and ``dequantize`` parameters
        (``HistogramDensity`` has neither: ``"auto"`` and True apply).
    X : DataFrame or array-like of shape (n_samples, n_features)
    reset : bool
        Whether to learn the schema and the feature names (``fit``).
    unknown : {"error", "missing", "keep"}
        What a category not seen in fit becomes; see :meth:`TableSchema.encode`.
    extend_ranges : bool, default=False
        Whether ``X`` is more training data for the fitted schema (a
        warm-started fit, ``partial_fit`` after the first call): the recorded
        range of each numeric column grows to cover it. (``reset`` records
        the ranges afresh.)

    Returns
    -------
    encoded : ndarray of shape (n_samples, n_features), float32 or float64
    """
    if is_dataframe(X):
        _check_feature_names(estimator, X, reset=reset)
        _check_n_features(estimator, X, reset=reset)
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) "
                f"(shape={X.shape}) while a minimum of 1 is required by "
                f"{type(estimator).__name__}."
            )
    else:
        try:
            X = validate_data(
                estimator, X, reset=reset, dtype="numeric", ensure_all_finite="allow-nan"
            )
        except ValueError as exc:
            # Labels in an object array: strings, or tuples numpy reads as sequences.
            if not any(reason in str(exc) for reason in ("could not convert", "with a sequence")):
                raise
            # numpy's message quotes the value in full, a label of any length.
            quoted = str(exc) if len(str(exc)) <= 160 else f"{str(exc)[:157]}..."
            raise ValueError(
                f"{quoted}. An array must be numeric; pass a pandas DataFrame to model columns "
                "of strings or other labels."
            ) from None
    if reset:
        # HistogramDensity bins integer columns itself: dequantize=True's rule.
        estimator.schema_ = TableSchema(
            getattr(estimator, "likelihood", "auto"), getattr(estimator, "dequantize", True)
        ).fit(X)
    elif extend_ranges:
        estimator.schema_ = estimator.schema_.widened(X)
    encoded = estimator.schema_.encode(X, unknown=unknown)
    if encoded.dtype not in (np.float32, np.float64):
        encoded = encoded.astype(np.float64)
    check_observed(encoded, estimator.schema_.names)
    return encoded


def check_observed(X, names):
    """Raise ``ValueError`` for an infinite entry or a row with every entry missing."""
    for start, chunk in iter_row_chunks(X):
        infinite = np.argwhere(np.isinf(chunk))
        if len(infinite):
            row, col = infinite[0]
            raise ValueError(
                f"Input X contains infinity: column {short_repr(names[col])}, row {start + row}. "
                "Replace it with a finite value, or with NaN to mark it missing."
            )
        empty = np.flatnonzero(np.isnan(chunk).all(axis=1))
        if len(empty):
            raise ValueError(
                f"Row {start + empty[0]} of X has no observed entry: every column is missing, "
                "so the model has nothing to score or learn from. Drop such rows first (for "
                "example with X.dropna(how='all'))."
            )
