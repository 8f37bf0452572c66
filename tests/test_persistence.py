"""Saving and loading: skops.io, pickle and joblib reproduce every output bit for bit."""

import io
import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_factor_data, round_trip
from numpy.testing import assert_array_equal
from sklearn.base import BaseEstimator
from sklearn.mixture import GaussianMixture
from skorch.exceptions import DeviceWarning
from test_tables import make_table

from sklearn_vae import DensityOutlierDetector, HistogramDensity, VAEImputer, VAETransformer
from sklearn_vae._persistence import LAYOUT

sio = pytest.importorskip("skops.io", reason="skops is in the 'persist' and 'test' extras")
from skops.io.exceptions import UntrustedTypesFoundException  # noqa: E402

TINY = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)
VAE = "sklearn_vae._vae.VAETransformer"
HISTOGRAM = "sklearn_vae._histogram.HistogramDensity"
IMPUTER = "sklearn_vae._imputer.VAEImputer"
DETECTOR = "sklearn_vae._outlier.DensityOutlierDetector"

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def persistence_table():
    """The table of every column type, plus the pandas dtypes a schema must rebuild."""
    df = make_table(n=80)
    rng = np.random.default_rng(1)
    df["grade"] = pd.Categorical(rng.choice(["low", "high"], 80), ["low", "high"], ordered=True)
    df["flag"] = pd.array(rng.random(80) < 0.5, dtype="boolean")
    df["name"] = pd.array(rng.choice(["x", "y", None], 80), dtype=pd.StringDtype("python"))
    df["ratio"] = pd.array(rng.random(80), dtype="Float64")
    return df


def _fit(case):
    """A fitted estimator, the data to evaluate it on, and the types skops must list."""
    X = make_factor_data(120)
    counts = np.random.default_rng(0).poisson(3.0, size=(120, 4)).astype(np.float64)
    holes = X.copy()
    holes[np.random.default_rng(0).random(X.shape) < 0.2] = np.nan
    holes[np.isnan(holes).all(axis=1), 0] = 1.0
    table = persistence_table()
    if case == "vae":
        return VAETransformer(**TINY).fit(X), X, [VAE]
    if case == "vae_averaged":
        # The average of the weights is saved beside a fitted mixture prior.
        vae = VAETransformer(**TINY, average=0.9, prior="mixture").fit(X)
        assert vae.n_prior_components_ > 1
        return vae, X, [VAE]
    if case == "vae_on_a_torch_device":
        return VAETransformer(**TINY, device=torch.device("cpu")).fit(X), X, [VAE]
    if case == "vae_table":
        return VAETransformer(**TINY).fit(table), table, [VAE]
    if case == "vae_shared_levels":
        return VAETransformer(**TINY, likelihood="categorical").fit(counts), counts, [VAE]
    if case == "histogram":
        return HistogramDensity().fit(X), X, [HISTOGRAM]
    if case == "histogram_table":
        return HistogramDensity().fit(table), table, [HISTOGRAM]
    if case == "imputer":
        imputer = VAEImputer(
            VAETransformer(**TINY, decoder_variance="homoscedastic"),
            n_importance_samples=20,
            add_indicator=True,
            random_state=0,
        )
        return imputer.fit(holes), holes, [IMPUTER, VAE]
    if case == "detector":
        detector = DensityOutlierDetector(
            VAETransformer(**TINY, likelihood="gaussian", dequantize=True),
            background=HistogramDensity(bins="integer"),
            n_importance_samples=20,
            random_state=0,
        )
        return detector.fit(counts), counts, [DETECTOR, HISTOGRAM, VAE]
    assert case == "detector_gmm"
    return DensityOutlierDetector(GaussianMixture(random_state=0)).fit(X), X, [DETECTOR]


CASES = [
    "vae",
    "vae_averaged",
    "vae_on_a_torch_device",
    "vae_table",
    "vae_shared_levels",
    "histogram",
    "histogram_table",
    "imputer",
    "detector",
    "detector_gmm",
]


@pytest.fixture(scope="module", params=CASES)
def fitted(request):
    return _fit(request.param)


def _outputs(estimator, X):
    """Every output of a fitted estimator, with fixed seeds where it is random."""
    if isinstance(estimator, VAETransformer):
        Z = estimator.transform(X)
        return {
            "transform": Z,
            "inverse_transform": estimator.inverse_transform(Z),
            "score_samples": estimator.score_samples(X),
            "log_likelihood": estimator.log_likelihood(X, n_importance_samples=20, random_state=3),
            "sample": estimator.sample(7, random_state=3),
        }
    if isinstance(estimator, HistogramDensity):
        return {
            "score_samples": estimator.score_samples(X),
            "sample": estimator.sample(7, random_state=3),
        }
    if isinstance(estimator, VAEImputer):
        return {"transform": estimator.transform(X)}
    return {
        "decision_function": estimator.decision_function(X),
        "score_samples": estimator.score_samples(X),
        "predict": estimator.predict(X),
    }


def assert_same_outputs(expected, actual):
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(actual[name], value, check_exact=True, obj=name)
        else:
            assert actual[name].dtype == value.dtype, name
            assert_array_equal(actual[name], value, err_msg=name, strict=True)


def _edit(data, change):
    """The skops file ``data`` with ``change`` applied to its schema.json, as an attacker would."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    change(schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "schema.json":
                content = json.dumps(schema)
            target.writestr(item, content)
    return out.getvalue()


def _attributes(schema):
    """The estimator's attribute nodes in a skops schema."""
    return schema["content"]["content"]


# ------------------------------------------------------------------ skops.io


def test_skops_round_trip_reproduces_every_output_bit_for_bit(fitted):
    estimator, X, trusted = fitted
    loaded = sio.loads(sio.dumps(estimator), trusted=trusted)
    assert type(loaded) is type(estimator)
    assert loaded.get_params().keys() == estimator.get_params().keys()
    assert_same_outputs(_outputs(estimator, X), _outputs(loaded, X))


def test_untrusted_types_are_exactly_the_library_estimators(fitted):
    estimator, _, trusted = fitted
    assert sio.get_untrusted_types(data=sio.dumps(estimator)) == sorted(trusted)


def test_load_refuses_the_estimators_until_they_are_trusted(fitted):
    estimator, _, trusted = fitted
    data = sio.dumps(estimator)
    with pytest.raises(UntrustedTypesFoundException, match=trusted[0]):
        sio.loads(data)
    # The types themselves are accepted as well as their names.
    classes = {VAE: VAETransformer, HISTOGRAM: HistogramDensity}
    classes.update({IMPUTER: VAEImputer, DETECTOR: DensityOutlierDetector})
    assert type(sio.loads(data, trusted=[classes[name] for name in trusted])) is type(estimator)


@pytest.mark.parametrize(
    "injected, name",
    [
        ({"__class__": "system", "__module__": "os", "__loader__": "FunctionNode"}, "os.system"),
        (
            {"__class__": "Popen", "__module__": "subprocess", "__loader__": "ObjectNode"},
            "subprocess.Popen",
        ),
    ],
)
def test_file_edited_to_hold_an_extra_untrusted_type_is_refused(injected, name):
    vae = VAETransformer(**TINY).fit(make_factor_data(120))
    data = sio.dumps(vae)
    edited = _edit(data, lambda schema: _attributes(schema).update(n_iter_=injected))
    assert sio.get_untrusted_types(data=edited) == sorted([VAE, name])
    with pytest.raises(UntrustedTypesFoundException, match=name):
        sio.loads(edited, trusted=[VAE])
    assert sio.loads(data, trusted=[VAE]).n_iter_ == vae.n_iter_


def test_unknown_layout_is_refused_with_a_clear_message():
    data = sio.dumps(VAETransformer(**TINY).fit(make_factor_data(120)))

    def newer_layout(schema):
        node = _attributes(schema)["_sklearn_vae_layout"]
        # Without its id, which the int shares with equal ints elsewhere in the file.
        del node["__id__"]
        node["content"] = json.dumps(LAYOUT + 1)

    message = rf"state layout {LAYOUT + 1}; sklearn_vae .* reads layout {LAYOUT} only"
    with pytest.raises(ValueError, match=message):
        sio.loads(_edit(data, newer_layout), trusted=[VAE])


def test_a_histogram_of_an_unknown_layout_is_refused_under_its_own_name():
    # The message names the estimator that was loaded, here through pickle.
    state = HistogramDensity().fit(make_factor_data(50)).__getstate__()
    state["_sklearn_vae_layout"] = LAYOUT + 1
    message = rf"^This HistogramDensity was saved by sklearn_vae .* state layout {LAYOUT + 1};"
    with pytest.raises(ValueError, match=message):
        HistogramDensity().__setstate__(state)


def test_damaged_weights_are_refused_with_a_clear_message():
    state = VAETransformer(**TINY).fit(make_factor_data(120)).__getstate__()
    del state["net_"]["module"]["decoder.head.loc.weight"]
    with pytest.raises(ValueError, match="(?s)does not match the model .*decoder.head.loc.weight"):
        VAETransformer.__new__(VAETransformer).__setstate__(state)


def test_model_whose_architecture_was_changed_after_fit_loads_as_it_was_fitted():
    X = make_factor_data(120)
    vae = VAETransformer(**TINY).fit(X)
    expected = _outputs(vae, X)
    vae.set_params(hidden_layer_sizes=(4,), n_components=3, decoder_variance="homoscedastic")
    for loaded in (pickle.loads(pickle.dumps(vae)), sio.loads(sio.dumps(vae), trusted=[VAE])):
        assert loaded.hidden_layer_sizes == (4,) and loaded.n_components == 3
        assert_same_outputs(expected, _outputs(loaded, X))


def test_file_without_the_fitted_parameters_rebuilds_from_the_parameters_it_holds():
    # Files saved before the fitted parameters were kept: the parameters rebuild
    # the net, and a model changed with set_params before saving is refused.
    X = make_factor_data(120)
    vae = VAETransformer(**TINY).fit(X)
    state = vae.__getstate__()
    del state["_fitted_params"]
    loaded = VAETransformer.__new__(VAETransformer)
    loaded.__setstate__(dict(state))
    assert_same_outputs(_outputs(vae, X), _outputs(loaded, X))
    assert loaded._fitted_params == {**vae._fitted_params, "device": "cpu"}
    state["hidden_layer_sizes"] = (4,)
    with pytest.raises(ValueError, match="changed with set_params after fit"):
        VAETransformer.__new__(VAETransformer).__setstate__(state)


def test_column_dtype_that_its_name_does_not_rebuild_is_refused_when_saving():
    class Unregistered(pd.api.extensions.ExtensionDtype):
        name = "unregistered"
        type = object

    histogram = HistogramDensity().fit(make_factor_data(50))
    histogram.schema_.columns_[0].dtype = Unregistered()
    with pytest.raises(TypeError, match="dtype .* cannot be saved"):
        pickle.dumps(histogram)


def test_model_recorded_on_cuda_loads_on_the_cpu_bit_for_bit(fitted_vae, X_small):
    # Simulated without a GPU (tests/test_gpu.py has the real one): the net
    # records device "cuda", as one fitted on a GPU does.
    if torch.cuda.is_available():
        pytest.skip("needs a process without CUDA")
    vae = pickle.loads(pickle.dumps(fitted_vae))
    expected = _outputs(vae, X_small)
    vae.set_params(device="cuda").net_.device = "cuda"
    data = sio.dumps(vae)
    with pytest.warns(DeviceWarning, match=r"requested device \(cuda\) is not available"):
        loaded = sio.loads(data, trusted=[VAE])
    assert torch.device(loaded.net_.device).type == "cpu" and loaded.device == "cuda"
    assert_same_outputs(expected, _outputs(loaded, X_small))
    with pytest.raises(ValueError, match="CUDA is not available.*use device='cpu'"):
        loaded.fit(X_small)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_model_fitted_on_a_gpu_loads_bit_for_bit_on_a_cpu_only_process(tmp_path):
    X = make_factor_data(120)
    vae = VAETransformer(**TINY, device="cuda").fit(X)
    sio.dump(vae, tmp_path / "vae.skops")
    np.save(tmp_path / "X.npy", X)
    # The same weights evaluated on the CPU here: the CPU-only process must match them.
    vae.net_.module_.to("cpu")
    vae.net_.device = torch.device("cpu")
    expected = _outputs(vae, X)
    script = (
        "import numpy as np, skops.io as sio, torch, warnings;"
        "from test_persistence import _outputs;"
        "assert not torch.cuda.is_available();"
        "warnings.simplefilter('ignore');"
        f"vae = sio.load({str(tmp_path / 'vae.skops')!r}, trusted=[{VAE!r}]);"
        f"np.savez({str(tmp_path / 'out.npz')!r}, "
        f"**_outputs(vae, np.load({str(tmp_path / 'X.npy')!r})))"
    )
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "", "PYTHONPATH": str(Path(__file__).parent)}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    with np.load(tmp_path / "out.npz") as actual:
        assert_same_outputs(expected, dict(actual))


# ------------------------------------------------------------ training goes on


@pytest.mark.parametrize("average", [False, 0.9])
@pytest.mark.parametrize("dump", ["skops", "pickle"])
def test_training_continues_after_loading_exactly_as_without_saving(dump, average):
    # Adam's moments and step counts, the history and the random streams are
    # saved, and with ``average`` the raw weights and their average: a loaded
    # model trains on as the original does, bit for bit.
    X = make_factor_data(120)
    original = VAETransformer(**TINY, average=average, warm_start=True).fit(X)
    if dump == "skops":
        loaded = sio.loads(sio.dumps(original), trusted=[VAE])
    else:
        loaded = pickle.loads(pickle.dumps(original))
    for vae in (original, loaded):
        vae.fit(X).partial_fit(X)
    assert loaded.n_iter_ == original.n_iter_ == 2 * TINY["max_iter"] + 1
    assert loaded.loss_curve_ == original.loss_curve_
    assert_same_outputs(_outputs(original, X), _outputs(loaded, X))


def test_loading_leaves_the_callers_torch_random_stream_alone(fitted_vae):
    data = sio.dumps(fitted_vae)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    sio.loads(data, trusted=[VAE])
    assert_array_equal(torch.rand(3).numpy(), expected.numpy())


# ------------------------------------------------------------ pickle and joblib


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trips_reproduce_every_output(fitted, dump):
    estimator, X, _ = fitted
    loaded = round_trip(estimator, dump)
    assert_same_outputs(_outputs(estimator, X), _outputs(loaded, X))


def test_pickle_holds_no_torch_skorch_or_pandas_object():
    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            modules.add(module.split(".")[0])
            return super().find_class(module, name)

    modules = set()
    Recorder(io.BytesIO(pickle.dumps(_fit("vae_table")[0]))).load()
    # Label columns are encoded by the schema's own lookup, no scikit-learn encoder.
    assert modules == {"numpy", "sklearn_vae"}


@pytest.mark.parametrize("case", ["vae_table", "histogram_table"])
def test_pickle_of_the_layout_before_versioning_still_loads(case, monkeypatch):
    # The layout of pickles written before this one: the attributes as they
    # are, the skorch net and the schema objects included.
    estimator, X, _ = _fit(case)
    with monkeypatch.context() as patch:
        patch.setattr(type(estimator), "__getstate__", BaseEstimator.__getstate__)
        data = pickle.dumps(estimator)
    assert (b"skorch" in data) == (case == "vae_table")
    loaded = pickle.loads(data)
    assert type(loaded.schema_).__name__ == "TableSchema"
    assert_same_outputs(_outputs(estimator, X), _outputs(loaded, X))


# ------------------------------------------------------- custom networks


def test_custom_network_class_round_trips_and_is_listed_under_its_own_name():
    from test_custom_network import MLPDecoder, MLPEncoder

    X = make_factor_data(80)
    vae = VAETransformer(
        **TINY, encoder=MLPEncoder, decoder=MLPDecoder, encoder_params={"hidden_layer_sizes": (6,)}
    ).fit(X)
    data = sio.dumps(vae)
    classes = [f"{cls.__module__}.{cls.__qualname__}" for cls in (MLPDecoder, MLPEncoder)]
    assert sio.get_untrusted_types(data=data) == sorted([*classes, VAE])
    loaded = sio.loads(data, trusted=[*classes, VAE])
    for model in (vae, loaded):
        kinds = {type(m) for m in model.net_.module_.modules()}
        assert {MLPEncoder, MLPDecoder} <= kinds
    assert_same_outputs(_outputs(vae, X), _outputs(loaded, X))
    assert_same_outputs(_outputs(vae, X), _outputs(pickle.loads(pickle.dumps(vae)), X))
