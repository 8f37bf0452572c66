"""Variational autoencoders as scikit-learn estimators, trained through skorch."""

from ._dequantize import dequantize
from ._histogram import HistogramDensity
from ._imputer import VAEImputer
from ._outlier import DensityOutlierDetector
from ._scoring import make_log_likelihood_scorer
from ._vae import VAETransformer

__all__ = [
    "DensityOutlierDetector",
    "HistogramDensity",
    "VAEImputer",
    "VAETransformer",
    "dequantize",
    "make_log_likelihood_scorer",
]

__version__ = "0.1.0"
