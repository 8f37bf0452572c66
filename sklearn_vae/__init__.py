"""Variational autoencoders as scikit-learn estimators, trained through skorch."""

from ._dequantize import dequantize
from ._histogram import HistogramDensity
from ._imputer import VAEImputer
from ._outlier import DensityOutlierDetector
from ._scoring import make_log_likelihood_scorer
from ._threads import request_thread_invariant_blas
from ._vae import VAETransformer

# MKL reads its reproducibility mode at its first call, which no import makes.
request_thread_invariant_blas()

__all__ = [
    "DensityOutlierDetector",
    "HistogramDensity",
    "VAEImputer",
    "VAETransformer",
    "dequantize",
    "make_log_likelihood_scorer",
]

__version__ = "0.1.0"
