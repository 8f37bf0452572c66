"""TableSchema: per-column kinds and likelihoods of a table, and its numeric encoding.

Both estimators model a table through one float64 matrix with a column per
input column: numbers as they are, booleans as 0/1, labels (strings,
categories, any hashable) as integer codes, and NaN for every missing entry
(NaN, None, ``pd.NA``, ``NaT``). This module learns that encoding from the
training table and maps new tables to it and model output back to the
training dtypes, so neither estimator has a second job.
"""

from dataclasses import dataclass
from numbers import Number

import numpy as np
import pandas as pd
from sklearn.preprocessing import OrdinalEncoder
from sklearn.utils.validation import _check_feature_names, _check_n_features, validate_data

from ._data import iter_row_chunks

__all__ = [
    "ColumnSpec",
    "TableSchema",
    "LIKELIHOOD_NAMES",
    "validate_table",
    "check_observed",
    "encode_given",
    "is_dataframe",
]

#: Likelihood names a column can be given.
LIKELIHOOD_NAMES = ("gaussian", "bernoulli", "categorical", "poisson")


# Code of a label not seen in fit, before it is turned into an error or a
# missing entry.
_UNKNOWN = -1


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
        The resolved likelihood name.
    categories : ndarray or None
        For ``"label"`` and ``"boolean"`` columns, the labels; a label is
        encoded as its index in this array.
    dequantize : bool
        Whether uniform noise is added to this integer column in training,
        so that a Gaussian models ``x + U(0, 1)``.
    shared_levels : bool
        For a numeric ``"categorical"`` column: whether it shares its integer
        levels with the other such columns (``likelihood="categorical"`` for
        a whole matrix) instead of having its own.
    """

    name: object
    kind: str
    dtype: object
    likelihood: str
    categories: np.ndarray | None = None
    dequantize: bool = False
    shared_levels: bool = False


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
        values = series[~series.isna()]
        types = {}
        for value in values:
            types.setdefault(_value_type(value), value)
            if len(types) > 1:
                (first, a), (second, b) = types.items()
                raise ValueError(
                    f"Column {name!r} mixes {first} and {second} (for example {a!r} and "
                    f"{b!r}). Give it one type: cast it with .astype(str) to model it as "
                    "labels, or with pd.to_numeric(..., errors='coerce') to model it as "
                    "numbers (unparseable entries become missing)."
                )
        return "boolean" if set(types) == {"booleans"} else "label"
    raise TypeError(
        f"Column {name!r} has dtype {dtype}, which cannot be modelled. Convert it to "
        "numbers, booleans or labels first (for example a datetime to its year with "
        ".dt.year)."
    )


def _resolve(name, kind, spec, n_categories, dequantize):
    """The likelihood of one column, from the user's spec and the column's kind."""
    if spec == "auto":
        if kind == "float":
            return "gaussian", bool(dequantize)
        if kind == "integer":
            # Any integer, also one outside the training range, stays scorable.
            return "gaussian", True
        return ("bernoulli" if kind == "boolean" else "categorical"), False
    if kind in ("label", "boolean"):
        if spec == "categorical" or (spec == "bernoulli" and n_categories <= 2):
            return spec, False
        held = "booleans" if kind == "boolean" else "labels"
        reason = (
            f"it has {n_categories} categories"
            if spec == "bernoulli"
            else f"it holds {held}, not numbers"
        )
        raise ValueError(
            f"likelihood {spec!r} cannot model column {name!r}: {reason}. Give it "
            "'categorical' (in a dict, or with likelihood='auto')."
        )
    return spec, bool(dequantize and spec == "gaussian")


def _raise_all_missing(name):
    raise ValueError(
        f"Column {name!r} is missing in every training row, so nothing can be learned about "
        "it. Drop the column, or pass rows where it is observed."
    )


def _categories(series, missing, kind):
    """The labels of a label or boolean column, in code order."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        # Declared categories are all modelled, also those absent from this
        # sample (for example from a cross-validation fold).
        return np.asarray(series.dtype.categories, dtype=object)
    if kind == "boolean":
        return np.array([False, True], dtype=object)
    values = series[~missing].tolist()
    try:
        return np.array(sorted(set(values)), dtype=object)
    except TypeError:
        return np.array(list(dict.fromkeys(values)), dtype=object)


def _decode_column(column, values):
    """One column of model output back to its training type."""
    if column.categories is not None:
        codes = np.clip(np.rint(values), 0, len(column.categories) - 1).astype(np.intp)
        if isinstance(column.dtype, pd.CategoricalDtype):
            return pd.Categorical.from_codes(codes, dtype=column.dtype)
        labels = column.categories[codes]
        return pd.Series(labels, dtype=column.dtype)
    if column.kind == "integer":
        # A dequantised column models x + U(0, 1): its integer is the floor.
        integers = np.floor(values) if column.dequantize else np.rint(values)
        return pd.Series(integers).astype(column.dtype)
    return pd.Series(values).astype(column.dtype)


class TableSchema:
    """Learns the columns of a table and encodes tables as float64 matrices.

    Parameters
    ----------
    likelihood : str or dict
        ``"auto"``, one likelihood name for every column, or a dict from
        column names (DataFrames) or positions (arrays) to likelihood names;
        columns a dict does not name follow the ``"auto"`` rule.
    dequantize : bool
        Whether integer columns modelled by a Gaussian are dequantised.

    Attributes
    ----------
    columns_ : list of ColumnSpec
        One entry per column, in order.
    is_frame_ : bool
        Whether the training data were a DataFrame (outputs are then
        DataFrames too).
    """

    def __init__(self, likelihood="auto", dequantize=False):
        self.likelihood = likelihood
        self.dequantize = dequantize

    def __repr__(self):
        if not hasattr(self, "columns_"):
            return f"TableSchema(likelihood={self.likelihood!r}, dequantize={self.dequantize!r})"
        lines = [f"TableSchema of {len(self.columns_)} columns:"]
        for column in self.columns_[:20]:
            levels = "" if column.categories is None else f", {len(column.categories)} levels"
            lines.append(
                f"  {str(column.name)[:40]!r}: {column.kind}, {column.dtype}, "
                f"likelihood={column.likelihood!r}{levels}"
            )
        if len(self.columns_) > 20:
            lines.append(f"  ... and {len(self.columns_) - 20} more columns")
        return "\n".join(lines)

    # ------------------------------------------------------------- learn

    def fit(self, X):
        """Learn the columns of ``X`` (a DataFrame or a 2-D array); returns self."""
        self.is_frame_ = is_dataframe(X)
        frame = X if self.is_frame_ else None
        if frame is None and np.asarray(X).dtype.kind in "OUS":
            frame = pd.DataFrame(np.asarray(X, dtype=object))
        if frame is None:
            X = X if isinstance(X, np.ndarray) else np.asarray(X)
            self._check_spec_names(list(range(X.shape[1])))
            self._fit_array(X)
        else:
            self._check_spec_names(list(frame.columns))
            self._fit_frame(frame)
        return self

    def _check_spec_names(self, names):
        if not isinstance(self.likelihood, dict):
            return
        unknown = [key for key in self.likelihood if key not in names]
        if unknown:
            what = "column names" if self.is_frame_ else "column positions"
            raise ValueError(
                f"likelihood names {unknown!r}, which are not {what} of X. The {what} "
                f"are {names!r}."
            )
        bad = {k: v for k, v in self.likelihood.items() if v not in LIKELIHOOD_NAMES}
        if bad:
            raise ValueError(
                f"likelihood gives {bad!r}; each column's likelihood must be one of "
                f"{list(LIKELIHOOD_NAMES)}."
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
        if kind == "float" and len(X):
            observed = np.zeros(X.shape[1], dtype=bool)
            for _, chunk in iter_row_chunks(X):
                observed |= ~np.isnan(chunk).all(axis=0)
            if not observed.all():
                _raise_all_missing(int(np.argmin(observed)))
        columns = []
        for j in range(X.shape[1]):
            spec = self._spec(j)
            likelihood, dequantize = _resolve(j, kind, spec, 0, self.dequantize)
            columns.append(ColumnSpec(j, kind, X.dtype, likelihood, dequantize=dequantize))
        self._mark_shared_levels(columns)
        self.columns_ = columns
        self._encoder = None

    def _fit_frame(self, frame):
        columns = []
        label_categories = []
        for position, name in enumerate(frame.columns):
            series = frame.iloc[:, position]
            missing = series.isna().to_numpy()
            if len(series) and missing.all():
                _raise_all_missing(name)
            kind = _column_kind(name, series)
            categories = None
            if kind in ("label", "boolean"):
                categories = _categories(series, missing, kind)
                label_categories.append(categories)
            spec = self._spec(name)
            n_categories = 0 if categories is None else len(categories)
            likelihood, dequantize = _resolve(name, kind, spec, n_categories, self.dequantize)
            columns.append(ColumnSpec(name, kind, series.dtype, likelihood, categories, dequantize))
        self._mark_shared_levels(columns)
        self.columns_ = columns
        self._encoder = None
        if label_categories:
            # OrdinalEncoder maps labels to codes and unknown labels to -1.
            self._encoder = OrdinalEncoder(
                categories=label_categories,
                handle_unknown="use_encoded_value",
                unknown_value=_UNKNOWN,
                dtype=np.float64,
            ).fit(self._label_values(frame)[0])

    def _mark_shared_levels(self, columns):
        """One likelihood string for a matrix: numeric categorical columns share levels."""
        if isinstance(self.likelihood, dict) or self.likelihood != "categorical":
            return
        for column in columns:
            column.shared_levels = column.kind in ("float", "integer")

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

    def _label_values(self, frame):
        """Object matrix of the label columns, missing entries filled, and their mask."""
        values = np.empty((len(frame), len(self.label_columns)), dtype=object)
        missing = np.empty(values.shape, dtype=bool)
        for i, j in enumerate(self.label_columns):
            series = frame.iloc[:, j]
            missing[:, i] = series.isna().to_numpy()
            values[:, i] = series.astype(object).to_numpy(copy=True)
            # A stand-in the encoder knows; the entry is set missing after encoding.
            values[missing[:, i], i] = self.columns_[j].categories[0]
        return values, missing

    def encode(self, X, *, unknown="error"):
        """The float64 matrix of ``X``: numbers, 0/1, codes, and NaN where missing.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_columns)
            A table with the training columns (already checked for names and
            count). A numeric array is returned as it is (no copy).
        unknown : {"error", "missing"}
            What a label not seen in fit becomes: a ``ValueError`` naming the
            column and the label, or a missing entry.

        Returns
        -------
        encoded : ndarray of shape (n_samples, n_columns)
        """
        if not is_dataframe(X):
            array = X if isinstance(X, np.ndarray) else np.asarray(X)
            if array.dtype.kind in "fiu" and self._encoder is None:
                return array
            X = pd.DataFrame(np.asarray(array, dtype=object))
        encoded = np.empty((len(X), self.n_columns))
        for j, column in enumerate(self.columns_):
            if column.categories is not None:
                continue
            series = X.iloc[:, j]
            try:
                encoded[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Column {column.name!r} held numbers in fit, but now holds values such "
                    f"as {series.dropna().iloc[0]!r}. Pass the column as it was in fit."
                ) from None
        if self._encoder is not None:
            values, missing = self._label_values(X)
            codes = self._encoder.transform(values)
            self._check_unknown(X, codes, unknown)
            codes[(codes == _UNKNOWN) | missing] = np.nan
            encoded[:, self.label_columns] = codes
        return encoded

    def _check_unknown(self, X, codes, unknown):
        rows, positions = np.nonzero(codes == _UNKNOWN)
        if unknown == "missing" or not len(rows):
            return
        j = self.label_columns[positions[0]]
        column = self.columns_[j]
        value = X.iloc[rows[0], j]
        raise ValueError(
            f"Column {column.name!r} holds {value!r} (row {rows[0]}), a category not seen in "
            f"fit ({len(column.categories)} categories: {list(column.categories)[:10]!r}"
            f"{' ...' if len(column.categories) > 10 else ''}); its probability under the "
            "model is 0. Refit on data that contains it, or declare every category with a "
            "pandas 'category' dtype before fitting."
        )

    # ------------------------------------------------------------ decode

    def decode(self, encoded):
        """Model output (one float per column) back to the training types.

        Codes become their labels, integer and boolean columns get their
        training dtypes back. A DataFrame when fitted on one, else an array
        (float64 for numeric training data, object for labels).
        """
        if not self.is_frame_ and self._encoder is None:
            return encoded
        frame = pd.DataFrame(index=pd.RangeIndex(len(encoded)))
        for j, column in enumerate(self.columns_):
            frame[j] = _decode_column(column, encoded[:, j])
        if not self.is_frame_:
            return frame.to_numpy()
        frame.columns = pd.Index(self.names)
        return frame


def validate_table(estimator, X, *, reset, unknown="error"):
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
        (``HistogramDensity`` passes neither: the ``"auto"`` rule applies).
    X : DataFrame or array-like of shape (n_samples, n_features)
    reset : bool
        Whether to learn the schema and the feature names (``fit``).
    unknown : {"error", "missing"}
        What a category not seen in fit becomes; see :meth:`TableSchema.encode`.

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
            if "could not convert" not in str(exc):
                raise
            raise ValueError(
                f"{exc}. An array must be numeric; pass a pandas DataFrame to model columns "
                "of strings or other labels."
            ) from None
    if reset:
        estimator.schema_ = TableSchema(
            getattr(estimator, "likelihood", "auto"), getattr(estimator, "dequantize", False)
        ).fit(X)
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
                f"Input X contains infinity: column {names[col]!r}, row {start + row}. "
                "Replace it with a finite value, or with NaN to mark it missing."
            )
        empty = np.flatnonzero(np.isnan(chunk).all(axis=1))
        if len(empty):
            raise ValueError(
                f"Row {start + empty[0]} of X has no observed entry: every column is missing, "
                "so the model has nothing to score or learn from. Drop such rows first (for "
                "example with X.dropna(how='all'))."
            )


def encode_given(estimator, given):
    """The encoded one-row matrix of ``given``, NaN where a column is free.

    ``given`` is a dict ``{column: value}`` (column names when fitted on a
    DataFrame, positions otherwise), or a one-row DataFrame or array with
    NaN (or None) in the free columns.
    """
    schema = estimator.schema_
    if isinstance(given, dict):
        unknown = [key for key in given if key not in schema.names]
        if unknown:
            what = "column names" if schema.is_frame_ else "column positions"
            raise ValueError(
                f"given names {unknown!r}, which are not {what} seen in fit: {schema.names!r}."
            )
        values = [[given.get(name, None) for name in schema.names]]
        if schema.is_frame_:
            given = pd.DataFrame(values, columns=pd.Index(schema.names), dtype=object)
        elif schema._encoder is None:
            given = np.array([[np.nan if v is None else v for v in values[0]]], dtype=np.float64)
        else:
            given = np.array(values, dtype=object)
    elif not hasattr(given, "iloc"):
        given = np.asarray(given)
        given = given.reshape(1, -1) if given.ndim == 1 else given
    if given.shape[0] != 1:
        raise ValueError(f"given must describe one row, got {given.shape[0]} rows.")
    try:
        encoded = validate_table(estimator, given, reset=False)
    except ValueError as exc:
        if "no observed entry" not in str(exc):
            raise
        raise ValueError(
            "given fixes no column; pass at least one {column: value}, or given=None "
            "for unconditional samples."
        ) from None
    return np.asarray(encoded, dtype=np.float64)
