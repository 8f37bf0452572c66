"""Conditional inference p(x_miss | x_obs) by importance sampling over q(z | x_obs).

For a row ``x`` whose missing entries are NaN, ``K`` proposals
``z_k ~ q(z | x_obs)`` get the importance weights

    log w_k = log p(x_obs | z_k) + log p(z_k) - log q(z_k | x_obs),

where ``log p(x_obs | z)`` sums over the observed entries only (the decoder
factorises over columns, so this marginalises the missing ones exactly).
Self-normalised, ``w~_k = w_k / sum_j w_j`` gives

- the conditional mean ``E[x_miss | x_obs] ~ sum_k w~_k E[x_miss | z_k]``
  (for one-hot categorical columns, the most probable category of the
  mixture ``sum_k w~_k p(x_miss | z_k)``), and
- sampling-importance-resampling: ``k ~ Categorical(w~)``, then
  ``x_miss ~ p(x_miss | z_k)``, a draw from ``p(x_miss | x_obs)`` as K grows.

This is the estimator of MIWAE (Mattei & Frellsen, ICML 2019), with the
proposal ``q`` adapted to each row first (:func:`adapted_proposal`): the
same weights, with ``q`` the adapted Gaussian in place of the encoder's
posterior. Proposals are drawn ``chunk_size`` at a time and combined with
running log-sum-exps, so memory does not grow with K. Every draw comes from
the call's own generator, seeded from ``random_state`` (:mod:`._random`).

A row with an observed value far outside the training data (more than
:data:`FAR_FROM_TRAINING` training standard deviations) is computed in
float64, and its adaptation starts from a Laplace approximation at the
posterior mode (:func:`laplace_proposal`) instead of the encoder, whose
extrapolation misses the posterior there. Values beyond
:data:`MAX_FROM_TRAINING` are refused with a ``ValueError``.
"""

from functools import partial

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch.distributions import Categorical, Independent, Normal

from ._checks import short_repr
from ._evaluation import IWAE_BATCH_SIZE, IWAE_BUDGET
from ._likelihoods import CategoricalLikelihood, GaussianLikelihood, TableLikelihood
from ._module import MIN_POSTERIOR_SCALE
from ._power import expected_inverse
from ._random import draw, draw_seed, torch_seed, uniform

__all__ = [
    "adapted_proposal",
    "check_finite_inference",
    "check_within_reach",
    "laplace_proposal",
    "posterior_mode",
    "standardised_distances",
    "conditional_draw",
    "conditional_expectation",
    "conditional_mean",
    "impute_encoded",
    "pick_categories",
]


def _log_weights(module, q, z, x):
    """Unnormalised log importance weights, shape ``z.shape[:-1]``."""
    return module.log_prob_given(z, x) + module.prior.log_prob(z) - q.log_prob(z)


def _parts(likelihood, params):
    """``(part, part_params, columns)`` of a likelihood; ``columns`` None means all."""
    if isinstance(likelihood, TableLikelihood):
        return [
            (part, part_params, likelihood.part_columns(i))
            for i, (part, part_params) in enumerate(zip(likelihood.parts, params, strict=True))
        ]
    return [(likelihood, params, None)]


def _point_statistics(likelihood, params, power, missing):
    """What is averaged over the proposals: means, or category probabilities.

    ``power`` (a :class:`~._data.Standardisation`'s ``power_arguments()``, or
    None) names the power-mapped Gaussian columns: their means are those of
    the inverse map (:func:`._power.expected_inverse`), in standardised units
    before the map. ``missing`` (a bool tensor of shape ``(n_rows,
    n_features)``) names the entries whose means are read:
    the inverse map's quadrature, the costliest step, runs on those alone,
    and the other entries of a power-mapped column hold its mean in the
    mapped units.

    Returns a list of ``(columns, levels, values)``: ``levels`` is None for
    values that are means (shape ``(..., len(columns))``, the module's units),
    and for category probabilities (shape ``(..., len(columns), n_levels)``)
    the pair ``(offsets, binned)``: the level of code 0 of each column, and
    whether its levels are integers (:func:`pick_levels`).
    """
    statistics = []
    for part, part_params, columns in _parts(likelihood, params):
        # A head's output is a tensor or a tuple of tensors, all on the module's device.
        device = (part_params if torch.is_tensor(part_params) else part_params[0]).device
        everything = torch.arange(part.n_features, device=device)
        if isinstance(part, CategoricalLikelihood) and part.one_hot:
            for local, distribution in part.groups(part_params):
                local = everything if local is None else local
                where = local if columns is None else columns[local]
                levels = (part.offsets[local], part.binned[local])
                statistics.append((where, levels, distribution.probs))
        else:
            where = everything if columns is None else columns
            mean = part.mean(part_params)
            if power is not None and isinstance(part, GaussianLikelihood):
                mean = _unmapped_mean(part.distribution(part_params), where, power, missing)
            statistics.append((where, None, mean))
    return statistics


def _unmapped_mean(distribution, where, power, missing):
    """The decoder's Gaussian means, with those of power-mapped columns before the map.

    Only the entries of ``missing`` (rows by the table's features) are
    mapped back; the others keep their mean in the mapped units.
    """
    mapped, *arguments = (
        torch.as_tensor(value, device=distribution.mean.device)[where.cpu()] for value in power
    )
    mean = distribution.mean
    if not mapped.any():
        return mean
    arguments = [value[mapped].to(mean.dtype) for value in arguments]
    loc, scale = mean[..., mapped], distribution.stddev[..., mapped]
    entries = missing[:, where.to(missing.device)][:, mapped.to(missing.device)]
    # One argument per entry: each column's, repeated down the rows.
    arguments = [value.expand(entries.shape)[entries] for value in arguments]
    unmapped = loc.clone()
    unmapped[..., entries] = expected_inverse(loc[..., entries], scale[..., entries], *arguments)
    mean = mean.clone()
    mean[..., mapped] = unmapped
    return mean


def _weighted_sums(module, x, q, n_samples, chunk_size, statistics):
    """Importance-weighted sums over ``n_samples`` draws of ``q``, chunk by chunk.

    ``statistics(z)`` maps a chunk of draws, shape ``(n_draws, n_rows,
    n_components)``, to a list of tensors of shape ``(n_draws, n_rows, ...)``.
    Returns ``sum_k w_k`` and ``sum_k w_k**2`` (shape ``(n_rows,)``) and, for
    each statistic, ``sum_k w_k s(z_k)`` (its shape without the first
    dimension), all scaled by the same ``exp(-max_k log w_k)``: their ratios
    are exact, nothing overflows, and chunks are combined with running maxima,
    so memory does not grow with ``n_samples``.
    """
    running_max = None
    for start in range(0, n_samples, chunk_size):
        z = draw(q, (min(chunk_size, n_samples - start),))
        log_w = _log_weights(module, q, z, x)
        values = statistics(z)
        chunk_max = log_w.max(dim=0).values
        if running_max is None:
            running_max = chunk_max
            total = squared_total = torch.zeros_like(chunk_max)
            sums = [torch.zeros_like(value[0]) for value in values]
        new_max = torch.maximum(running_max, chunk_max)
        rescale = torch.exp(running_max - new_max)
        weights = torch.exp(log_w - new_max)
        total = total * rescale + weights.sum(dim=0)
        squared_total = squared_total * rescale**2 + (weights**2).sum(dim=0)
        for i, value in enumerate(values):
            shape = (*weights.shape, *([1] * (value.dim() - weights.dim())))
            sums[i] = sums[i] * rescale.view(shape[1:]) + (weights.view(shape) * value).sum(0)
        running_max = new_max
    return total, squared_total, sums


def _weighted_moments(module, x, q, n_samples, chunk_size):
    """Self-normalised mean, variance and effective sample size of ``n_samples`` draws of ``q``.

    The importance-weighted moments of ``z`` estimate those of the posterior
    ``p(z | x_obs)``. Shapes: ``(n_rows, n_components)`` twice, then
    ``(n_rows,)``.
    """
    total, squared_total, (first, second) = _weighted_sums(
        module, x, q, n_samples, chunk_size, lambda z: [z, z**2]
    )
    mean = first / total[:, None]
    variance = torch.clamp(second / total[:, None] - mean**2, min=0.0)
    return mean, variance, total**2 / squared_total


#: Proposal adaptation of :func:`adapted_proposal`: rounds, and the factor on
#: the moment-matched scale (a proposal wider than its target keeps the weights
#: bounded; one narrower does not).
ADAPTATION_ROUNDS = 2
ADAPTATION_WIDENING = 1.2


def adapted_proposal(module, x, n_samples, chunk_size, start=None):
    """The encoder's ``q(z | x_obs)`` moved to the importance-weighted posterior moments.

    The encoder sees a row's observed entries through one network for every
    pattern of missing entries, so its ``q(z | x_obs)`` is centred and scaled
    only approximately; on a linear-Gaussian model with a few entries missing
    it can leave an effective sample size of a few out of K. Adaptive
    importance sampling (population Monte Carlo, Cappé et al., 2004) corrects
    it: each of ``ADAPTATION_ROUNDS`` rounds draws ``n_samples // 2`` (at
    least one) proposals from the current Gaussian and replaces it by the
    Gaussian of their self-normalised mean and variance, its scale widened
    by ``ADAPTATION_WIDENING``. The variance is shrunk towards the previous
    proposal's by the effective sample size ``n_eff`` of the round,
    ``(n_eff * var_w + var_q) / (n_eff + 1)``, so that a round with one
    dominant weight does not collapse the proposal to a point.

    Any proposal gives a consistent self-normalised estimate; a better one
    gives a smaller error for the same K, for twice the draws (the tests
    check it against the closed form of a linear-Gaussian model).

    Parameters
    ----------
    module : VAEModule
    x : Tensor of shape (n_rows, n_features)
        Rows as the module sees them; NaN marks the entries to infer.
    n_samples : int
        K, the proposals of the estimate that follows; each round draws
        ``max(1, K // 2)``.
    chunk_size : int
        Proposals evaluated at once.
    start : torch.distributions.Independent, default=None
        The proposal to adapt, such as :func:`laplace_proposal`; the
        encoder's ``q(z | x_obs)`` when None.

    Returns
    -------
    proposal : torch.distributions.Independent
        A diagonal Gaussian over the latent space, one per row, to pass to
        :func:`conditional_mean` or :func:`conditional_draw`.
    """
    q = module.posterior(x) if start is None else start
    for _ in range(ADAPTATION_ROUNDS):
        mean, variance, n_eff = _weighted_moments(module, x, q, max(1, n_samples // 2), chunk_size)
        variance = (n_eff[:, None] * variance + q.variance) / (n_eff[:, None] + 1)
        scale = ADAPTATION_WIDENING * torch.sqrt(variance).clamp(min=MIN_POSTERIOR_SCALE)
        q = Independent(Normal(mean, scale, validate_args=False), 1)
    return q


#: Rows with an observed value farther than this from its column's training
#: mean, in training standard deviations, start from :func:`laplace_proposal`.
FAR_FROM_TRAINING = 8.0
#: Observed values farther than this, in the same units, are refused: a
#: training set of n rows holds none beyond sqrt(n - 1) (Samuelson's
#: inequality), so this is extrapolation far beyond any data the model saw.
MAX_FROM_TRAINING = 1e3
#: Damped Newton iterations of :func:`posterior_mode`, at most.
MODE_ITERATIONS = 100
MAX_DAMPING = 1e12


def _log_joint_derivatives(module, z, x):
    """``log p(x_obs, z)`` per row, its gradient and its Hessian in ``z`` (shape (n, k, k))."""
    z = z.detach().requires_grad_(True)
    value = module.log_prob_given(z, x) + module.prior.log_prob(z)
    (gradient,) = torch.autograd.grad(value.sum(), z, create_graph=True)
    # Rows are independent: the derivative of a column sum is each row's own.
    hessian = torch.stack(
        [
            torch.autograd.grad(gradient[:, j].sum(), z, retain_graph=True)[0]
            for j in range(z.shape[1])
        ],
        dim=1,
    )
    return value.detach(), gradient.detach(), hessian.detach()


def posterior_mode(module, x, z):
    """A mode of ``p(z | x_obs)`` and the curvature there, by damped Newton ascent.

    Levenberg-Marquardt steps ``(lambda I - H)^-1 g`` on ``log p(x_obs, z)``,
    row by row from ``z``: a step is taken where it raises the log-density
    (then ``lambda`` shrinks tenfold) and refused elsewhere (then it grows
    tenfold), for at most :data:`MODE_ITERATIONS` iterations or until every
    row's ``lambda`` reaches :data:`MAX_DAMPING`. On a linear-Gaussian model
    the log-density is quadratic and its mode is reached in a few steps from
    any start; a ReLU network's is piecewise smooth, and the search ends at
    a kink or a local mode.

    Returns
    -------
    mode : Tensor of shape (n_rows, n_components)
    precision : Tensor of shape (n_rows, n_components, n_components)
        ``-H`` at the mode.
    """
    eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    with torch.inference_mode(False), torch.enable_grad():
        x, z = x.clone(), z.clone()
        damping = torch.ones(len(z), dtype=z.dtype, device=z.device)
        value, gradient, hessian = _log_joint_derivatives(module, z, x)
        for _ in range(MODE_ITERATIONS):
            cholesky, info = torch.linalg.cholesky_ex(damping[:, None, None] * eye - hessian)
            step = torch.cholesky_solve(gradient[..., None], cholesky)[..., 0]
            candidate = torch.where((info == 0)[:, None], z + step, z)
            with torch.no_grad():
                new = module.log_prob_given(candidate, x) + module.prior.log_prob(candidate)
            better = (info == 0) & (new > value)
            damping = torch.where(better, damping / 10, damping * 10).clamp(max=MAX_DAMPING)
            if better.any():
                z = torch.where(better[:, None], candidate, z)
                value, gradient, hessian = _log_joint_derivatives(module, z, x)
            elif (damping == MAX_DAMPING).all():
                break
    return z.detach(), -hessian


def laplace_proposal(module, x):
    """A diagonal Gaussian at the posterior mode, scaled by the curvature there.

    The encoder learnt ``q(z | x_obs)`` on the training data; for a row far
    outside it, its mean can lie many posterior standard deviations from the
    posterior, beyond what importance sampling and its adaptation recover.
    This proposal starts at :func:`posterior_mode` (from the encoder's mean),
    with the standard deviations of the Laplace approximation widened by
    ``ADAPTATION_WIDENING``; where the curvature is not positive definite
    it keeps the encoder's scale.
    """
    q = module.posterior(x)
    mode, precision = posterior_mode(module, x, q.mean)
    cholesky, info = torch.linalg.cholesky_ex(precision)
    eye = torch.eye(mode.shape[1], dtype=mode.dtype, device=mode.device)
    ok = info == 0
    variance = torch.cholesky_inverse(torch.where(ok[:, None, None], cholesky, eye))
    variance = torch.diagonal(variance, dim1=-2, dim2=-1)
    scale = ADAPTATION_WIDENING * torch.sqrt(variance).clamp(min=MIN_POSTERIOR_SCALE)
    scale = torch.where(ok[:, None], scale, q.stddev)
    return Independent(Normal(mode, scale, validate_args=False), 1)


def _conditional_statistics(module, x, proposal, n_samples, chunk_size, power=None):
    """Self-normalised importance-sampling averages of :func:`_point_statistics`.

    Returns ``(layout, estimates)``: ``layout`` lists ``(columns, levels)``
    as :func:`_point_statistics` does, and ``estimates`` the matching
    averages over the proposals: conditional means, shape ``(n_rows,
    len(columns))``, and the mixture's category probabilities, shape
    ``(n_rows, len(columns), n_levels)``.
    """
    layout = []

    missing = torch.isnan(x)

    def values(z):
        statistics = _point_statistics(module.likelihood, module.decoder(z), power, missing)
        layout[:] = [(columns, levels) for columns, levels, _ in statistics]
        return [value for _, _, value in statistics]

    total, _, sums = _weighted_sums(module, x, proposal, n_samples, chunk_size, values)
    estimates = [weighted / total.view(-1, *([1] * (weighted.dim() - 1))) for weighted in sums]
    return layout, estimates


def conditional_mean(module, x, proposal, n_samples, chunk_size, power=None):
    """Self-normalised importance-sampling estimate of ``E[x | x_obs]``, row by row.

    Parameters
    ----------
    module : VAEModule
    x : Tensor of shape (n_rows, n_features)
        Rows as the module sees them (Gaussian columns standardised, which
        the caller undoes); NaN marks the entries to infer.
    proposal : torch distribution
        Where the proposals come from, batched over the rows: the encoder's
        ``module.posterior(x)`` or :func:`adapted_proposal`.
    n_samples : int
        Number of proposals K per row.
    chunk_size : int
        Proposals evaluated at once.
    power : tuple of ndarray, default=None
        The standardisation's ``power_arguments()``: the means of its
        power-mapped columns are returned before the map (undo it with
        ``inverse_transform(..., power=False)``). None: every mean in the
        module's units.

    Returns
    -------
    Tensor of shape (n_rows, n_features)
        ``x`` with each NaN replaced by its conditional mean (numeric columns)
        or the level :func:`pick_levels` picks (one-hot categorical columns).
    """
    layout, estimates = _conditional_statistics(module, x, proposal, n_samples, chunk_size, power)
    estimate = torch.empty_like(x)
    for (columns, levels), value in zip(layout, estimates, strict=True):
        if levels is None:
            estimate[:, columns] = value.to(x.dtype)
        else:
            offsets, binned = levels
            level = pick_levels(value, binned) + offsets.to(x.dtype)
            # argmax passes over NaN probabilities (weights that overflowed): keep NaN.
            estimate[:, columns] = level.masked_fill(torch.isnan(value).any(dim=-1), torch.nan)
    return torch.where(torch.isnan(x), estimate, x)


def pick_levels(probabilities, binned):
    """The code each categorical column is filled with, from its level probabilities.

    A label column gets its most probable code. A column of integer levels
    (``binned``, one bool per column) gets the code nearest its mean: its
    levels are numbers, and the mean is what a squared error rewards. Works
    on a tensor or an array of shape ``(n_rows, n_columns, n_levels)``.
    """
    codes = probabilities.argmax(-1)
    if not binned.any():
        return codes.to(probabilities.dtype) if torch.is_tensor(probabilities) else codes
    if torch.is_tensor(probabilities):
        steps = torch.arange(probabilities.shape[-1], dtype=probabilities.dtype)
        mean = (probabilities * steps.to(probabilities.device)).sum(-1)
        keep = torch.as_tensor(binned, device=probabilities.device)
        return torch.where(keep, torch.round(mean), codes.to(probabilities.dtype))
    mean = probabilities @ np.arange(probabilities.shape[-1], dtype=np.float64)
    return np.where(binned, np.round(mean), codes)


def conditional_expectation(module, x, proposal, n_samples, chunk_size, blocks, power=None):
    """The estimates of :func:`conditional_mean` before the categories are picked.

    What an ensemble averages over its members: the first ``n_features``
    columns hold ``x`` with each NaN of a numeric column replaced by its
    conditional mean (and 0 in one-hot categorical columns); after them come
    the mixture's category probabilities of each one-hot group, flattened.
    ``blocks`` (a list, filled in place) describes those groups as
    ``(columns, offsets, binned, n_levels)`` numpy arrays and ints, for
    :func:`pick_categories`. Other parameters as :func:`conditional_mean`.

    Returns
    -------
    Tensor of shape (n_rows, n_features + n_probabilities)
    """
    layout, estimates = _conditional_statistics(module, x, proposal, n_samples, chunk_size, power)
    estimate = torch.zeros_like(x)
    probabilities = []
    blocks.clear()
    for (columns, levels), value in zip(layout, estimates, strict=True):
        if levels is None:
            estimate[:, columns] = value.to(x.dtype)
            continue
        offsets, binned = (level.cpu().numpy() for level in levels)
        blocks.append((columns.cpu().numpy(), offsets, binned, value.shape[-1]))
        probabilities.append(value.flatten(start_dim=1).to(x.dtype))
    return torch.cat([torch.where(torch.isnan(x), estimate, x), *probabilities], dim=1)


def pick_categories(expectation, blocks, n_features):
    """Conditional means from (averaged) :func:`conditional_expectation` outputs.

    The numeric columns are the expectation's own; each one-hot categorical
    column gets the level :func:`pick_levels` picks from its (averaged)
    probabilities.
    Returns a float64 array of shape (n_rows, n_features).
    """
    filled = expectation[:, :n_features].copy()
    start = n_features
    for columns, offsets, binned, n_levels in blocks:
        stop = start + len(columns) * n_levels
        probabilities = expectation[:, start:stop].reshape(-1, len(columns), n_levels)
        filled[:, columns] = pick_levels(probabilities, binned) + offsets
        start = stop
    return filled


def conditional_draw(module, x, proposal, n_samples, chunk_size):
    """One sampling-importance-resampling draw of ``x_miss ~ p(x_miss | x_obs)`` per row.

    A proposal is picked among the K with probability ``w~_k``, by weighted
    reservoir sampling over the chunks (the pick of a chunk replaces the
    current one with probability the chunk's share of the total weight), then
    the missing entries are drawn from ``p(x | z_k)``. Parameters and shapes
    as :func:`conditional_mean`.
    """
    q = proposal
    rows = torch.arange(x.shape[0], device=x.device)
    log_total = None
    for start in range(0, n_samples, chunk_size):
        z = draw(q, (min(chunk_size, n_samples - start),))
        log_w = _log_weights(module, q, z, x)
        # NaN for a row without finite weights; its draw is made NaN below.
        pick = draw(Categorical(logits=log_w.T, validate_args=False))
        z_pick = z[pick.nan_to_num(0.0).long(), rows]
        chunk_log_total = torch.logsumexp(log_w, dim=0)
        if log_total is None:
            log_total, chosen = chunk_log_total, z_pick
            continue
        log_total = torch.logaddexp(log_total, chunk_log_total)
        accept = uniform(log_total.shape, log_total.dtype, log_total.device)
        replace = accept < torch.exp(chunk_log_total - log_total)
        chosen = torch.where(replace[:, None], z_pick, chosen)
    # A row whose weights overflowed has no draw: NaN, which the caller finds.
    chosen = chosen.masked_fill(~torch.isfinite(log_total)[:, None], torch.nan)
    values = module.sample_given(chosen).to(x.dtype)
    return torch.where(torch.isnan(x), values, x)


def impute_encoded(models, X, schema, *, sample, n_samples, random_state):
    """Fill the NaN entries of an encoded matrix with fitted VAEs.

    Parameters
    ----------
    models : sequence of FittedModel
        Fitted models (``VAETransformer._fitted_model()``): one model, or an
        ensemble of models fitted on the same data (the same schema). An
        ensemble's conditional distribution is the equal-weight mixture of
        its members' conditionals.
    X : ndarray of shape (n_rows, n_features)
        Encoded rows (``schema`` codes); NaN marks the entries to
        infer. A row may have no observed entry: its weights are then
        ``p(z) / q(z)`` and the result is the model's marginal mean or a
        draw from it.
    schema : TableSchema
        The models' schema.
    sample : bool
        Draw by sampling-importance-resampling (True) or take the
        conditional mean (False).
    n_samples : int
        Importance samples K per row (and member).
    random_state : int, RandomState instance or None

    Returns
    -------
    ndarray of shape (n_rows, n_features), float64
        ``X`` with its NaN entries filled in encoded units; observed entries
        are ``X``'s own values, bit for bit.

    Notes
    -----
    Every member draws its proposals from the same seed. For an ensemble,
    the mean is the mixture's: each numeric entry the average of the
    members' conditional means, each categorical entry the most probable
    level of the members' averaged probabilities. Draws (``sample=True``)
    come from one member picked uniformly at random for the call: each row's
    draw is one from the mixture, and all rows of a call share the member's
    parameters, as an imputed data set of multiple imputation shares one
    draw of the parameters.

    A dequantised integer column models ``x + U(0, 1)``: its observed
    integers are conditioned on as the bin centres ``x + 1/2``, and an
    inferred value is the floor of the model's value, so the mean of
    ``x + U`` becomes the integer ``rint(E[x + U] - 1/2)``, clipped to the
    column's range in training. A Gaussian puts some of its mass outside that
    range: fitted to a column that is almost always 0, whose dequantised
    values are uniform on [0, 1), some of its draws fall below 0, and
    unclipped those would be fills of -1.

    Observed values are checked first: outside the likelihood's support (a
    negative count, a level not seen in fit) or more than
    :data:`MAX_FROM_TRAINING` training standard deviations from their
    column's mean, they raise ``ValueError`` naming the entry; so does a row
    whose inference stays non-finite in float64.
    """
    models = list(models)
    rng = check_random_state(random_state)
    seed = draw_seed(rng)
    first = models[0]
    # An observed value the model gives no probability (a count below 0, a
    # level not seen in fit) leaves no finite weight: name it first.
    first.module.likelihood.check_support(X)
    model_input = X
    point_masses = [j for j, column in enumerate(schema.columns_) if column.value is not None]
    if point_masses:
        # The model neither reads a point mass nor depends on it: an observed
        # value stands for the column's one value (another has probability 0).
        model_input = X.astype(np.float64, copy=True)
        for j in point_masses:
            model_input[~np.isnan(X[:, j]), j] = schema.columns_[j].value
    check_within_reach(model_input, first, schema.names)
    columns = np.array([column.dequantize for column in schema.columns_])
    if columns.any():
        model_input = model_input.astype(np.float64, copy=True)
        block = model_input[:, columns]
        model_input[:, columns] = np.where(np.floor(block) == block, block + 0.5, block)

    def infer(model, how, unstandardise=True):
        values = _infer(model, model_input, how, n_samples, seed, unstandardise)
        check_finite_inference(values, X, model, schema.names)
        return values

    if sample:
        filled = infer(models[rng.randint(len(models))], conditional_draw)
    elif len(models) == 1:
        # Means of power-mapped columns come before the map, which is not undone.
        power = first.standardisation.power_arguments()
        values = infer(first, partial(conditional_mean, power=power), unstandardise=False)
        filled = first.standardisation.inverse_transform(values, power=False)
    else:
        total, blocks = 0.0, []
        for model in models:
            power = model.standardisation.power_arguments()

            def expectation(module, x, proposal, n_samples, chunk_size, power=power):
                return conditional_expectation(
                    module, x, proposal, n_samples, chunk_size, blocks, power
                )

            values = infer(model, expectation, unstandardise=False)
            numeric = values[:, : X.shape[1]]
            values[:, : X.shape[1]] = model.standardisation.inverse_transform(numeric, power=False)
            total = total + values
        filled = pick_categories(total / len(models), blocks, X.shape[1])
    if columns.any():
        filled[:, columns] = np.floor(filled[:, columns])
        if first.support is not None:
            low, high = first.support[:, columns]
            filled[:, columns] = np.clip(filled[:, columns], low, high)
    for j, column in enumerate(schema.columns_):
        if column.value is not None:  # a point mass: its one value, exactly
            filled[:, j] = column.value
    observed = ~np.isnan(X)
    filled[observed] = X[observed]
    return filled


def standardised_distances(model, X):
    """``|x - mean| / sd`` of each entry of encoded ``X`` in its column's training units.

    The units are those in which the encoder sees the column (the Gaussian
    columns' standardisation, then the encoder's own for the others); NaN
    where ``X`` is missing.
    """
    inputs = model.module.inputs
    loc, scale = (buffer.double().cpu().numpy() for buffer in (inputs.loc, inputs.scale))
    with np.errstate(over="ignore"):
        return np.abs((model.standardisation.transform(X) - loc) / scale)


def _infer(model, model_input, infer, n_samples, seed, unstandardise):
    """``infer(module, x, proposal, ...)`` on every row, the proposal adapted first.

    Rows are computed in float32 from the encoder's proposal. A row with an
    observed value more than :data:`FAR_FROM_TRAINING` training standard
    deviations from its column's mean, or with a non-finite result (its
    weights overflowed float32), is computed in float64 from
    :func:`laplace_proposal` instead, on the same stream of draws; a row for
    which even that fails keeps its non-finite values, which
    :func:`check_finite_inference` reports.
    """
    width = model.module.widest_layer()
    batch_size = IWAE_BATCH_SIZE
    chunk_size = max(1, IWAE_BUDGET // (batch_size * max(width, model_input.shape[1])))

    def run(rows, dtype, laplace):
        def adapted_inference(module, x):
            start = laplace_proposal(module, x) if laplace else None
            proposal = adapted_proposal(module, x, n_samples, chunk_size, start)
            return infer(module, x, proposal, n_samples, chunk_size)

        return model.evaluate(
            adapted_inference, rows, batch_size=batch_size, dtype=dtype, unstandardise=unstandardise
        )

    distances = standardised_distances(model, model_input)
    far = (distances > FAR_FROM_TRAINING).any(axis=1)
    with torch_seed(seed, model.device):
        filled = None
        if not far.all():
            # A value beyond float32's range becomes inf here, and its row is redone.
            with np.errstate(over="ignore"):
                near = run(model_input[~far], torch.float32, laplace=False)
            filled = np.empty((len(model_input), near.shape[1]))
            filled[~far] = near
            far[~far] = ~np.isfinite(near).all(axis=1)
        if far.any():
            redone = run(model_input[far], torch.float64, laplace=True)
            if filled is None:
                filled = np.empty((len(model_input), redone.shape[1]))
            filled[far] = redone
    return filled


def _farthest_entry(model, X, row, names):
    """How messages name the observed entry of ``row`` farthest from the training data."""
    distance = standardised_distances(model, X[row : row + 1])[0]
    column = int(np.argmax(np.where(np.isnan(X[row]), -1.0, distance)))
    return (
        f"its value {X[row, column]:.6g} in column {short_repr(names[column])} lies "
        f"{distance[column]:.3g} training standard deviations from the column's mean"
    )


def check_within_reach(X, model, names):
    """Raise ``ValueError`` for an observed entry beyond :data:`MAX_FROM_TRAINING`."""
    distances = standardised_distances(model, X)
    beyond = np.argwhere(np.nan_to_num(distances, nan=0.0) > MAX_FROM_TRAINING)
    if len(beyond):
        row = beyond[0][0]
        raise ValueError(
            f"Cannot condition on row {row}: {_farthest_entry(model, X, row, names)}. The "
            f"model conditions only on values within {MAX_FROM_TRAINING:g} of them (a training "
            "set of n rows holds none beyond sqrt(n - 1)); farther out its answer would be "
            "extrapolation with no support in the data. Clip or rescale such values, or mark "
            "them missing (NaN)."
        )


def check_finite_inference(filled, X, model, names):
    """Raise ``ValueError`` naming the first row left non-finite by inference.

    Parameters
    ----------
    filled : ndarray of shape (n_rows, n_columns)
        What inference computed for each row.
    X : ndarray of shape (n_rows, n_features)
        The encoded rows, NaN where an entry was inferred.
    model : FittedModel
        The model that computed ``filled``.
    names : list
        The column names, for the message.
    """
    failed = np.flatnonzero(~np.isfinite(filled).all(axis=1))
    if not len(failed):
        return
    row = failed[0]
    if np.isnan(X[row]).all():
        where = "it has no observed entry"
    else:
        where = _farthest_entry(model, X, row, names)
    raise ValueError(
        f"Inference gave non-finite values for row {row} ({where}): the model's importance "
        "weights overflow even in float64. Clip or rescale extreme values, or mark them "
        "missing (NaN); if the row is ordinary, refit the model."
    )
