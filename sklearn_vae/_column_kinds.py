"""Column kinds recognised at fit in the string columns of a DataFrame.

A string column of a table is often not a set of labels: dates and times,
numbers stored as text, identifiers and free text all arrive as strings. This
module recognises them with skrub's single-column transformers, in this order,
and tells :class:`~._schema.TableSchema` what each column becomes:

1. null-like strings (skrub's list: ``""``, ``"NA"``, ``"N/A"``, ``"nan"``,
   ``"?"``, ...) are missing entries (``CleanNullStrings``);
2. a column whose every observed entry parses as a number is a float column
   (``ToFloat`` decides; the values are parsed in float64, since ``ToFloat``
   returns float32, which would round ``"0.1"`` or ``"16777217"``);
3. a column ``ToDatetime`` accepts is a date/time column, modelled as the
   time in days (float) since 1970-01-01 (UTC for a timezone-aware column) and
   decoded back to its parsed dtype; pandas datetime64 columns are modelled
   the same way, and timedelta64 columns as their length in days;
4. a column of identifiers (:data:`ID_DISTINCT_SHARE`) or of free text
   (:data:`TEXT_MEDIAN_LENGTH`, :data:`TEXT_DISTINCT_SHARE`) is dropped from
   the model, since nearly every row would be a label of its own;
5. every other string column holds labels.

Columns of a pandas 'category' dtype, numbers and booleans are not touched.
One ``UserWarning`` per fit names the columns recognised in steps 2 to 4.
What a fit recognised is stored in the schema as builtins (``ColumnSpec``'s
``recognised``, ``parse_format`` and ``parsed_dtype``, the schema's
``dropped_``), so that the same parse applies to every later table.
skrub is imported on first use, so ``import sklearn_vae`` stays light.
"""

import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._checks import short_list

__all__ = [
    "ID_DISTINCT_SHARE",
    "MIN_OBSERVED",
    "TEXT_DISTINCT_SHARE",
    "TEXT_MEDIAN_LENGTH",
    "KINDS_MESSAGE",
    "Recognised",
    "recognise",
    "model_frame",
    "decode_time",
    "with_dropped",
    "input_names",
    "check_given_names",
    "recognition_message",
    "warn_recognised",
    "quiet_recognition",
    "no_recognition",
    "column_roles",
    "missing_entries",
]

#: Fewest observed entries a string column needs before it may be dropped as
#: identifiers or free text: in fewer rows, distinct labels are common and
#: say little about whether labels repeat.
MIN_OBSERVED = 20

#: A string column with at least this share of distinct values among its
#: observed entries holds identifiers: at 0.9, at least 80% of its training
#: rows hold a label seen once (each level of probability about 1/n), and a
#: new row's label is most likely one never seen.
ID_DISTINCT_SHARE = 0.9

#: A string column whose observed entries have a median length above this
#: many characters, and ...
TEXT_MEDIAN_LENGTH = 40

#: ... more than this share of distinct values, holds free text (sentences,
#: descriptions), which labels do not model.
TEXT_DISTINCT_SHARE = 0.5

#: The start of the warning of a fit that recognised columns.
KINDS_MESSAGE = "Columns of strings recognised at fit"

_US_PER_DAY = 86_400 * 10**6
# The days either side of 1970 that a dtype of each unit holds: about 292 years
# in nanoseconds, 292,000 years in microseconds (and coarser units).
_DAY_LIMITS = {
    "ns": float(np.iinfo(np.int64).max // (_US_PER_DAY * 1000) - 1),
    "us": float(np.iinfo(np.int64).max // _US_PER_DAY - 1),
}
_UNIT_US = {"s": 10**6, "ms": 10**3, "us": 1, "ns": 1}
_TIMES = ("datetime", "duration")
_PLURALS = {"identifier": "identifiers", "free text": "free text"}
# Whether fits in this context keep their recognition to themselves: the
# further models of one fit (ensemble members, calibration folds), whose
# tables the first model already warned about.
_QUIET = ContextVar("quiet_recognition", default=False)
_OFF = ContextVar("no_recognition", default=False)


@dataclass
class Recognised:
    """What a fit made of one column.

    Attributes
    ----------
    kind : {"labels", "number", "datetime", "duration", "identifier", "free text"}
    series : pandas Series or None
        The column to model: null-like strings missing, floats for numbers
        and times (days); None for a dropped column.
    spec : dict
        The ``ColumnSpec`` fields that record the parse.
    """

    kind: str
    series: object = None
    spec: dict = field(default_factory=dict)


def _is_strings(series):
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    if not (pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)):
        return False
    return pd.api.types.infer_dtype(series, skipna=True) == "string"


def missing_entries(frame):
    """The mask of a frame's missing entries as a model reads them.

    pandas' missing values, and in columns of strings skrub's null-like
    strings (``""``, ``"NA"``, ...), which :func:`recognise` makes missing.
    """
    mask = np.array(frame.isna().to_numpy(), dtype=bool)
    for j in range(frame.shape[1]):
        series = frame.iloc[:, j]
        if _is_strings(series):
            mask[:, j] |= _clean_nulls(series).isna().to_numpy()
    return mask


def _clean_nulls(series):
    """``series`` with skrub's null-like strings (and blank strings) missing."""
    # The step of skrub's Cleaner that does this, applied to one column.
    from skrub._clean_null_strings import CleanNullStrings
    from skrub.core import RejectColumn

    try:
        return CleanNullStrings().fit_transform(series)
    except RejectColumn:  # not a column of strings: nothing to clean
        return series


def _to_days(times):
    """Datetimes (or timedeltas) as float days since 1970-01-01 (UTC), NaN for NaT."""
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    values = times.to_numpy()  # in the column's own unit, which holds every value
    per_day = int(np.timedelta64(1, "D") // np.timedelta64(1, np.datetime_data(values.dtype)[0]))
    missing = np.isnat(values)
    whole, part = np.divmod(values.view(np.int64), per_day)
    days = whole.astype(np.float64) + part / per_day
    days[missing] = np.nan
    return pd.Series(days, index=times.index, name=times.name)


def _recognise_time(series):
    """A datetime or timedelta column as a ``Recognised``; None for another column."""
    dtype = series.dtype
    for kind, is_kind in (
        ("duration", pd.api.types.is_timedelta64_dtype),
        ("datetime", pd.api.types.is_datetime64_any_dtype),
    ):
        if is_kind(dtype):
            spec = {"recognised": kind, "parsed_dtype": str(dtype)}
            return Recognised(kind, _to_days(series), spec)
    return None


def recognise(series):
    """What the column ``series`` of a DataFrame is: a ``Recognised``, or None.

    None for a column that is neither strings nor times (numbers, booleans,
    a pandas 'category' dtype, mixed objects), which the schema models by
    its dtype as before.
    """
    if _OFF.get():
        return None
    found = _recognise_time(series)
    if found is not None or not _is_strings(series):
        return found
    from skrub import ToDatetime, ToFloat
    from skrub.core import RejectColumn

    series = _clean_nulls(series)
    observed = series.dropna()
    if len(observed) == 0:
        return Recognised("labels", series, {"recognised": "labels"})
    try:
        ToFloat().fit_transform(observed)
    except RejectColumn:
        pass
    else:
        return Recognised("number", _to_numbers(series), {"recognised": "number"})
    parser = ToDatetime()
    try:
        times = parser.fit_transform(series)
    except RejectColumn:
        pass
    else:
        spec = {
            "recognised": "datetime",
            "parse_format": parser.format_,
            "parsed_dtype": str(parser.output_dtype_),
        }
        return Recognised("datetime", _to_days(times), spec)
    n_observed, n_distinct = len(observed), observed.nunique()
    if n_observed >= MIN_OBSERVED:
        # Long distinct strings are text before they are identifiers.
        lengths = observed.astype(str).str.len()
        if lengths.median() > TEXT_MEDIAN_LENGTH and n_distinct > TEXT_DISTINCT_SHARE * n_observed:
            return Recognised("free text")
        if n_distinct >= ID_DISTINCT_SHARE * n_observed:
            return Recognised("identifier")
    return Recognised("labels", series, {"recognised": "labels"})


def _to_numbers(series):
    return pd.to_numeric(series, errors="coerce").astype(np.float64)


def _parse_times(column, series):
    """A column fitted as dates or times, in days, parsed as it was at fit."""
    if column.recognised == "duration":
        return _to_days(pd.to_timedelta(series, errors="coerce"))
    from skrub import ToDatetime

    # ToDatetime's fitted state is these attributes, which the schema keeps as
    # builtins: the parse of fit, applied to this column.
    parser = ToDatetime(format=column.parse_format)
    dtype = pd.api.types.pandas_dtype(column.parsed_dtype)
    parser.format_ = column.parse_format
    parser.output_dtype_ = dtype
    parser.output_time_zone_ = str(dtype.tz) if isinstance(dtype, pd.DatetimeTZDtype) else None
    parser.all_outputs_ = [series.name]
    return _to_days(parser.transform(_clean_nulls(series)))


def _model_column(column, series):
    """One column of a table as the model reads it (parsed as at fit)."""
    if column.recognised == "labels":
        return _clean_nulls(series)
    if column.recognised == "number":
        return _to_numbers(_clean_nulls(series))
    if column.recognised in _TIMES:
        return _parse_times(column, series)
    return series


def model_frame(schema, frame):
    """The modelled columns of ``frame``, each parsed as at fit (``frame`` itself if none is)."""
    dropped = getattr(schema, "dropped_", None) or []
    if not dropped and all(column.recognised is None for column in schema.columns_):
        return frame
    if dropped:
        gone = {entry["position"] for entry in dropped}
        frame = frame.iloc[:, [j for j in range(frame.shape[1]) if j not in gone]]
    return pd.DataFrame(
        {
            j: _model_column(column, frame.iloc[:, j]).reset_index(drop=True)
            for j, column in enumerate(schema.columns_)
        }
    )


def decode_time(column, values):
    """Model output (days) of a date/time column back to its dtype, to the microsecond."""
    missing = np.isnan(values)
    dtype = pd.api.types.pandas_dtype(column.parsed_dtype)
    unit = np.datetime_data(getattr(dtype, "base", dtype))[0]
    limit = _DAY_LIMITS["ns" if unit == "ns" else "us"]
    days = np.clip(np.where(missing, 0.0, values), -limit, limit)
    micro = np.rint(days * _US_PER_DAY).astype(np.int64)
    step = _UNIT_US.get(unit, 1)
    micro = np.rint(micro / step).astype(np.int64) * step
    if column.recognised == "duration":
        times = pd.Series(micro.astype("timedelta64[us]"))
    else:
        times = pd.Series(micro.astype("datetime64[us]"))
        if isinstance(dtype, pd.DatetimeTZDtype):
            times = times.dt.tz_localize("UTC").dt.tz_convert(dtype.tz)
    times = times.astype(dtype)
    times[missing] = pd.NaT
    return times


def with_dropped(schema, frame):
    """``frame`` (the modelled columns) with the dropped columns back, all missing, in place."""
    for entry in getattr(schema, "dropped_", None) or []:
        missing = np.full(len(frame), None, dtype=object)
        frame.insert(entry["position"], entry["name"], pd.Series(missing, index=frame.index))
    return frame


def input_names(schema):
    """The names of every column of fit, the dropped ones included, in order."""
    names = list(schema.names)
    for entry in getattr(schema, "dropped_", None) or []:
        names.insert(entry["position"], entry["name"])
    return names


def check_given_names(schema, names):
    """Raise ``ValueError`` when a conditional sample gives a column dropped at fit."""
    dropped = {entry["name"]: entry["kind"] for entry in getattr(schema, "dropped_", None) or []}
    given = [name for name in names if name in dropped]
    if given:
        raise ValueError(
            f"given sets {short_list(given)}, dropped from the model at fit as "
            f"{_PLURALS[dropped[given[0]]]}, which the samples hold as missing. Give only modelled "
            "columns, or cast the column to pandas 'category' dtype before fit to model it."
        )


def recognition_message(columns, dropped):
    """The warning text of a fit's recognised columns (``ColumnSpec`` list, ``dropped_``)."""
    parts = []
    dates = [c.name for c in columns if c.recognised in _TIMES and c.parse_format is not None]
    numbers = [c.name for c in columns if c.recognised == "number"]
    if dates:
        parts.append(
            f"dates or times {short_list(dates)}, modelled as days and returned as datetimes"
        )
    if numbers:
        parts.append(
            f"numbers stored as text {short_list(numbers)}, modelled and returned as floats"
        )
    for kind, what in _PLURALS.items():
        names = [entry["name"] for entry in dropped if entry["kind"] == kind]
        if names:
            parts.append(f"{what} {short_list(names)}, dropped from the model")
    if not parts:
        return None
    dropped_note = (
        " Scores are of the other columns; samples and inverse_transform hold dropped columns "
        "as missing."
        if dropped
        else ""
    )
    return (
        f"{KINDS_MESSAGE}: {'; '.join(parts)}.{dropped_note} To model a column as labels "
        "instead, cast it to pandas 'category' dtype before fit."
    )


def warn_recognised(columns, dropped):
    """Warn once, naming the columns of a fit recognised as times, numbers, or dropped.

    Raises ``ValueError`` when every column was dropped: nothing is left to model.
    """
    if dropped and not columns:
        names = short_list(entry["name"] for entry in dropped)
        raise ValueError(
            f"Every column of X holds identifiers or free text ({names}), "
            "which are dropped from the model, so nothing is left to learn. Cast a column to "
            "pandas 'category' dtype to model it as labels."
        )
    message = recognition_message(columns, dropped)
    if message is not None and not _QUIET.get():
        warnings.warn(message, UserWarning, stacklevel=4)


@contextmanager
def no_recognition():
    """Within this block, string columns are labels as their dtype says: nothing is recognised.

    A Dask fit validates a summary of its partitions (one entry per label),
    in which identifiers, dates and numbers stored as text cannot be told.
    """
    token = _OFF.set(True)
    try:
        yield
    finally:
        _OFF.reset(token)


@contextmanager
def quiet_recognition(quiet=True):
    """Within this block (of this thread or task), fits do not warn of recognised columns."""
    token = _QUIET.set(bool(quiet))
    try:
        yield
    finally:
        _QUIET.reset(token)


def column_roles(schema):
    """``{name: role}`` of the columns whose values a model reads converted from the input.

    ``"dropped"`` for a column dropped at fit, ``"parsed"`` for numbers stored
    as text and for times, which the model gives back as floats or datetimes.
    """
    roles = {entry["name"]: "dropped" for entry in getattr(schema, "dropped_", None) or []}
    for column in schema.columns_:
        if column.recognised in ("number", *_TIMES):
            roles[column.name] = "parsed"
    return roles
