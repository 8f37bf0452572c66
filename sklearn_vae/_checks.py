"""Checks of parameters and data that ``_parameter_constraints`` cannot express.

Each raises a scikit-learn-style ``ValueError`` (or warns) naming the
parameter or column and saying what to do.
"""

import warnings
from itertools import islice
from numbers import Integral

import numpy as np
import torch

from ._data import first_non_integer

__all__ = [
    "check_integer_valued",
    "FLOAT32_LIMIT",
    "check_device",
    "check_float32_range",
    "check_hidden_layer_sizes",
    "check_network_params",
    "check_no_nan",
    "check_positive_integer",
    "check_training_data",
    "short_list",
    "short_repr",
    "warn_if_lattice",
]

# Training computes in float32, in which the columns the model does not
# standardise (labels, counts, levels) are held as they are.
FLOAT32_LIMIT = float(np.finfo(np.float32).max) / 2


def short_repr(value, limit=80):
    """``repr(value)`` for a message, cut to ``limit`` characters with an ellipsis.

    Messages quote user values (labels, column names) this way, so that a
    label of a million characters does not make a message of a million.
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def short_list(values, count=5, limit=80):
    """A list of at most ``count`` values for a message, each :func:`short_repr`, then "..."."""
    values = list(islice(values, count + 1))
    shown = [short_repr(value, limit) for value in values[:count]]
    return "[" + ", ".join(shown + (["..."] if len(values) > count else [])) + "]"


def check_integer_valued(X, requirement, remedy, names=None, summary=None):
    """Raise ``ValueError`` naming the first non-integer entry of ``X``, if any.

    The message reads "``requirement`` requires integer-valued X, but
    X[row, col] = value. ``remedy``", where ``col`` is the column's position,
    or its name in ``names`` when given. With ``summary``, the
    :class:`ColumnSummary` of ``X``, ``X`` itself is not read (it may be None).
    """
    position = first_non_integer(X) if summary is None else summary.first_non_integer()
    if position is not None:
        row, col = position
        value = X[row, col] if summary is None else summary.fraction_value[col]
        column = col if names is None else short_repr(names[col])
        raise ValueError(
            f"{requirement} requires integer-valued X, but X[{row}, {column}] = {value:g}. {remedy}"
        )


def check_positive_integer(name, value):
    """Raise ``ValueError`` unless ``value`` (the parameter ``name``) is an int >= 1."""
    if not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_hidden_layer_sizes(sizes):
    """``hidden_layer_sizes`` as a tuple of positive ints, or a ``ValueError``."""
    given = sizes
    sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
    if not all(isinstance(s, Integral) and s > 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must contain positive integers, got {given!r}.")
    return sizes


def check_network_params(network, value, kwargs):
    """Refuse keyword arguments for a custom ``network`` ("encoder", "decoder") that is None."""
    if value is None and kwargs:
        raise ValueError(
            f"{network}_params={kwargs!r} are keyword arguments for a custom "
            f"{network}, but {network}=None uses the MLP of hidden_layer_sizes. "
            f"Pass a torch.nn.Module class as {network}, or set {network}_params=None."
        )


def check_device(device):
    """The ``device`` parameter as a ``torch.device`` this process can allocate on."""
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a torch device string ({exc}). "
            "Use for example device='cpu' or device='cuda'."
        ) from None
    try:
        torch.empty(0, device=resolved)
    except (AssertionError, RuntimeError, NotImplementedError) as exc:
        reason = "CUDA is not available" if resolved.type == "cuda" else "it is not available"
        raise ValueError(
            f"device={device!r} was requested but {reason} in this torch "
            f"installation ({str(exc).splitlines()[0]}); use device='cpu', or "
            "install a torch build that supports this device."
        ) from None
    return resolved


def check_float32_range(summary, columns):
    """Raise ``ValueError`` before training when a column held as it is overflows float32.

    Gaussian columns are standardised in float64 first and are not checked:
    they train at any finite magnitude.

    Parameters
    ----------
    summary : ColumnSummary
        The training data's summary.
    columns : list of ColumnSpec
        The schema's columns, with their resolved likelihoods.
    """
    # Point masses are never computed with: only their exact value matters.
    held = np.array([column.likelihood not in ("gaussian", "point_mass") for column in columns])
    largest = np.where(held & (summary.n_observed > 0), summary.largest_magnitude, 0.0)
    if (largest > FLOAT32_LIMIT).any():
        j = int(np.argmax(largest))
        raise ValueError(
            f"Column {short_repr(columns[j].name)} holds values up to {largest[j]:.3g} in "
            "magnitude, "
            f"beyond half of float32's range ({FLOAT32_LIMIT:.2g}), in which "
            f"likelihood={columns[j].likelihood!r} holds them. Subtract a reference value "
            "from it first (for example its minimum), or model it with "
            "likelihood='gaussian', which standardises it."
        )


def warn_if_lattice(summary, columns, stacklevel):
    """Warn when a Gaussian column of the data models integers as a continuous density.

    A density fitted to integer-valued data can concentrate on the integers,
    so its scores are not comparable with log-probabilities and can grow
    without bound. Columns already dequantised, point masses and label codes
    are exempt; only ``dequantize=False`` (or an explicit Gaussian of
    integer-valued columns under it) leaves such a column.
    """
    lattice = [
        c.name
        for c, integers in zip(columns, summary.integer, strict=True)
        if c.likelihood == "gaussian" and not c.dequantize and integers
    ]
    if lattice:
        shown = ", ".join(map(short_repr, lattice[:3])) + (", ..." if len(lattice) > 3 else "")
        columns = f"its columns {shown} are" if len(lattice) > 1 else f"its column {shown} is"
        head = "X is integer-valued" if summary.integer.all() else "X has integer-valued columns"
        warnings.warn(
            f"{head}, but {columns} modelled with a continuous "
            "Gaussian likelihood of the raw integers: such a density is measured on a "
            "lattice, so its scores are not comparable with other models' and can be made "
            "arbitrarily large. Set dequantize=True (a density of x + U(0, 1), in the units "
            "of discrete models), or likelihood='categorical' or 'poisson' to model the "
            "integers as they are.",
            UserWarning,
            stacklevel=stacklevel,
        )


def _check_point_masses(summary, columns):
    """Raise ``ValueError`` when more training data give a point-mass column a second value."""
    for j, column in enumerate(columns):
        if column.value is None or not summary.n_observed[j]:
            continue
        other = summary.high[j] if summary.low[j] == column.value else summary.low[j]
        if other != column.value:
            raise ValueError(
                f"Column {short_repr(column.name)} held one value in fit ({column.value:g} "
                f"as encoded), which the model keeps as a point mass, but these training "
                f"data hold {other:g} too. Fit a new model (warm_start=False) on data "
                "with all the column's values."
            )


def check_training_data(X, summary, likelihood, columns, dequantized, params):
    """Every check of training data against the model: support, range, integrality.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The encoded training data (read only to name an offending entry).
    summary : ColumnSummary
        Its summary, which every check reads.
    likelihood : Likelihood
        The model's observation model.
    columns : list of ColumnSpec
        The schema's columns.
    dequantized : ndarray of bool of shape (n_features,)
        The columns modelled as ``x + U(0, 1)``.
    params : dict
        The estimator's parameters (``get_params(deep=False)``).
    """
    if params["objective"] == "iwae" and params["beta"] != 1:
        raise ValueError(
            f"beta={params['beta']} weights the KL term of the ELBO, which objective='iwae' "
            "does not have. Set beta=1.0, or objective='elbo' to train a beta-VAE."
        )
    likelihood.check_support(X, summary)
    check_float32_range(summary, columns)
    _check_point_masses(summary, columns)
    explicit = not isinstance(params["dequantize"], str) and bool(params["dequantize"])
    if dequantized.any():
        selected = dequantized
    elif explicit:
        selected = np.array([column.likelihood == "gaussian" for column in columns])
        if not selected.any():
            raise ValueError(
                f"dequantize=True applies to likelihood='gaussian' only; "
                f"likelihood={params['likelihood']!r} models the data as they are. "
                "Set dequantize='auto' or False."
            )
        # True asks for dequantised columns, but no Gaussian column holds only
        # integers: the first entry that is not one is named.
    else:
        return
    check_integer_valued(
        None,
        "dequantize=True" if explicit else "A dequantised integer column",
        "Pass the raw integers, or set dequantize=False for data that are already continuous.",
        names=[column.name for column, chosen in zip(columns, selected, strict=True) if chosen],
        summary=summary.select(selected),
    )


def check_no_nan(scores):
    """``scores``, or a ``ValueError`` naming the first row whose score is NaN."""
    nan = np.flatnonzero(np.isnan(scores))
    if len(nan):
        raise ValueError(
            f"The model's log-density of row {nan[0]} of X is NaN ({len(nan)} rows in all): "
            "the computation overflowed on extreme values. Rescale X, or use a likelihood "
            "that fits its range."
        )
    return scores
