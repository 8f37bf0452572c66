"""Training-set log-density of 3-d standard normal data multiplied by a scale.

What is measured
----------------
``X = s * N(0, I_3)`` (500 rows, seed 0) for each scale ``s``. Each model is
fitted on ``X`` and the table gives its mean training-set log-density per row,
plus ``3 log s``: a model whose scores are exact log-densities of ``X`` in its
own units gives the same number at every scale (the log-Jacobian of the
scaling is ``-3 log s`` per row), close to the true ``-3/2 (1 + log 2 pi)
= -4.257``. A failed fit prints the exception's first words.

- ``GaussianMixture(1, covariance_type="diag", random_state=0)``,
- ``HistogramDensity()``,
- ``VAETransformer(n_components=2, hidden_layer_sizes=(), max_iter=200,
  random_state=0)``, a linear-Gaussian VAE (factor analysis).

Run with ``python benchmarks/bench_scale_invariance.py``.
"""

import warnings

import numpy as np
from _common import format_table
from sklearn.mixture import GaussianMixture

from sklearn_vae import HistogramDensity, VAETransformer

SCALES = (1.0, 1e-20, 1e-30, 1e39, 1e300)
MODELS = {
    "GaussianMixture(1, diag)": lambda: GaussianMixture(1, covariance_type="diag", random_state=0),
    "HistogramDensity": HistogramDensity,
    "VAETransformer": lambda: VAETransformer(
        n_components=2, hidden_layer_sizes=(), max_iter=200, random_state=0
    ),
}


def mean_log_density(make, X, scale):
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return f"{make().fit(X).score(X) + X.shape[1] * np.log(scale):.4f}"
    except Exception as error:  # noqa: BLE001 - the table reports any failure
        return f"{type(error).__name__}: {' '.join(str(error).split()[:4])}"


def main():
    X = np.random.default_rng(0).normal(size=(500, 3))
    rows = [
        [f"{scale:g}", *(mean_log_density(make, X * scale, scale) for make in MODELS.values())]
        for scale in SCALES
    ]
    print(format_table(["scale", *MODELS], rows))


if __name__ == "__main__":
    main()
