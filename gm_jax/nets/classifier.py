"""A small convolutional image classifier whose penultimate layer serves as a feature extractor.

It is the network behind the domain features (:mod:`gm_jax.metrics.domain`): FID/KID/PRDC computed in the
feature space of a classifier trained on the data domain itself, the standard substitute where Inception-v3
features are meaningless (8x8 digits, MNIST) -- e.g. the LeNet features of Lucic et al. 2018 ("Are GANs
Created Equal?") and the trained-classifier features of Binkowski et al. 2018 ("Demystifying MMD GANs").
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

__all__ = ["ConvClassifier"]


class ConvClassifier(nn.Module):
    """3x3 conv stack -> global average pool -> dense ReLU features -> class logits.

    Input images [N, H, W, C], float in [0, 1]; they are mapped to [-1, 1] inside (the model-space convention).
    Each conv ("conv_i", ``widths[i]`` channels, SAME padding) is followed by a ReLU and, while the map is
    still larger than ``pool_above`` on both sides, a 2x2 max-pool: 8x8 digits run at 8x8 then 4x4, 28x28
    MNIST ends at 3x3 and 32x32 CIFAR at 4x4 with three convs. No BatchNorm and no dropout, so the network has
    no state and a row's output does not depend on the rest of the batch.

    Returns a dict: ``features`` [N, feature_dim] (after the ReLU of dense layer "features") and ``logits``
    [N, num_classes] (dense layer "logits"). The parameter names make the configuration (all but
    ``pool_above``) recoverable from the parameter shapes (see :func:`gm_jax.metrics.domain.domain_apply`).
    """

    num_classes: int
    widths: Sequence[int] = (16, 32, 32)
    feature_dim: int = 128
    pool_above: int = 4

    @nn.compact
    def __call__(self, images):
        x = 2.0 * images.astype(jnp.float32) - 1.0
        for i, width in enumerate(self.widths):
            x = nn.relu(nn.Conv(width, (3, 3), padding="SAME", name=f"conv_{i}")(x))
            if min(x.shape[1], x.shape[2]) > self.pool_above:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = jnp.mean(x, axis=(1, 2))
        features = nn.relu(nn.Dense(self.feature_dim, name="features")(x))
        logits = nn.Dense(self.num_classes, name="logits")(features)
        return {"features": features, "logits": logits}
