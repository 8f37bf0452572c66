"""Custom encoder and decoder networks: the contract, its errors, and the estimator API."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from torch import nn

from sklearn_vae import VAETransformer
from sklearn_vae._networks import build_trunk

# Classes at module level pickle by reference, as a user's own would.


class MLPEncoder(nn.Module):
    """The library's default encoder trunk: a ReLU MLP on ``n_inputs``."""

    def __init__(self, n_inputs, hidden_layer_sizes=(8,)):
        super().__init__()
        self.n_inputs = n_inputs
        layers = []
        for width in hidden_layer_sizes:
            layers += [nn.Linear(n_inputs, width), nn.ReLU()]
            n_inputs = width
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class MLPDecoder(MLPEncoder):
    """The default decoder trunk: a ReLU MLP on ``n_components``."""

    def __init__(self, n_components, hidden_layer_sizes=(8,)):
        super().__init__(n_components, hidden_layer_sizes)


class ConvDecoder(nn.Module):
    """z -> 4 channels of 8x8: a convolutional trunk that needs its input to be a matrix."""

    def __init__(self, n_components):
        super().__init__()
        self.expand = nn.Linear(n_components, 4 * 4 * 4)
        self.conv = nn.ConvTranspose2d(4, 4, kernel_size=2, stride=2)

    def forward(self, z):
        h = self.expand(z).reshape(len(z), 4, 4, 4)  # fails unless z is (n_rows, n_components)
        return torch.relu(self.conv(h)).flatten(1)


class ImageEncoder(nn.Module):
    """An 8x8 image -> 16 hidden units, with a small convolution."""

    def __init__(self, n_inputs):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=3, padding=1)
        self.out = nn.Linear(2 * 64, 16)

    def forward(self, x):
        return torch.relu(self.out(torch.relu(self.conv(x.reshape(-1, 1, 8, 8))).flatten(1)))


class Returns(nn.Module):
    """A trunk whose forward returns ``output(x)``: for the contract's errors."""

    def __init__(self, n_inputs=None, n_components=None, output=None):
        super().__init__()
        self.output = output

    def forward(self, x):
        return self.output(x)


def _unflattened(x):
    return x.reshape(len(x), 1, -1)


def _tuple(x):
    return (x, x)


def _one_row(x):
    return x[:1]


def _width_of_batch(x):
    return x.repeat(1, 4)[:, : len(x)]


def _empty(x):
    return x[:, :0]


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(120, 5))


COMMON = dict(n_components=2, max_iter=4, random_state=0)


# ----------------------------------------------------- the same model as the default


@pytest.mark.parametrize("custom", ["encoder", "decoder", "both"])
def test_custom_mlp_equal_to_the_default_gives_the_same_fit_transform_and_scores(X, custom):
    # The user MLP is built where the default's layers are, under the same seed,
    # so it starts from the same weights; on complete data the mask offsets
    # (after the trunk here, in the first layer by default) stay zero.
    networks = {}
    if custom in ("encoder", "both"):
        networks.update(encoder=MLPEncoder, encoder_params={"hidden_layer_sizes": (8, 4)})
    if custom in ("decoder", "both"):
        networks.update(decoder=MLPDecoder, decoder_params={"hidden_layer_sizes": (4, 8)})
    default = VAETransformer(hidden_layer_sizes=(8, 4), **COMMON).fit(X)
    own = VAETransformer(hidden_layer_sizes=(8, 4), **networks, **COMMON).fit(X)
    assert own.loss_curve_ == default.loss_curve_
    assert_array_equal(own.transform(X), default.transform(X))
    assert_array_equal(own.score_samples(X), default.score_samples(X))
    assert_array_equal(own.sample(3, random_state=0), default.sample(3, random_state=0))
    own_iwae = own.log_likelihood(X[:10], n_importance_samples=20, random_state=0)
    default_iwae = default.log_likelihood(X[:10], n_importance_samples=20, random_state=0)
    assert_array_equal(own_iwae, default_iwae)


def test_the_default_hidden_layer_sizes_shape_only_the_side_left_to_the_mlp(X):
    vae = VAETransformer(hidden_layer_sizes=(7,), encoder=MLPEncoder, **COMMON).fit(X)
    module = vae.net_.module_
    linear = [layer for layer in module.decoder.trunk if isinstance(layer, nn.Linear)]
    assert [layer.out_features for layer in linear] == [7]
    assert module.encoder.trunk.n_outputs == 8  # MLPEncoder's own default width


def test_a_class_gets_the_encoder_input_width_and_the_latent_size(X):
    vae = VAETransformer(encoder=MLPEncoder, decoder=MLPDecoder, **COMMON).fit(X)
    module = vae.net_.module_
    assert module.encoder.trunk.network.n_inputs == X.shape[1]
    assert module.decoder.trunk.network.n_inputs == vae.n_components


def test_a_convolutional_decoder_sees_a_matrix_even_when_z_has_sample_dimensions():
    X = load_digits().data[:100]
    vae = VAETransformer(
        encoder=ImageEncoder, decoder=ConvDecoder, likelihood="gaussian", dequantize=True, **COMMON
    ).fit(X)
    # The scores and the IWAE bound call the decoder on (draws, rows, n_components).
    assert np.isfinite(vae.score_samples(X[:5])).all()
    assert np.isfinite(vae.log_likelihood(X[:5], n_importance_samples=7)).all()
    assert vae.sample(4, random_state=0).shape == (4, 64)
    assert vae.net_.module_.decoder.trunk.n_outputs == 4 * 8 * 8


def test_a_lazy_module_instance_is_initialised_by_the_dry_run(X):
    encoder = nn.Sequential(nn.LazyLinear(6), nn.ReLU())
    vae = VAETransformer(encoder=encoder, **COMMON).fit(X)
    assert vae.net_.module_.encoder.trunk.network[0].in_features == X.shape[1]
    assert isinstance(vae.encoder[0], nn.LazyLinear)  # the parameter is left alone
    assert vae.transform(X).shape == (len(X), 2)


# ----------------------------------------------------------------- the contract's errors


@pytest.mark.parametrize(
    "output, error, message",
    [
        (_unflattened, ValueError, r"returned a tensor of shape \(2, 1, 5\) for an input of shape"),
        (_tuple, TypeError, "returned tuple; its forward must return one tensor"),
        (_one_row, ValueError, r"returned a tensor of shape \(1, 5\) .* must return shape \(2,"),
        (_empty, ValueError, r"returned a tensor of shape \(2, 0\) .* one non-empty hidden vector"),
    ],
)
def test_an_encoder_with_the_wrong_output_raises_at_fit(X, output, error, message):
    vae = VAETransformer(encoder=Returns, encoder_params={"output": output}, **COMMON)
    with pytest.raises(error, match=f"The encoder Returns {message}"):
        vae.fit(X)
    assert not hasattr(vae, "net_")


def test_a_decoder_with_the_wrong_output_raises_at_fit(X):
    vae = VAETransformer(decoder=Returns, decoder_params={"output": _unflattened}, **COMMON)
    message = r"The decoder Returns returned a tensor of shape \(2, 1, 2\) for an input of"
    with pytest.raises(ValueError, match=message):
        vae.fit(X)


def test_a_width_that_depends_on_the_batch_raises_in_training(X):
    vae = VAETransformer(encoder=Returns, encoder_params={"output": _width_of_batch}, **COMMON)
    message = "returned 20 hidden units per row, but 2 when its width was measured"
    with pytest.raises(ValueError, match=message):
        vae.set_params(batch_size=120, early_stopping=False).fit(X)


def test_a_class_that_does_not_take_the_size_keyword_raises_a_type_error(X):
    with pytest.raises(TypeError, match=r"decoder=MLPEncoder cannot be called as MLPEncoder\("):
        VAETransformer(decoder=MLPEncoder, **COMMON).fit(X)
    with pytest.raises(TypeError, match="take the keyword argument n_inputs and each key"):
        VAETransformer(encoder=MLPEncoder, encoder_params={"depth": 2}, **COMMON).fit(X)


def test_a_callable_that_returns_no_module_raises_a_type_error(X):
    with pytest.raises(TypeError, match="encoder=<lambda> returned ndarray, not a torch.nn.Module"):
        VAETransformer(encoder=lambda n_inputs: np.zeros(n_inputs), **COMMON).fit(X)


def test_network_params_without_a_class_to_build_raise(X):
    with pytest.raises(ValueError, match="encoder=None uses the MLP of hidden_layer_sizes"):
        VAETransformer(encoder_params={"hidden_layer_sizes": (4,)}, **COMMON).fit(X)
    instance = MLPEncoder(X.shape[1])
    with pytest.raises(ValueError, match="encoder is a module instance .MLPEncoder., which is"):
        VAETransformer(encoder=instance, encoder_params={"a": 1}, **COMMON).fit(X)


def test_a_network_of_the_wrong_type_is_rejected_by_parameter_validation(X):
    with pytest.raises(ValueError, match="The 'encoder' parameter of VAETransformer must be"):
        VAETransformer(encoder="conv", **COMMON).fit(X)


# -------------------------------------------------- get_params, set_params, clone, search


def test_network_params_are_nested_parameters_that_round_trip_through_clone():
    kwargs = {"hidden_layer_sizes": (8,)}
    vae = VAETransformer(encoder=MLPEncoder, encoder_params=kwargs)
    params = vae.get_params()
    assert params["encoder__hidden_layer_sizes"] == (8,)
    assert not any(key.startswith("decoder__") for key in params)
    assert "encoder__hidden_layer_sizes" not in vae.get_params(deep=False)

    vae.set_params(encoder__hidden_layer_sizes=(4,), decoder=MLPDecoder, decoder__depth=3)
    assert vae.encoder_params == {"hidden_layer_sizes": (4,)}
    assert kwargs == {"hidden_layer_sizes": (8,)}  # the dict passed in is not modified
    assert vae.decoder_params == {"depth": 3}

    copy = clone(vae)
    assert copy.get_params() == vae.get_params()
    assert copy.encoder is MLPEncoder and copy.encoder_params is not vae.encoder_params
    with pytest.raises(ValueError, match="Invalid parameter 'encoders'"):
        vae.set_params(encoders__width=3)


def test_an_instance_parameter_is_copied_by_clone_and_fit_never_shared(X):
    instance = MLPEncoder(X.shape[1])
    before = [p.detach().clone() for p in instance.parameters()]
    vae = VAETransformer(encoder=instance, **COMMON)
    assert clone(vae).encoder is not instance
    vae.fit(X)
    trained = vae.net_.module_.encoder.trunk.network
    assert trained is not instance
    for p, q in zip(instance.parameters(), before, strict=True):
        assert torch.equal(p, q)
    # Refitting starts again from the instance's weights: the same model.
    assert_array_equal(clone(vae).fit(X).transform(X), vae.transform(X))


def test_random_state_seeds_the_weights_of_a_network_class(X):
    vae = VAETransformer(encoder=MLPEncoder, decoder=MLPDecoder, **COMMON)
    first, again = clone(vae).fit(X).transform(X), clone(vae).fit(X).transform(X)
    other = clone(vae).set_params(random_state=1).fit(X).transform(X)
    assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_grid_search_over_a_network_hyperparameter_reaches_the_module(X):
    search = GridSearchCV(
        VAETransformer(encoder=MLPEncoder, **COMMON),
        {"encoder__hidden_layer_sizes": [(3,), (5,)]},
        cv=2,
    ).fit(X)
    assert [p["encoder__hidden_layer_sizes"] for p in search.cv_results_["params"]] == [(3,), (5,)]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_params_["encoder__hidden_layer_sizes"]
    assert search.best_estimator_.net_.module_.encoder.trunk.n_outputs == best[-1]


# ------------------------------------------------------- pickling, early stopping, tables


@pytest.mark.parametrize("as_instance", [False, True])
def test_a_fitted_custom_network_pickles(X, as_instance):
    encoder = MLPEncoder(X.shape[1]) if as_instance else MLPEncoder
    vae = VAETransformer(encoder=encoder, decoder=ConvDecoder, **COMMON).fit(X)
    loaded = pickle.loads(pickle.dumps(vae))
    assert_array_equal(loaded.transform(X), vae.transform(X))
    assert_array_equal(loaded.score_samples(X), vae.score_samples(X))


def test_early_stopping_stops_a_custom_network_and_keeps_its_best_epoch(X):
    networks = dict(encoder=MLPEncoder, decoder=MLPDecoder, n_components=2, random_state=0)
    vae = VAETransformer(**networks, max_iter=50, tol=1e6, n_iter_no_change=3).fit(X)
    # No epoch improves on the first by tol: three more epochs, then the first is restored,
    # which is the model that training for one epoch gives.
    assert vae.n_iter_ == 4
    one_epoch = VAETransformer(**networks, max_iter=1).fit(X)
    assert_array_equal(vae.transform(X), one_epoch.transform(X))


def test_a_table_with_missing_values_through_a_custom_encoder():
    rng = np.random.default_rng(0)
    n = 200
    size = rng.normal(size=n)
    colour = np.where(size > 0, "red", np.where(size < -1, "blue", "green")).astype(object)
    table = pd.DataFrame({"size": size, "weight": 2 * size + rng.normal(size=n), "colour": colour})
    table.loc[rng.random(n) < 0.2, "size"] = np.nan
    table.loc[rng.random(n) < 0.2, "colour"] = None
    vae = VAETransformer(encoder=MLPEncoder, decoder=MLPDecoder, **COMMON).fit(table)
    encoder = vae.net_.module_.encoder
    # Two standardised numbers and three one-hot levels.
    assert encoder.trunk.network.n_inputs == 2 + 3
    # The mask enters the posterior head, whose offsets for the missing columns trained.
    offsets = encoder.loc.missing_weight.detach()
    assert (offsets[:, [0, 2]] != 0).all() and (offsets[:, 1] == 0).all()
    scores = vae.score_samples(table)
    assert np.isfinite(scores).all()
    # A missing entry is marginalised, not read as a zero: the mask changes the code.
    row = table.iloc[[0]].assign(size=np.nan)
    zero = table.iloc[[0]].assign(size=np.nanmean(table["size"]))
    assert not np.allclose(vae.transform(row), vae.transform(zero))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_custom_network_trains_and_scores_on_cuda(X):
    vae = VAETransformer(encoder=MLPEncoder, decoder=ConvDecoder, device="cuda", **COMMON).fit(X)
    assert next(vae.net_.module_.encoder.trunk.parameters()).is_cuda
    assert np.isfinite(vae.score_samples(X)).all()
    assert np.isfinite(vae.log_likelihood(X, n_importance_samples=10)).all()
    assert vae.sample(3, random_state=0).shape == (3, X.shape[1])


def test_the_dry_run_leaves_the_network_state_and_mode_alone():
    # In training mode the two zero rows would move batch norm's running statistics.
    instance = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4))
    trunk = build_trunk("encoder", instance, None, 5)
    assert trunk.n_outputs == 4 and trunk.network.training
    state = trunk.network.state_dict()
    for key, value in instance.state_dict().items():
        assert torch.equal(state[key], value), key
