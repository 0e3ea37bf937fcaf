"""Sampling a normalizing flow by running it backwards (e.g. Dinh et al. 2017; Kingma & Dhariwal 2018)."""

from __future__ import annotations

import jax

from gm_jax.shapes import check_output


def reverse_flow_sample(inverse_fn, key, shape, *, temperature: float = 1.0, base_sample=None):
    """x = inverse_fn(temperature * z) with z ~ base of ``shape`` [N, ...]; returns x [N, ...].

    ``inverse_fn(z) -> x`` is the flow's sampling direction. ``base_sample(key, shape) -> z`` draws the
    base distribution, any callable (default the standard normal, ``jax.random.normal``); its output shape
    is checked at trace time. ``temperature`` < 1 trades diversity for fidelity by shrinking the latent
    (Glow, Kingma & Dhariwal 2018, section 5; for a Gaussian base, z ~ N(0, temperature^2 I)).
    """
    if base_sample is None:
        z = jax.random.normal(key, shape)
    else:
        z = check_output("reverse_flow_sample", "base_sample(key, shape)", base_sample(key, shape), shape)
    return inverse_fn(temperature * z)
