"""Incremental training, warm starts and memory-mapped data."""

import tracemalloc

import numpy as np
import pytest
from conftest import FAST, make_factor_data, peak_rss_growth
from numpy.testing import assert_array_equal
from sklearn.base import clone

from sklearn_vae import VAETransformer

STREAM = {**FAST, "early_stopping": False}


def test_partial_fit_trains_one_epoch_per_call():
    X = make_factor_data(600)
    vae = VAETransformer(**STREAM)
    for i, chunk in enumerate(np.array_split(X, 3)):
        vae.partial_fit(chunk)
        assert vae.n_iter_ == i + 1
    assert len(vae.loss_curve_) == 3
    assert vae.validation_scores_ is None


def test_partial_fit_keeps_optimiser_state():
    X = make_factor_data(600)
    vae = VAETransformer(**STREAM).partial_fit(X[:300])
    steps_after_first = _adam_steps(vae)
    vae.partial_fit(X[300:])
    # Adam's step counter continues: the optimiser was not re-created.
    assert _adam_steps(vae) == 2 * steps_after_first


def _adam_steps(vae):
    state = vae.net_.optimizer_.state
    return int(next(iter(state.values()))["step"])


def test_partial_fit_over_many_epochs_improves_the_fit():
    X = make_factor_data(400)
    vae = VAETransformer(**STREAM).partial_fit(X)
    first = vae.score(X)
    for _ in range(30):
        vae.partial_fit(X)
    assert vae.score(X) > first


def test_partial_fit_rejects_a_different_feature_count():
    X = make_factor_data(100)
    vae = VAETransformer(**STREAM).partial_fit(X)
    with pytest.raises(ValueError, match="X has 5 features, but VAETransformer is expecting 6"):
        vae.partial_fit(X[:, :5])


def test_partial_fit_is_reproducible():
    X = make_factor_data(300)
    a, b = VAETransformer(**STREAM), VAETransformer(**STREAM)
    for chunk in np.array_split(X, 3):
        a.partial_fit(chunk)
        b.partial_fit(chunk)
    assert_array_equal(a.transform(X), b.transform(X))


def test_warm_start_continues_training():
    X = make_factor_data(300)
    params = {**STREAM, "max_iter": 5, "tol": 0.0, "n_iter_no_change": 10}
    warm = VAETransformer(**params, warm_start=True).fit(X)
    first_curve = list(warm.loss_curve_)
    warm.fit(X)
    assert warm.n_iter_ == 10
    assert warm.loss_curve_[:5] == first_curve
    cold = VAETransformer(**params).fit(X).fit(X)
    assert cold.n_iter_ == 5


def test_warm_start_applies_new_learning_rate_and_beta_keeping_adam_state():
    X = make_factor_data(300)
    vae = VAETransformer(**{**STREAM, "max_iter": 3}, warm_start=True).fit(X)
    steps = _adam_steps(vae)
    vae.set_params(learning_rate_init=1e-4, beta=0.5).fit(X)
    assert vae.net_.optimizer_.param_groups[0]["lr"] == 1e-4
    assert vae.net_.criterion_.beta == 0.5
    assert _adam_steps(vae) == 2 * steps


def test_warm_start_rejects_a_different_feature_count():
    X = make_factor_data(100)
    vae = VAETransformer(**STREAM, warm_start=True).fit(X)
    with pytest.raises(ValueError, match="X has 4 features"):
        vae.fit(X[:, :4])


@pytest.fixture(scope="module")
def memmapped(tmp_path_factory):
    X = make_factor_data(100_000, n_features=16).astype(np.float32)
    path = tmp_path_factory.mktemp("data") / "X.npy"
    np.save(path, X)
    return X, np.load(path, mmap_mode="r")


def test_memmap_gives_the_same_results_as_in_memory_data(memmapped):
    X, X_map = memmapped
    params = {**STREAM, "max_iter": 1, "batch_size": 1024}
    in_memory = VAETransformer(**params).fit(X[:20_000])
    mapped = VAETransformer(**params).fit(X_map[:20_000])
    assert_array_equal(in_memory.transform(X[:500]), mapped.transform(X_map[:500]))
    assert_array_equal(in_memory.score_samples(X[:500]), mapped.score_samples(X_map[:500]))


@pytest.mark.parametrize("likelihood", ["gaussian", "poisson"])
def test_memmap_is_never_copied_whole(memmapped, tmp_path, likelihood):
    # numpy reports its allocations to tracemalloc: the peak while fitting,
    # transforming and scoring must stay far below the size of the array
    # (6.4 MB), i.e. only batches and chunks are materialised.
    X, X_map = memmapped
    if likelihood == "poisson":
        path = tmp_path / "counts.npy"
        np.save(path, np.abs(np.round(X)))
        X_map = np.load(path, mmap_mode="r")
    vae = VAETransformer(**{**STREAM, "max_iter": 1, "batch_size": 512, "likelihood": likelihood})
    # A first small fit imports what fit imports lazily (tens of MB of Python objects
    # that tracemalloc would count), so the test does not depend on the tests before it.
    clone(vae).fit(X_map[:1000]).log_likelihood(X_map[:10], n_importance_samples=2)
    tracemalloc.start()
    try:
        vae.fit(X_map)
        vae.transform(X_map)
        vae.score_samples(X_map)
        vae.log_likelihood(X_map[:2000], n_importance_samples=10, random_state=0)
        vae.partial_fit(X_map)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = X_map.shape[0] * (vae.n_components + 1) * 8  # transform and score arrays
    assert peak < outputs + X_map.nbytes / 4


def test_memmap_fit_peak_memory_grows_only_by_the_pages_read(tmp_path):
    # Process memory, not only numpy's: a float64 memmap of 10^6 rows x 16
    # features (128 MB). Pages of the file that are read count in the RSS
    # once, so fitting on all rows after fitting on the first 10^5 may grow
    # the peak by the bytes of the extra rows, plus a quarter of the array for
    # batches, statistics and the allocator. A float32 copy of X made up front
    # (by torch or numpy) would add half of the array on top.
    n_small, n_large, n_features = 100_000, 1_000_000, 16
    path = tmp_path / "X.npy"
    np.save(path, make_factor_data(n_large, n_features=n_features))
    params = {**STREAM, "hidden_layer_sizes": (8,), "max_iter": 1, "batch_size": 4096}
    growth = peak_rss_growth(
        f"""
        import numpy as np
        from sklearn_vae import VAETransformer
        X = np.load({str(path)!r}, mmap_mode="r")
        params = {params!r}
        """,
        f"VAETransformer(**params).fit(X[:{n_small}])",
        "VAETransformer(**params).fit(X)",
    )
    pages_read = (n_large - n_small) * n_features * 8
    assert growth < pages_read + n_large * n_features * 8 / 4
