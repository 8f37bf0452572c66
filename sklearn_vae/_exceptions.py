"""The library's own warnings."""

__all__ = ["TrainingInterruptedWarning"]


class TrainingInterruptedWarning(UserWarning):
    """A ``KeyboardInterrupt`` ended a fit; the model keeps its last completed epoch.

    Raised by ``fit`` and ``partial_fit`` when an interrupt arrives after at
    least one epoch of the call completed: the model is then the one of the
    last completed epoch (under early stopping, the best one), with
    ``n_iter_``, ``loss_curve_`` and the weights in agreement. Continue
    training with ``warm_start=True`` or ``partial_fit``. Read more in
    :doc:`/training`.

    Examples
    --------
    >>> from sklearn_vae import TrainingInterruptedWarning
    >>> issubclass(TrainingInterruptedWarning, UserWarning)
    True
    """
