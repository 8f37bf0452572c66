"""scikit-learn's full estimator suite against small, fast configurations."""

from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from sklearn_vae import VAETransformer


class TanhEncoder(nn.Module):
    """A custom encoder trunk, at module level so that fitted estimators pickle."""

    def __init__(self, n_inputs, width=8):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_inputs, width), nn.Tanh())

    def forward(self, x):
        return self.layers(x)


class ReLUDecoder(nn.Module):
    """A custom decoder trunk."""

    def __init__(self, n_components):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_components, 6), nn.ReLU())

    def forward(self, z):
        return self.layers(z)


def _small_vaes():
    common = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    return [
        VAETransformer(**common),
        VAETransformer(**common, early_stopping=False),
        VAETransformer(**common, average=True),
        VAETransformer(n_components=2, hidden_layer_sizes=(), max_iter=5, random_state=0),
        VAETransformer(
            **common, encoder=TanhEncoder, encoder_params={"width": 4}, decoder=ReLUDecoder
        ),
    ]


@parametrize_with_checks(_small_vaes())
def test_sklearn_estimator_suite(estimator, check):
    check(estimator)
