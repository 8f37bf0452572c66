"""Data-parallel training: one model, several Dask workers, gradients averaged with gloo."""

import asyncio
import os
import sys
import threading
import time
import traceback
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_factor_data
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError
from skorch.history import History

from sklearn_vae import VAETransformer, data_parallel
from sklearn_vae._parallel import (
    DataParallel,
    SynchronisedSteps,
    _process_group,
    _Steps,
    _Stopped,
    parallel_settings,
    request_stop,
)

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _cluster(n_workers=2):
    return distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as client:
        yield client


def _table(n=2000, seed=0):
    """Two factors behind four numbers and a label."""
    X = make_factor_data(n, n_features=5, seed=seed)
    frame = pd.DataFrame(X[:, :4], columns=["a", "b", "c", "d"])
    frame["label"] = np.where(X[:, 4] > np.median(X[:, 4]), "high", "low")
    return frame


PARAMS = dict(n_components=2, hidden_layer_sizes=(32,), learning_rate_init=1e-2)


# ------------------------------------------------------- ranks in threads


def _run_ranks(work, n_ranks=2):
    """``work(group, rank)`` on ``n_ranks`` threads joined by a gloo group; their results."""
    import socket
    from datetime import timedelta

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    results, errors = [None] * n_ranks, [None] * n_ranks

    def run(rank):
        group = _process_group("gloo", "127.0.0.1", port, rank, n_ranks, timedelta(seconds=30))
        try:
            results[rank] = work(group, rank)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            errors[rank] = error

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(n_ranks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, errors


def test_gradients_become_their_row_weighted_mean_over_the_ranks():
    # Rank 0 has 3 rows, rank 1 has 5; each gradient is its batch's mean, so
    # the step's gradient over all 8 rows is (3 g0 + 5 g1) / 8 on both ranks.
    # A parameter without a gradient on one rank counts as a zero gradient there.
    grads = [torch.tensor([1.0, -2.0]), torch.tensor([3.0, 6.0])]
    rows = [3, 5]

    def work(group, rank):
        weight = torch.nn.Parameter(torch.zeros(2))
        unused = torch.nn.Parameter(torch.zeros(1))
        weight.grad = grads[rank].clone()
        if rank == 1:
            unused.grad = torch.tensor([8.0])
        step = SynchronisedSteps(group, "job")
        step.on_grad_computed(
            SimpleNamespace(),
            [("w", weight), ("u", unused)],
            X=torch.zeros(rows[rank], 4),
            training=True,
        )
        return weight.grad.clone(), unused.grad.clone()

    results, errors = _run_ranks(work)
    assert errors == [None, None]
    expected = (3 * grads[0] + 5 * grads[1]) / 8
    for weight, unused in results:
        assert_allclose(weight, expected, rtol=1e-6)
        assert_allclose(unused, [5 * 8.0 / 8], rtol=1e-6)


def test_a_non_finite_averaged_gradient_fails_every_rank_alike():
    def work(group, rank):
        weight = torch.nn.Parameter(torch.zeros(2))
        weight.grad = torch.tensor([np.nan if rank == 1 else 1.0, 0.0])
        net = SimpleNamespace(history=[{}, {}], lr=0.5)
        SynchronisedSteps(group, "job").on_grad_computed(
            net, [("w", weight)], X=torch.zeros(4, 2), training=True
        )

    _, errors = _run_ranks(work)
    for error in errors:
        assert isinstance(error, RuntimeError)
        assert "learning_rate_init=0.5" in str(error) and "epoch 2" in str(error)


def _history(train, valid, previous=()):
    """A skorch history: earlier epochs' losses, then one epoch of batches (loss, size)."""
    history = History()
    for train_loss, valid_loss in previous:
        history.new_epoch()
        history.record("train_loss", train_loss)
        history.record("valid_loss", valid_loss)
    history.new_epoch()
    for stage, batches in (("train", train), ("valid", valid)):
        for loss, size in batches:
            history.new_batch()
            history.record_batch(f"{stage}_loss", loss)
            history.record_batch(f"{stage}_batch_size", size)
    return history


def test_each_epochs_losses_become_their_row_weighted_mean_over_the_ranks():
    batches = [
        ([(2.0, 4), (4.0, 2)], [(10.0, 3)]),  # rank 0
        ([(1.0, 4)], [(7.0, 1), (9.0, 2)]),  # rank 1
    ]

    def work(group, rank):
        net = SimpleNamespace(history=_history(*batches[rank], previous=[(3.0, 9.0)]))
        SynchronisedSteps(group, "job").on_epoch_end(net)
        return net.history[-1]

    results, errors = _run_ranks(work)
    assert errors == [None, None]
    train = (2 * 4 + 4 * 2 + 1 * 4) / 10
    valid = (10 * 3 + 7 + 9 * 2) / 6
    for epoch in results:
        assert epoch["train_loss"] == pytest.approx(train, rel=1e-12)
        assert epoch["valid_loss"] == pytest.approx(valid, rel=1e-12)
        # The best flags compare the averaged losses with the earlier epochs'.
        assert epoch["train_loss_best"] is True and epoch["valid_loss_best"] is False


def test_a_stop_request_stops_every_rank_at_the_end_of_its_epoch():
    asyncio.run(request_stop("stopped job"))

    def work(group, rank):
        # Only rank 0's process was asked here: the flag is summed over ranks.
        job = "stopped job" if rank == 0 else "another job"
        net = SimpleNamespace(history=_history([(1.0, 2)], []))
        SynchronisedSteps(group, job).on_epoch_end(net)

    _, errors = _run_ranks(work)
    assert all(isinstance(error, _Stopped) for error in errors)


class _Batches:
    def __init__(self, n_rows):
        self.n_rows = n_rows

    def __len__(self):
        return self.n_rows

    def batches(self, batch_size, shuffle=False):
        yield from (
            list(range(i, min(i + batch_size, self.n_rows)))
            for i in range(0, self.n_rows, batch_size)
        )


def test_a_rank_with_fewer_batches_starts_its_rows_again_to_take_as_many_steps():
    steps = _Steps(_Batches(5), steps=5)  # 5 rows in batches of 2 give 3 batches
    batches = list(steps.batches(2))
    assert batches == [[0, 1], [2, 3], [4], [0, 1], [2, 3]]
    assert steps.n_batches(2) == 5 and len(steps) == 5
    assert list(_Steps(_Batches(5), steps=2).batches(2)) == [[0, 1], [2, 3]]


# --------------------------------------------------------- the parameters


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_workers": 0}, "n_workers must be a positive int or None"),
        ({"n_workers": 1.5}, "n_workers must be a positive int or None"),
        ({"n_workers": True}, "n_workers must be a positive int or None"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": "1"}, "timeout must be a positive number"),
    ],
)
def test_invalid_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match), data_parallel(**kwargs):
        pass


def test_data_parallel_refuses_data_held_in_memory():
    with pytest.raises(TypeError, match="partitions of a Dask collection"), data_parallel():
        VAETransformer(**PARAMS, max_iter=1).fit(make_factor_data(50))


def test_the_settings_hold_inside_the_block_only():
    assert parallel_settings() is None
    with data_parallel(n_workers=2, timeout=5):
        with data_parallel(n_workers=1):
            assert parallel_settings().n_workers == 1
        assert parallel_settings() == DataParallel(2, None, 5.0)
    assert parallel_settings() is None


# ------------------------------------------------------------ on a cluster


@pytest.mark.timeout(600)
def test_two_workers_reach_the_held_out_score_of_one_within_its_seed_spread(client):
    # The same epochs, on one process (three seeds) and on two workers.
    train, held_out = _table(4000, seed=0), _table(1000, seed=1)
    ddf = dd.from_pandas(train, npartitions=8)
    params = dict(PARAMS, max_iter=8, early_stopping=False)
    one = [
        VAETransformer(**params, random_state=seed).fit(ddf).score(held_out) for seed in range(3)
    ]
    with data_parallel(n_workers=2):
        two = VAETransformer(**params, random_state=0).fit(ddf)
        again = VAETransformer(**params, random_state=0).fit(ddf)
    spread = max(one) - min(one)
    assert min(one) - spread <= two.score(held_out) <= max(one) + spread, (one, two.score(held_out))
    # Seeded: the same bits again.
    assert_array_equal(two.transform(held_out), again.transform(held_out))
    assert two.n_iter_ == 8 and len(two.loss_curve_) == 8
    assert np.all(np.diff(two.loss_curve_[:4]) < 0)


@pytest.mark.timeout(300)
def test_early_stopping_decides_alike_on_every_rank(client):
    # One validation partition for two ranks: both score it; eleven more are shared.
    ddf = dd.from_pandas(_table(2400), npartitions=12)
    params = dict(PARAMS, max_iter=200, n_iter_no_change=2, tol=0.5, random_state=0)
    with data_parallel(timeout=60):
        vae = VAETransformer(**params).fit(ddf)
    assert vae.n_iter_ < 200  # the ranks stopped together: none waits for the others
    assert len(vae.validation_scores_) == vae.n_iter_
    assert vae.best_validation_score_ == max(vae.validation_scores_)


@pytest.mark.timeout(300)
def test_partial_fit_trains_one_epoch_on_every_worker(client):
    ddf = dd.from_pandas(_table(800), npartitions=4)
    with data_parallel(n_workers=2):
        vae = VAETransformer(**PARAMS, random_state=0).partial_fit(ddf)
        vae.partial_fit(ddf)
    assert vae.n_iter_ == 2 and len(vae.loss_curve_) == 2
    assert vae.transform(_table(10)).shape == (10, 2)


def test_too_few_partitions_or_workers_are_refused(client):
    with pytest.raises(ValueError, match=r"asks for more workers than the cluster has \(2\)"):
        with data_parallel(n_workers=3):
            VAETransformer(**PARAMS, max_iter=1).fit(dd.from_pandas(_table(200), npartitions=4))
    # Early stopping holds one partition out, which leaves one to train on.
    vae = VAETransformer(**PARAMS, max_iter=1, random_state=0)
    with pytest.raises(ValueError, match=r"1 non-empty training partition\(s\), fewer than the 2"):
        with data_parallel():
            vae.fit(dd.from_pandas(_table(200), npartitions=2))
    with pytest.raises(NotFittedError):
        vae.transform(_table(5))


def _fitted_in_memory():
    """A Dask table, a VAE fitted on the same rows in memory, and its transform of 20 rows."""
    vae = VAETransformer(**PARAMS, max_iter=2, early_stopping=False, random_state=0)
    vae.fit(_table(800))
    return dd.from_pandas(_table(800), npartitions=4), vae, vae.transform(_table(20))


def _failing_partitions(ddf, path, after, action):
    """``ddf`` whose partitions run ``action`` once, on the read after the first ``after``."""

    def read(partition):
        with open(path, "ab") as counter:
            counter.write(b".")
        if os.path.getsize(path) > after:
            try:
                os.close(os.open(f"{path}.done", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return partition
            action()
        return partition

    return ddf.map_partitions(read, meta=ddf._meta)


@pytest.mark.timeout(300)
def test_a_failing_partition_fails_the_fit_and_leaves_the_estimator_as_it_was(client, tmp_path):
    ddf, vae, before = _fitted_in_memory()

    def fail():
        raise OSError("the disk is gone")

    # Three passes read every partition before training: the summary, the rows that
    # fit the power map, then the label counts.
    failing = _failing_partitions(ddf, tmp_path / "reads", 13, fail)
    with pytest.raises(
        RuntimeError,
        match=r"Rank \d of the data-parallel fit, on worker .*OSError: the disk is gone",
    ):
        with data_parallel(timeout=30):
            vae.fit(failing)
    assert_array_equal(vae.transform(_table(20)), before)


@pytest.mark.timeout(300)
def test_a_worker_that_dies_mid_epoch_fails_the_fit_with_a_clear_error(tmp_path):
    ddf = dd.from_pandas(_table(800), npartitions=4)
    dying = _failing_partitions(ddf, tmp_path / "reads", 13, lambda: os._exit(1))
    vae = VAETransformer(**PARAMS, max_iter=3, early_stopping=False, random_state=0)
    with _cluster() as cluster, distributed.Client(cluster):
        with pytest.raises(RuntimeError, match="left the cluster during the data-parallel fit"):
            with data_parallel(timeout=5):  # the survivor waits at most this long
                vae.fit(dying)
    with pytest.raises(NotFittedError):  # never a half-trained model
        vae.transform(_table(5))


def _hide_the_library():
    """Make ``import sklearn_vae`` fail in this process, as on a worker without it."""
    for name in [name for name in sys.modules if name.split(".")[0] == "sklearn_vae"]:
        sys.modules[name] = None
    sys.modules["sklearn_vae"] = None


@pytest.mark.timeout(300)
def test_a_worker_without_the_library_is_named_with_the_remedy():
    ddf = dd.from_pandas(_table(400), npartitions=4)
    with _cluster() as cluster, distributed.Client(cluster) as client:
        broken = sorted(client.scheduler_info(n_workers=-1)["workers"])[1]
        client.run(_hide_the_library, workers=[broken])
        with pytest.raises(RuntimeError, match=f"Worker {broken} cannot run sklearn_vae") as info:
            with data_parallel():
                VAETransformer(**PARAMS, max_iter=1).fit(ddf)
    assert "Install sklearn_vae" in str(info.value) and "every worker" in str(info.value)


def _memory():
    """This process's resident and peak resident memory, in bytes (Linux)."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return {name: int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "VmHWM")}


def _reset_peak():
    """Start the peak resident memory afresh from the current one (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _memory()


def _partition(i):
    rng = np.random.default_rng(i)
    return pd.DataFrame(rng.normal(size=(25_000, 20)), columns=[f"x{j}" for j in range(20)])


@pytest.mark.timeout(600)
def test_each_worker_holds_a_few_partitions_at_a_time(client):
    # 40 partitions of 4 MB (25,000 rows of 20 float64 columns), read from their
    # tasks: a rank that held its 20 would grow by 80 MB and more.
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("the peak resident memory cannot be reset here")

    def collection(n):
        return dd.from_map(
            _partition, range(n), meta=_partition(0).iloc[:0], enforce_metadata=False
        )

    params = dict(PARAMS, early_stopping=False, max_iter=1, batch_size=8192, random_state=0)
    with data_parallel():
        VAETransformer(**params).fit(collection(4))  # the workers' imports and first allocations
        before = client.run(_reset_peak)
        VAETransformer(**params).fit(collection(40))
    after = client.run(_memory)
    partition = 25_000 * 20 * 8
    for worker, memory in after.items():
        growth = memory["VmHWM"] - before[worker]["VmRSS"]
        assert growth < 8 * partition, f"{worker}: {growth / 2**20:.0f} MiB"


@pytest.mark.timeout(300)
def test_an_interrupt_on_the_client_stops_the_workers_and_keeps_the_estimator(client, monkeypatch):
    import sklearn_vae._parallel as parallel

    ddf, vae, before = _fitted_in_memory()
    gone = parallel._gone

    def interrupted(*args):
        if sum(client.run(_ranks_running).values()) == 2:  # both ranks train: Ctrl+C
            raise KeyboardInterrupt
        return gone(*args)

    monkeypatch.setattr(parallel, "_gone", interrupted)
    vae.set_params(max_iter=100_000, n_iter_no_change=100_000)  # hours, unless stopped
    with pytest.raises(KeyboardInterrupt), data_parallel():
        vae.fit(ddf)
    monkeypatch.undo()
    assert_array_equal(vae.transform(_table(20)), before)
    # The ranks stop at the end of their epoch. (Cancelling their tasks does not
    # stop the threads that run them: look for the rank in the workers' stacks.)
    for _ in range(150):
        if not any(client.run(_ranks_running).values()):
            break
        time.sleep(0.2)
    assert not any(client.run(_ranks_running).values())


def _ranks_running():
    """How many threads of this process are inside a data-parallel rank."""
    frames = sys._current_frames().values()
    return sum(
        any(frame.f_code.co_name == "train_rank" for frame, _ in traceback.walk_stack(top))
        for top in frames
    )
