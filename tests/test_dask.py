"""Dask: fits over Dask collections, lazy scores, and searches on a real cluster."""

import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import FAST, make_factor_data, make_label_table, peak_rss_growth
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from sklearn_vae import VAEImputer, VAETransformer

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _search():
    params = {"n_components": [1, 2], "beta": [0.5, 1.0]}
    return GridSearchCV(VAETransformer(**FAST), params, cv=2)


@pytest.mark.timeout(300)
def test_dask_search_equals_sequential_search(client):
    X = make_factor_data(200)
    sequential = _search().fit(X)
    with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        on_dask = _search().fit(X)
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        assert_array_equal(on_dask.cv_results_[key], sequential.cv_results_[key], err_msg=key)
    assert on_dask.best_params_ == sequential.best_params_
    assert_array_equal(on_dask.transform(X), sequential.transform(X))
    # The work really ran on the cluster, in both workers' processes.
    assert {task["worker"] for task in tasks.data} == set(client.scheduler_info()["workers"])
    assert np.all(np.isfinite(on_dask.cv_results_["mean_test_score"]))


@pytest.mark.timeout(300)
def test_dask_search_on_a_table_with_missing_values_equals_sequential_search(client):
    # A DataFrame with labels and NaN travels to the workers and back: same
    # scores, same refitted model.
    from test_tables import make_table

    table = make_table(80)
    search = GridSearchCV(VAETransformer(**FAST), {"n_components": [1, 2]}, cv=2)
    sequential = clone(search).fit(table)
    with joblib.parallel_backend("dask"):
        on_dask = clone(search).fit(table)
    assert_array_equal(
        on_dask.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )
    assert_array_equal(on_dask.transform(table), sequential.transform(table))
    assert np.all(np.isfinite(on_dask.cv_results_["mean_test_score"]))


@pytest.mark.timeout(300)
def test_imputer_ensemble_fitted_on_dask_equals_the_sequential_one(client):
    # VAEImputer fits its models through joblib: under the Dask backend they
    # are fitted on the cluster's workers, into the same models.
    X = make_factor_data(120)
    X[np.random.default_rng(0).uniform(size=X.shape) < 0.2] = np.nan
    imputer = VAEImputer(VAETransformer(**FAST), n_estimators=2, n_importance_samples=20)
    imputer.set_params(random_state=0)
    sequential = clone(imputer).fit(X)
    with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        on_dask = clone(imputer).fit(X)
    assert len(tasks.data) >= 2
    assert_array_equal(on_dask.transform(X), sequential.transform(X))
    assert not np.isnan(on_dask.transform(X)).any()


@pytest.mark.timeout(120)
def test_dask_workers_use_one_torch_thread_each(client):
    # Dask's nanny sets OMP_NUM_THREADS=1 in worker processes; a fit there
    # must not spread over every core. torch read that variable when it was
    # imported in the worker, so first give it two threads, as torch does on
    # a machine where the variable was not set: the budget must bring even a
    # fit large enough for threads back to one, and restore the worker's
    # setting afterwards.
    def threads_before_during_after_fit():
        import os

        import torch

        from sklearn_vae._threads import THREADED_WORK, n_threads, torch_threads

        previous = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            with torch_threads(n_threads(None, THREADED_WORK, 1)):
                during = torch.get_num_threads()
            after = torch.get_num_threads()
        finally:
            torch.set_num_threads(previous)
        return os.environ.get("OMP_NUM_THREADS"), during, after

    results = client.run(threads_before_during_after_fit).values()
    assert set(results) == {("1", 1, 2)}


# ---------------------------------------------------- fits over Dask collections

SMALL = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)


@pytest.fixture(autouse=False)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def make_partition(i, n=40):
    """One partition of a table: a label first seen in partition 2, categories that differ."""
    rng = np.random.default_rng(i)
    colours = ["red", "blue"] + (["green"] if i >= 2 else [])
    shapes = ["circle", "square"] if i < 2 else ["square", "star"]
    frame = pd.DataFrame(
        {
            "size": rng.normal(3.0, 2.0, n),
            "count": rng.integers(0, 20, n),
            "colour": rng.choice(colours, n).astype(object),
            "shape": pd.Categorical(rng.choice(shapes, n), categories=shapes),
            "flag": rng.random(n) < 0.3,
        },
        index=pd.RangeIndex(i * n, (i + 1) * n),
    )
    frame.loc[rng.random(n) < 0.1, "size"] = np.nan
    frame.loc[rng.random(n) < 0.1, "colour"] = None
    return frame


def make_collection(n_partitions=4, make=make_partition, log=None):
    """A Dask DataFrame of ``make(i)``; ``log`` records which partition is computed when."""

    def build(i):
        if log is not None:
            log.append(i)
        return make(i)

    # from_map, as read_parquet builds its partitions (dask 2026.8 cannot turn a
    # from_delayed DataFrame into an array: its to_dask_array fails too).
    return dd.from_map(build, range(n_partitions), meta=make(0).iloc[:0], enforce_metadata=False)


def in_memory(n_partitions=4):
    """The same table as one DataFrame, categories the union in order of appearance."""
    frame = pd.concat([make_partition(i) for i in range(n_partitions)])
    shapes = pd.CategoricalDtype(["circle", "square", "star"])
    return frame.astype({"shape": shapes, "colour": make_collection()._meta["colour"].dtype})


def test_importing_the_package_or_fitting_an_array_does_not_import_dask():
    code = (
        "import sys, numpy as np\n"
        "from sklearn_vae import VAETransformer\n"
        "VAETransformer(n_components=1, hidden_layer_sizes=(4,), max_iter=1)"
        ".fit(np.random.default_rng(0).normal(size=(20, 2)))\n"
        "assert 'dask' not in sys.modules, 'dask was imported'\n"
    )
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()


def test_fit_on_a_dask_dataframe_learns_what_a_fit_on_the_whole_table_learns(synchronous):
    # The summary pass sees every partition: a label first seen in a later
    # partition is known, categories that differ between partitions are their
    # union, and the ranges and exact moments are those of the whole table.
    vae = VAETransformer(**SMALL).fit(make_collection())
    whole = VAETransformer(**SMALL).fit(in_memory())
    for got, want in zip(vae.schema_.columns_, whole.schema_.columns_, strict=True):
        assert (got.name, got.kind, got.likelihood) == (want.name, want.kind, want.likelihood)
        assert (got.low, got.high, got.dequantize) == (want.low, want.high, want.dequantize)
        if want.categories is not None:
            assert list(got.categories) == list(want.categories), got.name
    colour, shape = vae.schema_.columns_[2], vae.schema_.columns_[3]
    assert list(colour.categories) == ["blue", "green", "red"]
    assert list(shape.categories) == ["circle", "square", "star"]
    assert_array_equal(vae.feature_names_in_, whole.feature_names_in_)
    got, want = vae._standardisation, whole._standardisation
    assert_allclose(got.loc, want.loc, rtol=1e-12)
    assert_allclose(got.scale, want.scale, rtol=1e-12)
    # The encoder's scaling of the label and integer columns, from their codes' moments.
    inputs, expected = vae.net_.module_.inputs, whole.net_.module_.inputs
    assert_allclose(inputs.loc.numpy(), expected.loc.numpy(), rtol=1e-6)
    assert_allclose(inputs.scale.numpy(), expected.scale.numpy(), rtol=1e-6)
    assert_array_equal(vae._support, whole._support)
    # Every method takes the table's partitions: a row of a later partition
    # with the late label scores like any other.
    table = in_memory()
    assert np.isfinite(vae.score_samples(table[table["colour"] == "green"])).all()


def test_each_epoch_visits_every_training_partition_once_in_a_seeded_order(synchronous):
    log = []
    X = make_collection(6, log=log)
    params = {**SMALL, "early_stopping": False}
    vae = VAETransformer(**params).fit(X)
    assert sorted(log[:6]) == list(range(6))  # the summary pass
    assert log[6:12] == list(range(6))  # the rows that fit the power map of "size"
    assert log[12:18] == list(range(6))  # the pass that counts labels and missing entries
    epochs = [log[18 + 6 * k : 24 + 6 * k] for k in range(3)]
    assert len(log) == 18 + 3 * 6
    assert all(sorted(epoch) == list(range(6)) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) > 1, "the order is drawn anew each epoch"
    again, log[:] = VAETransformer(**params).fit(X), []
    VAETransformer(**params).fit(X)
    assert log[18:] == [i for epoch in epochs for i in epoch]
    assert_array_equal(again.transform(in_memory(6)), vae.transform(in_memory(6)))


def test_early_stopping_holds_out_whole_partitions(synchronous):
    log = []
    X = make_collection(10, log=log)
    vae = VAETransformer(**{**SMALL, "max_iter": 2, "validation_fraction": 0.2}).fit(X)
    train = log[30:38]  # the first epoch's training partitions, then its validation ones
    valid = log[38:40]
    assert sorted(train + valid) == list(range(10))
    assert valid == sorted(valid) and len(set(valid)) == 2
    assert len(vae.validation_scores_) == 2 and np.isfinite(vae.validation_scores_).all()
    with pytest.raises(ValueError, match=r"X has 1 non-empty partition\(s\).*Repartition X"):
        VAETransformer(**SMALL).fit(make_collection(1))


def test_partial_fit_of_a_dask_collection_is_one_epoch_over_its_partitions(synchronous):
    log = []
    X = make_collection(4, log=log)
    vae = VAETransformer(**SMALL).partial_fit(X)
    assert vae.n_iter_ == 1 and len(log) == 16
    assert sorted(log[12:]) == [0, 1, 2, 3]
    vae.partial_fit(X)
    assert vae.n_iter_ == 2 and len(log) == 28
    with pytest.raises(ValueError, match="Partition 2 of X: column 'colour' holds 'green'"):
        VAETransformer(**SMALL).partial_fit(make_collection(2)).partial_fit(X)


def test_transform_and_scores_of_a_dask_collection_are_lazy_and_match_in_memory(synchronous):
    X, table = make_collection(), in_memory()
    vae = VAETransformer(**SMALL).fit(X)
    Z, scores = vae.transform(X), vae.score_samples(X)
    bound = vae.log_likelihood(X, n_importance_samples=5, random_state=0)
    for lazy, ndim in ((Z, 2), (scores, 1), (bound, 1)):
        assert dask.is_dask_collection(lazy) and lazy.ndim == ndim
        assert lazy.dtype == lazy.compute().dtype == np.float64
    assert Z.shape[1] == 2 and Z.compute().shape == (len(table), 2)
    assert_array_equal(Z.compute(), vae.transform(table))
    assert_array_equal(scores.compute(), vae.score_samples(table))
    # Each partition's importance samples are drawn with the one seed.
    per_partition = [
        vae.log_likelihood(make_partition(i), n_importance_samples=5, random_state=0)
        for i in range(4)
    ]
    assert_array_equal(bound.compute(), np.concatenate(per_partition))
    score = vae.score(X)
    assert isinstance(score, float)
    assert score == pytest.approx(vae.score(table), rel=1e-12)


def test_scoring_a_collection_with_other_columns_fails_before_computing(synchronous):
    log = []
    vae = VAETransformer(**SMALL).fit(make_collection())
    renamed = make_collection(log=log).rename(columns={"size": "length"})
    with pytest.raises(ValueError, match="length"):
        vae.score_samples(renamed)
    with pytest.raises(ValueError, match="X has 6 features, but VAETransformer is expecting 5"):
        VAETransformer(**SMALL).fit(make_factor_data(50, 5)).transform(da.ones((10, 6)))
    assert log == []


def test_a_dask_array_fits_and_scores_with_known_chunks(synchronous):
    X = make_factor_data(300)
    dX = da.from_array(X, chunks=(60, 3))  # two column chunks: rows are what counts
    vae = VAETransformer(**SMALL).fit(dX)
    whole = VAETransformer(**SMALL).fit(X)
    assert_allclose(vae._standardisation.loc, whole._standardisation.loc, rtol=1e-12)
    assert_allclose(vae._standardisation.scale, whole._standardisation.scale, rtol=1e-12)
    assert vae.n_features_in_ == 6 and not hasattr(vae, "feature_names_in_")
    Z = vae.transform(dX)
    assert Z.chunks == ((60,) * 5, (2,))
    assert vae.score_samples(dX).chunks == ((60,) * 5,)
    assert_array_equal(Z.compute(), vae.transform(X))
    assert_array_equal(vae.score_samples(dX).compute(), vae.score_samples(X))


def test_incremental_gives_the_model_of_partial_fit_over_the_same_blocks(synchronous):
    Incremental = pytest.importorskip("dask_ml.wrappers").Incremental

    # The partitions 2 to 5 share their labels: partial_fit learns them from the first.
    X = make_collection(4, make=lambda i: make_partition(i + 2))
    blocks = [make_partition(i + 2).astype({"colour": X._meta["colour"].dtype}) for i in range(4)]
    table = pd.concat(blocks)
    incremental = Incremental(VAETransformer(**SMALL), shuffle_blocks=False).fit(X)
    by_hand = VAETransformer(**SMALL)
    for block in blocks:
        by_hand.partial_fit(block)
    fitted = incremental.estimator_
    assert fitted.n_iter_ == by_hand.n_iter_ == 4
    for got, want in zip(
        fitted.net_.module_.parameters(), by_hand.net_.module_.parameters(), strict=True
    ):
        assert_array_equal(got.detach().numpy(), want.detach().numpy())
    assert_array_equal(fitted.transform(table), by_hand.transform(table))
    # Incremental scores through the estimator, on the Dask collection itself.
    assert incremental.score(X, None) == pytest.approx(by_hand.score(table), rel=1e-12)


def test_partitions_that_disagree_with_the_collection_are_refused(synchronous):
    def wrong_dtype(i):
        frame = make_partition(i)
        return frame.astype({"count": float}) if i == 2 else frame

    with pytest.raises(ValueError, match=r"Partition 2 of X has column 'count' of dtype float64"):
        VAETransformer(**SMALL).fit(make_collection(make=wrong_dtype))

    def wrong_columns(i):
        frame = make_partition(i)
        return frame.drop(columns="flag") if i == 1 else frame

    with pytest.raises(ValueError, match=r"Partition 1 of X has the columns.*missing: \['flag'\]"):
        VAETransformer(**SMALL).fit(make_collection(make=wrong_columns))

    def empty_row(i):
        frame = make_partition(i).astype({"flag": "boolean", "count": "Int64"})
        if i == 3:
            frame.iloc[5] = None
        return frame

    with pytest.raises(ValueError, match="Partition 3 of X: Row 5 of X has no observed entry"):
        VAETransformer(**SMALL).fit(make_collection(make=empty_row))


@pytest.mark.timeout(300)
def test_a_fit_over_many_partitions_holds_a_few_at_a_time(tmp_path):
    # 40 partitions of 4 MB (25,000 rows of 20 float64 columns): a fit that
    # held them all would grow by 160 MB and more; one that computes a
    # partition at a time grows by a few.
    params = {**SMALL, "early_stopping": False, "max_iter": 1, "batch_size": 8192}
    growth = peak_rss_growth(
        f"""
        import dask, numpy as np, pandas as pd, dask.dataframe as dd
        from sklearn_vae import VAETransformer
        dask.config.set(scheduler="synchronous")
        def part(i):
            rng = np.random.default_rng(i)
            return pd.DataFrame(rng.normal(size=(25_000, 20)), columns=list("abcdefghijklmnopqrst"))
        def collection(n):
            return dd.from_map(part, range(n), meta=part(0).iloc[:0], enforce_metadata=False)
        params = {params!r}
        """,
        "VAETransformer(**params).fit(collection(4))",
        "VAETransformer(**params).fit(collection(40))",
    )
    partition = 25_000 * 20 * 8
    assert growth < 8 * partition, f"{growth / 2**20:.0f} MiB"


@pytest.mark.timeout(300)
def test_a_fit_on_the_cluster_equals_the_synchronous_fit(client):
    X, table = make_collection(), in_memory()
    with dask.config.set(scheduler="synchronous"):
        local = VAETransformer(**SMALL).fit(X)
    with distributed.get_task_stream(client) as tasks:
        on_cluster = VAETransformer(**SMALL).fit(X)
        scores = on_cluster.score_samples(X).compute()
    assert len(tasks.data) >= 4
    assert_array_equal(on_cluster.transform(table), local.transform(table))
    assert_array_equal(scores, local.score_samples(table))


def test_string_columns_of_a_collection_are_labels_whatever_they_hold(synchronous):
    # The summary pass keeps one count per label, from which neither dates nor
    # identifiers can be told: a collection's string columns are modelled as labels.
    labels = [f"lab{i}" for i in range(25)]
    frame = pd.DataFrame(
        {
            "x": np.linspace(-1.0, 1.0, 200),
            "c": np.tile(labels, 8),
            "when": pd.date_range("2020-01-01", periods=200).astype(str),
        }
    )
    vae = VAETransformer(**SMALL).fit(dd.from_pandas(frame, npartitions=4))
    columns = {column.name: column for column in vae.schema_.columns_}
    assert len(columns["c"].categories) == 25 and len(columns["when"].categories) == 200
    assert columns["when"].recognised is None and not vae.schema_.dropped_


def test_a_collection_tells_float_columns_of_integers_as_a_table_does(synchronous):
    # "late" holds integers but for one entry of the last partition, which the
    # summary pass must carry to the schema.
    late = np.arange(200.0)
    late[190] = 0.5
    frame = pd.DataFrame(
        {
            "counts": np.arange(200.0) % 40,
            "answer": np.arange(200.0) % 7,
            "late": late,
            "c": ["a", "b"] * 100,
        }
    )
    on_dask = VAETransformer(**SMALL).fit(dd.from_pandas(frame, npartitions=4))
    in_memory = VAETransformer(**SMALL).fit(frame)
    for dask_column, column in zip(
        on_dask.schema_.columns_, in_memory.schema_.columns_, strict=True
    ):
        assert (dask_column.likelihood, dask_column.dequantize) == (
            column.likelihood,
            column.dequantize,
        )
    assert [(column.likelihood, column.dequantize) for column in in_memory.schema_.columns_] == [
        ("gaussian", True),
        ("categorical", False),
        ("gaussian", False),
        ("categorical", False),
    ]


@pytest.fixture(scope="module")
def mixed_vae():
    return VAETransformer(**SMALL).fit(make_label_table())


def test_sample_given_a_dask_dataframe_is_lazy_and_seeded_by_partition(mixed_vae):
    from sklearn_vae._dask import _partition_seed

    given = pd.DataFrame(
        {
            "s": ["a", None, "c", "b", None],
            "n": [None, 7, 3, None, 1],
            "y": [5.0, None, None, 0.5, None],
        }
    )
    ddf = dd.from_pandas(given, npartitions=2)
    lazy = mixed_vae.sample(3, random_state=0, given=ddf, n_importance_samples=20)
    assert isinstance(lazy, dd.DataFrame)
    assert lazy.dtypes.equals(mixed_vae.sample(1).dtypes)
    drawn = lazy.compute()
    # Partition k: 3 draws per row, seeded by the call's seed and k alone.
    expected = pd.concat(
        [
            mixed_vae.sample(
                3,
                random_state=_partition_seed(0, k),
                given=ddf.get_partition(k).compute(),
                n_importance_samples=20,
            )
            for k in range(2)
        ]
    )
    assert drawn.equals(expected)
    assert len(drawn) == 15 and drawn.dtypes.equals(mixed_vae.sample(1).dtypes)
    assert_array_equal(drawn["s"].iloc[:3], "a")
    assert_array_equal(drawn["y"].iloc[:3], 5.0)
    # The same draws whatever the scheduler, and other draws for another seed.
    with dask.config.set(scheduler="threads"):
        assert lazy.compute().equals(drawn)
    other = mixed_vae.sample(3, random_state=1, given=ddf, n_importance_samples=20).compute()
    assert not other["y"].equals(drawn["y"])
    # Two partitions of the same condition draw independently of each other.
    twice = dd.from_pandas(pd.concat([given.iloc[[1]]] * 2, ignore_index=True), npartitions=2)
    halves = mixed_vae.sample(3, random_state=0, given=twice, n_importance_samples=20).compute()
    assert not np.array_equal(halves["y"].iloc[:3], halves["y"].iloc[3:])


def test_sample_given_a_dask_array_follows_the_fitted_input():
    X = make_factor_data(200)
    vae = VAETransformer(**SMALL).fit(X)
    given = np.full((6, X.shape[1]), np.nan)
    given[:, 0] = np.linspace(1, 5, 6)
    lazy = vae.sample(2, random_state=0, given=da.from_array(given, chunks=(3, 2)))
    assert isinstance(lazy, da.Array) and lazy.shape == (12, X.shape[1])
    drawn = lazy.compute()
    assert_array_equal(drawn[:, 0], np.repeat(given[:, 0], 2))
    assert np.isfinite(drawn).all()
    # A model fitted on a DataFrame reads the array's columns as its own, in order.
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    named = VAETransformer(**SMALL).fit(frame)
    lazy = named.sample(2, random_state=0, given=da.from_array(given, chunks=(3, -1)))
    assert isinstance(lazy, dd.DataFrame) and list(lazy.columns) == list(frame.columns)
    assert_array_equal(lazy.compute()["x0"], np.repeat(given[:, 0], 2))
    with pytest.raises(ValueError, match="features"):
        vae.sample(1, given=da.from_array(given[:, :3], chunks=(3, -1)))


def test_the_power_map_of_a_collection_is_that_of_the_whole_table(synchronous):
    # The exponents are fitted to every k-th row of the table, which the
    # stream reads across its partitions; its mean log-Jacobian of a
    # power-mapped column depends on every value, and is read from them too.
    from sklearn_vae._dask import training_stream
    from sklearn_vae._data import strided_rows

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.lognormal(size=300), "score": rng.normal(size=300)})
    collection = dd.from_pandas(frame, npartitions=4)
    vae = VAETransformer(**SMALL).fit(collection)
    whole = VAETransformer(**SMALL).fit(frame)
    got, want = vae._standardisation, whole._standardisation
    assert want.power.tolist() == [True, False]
    assert_allclose(got.lambdas, want.lambdas, rtol=1e-6)
    stream = training_stream(vae, collection, reset=False)
    encoded = frame.to_numpy()
    for max_rows in (7, 40, 1000):
        assert_array_equal(stream.strided_rows(max_rows), strided_rows(encoded, max_rows))
    assert stream.mean_log_jacobian(got, None) == pytest.approx(
        got.mean_log_jacobian(encoded), rel=1e-12
    )
