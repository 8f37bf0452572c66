"""How many torch threads a fit, a scoring or an inference call uses.

torch's default is one intra-op thread per core. For a small network that is
a poor default: each layer's work is too small to share, the threads spend
their time synchronising, and when another process keeps a core busy a
multi-threaded fit waits at every synchronisation for a thread that is not
running (on 2 cores, a digits fit took 8.6 s with 2 threads against 2.6 s
with 1). :func:`n_threads` therefore gives a model one thread unless a
training step holds enough work to share (``benchmarks/bench_threads.py``
measures both sides of the threshold). The choice depends only on the model
and its batch size, never on the machine's load at the time, so a fit with a
fixed ``random_state`` gives the same bits on every run.
"""

import os
from contextlib import contextmanager

import joblib
import torch

__all__ = ["THREADED_WORK", "n_threads", "torch_threads"]

#: Multiply-adds of one training step (weights times rows of a batch) from
#: which ``n_jobs=None`` uses more than one thread. The default network on
#: 64-pixel digits (categorical, 457k weights, batches of 128) does 5.8e7;
#: networks from about 1e8 share their work well enough to gain (measured
#: 1.3-1.5x with 2 threads on an idle machine at 1.2e8-2.1e8).
THREADED_WORK = 10**8


def _omp_budget():
    """``OMP_NUM_THREADS`` as a positive int, or None when it is unset or not a count.

    joblib's process workers set it to ``cores // n_jobs`` and Dask's nanny
    to 1, so parallel fits in a search do not each use every core.
    """
    budget = os.environ.get("OMP_NUM_THREADS", "")
    return int(budget) if budget.isdigit() and int(budget) > 0 else None


def n_threads(n_jobs, n_weights, batch_rows):
    """Torch intra-op threads for a model of ``n_weights`` trained on ``batch_rows`` rows.

    Parameters
    ----------
    n_jobs : int or None
        The estimator's parameter. A positive int is used as it is; -1 means
        every CPU core, -2 all but one, and so on, as in scikit-learn. None
        gives 1 below :data:`THREADED_WORK` multiply-adds per training step,
        else torch's current thread count, at most ``OMP_NUM_THREADS``.
    n_weights : int
        Number of weights of the torch module (its multiply-adds per row).
    batch_rows : int
        Rows of a training batch.

    Returns
    -------
    n_threads : int
    """
    if n_jobs is None:
        if n_weights * batch_rows < THREADED_WORK:
            return 1
        budget = _omp_budget()
        available = torch.get_num_threads()
        return available if budget is None else min(available, budget)
    if n_jobs < 0:
        return max(joblib.cpu_count() + 1 + n_jobs, 1)
    return n_jobs


@contextmanager
def torch_threads(count):
    """Run the block with ``count`` torch intra-op threads, restoring the caller's count."""
    previous = torch.get_num_threads()
    if count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
