"""Zero the optimiser's negligible moment estimates before they become subnormal floats.

A weight whose gradient is zero (a ReLU unit that no longer fires) or tiny
(the decoder's logit of a pixel level that never occurs, pushed ever further
down) keeps an Adam first moment that decays by ``beta1 = 0.9`` per step,
into float32's subnormal range (below 1.2e-38) and through it for about 150
steps. CPUs compute on subnormal operands many times slower than on normal
ones, and Adam's ``lerp_`` and ``addcdiv_`` then dominate a fit's profile.
Flushing subnormals in the CPU's floating-point mode
(``torch.set_flush_denormal``) is a per-thread setting that worker threads
created earlier do not share, which would make the last bits of a fit depend
on the thread count. Setting the negligible moments to zero is elementwise
and exact, so it keeps the bits independent of the thread count.

Why the parameters do not move: Adam changes a weight by ``lr * m_hat /
(sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - beta1**t) <= 10 m`` and the
denominator at least ``eps = 1e-8``. A first moment ``|m| < 1e-34`` moves its
weight by less than ``lr * 1e-25``, below half a float32 ulp of any weight
larger than about ``lr * 3e-18`` in magnitude. A second moment ``v < 1e-34``
adds less than ``31.7 * 1e-17`` to ``eps`` (``v_hat <= 1000 v``), below half
its float32 ulp (4.4e-16), so the denominator keeps its bits. The same holds,
a few orders of magnitude later, for the moments of the next steps, which
differ by less than 1e-34, so a fit keeps every bit (the tests check it).
A moment decays from 1e-34 to the subnormal range in about 86 steps of
``beta1 = 0.9`` and 9,000 of ``beta2 = 0.999``, and the moments are cleared
every 16 steps, so none reaches it by decay.
"""

import torch
from skorch.callbacks import Callback

__all__ = ["NEGLIGIBLE_MOMENT", "ZERO_EVERY_N_STEPS", "ZeroNegligibleMoments", "zero_negligible"]

#: Adam's moment estimates below this magnitude are set to zero.
NEGLIGIBLE_MOMENT = 1e-34

#: Steps between two passes over the optimiser's state: each pass reads every
#: moment once, a small share of the cost of the steps between passes.
ZERO_EVERY_N_STEPS = 16

_MOMENT_KEYS = ("exp_avg", "exp_avg_sq")


@torch.no_grad()
def zero_negligible(optimizer, threshold=NEGLIGIBLE_MOMENT):
    """Set the first and second moments of ``optimizer`` below ``threshold`` in magnitude to 0.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        An optimiser keeping Adam's ``exp_avg`` and ``exp_avg_sq`` per
        parameter; other state is left alone.
    threshold : float, default=NEGLIGIBLE_MOMENT
        Moments with a smaller absolute value are zeroed.
    """
    for state in optimizer.state.values():
        for key in _MOMENT_KEYS:
            moment = state.get(key)
            if moment is not None and moment.is_floating_point():
                moment.masked_fill_(moment.abs() < threshold, 0.0)


class ZeroNegligibleMoments(Callback):
    """Zero Adam's negligible moments after every ``every_n_steps``-th optimiser step.

    The steps are Adam's own count (its ``step`` state), which is saved and
    restored with the optimiser and runs on across ``partial_fit`` calls.

    Parameters
    ----------
    every_n_steps : int, default=ZERO_EVERY_N_STEPS
        Optimiser steps between two passes.
    """

    def __init__(self, every_n_steps=ZERO_EVERY_N_STEPS):
        self.every_n_steps = every_n_steps

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        optimizer = net.optimizer_
        if not optimizer.state:
            return
        step = int(next(iter(optimizer.state.values()))["step"])
        if step % self.every_n_steps == 0:
            zero_negligible(optimizer)
