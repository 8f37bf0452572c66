"""
==========================================================
Reconstructing and interpolating digits with a VAE
==========================================================

A variational autoencoder (:class:`~sklearn_vae.VAETransformer`) has an
encoder and a decoder: ``transform`` maps an image to the mean of its
approximate posterior :math:`q(z \\mid x)`, and ``inverse_transform`` maps a
latent point back to the mean of :math:`p(x \\mid z)`, the expected image.
Chaining the two reconstructs an image from its latent code, as
``PCA.inverse_transform(PCA.transform(X))`` does for PCA. Decoding points on
a straight line between two latent codes gives a path between two digits.
"""

# SPDX-License-Identifier: BSD-3-Clause

# %%
# Fitting the VAE
# ---------------
#
# We fit a VAE with 16 latent variables and a categorical decoder (a
# distribution over the 17 intensity levels of every pixel) on three quarters
# of the digits, and look at images it has never seen. For comparison, PCA
# with the same number of components is fitted on the same images.
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from sklearn_vae import VAETransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# The network is small: one torch thread is about as fast as two on an idle
# machine, and much faster on a busy one.
torch.set_num_threads(1)

vae = VAETransformer(n_components=16, likelihood="categorical", random_state=0).fit(X_train)
pca = PCA(n_components=16).fit(X_train)

# %%
# Reconstructions
# ---------------
#
# The VAE's reconstruction is the decoder's mean at the posterior mean,
# ``vae.inverse_transform(vae.transform(X))``. It is the expected intensity of
# each pixel, so it is not an integer image and it is smoother than a draw
# from the model. We compare it with PCA's reconstruction from the same
# number of components, on the first 12 test images and, through the mean
# squared error (in squared intensity levels), on all 450.
reconstructions = {
    "VAE": vae.inverse_transform(vae.transform(X_test)),
    "PCA": pca.inverse_transform(pca.transform(X_test)),
}
for name, X_rec in reconstructions.items():
    mse = np.mean((X_test - X_rec) ** 2)
    print(f"{name} reconstruction, 16 components: mean squared error {mse:.2f} per pixel")

n_show = 12
rows = {"test image": X_test[:n_show]}
rows.update({f"{name}, 16 comp.": X_rec[:n_show] for name, X_rec in reconstructions.items()})
fig, axes = plt.subplots(len(rows), n_show, figsize=(n_show * 0.8 + 1.4, len(rows) * 0.9 + 0.6))
for row, (name, images) in zip(axes, rows.items(), strict=True):
    for ax, image in zip(row, images, strict=True):
        ax.imshow(np.clip(image, 0, 16).reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
fig.suptitle("Test digits and their reconstructions from 16 latent components")
fig.tight_layout()
fig.savefig("plot_reconstruction.png", dpi=100)

# %%
# Interpolating in the latent space
# ---------------------------------
#
# We take pairs of test images of different digits (the first test image of
# each digit), encode both, and decode eleven points evenly spaced on the
# segment between their latent codes (``t = 0`` is the first image's code,
# ``t = 1`` the second's). The ends of each row show the two test images
# themselves. Under each latent path, a plain cross-fade in pixel space,
# :math:`(1 - t)\, x_a + t\, x_b`, shows what interpolating without a model
# looks like.
pairs = [(1, 7), (3, 8), (4, 9), (0, 6)]
steps = np.linspace(0, 1, 11)
Z_test = vae.transform(X_test)

rows = {}
for a, b in pairs:
    i, j = np.flatnonzero(y_test == a)[0], np.flatnonzero(y_test == b)[0]
    Z_path = (1 - steps[:, None]) * Z_test[i] + steps[:, None] * Z_test[j]
    X_path = (1 - steps[:, None]) * X_test[i] + steps[:, None] * X_test[j]
    rows[f"{a} to {b}\nlatent"] = (X_test[i], vae.inverse_transform(Z_path), X_test[j])
    rows[f"{a} to {b}\npixels"] = (X_test[i], X_path, X_test[j])

n_cols = len(steps) + 2
fig, axes = plt.subplots(len(rows), n_cols, figsize=(n_cols * 0.85 + 1.2, len(rows) * 0.95 + 0.8))
for row, (name, (start, path, end)) in zip(axes, rows.items(), strict=True):
    for ax, image in zip(row, [start, *path, end], strict=True):
        ax.imshow(np.clip(image, 0, 16).reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
axes[0, 0].set_title("image a", fontsize=9)
axes[0, -1].set_title("image b", fontsize=9)
for ax, t in zip(axes[0, 1:-1], steps, strict=True):
    ax.set_title(f"t={t:.1f}", fontsize=9)
fig.suptitle("Decoded latent interpolations (latent) and pixel cross-fades (pixels)")
fig.tight_layout()
fig.savefig("plot_reconstruction_interpolation.png", dpi=100)

# %%
# Conclusion
# ----------
#
# PCA reconstructs the test digits with a smaller squared error than the
# VAE. That is what PCA is built for: it is the best linear reconstruction
# in squared error. The VAE is trained for something else, the likelihood:
# the KL term of its objective keeps the codes imprecise, and the decoder
# predicts a whole distribution over intensities for every pixel, whose mean
# is blurry where the model is unsure. As a density model the VAE is far
# ahead of PCA (see the digits density example), so reconstruction error is
# a poor guide to the quality of a generative model.
#
# Along a latent path, every decoded image is a single blurry shape that
# changes gradually, while a pixel cross-fade superimposes the two digits
# and fades one into the other. The ends of a latent path are
# reconstructions, not the images themselves, and can miss details: compare
# the columns ``t=0.0`` and ``t=1.0`` with the test images beside them.
