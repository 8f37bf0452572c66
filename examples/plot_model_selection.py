"""
=====================================================
Choosing the latent size of a VAE by cross-validation
=====================================================

:class:`~sklearn_vae.VAETransformer` is a scikit-learn density estimator:
its ``score`` is the mean evidence lower bound (ELBO) of the data, in nats
per sample, higher is better. :class:`~sklearn.model_selection.GridSearchCV`
therefore needs no custom scorer to choose its hyperparameters by held-out
likelihood, exactly as for :class:`~sklearn.mixture.GaussianMixture` or
:class:`~sklearn.neighbors.KernelDensity`. The ELBO is only a lower bound,
though, and :func:`~sklearn_vae.make_log_likelihood_scorer` ranks the
candidates by the tighter importance-weighted estimate of the log-likelihood
instead. Here we choose the size of the latent space, ``n_components``, and
the weight ``beta`` of the KL term, for the handwritten digits, under both
criteria.
"""

# SPDX-License-Identifier: BSD-3-Clause

# %%
# The data
# --------
#
# The pixels of the digits are integers from 0 to 16, and we model them with
# a categorical decoder: each pixel gets a distribution over its 17 levels.
# The scores are then log-probabilities of the integer images, and the raw
# integers go to the estimator directly.
#
# No scaler is needed in front of the VAE, and one would do harm. The VAE
# standardises its input internally, and its scores are always in the units
# of the data as passed in. In a
# :class:`~sklearn.pipeline.Pipeline` with a
# :class:`~sklearn.preprocessing.StandardScaler`, the pipeline's ``score``
# would be the log-density of the *scaled* data, in different units, and a
# categorical decoder needs integers in any case.
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from sklearn_vae import VAETransformer, make_log_likelihood_scorer

X = load_digits().data
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

# %%
# The search
# ----------
#
# Thirty VAEs are trained (five latent sizes, two values of ``beta``, three
# folds). To keep this example short, every candidate gets a one-hidden-layer
# network and a fixed budget of 40 epochs without early stopping. In a real
# search, keep the default early stopping (``early_stopping=True``), which
# chooses the number of epochs on held-out data. With a fixed budget, the
# VAE warns that it stopped at ``max_iter``; we silence that warning here.
#
# The networks are small, so one torch thread is about as fast as two on an
# idle machine, and much faster on a busy one.
torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=ConvergenceWarning)

vae = VAETransformer(
    likelihood="categorical",
    hidden_layer_sizes=(128,),
    learning_rate_init=2e-3,
    max_iter=40,
    early_stopping=False,
    random_state=0,
)
param_grid = {"n_components": [2, 4, 8, 16, 32], "beta": [0.5, 1.0]}


def mean_elbo(estimator, X, y=None):
    """The estimator's own ``score``: the mean ELBO."""
    return estimator.score(X)


# %%
# Two criteria are computed on every held-out fold: the mean ELBO (the
# default ``score``) and the mean importance-weighted estimate of
# :math:`\log p(x)` with K = 100 samples. The search refits the candidate
# that is best by the second.
log_likelihood = make_log_likelihood_scorer(n_importance_samples=100)
scoring = {"ELBO": mean_elbo, "log-likelihood": log_likelihood}
search = GridSearchCV(vae, param_grid, scoring=scoring, refit="log-likelihood", cv=3)
search.fit(X_train)

# %%
# ``beta`` only changes the training objective: with ``beta=0.5`` the KL
# term is down-weighted during training, but both criteria always score the
# model with ``beta=1``, as a density. The search therefore compares all
# candidates on the same footing, in nats per image.
results = pd.DataFrame(search.cv_results_)
results = results.rename(
    columns={
        "param_n_components": "n_components",
        "param_beta": "beta",
        "mean_test_ELBO": "ELBO",
        "rank_test_ELBO": "rank by ELBO",
        "mean_test_log-likelihood": "log-likelihood",
        "rank_test_log-likelihood": "rank by log-likelihood",
    }
)
results["gap"] = results["log-likelihood"] - results["ELBO"]
columns = ["n_components", "beta", "ELBO", "log-likelihood", "gap", "rank by ELBO"]
columns.append("rank by log-likelihood")
print(
    results[columns]
    .sort_values("rank by log-likelihood")
    .to_string(index=False, float_format="{:.2f}".format)
)
print()
for criterion in ["ELBO", "log-likelihood"]:
    best = results.loc[results[f"rank by {criterion}"].idxmin()]
    print(f"Best by {criterion}: n_components={int(best['n_components'])}, beta={best['beta']}")
test_log_likelihood = search.score(X_test)
print(f"Test-set log-likelihood of the refitted model: {test_log_likelihood:.2f} nats per image")

# %%
# Plotting the cross-validated scores
# -----------------------------------
#
# One panel per criterion and one line per value of ``beta``, with the
# standard deviation over the three folds as error bars; the star marks the
# best candidate under that criterion.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
offsets = {0.5: -0.03, 1.0: 0.03}  # a small shift, so that the error bars do not overlap
for ax, criterion in zip(axes, ["ELBO", "log-likelihood"], strict=True):
    for beta, group in results.groupby("beta"):
        group = group.sort_values("n_components")
        n_components = group["n_components"].to_numpy(dtype=float)
        ax.errorbar(
            n_components * 2 ** offsets[beta],
            group[criterion],
            yerr=group[f"std_test_{criterion}"],
            marker="o",
            capsize=4,
            label=f"beta = {beta}",
        )
    best = results.loc[results[f"rank by {criterion}"].idxmin()]
    ax.plot(
        best["n_components"] * 2 ** offsets[best["beta"]],
        best[criterion],
        marker="*",
        markersize=18,
        color="gold",
        markeredgecolor="black",
        ls="",
        label="best",
        zorder=3,
    )
    ax.set_xscale("log", base=2)
    ax.set_xticks(param_grid["n_components"], [str(n) for n in param_grid["n_components"]])
    ax.set_xlabel("latent size (n_components)")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("3-fold cross-validated score (nats per image)")
axes[0].set_title("mean ELBO (the default score)")
axes[1].set_title("importance-weighted log-likelihood, K = 100")
axes[1].legend()
fig.suptitle("Choosing the latent size of a categorical VAE on digits")
fig.tight_layout()
fig.savefig("plot_model_selection.png", dpi=100)

# %%
# Conclusion
# ----------
#
# The held-out scores rise over the first few latent dimensions and then fall
# again: with about 900 training images per fold and the same training budget
# for everyone, more latent dimensions do not pay for themselves.
# Training with the full KL weight, ``beta=1``, gives the better score at
# every size under both criteria, as expected since ``beta=1`` is exactly the
# objective being scored; down-weighting the KL term is a way to trade
# density for other properties of the latent space, not a way to improve the
# likelihood.
#
# The two criteria pick the same model here, but they do not rank the others
# alike. The gap between the log-likelihood and the ELBO (the ``gap`` column
# of the table above) grows with the latent size, so the ELBO penalises large
# latent spaces for the looseness of the bound rather than for a worse
# density. When candidates
# differ in their latent size, rank them with
# :func:`~sklearn_vae.make_log_likelihood_scorer`; the ELBO is the cheaper
# criterion (no importance samples) and is fine for choices that leave the
# bound's gap alone.
#
# Because both criteria are mean log-densities, the same ``GridSearchCV``
# call can compare the VAE with a :class:`~sklearn.mixture.GaussianMixture`
# or a :class:`~sklearn.neighbors.KernelDensity` on equal terms:
# :func:`~sklearn_vae.make_log_likelihood_scorer` scores estimators without
# ``log_likelihood`` by the mean of their ``score_samples``.
