"""VAEImputer's ensemble: how its ``n_estimators`` models are fitted and combined."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_vae import VAEImputer, VAETransformer
from sklearn_vae._schema import TableSchema

SMALL = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=20, random_state=0)
K = 50

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def frame():
    """240 rows: two correlated floats, a 3-level label, a categorical integer (levels 3..6)."""
    rng = np.random.default_rng(0)
    n = 240
    x = rng.normal(size=n)
    table = pd.DataFrame(
        {
            "x": x,
            "y": x + 0.5 * rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], n).astype(object),
            "level": rng.integers(3, 7, n),
        }
    )
    return table.mask(rng.uniform(size=table.shape) < 0.3).dropna(how="all")


@pytest.fixture(scope="module")
def ensemble(frame):
    vae = VAETransformer(likelihood={"level": "categorical"}, **SMALL)
    return VAEImputer(vae, n_estimators=3, n_importance_samples=K, random_state=0).fit(frame)


def _alone(imputer, member):
    """The fitted ``imputer`` holding only ``member`` of its ensemble (a shallow copy)."""
    alone = copy.copy(imputer)
    alone.estimators_, alone.estimator_ = [member], member
    return alone


def _missing(frame, column):
    return frame[column].isna().to_numpy()


def test_members_are_distinct_models_seeded_from_random_state(ensemble, frame):
    seeds = [member.random_state for member in ensemble.estimators_]
    assert len(set(seeds)) == 3 and SMALL["random_state"] not in seeds
    assert ensemble.estimator_ is ensemble.estimators_[0]
    again = ensemble._make_estimators(frame)
    assert [member.random_state for member in again] == seeds
    first, second = (
        next(member.net_.module_.parameters()).detach().numpy()
        for member in ensemble.estimators_[:2]
    )
    assert not np.allclose(first, second)
    # One model keeps the given estimator's own random_state.
    single = ensemble.set_params(n_estimators=1)._make_estimators(frame)
    ensemble.set_params(n_estimators=3)
    assert [member.random_state for member in single] == [SMALL["random_state"]]


def test_mean_averages_the_members_conditional_means(ensemble, frame):
    out = ensemble.transform(frame)
    alone = [_alone(ensemble, member).transform(frame) for member in ensemble.estimators_]
    for column in ("x", "y"):
        rows = _missing(frame, column)
        fills = np.array([a[column].to_numpy()[rows] for a in alone])
        assert_allclose(out[column].to_numpy()[rows], fills.mean(axis=0), rtol=1e-12)
        # The members disagree, so no one of them is the average.
        assert np.abs(fills[0] - fills[1]).max() > 1e-3


def test_an_ensemble_of_one_model_twice_imputes_exactly_as_that_model(ensemble, frame):
    # The ensemble path (category probabilities averaged, then the most
    # probable level picked) collapses to the single-model path, category
    # codes and their offsets included, when both members are one model.
    member = ensemble.estimators_[1]
    twice = copy.copy(ensemble)
    twice.estimators_ = [member, member]
    pd.testing.assert_frame_equal(
        twice.transform(frame), _alone(ensemble, member).transform(frame), rtol=1e-12
    )


def test_a_label_is_the_most_probable_and_a_level_the_nearest_to_the_mean(ensemble, frame):
    # The reference: each member's mixture probabilities of "colour" and
    # "level" from its own importance-sampling estimate (same proposals as the
    # ensemble draws: every member uses the same seed), averaged; then the
    # argmax for the labels of "colour", and the integer nearest the mean for
    # "level", whose integer levels are numbers.
    from sklearn_vae import _inference as inference
    from sklearn_vae._random import draw_seed

    schema = ensemble.estimator_.schema_
    encoded = np.array(schema.encode(frame, unknown="missing"), dtype=float)
    seed = draw_seed(np.random.RandomState(0))
    probabilities, votes = 0.0, []
    for member in ensemble.estimators_:
        blocks = []

        def expectation(module, x, proposal, n, chunk, blocks=blocks):
            return inference.conditional_expectation(module, x, proposal, n, chunk, blocks)

        values = inference._infer(
            member._fitted_model(), encoded, expectation, K, seed, unstandardise=False
        )
        probabilities = probabilities + values[:, encoded.shape[1] :]
        votes.append(values[:, encoded.shape[1] :])
    filled = ensemble.transform(frame)
    expected_codes = encoded.copy()
    start, disagreements = 0, 0
    for columns, offsets, binned, n_levels in blocks:
        stop = start + len(columns) * n_levels
        mixture = probabilities[:, start:stop].reshape(-1, len(columns), n_levels)
        mean = np.round(mixture @ np.arange(n_levels) / len(ensemble.estimators_))
        expected_codes[:, columns] = np.where(binned, mean, mixture.argmax(-1)) + offsets
        own = [v[:, start:stop].reshape(-1, len(columns), n_levels).argmax(-1) for v in votes]
        disagreements += int((own[0] != own[1]).sum())
        start = stop
    kinds = {
        schema.names[j]: bool(flag)
        for columns, _, binned, _ in blocks
        for j, flag in zip(columns, binned, strict=True)
    }
    assert kinds == {"colour": False, "level": True}
    expected = schema.decode(np.where(np.isnan(encoded), expected_codes, encoded))
    for column in ("colour", "level"):
        rows = _missing(frame, column)
        assert_array_equal(filled[column][rows].astype(str), expected[column][rows].astype(str))
    # The members' own picks differ on some rows, so the first member's alone would fail.
    assert disagreements > 0


def test_each_call_draws_every_row_from_one_member_picked_uniformly(ensemble, frame):
    # A call with sample_posterior=True is one member's draw, bit for bit (the
    # members share the proposals' seed); over random states the member is
    # uniform: each member's count over n calls is Binomial(n, 1/3), within 4
    # standard deviations of n / 3.
    n_calls = 45
    picks = []
    ensemble.set_params(sample_posterior=True)
    try:
        for random_state in range(n_calls):
            ensemble.set_params(random_state=random_state)
            out = ensemble.transform(frame)
            same = [
                _alone(ensemble, member).transform(frame).equals(out)
                for member in ensemble.estimators_
            ]
            assert sum(same) == 1, same
            picks.append(same.index(True))
    finally:
        ensemble.set_params(sample_posterior=False, random_state=0)
    counts = np.bincount(picks, minlength=3)
    bound = 4 * np.sqrt(n_calls * (1 / 3) * (2 / 3))
    assert np.all(np.abs(counts - n_calls / 3) < bound), counts


def test_an_ensemble_of_two_draws_from_both(ensemble, frame):
    # Over 12 seeds both members of a pair are picked (all 12 alike: 2 ** -11).
    pair = copy.copy(ensemble)
    pair.estimators_ = ensemble.estimators_[:2]
    pair.set_params(sample_posterior=True)
    alone = _alone(ensemble, ensemble.estimators_[0])
    alone.set_params(sample_posterior=True)
    from_first = []
    for random_state in range(12):
        out = pair.set_params(random_state=random_state).transform(frame)
        from_first.append(alone.set_params(random_state=random_state).transform(frame).equals(out))
    assert any(from_first) and not all(from_first)


def test_n_jobs_reaches_joblib(monkeypatch, frame):
    import sklearn_vae._imputer as imputer_module

    asked = []

    class Recording(imputer_module.Parallel):
        def __init__(self, n_jobs=None, **kwargs):
            asked.append(n_jobs)
            super().__init__(n_jobs=None, **kwargs)

    monkeypatch.setattr(imputer_module, "Parallel", Recording)
    VAEImputer(VAETransformer(**SMALL), n_estimators=2, n_jobs=3, n_importance_samples=5).fit(frame)
    assert asked == [3]


def test_every_default_member_models_integer_data_as_integers():
    X = np.random.default_rng(0).integers(0, 5, size=(60, 4)).astype(float)
    X[::5, 1] = np.nan
    members = VAEImputer(random_state=0)._make_estimators(X)
    assert len(members) == 5
    for data, integers in ((X, True), (X + 0.5, False)):
        for member in VAEImputer(random_state=0)._make_estimators(data):
            columns = TableSchema(member.likelihood, member.dequantize).fit(data).columns_
            # Five levels, 0..4: a categorical over them; shifted by 0.5, floats.
            expected = ("categorical", False) if integers else ("gaussian", False)
            assert [(c.likelihood, c.dequantize) for c in columns] == [expected] * 4


def test_parallel_fit_gives_the_same_imputations(frame):
    vae = VAETransformer(**SMALL)
    imputers = [
        VAEImputer(vae, n_estimators=2, n_importance_samples=K, n_jobs=n_jobs, random_state=0)
        for n_jobs in (None, 2)
    ]
    sequential, parallel = (imputer.fit(frame).transform(frame) for imputer in imputers)
    for column in ("x", "y"):
        assert_allclose(parallel[column], sequential[column], rtol=0, atol=1e-12)
    assert_array_equal(parallel["colour"], sequential["colour"])


@pytest.mark.parametrize("n_estimators", [0, 1.5, "5"])
def test_invalid_n_estimators_is_refused(frame, n_estimators):
    with pytest.raises(InvalidParameterError, match="n_estimators"):
        VAEImputer(VAETransformer(**SMALL), n_estimators=n_estimators).fit(frame)


def test_an_imputer_saved_before_the_ensemble_loads_as_one_model(frame):
    # Its state had no estimators_, n_estimators or n_jobs: it loads as the
    # one-model imputer it was, and imputes exactly as before.
    vae = VAETransformer(**SMALL)
    imputer = VAEImputer(vae, n_estimators=1, n_importance_samples=K, random_state=0).fit(frame)
    state = dict(imputer.__getstate__())
    for name in ("estimators_", "n_estimators", "n_jobs"):
        del state[name]
    restored = VAEImputer.__new__(VAEImputer)
    restored.__setstate__(state)
    assert restored.n_estimators == 1 and restored.n_jobs is None
    assert restored.estimators_ == [restored.estimator_]
    pd.testing.assert_frame_equal(restored.transform(frame), imputer.transform(frame))


def test_pick_levels_takes_the_mode_of_labels_and_the_nearest_level_to_the_mean():
    # Levels 0, 1, 2 with probabilities 0.4, 0, 0.6: the mode is 2 and the
    # mean 1.2, nearest to 1 (a level of probability 0, which the squared
    # error still prefers: 0.4 * 1 + 0.6 * 1 = 1 against 0.4 * 4 = 1.6 for 2).
    from sklearn_vae._inference import pick_levels

    probabilities = np.array([[[0.4, 0.0, 0.6], [0.4, 0.0, 0.6]]])
    binned = np.array([False, True])
    assert_array_equal(pick_levels(probabilities, binned), [[2, 1]])
    tensor = pick_levels(torch.as_tensor(probabilities), torch.as_tensor(binned))
    assert_array_equal(tensor.numpy(), [[2.0, 1.0]])
    assert_array_equal(pick_levels(probabilities, np.array([False, False])), [[2, 2]])
    # Four levels, mean 1.65: rounded to 2 (not floored to 1, nor the mode 3).
    four = np.array([[[0.45, 0.0, 0.0, 0.55]]])
    assert_array_equal(pick_levels(four, np.array([True])), [[2]])
    assert_array_equal(pick_levels(torch.as_tensor(four), torch.tensor([True])).numpy(), [[2.0]])
