"""End-to-end training and scoring on a CUDA device; skipped where none is present."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import FAST, make_factor_data
from numpy.testing import assert_allclose

from sklearn_vae import VAETransformer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")


@pytest.fixture(scope="module")
def cuda_vae():
    X = make_factor_data(500)
    return X, VAETransformer(**FAST, device="cuda").fit(X)


def test_cuda_fit_returns_numpy_outputs(cuda_vae):
    X, vae = cuda_vae
    assert next(vae.net_.module_.parameters()).device.type == "cuda"
    for output in (
        vae.transform(X),
        vae.inverse_transform(vae.transform(X)),
        vae.sample(5, random_state=0),
        vae.score_samples(X),
        vae.log_likelihood(X, n_importance_samples=50, random_state=0),
    ):
        assert isinstance(output, np.ndarray) and np.all(np.isfinite(output))


def test_cuda_model_scores_like_a_cpu_model(cuda_vae):
    # Same data and seed: GPU and CPU training differ only by float rounding,
    # so their held-out ELBOs agree to well within a nat.
    X, vae = cuda_vae
    cpu = VAETransformer(**FAST).fit(X)
    assert abs(vae.score(X) - cpu.score(X)) < 0.5


def test_cuda_model_loads_on_a_cpu_only_process(cuda_vae, tmp_path):
    X, vae = cuda_vae
    path = tmp_path / "vae.pkl"
    path.write_bytes(pickle.dumps(vae))
    np.save(tmp_path / "X.npy", X)
    expected = vae.transform(X)
    script = (
        "import pickle, numpy as np, torch; assert not torch.cuda.is_available();"
        f"vae = pickle.loads(open({str(path)!r}, 'rb').read());"
        f"np.save({str(tmp_path / 'Z.npy')!r}, vae.transform(np.load({str(tmp_path / 'X.npy')!r})))"
    )
    subprocess.run(
        [sys.executable, "-c", script], check=True, env={"CUDA_VISIBLE_DEVICES": "", "PATH": ""}
    )
    assert_allclose(np.load(tmp_path / "Z.npy"), expected, rtol=1e-5, atol=1e-6)


def test_cuda_weight_averaging_trains_and_continues_after_a_round_trip():
    # The average and the raw weights live on the module's device, and a
    # pickled model continues both there, as on the CPU (tests/test_persistence.py).
    X = make_factor_data(300)
    vae = VAETransformer(**FAST, average=0.9, device="cuda", warm_start=True).fit(X)
    state = vae.net_.weight_averaging_
    assert next(state.average.parameters()).device.type == "cuda"
    assert all(value.device.type == "cuda" for value in state.raw)
    loaded = pickle.loads(pickle.dumps(vae))
    assert all(value.device.type == "cuda" for value in loaded.net_.weight_averaging_.raw)
    for model in (vae, loaded):
        model.partial_fit(X)
    # Bit for bit on the CPU; CUDA kernels may order float sums differently between runs.
    assert_allclose(loaded.transform(X), vae.transform(X), rtol=1e-5, atol=1e-5)


@pytest.mark.timeout(300)
def test_cuda_data_parallel_fit_runs_on_nccl_and_scores_like_one_process():
    # One worker per GPU, as dask-cuda starts them: here the one GPU, so one
    # rank, through the same code path as on several (NCCL instead of gloo).
    distributed = pytest.importorskip("distributed")
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    from sklearn_vae import data_parallel

    X = pd.DataFrame(make_factor_data(2000), columns=[f"x{j}" for j in range(6)])
    ddf = dd.from_pandas(X, npartitions=4)
    params = dict(FAST, max_iter=5, early_stopping=False, device="cuda")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster),
        data_parallel(),
    ):
        parallel = VAETransformer(**params).fit(ddf)
    single = VAETransformer(**params).fit(ddf)
    assert next(parallel.net_.module_.parameters()).device.type == "cuda"
    # One rank takes the steps of one process, with noise of its own seed: the
    # two models agree to within this small model's seed-to-seed spread, well under a nat.
    assert abs(parallel.score(X) - single.score(X)) < 1.0
