"""Column kinds recognised at fit: dates, numbers stored as text, identifiers, free text."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

import sklearn_vae._schema as schema_module
from sklearn_vae import DensityOutlierDetector, HistogramDensity, VAEImputer, VAETransformer
from sklearn_vae._column_kinds import KINDS_MESSAGE
from sklearn_vae._schema import TableSchema

TINY = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def kinds_table(n=60, seed=0, first_id=0):
    """A table of a date, numbers as text with "NA", an id, free text, labels and a number."""
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 3000, n)
    dates = pd.Timestamp("2000-01-01") + pd.to_timedelta(days, unit="D")
    precip = [f"{v:.2f}" for v in 0.001 * days + rng.gamma(2.0, 1.0, n)]
    precip[3] = "NA"
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    colour[5] = ""
    return pd.DataFrame(
        {
            "date": pd.Series(dates.strftime("%Y-%m-%d"), dtype="str"),
            "precip": pd.Series(precip, dtype="str"),
            "id": pd.Series([f"user{first_id + i}" for i in range(n)], dtype="str"),
            "note": [
                f"a long sentence that describes row {i} of the table in words" for i in range(n)
            ],
            "colour": colour,
            "x": rng.normal(size=n) + 0.001 * days,
        }
    )


def fit_warnings(estimator, X):
    """``estimator`` fitted on ``X``, and the messages of the recognition warnings of the fit."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(X)
    return estimator, [str(w.message) for w in caught if KINDS_MESSAGE in str(w.message)]


def test_a_table_of_string_kinds_warns_once_naming_each_column_and_records_its_kind():
    vae, messages = fit_warnings(VAETransformer(**TINY), kinds_table())
    assert len(messages) == 1
    message = messages[0]
    assert "dates or times ['date']" in message
    assert "numbers stored as text ['precip']" in message
    assert "identifiers ['id']" in message
    assert "free text ['note']" in message
    assert "colour" not in message and "'x'" not in message
    assert "'category' dtype" in message
    columns = {c.name: c for c in vae.schema_.columns_}
    assert list(columns) == ["date", "precip", "colour", "x"]
    assert columns["date"].recognised == "datetime" and columns["date"].kind == "float"
    assert columns["date"].parse_format == "%Y-%m-%d"
    assert columns["precip"].recognised == "number" and columns["precip"].kind == "float"
    # Null-like strings are missing, not labels.
    assert columns["colour"].recognised == "labels"
    assert sorted(columns["colour"].categories) == ["blue", "green", "red"]
    assert columns["x"].recognised is None
    assert [(e["name"], e["kind"]) for e in vae.schema_.dropped_] == [
        ("id", "identifier"),
        ("note", "free text"),
    ]
    assert vae.n_features_in_ == 6
    text = repr(vae.schema_)
    assert "'date': datetime" in text and "'precip': number" in text and "'colour': label" in text
    assert "dropped at fit: ['id', 'note']" in text


def test_samples_hold_datetimes_floats_and_dropped_columns_as_missing():
    vae, _ = fit_warnings(VAETransformer(**TINY), kinds_table())
    samples = vae.sample(5, random_state=0)
    assert list(samples.columns) == list(kinds_table().columns)
    assert samples["date"].dtype == "datetime64[us]"  # pandas' parse of the strings
    assert samples["precip"].dtype == np.float64
    assert samples["id"].tolist() == [None] * 5 and samples["note"].tolist() == [None] * 5
    assert set(samples["colour"]) <= {"red", "green", "blue"}
    inverse = vae.inverse_transform(vae.transform(kinds_table()))
    assert inverse.dtypes.equals(samples.dtypes)
    assert inverse["id"].isna().all()


def test_held_out_rows_with_new_ids_and_new_dates_score_finite():
    X = kinds_table()
    vae, _ = fit_warnings(VAETransformer(**TINY), X)
    new = kinds_table(n=20, seed=1, first_id=1000)
    new.loc[0, "date"] = "2031-05-05"  # after every training date
    scores = vae.score_samples(new)
    assert np.isfinite(scores).all()
    histogram, messages = fit_warnings(HistogramDensity(), X)
    assert len(messages) == 1
    assert np.isfinite(histogram.score_samples(new)).all()


def test_dropped_columns_are_ignored_exactly():
    X = kinds_table()
    vae, _ = fit_warnings(VAETransformer(**TINY), X)
    without, _ = fit_warnings(VAETransformer(**TINY), X.drop(columns=["id", "note"]))
    assert_array_equal(vae.transform(X), without.transform(X.drop(columns=["id", "note"])))
    # New values in a dropped column change nothing.
    other = X.assign(id="someone", note="anything at all")
    assert_array_equal(vae.score_samples(other), vae.score_samples(X))


def test_a_date_column_round_trips_exactly_through_the_encoding():
    stamps = pd.Series(["2001-02-03 04:05:06", "1969-12-31 23:59:59", None, "2262-01-01 00:00:00"])
    X = pd.DataFrame({"when": stamps, "x": [0.0, 1.0, 2.0, 3.0]})
    schema = TableSchema().fit(X)
    decoded = schema.decode(schema.encode(X))
    expected = pd.to_datetime(stamps, format="%Y-%m-%d %H:%M:%S")
    pd.testing.assert_series_equal(decoded["when"], expected, check_names=False)
    # One day is one unit of the model.
    assert schema.encode(X)[0, 0] - schema.encode(X)[1, 0] == pytest.approx(
        11356 + 4 / 24 + 5 / 1440 + 7 / 86400
    )


@pytest.mark.parametrize("dump", ["pickle", "skops"])
def test_a_datetime_column_samples_its_dtype_and_saving_keeps_the_kinds(dump):
    rng = np.random.default_rng(0)
    when = pd.Timestamp("2020-01-01", tz="Europe/Paris") + pd.to_timedelta(
        rng.integers(0, 900, 50), unit="h"
    )
    X = pd.DataFrame({"when": when, "x": rng.normal(size=50), "id": [f"r{i}" for i in range(50)]})
    vae, messages = fit_warnings(VAETransformer(**TINY), X)
    assert len(messages) == 1 and "'when'" not in messages[0]  # a datetime dtype is no surprise
    assert vae.sample(3, random_state=0)["when"].dtype == X["when"].dtype
    assert vae.inverse_transform(vae.transform(X))["when"].dtype == X["when"].dtype
    held_out = X.iloc[:5].assign(when=pd.Timestamp("2030-06-01", tz="UTC"))
    assert np.isfinite(vae.score_samples(held_out)).all()
    if dump == "pickle":
        loaded = pickle.loads(pickle.dumps(vae))
    else:
        sio = pytest.importorskip("skops.io")
        loaded = sio.loads(sio.dumps(vae), trusted=["sklearn_vae._vae.VAETransformer"])
    assert loaded.schema_.columns_ == vae.schema_.columns_
    assert loaded.schema_.dropped_ == vae.schema_.dropped_
    assert_array_equal(loaded.score_samples(held_out), vae.score_samples(held_out))
    pd.testing.assert_frame_equal(loaded.sample(4, random_state=1), vae.sample(4, random_state=1))


def test_a_damaged_list_of_dropped_columns_is_refused_at_load():
    X = kinds_table()
    vae, _ = fit_warnings(VAETransformer(**TINY), X)
    state = vae.__getstate__()
    state["schema_"]["dropped_"] = [{"position": 2, "name": "id", "kind": "password"}]
    with pytest.raises(ValueError, match="damaged dropped_ entry"):
        VAETransformer.__new__(VAETransformer).__setstate__(state)


def test_a_category_column_of_distinct_labels_is_kept():
    X = kinds_table().drop(columns=["note"])
    X["id"] = X["id"].astype("category")
    vae, messages = fit_warnings(VAETransformer(**TINY), X)
    assert "'id'" not in messages[0]
    assert "id" in vae.schema_.names and vae.schema_.dropped_ == []


def test_the_rules_need_enough_observed_rows():
    # Under MIN_OBSERVED rows, distinct strings are labels.
    X = kinds_table(n=15)
    vae, messages = fit_warnings(VAETransformer(**TINY), X)
    assert "id" in vae.schema_.names and "identifiers" not in messages[0]


def test_giving_a_dropped_column_is_refused():
    vae, _ = fit_warnings(VAETransformer(**TINY), kinds_table())
    with pytest.raises(ValueError, match=r"given sets \['id'\], dropped from the model"):
        vae.sample(2, given={"id": "user3"}, random_state=0)
    given = vae.sample(2, given={"date": "2005-06-07", "colour": "red"}, random_state=0)
    assert (given["date"] == pd.Timestamp("2005-06-07")).all()


def test_the_imputer_fills_dates_and_passes_dropped_columns_through():
    X = kinds_table()
    X.loc[[1, 2], "date"] = None
    X.loc[[4, 6], "id"] = None
    imputer = VAEImputer(
        VAETransformer(**TINY), n_estimators=2, n_importance_samples=20, random_state=0
    )
    imputer, messages = fit_warnings(imputer, X)
    assert len(messages) == 1  # the members fit the same table: one warning
    out = imputer.transform(X)
    assert out["date"].dtype == "datetime64[us]" and out["date"].notna().all()
    observed = X["date"].notna()
    assert (out["date"][observed] == pd.to_datetime(X["date"][observed])).all()
    pd.testing.assert_series_equal(out["id"], X["id"])
    assert out["precip"].dtype == np.float64 and out["precip"].notna().all()


def test_the_imputer_fills_null_like_strings_of_a_label_column():
    # "NA" and "" are missing to the model, so the imputer fills them like None.
    X = pd.DataFrame(
        {
            "x": np.linspace(0.0, 1.0, 30),
            "colour": ["red", "blue", "NA", "red", "", "blue"] * 5,
        }
    )
    imputer = VAEImputer(VAETransformer(**TINY), n_estimators=1, random_state=0)
    out = fit_warnings(imputer, X)[0].transform(X)
    null_like = X["colour"].isin(["NA", ""]).to_numpy()
    assert out["colour"][null_like].isin(["red", "blue"]).all()
    pd.testing.assert_series_equal(out["colour"][~null_like], X["colour"][~null_like])


def test_the_detector_warns_once_and_scores_new_ids():
    X = kinds_table()
    detector = DensityOutlierDetector(
        VAETransformer(**TINY), background=HistogramDensity(), cv=2, random_state=0
    )
    detector, messages = fit_warnings(detector, X)
    assert len(messages) == 1
    assert np.isfinite(detector.score_samples(kinds_table(n=10, seed=2, first_id=500))).all()


def _fit_outputs(X):
    vae = VAETransformer(**TINY).fit(X)
    return vae.transform(X), vae.score_samples(X), vae.sample(3, random_state=1)


@pytest.mark.parametrize("table", ["labels", "numbers", "array"])
def test_without_anything_to_recognise_results_are_those_of_no_recognition(table, monkeypatch):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"x": rng.normal(size=40), "k": rng.integers(0, 4, 40), "b": rng.random(40) < 0.5}
    )
    if table == "labels":
        X["s"] = pd.Series(rng.choice(["a", "b", None], 40), dtype="str")
        X["c"] = pd.Categorical(rng.choice(["u", "v"], 40))
    elif table == "array":
        X = X[["x"]].to_numpy()
    expected = _fit_outputs(X)
    monkeypatch.setattr(schema_module, "recognise", lambda series: None)
    actual = _fit_outputs(X)
    for a, b in zip(expected, actual, strict=True):
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        else:
            assert_array_equal(a, b, strict=True)


def test_a_table_of_identifiers_only_is_refused():
    X = kinds_table()[["id", "note"]]
    with pytest.raises(ValueError, match=r"Every column of X holds identifiers or free text"):
        VAETransformer(**TINY).fit(X)
