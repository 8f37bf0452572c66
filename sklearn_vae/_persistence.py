"""The saved state of the estimators: numpy arrays and builtins, loadable by ``skops.io``.

``__getstate__`` of ``VAETransformer`` and
``HistogramDensity`` returns the estimator's attributes with
every torch, skorch and pandas object replaced by plain values: the torch
module's ``state_dict`` and Adam's state as CPU numpy arrays, the training
history as lists and dicts of numbers, the table schema with its dtypes as
strings. ``__setstate__`` rebuilds the net from them. pickle, joblib and
``skops.io`` all save this state, so a file holds no type but the estimator's
own class, numpy's and builtins, and ``skops.io.load`` can check every one of them before
running any code.

The layout of the state is versioned by :data:`LAYOUT`. A state without the
version is the layout from before it (a pickle that holds the skorch net
itself) and is loaded as it is; a layout this version does not know raises a
``ValueError`` that says so.
"""

import json
import warnings
from dataclasses import fields
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from skorch.exceptions import DeviceWarning
from skorch.history import History
from torch.optim.swa_utils import AveragedModel

from ._averaging import AveragingState
from ._data import Standardisation
from ._likelihoods import CategoricalLikelihood, make_likelihood, point_masses
from ._module import PRIOR_BUFFERS
from ._rules import has_levels
from ._sampling import check_missingness
from ._schema import ColumnSpec, TableSchema
from ._training import build_module, fitted_params, make_net
from ._version import __version__

__all__ = ["LAYOUT", "check_array", "restore_state", "saved_state"]

#: Version of the saved state's layout; raise it when the layout changes.
LAYOUT = 1
_LAYOUT_KEY = "_sklearn_vae_layout"
_VERSION_KEY = "_sklearn_vae_version"


def saved_state(state):
    """``state`` (an estimator's attributes) with plain values in place of library objects."""
    state = dict(state)
    if isinstance(state.get("device"), torch.device):
        # Saved as its string, which the parameter accepts as well.
        state["device"] = str(state["device"])
    if isinstance(state.get("schema_"), TableSchema):
        state["schema_"] = _schema_state(state["schema_"])
    if isinstance(state.get("_standardisation"), Standardisation):
        state["_standardisation"] = state["_standardisation"].arguments()
    if "net_" in state:
        state["net_"] = _net_state(state["net_"])
    state[_LAYOUT_KEY] = LAYOUT
    state[_VERSION_KEY] = __version__
    return state


def restore_state(estimator, state, set_attributes, check=None):
    """Set the attributes of ``estimator`` from a :func:`saved_state`, rebuilding its net.

    ``set_attributes`` stores a dict of attributes (the parent class's
    ``__setstate__``). Every array of the state is checked against the model
    it describes, its net against the parameters it was fitted with
    (``_fitted_params``; the estimator's parameters in files saved before
    they were kept), and ``check(estimator)``, when given, checks the
    estimator's own arrays: a damaged state raises ``ValueError`` here, not
    later. A state without a layout version is the layout from before
    versioning and is stored as it is.
    """
    if _LAYOUT_KEY not in state:
        set_attributes(state)
        if "net_" in state and "_fitted_params" not in state:
            estimator._fitted_params = fitted_params(estimator.get_params(deep=False))
        return
    state = dict(state)
    layout = state.pop(_LAYOUT_KEY)
    saved_by = state.pop(_VERSION_KEY, "an unknown version")
    name = type(estimator).__name__
    if layout != LAYOUT:
        raise ValueError(
            f"This {name} was saved by sklearn_vae {saved_by} with state layout {layout!r}; "
            f"sklearn_vae {__version__} reads layout {LAYOUT} only. Load it with the version "
            "that saved it, or refit the model."
        )
    net = state.pop("net_", None)
    try:
        _check_fitted_arrays(state)
        if "schema_" in state:
            state["schema_"] = _schema_from_state(state["schema_"])
        if "_standardisation" in state:
            state["_standardisation"] = Standardisation(**state["_standardisation"])
        set_attributes(state)
        if net is not None:
            if "_fitted_params" not in state:
                estimator._fitted_params = fitted_params(estimator.get_params(deep=False))
            estimator.net_ = _net_from_state(estimator, net)
            _check_column_rules(estimator)
        if check is not None:
            check(estimator)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        cause = "The file is damaged or was edited"
        if net is not None and "_fitted_params" not in state:
            cause += (
                ", or the model's parameters were changed with set_params after fit and "
                "before it was saved"
            )
        raise ValueError(
            f"The saved state of this {name} (layout {LAYOUT}, sklearn_vae {saved_by}) is "
            f"incomplete or does not match the model it describes: "
            f"{type(exc).__name__}: {exc}. {cause}; refit the model."
        ) from exc


# ------------------------------------------------------------------ checks


def check_array(part, value, shape, dtype):
    """Raise ``ValueError`` naming ``part`` unless ``value`` is an array of ``shape`` and ``dtype``.

    ``dtype`` may be a numpy dtype or a dtype kind (``"i"`` for any integer).
    """
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{part} is a {type(value).__name__}, not an array of shape {shape}")
    shape = tuple(shape)
    if isinstance(dtype, str) and len(dtype) == 1:
        right_dtype, expected = value.dtype.kind == dtype, f"dtype kind {dtype!r}"
    else:
        right_dtype, expected = value.dtype == np.dtype(dtype), f"dtype {np.dtype(dtype)}"
    if value.shape != shape or not right_dtype:
        raise ValueError(
            f"{part} has shape {value.shape} and dtype {value.dtype}; the model needs shape "
            f"{shape} and {expected}"
        )


def _check_fitted_arrays(state):
    """Check the fitted arrays of a VAE's state (those it has) against ``n_features_in_``."""
    if "n_features_in_" not in state:
        return
    n_features = state["n_features_in_"]
    if not isinstance(n_features, int | np.integer) or n_features < 1:
        raise ValueError(f"n_features_in_ is {n_features!r}, not a positive integer")
    schema = state.get("schema_")
    columns = None if schema is None else schema.get("columns_")
    # Columns dropped at fit (identifiers, free text) are inputs, not modelled.
    n_dropped = len(_dropped_state(schema))
    if columns is not None and len(columns) + n_dropped != n_features:
        dropped = f" and {n_dropped} dropped ones" if n_dropped else ""
        raise ValueError(
            f"schema_ describes {len(columns)} columns{dropped}, but n_features_in_ is {n_features}"
        )
    n_features -= n_dropped
    if "_dequantized" in state:
        check_array("_dequantized", state["_dequantized"], (n_features,), bool)
    if state.get("_label_counts") is not None:
        _check_label_counts(state["_label_counts"], columns or [])
    if state.get("_missingness") is not None:
        check_missingness(state["_missingness"], n_features)
    if state.get("_support") is not None:
        check_array("_support", state["_support"], (2, n_features), np.float64)
    standardisation = state.get("_standardisation")
    if standardisation is not None:
        required = {"loc", "scale", "divisor", "columns"}
        power_map = {"lambdas", "shift", "spread", "noisy"}
        # Files saved before the power map hold the required keys only.
        if set(standardisation) not in (required, required | power_map):
            raise ValueError(
                f"_standardisation holds {sorted(standardisation)}, not loc, scale, divisor "
                "and columns, with or without lambdas, shift, spread and noisy"
            )
        for key, value in standardisation.items():
            dtype = bool if key in ("columns", "noisy") else np.float64
            check_array(f"_standardisation[{key!r}]", value, (n_features,), dtype)


def _check_label_counts(counts, columns):
    """Check a VAE's label counts (optional: None gives unseen labels no mass) against its columns.

    A label column (not a boolean one) has one non-negative count per
    category, a column of integer levels one per level (or None, in a model
    saved before they had counts), every other column None.
    """
    if not isinstance(counts, list) or len(counts) != len(columns):
        raise ValueError(f"_label_counts is not a list of {len(columns)} entries, one per column")
    for j, (count, column) in enumerate(zip(counts, columns, strict=True)):
        levels = has_levels(SimpleNamespace(**column))
        if not levels and (column["categories"] is None or column["kind"] == "boolean"):
            if count is not None:
                raise ValueError(f"_label_counts[{j}] holds counts for a column without labels")
            continue
        if levels and count is None:
            continue  # saved before integer levels had counts: no mass
        size = int(column["high"] - column["low"]) + 1 if levels else len(column["categories"])
        check_array(f"_label_counts[{j}]", count, (size,), np.int64)
        if (count < 0).any():
            raise ValueError(f"_label_counts[{j}] holds a negative count")


def _check_column_rules(estimator):
    """Check a loaded VAE's dequantised columns and point masses against its schema.

    Files saved before point masses have none, and their schema's flags are
    those the model was fitted with: they load with their old behaviour.
    """
    columns = estimator.schema_.columns_
    flags = np.array([column.dequantize for column in columns])
    dequantized = getattr(estimator, "_dequantized", flags)
    if not np.array_equal(dequantized, flags):
        raise ValueError(
            f"_dequantized is {dequantized.tolist()}, but the schema dequantises {flags.tolist()}"
        )
    positions, values = point_masses(estimator.net_.module_.likelihood)
    expected = [j for j, column in enumerate(columns) if column.value is not None]
    if positions != expected or not np.array_equal(
        values, np.array([columns[j].value for j in expected], dtype=np.float64)
    ):
        raise ValueError(
            f"the model's point masses (columns {positions}, values {values.tolist()}) are not "
            f"the schema's constant columns {expected}"
        )


def _check_like(part, saved, expected):
    """Check the arrays ``saved`` (a dict) against the tensors ``expected`` (a state dict)."""
    if not isinstance(saved, dict) or set(saved) != set(expected):
        have = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        missing = sorted(set(expected) - set(saved)) if isinstance(saved, dict) else []
        raise ValueError(f"{part} holds {have}; missing {missing}, expected {sorted(expected)}")
    for key, tensor in expected.items():
        check_array(f"{part}[{key!r}]", saved[key], tensor.shape, _numpy_dtype(tensor))


def _numpy_dtype(tensor):
    return torch.empty(0, dtype=tensor.dtype).numpy().dtype


def _check_optimizer(saved, module):
    """Check Adam's saved state against the module's parameters: moments and step counts."""
    parameters = list(module.named_parameters())
    groups = saved["param_groups"]
    if len(groups) != 1 or list(groups[0]["params"]) != list(range(len(parameters))):
        raise ValueError(
            f"optimizer param_groups do not list the model's {len(parameters)} parameters"
        )
    for index, moments in saved["state"].items():
        if not isinstance(index, int | np.integer) or not 0 <= index < len(parameters):
            raise ValueError(f"optimizer state has an entry {index!r} for no parameter")
        name, parameter = parameters[index]
        step = {"step": torch.empty((), dtype=torch.float32)}
        like = {"exp_avg": parameter, "exp_avg_sq": parameter, **step}
        _check_like(f"optimizer state of {name!r}", moments, like)


# ------------------------------------------------------------------ schema


def _dtype_state(dtype):
    """A column dtype as builtins and numpy arrays, from which :func:`_dtype` rebuilds it."""
    if isinstance(dtype, np.dtype):
        state = {"numpy": dtype.str}
    elif isinstance(dtype, pd.CategoricalDtype):
        state = {
            "categories": np.asarray(dtype.categories, dtype=object),
            "categories_dtype": _dtype_state(dtype.categories.dtype),
            "ordered": bool(dtype.ordered),
        }
    elif isinstance(dtype, pd.StringDtype):
        state = {"string": dtype.storage, "na_value": "NA" if dtype.na_value is pd.NA else "NaN"}
    else:
        state = {"pandas": str(dtype)}
    try:
        rebuilt = _dtype(state)
    except (TypeError, ValueError) as exc:
        rebuilt = exc
    same = type(rebuilt) is type(dtype) and rebuilt == dtype
    if same and isinstance(dtype, pd.CategoricalDtype):
        same = rebuilt.categories.dtype == dtype.categories.dtype
    if not same:
        raise TypeError(
            f"The column dtype {dtype!r} cannot be saved: its name does not rebuild it "
            f"(it gives {rebuilt!r}). Convert the column to a numpy or a standard pandas dtype "
            "before fitting."
        )
    return state


def _dtype(state):
    if "numpy" in state:
        return np.dtype(state["numpy"])
    if "categories" in state:
        categories = pd.Index(state["categories"], dtype=_dtype(state["categories_dtype"]))
        return pd.CategoricalDtype(categories, ordered=state["ordered"])
    if "string" in state:
        na_value = pd.NA if state["na_value"] == "NA" else np.nan
        return pd.StringDtype(state["string"], na_value=na_value)
    return pd.api.types.pandas_dtype(state["pandas"])


def _schema_state(schema):
    state = dict(schema.__dict__)
    if "columns_" in state:
        state["columns_"] = [
            {
                field.name: getattr(column, field.name)
                if field.name != "dtype"
                else _dtype_state(column.dtype)
                for field in fields(column)
            }
            for column in schema.columns_
        ]
    return state


def _dropped_state(state):
    """The columns a saved schema dropped at fit, checked; [] when it has none."""
    dropped = [] if state is None else state.get("dropped_") or []
    if not isinstance(dropped, list):
        raise ValueError(f"schema_ has dropped_ of type {type(dropped).__name__}, not a list")
    positions = []
    for entry in dropped:
        if (
            not isinstance(entry, dict)
            or set(entry) != {"position", "name", "kind"}
            or not isinstance(entry["position"], int | np.integer)
            or entry["kind"] not in ("identifier", "free text")
        ):
            raise ValueError(f"schema_ has a damaged dropped_ entry {entry!r}")
        positions.append(int(entry["position"]))
    if positions != sorted(set(positions)) or (positions and positions[0] < 0):
        raise ValueError(f"schema_ has dropped_ positions {positions}, not increasing")
    return dropped


def _schema_from_state(state):
    schema = TableSchema.__new__(TableSchema)
    state = dict(state)
    _dropped_state(state)
    if "columns_" in state:
        state["columns_"] = [
            ColumnSpec(**{**column, "dtype": _dtype(column["dtype"])})
            for column in state["columns_"]
        ]
    schema.__dict__.update(state)
    return schema


# --------------------------------------------------------------------- net


def _numpy(tensor):
    return tensor.detach().cpu().numpy().copy()


def _tensor(array):
    array = np.asarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


def _plain(value):
    """``value`` with numpy scalars as Python numbers (the training history)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _map_tensors(value, convert, kind):
    """``value`` (an optimiser's state dict) with ``convert`` applied to each ``kind`` leaf."""
    if isinstance(value, dict):
        return {key: _map_tensors(item, convert, kind) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(item, convert, kind) for item in value)
    return convert(value) if isinstance(value, kind) else value


def _net_state(net):
    module = net.module_
    return {
        "device": str(net.device),
        "module": {name: _numpy(value) for name, value in module.state_dict().items()},
        "optimizer": _map_tensors(net.optimizer_.state_dict(), _numpy, torch.Tensor),
        # One JSON string: compact in a skops file, where each number would be a node.
        "history": json.dumps(_plain(net.history.to_list())),
        # The moving average of the weights (``average``), None without it.
        "averaging": _averaging_state(net),
    }


def _averaging_state(net):
    """The net's :class:`~._averaging.AveragingState` as arrays, or None when it has none."""
    averaging = getattr(net, "weight_averaging_", None)
    if averaging is None:
        return None
    return {
        # The averaged module's parameters and buffers, and its count of steps.
        "average": {name: _numpy(value) for name, value in averaging.average.state_dict().items()},
        "raw": None if averaging.raw is None else [_numpy(value) for value in averaging.raw],
    }


def _averaging_from_state(net, saved):
    """The :class:`~._averaging.AveragingState` of :func:`_averaging_state`, on ``net``'s device."""
    average = AveragedModel(net.module_)
    # The average is of the networks trained under N(0, I): a fitted mixture
    # prior is the module's alone (``fit_prior`` sets it after training).
    if getattr(average.module, "has_mixture_prior", False):
        average.module.set_prior()
    _check_like("averaging['average']", saved["average"], average.state_dict())
    average.load_state_dict({name: _tensor(value) for name, value in saved["average"].items()})
    raw = saved["raw"]
    if raw is not None:
        parameters = list(net.module_.named_parameters())
        if not isinstance(raw, list) or len(raw) != len(parameters):
            raise ValueError(
                f"averaging['raw'] holds {len(raw) if isinstance(raw, list) else raw!r} "
                f"arrays, not the model's {len(parameters)} parameters"
            )
        for value, (name, parameter) in zip(raw, parameters, strict=True):
            check_array(
                f"averaging['raw'] of {name!r}", value, parameter.shape, _numpy_dtype(parameter)
            )
        raw = [
            _tensor(value).to(parameter.device)
            for (_, parameter), value in zip(parameters, raw, strict=True)
        ]
    return AveragingState(average, raw)


def _usable_device(recorded):
    """The recorded device, or the CPU with skorch's ``DeviceWarning`` where it is absent."""
    device = torch.device(recorded)
    try:
        torch.empty(0, device=device)
    except (AssertionError, RuntimeError, NotImplementedError):
        warnings.warn(
            f"The requested device ({recorded}) is not available; the model is loaded on the "
            "CPU. Call set_params(device='cpu') before fitting it again.",
            DeviceWarning,
            stacklevel=5,
        )
        return torch.device("cpu")
    return device


def _restore_levels(likelihood, weights):
    """Give each categorical part its fitted levels: they size the decoder's output layer."""
    for name, part in likelihood.named_modules(prefix="likelihood"):
        if isinstance(part, CategoricalLikelihood):
            part.offsets = weights[f"{name}.offsets"].float()
            part.n_levels = weights[f"{name}.n_levels"].long()
            part.register_groups()


def _net_from_state(estimator, state):
    """The fitted skorch net of ``estimator``, rebuilt from its :func:`_net_state`.

    It is built with the parameters of the fit (``_fitted_params``), and its
    device is recorded there (the CPU where the saved one is absent).
    """
    device = _usable_device(state["device"])
    weights = {name: _tensor(value) for name, value in state["module"].items()}
    params = {**estimator._fitted_params, "device": str(device)}
    # Building the module draws initial weights: keep the caller's random streams.
    with torch.random.fork_rng(devices=[]):
        likelihood = make_likelihood(estimator.schema_.columns_)
        _restore_levels(likelihood, weights)
        module = build_module(likelihood, params)
        # A fitted mixture prior's buffers (absent for N(0, I)), filled by the load.
        for name in PRIOR_BUFFERS:
            if name in weights:
                setattr(module, name, torch.empty_like(weights[name]))
        _check_like("module", state["module"], module.state_dict())
        module.load_state_dict(weights, strict=True)
        net = make_net(module, device, params).initialize()
    _check_optimizer(state["optimizer"], net.module_)
    net.optimizer_.load_state_dict(_map_tensors(state["optimizer"], _tensor, np.ndarray))
    history = json.loads(state["history"])
    n_iter = getattr(estimator, "n_iter_", len(history))
    if not isinstance(history, list) or len(history) != n_iter:
        raise ValueError(f"the training history does not hold n_iter_={n_iter} epochs")
    net.history = History(history)
    # Absent from files saved before ``average`` existed; None when it was off.
    if state.get("averaging") is not None:
        net.weight_averaging_ = _averaging_from_state(net, state["averaging"])
    estimator._fitted_params = params
    return net
