"""Variational autoencoders as scikit-learn estimators, trained through skorch."""

from ._dequantize import dequantize
from ._exceptions import TrainingInterruptedWarning
from ._histogram import HistogramDensity
from ._imputer import VAEImputer
from ._outlier import DensityOutlierDetector
from ._parallel import data_parallel
from ._scoring import make_log_likelihood_scorer
from ._vae import VAETransformer
from ._version import __version__ as __version__

__all__ = [
    "DensityOutlierDetector",
    "HistogramDensity",
    "TrainingInterruptedWarning",
    "VAEImputer",
    "VAETransformer",
    "data_parallel",
    "dequantize",
    "make_log_likelihood_scorer",
]
