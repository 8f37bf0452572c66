"""
=================================================
Your own encoder and decoder: a convolutional VAE
=================================================

:class:`~sklearn_vae.VAETransformer` builds its encoder and decoder as
multilayer perceptrons by default, but it takes any torch module in their
place. Here we plug a small convolutional encoder and decoder into it, for
the 8x8 handwritten digits, and compare it with the default MLP: the
held-out log-likelihood of each, in nats per image, and digits sampled from
each.

The library keeps everything that is not the networks' trunks: the
posterior head, the likelihood's output layer, the prior, the bounds, the
standardisation, the missing-value mask and the units of the scores. The two
models are therefore scored in exactly the same units.
"""

# SPDX-License-Identifier: BSD-3-Clause

# %%
# The contract
# ------------
#
# The encoder maps the encoder input, a float32 tensor of shape
# ``(n_rows, n_inputs)``, to one hidden vector per row, ``(n_rows,
# n_hidden)``. The library adds the affine posterior head that turns the
# hidden vector into the mean and scale of :math:`q(z \mid x)`. Here the 64
# pixels are standardised by the library (per pixel: the training mean and
# standard deviation), so the encoder reshapes them into an image and
# convolves.
#
# The decoder maps latent points, ``(n_rows, n_components)``, to a hidden
# vector per row; the likelihood's output layer (here, 17 logits per pixel)
# is added by the library.
#
# A class is built as ``encoder(n_inputs=..., **encoder_params)`` and
# ``decoder(n_components=..., **decoder_params)``, under the seed drawn from
# ``random_state``. Its output width is measured by a dry run.
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from sklearn_vae import VAETransformer


class ConvEncoder(nn.Module):
    """8x8 image -> ``channels`` x 4 x 4 feature map, flattened."""

    def __init__(self, n_inputs, channels=16):
        super().__init__()
        if n_inputs != 64:
            raise ValueError(f"ConvEncoder reads 8x8 images, got {n_inputs} inputs.")
        self.layers = nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )

    def forward(self, x):
        return self.layers(x)


class ConvDecoder(nn.Module):
    """z -> ``channels`` x 4 x 4 -> upsampled to 8x8 feature maps, flattened."""

    def __init__(self, n_components, channels=16):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_components, channels * 4 * 4),
            nn.ReLU(),
            nn.Unflatten(1, (channels, 4, 4)),
            nn.ConvTranspose2d(channels, channels, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 4, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )

    def forward(self, z):
        return self.layers(z)


# %%
# The data and the two models
# ---------------------------
#
# Both models give each pixel a categorical distribution over its 17
# intensity levels, so their scores are log-probabilities of the integer
# images. Training stops early on the ELBO of a held-out tenth of the
# training images, and the best weights are kept. One torch thread keeps
# the run time short and predictable on a busy machine.
torch.set_num_threads(1)
X = load_digits().data
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

common = dict(n_components=16, likelihood="categorical", random_state=0)
models = {
    "MLP (256, 256), the default at this size": VAETransformer(**common),
    "convolutional": VAETransformer(
        **common,
        encoder=ConvEncoder,
        decoder=ConvDecoder,
        encoder_params={"channels": 16},
        decoder_params={"channels": 16},
    ),
}
for name, vae in models.items():
    vae.fit(X_train)
    n_weights = sum(p.numel() for p in vae.net_.module_.parameters())
    print(f"{name}: {vae.n_iter_} epochs, {n_weights} weights")

# %%
# Held-out log-likelihood
# -----------------------
#
# ``log_likelihood`` is the importance-weighted estimate of
# :math:`\log p(x)`; ``score`` is the mean ELBO, a looser lower bound.
scores = {}
for name, vae in models.items():
    log_lik = vae.log_likelihood(X_test, n_importance_samples=200, random_state=0).mean()
    scores[name] = log_lik
    print(f"{name}: log-likelihood {log_lik:.1f}, ELBO {vae.score(X_test):.1f} nats per image")

# %%
# Samples side by side
# --------------------
#
# Draws :math:`z \sim p(z)`, then :math:`x \sim p(x \mid z)`, next to
# real test images.
panels = {"real test images": X_test[:25]}
for name, vae in models.items():
    panels[f"{name}\nlog-likelihood {scores[name]:.1f} nats"] = vae.sample(25, random_state=0)

fig, axes = plt.subplots(1, 3, figsize=(10, 4.2), layout="constrained")
fig.get_layout_engine().set(wspace=0.06)
for ax, (title, images) in zip(axes, panels.items(), strict=True):
    tiles = np.pad(images.reshape(25, 8, 8), ((0, 0), (1, 1), (1, 1)))  # a blank border
    grid = tiles.reshape(5, 5, 10, 10).transpose(0, 2, 1, 3).reshape(50, 50)
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=16)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
fig.suptitle("Digits: held-out log-likelihood (IWAE, K = 200) and samples")
fig.savefig("plot_custom_network.png", dpi=100)
