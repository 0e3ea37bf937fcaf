"""Contrastive divergence for energy-based models (Hinton 2002; the form and regulariser of Du & Mordatch
2019, "Implicit Generation and Generalization in Energy-Based Models", eqs. 2 and 4).

Sign convention: an energy E_theta(x) defines the unnormalised density p_theta(x) ∝ exp(-E_theta(x)), so
low energy = high density. The maximum-likelihood gradient is
grad_theta -log p(x+) = grad_theta E(x+) - E_{x- ~ p_theta}[grad_theta E(x-)], estimated with negatives x-
drawn by MCMC (e.g. :func:`gm_jax.samplers.langevin_sample`) and treated as constants.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError
from gm_jax.shapes import check_batch_values

__all__ = ["contrastive_divergence_loss"]


def contrastive_divergence_loss(energy_fn, x_pos, x_neg, *, alpha: float = 1.0, return_aux: bool = False):
    """Per-example contrastive divergence with Du & Mordatch's energy-magnitude regulariser:

        loss_i = E(x+_i) - E(stop_grad(x-_i)) + alpha * (E(x+_i)^2 + E(x-_i)^2).

    Minimising it pushes the energy of data down and the energy of the model's samples up (its gradient
    in theta is the CD estimate of the negative log-likelihood gradient); the L2 term keeps energies near
    0, without which they can drift to large magnitudes and the Langevin chains' gradients with them.
    No gradient flows into the sampler: x- is wrapped in ``stop_gradient``.

    Args:
      energy_fn: ``E(x [B, ...]) -> [B]`` (a closure over the parameters being trained).
      x_pos: data [B, ...]. x_neg: negative samples [B, ...] (same shape).
      alpha: weight of the regulariser (>= 0; Du & Mordatch use 1).
      return_aux: also return {"e_pos": E(x+) [B], "e_neg": E(x-) [B]}; their means' difference is the
        CD gap, negative once the model separates data from its samples.

    Returns:
      loss [B] (and aux with ``return_aux``).
    """
    if alpha < 0:
        raise GMJaxError(f"contrastive_divergence_loss: alpha must be >= 0, got {alpha}")
    if x_pos.shape != x_neg.shape:
        raise GMJaxError(f"contrastive_divergence_loss: x_pos and x_neg must have the same shape [B, ...], got "
                         f"{x_pos.shape} and {x_neg.shape}")
    # One call on the concatenated batch: half the network ops to compile and one larger matmul per
    # layer. Fine because the energy of an example may not depend on the rest of its batch (no batch norm).
    b = x_pos.shape[0]
    energies = energy_fn(jnp.concatenate([x_pos, jax.lax.stop_gradient(x_neg).astype(x_pos.dtype)], axis=0))
    energies = check_batch_values("contrastive_divergence_loss", "energy_fn(x)", energies, 2 * b).astype(jnp.float32)
    e_pos, e_neg = energies[:b], energies[b:]
    loss = e_pos - e_neg + alpha * (jnp.square(e_pos) + jnp.square(e_neg))
    return (loss, {"e_pos": e_pos, "e_neg": e_neg}) if return_aux else loss
