"""Every seed of the library: int seeds from ``random_state``, torch seeded in a scope."""

from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = ["draw_seed", "torch_seed"]


def draw_seed(random_state):
    """An int seed for torch, drawn from ``random_state`` (an int, a RandomState or None)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextmanager
def torch_seed(seed, device):
    """Seed torch's generators for the duration of the block, restoring the caller's state.

    Parameters
    ----------
    seed : int
        The seed, for example from :func:`draw_seed`.
    device : str or torch.device
        The device the block computes on; a CUDA device's generator is
        forked and seeded too.
    """
    device = torch.device(device)
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(seed)
        yield
