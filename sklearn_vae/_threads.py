"""How many torch threads a fit, a scoring or an inference call uses.

torch's default is one intra-op thread per core. For a small network that is
a poor default on a busy machine: the threads meet at every layer, and when
another process holds a core each step waits for a thread that is not
running (on 2 cores, a digits fit with 2 threads took about four times as
long as with 1), while on an idle machine the same 2 threads are faster.
No fixed count is right for both, so with ``n_jobs=None`` a fit times its
training batches and trains on whichever count is fastest at the time
(:class:`FastestThreads`, :class:`ThreadTuner`).

That choice may read the machine's load only because the count does not
change the results. The thread count changes the bits of torch's matrix
products through Intel MKL, which splits their sums between threads; MKL's
strict conditional numerical reproducibility mode (``MKL_CBWR=AUTO,STRICT``)
makes them the same for every count. :func:`request_thread_invariant_blas`
asks for that mode when sklearn_vae is imported, and
:func:`thread_invariant_blas` reports whether it holds. Where it does not
(a torch build without MKL, ``MKL_CBWR`` set otherwise, or MKL already used
when sklearn_vae was imported) a fit falls back to a count fixed by the work
of a training step, :func:`n_threads`, which never reads the load.
"""

import ctypes
import functools
import glob
import math
import os
import statistics
import time
from contextlib import contextmanager

import joblib
import torch
from skorch.callbacks import Callback

__all__ = [
    "MIN_PROBE_INTERVAL",
    "PROBE_BATCHES",
    "PROBE_OVERHEAD",
    "THREADED_WORK",
    "FastestThreads",
    "ThreadTuner",
    "fit_thread_counts",
    "n_threads",
    "request_thread_invariant_blas",
    "thread_invariant_blas",
    "torch_threads",
]

#: Multiply-adds of one training step (weights times rows of a batch) from
#: which the fixed rule of ``n_jobs=None`` uses more than one thread. The
#: default network on 64-pixel digits (categorical, 457k weights, batches of
#: 128) does 5.8e7; networks from about 1e8 share their work well enough to
#: gain (measured 1.3-1.5x with 2 threads on an idle machine at 1.2e8-2.1e8).
THREADED_WORK = 10**8

#: Timed training batches per thread count in one probe of :class:`FastestThreads`.
PROBE_BATCHES = 3

#: Share of the training time that probing the slower counts may cost.
PROBE_OVERHEAD = 0.02

#: Shortest wait, in seconds, between the start of two probes.
MIN_PROBE_INTERVAL = 1.0

# MKL's conditional numerical reproducibility flags (mkl_service.h).
_MKL_CBWR_ALL = ~0
_MKL_CBWR_STRICT = 0x10000


def request_thread_invariant_blas():
    """Ask MKL for matrix products whose bits do not depend on the thread count.

    Sets ``MKL_CBWR=AUTO,STRICT`` unless the variable is set already: the
    fastest code path for this CPU, in strict mode. MKL reads the variable at
    its first call, so the request holds only if torch has not yet run an
    MKL routine in this process. On the default digits network it cost at
    most about 5% of the fit time, within the noise of the measurement
    (``benchmarks/bench_mkl_mode.py``).
    """
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


@functools.cache
def _mkl_mode_query():
    """MKL's ``cbwr_get`` from torch's own library, or None where torch has no MKL."""
    if not torch.backends.mkl.is_available():
        return None
    library_dir = os.path.join(os.path.dirname(torch.__file__), "lib")
    for path in sorted(glob.glob(os.path.join(library_dir, "*torch_cpu.*"))):
        try:
            query = ctypes.CDLL(path).mkl_serv_cbwr_get
        except (OSError, AttributeError):
            continue
        query.argtypes, query.restype = [ctypes.c_int], ctypes.c_int
        return query
    return None


def thread_invariant_blas():
    """Whether torch's MKL runs in its strict mode, where the thread count changes no bit."""
    query = _mkl_mode_query()
    return query is not None and bool(query(_MKL_CBWR_ALL) & _MKL_CBWR_STRICT)


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

    The fixed rule, which never reads the machine's load: scoring and
    inference always use it, and a fit does where the thread count would
    change its results (see :func:`fit_thread_counts`).

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


def fit_thread_counts(n_jobs, n_weights, batch_rows, device):
    """The thread counts a fit may train with: one fixed count, or several to time.

    With ``n_jobs=None`` on a CPU, and MKL in its strict mode, the candidates
    are 1, 2, 4, ... up to torch's thread count (at most
    ``OMP_NUM_THREADS``), and :class:`ThreadTuner` picks among them while
    training. Otherwise the one count of :func:`n_threads`.

    Parameters
    ----------
    n_jobs, n_weights, batch_rows
        As for :func:`n_threads`.
    device : str or torch.device
        The net's device; only a CPU fit times its thread counts.

    Returns
    -------
    counts : tuple of int
        Increasing; more than one when the fit is to time them.
    """
    if n_jobs is None and torch.device(device).type == "cpu" and thread_invariant_blas():
        available = _available_threads()
        powers = [2**k for k in range(available.bit_length()) if 2**k < available]
        return (*powers, available)
    return (n_threads(n_jobs, n_weights, batch_rows),)


class FastestThreads:
    """The thread count that trains fastest now, found by timing training batches.

    A probe runs each count on ``1 + PROBE_BATCHES`` training batches: the
    first lets the new count settle and is not timed, the others are. The
    count with the lowest median time is then used until the next probe. The
    probe's cost is the time its batches took beyond what they would have
    taken at the chosen count's median; the next probe starts once that cost
    is :data:`PROBE_OVERHEAD` of the time since the last one started, and no
    sooner than :data:`MIN_PROBE_INTERVAL` seconds after it. On an idle
    machine the probes cost little and come often; on a busy one they cost
    more and come less often. Validation batches use the chosen count and
    are not timed.

    Parameters
    ----------
    counts : tuple of int
        The candidate thread counts, increasing; the first probe starts with
        the first, and ties go to the smaller count.
    clock : callable, default=time.perf_counter
        Seconds, as a float.
    """

    def __init__(self, counts, clock=time.perf_counter):
        self.counts = tuple(counts)
        self.clock = clock
        self.best = self.counts[-1]
        self._plan = []
        self._timings = {count: [] for count in self.counts}
        self._next_probe = -math.inf
        self._probe_began = self._probe_time = self._started = None

    def begin_batch(self, training):
        """The thread count for the batch about to run."""
        if not training:
            return self.best
        now = self.clock()
        if not self._plan and now >= self._next_probe:
            # (count, timed) for each training batch of the probe.
            self._plan = [
                (count, timed)
                for count in self.counts
                for timed in [False] + [True] * PROBE_BATCHES
            ]
            self._probe_began, self._probe_time = now, 0.0
        self._started = now
        return self._plan[0][0] if self._plan else self.best

    def end_batch(self, training):
        """Record the time of the training batch that just ran, if it was part of a probe."""
        if not training or not self._plan:
            return
        count, timed = self._plan.pop(0)
        elapsed = self.clock() - self._started
        self._probe_time += elapsed
        if timed:
            self._timings[count].append(elapsed)
        if not self._plan:
            self._choose()

    def _choose(self):
        medians = {count: statistics.median(times) for count, times in self._timings.items()}
        self.best = min(self.counts, key=medians.__getitem__)
        n_batches = len(self.counts) * (1 + PROBE_BATCHES)
        lost = self._probe_time - n_batches * medians[self.best]
        self._next_probe = self._probe_began + max(lost / PROBE_OVERHEAD, MIN_PROBE_INTERVAL)
        self._timings = {count: [] for count in self.counts}


class ThreadTuner(Callback):
    """skorch callback: train each batch on the thread count :class:`FastestThreads` picks.

    The timing carries over from one training call to the next while the
    candidates stay the same, so a stream of ``partial_fit`` calls is not
    probed afresh at each call. A pickled tuner leaves it behind: the
    timings of one process say nothing about another.

    Parameters
    ----------
    counts : tuple of int or None, default=None
        The candidate counts (from :func:`fit_thread_counts`); None or a
        single count leaves torch's thread count alone, to the fit's
        :func:`torch_threads`.

    Attributes
    ----------
    chooser_ : FastestThreads or None
        The timing of the candidates, None when off.
    """

    def __init__(self, counts=None):
        self.counts = counts

    def on_train_begin(self, net, **kwargs):
        counts = tuple(self.counts or ())
        if len(counts) < 2:
            self.chooser_ = None
        elif getattr(self, "chooser_", None) is None or self.chooser_.counts != counts:
            self.chooser_ = FastestThreads(counts)

    def on_batch_begin(self, net, training=False, **kwargs):
        if self.chooser_ is None:
            return
        count = self.chooser_.begin_batch(training)
        if count != torch.get_num_threads():
            torch.set_num_threads(count)

    def on_batch_end(self, net, training=False, **kwargs):
        if self.chooser_ is not None:
            self.chooser_.end_batch(training)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("chooser_", None)
        return state


@contextmanager
def torch_threads(count):
    """Run the block with ``count`` torch intra-op threads, restoring the caller's count.

    The count is restored even when the block changed it (a :class:`ThreadTuner`).
    """
    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
