"""scikit-learn's full estimator suite against small, fast configurations."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_vae import VAETransformer


def _small_vaes():
    common = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    return [
        VAETransformer(**common),
        VAETransformer(**common, early_stopping=False),
        VAETransformer(n_components=2, hidden_layer_sizes=(), max_iter=5, random_state=0),
    ]


@parametrize_with_checks(_small_vaes())
def test_sklearn_estimator_suite(estimator, check):
    check(estimator)
