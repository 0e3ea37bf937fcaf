"""Training-time data augmentation, as pure functions of (batch, key).

Random horizontal flips are the only augmentation of Ho et al. (2020, "Denoising Diffusion Probabilistic
Models", appendix B: CIFAR-10 "with random horizontal flips"), and of most CIFAR-10 recipes after them
(Song et al. 2021's score SDEs; Nichol & Dhariwal 2021). A flip changes neither a pixel's level nor the
data's distribution when the class of images is mirror-symmetric, so likelihoods stay comparable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError

__all__ = ["random_hflip"]


def random_hflip(images, key):
    """Each image of ``images`` [B, H, W, C] mirrored left-right with probability 1/2, independently.

    Returns an array of the same shape and dtype.
    """
    if images.ndim != 4:
        raise GMJaxError(f"random_hflip: images must be [B, H, W, C], got shape {tuple(images.shape)}")
    flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flip, images[:, :, ::-1, :], images)
