"""The private skorch net that trains a VAEModule, extended only through hooks."""

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch import nn

__all__ = ["NegativeELBO", "StopOnNonFiniteLoss", "VAENet"]


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
    """Raise as soon as a training or validation batch gives a NaN or infinite loss."""

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if loss is not None and not torch.isfinite(loss):
            stage = "training" if training else "validation"
            raise RuntimeError(
                f"Training diverged: the {stage} loss became {loss.item()} in "
                f"epoch {len(net.history)}. The usual causes are a learning rate "
                f"that is too high (learning_rate_init={net.lr}; try a value 10 "
                "times smaller) or features with extreme values (rescale X, for "
                "example with StandardScaler). No model was fitted."
            )
