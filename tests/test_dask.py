"""Hyperparameter search on a real Dask cluster through joblib's Dask backend."""

import joblib
import numpy as np
import pytest
from conftest import FAST, make_factor_data
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from sklearn_vae import VAEImputer, VAETransformer

distributed = pytest.importorskip("distributed")


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
