"""A cross-validation scorer that ranks density models by their log-likelihood."""

from numbers import Integral

import numpy as np
from sklearn.pipeline import Pipeline

__all__ = ["make_log_likelihood_scorer"]


class _LogLikelihoodScorer:
    """Mean log-likelihood of held-out rows; see :func:`make_log_likelihood_scorer`."""

    def __init__(self, n_importance_samples, random_state):
        self.n_importance_samples = n_importance_samples
        self.random_state = random_state

    def __call__(self, estimator, X, y=None):
        if isinstance(estimator, Pipeline):
            # Score the final step on the output of the others, as Pipeline.score_samples does.
            X = estimator[:-1].transform(X) if len(estimator) > 1 else X
            estimator = estimator[-1]
        if hasattr(estimator, "log_likelihood"):
            scores = estimator.log_likelihood(
                X,
                n_importance_samples=self.n_importance_samples,
                random_state=self.random_state,
            )
        else:
            scores = estimator.score_samples(X)
        return float(np.mean(scores))

    def __repr__(self):
        return (
            f"make_log_likelihood_scorer(n_importance_samples={self.n_importance_samples}, "
            f"random_state={self.random_state!r})"
        )


def make_log_likelihood_scorer(*, n_importance_samples=100, random_state=0):
    """Make a scorer that ranks density models by held-out log-likelihood.

    :meth:`VAETransformer.score`, which ``GridSearchCV`` uses by default, is
    the mean ELBO, a lower bound whose gap to ``log p(x)`` differs between
    models: it tends to grow with ``n_components``, so selecting on the ELBO
    favours small latent spaces. This scorer uses the tighter importance
    weighted estimate :meth:`VAETransformer.log_likelihood` instead. For an
    estimator without ``log_likelihood`` (``GaussianMixture``,
    ``KernelDensity``, ``FactorAnalysis``, :class:`HistogramDensity`, ...) it
    uses the mean of ``score_samples``, their exact log-density, so a VAE and
    a classical model can be compared in one search in the same units. A
    ``Pipeline`` is scored by its final step on the output of the others,
    like ``Pipeline.score_samples``.

    Parameters
    ----------
    n_importance_samples : int, default=100
        Number of importance samples K per row passed to
        :meth:`VAETransformer.log_likelihood`. The estimate's bias shrinks as
        K grows, and its cost grows linearly with K.

    random_state : int, RandomState instance or None, default=0
        Seeds the importance samples. With an int, every candidate and every
        fold is scored with the same seed, so the scores are reproducible.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None)`` returns the mean log-likelihood of
        the rows of ``X`` in nats (higher is better); pass it as ``scoring``
        to ``GridSearchCV``, ``RandomizedSearchCV`` or ``cross_val_score``.

    See Also
    --------
    VAETransformer.log_likelihood : The per-row estimate this scorer averages.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_vae import VAETransformer, make_log_likelihood_scorer
    >>> X = np.random.RandomState(0).normal(size=(60, 4))
    >>> search = GridSearchCV(
    ...     VAETransformer(hidden_layer_sizes=(8,), max_iter=2, random_state=0),
    ...     {"n_components": [1, 2]},
    ...     scoring=make_log_likelihood_scorer(n_importance_samples=10),
    ...     cv=2,
    ... ).fit(X)
    >>> search.cv_results_["mean_test_score"].shape
    (2,)
    """
    if not isinstance(n_importance_samples, Integral) or n_importance_samples < 1:
        raise ValueError(
            f"n_importance_samples must be a positive integer, got {n_importance_samples!r}."
        )
    return _LogLikelihoodScorer(n_importance_samples, random_state)
