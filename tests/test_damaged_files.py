"""A damaged saved state is refused when it is loaded, with a ValueError naming the damaged part.

Every array of a saved ``VAETransformer`` and ``HistogramDensity`` is checked
for its shape and dtype against the model it describes; a missing or wrong
one must never load and fail later inside torch or numpy.
"""

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from sklearn_vae import HistogramDensity, VAETransformer

sio = pytest.importorskip("skops.io", reason="skops is in the 'persist' and 'test' extras")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

COUNTS = np.random.default_rng(0).poisson(3.0, size=(120, 4)).astype(np.float64)
WEIGHT = "decoder.head.loc.weight"
REFUSED = "(?s)^The saved state of this {} .* does not match the model it describes: .*"


@pytest.fixture(scope="module")
def vae_state():
    # Averaged weights and dequantised columns: every kind of array a VAE saves.
    vae = VAETransformer(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=3,
        average=0.9,
        likelihood="gaussian",
        dequantize=True,
        random_state=0,
    ).fit(COUNTS)
    return vae.__getstate__()


def _first_parameter_state(state):
    """Adam's state of the first parameter that has one."""
    moments = state["net_"]["optimizer"]["state"]
    return moments[min(moments)]


def _resize(array):
    return np.zeros(array.shape[:-1] + (array.shape[-1] + 1,) if array.ndim else (1,), array.dtype)


VAE_DAMAGE = {
    # name: (change to the state, part of the message that names it)
    "weight_shape": (
        lambda s: s["net_"]["module"].__setitem__(WEIGHT, np.zeros((3, 3), "f4")),
        WEIGHT,
    ),
    "weight_dtype": (
        lambda s: s["net_"]["module"].__setitem__(WEIGHT, s["net_"]["module"][WEIGHT].astype("f8")),
        WEIGHT,
    ),
    "weight_missing": (lambda s: s["net_"]["module"].pop(WEIGHT), WEIGHT),
    "adam_exp_avg_shape": (
        lambda s: _first_parameter_state(s).__setitem__(
            "exp_avg", _resize(_first_parameter_state(s)["exp_avg"])
        ),
        "optimizer state of 'encoder.*exp_avg",
    ),
    "adam_exp_avg_sq_dtype": (
        lambda s: _first_parameter_state(s).__setitem__(
            "exp_avg_sq", _first_parameter_state(s)["exp_avg_sq"].astype("f8")
        ),
        "exp_avg_sq.*float64",
    ),
    "adam_step_shape": (
        lambda s: _first_parameter_state(s).__setitem__("step", np.ones(2, "f4")),
        r"\['step'\]",
    ),
    "adam_moment_missing": (lambda s: _first_parameter_state(s).pop("exp_avg"), "missing.*exp_avg"),
    "adam_entry_for_no_parameter": (
        lambda s: s["net_"]["optimizer"]["state"].__setitem__(999, _first_parameter_state(s)),
        "entry 999 for no parameter",
    ),
    "adam_groups": (
        lambda s: s["net_"]["optimizer"]["param_groups"][0].__setitem__("params", [0]),
        "param_groups",
    ),
    "average_shape": (
        lambda s: s["net_"]["averaging"]["average"].__setitem__(
            f"module.{WEIGHT}", np.zeros((1, 1), "f4")
        ),
        rf"averaging\['average'\]\['module.{WEIGHT}'\]",
    ),
    "average_count_missing": (
        lambda s: s["net_"]["averaging"]["average"].pop("n_averaged"),
        r"averaging\['average'\].*missing \['n_averaged'\]",
    ),
    "raw_shape": (
        lambda s: s["net_"]["averaging"]["raw"].__setitem__(0, np.zeros(1, "f4")),
        r"averaging\['raw'\] of 'encoder",
    ),
    "raw_dtype": (
        lambda s: s["net_"]["averaging"]["raw"].__setitem__(
            0, s["net_"]["averaging"]["raw"][0].astype("f2")
        ),
        r"averaging\['raw'\].*float16",
    ),
    "raw_count": (lambda s: s["net_"]["averaging"]["raw"].pop(), r"averaging\['raw'\] holds"),
    "standardisation_length": (
        lambda s: s["_standardisation"].__setitem__("loc", np.zeros(3)),
        r"_standardisation\['loc'\]",
    ),
    "standardisation_dtype": (
        lambda s: s["_standardisation"].__setitem__("columns", np.ones(4)),
        r"_standardisation\['columns'\].*bool",
    ),
    "standardisation_missing": (lambda s: s["_standardisation"].pop("scale"), "_standardisation"),
    "support_shape": (lambda s: s.__setitem__("_support", np.zeros((2, 3))), "_support"),
    "support_dtype": (
        lambda s: s.__setitem__("_support", s["_support"].astype("f4")),
        "_support.*float32",
    ),
    "dequantized_length": (
        lambda s: s.__setitem__("_dequantized", np.ones(5, bool)),
        "_dequantized",
    ),
    "dequantized_dtype": (
        lambda s: s.__setitem__("_dequantized", s["_dequantized"].astype(int)),
        "_dequantized",
    ),
    "schema_columns": (lambda s: s["schema_"]["columns_"].pop(), "schema_ describes 3 columns"),
    "n_features": (lambda s: s.__setitem__("n_features_in_", "4"), "n_features_in_"),
    "history_length": (
        lambda s: s["net_"].__setitem__(
            "history", json.dumps(json.loads(s["net_"]["history"])[:2])
        ),
        "history does not hold n_iter_=3",
    ),
    "history_not_json": (lambda s: s["net_"].__setitem__("history", "[{"), "JSONDecodeError"),
}


def _damaged(state, change):
    state = pickle.loads(pickle.dumps(state))  # a deep copy
    change(state)
    return state


def test_the_undamaged_state_loads(vae_state):
    loaded = VAETransformer.__new__(VAETransformer)
    loaded.__setstate__(pickle.loads(pickle.dumps(vae_state)))
    assert np.isfinite(loaded.score_samples(COUNTS)).all()


@pytest.mark.parametrize("damage", sorted(VAE_DAMAGE))
def test_damaged_vae_state_is_refused_at_load_naming_the_part(vae_state, damage):
    change, part = VAE_DAMAGE[damage]
    state = _damaged(vae_state, change)
    with pytest.raises(ValueError, match=REFUSED.format("VAETransformer") + part) as error:
        VAETransformer.__new__(VAETransformer).__setstate__(state)
    # A file that kept its fitted parameters blames no set_params.
    assert "set_params" not in str(error.value)


@pytest.mark.parametrize("damage", ["adam_exp_avg_shape", "raw_shape", "support_shape"])
def test_damaged_state_in_a_skops_file_is_refused_at_load(vae_state, damage, monkeypatch):
    change, part = VAE_DAMAGE[damage]
    state = _damaged(vae_state, change)
    monkeypatch.setattr(VAETransformer, "__getstate__", lambda self: state)
    data = sio.dumps(VAETransformer())
    monkeypatch.undo()
    with pytest.raises(ValueError, match=REFUSED.format("VAETransformer") + part):
        sio.loads(data, trusted=["sklearn_vae._vae.VAETransformer"])


# ---------------------------------------------------------------- histogram


@pytest.fixture(scope="module")
def histogram_state():
    # A float, an integer and a label column: edges, integer bins and frequencies.
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "size": rng.normal(size=100),
            "count": rng.poisson(3.0, size=100),
            "colour": rng.choice(["red", "green", "blue"], size=100),
        }
    )
    return HistogramDensity().fit(table).__getstate__()


def _set(name, j, value):
    def change(state):
        if j is None:
            state[name] = value(state[name])
        else:
            state[name][j] = value(state[name][j])

    return change


HISTOGRAM_DAMAGE = {
    "n_bins_dtype": (_set("n_bins_", None, lambda a: a.astype(float)), "n_bins_.*dtype kind 'i'"),
    "n_bins_length": (_set("n_bins_", None, lambda a: a[:2]), r"n_bins_ has shape \(2,\)"),
    "tail_shape": (_set("tail_log_mass_", None, lambda a: a[:, :1]), "tail_log_mass_"),
    "integer_bins_dtype": (_set("_integer_bins", None, lambda a: a.astype(int)), "_integer_bins"),
    "divisor_length": (_set("_divisor", None, lambda a: a[:1]), "_divisor"),
    "edges_shape": (_set("bin_edges_", 0, lambda a: a[:-1]), r"bin_edges_\[0\]"),
    "scaled_edges_dtype": (
        _set("_scaled_edges", 1, lambda a: a.astype("f4")),
        r"_scaled_edges\[1\]",
    ),
    "counts_dtype": (_set("bin_counts_", 1, lambda a: a.astype(float)), r"bin_counts_\[1\]"),
    "density_shape": (_set("log_density_", 2, lambda a: a[:2]), r"log_density_\[2\]"),
    "edges_of_a_label_column": (
        _set("bin_edges_", 2, lambda a: np.zeros(4)),
        "label column 'colour'",
    ),
    "levels_of_a_label_column": (
        _set("n_bins_", None, lambda a: np.array([a[0], a[1], 5])),
        "n_bins_.2. is 5, but column 'colour' has 3 categories",
    ),
    "list_length": (_set("log_density_", None, lambda a: a[:2]), "log_density_ is not a list of 3"),
    "schema_columns": (
        lambda s: s["schema_"]["columns_"].pop(),
        "schema_ describes 2 columns, but n_features_in_ is 3",
    ),
    "missing_array": (lambda s: s.pop("_divisor"), "_divisor"),
}


def test_the_undamaged_histogram_state_loads(histogram_state):
    loaded = HistogramDensity.__new__(HistogramDensity)
    loaded.__setstate__(pickle.loads(pickle.dumps(histogram_state)))
    assert loaded.sample(3, random_state=0).shape == (3, 3)


@pytest.mark.parametrize("damage", sorted(HISTOGRAM_DAMAGE))
def test_damaged_histogram_state_is_refused_at_load_naming_the_part(histogram_state, damage):
    change, part = HISTOGRAM_DAMAGE[damage]
    state = _damaged(histogram_state, change)
    with pytest.raises(ValueError, match=REFUSED.format("HistogramDensity") + part) as error:
        HistogramDensity.__new__(HistogramDensity).__setstate__(state)
    assert "set_params" not in str(error.value)


def test_an_unfitted_histogram_loads_without_checks():
    state = HistogramDensity(bins=3).__getstate__()
    loaded = HistogramDensity.__new__(HistogramDensity)
    loaded.__setstate__(state)
    assert loaded.bins == 3
