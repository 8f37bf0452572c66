"""Data-parallel training: one model trained by several Dask workers at once.

Inside :func:`data_parallel`, a fit on a Dask collection runs one training
process (a *rank*) per worker of a ``dask.distributed`` cluster. Every rank
starts from the same initialised net, trains on its own share of the
partitions, and before each optimiser step the ranks average their
gradients with ``torch.distributed`` (gloo on CPUs, NCCL on GPUs), so that
their weights stay identical; each epoch's losses are averaged the same way,
so early stopping decides alike everywhere. Rank 0 sends the trained net
back. ``dask.distributed`` is imported only here, and only when such a fit
runs.
"""

import copy
import datetime
import math
import pickle
import socket
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from skorch.callbacks import Callback

from ._random import draw_seed
from ._training import batch_size, patience, train
from ._version import __version__

__all__ = ["data_parallel", "parallel_settings", "train_data_parallel"]

_SETTINGS = ContextVar("sklearn_vae_data_parallel", default=None)

# The data-parallel fits the client asked to stop, by name (in each worker process).
_STOP_REQUESTS = set()

# How often the client looks at the ranks and the cluster's workers, in seconds.
_POLL = 0.2


@dataclass(frozen=True)
class DataParallel:
    """The settings of :func:`data_parallel`."""

    n_workers: int | None
    client: object
    timeout: float


@contextmanager
def data_parallel(n_workers=None, *, client=None, timeout=300.0):
    """Train on a Dask collection with several Dask workers at once.

    Inside the ``with`` block, ``fit``, ``partial_fit`` and warm-started fits
    of :class:`VAETransformer` on a Dask DataFrame or array train one model
    with ``n_workers`` workers of a ``dask.distributed`` cluster: each worker
    reads its own share of the training partitions, and the gradients of
    each step are averaged with ``torch.distributed`` (gloo on CPUs, NCCL
    when ``device="cuda"``). A step covers ``batch_size`` rows in all,
    shared between the workers, so the model's settings mean what they mean
    in one process. See :doc:`/scale`.

    Parameters
    ----------
    n_workers : int, default=None
        How many of the cluster's workers train; None uses every worker.

    client : distributed.Client, default=None
        The cluster's client; None uses the current default client
        (``distributed.default_client()``).

    timeout : float, default=300.0
        Seconds a worker waits for the others at a step before the fit
        fails. Raise it when a partition takes longer than that to read.

    Yields
    ------
    None

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> from distributed import Client, LocalCluster
    >>> from sklearn.datasets import load_wine
    >>> from sklearn_vae import VAETransformer, data_parallel
    >>> X = load_wine(as_frame=True).data
    >>> ddf = dd.from_pandas(X, npartitions=4)
    >>> with (
    ...     LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster,
    ...     Client(cluster),
    ...     data_parallel(n_workers=2),
    ... ):
    ...     vae = VAETransformer(max_iter=5, random_state=0).fit(ddf)
    >>> vae.transform(X).shape
    (178, 8)
    """
    if n_workers is not None and (
        not isinstance(n_workers, Integral) or isinstance(n_workers, bool) or n_workers < 1
    ):
        raise ValueError(
            f"n_workers must be a positive int or None (every worker of the cluster), got "
            f"{n_workers!r}."
        )
    if not isinstance(timeout, Real) or isinstance(timeout, bool) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    token = _SETTINGS.set(DataParallel(n_workers, client, float(timeout)))
    try:
        yield
    finally:
        _SETTINGS.reset(token)


def parallel_settings():
    """The settings of the enclosing :func:`data_parallel` block, or None outside one."""
    return _SETTINGS.get()


# ------------------------------------------------------------------ ranks


class _Table(BaseEstimator):
    """What a rank validates its partitions against: the fitted schema and feature names."""

    def __init__(self, estimator):
        for name in ("schema_", "n_features_in_", "feature_names_in_"):
            if hasattr(estimator, name):
                setattr(self, name, getattr(estimator, name))


class _Steps(torch.utils.data.Dataset):
    """A rank's training rows, as exactly ``steps`` batches an epoch.

    Every rank must take the same number of optimiser steps, since each step
    waits for all of them. A rank whose partitions give fewer batches starts
    on them again (in a new order) for the steps it lacks, as PyTorch's
    ``DistributedSampler`` repeats rows to give every rank as many.
    """

    def __init__(self, dataset, steps):
        self.dataset = dataset
        self.steps = steps

    def __len__(self):
        return len(self.dataset)

    def n_batches(self, batch_size):
        return self.steps

    def batches(self, batch_size, shuffle=False):
        taken = 0
        while taken < self.steps:
            for batch in self.dataset.batches(batch_size, shuffle):
                yield batch
                taken += 1
                if taken == self.steps:
                    return


class _RankStream:
    """A rank's view of a :class:`~._dask.PartitionStream`: its training rows are padded."""

    def __init__(self, stream, train_rows, steps):
        self.stream, self.train_rows, self.steps = stream, train_rows, steps

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def dataset(self, rows, **options):
        dataset = self.stream.dataset(rows, **options)
        return _Steps(dataset, self.steps) if rows is self.train_rows else dataset


class _Stopped(Exception):
    """Raised on every rank when the client asked the ranks to stop."""


class SynchronisedSteps(Callback):
    """Keep the ranks' nets identical: average each step's gradients and each epoch's losses.

    Parameters
    ----------
    group : torch.distributed.ProcessGroup
        The ranks' process group.
    job : str
        The fit's name, which the client adds to this process's stop
        requests (:func:`request_stop`) to stop the ranks at the end of
        their epoch.
    """

    def __init__(self, group, job):
        self.group = group
        self.job = job

    def _sum(self, values):
        self.group.allreduce([values]).wait()
        return values

    def on_grad_computed(self, net, named_parameters, X=None, training=False, **kwargs):
        if not training:
            return
        parameters = [p for _, p in named_parameters if p.requires_grad]
        rows = float(len(X)) if X is not None else 1.0
        flat = torch.cat(
            [
                (torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) * rows
                for p in parameters
            ]
            + [torch.tensor([rows], device=parameters[0].device)]
        )
        flat = self._sum(flat)
        if not torch.isfinite(flat).all():
            raise RuntimeError(
                f"Training diverged: a gradient averaged over the workers became non-finite "
                f"in epoch {len(net.history)}. The usual cause is a learning rate that is too "
                f"high (learning_rate_init={net.lr}; try a value 10 times smaller). No model "
                "was fitted."
            )
        flat = flat[:-1] / flat[-1]
        start = 0
        for p in parameters:
            size = p.numel()
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            p.grad.copy_(flat[start : start + size].view_as(p))
            start += size

    def on_epoch_end(self, net, **kwargs):
        batches = net.history[-1, "batches"]
        totals = torch.zeros(5, dtype=torch.float64)
        for batch in batches:
            for k, stage in ((0, "train"), (2, "valid")):
                if f"{stage}_loss" in batch:
                    size = batch[f"{stage}_batch_size"]
                    totals[k] += batch[f"{stage}_loss"] * size
                    totals[k + 1] += size
        totals[4] = float(self.job in _STOP_REQUESTS)
        totals = self._sum(totals)
        if totals[4] > 0:
            raise _Stopped
        for k, stage in ((0, "train"), (2, "valid")):
            if totals[k + 1] > 0:
                loss = float(totals[k] / totals[k + 1])
                earlier = net.history[:-1, f"{stage}_loss"] if len(net.history) > 1 else []
                net.history.record(f"{stage}_loss", loss)
                net.history.record(f"{stage}_loss_best", bool(loss < min(earlier, default=np.inf)))


async def request_stop(job):
    """Ask the ranks of the fit ``job`` in this process to stop at the end of their epoch.

    A coroutine, which the worker runs in its event loop: the client sends it
    without waiting (``client.run(..., wait=False)``).
    """
    _STOP_REQUESTS.add(job)


def _process_group(backend, host, port, rank, size, timeout):
    """A process group of the ranks, which sets no global state of ``torch.distributed``."""
    store = torch.distributed.TCPStore(host, port, size, rank == 0, timeout=timeout)
    if backend == "nccl":
        options = torch.distributed.ProcessGroupNCCL.Options()
        options._timeout = timeout
        return torch.distributed.ProcessGroupNCCL(store, rank, size, options)
    return torch.distributed.ProcessGroupGloo(store, rank, size, timeout)


def _check_identical(group, module):
    """Raise ``RuntimeError`` unless every rank ends with the same weights, bit for bit."""
    weights = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    extremes = torch.stack([weights, -weights])
    options = torch.distributed.AllreduceOptions()
    options.reduceOp = torch.distributed.ReduceOp.MAX
    group.allreduce([extremes], options).wait()
    if not (torch.equal(extremes[0], weights) and torch.equal(-extremes[1], weights)):
        raise RuntimeError(
            "The workers' weights differ after data-parallel training, though every step "
            "averaged their gradients: the workers' torch builds or devices round differently. "
            "Run every worker on the same torch version and kind of device."
        )


def train_rank(payload):
    """Train one rank of a data-parallel fit (runs on a worker).

    Returns rank 0's trained net, pickled; None on the other ranks.
    """
    job = pickle.loads(payload)
    rank = job["rank"]
    timeout = datetime.timedelta(seconds=job["timeout"])
    net = job["net"]
    group = _process_group(job["backend"], job["host"], job["port"], rank, job["size"], timeout)
    callback = SynchronisedSteps(group, job["job"])
    net.callbacks = [("synchronised_steps", callback), *(net.callbacks or [])]
    train_rows, valid_rows = job["train_rows"], job["valid_rows"]
    stream = _RankStream(job["stream"], train_rows, job["steps"])
    seed = np.random.SeedSequence([job["seed"], rank]).generate_state(1)[0]
    try:
        train(
            net,
            stream,
            train_rows,
            valid_rows,
            job["epochs"],
            job["params"],
            job["standardisation"],
            job["dequantized"],
            np.random.RandomState(seed),
        )
        _check_identical(group, net.module_)
    finally:
        net.callbacks = [item for item in net.callbacks if item[1] is not callback]
        net.callbacks_ = [item for item in net.callbacks_ if item[1] is not callback]
        if hasattr(group, "shutdown"):  # torch >= 2.3: close the connections now
            group.shutdown()
    return pickle.dumps(net) if rank == 0 else None


# ----------------------------------------------------------------- client


def check_cluster(settings, X):
    """The client and the addresses of the workers that train; raises what stops the fit.

    ``X`` is the training data (None when it is not a Dask collection).
    """
    if X is None or not (hasattr(X, "blocks") or hasattr(X, "dask")):
        raise TypeError(
            "data_parallel trains on the partitions of a Dask collection, but X is held in "
            "memory. Pass a Dask DataFrame or array (dask.dataframe.from_pandas(X, "
            "npartitions=...), dask.array.from_array(X, chunks=...)), or fit outside the "
            "data_parallel block."
        )
    client = _client(settings)
    return client, _workers(client, settings.n_workers)


def _client(settings):
    if settings.client is not None:
        return settings.client
    try:
        from distributed import default_client
    except ImportError:
        raise ImportError(
            "data_parallel needs the 'distributed' package: pip install distributed, and "
            "start a cluster with distributed.Client(...)."
        ) from None
    try:
        return default_client()
    except ValueError:
        raise ValueError(
            "data_parallel found no Dask cluster: start one with distributed.Client(...) "
            "(a LocalCluster or a real cluster) before the fit, or pass client=."
        ) from None


def worker_versions():
    """The versions a worker runs (sent to each worker by the client)."""
    return {"sklearn_vae": __version__, "torch": torch.__version__.split("+")[0]}


def _free_port():
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _workers(client, n_workers):
    """The addresses of the ``n_workers`` workers that train (every one when None)."""
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    if n_workers is not None:
        if n_workers > len(workers):
            raise ValueError(
                f"data_parallel(n_workers={n_workers}) asks for more workers than the cluster "
                f"has ({len(workers)}). Lower n_workers, or scale the cluster up first "
                "(cluster.scale(...), then client.wait_for_workers(...))."
            )
        workers = workers[:n_workers]
    if not workers:
        raise ValueError("data_parallel found a cluster without workers: start some first.")
    expected = worker_versions()
    found = client.run(worker_versions, workers=workers, on_error="return")
    for address in workers:
        versions = found.get(address)
        if isinstance(versions, BaseException):
            raise RuntimeError(
                f"Worker {address} cannot run sklearn_vae ({type(versions).__name__}: "
                f"{versions}). Install sklearn_vae {__version__} and torch {expected['torch']}, "
                "as on the client, in the environment of every worker."
            ) from versions
        if versions != expected:
            raise RuntimeError(
                f"Worker {address} runs {versions}, but the client runs {expected}. Install "
                "the same versions of sklearn_vae and torch on the client and every worker."
            )
    return workers


def _share(positions, n_ranks, kind):
    """``positions`` dealt out to the ranks in turn."""
    if len(positions) < n_ranks:
        raise ValueError(
            f"X has {len(positions)} non-empty {kind} partition(s), fewer than the "
            f"{n_ranks} workers of data_parallel, each of which trains on partitions of "
            f"its own. Repartition X into more partitions (for example "
            f"X.repartition(npartitions={4 * n_ranks})) or use fewer workers."
        )
    return [positions[rank::n_ranks] for rank in range(n_ranks)]


class _LocalBlock:
    """A partition that a rank computes itself, in its own thread, from its tasks alone."""

    def __init__(self, block):
        from dask.delayed import Delayed

        # Only the tasks of this partition, not the graph of the whole collection.
        self.block = Delayed(block.key, dict(block.dask.cull({block.key})))

    def compute(self):
        return self.block.compute(scheduler="sync")


def _rank_stream(stream, table, positions):
    """A copy of ``stream`` to ship to a rank: the partitions it reads, the fitted table."""
    shipped = copy.copy(stream)
    keep = set(np.concatenate(positions).tolist())
    shipped.blocks = [
        _LocalBlock(block) if k in keep else None for k, block in enumerate(stream.blocks)
    ]
    shipped.estimator = table
    return shipped


def _first_failure(futures):
    """The error of the lowest rank that failed for a reason of its own, else of any rank.

    When one rank fails, the others fail in turn waiting for it: their
    errors are of ``torch.distributed``.
    """
    errors = [(rank, f.exception()) for rank, f in enumerate(futures) if f.status == "error"]
    own = [(rank, e) for rank, e in errors if not isinstance(e, torch.distributed.DistError)]
    return (own or errors)[0]


def _gone(client, futures, workers):
    """The address of a training worker that left the cluster, or None."""
    present = client.scheduler_info(n_workers=-1)["workers"]
    gone = [address for address in workers if address not in present]
    gone += [workers[rank] for rank, f in enumerate(futures) if f.status in ("lost", "cancelled")]
    return gone[0] if gone else None


def _wait(client, futures, workers):
    """Rank 0's result, raising when a rank fails or a worker leaves the cluster."""
    from distributed import wait

    while True:
        pending = [f for f in futures if not f.done()]
        if pending:
            try:
                wait(pending, timeout=_POLL, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
        failed = any(f.status == "error" for f in futures)
        if failed:
            time.sleep(_POLL)  # a worker that died leaves the scheduler's list in this time
        gone = _gone(client, futures, workers)
        if gone is not None:
            raise RuntimeError(
                f"Worker {gone} left the cluster during the data-parallel fit (it died or "
                "was retired). No model was fitted: the estimator is as it was before the "
                "fit. Fit again once the cluster is whole, with fewer workers "
                "(data_parallel(n_workers=...)), or with more memory per worker if it ran out."
            )
        if failed:
            rank, error = _first_failure(futures)
            if isinstance(error, ValueError | TypeError):
                raise error
            raise RuntimeError(
                f"Rank {rank} of the data-parallel fit, on worker {workers[rank]}, failed: "
                f"{type(error).__name__}: {error}. No model was fitted: the estimator is as it "
                "was before the fit."
            ) from error
        if all(f.status == "finished" for f in futures):
            return futures[0].result()


def train_data_parallel(
    net, X, train_rows, valid_rows, epochs, params, standardisation, dequantized, rng, settings
):
    """:func:`~._training.train` on several workers; returns the trained net, losses, scores.

    ``X`` must be a stream of partitions (:class:`~._dask.PartitionStream`)
    and ``net`` is left untouched: rank 0's trained copy is returned.
    """
    client, workers = check_cluster(settings, X)
    n_ranks = len(workers)
    every = np.flatnonzero(X.lengths > 0)
    train_rows = every if train_rows is None else train_rows
    train_shares = _share(train_rows, n_ranks, "training")
    valid_shares = [None] * n_ranks
    if valid_rows is not None:
        # Too few validation partitions to share: every rank scores all of them.
        enough = len(valid_rows) >= n_ranks
        valid_shares = (
            _share(valid_rows, n_ranks, "validation") if enough else [valid_rows] * n_ranks
        )
    size = batch_size(int(X.lengths[train_rows].sum()), params)
    rank_size = math.ceil(size / n_ranks)
    steps = max(int((-(-X.lengths[share] // rank_size)).sum()) for share in train_shares)
    scheme, _, location = workers[0].partition("://")
    # Workers in the client's process (LocalCluster(processes=False)) have no host.
    host = "127.0.0.1" if scheme == "inproc" else location.rsplit(":", 1)[0].strip("[]")
    port = client.run(_free_port, workers=[workers[0]])[workers[0]]
    import cloudpickle

    name = f"sklearn_vae-{uuid.uuid4().hex}"
    job = {
        "net": net,
        "steps": steps,
        "epochs": epochs,
        # The patience of every rank is that of the whole table's steps.
        "params": {
            **params,
            "batch_size": rank_size,
            "n_iter_no_change": patience(int(X.lengths[train_rows].sum()), params),
        },
        "standardisation": standardisation,
        "dequantized": dequantized,
        "seed": draw_seed(rng),
        "backend": "nccl" if torch.device(net.device).type == "cuda" else "gloo",
        "host": host,
        "port": port,
        "size": n_ranks,
        "timeout": settings.timeout,
        "job": name,
    }
    table = _Table(X.estimator)
    futures = []
    for rank, address in enumerate(workers):
        shares = [train_shares[rank]] + ([] if valid_rows is None else [valid_shares[rank]])
        payload = {
            **job,
            "rank": rank,
            "stream": _rank_stream(X, table, shares),
            "train_rows": train_shares[rank],
            "valid_rows": valid_shares[rank],
        }
        futures.append(
            client.submit(
                train_rank,
                # cloudpickle, as Dask itself: the user's partition functions travel by value.
                cloudpickle.dumps(payload),
                workers=[address],
                allow_other_workers=False,
                pure=False,
                retries=0,
            )
        )
    try:
        trained = pickle.loads(_wait(client, futures, workers))
    except BaseException:
        # Only to the workers still there: reaching a dead one takes the comm timeout.
        present = client.scheduler_info(n_workers=-1)["workers"]
        alive = [address for address in workers if address in present]
        client.run(request_stop, name, workers=alive, wait=False)
        client.cancel(futures)
        raise
    n_before = len(net.history)
    new = trained.history[n_before:]
    train_jacobian = X.mean_log_jacobian(standardisation, train_rows)
    losses = [epoch["train_loss"] - train_jacobian for epoch in new]
    scores = []
    if valid_rows is not None:
        valid_jacobian = X.mean_log_jacobian(standardisation, valid_rows)
        scores = [-epoch["valid_loss"] + valid_jacobian for epoch in new]
    return trained, losses, scores
