"""How many torch threads a fit, a scoring or an inference call uses.

torch's default is one intra-op thread per core. For a small network that is
a poor default on a busy machine: the threads meet at every layer, and when
another process holds a core each step waits for a thread that is not
running. With ``n_jobs=None`` the count is therefore fixed by the work of one
training step (:func:`n_threads`): one thread for small networks, torch's
count for large ones. It never reads the machine's load, so a seeded fit
gives the same bits on every run; the count is set in a scope
(:func:`torch_threads`) and the caller's is restored.
"""

import os
from contextlib import contextmanager

import joblib
import torch

__all__ = ["THREADED_WORK", "n_threads", "torch_threads"]

#: Multiply-adds of one training step (weights times rows of a batch) from
#: which ``n_jobs=None`` uses more than one thread: below it the threads'
#: meetings at every layer cost more than they share.
THREADED_WORK = 10**8


def _omp_budget():
    """``OMP_NUM_THREADS`` as a positive int, or None when it is unset or not a count.

    joblib's process workers set it to ``cores // n_jobs`` and Dask's nanny
    to 1, so parallel fits in a search do not each use every core.
    """
    budget = os.environ.get("OMP_NUM_THREADS", "")
    return int(budget) if budget.isdigit() and int(budget) > 0 else None


def _available_threads():
    """torch's current thread count, at most ``OMP_NUM_THREADS``."""
    budget = _omp_budget()
    available = torch.get_num_threads()
    return available if budget is None else min(available, budget)


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
        return 1 if n_weights * batch_rows < THREADED_WORK else _available_threads()
    if n_jobs < 0:
        return max(joblib.cpu_count() + 1 + n_jobs, 1)
    return n_jobs


@contextmanager
def torch_threads(count):
    """Run the block with ``count`` torch intra-op threads, restoring the caller's count.

    The count is restored even when the block changed it.
    """
    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
