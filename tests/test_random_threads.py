"""random_state means the same bits from any thread; torch's global generator is left alone."""

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from torch import nn
from torch.distributions import Bernoulli, Categorical, Independent, Normal, Poisson

from sklearn_vae import VAEImputer, VAETransformer
from sklearn_vae._random import (
    POISSON_NORMAL_RATE,
    draw,
    generator,
    global_generator,
    permutation,
    seeded,
    standard_normal,
    torch_seed,
    uniform,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(n_components=2, hidden_layer_sizes=(16,), max_iter=3)
N_CALLS, N_THREADS = 12, 4


def _data(n_rows=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 4)) @ rng.normal(size=(4, 4))
    X[rng.random(X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    return X


@pytest.fixture(scope="module")
def fitted():
    X = _data()
    vae = VAETransformer(**SMALL, random_state=0).fit(X)
    imputers = {
        sample: VAEImputer(
            VAETransformer(**SMALL, random_state=0),
            n_estimators=1,
            sample_posterior=sample,
            n_importance_samples=20,
            random_state=0,
        ).fit(X)
        for sample in (False, True)
    }
    return X, vae, imputers


def _calls(X, vae, imputers):
    """Seeded calls, each run with seed ``i % 3``: every seed three times in a batch of 12."""
    return {
        "log_likelihood": lambda i: vae.log_likelihood(
            X, n_importance_samples=30, random_state=i % 3
        ),
        "sample": lambda i: vae.sample(2000, random_state=i % 3),
        "sample_given": lambda i: vae.sample(
            600, random_state=i % 3, given={0: 1.0}, n_importance_samples=20
        ),
        "impute_mean": lambda i: imputers[False].set_params(random_state=i % 3).transform(X),
        "impute_draw": lambda i: imputers[True].set_params(random_state=i % 3).transform(X),
    }


@pytest.mark.parametrize(
    "call", ["log_likelihood", "sample", "sample_given", "impute_mean", "impute_draw"]
)
def test_seeded_calls_from_four_threads_give_the_sequential_bits(fitted, call):
    # 12 calls over 4 threads, three per seed: each gives the bits of the
    # same call made alone, and different seeds give different results.
    run = _calls(*fitted)[call]
    if call.startswith("impute"):
        # set_params on a shared imputer is not thread-safe: one imputer per call.
        imputer = fitted[2][call == "impute_draw"]
        copies = [pickle.loads(pickle.dumps(imputer)) for _ in range(N_CALLS)]

        def run(i):
            return copies[i].set_params(random_state=i % 3).transform(fitted[0])

    sequential = [run(i) for i in range(N_CALLS)]
    with ThreadPoolExecutor(N_THREADS) as pool:
        parallel = list(pool.map(run, range(N_CALLS)))
    for i, (alone, together) in enumerate(zip(sequential, parallel, strict=True)):
        assert_array_equal(together, alone, err_msg=f"call {i}")
        assert_array_equal(alone, sequential[i % 3])
    assert not np.array_equal(sequential[0], sequential[1], equal_nan=True)


class _DropoutTrunk(nn.Module):
    """A user trunk whose dropout draws from torch's global generator inside torch."""

    def __init__(self, n_inputs):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_inputs, 16), nn.ReLU(), nn.Dropout(0.3))

    def forward(self, x):
        return self.layers(x)


def _fit_bits(params, X):
    vae = VAETransformer(**SMALL, **params).fit(X)
    weights = [value.numpy().copy() for value in vae.net_.module_.state_dict().values()]
    return np.array(vae.loss_curve_), weights


@pytest.mark.parametrize("network", [None, _DropoutTrunk], ids=["mlp", "user_dropout"])
def test_two_seeded_fits_in_two_threads_give_the_bits_of_sequential_fits(network):
    # Two fits at once, each with its own seed, end with the weights and loss
    # curves of the same fits made one after the other: the default network,
    # and a user network whose dropout draws from torch's global generator.
    X = np.nan_to_num(_data(400, seed=1))
    params = [dict(random_state=seed, encoder=network) for seed in (0, 1)]
    sequential = [_fit_bits(p, X) for p in params]
    with ThreadPoolExecutor(2) as pool:
        parallel = list(pool.map(lambda p: _fit_bits(p, X), params))
    for (curve, weights), (alone_curve, alone_weights) in zip(parallel, sequential, strict=True):
        assert_array_equal(curve, alone_curve)
        for value, alone in zip(weights, alone_weights, strict=True):
            assert_array_equal(value, alone)
    assert not np.array_equal(sequential[0][0], sequential[1][0])


def test_library_calls_leave_torch_global_generator_alone(fitted):
    # Fits, seeded and unseeded calls and loading: torch's global state is the
    # same before and after, and the caller's next draw is the one it expected.
    X, vae, imputers = fitted
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    VAETransformer(**SMALL, encoder=_DropoutTrunk, random_state=0).fit(np.nan_to_num(X[:100]))
    for call in _calls(X[:50], vae, imputers).values():
        call(0)
    vae.sample(3, random_state=None)
    pickle.loads(pickle.dumps(vae)).transform(X[:5])
    assert torch.equal(torch.random.get_rng_state(), state)


# ------------------------------------------------------------ the sections


def test_a_section_has_its_own_seeded_generator_and_ends_with_the_block():
    assert generator() is None and not seeded()
    with torch_seed(7, "cpu"):
        assert seeded()
        first = torch.rand(3, generator=generator())
        assert generator() is generator("cpu")
        with torch_seed(8, "cpu"):
            inner = uniform(3)
        after = uniform(3)
    assert generator() is None and not seeded()
    expected = torch.Generator().manual_seed(7)
    assert_array_equal(first, torch.rand(3, generator=expected))
    assert_array_equal(after, torch.rand(3, generator=expected))
    assert_array_equal(inner, torch.rand(3, generator=torch.Generator().manual_seed(8)))


def test_sections_of_different_threads_do_not_see_each_other():
    def in_thread(seed):
        with torch_seed(seed, "cpu"):
            return [generator(), uniform(1000)]

    with torch_seed(0, "cpu"):
        mine = generator()
        with ThreadPoolExecutor(2) as pool:
            theirs = list(pool.map(in_thread, [0, 0]))
        assert generator() is mine
    assert theirs[0][0] is not mine and theirs[0][0] is not theirs[1][0]
    assert_array_equal(theirs[0][1], theirs[1][1])


def test_the_global_generator_is_lent_the_section_stream_and_handed_back():
    # One stream, whether a draw comes from the section's generator or from
    # torch's global one inside global_generator(): the draws of the global
    # seeding, in the same order; the caller's global state comes back.
    torch.manual_seed(99)
    state = torch.random.get_rng_state()
    with torch_seed(5, "cpu"):
        a = standard_normal(5, torch.float64)
        with global_generator():
            assert generator() is None
            b = torch.randn(20)
            with global_generator():  # re-entrant
                c = torch.rand(4)
        d = permutation(10)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(5)
    expected = [torch.randn(5, dtype=torch.float64), torch.randn(20), torch.rand(4)]
    for value, want in zip([a, b, c, d], [*expected, torch.randperm(10)], strict=True):
        assert_array_equal(value, want)


def test_outside_a_section_the_global_generator_is_used():
    torch.manual_seed(3)
    drawn = [standard_normal(4), uniform(4), permutation(6)]
    with global_generator():
        lent = torch.rand(2)
    torch.manual_seed(3)
    expected = [torch.randn(4), torch.rand(4), torch.randperm(6), torch.rand(2)]
    for value, want in zip([*drawn, lent], expected, strict=True):
        assert_array_equal(value, want)


# --------------------------------------------------------------- the draws


def _families():
    loc = torch.linspace(-2, 2, 12, dtype=torch.float64).reshape(3, 4)
    return {
        "normal": Normal(loc, torch.exp(loc / 3)),
        "independent": Independent(Normal(loc, torch.exp(loc / 3)), 1),
        "categorical": Categorical(logits=torch.stack([loc, -loc, loc**2], -1)),
        "bernoulli": Bernoulli(logits=loc),
        "poisson": Poisson(torch.exp(loc)),
    }


@pytest.mark.parametrize("family", list(_families()))
@pytest.mark.parametrize("sample_shape", [(), (5,)])
def test_a_draw_is_the_distribution_sample_of_the_same_seed(family, sample_shape):
    distribution = _families()[family]
    torch.manual_seed(11)
    expected = distribution.sample(sample_shape)
    with torch_seed(11, "cpu"):
        value = draw(distribution, sample_shape)
    assert value.shape == expected.shape
    assert_array_equal(value.numpy(), expected.double().numpy())


def test_a_normal_draw_is_reparametrised():
    loc = torch.zeros(3, requires_grad=True)
    draw(Normal(loc, torch.ones(3))).sum().backward()
    assert_array_equal(loc.grad, torch.ones(3))


@pytest.mark.parametrize("family", ["categorical", "bernoulli", "poisson"])
def test_a_draw_of_non_finite_parameters_is_nan_and_leaves_the_other_rows(family):
    values = torch.tensor([[0.2, 0.5, 0.3], [np.nan, 0.5, 0.5], [0.1, 0.1, 0.8]])
    build = {
        "categorical": lambda p: Categorical(probs=p, validate_args=False),
        "bernoulli": lambda p: Bernoulli(probs=p, validate_args=False),
        "poisson": lambda p: Poisson(p * 10, validate_args=False),
    }[family]
    clean = values.nan_to_num(0.5)
    with torch_seed(0, "cpu"):
        damaged = draw(build(values))
    with torch_seed(0, "cpu"):
        reference = draw(build(clean))
    nan = torch.isnan(damaged)
    expected = torch.isnan(values).any(-1) if family == "categorical" else torch.isnan(values)
    assert_array_equal(nan, expected)
    if family != "poisson":  # the same uniforms for the same shapes
        assert_array_equal(damaged[~nan], reference[~nan])


def test_categorical_rows_without_probabilities_are_nan_and_a_zero_one_is_no_fault():
    probs = torch.tensor([[0.0, 0.0], [-1.0, 2.0], [np.inf, 1.0], [0.3, 0.7], [0.0, 1.0]])
    with torch_seed(0, "cpu"):
        codes = draw(Categorical(probs=probs, validate_args=False))
    assert_array_equal(torch.isnan(codes), [True, True, True, False, False])
    assert codes[4] == 1


def test_poisson_draws_beyond_torch_range_are_counts_near_the_rate():
    # torch.poisson gives -2**63 from rates near 2**63; above POISSON_NORMAL_RATE
    # the draw is the rounded normal approximation: integers within a few sqrt(rate).
    rate = [3.0, POISSON_NORMAL_RATE, 4.0 * POISSON_NORMAL_RATE, 1e30, 1e300]
    rate = torch.tensor(rate, dtype=torch.float64).expand(2000, -1)
    with torch_seed(0, "cpu"):
        counts = draw(Poisson(rate, validate_args=False))
    assert torch.all(counts == torch.floor(counts))
    z = (counts - rate) / rate.sqrt()
    assert torch.all(z.abs() < 6)
    assert torch.all(z[:, 2:3].std(0) > 0.9) and torch.all(z[:, 2:3].std(0) < 1.1)
    assert z[:, 2].abs().mean() > 0.5  # a draw, not the rate itself


def test_poisson_draws_follow_torch_below_the_threshold_and_the_rounded_normal_above():
    # The exact stream: torch.poisson over the rates up to the threshold (0 in
    # place of the others), then one float64 normal per rate above it.
    rate = torch.tensor([0.0, 2.5, POISSON_NORMAL_RATE] + [3 * POISSON_NORMAL_RATE] * 20)
    rate = rate.double()
    with torch_seed(8, "cpu"):
        counts = draw(Poisson(rate, validate_args=False))
    generator = torch.Generator().manual_seed(8)
    expected = torch.poisson(rate * (rate <= POISSON_NORMAL_RATE), generator=generator)
    noise = torch.randn(20, dtype=torch.float64, generator=generator)
    expected[3:] = torch.floor(rate[3:] + noise * torch.sqrt(rate[3:]) + 0.5)
    assert_array_equal(counts, expected)
    assert counts[0] == 0


def test_uniform_and_standard_normal_draw_in_the_dtype_asked_for():
    with torch_seed(2, "cpu"):
        values = [uniform(3, torch.float64), standard_normal(3, torch.float64), uniform(3)]
    generator = torch.Generator().manual_seed(2)
    expected = [
        torch.rand(3, dtype=torch.float64, generator=generator),
        torch.randn(3, dtype=torch.float64, generator=generator),
        torch.rand(3, generator=generator),
    ]
    for value, want in zip(values, expected, strict=True):
        assert value.dtype == want.dtype
        assert_array_equal(value, want)


def test_draw_refuses_a_distribution_it_cannot_seed():
    with pytest.raises(TypeError, match="Gamma"):
        draw(torch.distributions.Gamma(torch.ones(2), torch.ones(2)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_section_has_a_cuda_stream_that_it_lends():
    torch.manual_seed(4)
    cpu, cuda = torch.random.get_rng_state(), torch.cuda.get_rng_state()
    with torch_seed(4, "cuda"):
        a = standard_normal(8, device="cuda")
        with global_generator():
            b = torch.randn(8, device="cuda")
        c = standard_normal(8, device="cuda")
    assert torch.equal(torch.random.get_rng_state(), cpu)
    assert torch.equal(torch.cuda.get_rng_state(), cuda)
    torch.manual_seed(4)
    for value in (a, b, c):
        assert_array_equal(value.cpu(), torch.randn(8, device="cuda").cpu())
