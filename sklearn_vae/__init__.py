"""Variational autoencoders as scikit-learn estimators, trained through skorch."""

from ._vae import VAETransformer

__all__ = ["VAETransformer"]

__version__ = "0.1.0"
