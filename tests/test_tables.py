"""Mixed-type DataFrames with missing values: schema, dtypes, exact marginalisation, errors."""

import pickle
import re

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import GridSearchCV

from sklearn_vae import HistogramDensity, VAETransformer
from sklearn_vae._histogram import MAX_UNIT_BINS

TINY = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)


def make_table(n=120, seed=0, missing=0.15):
    """A table of every supported column type, with structure and missing entries."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    species = np.array(["Adelie", "Gentoo", "Chinstrap"])[np.digitize(z, [-0.5, 0.5])]
    df = pd.DataFrame(
        {
            "species": pd.Series(species, dtype="str"),
            "island": pd.Series(rng.choice(["Biscoe", "Dream"], n), dtype="category"),
            "mass": 4000 + 500 * z + rng.normal(scale=100, size=n),
            "length": (40 + 3 * z + rng.normal(size=n)).astype(np.float32),
            "year": rng.integers(2007, 2010, n),
            "count": pd.array(rng.poisson(3, n), dtype="Int64"),
            "wide": rng.integers(0, 5000, n),
            "male": rng.random(n) < 0.5,
            "tag": pd.Series(rng.choice(["a", "b", None], n), dtype=object),
        }
    )
    df["island"] = df["island"].cat.add_categories(["Torgersen"])  # declared, never seen
    mask = rng.random(df.shape) < missing
    for name in ["male", "year", "wide"]:  # numpy bool and int columns cannot hold NaN
        mask[:, df.columns.get_loc(name)] = False
    mask[mask.all(axis=1), 0] = False
    return df.mask(pd.DataFrame(mask, columns=df.columns))


@pytest.fixture(scope="module")
def table():
    return make_table()


@pytest.fixture(scope="module")
def table_vae(table):
    return VAETransformer(**TINY).fit(table)


# ------------------------------------------------------------- the auto rule


def test_auto_rule_gives_each_column_the_likelihood_of_its_dtype(table_vae):
    got = {c.name: (c.likelihood, c.dequantize) for c in table_vae.schema_.columns_}
    assert got == {
        "species": ("categorical", False),
        "island": ("categorical", False),
        "mass": ("gaussian", False),
        "length": ("gaussian", False),
        # Integers over at most 10 levels are a categorical over them.
        "year": ("categorical", False),
        "count": ("categorical", False),
        "wide": ("gaussian", True),
        "male": ("bernoulli", False),
        "tag": ("categorical", False),
    }


def test_histogram_gives_integer_columns_unit_bins_up_to_the_level_limit():
    for n_levels, n_bins in [(MAX_UNIT_BINS, MAX_UNIT_BINS), (200, None)]:
        df = pd.DataFrame({"k": np.arange(n_levels).repeat(2)})
        hist = HistogramDensity().fit(df)
        edges = hist.bin_edges_[0]
        assert np.all(edges == np.round(edges))  # integer edges: log-probabilities
        if n_bins is not None:
            assert hist.n_bins_[0] == n_bins


def test_categories_are_the_labels_seen_in_fit_or_declared(table_vae):
    columns = {c.name: c for c in table_vae.schema_.columns_}
    assert list(columns["species"].categories) == ["Adelie", "Chinstrap", "Gentoo"]
    assert list(columns["island"].categories) == ["Biscoe", "Dream", "Torgersen"]
    assert list(columns["tag"].categories) == ["a", "b"]


def test_dict_overrides_the_auto_rule_for_the_columns_it_names(table):
    vae = VAETransformer(**TINY, likelihood={"count": "poisson", "year": "categorical"})
    got = {c.name: c.likelihood for c in vae.fit(table).schema_.columns_}
    assert got["count"] == "poisson" and got["year"] == "categorical"
    assert got["species"] == "categorical"  # not named: the auto rule


def test_float_arrays_keep_one_gaussian_for_all_columns(X_small):
    vae = VAETransformer(**TINY).fit(X_small)
    assert type(vae.net_.module_.likelihood).__name__ == "GaussianLikelihood"
    assert not isinstance(vae.sample(2, random_state=0), pd.DataFrame)


def test_dict_names_array_columns_by_position(X_small):
    X = np.abs(np.round(X_small))
    vae = VAETransformer(**TINY, likelihood={0: "poisson"}).fit(X)
    # Column 1, a few integers, gets its levels.
    assert [c.likelihood for c in vae.schema_.columns_][:2] == ["poisson", "categorical"]


# ------------------------------------------------------------ dtypes come back


@pytest.mark.parametrize("output", ["sample", "inverse_transform"])
def test_outputs_are_dataframes_with_the_training_columns_and_dtypes(table, table_vae, output):
    if output == "sample":
        out = table_vae.sample(50, random_state=0, missing=False)
    else:
        out = table_vae.inverse_transform(table_vae.transform(table))
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(table.columns)
    assert out.dtypes.to_dict() == table.dtypes.to_dict()
    assert not out.isna().any().any()
    for name in ["species", "tag"]:
        assert set(out[name]) <= set(table[name].dropna())
    assert set(out["island"]) <= {"Biscoe", "Dream", "Torgersen"}
    assert out["year"].between(2007, 2009).all()


def test_inverse_transform_holds_the_most_probable_category(table, table_vae):
    module = table_vae.net_.module_
    z = torch.as_tensor(table_vae.transform(table.head(20)), dtype=torch.float32)
    with torch.no_grad():
        species = module.likelihood.parts[0]  # the categorical part holds species first
        logits = module.decoder(z)[0][:, : len(table_vae.schema_.columns_[0].categories)]
    expected = table_vae.schema_.columns_[0].categories[logits.argmax(-1).numpy()]
    assert species.name == "categorical"
    out = table_vae.inverse_transform(z.numpy().astype(np.float64))
    assert_array_equal(out["species"].to_numpy(), expected)


def test_histogram_samples_have_the_training_dtypes(table):
    out = HistogramDensity().fit(table).sample(40, random_state=0)
    assert out.dtypes.to_dict() == table.dtypes.to_dict()
    assert set(out["species"]) <= set(table["species"].dropna())


def test_transform_keeps_feature_names_and_set_output(table, table_vae):
    assert list(table_vae.feature_names_in_) == list(table.columns)
    out = table_vae.set_output(transform="pandas").transform(table)
    try:
        assert list(out.columns) == ["vaetransformer0", "vaetransformer1"]
    finally:
        table_vae.set_output(transform="default")


# --------------------------------------------------- exact missing-value maths


def _encoded_row(vae, frame):
    return torch.as_tensor(vae.schema_.encode(frame), dtype=torch.float64)


def test_a_missing_label_is_summed_out_exactly(table, table_vae):
    # log p(x_obs | z) with a label missing equals log sum_k p(x_obs, label = k | z).
    module = pickle.loads(pickle.dumps(table_vae.net_.module_)).double()
    z = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    row = table.iloc[[0]].copy()
    row["mass"] = 4100.0
    with torch.no_grad():
        params = module.decoder(z)
        full = []
        for label in ["Adelie", "Chinstrap", "Gentoo"]:
            row["species"] = label
            full.append(module.likelihood.log_prob(params, _encoded_row(table_vae, row)))
        row["species"] = np.nan
        marginal = module.likelihood.log_prob(params, _encoded_row(table_vae, row))
    assert_allclose(marginal.numpy(), torch.logsumexp(torch.stack(full), 0).numpy(), rtol=1e-9)


def test_a_missing_number_is_integrated_out_exactly(table, table_vae):
    # integral over x of p(x_obs, mass = x | z) dx equals p(x_obs | z), in raw units.
    module = pickle.loads(pickle.dumps(table_vae.net_.module_)).double()
    z = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    row = table.iloc[[1]].copy()
    grid = np.linspace(4000 - 60 * table["mass"].std(), 4000 + 60 * table["mass"].std(), 200001)
    rows = pd.concat([row] * len(grid), ignore_index=True)
    rows["mass"] = grid
    with torch.no_grad():
        params = module.decoder(z[:, None, :])
        joint = module.likelihood.log_prob(params, _encoded_row(table_vae, rows)).exp().numpy()
        row["mass"] = np.nan
        marginal = module.likelihood.log_prob(module.decoder(z), _encoded_row(table_vae, row))
    assert_allclose(np.trapezoid(joint, grid, axis=1), marginal.exp().numpy(), rtol=1e-6)


def test_label_probabilities_sum_to_one_by_gauss_hermite_quadrature():
    # A 1-d latent space makes p(a, b) = integral of p(a, b | z) N(z) dz exact to
    # quadrature precision; summed over every pair of labels it must be 1.
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.choice(list("xyz"), 200), "b": rng.choice(["u", "v"], 200)})
    vae = VAETransformer(n_components=1, hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    vae.fit(df)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    pairs = pd.DataFrame([(a, b) for a in "xyz" for b in "uv"], columns=["a", "b"])
    module = vae.net_.module_.double()
    with torch.no_grad():
        z = torch.as_tensor(nodes[:, None, None])
        log_p = module.log_prob_given(z, _encoded_row(vae, pairs)).numpy()
    total = (np.exp(log_p) * weights[:, None]).sum() / np.sqrt(2 * np.pi)
    assert total == pytest.approx(1.0, abs=1e-6)


def test_none_nan_and_pd_na_are_the_same_missing_entry(table, table_vae):
    rows = table.head(6).copy()
    rows["tag"] = pd.Series(["a", None, "b", np.nan, pd.NA, "a"], dtype=object)
    expected = rows.copy()
    expected["tag"] = pd.Series(["a", np.nan, "b", np.nan, np.nan, "a"], dtype=object)
    assert_array_equal(table_vae.score_samples(rows), table_vae.score_samples(expected))


def test_scores_with_missing_entries_are_row_order_and_subset_invariant(table, table_vae):
    scores = table_vae.score_samples(table)
    order = np.random.default_rng(0).permutation(len(table))
    assert_allclose(table_vae.score_samples(table.iloc[order]), scores[order], rtol=0, atol=1e-9)
    assert_allclose(table_vae.score_samples(table.iloc[5:9]), scores[5:9], rtol=0, atol=1e-9)
    assert np.all(np.isfinite(scores))


def test_histogram_leaves_missing_entries_out_of_the_product(table):
    # Each column's model is fitted on its observed entries; a row's score is
    # the sum over its observed columns: exactly the per-column fits added up.
    hist = HistogramDensity().fit(table)
    expected = np.zeros(len(table))
    for name in table.columns:
        column = table[[name]]
        observed = column[name].notna().to_numpy()
        expected[observed] += (
            HistogramDensity().fit(column[observed]).score_samples(column[observed])
        )
    assert_allclose(hist.score_samples(table), expected, rtol=1e-12)


def test_histogram_label_probabilities_sum_to_one(table):
    fitted = table[["species", "island"]].dropna(how="all")
    hist = HistogramDensity(alpha=0.5).fit(fitted)
    species, islands = table["species"].dropna().unique(), table["island"].cat.categories
    pairs = pd.DataFrame(
        [(s, i) for s in species for i in islands],
        columns=["species", "island"],
    ).astype({"island": table["island"].dtype})
    # The seen labels share 1 - m of each column, m = max(n1, 1) / (n + 1).
    seen = 1.0
    for name in ("species", "island"):
        counts = fitted[name].value_counts()
        seen *= 1 - max((counts == 1).sum(), 1) / (counts.sum() + 1)
    assert np.exp(hist.score_samples(pairs)).sum() == pytest.approx(seen, rel=1e-12)


def test_histogram_integer_column_scores_are_log_probabilities():
    x = np.random.default_rng(4).integers(0, 2000, size=(300, 1))
    hist = HistogramDensity().fit(pd.DataFrame({"k": x[:, 0]}))
    support = pd.DataFrame({"k": np.arange(-50, 2100)})
    inside = np.exp(hist.score_samples(support)).sum()
    assert 0.9 < inside <= 1.0 + 1e-12  # the tails hold the rest


# ---------------------------------------------------------------- the jobs


def test_missing_entries_are_learned_by_every_training_method(table):
    vae = VAETransformer(**TINY).partial_fit(table.iloc[:60]).partial_fit(table.iloc[60:])
    assert np.all(np.isfinite(vae.score_samples(table)))
    assert np.all(np.isfinite(vae.log_likelihood(table, n_importance_samples=5, random_state=0)))


def test_grid_search_over_latent_size_on_a_table(table):
    search = GridSearchCV(VAETransformer(**TINY), {"n_components": [1, 2]}, cv=2).fit(table)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_pickle_round_trip_of_a_table_model(table, table_vae):
    loaded = pickle.loads(pickle.dumps(table_vae))
    assert_array_equal(loaded.score_samples(table), table_vae.score_samples(table))
    pd.testing.assert_frame_equal(
        loaded.sample(5, random_state=1), table_vae.sample(5, random_state=1)
    )


def test_same_random_state_gives_identical_table_fits(table, table_vae):
    again = VAETransformer(**TINY).fit(table)
    assert_array_equal(again.transform(table), table_vae.transform(table))


def test_unknown_category_is_missing_for_transform(table, table_vae):
    row = table.iloc[[2]].copy()
    unknown, missing = row.copy(), row.copy()
    unknown["species"] = "Emperor"
    missing["species"] = np.nan
    assert_array_equal(table_vae.transform(unknown), table_vae.transform(missing))


def test_unknown_category_is_scored_as_missing_plus_its_columns_mass(table, table_vae):
    # species has no label seen once: m = 1 / (n + 1), added to the row with species
    # missing, in a batch whose other rows keep their scores.
    rows = table.iloc[[2, 3]].copy()
    rows.loc[rows.index[0], "species"] = "Emperor"
    expected = table_vae.score_samples(table.iloc[[2, 3]])
    without = table_vae.score_samples(rows.assign(species=[np.nan, rows["species"].iloc[1]]))
    counts = table["species"].value_counts()
    assert (counts > 1).all()
    assert_allclose(
        table_vae.score_samples(rows),
        [without[0] + np.log(1 / (counts.sum() + 1)), expected[1]],
        rtol=0,
        atol=1e-12,
    )


def test_declared_category_absent_from_fit_can_be_scored(table, table_vae):
    row = table.iloc[[2]].copy()
    row["island"] = "Torgersen"
    assert np.isfinite(table_vae.score_samples(row)).all()


def test_single_category_column_has_probability_one():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"only": ["x"] * 50, "v": rng.normal(size=50)})
    vae = VAETransformer(**TINY).fit(df)
    module = vae.net_.module_
    with torch.no_grad():
        z = torch.randn(4, 2)
        log_p = module.likelihood.parts[0].log_prob(module.decoder(z)[0], torch.zeros(4, 1))
    assert_array_equal(log_p.numpy(), 0.0)
    assert (vae.sample(5, random_state=0)["only"] == "x").all()


def test_ten_thousand_distinct_strings_fit():
    # The decoder's output layer has one logit per category: 10,000 x width
    # weights (2.6 MB for width 64), well within memory.
    labels = np.array([f"id{i}" for i in range(10_000)])
    # As strings, such a column is dropped as identifiers; the 'category' dtype keeps it.
    df = pd.DataFrame({"id": pd.Categorical(labels), "v": np.arange(10_000.0)})
    vae = VAETransformer(n_components=2, hidden_layer_sizes=(64,), max_iter=1, random_state=0)
    vae.fit(df)
    assert len(vae.schema_.columns_[0].categories) == 10_000
    # Every label seen once, an identifier: Good's mass of unseen labels is
    # 10,000 / 10,001, so a seen one keeps a probability and a new one scores as if
    # missing, plus log m.
    assert np.all(np.isfinite(vae.score_samples(df.head(5))))
    new = df.head(5).assign(id=[f"new{i}" for i in range(5)])
    assert_allclose(
        vae.score_samples(new),
        vae.score_samples(df.head(5).assign(id=None)) + np.log(10_000 / 10_001),
        rtol=0,
        atol=1e-12,
    )


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("Estimator", [VAETransformer, HistogramDensity])
def test_mixed_types_in_a_column_are_rejected(Estimator):
    df = pd.DataFrame({"m": pd.Series(["a", 1.5, "b", np.nan] * 5, dtype=object), "v": 1.0})
    with pytest.raises(ValueError, match="Column 'm' mixes strings and numbers.*astype\\(str\\)"):
        Estimator().fit(df)


@pytest.mark.parametrize("Estimator", [VAETransformer, HistogramDensity])
def test_a_column_missing_in_every_row_is_rejected(table, Estimator):
    df = table.assign(mass=np.nan)
    with pytest.raises(ValueError, match="Column 'mass' is missing in every training row"):
        Estimator().fit(df)


@pytest.mark.parametrize("Estimator", [VAETransformer, HistogramDensity])
def test_a_row_with_every_entry_missing_cannot_be_scored(table, Estimator):
    model = Estimator(**(TINY if Estimator is VAETransformer else {})).fit(table)
    rows = table.head(3).astype(object)
    rows.iloc[1] = None
    with pytest.raises(ValueError, match="Row 1 of X has no observed entry"):
        model.score_samples(rows)


@pytest.mark.parametrize(
    "likelihood, message",
    [
        ({"penguin": "gaussian"}, r"likelihood names \['penguin'\], which are not column names"),
        ({"species": "poisson"}, "likelihood 'poisson' cannot model column 'species': it holds"),
        ({"species": "bernoulli"}, "cannot model column 'species': it has 3 categories"),
        ({"mass": "wobbly"}, "each column's likelihood must be one of"),
        ("gaussian", "likelihood 'gaussian' cannot model column 'species'"),
        ({"mass": "poisson"}, r"'poisson' requires integer-valued X, but X\[\d+, 'mass'\]"),
    ],
)
def test_likelihoods_that_do_not_fit_their_columns_are_rejected(table, likelihood, message):
    with pytest.raises(ValueError, match=message):
        VAETransformer(**TINY, likelihood=likelihood).fit(table)


def test_different_column_order_is_rejected_as_in_scikit_learn(table, table_vae):
    with pytest.raises(ValueError, match="feature names should match"):
        table_vae.transform(table[table.columns[::-1]])


@pytest.mark.parametrize("Estimator", [VAETransformer, HistogramDensity])
def test_infinity_in_a_numeric_column_is_rejected(table, Estimator):
    df = table.copy()
    df.loc[4, "mass"] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity: column 'mass', row 4"):
        Estimator().fit(df)


def test_strings_in_an_array_point_to_dataframes():
    X = np.array([["a", 1.0], ["b", 2.0]], dtype=object)
    with pytest.raises(ValueError, match="pass a pandas DataFrame"):
        VAETransformer(**TINY).fit(X)


def test_period_columns_get_a_clear_type_error():
    # Datetime columns are modelled (tests/test_column_kinds.py); periods are not.
    df = pd.DataFrame({"when": pd.period_range("2020", periods=5, freq="D"), "v": np.arange(5.0)})
    with pytest.raises(TypeError, match="Column 'when' has dtype period.*or datetimes first"):
        VAETransformer(**TINY).fit(df)


def test_a_complete_row_scores_the_same_alone_or_beside_rows_with_holes(table, table_vae):
    # Found by the fuzzer: the Jacobian of the standardisation was added as one
    # total in batches without holes and column by column in batches with them.
    complete = table[table.notna().all(axis=1)].head(1)
    holes = table[table.isna().any(axis=1)].head(3)
    alone = table_vae.score_samples(complete)
    beside = table_vae.score_samples(pd.concat([complete, holes]))[:1]
    # float64 rounding of a sum of a few dozen terms of size ~30: about 1e-13.
    assert_allclose(alone, beside, rtol=0, atol=1e-12)


# ------------------------------------------------------ the schema, unit by unit


def _schema(X, likelihood="auto", dequantize=False):
    from sklearn_vae._schema import TableSchema

    return TableSchema(likelihood, dequantize).fit(X)


@pytest.mark.parametrize(
    "values, message",
    [
        ([True, "a"], "mixes booleans and strings (for example True and 'a')"),
        ([1.5, True], "mixes numbers and booleans (for example 1.5 and True)"),
        ([b"x", "a"], "mixes other objects and strings (for example b'x' and 'a')"),
    ],
)
def test_a_mixed_column_is_named_with_an_example_of_each_type(values, message):
    df = pd.DataFrame({"m": pd.Series(values * 3, dtype=object)})
    full = (
        f"Column 'm' {message}. Give it one type: cast it with .astype(str) to model it as "
        "labels, or with pd.to_numeric(..., errors='coerce') to model it as numbers "
        "(unparseable entries become missing)."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(full)}$"):
        _schema(df)


def test_an_object_column_of_python_booleans_is_a_boolean_column():
    column = _schema(pd.DataFrame({"b": pd.Series([True, None, False], dtype=object)})).columns_[0]
    assert (column.kind, column.likelihood) == ("boolean", "bernoulli")
    assert_array_equal(column.categories, [False, True])


def test_a_boolean_column_always_has_both_categories():
    column = _schema(pd.DataFrame({"b": [True, True, True]})).columns_[0]
    assert list(column.categories) == [False, True]


@pytest.mark.parametrize(
    "dtype, kind, likelihood, dequantize",
    [
        (np.int32, "integer", "gaussian", True),
        (np.uint8, "integer", "gaussian", True),
        (np.float32, "float", "gaussian", False),
        (np.bool_, "boolean", "bernoulli", False),
    ],
)
def test_array_columns_take_their_kind_from_the_dtype(dtype, kind, likelihood, dequantize):
    column = _schema(np.array([[0, 1], [1, 0]], dtype=dtype)).columns_[1]
    assert (column.kind, column.likelihood, column.dequantize) == (kind, likelihood, dequantize)


def test_dequantize_applies_to_gaussian_number_columns_only():
    df = pd.DataFrame({"f": [0.5, 1.5], "g": [1.0, 2.0], "i": [1, 2], "c": [1, 2], "s": ["a", "b"]})
    # Floats of integers are dequantised as integer columns are; real floats never.
    columns = _schema(df, {"c": "categorical"}, dequantize=True).columns_
    assert [c.dequantize for c in columns] == [False, True, True, False, False]
    columns = _schema(df, {"c": "categorical"}, dequantize=False).columns_
    assert [c.dequantize for c in columns] == [False, False, True, False, False]
    # Under "auto", these integers (two levels) are a categorical over their levels.
    columns = _schema(df, {"c": "categorical"}, dequantize="auto").columns_
    assert [(c.likelihood, c.dequantize) for c in columns][1:3] == [("categorical", False)] * 2


def test_one_categorical_likelihood_for_a_frame_shares_the_levels_of_number_columns():
    df = pd.DataFrame({"i": [1, 2, 3], "j": [0, 5, 1], "s": ["a", "b", "a"]})
    assert [c.shared_levels for c in _schema(df, "categorical").columns_] == [True, True, False]
    assert not any(c.shared_levels for c in _schema(df, {"i": "categorical"}).columns_)


def test_unknown_category_message_lists_at_most_five_categories():
    for n_labels in (5, 6):
        labels = [f"l{k:02d}" for k in range(n_labels)]
        schema = _schema(pd.DataFrame({"c": labels}))
        first_five = ", ".join(repr(label) for label in labels[:5])
        more = ", ..." if n_labels > 5 else ""
        message = (
            f"Column 'c' holds 'new' (row 1), a category not seen in fit ({n_labels} "
            f"categories: [{first_five}{more}]). Refit on data that contains it, or declare "
            "every category with a pandas 'category' dtype before fitting."
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            schema.encode(pd.DataFrame({"c": ["l00", "new"]}))


def test_a_column_missing_everywhere_says_how_to_go_on():
    message = (
        "Column 'b' is missing in every training row, so nothing can be learned about it. "
        "Drop the column, or pass rows where it is observed."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _schema(pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan]}))


def test_unsupported_dtype_message_says_what_to_convert_to():
    df = pd.DataFrame({"when": pd.period_range("2020", periods=3, freq="D")})
    message = (
        f"Column 'when' has dtype {df['when'].dtype}, which cannot be modelled. Convert it to "
        "numbers, booleans, labels or datetimes first."
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        _schema(df)


def test_decoding_clips_codes_to_the_labels_and_integers_to_the_training_range():
    df = pd.DataFrame(
        {
            "s": ["a", "b", "c"],
            "k": pd.Categorical(["p", "q", "p"]),
            "i": np.array([1, 2, 3]),
            "d": np.array([1, 2, 3]),
        }
    )
    schema = _schema(df, {"i": "gaussian", "d": "gaussian"})
    schema.columns_[2].dequantize = False  # rounded to the nearest integer
    schema.columns_[3].dequantize = True  # a dequantised x + U(0, 1): the floor
    encoded = np.array([[-0.7, -0.7, 2.7, 2.7], [0.6, 0.4, -1.2, -1.2], [9.0, 9.0, 0.5, 0.5]])
    decoded = schema.decode(encoded)
    assert list(decoded["s"]) == ["a", "b", "c"]
    assert list(decoded["k"]) == ["p", "p", "q"]
    # Rounded (2.7 -> 3) or floored (2.7 -> 2), then clipped to the training range 1..3.
    assert list(decoded["i"]) == [3, 1, 1]
    assert list(decoded["d"]) == [2, 1, 1]
    assert decoded["i"].dtype == df["i"].dtype


def test_numeric_frames_decode_to_frames_and_numeric_arrays_keep_their_values():
    df = pd.DataFrame({"a": [0.5, 1.5], "b": [2.0, 3.0]})
    encoded = np.array([[1.0, 2.0], [-1e300, 1e300]])
    decoded = _schema(df).decode(encoded)
    assert isinstance(decoded, pd.DataFrame) and list(decoded.columns) == ["a", "b"]
    assert_array_equal(_schema(df.to_numpy()).decode(encoded), encoded, strict=True)
    booleans = _schema(np.array([[True, False], [False, True]])).decode(np.array([[1.0, 0.0]]))
    assert isinstance(booleans, np.ndarray) and booleans.tolist() == [[True, False]]


def test_labels_are_sorted_when_they_can_be_and_in_order_of_appearance_otherwise():
    sortable = _schema(pd.DataFrame({"c": ["b", "a", "c", "a"]})).columns_[0]
    assert list(sortable.categories) == ["a", "b", "c"]
    from sklearn_vae._schema import _categories

    first, second = object(), object()  # hashable, but cannot be ordered
    column = pd.Series([second, first, second, None], dtype=object)
    unsortable = _categories(column, column.isna().to_numpy(), "label")
    assert list(unsortable) == [second, first]


def test_decoded_columns_have_the_training_dtypes():
    df = pd.DataFrame(
        {
            "s": pd.Series(["a", "b"], dtype="str"),
            "b": np.array([True, False]),
            "f": np.array([0.5, 1.5], dtype=np.float32),
        }
    )
    decoded = _schema(df).decode(np.array([[1.0, 1.0, 2.5], [0.0, 0.0, -1.0]]))
    assert decoded.dtypes.equals(df.dtypes)
    assert list(decoded["b"]) == [True, False]


def test_a_boolean_column_cannot_be_gaussian():
    message = (
        "likelihood 'gaussian' cannot model column 'b': it holds booleans, not numbers. "
        "Give it 'categorical' (in a dict, or with likelihood='auto')."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _schema(pd.DataFrame({"b": [True, False]}), {"b": "gaussian"})


def test_a_two_label_column_can_be_bernoulli_and_is_never_dequantised():
    df = pd.DataFrame({"s": ["yes", "no", "yes"], "x": [0.5, 1.5, 2.5]})
    column = _schema(df, {"s": "bernoulli"}, dequantize=True).columns_[0]
    assert (column.likelihood, column.dequantize) == ("bernoulli", False)
    with pytest.raises(ValueError, match="'poisson' cannot model column 's'"):
        _schema(df, {"s": "poisson"})


def test_an_array_of_an_unsupported_dtype_is_a_type_error():
    with pytest.raises(TypeError, match=r"^X has dtype complex128, which cannot be modelled\.$"):
        _schema(np.ones((2, 2), dtype=complex))


def test_a_float_array_column_missing_in_every_row_is_named_by_position():
    X = np.full((8200, 3), np.nan)  # more rows than one chunk of 8192
    X[:, 0] = 1.0
    X[0, 2] = 1.0  # observed in the first chunk only
    message = (
        "Column 1 is missing in every training row, so nothing can be learned about it. "
        "Drop the column, or pass rows where it is observed."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _schema(X)
    X[5, 1] = 2.0
    assert _schema(X).n_columns == 3


def test_float_columns_share_levels_under_one_categorical_likelihood():
    df = pd.DataFrame({"f": [0.0, 1.0, 2.0], "i": [1, 2, 3]})
    assert [c.shared_levels for c in _schema(df, "categorical").columns_] == [True, True]


def test_a_label_column_cannot_be_gaussian():
    message = (
        "likelihood 'gaussian' cannot model column 's': it holds labels, not numbers. "
        "Give it 'categorical' (in a dict, or with likelihood='auto')."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _schema(pd.DataFrame({"s": ["a", "b"]}), {"s": "gaussian"})


def test_dequantize_follows_an_explicit_gaussian_and_never_poisson():
    df = pd.DataFrame({"i": [1, 2, 3], "j": [0, 4, 1]})
    columns = _schema(df, {"i": "gaussian", "j": "poisson"}, dequantize=True).columns_
    assert [c.dequantize for c in columns] == [True, False]
    assert not _schema(df, {"i": "gaussian"}, dequantize=False).columns_[0].dequantize


def test_schema_defaults_to_the_auto_rule_without_dequantising():
    from sklearn_vae._schema import TableSchema

    column = TableSchema().fit(pd.DataFrame({"x": [0.5, 1.5]})).columns_[0]
    assert (column.likelihood, column.dequantize) == ("gaussian", False)


def test_arrays_of_labels_and_lists_are_learned_by_position():
    labels = _schema(np.array([["b", 1.5], ["a", 2.5]], dtype=object))
    assert not labels.is_frame_
    assert list(labels.columns_[0].categories) == ["a", "b"]
    numbers = _schema([[0.5, 1.0], [1.5, 2.0]])
    assert [c.kind for c in numbers.columns_] == ["float", "float"]


def test_unknown_likelihood_keys_of_an_array_are_called_positions():
    message = (
        "likelihood names ['x'], which are not column positions of X. The column "
        "positions are [0, 1]."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _schema(np.zeros((2, 2)), {"x": "gaussian"})


def test_a_likelihood_name_that_does_not_exist_is_named_with_its_column():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    message = (
        "likelihood gives 'normal' for column 'a'{}; each column's likelihood must be one of "
        "['gaussian', 'bernoulli', 'categorical', 'poisson']."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message.format(''))}$"):
        _schema(df, {"a": "normal", "b": "gaussian"})
    with pytest.raises(ValueError, match=re.escape(message.format(" (and 1 more)"))):
        _schema(df, {"a": "normal", "b": "cauchy"})


def test_infinite_entries_and_empty_rows_are_named_with_what_to_do():
    from sklearn_vae._schema import check_observed

    infinite = (
        "Input X contains infinity: column 'b', row 1. Replace it with a finite value, or "
        "with NaN to mark it missing."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(infinite)}$"):
        check_observed(np.array([[1.0, 2.0], [1.0, -np.inf]]), ["a", "b"])
    empty = (
        "Row 1 of X has no observed entry: every column is missing, so the model has "
        "nothing to score or learn from. Drop such rows first (for example with "
        "X.dropna(how='all'))."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(empty)}$"):
        check_observed(np.array([[1.0, np.nan], [np.nan, np.nan]]), ["a", "b"])


@pytest.mark.parametrize("shape", [(0, 2), (3, 0)])
def test_an_empty_dataframe_is_rejected_with_its_shape(shape):
    frame = pd.DataFrame(np.zeros(shape), columns=[f"c{j}" for j in range(shape[1])])
    message = (
        f"Found array with {shape[0]} sample(s) and {shape[1]} feature(s) (shape={shape}) "
        "while a minimum of 1 is required by HistogramDensity."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        HistogramDensity().fit(frame)


def test_validated_float_arrays_are_not_copied_and_integer_arrays_become_float64():
    from sklearn_vae._schema import validate_table

    X32 = np.arange(6, dtype=np.float32).reshape(3, 2)
    encoded = validate_table(HistogramDensity(), X32, reset=True)
    assert encoded.dtype == np.float32 and np.shares_memory(encoded, X32)
    integers = validate_table(HistogramDensity(), np.arange(6).reshape(3, 2), reset=True)
    assert integers.dtype == np.float64


def test_histogram_columns_follow_the_auto_rule_without_dequantising_floats():
    df = pd.DataFrame({"x": [0.5, 1.5, 2.5], "n": [1, 2, 3]})
    columns = HistogramDensity().fit(df).schema_.columns_
    assert [c.dequantize for c in columns] == [False, True]


def test_strings_in_an_array_message_ends_with_what_to_pass():
    X = np.array([["a", 1.0], ["b", 2.0]], dtype=object)
    ending = (
        "An array must be numeric; pass a pandas DataFrame to model columns of strings "
        "or other labels."
    )
    with pytest.raises(ValueError, match=f"{re.escape(ending)}$"):
        HistogramDensity().fit(X)


@pytest.mark.parametrize("method", ["fit", "score_samples"])
def test_a_series_is_rejected_as_one_dimensional_not_taken_for_a_dataframe(method):
    # A Series has ``dtypes`` and ``iloc`` but no ``columns``: it is not a table.
    density = HistogramDensity().fit(np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError, match="^Expected a 2-dimensional container but got"):
        getattr(density, method)(pd.Series([1.0, 2.0, 3.0]))


def test_a_boolean_array_model_reads_numbers_as_its_labels_and_gives_others_no_mass():
    # 0 and 1 are False and True; 2 is not a boolean, whatever dtype carries it: a
    # boolean column reserves no mass for values not seen in fit.
    X = np.array([[True, False], [False, True], [True, True]])
    density = HistogramDensity().fit(X)
    assert_allclose(density.score_samples(X.astype(float)), density.score_samples(X))
    assert density.score_samples(np.array([[2.0, 0.0]]))[0] == -np.inf


def test_labels_in_a_column_of_numbers_are_named_with_what_to_pass():
    density = HistogramDensity().fit(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    message = (
        "Column 'x' held numbers in fit, but now holds values such as 'a'. Pass the column "
        "as it was in fit."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        density.score_samples(pd.DataFrame({"x": pd.Series([np.nan, "a", "b"], dtype=object)}))


def test_numbers_held_as_objects_with_pandas_missing_values_are_encoded_as_floats():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.5, 1.5, 2.5]})
    density = HistogramDensity().fit(frame)
    as_objects = frame.astype(object)
    as_objects.loc[1, "x"] = pd.NA
    expected = frame.copy()
    expected.loc[1, "x"] = np.nan
    assert_array_equal(density.score_samples(as_objects), density.score_samples(expected))


def test_a_categorical_matrix_marks_its_numeric_columns_as_sharing_levels():
    from sklearn_vae._schema import TableSchema

    X = np.array([[0, 1], [2, 3]])
    shared = TableSchema("categorical", False).fit(X).columns_
    assert [column.shared_levels for column in shared] == [True, True]
    own = TableSchema({0: "categorical", 1: "categorical"}, False).fit(X).columns_
    assert [column.shared_levels for column in own] == [False, False]


def test_the_fitted_schema_prints_its_columns():
    frame = pd.DataFrame({"size": [1.0, 2.5, 3.0] * 10, "colour": ["red", "blue", "red"] * 10})
    vae = VAETransformer(n_components=1, hidden_layer_sizes=(4,), max_iter=1).fit(frame)
    text = repr(vae.schema_)
    assert "object at 0x" not in text
    assert "'size': float" in text and "likelihood='gaussian'" in text
    assert "'colour': label" in text and "2 levels" in text
