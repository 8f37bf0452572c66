"""Every seed and every draw of the library, from private generators scoped to a call.

A seeded section runs ``with torch_seed(seed, device):``. Inside it, every
draw of the library goes through this module (:func:`draw`,
:func:`standard_normal`, :func:`uniform`, :func:`permutation`) and reads the
section's own ``torch.Generator`` (one per device, seeded with ``seed``),
which :func:`generator` returns. The section is held in a context variable,
so each thread (and each asyncio task) sees its own: the same seed gives the
same bits from any thread, and torch's global generators are neither seeded,
nor advanced, nor read.

Code inside torch that knows only the global generator (the initialisation
of ``nn.Linear`` layers and of user networks, dropout in a user network)
runs ``with global_generator():``. Under one process-wide lock, torch's
global generator takes the section's state, runs the block, and hands the
advanced state back to the section before the caller's state is restored.
A seeded section is thus one stream of draws, the stream that
``torch.manual_seed(seed)`` gives torch's global generator: seeded results
are those of the earlier global seeding, bit for bit. The lock is held only
for such blocks; torch code of the user that draws from the global generator
in another thread at the same moment is not covered by it.

Outside a seeded section :func:`generator` is None, and the draws use
torch's global generators as torch's own functions do.
"""

import threading
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch.distributions import Bernoulli, Categorical, Independent, Normal, Poisson

__all__ = [
    "POISSON_NORMAL_RATE",
    "draw",
    "draw_seed",
    "generator",
    "global_generator",
    "permutation",
    "seeded",
    "standard_normal",
    "torch_seed",
    "uniform",
]

#: Poisson rates above which a draw is the rounded normal approximation, whose
#: skewness there is below 1e-6: torch's sampler spreads its float32 draws too
#: widely from about 1e14 and returns -2**63 from about 2**63.
POISSON_NORMAL_RATE = 2.0**40

# The section of the running thread or task: None outside any seeded section.
_section = ContextVar("sklearn_vae_random_section", default=None)
# Held while torch's global generator carries a section's stream (or draws
# for library code outside one). Re-entrant: construction runs user code.
_GLOBAL_LOCK = threading.RLock()


def draw_seed(random_state):
    """An int seed for torch, drawn from ``random_state`` (an int, a RandomState or None)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class _Section:
    """The private generators of one seeded section, made on first use."""

    def __init__(self, seed, device):
        self.seed = seed
        self.device = torch.device(device)
        self.generators = {}
        self.lent = False

    def generator(self, device):
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device not in self.generators:
            self.generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self.generators[device]

    def global_pairs(self):
        """``(torch's global generator, the section's)`` for the CPU and a CUDA device."""
        pairs = [(torch.default_generator, self.generator("cpu"))]
        if self.device.type == "cuda":
            private = self.generator(self.device)
            pairs.append((torch.cuda.default_generators[private.device.index], private))
        return pairs


@contextmanager
def torch_seed(seed, device):
    """Draw from private generators seeded with ``seed`` for the duration of the block.

    Parameters
    ----------
    seed : int
        The seed, for example from :func:`draw_seed`.
    device : str or torch.device
        The device the block computes on; a CUDA device gets its own
        generator, and :func:`global_generator` lends it to torch's.
    """
    token = _section.set(_Section(seed, device))
    try:
        yield
    finally:
        _section.reset(token)


def seeded():
    """Whether the running code is inside a seeded section (:func:`torch_seed`)."""
    return _section.get() is not None


def generator(device="cpu"):
    """The seeded section's generator for ``device``; None outside a section or while lent."""
    section = _section.get()
    if section is None or section.lent:
        return None
    return section.generator(device)


@contextmanager
def global_generator():
    """Run a block that draws from torch's global generator, as part of the section's stream.

    Inside a seeded section the global generator (CPU, and the section's
    CUDA device) is loaded with the section's state for the block and the
    advanced state is handed back afterwards; the caller's global state is
    restored. Outside a section the block draws from the global generator
    as it is. Either way the block holds a process-wide lock, so no other
    library call lends or uses the global generator meanwhile.
    """
    with _GLOBAL_LOCK:
        section = _section.get()
        if section is None or section.lent:
            yield
            return
        pairs = [
            (shared, private, shared.get_state()) for shared, private in section.global_pairs()
        ]
        for shared, private, _ in pairs:
            shared.set_state(private.get_state())
        section.lent = True
        try:
            yield
        finally:
            section.lent = False
            for shared, private, saved in pairs:
                private.set_state(shared.get_state())
                shared.set_state(saved)


# ----------------------------------------------------------------- draws


def standard_normal(shape, dtype=torch.float32, device="cpu"):
    """Standard normal draws of ``shape`` (``torch.randn`` on the section's generator)."""
    return torch.randn(shape, dtype=dtype, device=device, generator=generator(device))


def uniform(shape, dtype=torch.float32, device="cpu"):
    """Uniform ``[0, 1)`` draws of ``shape`` (``torch.rand`` on the section's generator)."""
    return torch.rand(shape, dtype=dtype, device=device, generator=generator(device))


def permutation(n):
    """A random permutation of ``range(n)``, a CPU long tensor."""
    return torch.randperm(n, generator=generator("cpu"))


def draw(distribution, sample_shape=()):
    """A draw of ``sample_shape`` from a torch distribution, on the section's generator.

    The same values as ``distribution.sample(sample_shape)`` after
    ``torch.manual_seed(seed)``; a ``Normal`` draw is reparametrised
    (``loc + eps * scale``, differentiable as ``rsample``). Where a
    distribution's parameters are not finite its draw is NaN (torch's
    samplers raise or return garbage there), so callers find such rows.
    Supported: ``Normal``, ``Independent`` of one, ``Categorical`` (its draw
    is the category as a float), ``Bernoulli`` and ``Poisson``.
    """
    sample_shape = torch.Size(sample_shape)
    if isinstance(distribution, Independent):
        return draw(distribution.base_dist, sample_shape)
    shape = sample_shape + distribution.batch_shape
    if isinstance(distribution, Normal):
        loc, scale = distribution.loc, distribution.scale
        return loc + standard_normal(shape, loc.dtype, loc.device) * scale
    if isinstance(distribution, Categorical):
        return _categorical(distribution.probs, sample_shape)
    if isinstance(distribution, Bernoulli):
        probs = distribution.probs.expand(shape)
        invalid = ~torch.isfinite(probs)
        values = torch.bernoulli(probs.masked_fill(invalid, 0.5), generator=generator(probs.device))
        return values.masked_fill(invalid, torch.nan)
    if isinstance(distribution, Poisson):
        return _poisson(distribution.rate.expand(shape))
    raise TypeError(f"No draw for {type(distribution).__name__} distributions.")


def _categorical(probs, sample_shape):
    """Categories drawn as ``Categorical.sample`` does (one multinomial pass), as floats."""
    n_events = probs.shape[-1]
    flat = probs.reshape(-1, n_events)
    # Categorical normalises its probabilities: a row summing to zero is NaN.
    invalid = (~torch.isfinite(flat) | (flat < 0)).any(-1)
    flat = flat.masked_fill(invalid[:, None], 1.0)
    codes = torch.multinomial(flat, sample_shape.numel(), True, generator=generator(probs.device)).T
    codes = codes.to(probs.dtype).masked_fill(invalid, torch.nan)
    return codes.reshape(sample_shape + probs.shape[:-1])


def _poisson(rate):
    """Poisson counts of ``rate`` as ``torch.poisson``; beyond :data:`POISSON_NORMAL_RATE`,
    the normal approximation rounded to an integer."""
    invalid = ~torch.isfinite(rate) | (rate < 0)
    huge = ~invalid & (rate > POISSON_NORMAL_RATE)
    safe = rate.masked_fill(invalid | huge, 0.0)
    counts = torch.poisson(safe, generator=generator(rate.device))
    if huge.any():
        large = rate[huge]
        noise = standard_normal(large.shape, large.dtype, large.device)
        counts[huge] = torch.floor(large + noise * torch.sqrt(large) + 0.5)
    return counts.masked_fill(invalid, torch.nan)
