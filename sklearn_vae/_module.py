"""The torch model: recognition network, generative network and their bounds."""

import math

import torch
from torch import nn
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    kl_divergence,
)

from ._likelihoods import GaussianLikelihood, point_masses
from ._networks import UserTrunk
from ._random import draw, global_generator, seeded, standard_normal, uniform

__all__ = ["PRIOR_BUFFERS", "VAEModule"]

#: The buffers of a mixture prior (log weights, means, Cholesky factors).
PRIOR_BUFFERS = ("prior_logits", "prior_loc", "prior_scale_tril")

# Floor on the encoder's posterior scale, for numerical safety only.
MIN_POSTERIOR_SCALE = 1e-4


def _mlp(n_inputs, hidden_layer_sizes):
    """ReLU multilayer perceptron; returns the trunk and its output width."""
    layers = []
    for width in hidden_layer_sizes:
        layers += [nn.Linear(n_inputs, width), nn.ReLU()]
        n_inputs = width
    return nn.Sequential(*layers), n_inputs


def _run_trunk(trunk, x):
    """``trunk(x)``; a user trunk in a seeded section draws (dropout) from the section's stream."""
    if isinstance(trunk, UserTrunk) and seeded():
        with global_generator():
            return trunk(x)
    return trunk(x)


class InputEncoding(nn.Module):
    """The encoder's view of a batch: standardised numbers, one-hot levels, a missing mask.

    Numeric features are standardised with ``loc`` and ``scale`` (the
    training mean and standard deviation of the features the estimator does
    not standardise itself, such as counts; 0 and 1 for those it does, which
    arrive standardised); features listed in ``one_hot`` (labels, and integers modelled
    as categories) become one-hot vectors. A missing entry (NaN) is 0 in
    either form, and the mask of missing entries is returned beside.

    Parameters
    ----------
    n_features : int
    one_hot : list of (int, float, int)
        ``(feature, offset, n_levels)``: level ``offset + k`` is code ``k``.
    skip : list of int, default=()
        Features the encoder does not read (point masses, which say nothing
        about a row); their entries still count in the mask.
    """

    def __init__(self, n_features, one_hot=(), skip=()):
        super().__init__()
        self.register_buffer("loc", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.one_hot = [(j, offset, size) for j, offset, size in one_hot]
        coded = {j for j, _, _ in self.one_hot} | set(skip)
        self.reads_all = not coded
        self.register_buffer(
            "numeric",
            torch.tensor([j for j in range(n_features) if j not in coded], dtype=torch.long),
        )

    @property
    def n_outputs(self):
        return len(self.numeric) + sum(size for _, _, size in self.one_hot)

    def forward(self, x):
        standardised = (x - self.loc) / self.scale
        missing = torch.isnan(x)
        if not missing.any():
            missing = None
        else:
            standardised = torch.where(missing, 0.0, standardised)
        if self.reads_all:
            return standardised, missing
        features = [standardised[..., self.numeric]]
        for j, offset, size in self.one_hot:
            codes = x[..., j] - offset
            observed = ~torch.isnan(codes)
            codes = torch.where(observed, codes, 0.0).long().clamp(0, size - 1)
            features.append(nn.functional.one_hot(codes, size).to(x.dtype) * observed[..., None])
        return torch.cat(features, dim=-1), missing


class MaskedLinear(nn.Module):
    """An affine map of the input plus a learned offset for each missing feature.

    The missing-entry weights start at zero, so a model trained on complete
    data is exactly the plain ``nn.Linear``.
    """

    def __init__(self, n_inputs, n_outputs, n_features):
        super().__init__()
        self.linear = nn.Linear(n_inputs, n_outputs)
        self.missing_weight = nn.Parameter(torch.zeros(n_outputs, n_features))

    @property
    def out_features(self):
        return self.linear.out_features

    def forward(self, x, missing=None):
        out = self.linear(x)
        if missing is not None:
            out = out + missing.to(x.dtype) @ self.missing_weight.T
        return out


class GaussianEncoder(nn.Module):
    """Recognition model q(z | x) = N(mu(x), diag sigma^2(x)).

    It reads the :class:`InputEncoding` of a batch and its mask of missing
    entries. In the default MLP the mask enters the first affine map; with a
    user ``trunk`` (a :class:`~._networks.UserTrunk`), or no hidden layer, it
    enters the affine posterior head after the trunk.
    """

    def __init__(self, n_inputs, n_features, n_components, hidden_layer_sizes, trunk=None):
        super().__init__()
        widths = tuple(hidden_layer_sizes)
        if trunk is None and widths:
            self.first = MaskedLinear(n_inputs, widths[0], n_features)
            self.trunk, width = _mlp(widths[0], widths[1:])
            self.loc = nn.Linear(width, n_components)
            self.raw_scale = nn.Linear(width, n_components)
        else:
            self.first = None
            self.trunk, width = trunk, n_inputs if trunk is None else trunk.n_outputs
            self.loc = MaskedLinear(width, n_components, n_features)
            self.raw_scale = MaskedLinear(width, n_components, n_features)

    def forward(self, x, missing=None):
        if self.first is None:
            h = x if self.trunk is None else _run_trunk(self.trunk, x)
            loc, raw_scale = self.loc(h, missing), self.raw_scale(h, missing)
        else:
            h = self.trunk(nn.functional.relu(self.first(x, missing)))
            loc, raw_scale = self.loc(h), self.raw_scale(h)
        scale = nn.functional.softplus(raw_scale) + MIN_POSTERIOR_SCALE
        return Independent(Normal(loc, scale, validate_args=False), 1)


class Decoder(nn.Module):
    """Generative network z -> parameters of p(x | z).

    The trunk is the MLP mirroring ``hidden_layer_sizes``, or a user
    ``trunk``; the likelihood's head maps its output to the parameters.
    """

    def __init__(
        self, n_components, hidden_layer_sizes, likelihood, trunk=None, heteroscedastic=True
    ):
        super().__init__()
        if trunk is None:
            self.trunk, width = _mlp(n_components, tuple(reversed(hidden_layer_sizes)))
            # Factor analysis: one noise variance per feature.
            heteroscedastic = heteroscedastic and len(hidden_layer_sizes) > 0
        else:
            self.trunk, width = trunk, trunk.n_outputs
        self.head = likelihood.make_head(width, heteroscedastic=heteroscedastic)
        # The default trunk without hidden layers: the parameters are affine in z.
        self.affine = trunk is None and not tuple(hidden_layer_sizes)

    def forward(self, z):
        return self.head(_run_trunk(self.trunk, z))


def balanced_normal_draws(n_pairs, n_components):
    """Antithetic standard normal draws with exactly zero mean and identity second moment.

    ``n_pairs`` draws and their negatives are whitened so that their sample
    covariance is exactly the identity; an average of ``f(mu + sigma * eps)``
    over them is then exact for any ``f`` quadratic in ``eps``.
    """
    eps = standard_normal((n_pairs, n_components), torch.float64)
    eps = torch.cat([eps, -eps])
    cholesky = torch.linalg.cholesky(eps.T @ eps / len(eps))
    return torch.linalg.solve_triangular(cholesky, eps.T, upper=False).T.float()


class VAEModule(nn.Module):
    """Variational autoencoder with a standard normal or a Gaussian mixture prior.

    Parameters
    ----------
    likelihood : Likelihood
        Fitted observation model.
    n_components : int
        Latent size.
    hidden_layer_sizes : tuple of int
        Encoder widths; the decoder mirrors them. ``()`` gives linear maps.
    one_hot : list of (int, float, int), default=()
        Features the encoder sees one-hot; see :class:`InputEncoding`.
    encoder, decoder : callable or None, default=None
        Builders of user trunks: ``encoder(n_inputs)`` and
        ``decoder(n_components)`` return a :class:`~._networks.UserTrunk`
        that replaces the MLP on that side. They are called in this order,
        encoder first, as the MLP's layers are created, so a user MLP equal
        to the default one gets the same initial weights.
    heteroscedastic : bool, default=True
        Whether the Gaussian columns' variances are outputs of the decoder
        (a function of ``z``) or one learned parameter per feature. Without
        hidden layers they are one per feature either way.

    Notes
    -----
    ``forward`` returns per-row ``(log p(x | z), KL(q(z | x) || p(z)))``: in
    training mode averaged over ``n_draws`` reparametrised draws; in eval mode
    (skorch's validation) averaged over 2 fixed antithetic pairs of draws
    (``validation_noise``), cheap and deterministic. With
    ``objective = "iwae"`` it returns ``(IWAE bound, 0)`` instead, over
    ``n_draws`` draws in training and the 4 validation draws in eval mode.
    :meth:`elbo` takes the draws it averages over. Given per-row draws (the
    estimator's :func:`~._data.row_keyed_normal`, a fixed function of each
    row), each is used with its negative and the average is accumulated in
    float64 with the analytic KL: an unbiased, deterministic estimate whose
    error is independent across rows. Without them it uses the
    ``2 * max(n_components, 8)`` fixed draws of ``score_noise`` (see
    :func:`balanced_normal_draws`) shared by every row, exact when
    ``log p(x | z)`` is quadratic in ``z``: for :attr:`elbo_is_quadratic`
    models this is the closed-form ELBO.

    Training always uses the standard normal prior, whose KL is analytic.
    :meth:`set_prior` may then replace it by a Gaussian mixture (the
    estimator's ``prior="mixture"``): scoring then uses the posterior's
    analytic entropy and the mixture's exact log-density at the same draws,
    so the ELBO stays an unbiased, deterministic estimate. A model whose
    reconstruction term is quadratic keeps that term's closed form, and
    only the mixture's term is estimated.
    """

    def __init__(
        self,
        likelihood,
        n_components,
        hidden_layer_sizes,
        one_hot=(),
        encoder=None,
        decoder=None,
        heteroscedastic=True,
    ):
        super().__init__()
        # Initial weights come from torch's global generator, inside torch:
        # it is lent the seeded section's stream for the construction.
        with global_generator():
            n_features = likelihood.n_features
            self.likelihood = likelihood
            # Point masses say nothing about a row: the encoder does not read
            # them (a table of point masses alone gives it no input but the mask).
            self.inputs = InputEncoding(n_features, one_hot, skip=point_masses(likelihood)[0])
            n_inputs = self.inputs.n_outputs
            self.encoder = GaussianEncoder(
                n_inputs,
                n_features,
                n_components,
                hidden_layer_sizes,
                trunk=None if encoder is None else encoder(n_inputs),
            )
            self.decoder = Decoder(
                n_components,
                hidden_layer_sizes,
                likelihood,
                trunk=None if decoder is None else decoder(n_components),
                heteroscedastic=heteroscedastic,
            )
            self.register_buffer(
                "score_noise", balanced_normal_draws(max(n_components, 8), n_components)
            )
            pairs = standard_normal((2, n_components))
            self.register_buffer("validation_noise", torch.cat([pairs, -pairs]))
        # The mixture prior's log weights, means and Cholesky factors: None
        # (absent from the state dict) for the standard normal prior.
        for name in PRIOR_BUFFERS:
            self.register_buffer(name, None)

    def widest_layer(self):
        """Widest output of an affine layer or a user trunk: the scale of per-row tensors."""
        layers = list(self.modules())
        widths = [layer.out_features for layer in layers if isinstance(layer, nn.Linear)]
        return max(widths + [layer.n_outputs for layer in layers if isinstance(layer, UserTrunk)])

    def set_input_scaling(self, loc, scale):
        """Store the standardisation applied to the encoder's numeric input."""
        self.inputs.loc.copy_(torch.as_tensor(loc))
        self.inputs.scale.copy_(torch.as_tensor(scale))

    @property
    def has_mixture_prior(self):
        """Whether p(z) is a Gaussian mixture (:meth:`set_prior`) rather than N(0, I)."""
        return self.prior_logits is not None

    def set_prior(self, weights=None, means=None, covariances=None):
        """Make p(z) the Gaussian mixture of the given components; no arguments: N(0, I).

        Parameters
        ----------
        weights : array-like of shape (n_mixture,), default=None
        means : array-like of shape (n_mixture, n_components), default=None
        covariances : array-like of shape (n_mixture, n_components, n_components), default=None
            Full covariance matrices, as ``GaussianMixture.covariances_``.
        """
        if weights is None:
            self.prior_logits = self.prior_loc = self.prior_scale_tril = None
            return
        like = {"dtype": self.score_noise.dtype, "device": self.score_noise.device}
        cholesky = torch.linalg.cholesky(torch.as_tensor(covariances, dtype=torch.float64))
        self.prior_logits = torch.log(torch.as_tensor(weights, dtype=torch.float64)).to(**like)
        self.prior_loc = torch.as_tensor(means, dtype=torch.float64).to(**like)
        self.prior_scale_tril = cholesky.to(**like)

    def prior_distribution(self, dtype=None):
        """The prior p(z) as a torch distribution, in ``dtype`` (default: the module's)."""
        if not self.has_mixture_prior:
            zeros = torch.zeros_like(self.score_noise[0], dtype=dtype)
            return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)
        loc, scale_tril = self.prior_loc.to(dtype), self.prior_scale_tril.to(dtype)
        return MixtureSameFamily(
            Categorical(logits=self.prior_logits.to(dtype), validate_args=False),
            MultivariateNormal(loc, scale_tril=scale_tril, validate_args=False),
            validate_args=False,
        )

    @property
    def prior(self):
        """The prior p(z): N(0, I), or the mixture given to :meth:`set_prior`."""
        return self.prior_distribution()

    def _kl(self, q, z):
        """KL(q(z | x) || p(z)) per row.

        Analytic for N(0, I). For a mixture prior: the analytic negative
        entropy of ``q`` minus the mean of ``log p(z)`` over the draws ``z``
        (their leading dimension), an unbiased estimate.
        """
        if not self.has_mixture_prior:
            return kl_divergence(q, self.prior_distribution(q.mean.dtype))
        return -q.entropy() - self.prior_distribution(z.dtype).log_prob(z).mean(dim=0)

    def draw_prior(self, n_samples):
        """``n_samples`` float64 CPU draws ``z ~ p(z)``, on the seeded section's stream."""
        eps = standard_normal((n_samples, self.score_noise.shape[1]), torch.float64)
        if not self.has_mixture_prior:
            return eps
        cumulative = torch.softmax(self.prior_logits.double().cpu(), 0).cumsum(0)
        chosen = torch.searchsorted(cumulative, uniform((n_samples,), torch.float64), right=True)
        chosen = chosen.clamp(max=len(cumulative) - 1)
        loc, scale_tril = self.prior_loc.double().cpu(), self.prior_scale_tril.double().cpu()
        return loc[chosen] + (scale_tril[chosen] @ eps[..., None])[..., 0]

    def posterior(self, x):
        """Approximate posterior q(z | x) for a batch of model inputs (NaN: missing)."""
        return self.encoder(*self.inputs(x))

    def log_prob_given(self, z, x):
        """log p(x | z) in nats; ``z`` may carry leading sample dimensions."""
        return self.likelihood.log_prob(self.decoder(z), x)

    def _expected_log_prob(self, q, x, noise):
        """E_q[log p(x | z)] averaged over the fixed standard normal ``noise``."""
        z = q.mean + q.stddev * noise[:, None, :]
        return self.log_prob_given(z, x).mean(dim=0)

    #: Training objective, "elbo" or "iwae", and the latent draws per row (L or K).
    objective = "elbo"
    n_draws = 1

    def forward(self, x):
        q = self.posterior(x)
        if self.objective == "iwae":
            if self.training:
                z = draw(q, (self.n_draws,))
            else:
                z = q.mean + q.stddev * self.validation_noise[:, None, :]
            log_w = self.log_prob_given(z, x) + self.prior.log_prob(z) - q.log_prob(z)
            bound = torch.logsumexp(log_w, dim=0) - math.log(len(z))
            # The bound already holds the KL's role: the criterion sees a zero KL.
            return bound, torch.zeros_like(bound)
        kl = kl_divergence(q, self.prior)
        if not self.training:
            reconstruction = self._expected_log_prob(q, x, self.validation_noise)
        elif self.n_draws == 1:
            reconstruction = self.log_prob_given(draw(q), x)
        else:
            reconstruction = self.log_prob_given(draw(q, (self.n_draws,)), x).mean(dim=0)
        return reconstruction, kl

    @property
    def reconstruction_is_quadratic(self):
        """Whether ``log p(x | z)`` is quadratic in z: an affine decoder and a Gaussian likelihood.

        The Gaussian's scale is then a learned constant, so the ``score_noise``
        average of ``log p(x | z)`` is its exact expectation under ``q``.
        """
        return self.decoder.affine and isinstance(self.likelihood, GaussianLikelihood)

    @property
    def elbo_is_quadratic(self):
        """Whether the whole ELBO has the closed form of the ``score_noise`` average.

        A quadratic reconstruction term (:attr:`reconstruction_is_quadratic`)
        and the standard normal prior, whose KL is analytic.
        """
        return self.reconstruction_is_quadratic and not self.has_mixture_prior

    def elbo(self, x, noise=None):
        """Per-row evidence lower bound, in nats.

        Parameters
        ----------
        x : Tensor of shape (n_rows, n_features)
        noise : Tensor of shape (n_pairs, n_rows, n_components), default=None
            Standard normal draws for each row, each used with its negative;
            the estimate is accumulated in float64. None: the fixed
            ``score_noise`` draws shared by all rows. A model whose
            reconstruction term is quadratic in ``z`` takes that term over
            ``score_noise`` either way, its exact value, so the draws of
            ``noise`` estimate the mixture prior's term alone.
        """
        q = self.posterior(x)
        if noise is None:
            z = q.mean + q.stddev * self.score_noise[:, None, :]
            return self.log_prob_given(z, x).mean(dim=0) - self._kl(q, z)
        z = q.mean + q.stddev * torch.cat([noise, -noise])
        if self.reconstruction_is_quadratic:
            shared = q.mean + q.stddev * self.score_noise[:, None, :]
            reconstruction = self.log_prob_given(shared, x).double().mean(dim=0)
        else:
            reconstruction = self.log_prob_given(z, x).double().mean(dim=0)
        loc, scale = q.mean.double(), q.stddev.double()
        posterior = Independent(Normal(loc, scale, validate_args=False), 1)
        return reconstruction - self._kl(posterior, z.double())

    def importance_weighted_bound(self, x, n_samples, chunk_size):
        """Per-row IWAE bound log (1/K) sum_k p(x, z_k) / q(z_k | x), K = n_samples.

        The K proposals are drawn ``chunk_size`` at a time and combined with a
        running log-sum-exp, so memory does not grow with K.
        """
        q = self.posterior(x)
        total = torch.full((x.shape[0],), -math.inf, dtype=x.dtype, device=x.device)
        for start in range(0, n_samples, chunk_size):
            z = draw(q, (min(chunk_size, n_samples - start),))
            log_w = self.log_prob_given(z, x) + self.prior.log_prob(z) - q.log_prob(z)
            total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
        return total - math.log(n_samples)

    def reconstruct_mean(self, z):
        """Mean of p(x | z) in the units of the model's inputs."""
        return self.likelihood.mean(self.decoder(z))

    def sample_given(self, z):
        """Draw ``x ~ p(x | z)`` in the units of the model's inputs."""
        return self.likelihood.sample(self.decoder(z))
