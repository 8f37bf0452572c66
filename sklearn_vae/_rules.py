"""The likelihood rule of each table column: its likelihood, dequantisation and point mass.

Under ``likelihood="auto"`` a column with one distinct observed training
value is a point mass; under ``dequantize="auto"`` a column of integers
(an integer dtype, or floats whose observed training values are all
integers) spanning at most :data:`MAX_INTEGER_LEVELS` integers is a
categorical over them (its "levels"; an integer outside them, or a value
between two, is scored as :mod:`._unseen` says); a float column of
integers over a wider range is dequantised as an integer column is (unless
``dequantize=False``); the other columns get the likelihood of their kind.
:mod:`._schema` applies the rule to each column of a table.
"""

import numpy as np
import pandas as pd

from ._checks import short_repr

__all__ = [
    "LARGEST_INTEGER",
    "MAX_INTEGER_LEVELS",
    "POINT_MASS",
    "constant_value",
    "dequantizes",
    "integer_valued",
    "has_levels",
    "integer_levels",
    "on_training_values",
    "resolve",
]

#: The likelihood of a column with one distinct training value, under ``"auto"``.
POINT_MASS = "point_mass"
#: Floats up to this magnitude can hold integers (float64 holds every integer to
#: 2**53, and unit-width bins need x + 2); beyond it every float is an integer.
LARGEST_INTEGER = 2.0**53 - 2.0
#: Under ``dequantize="auto"``, a column of integers spanning at most this many
#: (``high - low + 1``) is a categorical over them, as ``HistogramDensity``
#: gives such a column one bin per integer.
MAX_INTEGER_LEVELS = 10
#: Levels are computed in float32: their integers stay below its exact range (2**24).
_LARGEST_LEVEL = 2.0**24


def dequantizes(dequantize):
    """Whether the ``dequantize`` parameter asks for the per-column integer rule (True, "auto")."""
    return isinstance(dequantize, str) or bool(dequantize)


def integer_levels(low, high):
    """Whether integers from ``low`` to ``high`` are few enough to be a column's levels."""
    if low is None or high is None:
        return False
    return high - low + 1 <= MAX_INTEGER_LEVELS and max(abs(low), abs(high)) <= _LARGEST_LEVEL


def has_levels(column):
    """Whether a column's model is over its own integer levels (``low..high``).

    A categorical over a numeric column's levels, or a point mass on an
    integer (one level). Such a column scores every real value: a value
    between two levels as the level below it, one outside them by the tails
    of :mod:`._unseen`.
    """
    if column.categories is not None or column.low is None:
        return False
    if column.likelihood == POINT_MASS:
        return float(column.low) == np.floor(float(column.low))
    return column.likelihood == "categorical" and not column.shared_levels


def resolve(
    name, kind, spec, n_categories, dequantize, *, integers=False, constant=False, limits=None
):
    """The likelihood of one column and whether it is dequantised.

    ``integers``: the column's observed training values are all integers
    (always so for an integer dtype); ``constant``: they are one value;
    ``limits``: their ``(low, high)`` (None for labels).
    """
    if spec == "auto":
        if constant:
            return POINT_MASS, False
        whole = kind == "integer" or (kind == "float" and integers)
        if whole and dequantize == "auto" and integer_levels(*(limits or (None, None))):
            return "categorical", False
        if kind == "float":
            return "gaussian", bool(integers and dequantizes(dequantize))
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
            f"likelihood {spec!r} cannot model column {short_repr(name)}: {reason}. Give it "
            "'categorical' (in a dict, or with likelihood='auto')."
        )
    integers = integers or kind == "integer"
    return spec, bool(spec == "gaussian" and integers and dequantizes(dequantize))


def integer_valued(series, missing):
    """Whether the observed values of a float column are all integers of a magnitude
    where floats hold every integer (:data:`LARGEST_INTEGER`)."""
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)[~missing]
    return bool(np.all(values == np.floor(values)) and np.all(np.abs(values) <= LARGEST_INTEGER))


def constant_value(series, missing, kind, categories, limits):
    """The one observed value of a column, encoded, or None when it has several (or none).

    ``limits`` is the exact ``(low, high)`` of a numeric column.

    A ``category`` column that declares more than one category is not
    constant: its declared categories are all modelled.
    """
    observed = series[~missing]
    if not len(observed):
        return None
    if isinstance(series.dtype, pd.CategoricalDtype) and len(categories) > 1:
        return None
    if kind in ("label", "boolean"):
        codes = pd.Index(categories, dtype=object).get_indexer(observed.astype(object).to_numpy())
        return float(codes[0]) if np.all(codes == codes[0]) else None
    low, high = limits
    return float(low) if low == high else None


def on_training_values(columns, encoded, keep):
    """``encoded`` with each constant column at its value and each float column of
    integers floored into its training range (a copy; entries of ``keep`` kept)."""
    fixed = [
        j
        for j, column in enumerate(columns)
        if column.value is not None or (column.dequantize and column.kind == "float")
    ]
    if not fixed:
        return encoded
    encoded = np.array(encoded, dtype=np.float64)
    for j in fixed:
        column = columns[j]
        if column.value is not None:
            values = np.full(len(encoded), column.value)
        else:
            values = np.clip(np.floor(encoded[:, j]), column.low, column.high)
        encoded[:, j] = values if keep is None else np.where(keep[:, j], encoded[:, j], values)
    return encoded
