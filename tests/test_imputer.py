"""VAEImputer: scikit-learn's suite, the imputation contract and its statistics."""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_vae import VAEImputer, VAETransformer

TINY = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0)


@parametrize_with_checks(
    [VAEImputer(VAETransformer(**TINY), n_importance_samples=20, random_state=0)]
)
def test_sklearn_estimator_suite(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
