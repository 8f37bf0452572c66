"""Batched, thread-limited forward passes of a fitted model: encoding, decoding, scoring.

:class:`FittedModel` is the private interface through which the estimators'
``transform``, ``inverse_transform``, ``sample``, ``score_samples`` and
``log_likelihood``, conditional inference (:mod:`._inference`) and the
detector's scores reach a fitted VAE: its torch module, the standardisation
of its Gaussian columns and the training range of its dequantised columns.
``VAETransformer._fitted_model()`` builds one.
"""

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_no_nan
from ._data import iter_batches, row_keyed_normal, summarise_columns
from ._likelihoods import point_masses
from ._random import torch_seed
from ._threads import n_threads, torch_threads

__all__ = ["EVAL_BATCH_SIZE", "IWAE_BUDGET", "SCORE_PAIRS", "FittedModel", "noise_columns"]

#: Rows per batch when transforming and scoring; memory stays bounded.
EVAL_BATCH_SIZE = 1024
#: Antithetic pairs of row-keyed draws per row in ``score_samples``.
SCORE_PAIRS = 1
#: Budget, in float32 values, for one tensor of importance-sampling work.
IWAE_BUDGET = 2**22
#: Rows per batch of importance-sampling work.
IWAE_BATCH_SIZE = 256
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _redo_overflowed(score, X):
    """``score(X, float32)``, with the rows whose score is not finite scored again in float64.

    A row far outside the training data can overflow float32 (its squared
    distance, or its standardised value itself); float64 holds scores of
    such rows that float32 cannot. The other rows keep their float32 scores.
    Overflows are expected here, and not warned about: a row-keyed draw is
    keyed on the row's float32 image, infinite for such a row.
    """
    with np.errstate(over="ignore"):
        scores = score(X, torch.float32)
        overflowed = ~np.isfinite(scores)
        if overflowed.any():
            scores[overflowed] = score(X[overflowed], torch.float64)
    return scores


def noise_columns(columns):
    """The columns that get dequantisation noise, as ``RowDataset`` takes them: None for all."""
    return None if columns.all() else columns


@dataclass(frozen=True)
class FittedModel:
    """A fitted VAE as evaluation sees it.

    Parameters
    ----------
    net : VAENet
        The fitted skorch net (``net.module_`` is the torch model).
    standardisation : Standardisation
        The float64 map of the Gaussian columns to the module's units.
    dequantized : ndarray of bool of shape (n_features,)
        The columns modelled as ``x + U(0, 1)``.
    support : ndarray of shape (2, n_features) or None
        The training range of the dequantised columns (None: nothing to clip).
    n_jobs : int or None
        The estimator's ``n_jobs``, which sets the torch threads.
    """

    net: object
    standardisation: object
    dequantized: np.ndarray
    support: object
    n_jobs: object

    @property
    def module(self):
        return self.net.module_

    @property
    def device(self):
        return self.net.device

    @property
    def n_components(self):
        return self.module.encoder.loc.out_features

    def threads(self):
        """Run the block with the torch threads that ``n_jobs`` gives this model."""
        n_weights = sum(weights.numel() for weights in self.module.parameters())
        return torch_threads(n_threads(self.n_jobs, n_weights, self.net.batch_size))

    def evaluate(
        self,
        fn,
        X,
        batch_size=EVAL_BATCH_SIZE,
        dtype=torch.float64,
        dequantize=None,
        columns=None,
        latent=False,
        unstandardise=False,
        keyed_pairs=None,
    ):
        """Apply ``fn(module, batch)`` to row batches of ``X``; float64 ndarray.

        Rows of data are standardised in float64 before they reach the module
        (``latent=True``: ``X`` holds latent points, passed as they are), and
        with ``unstandardise=True`` the outputs, rows in standardised units,
        are mapped back to the units of ``X`` in float64.

        Deterministic outputs are computed on a float64 copy of the module: in
        float32 a row's result may depend on the other rows of its batch at the
        1e-7 level (the linear algebra kernels depend on the batch's shape),
        and they must not depend on row order or on scoring a subset. Monte
        Carlo estimates may pass ``dtype=torch.float32``. With
        ``keyed_pairs`` (float32, scoring), every batch is padded to
        ``batch_size`` rows with copies of its first row, so the kernels see
        one fixed shape, and ``fn(module, batch, noise)`` also gets
        ``keyed_pairs`` :func:`~._data.row_keyed_normal` draws of each row.
        """
        module = copy.deepcopy(self.module).to(dtype).eval()
        standardisation = self.standardisation
        # A row's draws are keyed on the entries the encoder reads: not on point masses.
        point_mass = point_masses(self.module.likelihood)[0]
        keyed = None
        if 0 < len(point_mass) < X.shape[1]:
            keyed = np.setdiff1d(np.arange(X.shape[1]), point_mass)
        device = self.device
        output = None
        with torch.inference_mode(), self.threads():
            batches = iter_batches(
                X,
                batch_size,
                _NUMPY_DTYPES[dtype],
                dequantize,
                columns,
                standardisation=None if latent else standardisation,
            )
            for start, batch in zip(range(0, X.shape[0], batch_size), batches, strict=True):
                n_rows = len(batch)
                if keyed_pairs is None:
                    values = fn(module, batch.to(device)).cpu().numpy()
                else:
                    batch = torch.cat([batch, batch[:1].expand(batch_size - n_rows, -1)])
                    rows = batch.numpy() if keyed is None else batch.numpy()[:, keyed]
                    noise = row_keyed_normal(rows, keyed_pairs, self.n_components)
                    values = fn(module, batch.to(device), torch.from_numpy(noise).to(device))
                    values = values[:n_rows].cpu().numpy()
                if unstandardise:
                    values = standardisation.inverse_transform(values)
                if output is None:
                    # Written in place: concatenating per-batch pieces fragments
                    # the heap and holds several times the output's memory.
                    output = np.empty((X.shape[0], *values.shape[1:]))
                output[start : start + len(values)] = values
        return output

    # ------------------------------------------------------------ scoring

    def scoring_noise(self, X):
        """The dequantisation noise to score encoded ``X`` with, and the columns that get it.

        Checks ``X`` against the likelihood's support first. The integers of
        dequantised columns get row-hashed noise; their other values
        (``dequantize(X)``, or a held-out 2.5 in a column of integers) are
        already continuous and scored as they are.
        """
        summary = summarise_columns(X)
        self.module.likelihood.check_support(X, summary)
        if not self.dequantized.any():
            return None, None
        # Only integers get noise, entry by entry (RowDataset).
        return "hashed", noise_columns(self.dequantized)

    def point_mass_log_prob(self, X):
        """Per row, 0 or ``-inf``: whether an observed entry of a point-mass column is not
        its value (probability 0); None without point masses. Exact, in float64."""
        columns, values = point_masses(self.module.likelihood)
        if not columns:
            return None
        out = np.zeros(X.shape[0])
        for start in range(0, X.shape[0], EVAL_BATCH_SIZE):
            block = np.asarray(X[start : start + EVAL_BATCH_SIZE][:, columns], dtype=np.float64)
            wrong = ((block != values) & ~np.isnan(block)).any(axis=1)
            out[start : start + len(block)][wrong] = -np.inf
        return out

    def _with_point_masses(self, scores, X):
        term = self.point_mass_log_prob(X)
        return scores if term is None else scores + term

    def elbo(self, X, n_pairs=SCORE_PAIRS):
        """Per-row ELBO of encoded ``X``, in nats of ``X``; see ``score_samples``."""
        dequantize, columns = self.scoring_noise(X)
        if self.module.elbo_is_quadratic:
            # Shared whitened draws in float64: the closed form.
            elbo = self.evaluate(
                lambda module, x: module.elbo(x), X, dequantize=dequantize, columns=columns
            )
        else:

            def score(rows, dtype):
                return self.evaluate(
                    lambda module, x, noise: module.elbo(x, noise),
                    rows,
                    dtype=dtype,
                    dequantize=dequantize,
                    columns=columns,
                    keyed_pairs=n_pairs,
                )

            elbo = _redo_overflowed(score, X)
        return self._with_point_masses(check_no_nan(elbo + self.standardisation.log_jacobian(X)), X)

    def importance_weighted_bound(self, X, n_importance_samples, seed):
        """Per-row IWAE bound on ``n_importance_samples`` draws, in nats of ``X``."""
        dequantize, columns = self.scoring_noise(X)
        # The widest layer bounds the size of every per-sample tensor.
        chunk_size = max(1, IWAE_BUDGET // (IWAE_BATCH_SIZE * self.module.widest_layer()))

        def bound(rows, dtype):
            return self.evaluate(
                lambda module, x: module.importance_weighted_bound(
                    x, n_importance_samples, chunk_size
                ),
                rows,
                batch_size=IWAE_BATCH_SIZE,
                dtype=dtype,
                dequantize=dequantize,
                columns=columns,
            )

        # A Monte Carlo estimate needs no float64: it is computed in float32.
        with torch_seed(seed, self.device):
            scores = _redo_overflowed(bound, X)
        return self._with_point_masses(
            check_no_nan(scores + self.standardisation.log_jacobian(X)), X
        )

    # ----------------------------------------------------------- decoding

    def decode_mean(self, Z):
        """The mean of ``p(x | z)`` of latent points ``Z``, in the units of ``X``."""
        return self.evaluate(
            lambda module, z: module.reconstruct_mean(z), Z, latent=True, unstandardise=True
        )

    def sample(self, n_samples, seed):
        """``n_samples`` draws ``z ~ p(z)``, ``x ~ p(x | z)``, in the units of ``X``."""
        with torch_seed(seed, self.device):
            Z = self.module.draw_prior(n_samples).numpy()
            return self.evaluate(
                lambda module, z: module.sample_given(z), Z, latent=True, unstandardise=True
            )

    def encode(self, X):
        """The means of ``q(z | x)`` of encoded ``X``; deterministic."""
        return self.evaluate(lambda module, x: module.posterior(x).mean, X)
