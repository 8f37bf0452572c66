"""
=================================================
A two-dimensional latent space of the digits
=================================================

A variational autoencoder (:class:`~sklearn_vae.VAETransformer`) is also a
transformer: ``transform`` maps each image to the mean of its approximate
posterior :math:`q(z \\mid x)`. With ``n_components=2`` that gives a 2-D map
of the data, which we compare here with the two linear latent-variable
models of scikit-learn, :class:`~sklearn.decomposition.PCA` and
:class:`~sklearn.decomposition.FactorAnalysis`. None of the three models sees
the digit labels; we use them only to colour the points.
"""

# SPDX-License-Identifier: BSD-3-Clause

# %%
# Fitting the three models
# ------------------------
#
# The pixels are integers from 0 to 16, so the VAE uses a categorical decoder
# (one distribution over the 17 intensity levels per pixel), fitted on the raw
# integers. PCA and factor analysis are fitted on the same data.
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from sklearn_vae import VAETransformer

X, y = load_digits(return_X_y=True)

# The network is small: one torch thread is about as fast as two on an idle
# machine, and much faster on a busy one.
torch.set_num_threads(1)

embeddings = {
    "VAE (categorical decoder)": VAETransformer(
        n_components=2, likelihood="categorical", random_state=0
    ).fit_transform(X),
    "PCA": PCA(n_components=2).fit_transform(X),
    "FactorAnalysis": FactorAnalysis(n_components=2, random_state=0).fit_transform(X),
}

# %%
# How well are the classes separated?
# -----------------------------------
#
# A simple way to put a number on a 2-D map is to ask how well a
# nearest-neighbour classifier predicts the digit from the two coordinates
# alone (5-fold cross-validated accuracy). The maps themselves were learned
# without labels, on all the images.
accuracies = {
    name: cross_val_score(KNeighborsClassifier(n_neighbors=10), Z, y, cv=5).mean()
    for name, Z in embeddings.items()
}
for name, accuracy in accuracies.items():
    print(f"{name:>26}: 10-NN accuracy from 2 coordinates = {accuracy:.3f}")

# %%
# Plotting the latent spaces
# --------------------------
#
# Each panel shows one point per image, drawn as its digit and coloured by
# it, in the style of scikit-learn's manifold-learning examples.
colors = plt.cm.tab10(np.arange(10))
fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
for ax, (name, Z) in zip(axes, embeddings.items(), strict=True):
    for digit in range(10):
        points = Z[y == digit]
        ax.scatter(
            points[:, 0], points[:, 1], marker=f"${digit}$", s=30, alpha=0.7, color=colors[digit]
        )
    ax.set_title(f"{name}\n10-NN accuracy {accuracies[name]:.2f}")
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
handles = [
    plt.Line2D([], [], marker=f"${digit}$", ms=9, ls="", color=colors[digit], label=str(digit))
    for digit in range(10)
]
fig.legend(handles=handles, title="digit", loc="center right")
fig.suptitle("Digits mapped to two latent dimensions (1797 images, labels not used in fitting)")
fig.tight_layout(rect=(0, 0, 0.94, 1))
fig.savefig("plot_latent_space.png", dpi=100)

# %%
# Conclusion
# ----------
#
# PCA and factor analysis are linear: with two components, the best they can
# do is a projection, in which many classes overlap. The VAE's encoder is a
# neural network, and its two latent coordinates put most digit classes in
# regions of their own (a few still meet in the centre), although it
# was never shown the labels; a nearest-neighbour classifier reads the digit
# from them much more accurately. The VAE's axes have no particular meaning,
# since its prior is rotation-invariant. And a 2-D latent space is far too
# small for a good density model: see the other examples for the latent
# sizes that cross-validation prefers.
