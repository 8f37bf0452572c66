"""The private skorch net that trains a VAEModule, extended only through hooks."""

import os
import re
import sys

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch import nn

__all__ = ["NegativeELBO", "StopOnNonFiniteLoss", "VAENet", "print_log_sink"]

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def print_log_sink(text):
    """Print skorch's epoch table, in colour only on a terminal.

    skorch colours the best epoch's numbers with ANSI codes; written to a
    file, a pipe or a notebook log those codes are noise. They are kept only
    when standard output is a terminal and the ``NO_COLOR`` environment
    variable (https://no-color.org) is unset.
    """
    stream = sys.stdout
    if "NO_COLOR" in os.environ or not getattr(stream, "isatty", lambda: False)():
        text = _ANSI_ESCAPE.sub("", text)
    print(text, file=stream)


class NegativeELBO(nn.Module):
    """Training criterion: the batch mean of ``-(log p(x | z) - beta * KL)``.

    Parameters
    ----------
    beta : float, default=1.0
        Weight of the KL term; 1.0 gives the evidence lower bound.
    """

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def forward(self, reconstruction, kl):
        return -(reconstruction - self.beta * kl).mean()


class VAENet(NeuralNet):
    """skorch net for unsupervised VAE training: ``y`` is None, the loss reads ``X``.

    The module's forward returns per-row ``(log p(x | z), KL)``, which
    :meth:`get_loss` hands to the :class:`NegativeELBO` criterion.
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        reconstruction, kl = y_pred
        return self.criterion_(reconstruction, kl)


class StopOnNonFiniteLoss(Callback):
    """Raise as soon as a training or validation batch gives a NaN or infinite loss.

    The message says where (stage, epoch, batch) and blames the data only when
    the batch held infinite values; otherwise the learning rate, the usual
    cause. NaN in a batch marks a missing entry and is not a fault.
    """

    def on_epoch_begin(self, net, **kwargs):
        self.batches_ = {True: 0, False: 0}

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        counts = self.batches_
        counts[training] += 1
        if loss is None or torch.isfinite(loss):
            return
        stage = "training" if training else "validation"
        epoch, number = len(net.history), counts[training]
        where = f"the {stage} loss became {loss.item()} in epoch {epoch}, batch {number}"
        X = batch[0] if batch is not None else None
        if X is not None and torch.isinf(X).any():
            raise RuntimeError(
                f"Training diverged: {where}, which held infinite values: X has entries "
                "beyond float32's range (about 3.4e38), in which the model trains. Rescale "
                "X (for example divide the column by a power of ten). No model was fitted."
            )
        raise RuntimeError(
            f"Training diverged: {where}, whose inputs were finite. The usual cause is a "
            f"learning rate that is too high (learning_rate_init={net.lr}; try a value 10 "
            "times smaller). No model was fitted."
        )
