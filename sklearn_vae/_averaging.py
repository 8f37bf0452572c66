"""An exponential moving average of the weights over the training steps (Polyak averaging).

The optimiser trains the raw weights; the model that is validated, stopped
early and kept is their moving average ``w_avg <- decay * w_avg + (1 - decay)
* w`` after each step, kept by torch's ``AveragedModel``. Averaging the
iterates of a stochastic optimiser damps the noise of its last steps (Polyak &
Juditsky, 1992); on small data it lets a model train longer before its
validation loss turns up.

The state lives on the skorch net, not on the callback: the estimator sets its
callbacks' parameters at each ``fit`` and ``partial_fit``, which makes skorch
initialise them again, and the average must survive that.
"""

from dataclasses import dataclass

import numpy as np
import torch
from skorch.callbacks import Callback
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

__all__ = [
    "DEFAULT_DECAY",
    "AveragingState",
    "WeightAveraging",
    "average_decay",
    "capture_averaging",
    "restore_averaging",
]

#: The decay per step of ``average=True``: an average over about the last
#: 1 / (1 - decay) = 500 steps, chosen on digits among decays from 0.99 to
#: 0.999 (the objectives benchmark).
DEFAULT_DECAY = 0.998


def average_decay(average):
    """The decay per step for the estimator parameter ``average``; None when off."""
    if isinstance(average, bool | np.bool_):
        return DEFAULT_DECAY if average else None
    return float(average)


@dataclass
class AveragingState:
    """What the net keeps between calls, as ``net.weight_averaging_``.

    A plain object rather than a module attribute of the net: skorch lets
    only its ``initialize`` methods set torch modules on a net.

    Attributes
    ----------
    average : torch.optim.swa_utils.AveragedModel
        The moving average of the module's parameters.
    raw : list of Tensor or None
        The raw parameters while the module holds the average, else None.
    """

    average: AveragedModel
    raw: list | None = None


class WeightAveraging(Callback):
    """Validate, stop early and predict with the moving average of the weights.

    After each training step the average moves towards the new weights (the
    first step copies them). Before an epoch's validation pass the module's
    parameters are replaced by the average, so the validation loss, early
    stopping and its ``load_best`` see the averaged model; the next epoch
    trains the raw weights again. When training ends the module holds the
    average. The net keeps both in ``weight_averaging_``, an
    :class:`AveragingState`, so that the next call continues them.

    Parameters
    ----------
    decay : float in (0, 1) or None
        Weight of the old average at each step. None switches the averaging
        off: every hook does nothing. The estimator keeps the callback in the
        net either way and sets ``decay`` at each call, since skorch cannot
        add a named callback to a net, or remove one, after initialising it.
    """

    def __init__(self, decay=DEFAULT_DECAY):
        self.decay = decay

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if self.decay is None:
            # Off (or switched off under warm_start): train on from the
            # module's weights, the fitted average if there was one.
            net.weight_averaging_ = None
            return
        use_raw_parameters(net)
        if getattr(net, "weight_averaging_", None) is None:
            net.weight_averaging_ = AveragingState(AveragedModel(net.module_))
        average = net.weight_averaging_.average
        # Set at every call, so that set_params(average=...) between calls takes effect.
        average.multi_avg_fn = get_ema_multi_avg_fn(self.decay)
        # Both parameter lists once per call: AveragedModel.update_parameters would walk
        # both module trees at every step.
        self.parameter_lists_ = (list(average.module.parameters()), list(net.module_.parameters()))

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if self.decay is not None and not training:
            use_average(net)

    @torch.no_grad()
    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        """``AveragedModel.update_parameters`` on the lists built in ``on_train_begin``."""
        if self.decay is None or not training:
            return
        average = net.weight_averaging_.average
        averaged, current = self.parameter_lists_
        if average.n_averaged == 0:
            for mean, parameter in zip(averaged, current, strict=True):
                mean.copy_(parameter)
        else:
            average.multi_avg_fn(averaged, current, average.n_averaged)
        average.n_averaged += 1

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        if self.decay is not None:
            use_raw_parameters(net)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if self.decay is not None:
            use_average(net)


@torch.no_grad()
def use_average(net):
    """Put the average into the module's parameters, keeping the raw ones aside."""
    state = net.weight_averaging_
    if state.raw is not None:
        return
    parameters = list(net.module_.parameters())
    state.raw = [parameter.detach().clone() for parameter in parameters]
    for parameter, averaged in zip(parameters, state.average.parameters(), strict=True):
        parameter.copy_(averaged)


@torch.no_grad()
def use_raw_parameters(net):
    """Put the raw parameters back into the module, where :func:`use_average` took them out."""
    state = getattr(net, "weight_averaging_", None)
    if state is None or state.raw is None:
        return
    for parameter, value in zip(net.module_.parameters(), state.raw, strict=True):
        parameter.copy_(value)
    state.raw = None


def capture_averaging(net):
    """A copy of the net's averaging state, for :func:`restore_averaging`.

    ``(state, average, raw)``: the :class:`AveragingState` object itself (the
    callback replaces it when averaging is switched on or off), copies of its
    average's parameters, buffers and count of steps, and of its raw
    parameters (None when the module holds them); all None without averaging.
    """
    state = getattr(net, "weight_averaging_", None)
    if state is None:
        return None, None, None
    average = {name: value.clone() for name, value in state.average.state_dict().items()}
    raw = None if state.raw is None else [value.clone() for value in state.raw]
    return state, average, raw


@torch.no_grad()
def restore_averaging(net, captured):
    """Put back on ``net`` the averaging state that :func:`capture_averaging` copied."""
    state, average, raw = captured
    net.weight_averaging_ = state
    if state is not None:
        state.average.load_state_dict(average)
        state.raw = raw
