"""The private skorch net that trains a VAEModule, extended only through hooks."""

import os
import re
import sys
from dataclasses import dataclass

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch import nn

from ._averaging import capture_averaging, restore_averaging, use_average

__all__ = [
    "CompletedEpochs",
    "NegativeELBO",
    "StopOnNonFiniteLoss",
    "TrainingState",
    "VAENet",
    "print_log_sink",
]

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


def _clone_tensors(value):
    """``value`` (a state dict) with every tensor replaced by a copy."""
    if isinstance(value, dict):
        return {key: _clone_tensors(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_clone_tensors(item) for item in value)
    return value.clone() if isinstance(value, torch.Tensor) else value


@dataclass(frozen=True)
class TrainingState:
    """A copy of everything training changes in a net, to put back after an interrupt.

    Attributes
    ----------
    n_epochs : int
        The length of the training history.
    module : dict
        The module's ``state_dict``, copied.
    optimizer : dict
        Adam's ``state_dict`` (moments and step counts), copied.
    averaging : tuple
        :func:`~._averaging.capture_averaging` of the net.
    best : dict or None
        Early stopping's best weights where the module does not hold them
        (taken at the end of an epoch: :class:`CompletedEpochs`), else None.
    best_epoch : int or None
        The epoch of ``best``, or of the module's weights; None for a state
        taken before training.
    """

    n_epochs: int
    module: dict
    optimizer: dict
    averaging: tuple
    best: dict | None = None
    best_epoch: int | None = None

    @classmethod
    def capture(cls, net, best=None, best_epoch=None):
        """The state of ``net`` now (its tensors copied)."""
        return cls(
            len(net.history),
            _clone_tensors(net.module_.state_dict()),
            _clone_tensors(net.optimizer_.state_dict()),
            capture_averaging(net),
            best,
            best_epoch,
        )

    @torch.no_grad()
    def restore(self, net):
        """Put this state back on ``net``: its weights, optimiser, average and history.

        A state taken at the end of an epoch is then finished as the end of
        training finishes a net: early stopping's best weights are loaded,
        and the module takes the average of the weights where there is one.
        """
        del net.history[self.n_epochs :]
        net.module_.load_state_dict(self.module)
        net.optimizer_.load_state_dict(self.optimizer)
        restore_averaging(net, self.averaging)
        if self.best_epoch is None:
            return
        if self.best is not None:
            net.module_.load_state_dict(self.best)
        if net.weight_averaging_ is not None:
            use_average(net)


class CompletedEpochs(Callback):
    """Keep a copy of the net's training state at the end of every epoch.

    skorch ends training at a ``KeyboardInterrupt`` and keeps the epoch it
    interrupted, half written; the copy of the last epoch that completed is
    what the net goes back to. The callback must come after every other
    callback that acts at the end of an epoch, so that its copy follows them.

    Parameters
    ----------
    stopping : str, default="early_stopping"
        The name of the net's ``EarlyStopping`` callback, whose best weights
        (with ``load_best``) are the fitted ones.

    Attributes
    ----------
    n_completed_ : int
        The epochs completed since training began.
    last_ : TrainingState or None
        The state at the end of the last of them (but the call's last epoch,
        after which training ends anyway); None before the first.
    """

    def __init__(self, stopping="early_stopping"):
        self.stopping = stopping

    def on_train_begin(self, net, **kwargs):
        self.n_completed_ = 0
        self.last_ = None

    def on_epoch_end(self, net, **kwargs):
        if self.n_completed_ + 1 >= net.max_epochs:
            # The call's last epoch: training ends with it, nothing to go back to.
            self.n_completed_ += 1
            return
        stopper = dict(net.callbacks_)[self.stopping]
        epoch = net.history[-1, "epoch"]
        best, best_epoch = None, epoch
        if stopper.load_best and stopper.best_epoch_ != epoch:
            best, best_epoch = stopper.best_model_weights_, stopper.best_epoch_
        # One assignment: an interrupt leaves either the old copy or the new one.
        self.last_ = TrainingState.capture(net, best, best_epoch)
        self.n_completed_ += 1
