"""hidden_layer_sizes="auto": the cross-validated choice between the MLP and the linear model."""

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold

from sklearn_vae import DensityOutlierDetector, VAEImputer, VAETransformer
from sklearn_vae import _network_choice as choice
from sklearn_vae import _training as training
from sklearn_vae._data import dequantized_view
from sklearn_vae._outlier import _fold_estimator

LINEAR, MLP = choice.LINEAR_SIZES, choice.MLP_SIZES


class Calls(list):
    """A record of calls that clones share (``clone`` deep-copies parameters)."""

    def __deepcopy__(self, memo):
        return self


class ScoredByWidth(BaseEstimator):
    """A stand-in whose held-out log-likelihood is known: ``per_layer`` nats per hidden layer
    plus the mean of the rows' first column, recording every fit and score."""

    def __init__(
        self,
        hidden_layer_sizes="auto",
        n_components=2,
        warm_start=True,
        verbose=1,
        random_state=0,
        per_layer=1.0,
        calls=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.per_layer = per_layer
        self.calls = calls

    def fit(self, X):
        self.fitted_rows_ = np.asarray(X)[:, 1].copy()
        self.raised_interrupts_ = training._RAISE_INTERRUPTS.get()
        self.calls.append(("fit", self.hidden_layer_sizes, self.warm_start, self.verbose))
        self.calls.append(("components", self.hidden_layer_sizes, self.n_components))
        return self

    def log_likelihood(self, X, *, n_importance_samples, random_state):
        self.calls.append(("score", n_importance_samples, random_state, self.raised_interrupts_))
        X = np.asarray(X)
        self.calls.append(("rows", tuple(X[:, 1].astype(int))))
        return X[:, 0] + self.per_layer * len(self.hidden_layer_sizes)


def _params(**changes):
    return {
        "hidden_layer_sizes": "auto",
        "n_components": 2,
        "encoder": None,
        "decoder": None,
        "random_state": 0,
        "verbose": 0,
        **changes,
    }


def _table(n_rows):
    # Column 0 is what ScoredByWidth scores; column 1 identifies the row.
    return np.column_stack([np.linspace(-1.0, 1.0, n_rows), np.arange(n_rows, dtype=float)])


def test_each_row_is_scored_by_the_candidate_fitted_without_it():
    calls = Calls()
    X = _table(12)
    folds = list(KFold(3, shuffle=True, random_state=1).split(X))
    scores = choice._held_out_scores(ScoredByWidth(calls=calls), (4, 4), X, folds, seed=7)
    # Column 0 plus 1 nat per hidden layer, each row in its own place.
    np.testing.assert_allclose(scores, X[:, 0] + 2.0, rtol=0, atol=1e-12)
    fits = [call for call in calls if call[0] == "fit"]
    assert fits == [("fit", (4, 4), False, 0)] * 3  # a fresh, quiet fit of the candidate
    scored = [call for call in calls if call[0] == "score"]
    assert scored == [("score", choice.CHOICE_IMPORTANCE_SAMPLES, 7, True)] * 3
    held_out = [call[1] for call in calls if call[0] == "rows"]
    assert held_out == [tuple(rows) for _, rows in folds]


def test_each_fold_model_is_fitted_on_its_training_rows_only(monkeypatch):
    fitted = []
    real_fit = ScoredByWidth.fit

    def fit(self, X):
        real_fit(self, X)
        fitted.append(self.fitted_rows_)
        return self

    monkeypatch.setattr(ScoredByWidth, "fit", fit)
    X = _table(9)
    folds = list(KFold(3).split(X))
    choice._held_out_scores(ScoredByWidth(calls=Calls()), LINEAR, X, folds, seed=0)
    for rows, (train, _) in zip(fitted, folds, strict=True):
        np.testing.assert_array_equal(rows, train)


def _differences(mean, standard_error, n_rows=50):
    """Paired differences of exactly this mean and standard error of the mean."""
    signs = np.resize([1.0, -1.0], n_rows)
    spread = standard_error * np.sqrt(n_rows) / np.std(signs, ddof=1)
    return mean + spread * signs


@pytest.mark.parametrize(("margin", "wins"), [(1.01, False), (0.99, True)])
def test_the_linear_model_must_win_by_the_margin_of_standard_errors(margin, wins):
    standard_error = 0.1
    mean = choice.MARGIN_STANDARD_ERRORS * standard_error / margin
    mlp = np.linspace(-3.0, -1.0, 50)
    linear = mlp + _differences(mean, standard_error)
    assert choice._linear_wins(mlp, linear) is wins


def test_the_margin_is_three_standard_errors():
    assert choice.MARGIN_STANDARD_ERRORS == 3.0
    mlp = np.zeros(50)
    assert choice._linear_wins(mlp, _differences(0.31, 0.1)) is True
    assert choice._linear_wins(mlp, _differences(0.29, 0.1)) is False


def test_one_extreme_row_cannot_choose_the_linear_model():
    # A row the MLP scores very low moves the mean difference, and its standard
    # error with it: their ratio tends to 1, below the margin.
    mlp = np.zeros(150)
    mlp[7] = -1e5
    linear = np.zeros(150) - 0.5
    assert choice._linear_wins(mlp, linear) is False


@pytest.mark.parametrize(
    ("mlp_bad", "linear_bad", "wins"),
    [(False, True, False), (True, False, True), (True, True, False)],
)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_candidate_with_a_non_finite_score_loses(mlp_bad, linear_bad, wins, value):
    mlp, linear = np.zeros(10), np.full(10, -5.0)
    if mlp_bad:
        mlp[3] = value
    if linear_bad:
        linear[4] = value
    assert choice._linear_wins(mlp, linear) is wins


@pytest.mark.parametrize(("per_layer", "expected"), [(-0.01, LINEAR), (0.01, MLP), (0.0, MLP)])
def test_the_higher_held_out_score_wins_and_a_tie_keeps_the_mlp(per_layer, expected):
    calls = Calls()
    estimator = ScoredByWidth(per_layer=per_layer, calls=calls)
    X = _table(choice.MIN_CHOICE_ROWS)
    assert choice.network(estimator, X, X, _params()) == (expected, 2)
    fitted = [call[1] for call in calls if call[0] == "fit"]
    assert fitted == [MLP] * choice.CHOICE_FOLDS + [LINEAR] * choice.CHOICE_FOLDS


def test_the_folds_are_shuffled_and_seeded_by_random_state():
    X = _table(40)

    def held_out_rows(random_state):
        calls = Calls()
        params = _params(random_state=random_state)
        choice.network(ScoredByWidth(calls=calls), X, X, params)
        return [call[1] for call in calls if call[0] == "rows"]

    seed = np.random.RandomState(3).randint(np.iinfo(np.int32).max)
    expected = [
        tuple(held_out) for _, held_out in KFold(3, shuffle=True, random_state=seed).split(X)
    ]
    assert held_out_rows(3) == expected * 2  # the same folds for both candidates
    assert held_out_rows(4) != held_out_rows(3)
    # A RandomState seeds them as its integer would, and is not drawn from.
    instance = np.random.RandomState(3)
    assert held_out_rows(instance) == expected * 2
    assert instance.randint(np.iinfo(np.int32).max) == seed
    # Every held-out row is scored with importance samples seeded alike.
    calls = Calls()
    choice.network(ScoredByWidth(calls=calls), X, X, _params(random_state=3))
    scored = [call[2] for call in calls if call[0] == "score"]
    assert scored == [seed] * (2 * choice.CHOICE_FOLDS)


@pytest.mark.parametrize(
    ("n_rows", "chooses"),
    [
        (choice.MIN_CHOICE_ROWS - 1, False),
        (choice.MIN_CHOICE_ROWS, True),
        (choice.MAX_CHOICE_ROWS, True),
        (choice.MAX_CHOICE_ROWS + 1, False),
    ],
)
def test_only_tables_within_the_row_limits_are_chosen_for(n_rows, chooses):
    calls = Calls()
    estimator = ScoredByWidth(per_layer=-1.0, calls=calls)
    X = _table(n_rows)
    sizes, _ = choice.network(estimator, X, X, _params())
    assert sizes == (LINEAR if chooses else MLP)
    assert bool(calls) == chooses


@pytest.mark.parametrize("network", ["encoder", "decoder"])
def test_a_custom_network_takes_the_mlp_without_a_choice(network):
    calls = Calls()
    X = _table(50)
    params = _params(**{network: object()})
    assert choice.network(ScoredByWidth(calls=calls), X, X, params) == (MLP, 2)
    assert calls == []


def test_data_not_in_memory_take_the_mlp_without_a_choice():
    class Stream:  # a Dask collection's partition stream has a shape, but is no array
        shape = (50, 2)

    calls = Calls()
    X = _table(50)
    assert choice.network(ScoredByWidth(calls=calls), X, Stream(), _params()) == (MLP, 2)
    assert calls == []


@pytest.mark.parametrize("sizes", [(8,), (), [3, 2]])
def test_given_sizes_are_kept(sizes):
    calls = Calls()
    X = _table(50)
    params = _params(hidden_layer_sizes=sizes)
    chosen, n_components = choice.network(ScoredByWidth(calls=calls), X, X, params)
    assert chosen is sizes and n_components == 2
    assert calls == []


def test_verbose_reports_both_scores_and_the_choice(capsys):
    X = _table(30)
    X[:, 0] = 0.0
    estimator = ScoredByWidth(per_layer=-0.5, calls=Calls())
    choice.network(estimator, X, X, _params(verbose=1))
    assert capsys.readouterr().out == (
        "hidden_layer_sizes='auto': mean held-out log-likelihood over 3 folds -1.0000 nats "
        "per row with (256, 256) and n_components=2, 0.0000 with () and n_components=2: "
        "fitting () with n_components=2.\n"
    )
    choice.network(estimator, X, X, _params(verbose=0))
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("n_features", "expected"), [(1, [1]), (5, [1, 2]), (10, range(1, 7)), (23, range(1, 17))]
)
def test_the_factor_grid_is_every_number_up_to_the_ledermann_bound(n_features, expected):
    # 23 columns: a bound of 16, the grid's size.
    grid = choice.factor_grid(n_features)
    np.testing.assert_array_equal(grid, list(expected))
    assert grid.dtype.kind == "i"


def test_the_factor_grid_of_a_wide_table_is_geometric():
    # 30 columns: bound 22, above the grid's 16 values.
    grid = choice.factor_grid(30)
    assert grid[0] == 1 and grid[-1] == training.ledermann_bound(30) == 22
    assert len(grid) <= choice.FACTOR_GRID_SIZE and np.all(np.diff(grid) > 0)
    assert grid.dtype.kind == "i"
    ratios = grid[1:] / grid[:-1]
    assert ratios[-1] < 1.3  # no gap wider than the geometric step at the top
    np.testing.assert_array_equal(choice.factor_grid(17), range(1, 12))  # bound 11


def _factors(n_rows, n_factors, n_features=12, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(n_factors, n_features))
    return rng.normal(size=(n_rows, n_factors)) @ loadings + noise * rng.normal(
        size=(n_rows, n_features)
    )


@pytest.mark.parametrize("n_factors", [1, 3, 5])
def test_factor_count_finds_the_number_of_factors(n_factors):
    X = _factors(2000, n_factors)
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    assert choice.factor_count(X, np.zeros(12, dtype=bool), folds) == n_factors


def test_factor_count_fits_each_fold_and_scores_its_held_out_rows(monkeypatch):
    # A column of integers is read dequantised; a missing entry as the fold's training mean.
    fitted, scored = [], []

    class Recorded(choice.FactorAnalysis):
        def fit(self, X, y=None):
            fitted.append((self.n_components, X.copy()))
            return super().fit(X)

        def score_samples(self, X):
            scored.append(X.copy())
            return np.full(len(X), -float(abs(self.n_components - 2)))  # 2 factors win

    monkeypatch.setattr(choice, "FactorAnalysis", Recorded)
    X = _factors(30, 2, n_features=5)
    X[:, 0] = np.round(X[:, 0])
    X[4, 1] = np.nan
    folds = list(KFold(3).split(X))
    # Column 2 is observed in the first fold's held-out rows alone: 0 in its training rows.
    X[folds[0][0], 2] = np.nan
    # Column 3 in one row, held out by the first fold: the others' mean is that value.
    X[np.arange(30) != folds[0][1][0], 3] = np.nan
    dequantized = np.array([True, False, False, False, False])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice"
        assert choice.factor_count(X, dequantized, folds) == 2
    grid = list(choice.factor_grid(5))
    assert [n for n, _ in fitted] == grid * 3
    read = dequantized_view(X, dequantized)
    assert not np.array_equal(read[:, 0], X[:, 0])  # the noise is there to see
    read = read / np.nanmax(np.abs(read), axis=0)
    for k, (train, held_out) in enumerate(folds):
        expected = read.copy()
        expected[4, 1] = np.nanmean(read[train, 1])
        for column in (2, 3):
            unobserved = np.isnan(expected[:, column])
            expected[unobserved, column] = 0.0 if k == 0 else np.nanmean(read[train, column])
        # Values of at most 1 in magnitude; the mean may differ in its last bit.
        np.testing.assert_allclose(fitted[k * len(grid)][1], expected[train], rtol=0, atol=1e-15)
        np.testing.assert_allclose(scored[k * len(grid)], expected[held_out], rtol=0, atol=1e-15)


@pytest.mark.parametrize("exponent", [300, -300, 30])
def test_factor_count_does_not_depend_on_the_columns_scales(exponent):
    # At 1e300 factor analysis's variances overflow (it raised), at 1e-300 they
    # vanish (it chose 1): each column is read in units of its largest magnitude.
    X = _factors(600, 3)
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    scales = 10.0 ** (exponent - np.arange(12) % 3)  # unequal, near the extreme
    no_noise = np.zeros(12, dtype=bool)
    assert choice.factor_count(X * scales, no_noise, folds) == 3
    X[0, 0] = 0.0
    X[:, 5] = 0.0  # a column of zeros keeps its units
    X[1, 1] = np.nan  # a missing entry is no magnitude
    assert choice.factor_count(X * scales, no_noise, folds) == 3


def test_factor_count_takes_the_smallest_of_equal_scores(monkeypatch):
    class Flat(choice.FactorAnalysis):
        def score_samples(self, X):
            return np.zeros(len(X))

    monkeypatch.setattr(choice, "FactorAnalysis", Flat)
    X = _factors(30, 2, n_features=6)
    assert choice.factor_count(X, np.zeros(6, dtype=bool), list(KFold(3).split(X))) == 1


@pytest.mark.parametrize(("per_layer", "expected"), [(-0.01, (LINEAR, 5)), (0.01, (MLP, 2))])
def test_the_linear_candidate_takes_the_counted_factors(monkeypatch, per_layer, expected):
    counted = []

    def count(X, dequantized, folds):
        counted.append((dequantized, len(folds)))
        return 5

    monkeypatch.setattr(choice, "factor_count", count)
    calls = Calls()
    X = _table(choice.MIN_CHOICE_ROWS)
    mask = np.zeros(2, dtype=bool)
    # The resolved parameters, not the estimator's own (7), give the MLP's latent size.
    estimator = ScoredByWidth(per_layer=per_layer, calls=calls, n_components=7)
    assert choice.network(estimator, X, X, _params(), mask) == expected
    assert counted == [(mask, choice.CHOICE_FOLDS)]
    sizes = [call[1:] for call in calls if call[0] == "components"]
    assert sizes == [(MLP, 2)] * choice.CHOICE_FOLDS + [(LINEAR, 5)] * choice.CHOICE_FOLDS
    # Without the columns (a latent size given, or a column not Gaussian), no count.
    calls.clear()
    assert choice.network(estimator, X, X, _params())[1] == 2
    assert len(counted) == 1
    assert {call[2] for call in calls if call[0] == "components"} == {2}


# ---------------------------------------------------------------- real fits


def _factor_table(n_rows=150, seed=0):
    """Ten Gaussian columns driven by two factors: factor analysis is the true model."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(2, 10))
    return rng.normal(size=(n_rows, 2)) @ loadings + 0.3 * rng.normal(size=(n_rows, 10))


@pytest.fixture(scope="module")
def factor_fit():
    X = _factor_table()
    return X, VAETransformer(random_state=0).fit(X)


def test_a_small_factor_table_gets_the_linear_model(factor_fit):
    X, vae = factor_fit
    assert vae.hidden_layer_sizes_ == ()
    assert vae.hidden_layer_sizes == "auto"
    # Its latent size is the number of factors chosen on the folds of the choice.
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)
    folds = list(KFold(3, shuffle=True, random_state=seed).split(X))
    assert vae.n_components_ == choice.factor_count(X, np.zeros(10, dtype=bool), folds)
    assert vae.n_components_ != training.latent_size(10)  # 6: the choice changed it
    assert vae.n_components == "auto"


def test_the_chosen_fit_is_the_fit_of_the_chosen_sizes(factor_fit):
    X, vae = factor_fit
    explicit = VAETransformer(
        hidden_layer_sizes=(), n_components=vae.n_components_, random_state=0
    ).fit(X)
    np.testing.assert_array_equal(vae.transform(X), explicit.transform(X))
    np.testing.assert_array_equal(vae.score_samples(X), explicit.score_samples(X))


def test_a_random_state_instance_is_not_drawn_from_by_the_choice():
    X = _factor_table(60, seed=1)
    kwargs = dict(max_iter=3, n_components=2)
    vae = VAETransformer(random_state=np.random.RandomState(5), **kwargs).fit(X)
    explicit = VAETransformer(
        hidden_layer_sizes=vae.hidden_layer_sizes_, random_state=np.random.RandomState(5), **kwargs
    ).fit(X)
    np.testing.assert_array_equal(vae.transform(X), explicit.transform(X))


def test_a_ring_gets_the_mlp():
    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, 300)
    X = np.column_stack([np.cos(angle), np.sin(angle)]) + 0.05 * rng.normal(size=(300, 2))
    vae = VAETransformer(n_components=1, random_state=0).fit(X)
    assert vae.hidden_layer_sizes_ == MLP


def test_warm_start_and_later_partial_fits_keep_the_fitted_network(factor_fit):
    X, fitted = factor_fit
    vae = VAETransformer(random_state=0, max_iter=2, warm_start=True)
    vae.fit(X[:40])
    chosen = vae.hidden_layer_sizes_
    n_components = vae.n_components_
    vae.fit(X)  # 150 rows would be chosen for again: a warm start continues instead
    assert vae.hidden_layer_sizes_ == chosen and vae.n_components_ == n_components
    vae.set_params(hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match="hidden_layer_sizes was changed"):
        vae.fit(X)
    stream = VAETransformer(random_state=0).partial_fit(X[:40])
    assert stream.hidden_layer_sizes_ == MLP  # a first chunk is no table to choose on
    assert stream.n_components_ == training.latent_size(10)
    stream.partial_fit(X[40:80])
    assert stream.hidden_layer_sizes_ == MLP
    # partial_fit after fit continues the chosen linear model and its latent size.
    continued = copy.deepcopy(fitted).partial_fit(X[:40])
    assert continued.hidden_layer_sizes_ == ()
    assert continued.n_components_ == fitted.n_components_ != training.latent_size(10)


def test_the_fit_warns_of_recognised_columns_once():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=40),
            "when": pd.date_range("2020-01-01", periods=40).strftime("%Y-%m-%d"),
        }
    )
    with pytest.warns(UserWarning) as record:
        VAETransformer(max_iter=2, random_state=0).fit(df)
    recognised = [w for w in record if "when" in str(w.message)]
    assert len(recognised) == 1


def test_the_imputer_keeps_the_mlp_and_the_detector_folds_reuse_the_choice(factor_fit):
    assert VAEImputer()._make_estimator(None).hidden_layer_sizes == MLP
    _, fitted = factor_fit
    auto = VAETransformer(random_state=0)
    folds = _fold_estimator(auto, fitted)
    assert folds.hidden_layer_sizes == () and folds.n_components == fitted.n_components_
    assert auto.hidden_layer_sizes == "auto"  # a clone is changed, not the estimator
    assert auto.n_components == "auto"
    sized = VAETransformer(n_components=4)
    assert _fold_estimator(sized, fitted).get_params()["n_components"] == 4
    assert _fold_estimator(sized, fitted).hidden_layer_sizes == ()
    given = VAETransformer(hidden_layer_sizes=(8,), n_components=3)
    assert _fold_estimator(given, fitted) is given


def test_the_detector_chooses_once_and_its_folds_fit_the_choice(monkeypatch):
    asked = []

    def choose(estimator, given, X, params, dequantized):
        asked.append((params["hidden_layer_sizes"], params["n_components"]))
        if params["hidden_layer_sizes"] == "auto":
            return (), 1
        return params["hidden_layer_sizes"], params["n_components"]

    monkeypatch.setattr("sklearn_vae._fit_steps.choose_network", choose)
    X = _factor_table(60)
    estimator = VAETransformer(max_iter=2, random_state=0)
    detector = DensityOutlierDetector(estimator, cv=3, random_state=0).fit(X)
    assert detector.estimator_.hidden_layer_sizes_ == ()
    assert detector.estimator_.n_components_ == 1
    # The first fit chooses, from the Ledermann bound of 10 columns; the folds fit its choice.
    assert asked[0] == ("auto", 6)
    assert len(asked) > 1 and all(fold == ((), 1) for fold in asked[1:])


def test_with_network_resolves_auto_only():
    params = _params()
    assert choice.with_network(params, (5,))["hidden_layer_sizes"] == (5,)
    assert params["hidden_layer_sizes"] == "auto"  # a copy
    given = _params(hidden_layer_sizes=(3,))
    assert choice.with_network(given, (5,)) is given


def test_only_an_all_gaussian_table_of_auto_latent_size_counts_factors():
    from sklearn_vae._fit_steps import _factor_analysis_columns

    rng = np.random.default_rng(0)
    numbers = pd.DataFrame({"x": rng.normal(size=40), "n": rng.integers(0, 50, size=40)})
    fast = dict(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    vae = VAETransformer(**fast).fit(numbers)
    np.testing.assert_array_equal(_factor_analysis_columns(vae), [False, True])
    assert _factor_analysis_columns(VAETransformer(n_components=1, **fast).fit(numbers)) is None
    mixed = numbers.assign(c=pd.Categorical(rng.choice(["a", "b"], size=40)))
    assert _factor_analysis_columns(VAETransformer(**fast).fit(mixed)) is None
