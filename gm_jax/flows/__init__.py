"""Normalizing flows as pure functions: bijectors with explicit params.

Direction convention. ``forward`` is the *normalizing* direction, data x -> latent z, the one a density
needs: log p(x) = log p_base(z) + log|det dz/dx| (:func:`flow_log_prob`). ``inverse`` is the *sampling*
direction z -> x. Every bijector is a small frozen object with

- ``init(key, x) -> params``: x is an example batch [B, ...], seen by data-dependent inits (ActNorm);
- ``forward(params, x) -> (z, log_det [B])``, log_det = log|det dz/dx| summed over the event;
- ``inverse(params, z) -> (x, log_det [B])``, log_det = log|det dx/dz| (minus forward's at x).

Params are plain pytrees. Compose with :func:`chain` (different layers) and :func:`repeat` (a homogeneous
stack under ``lax.scan``; a block alternates its masks inside itself so the stack stays homogeneous).

Conditioners (the networks inside couplings and autoregressive layers) are any network as two plain
functions, :class:`Conditioner` ``(init, apply)``: ``init(key, x_example [B, *event]) -> params`` and
``apply(params, x [B, *event]) -> raw [B, *event, num_params]``, checked at trace time. A hand-written
pure-JAX MLP with a dict of arrays works as well as :func:`mlp_conditioner` and :func:`conv_conditioner`
(pure JAX, zero-initialised outputs, so a fresh coupling is the identity); Flax modules go through
:func:`gm_jax.nets.flax_conditioner`. This package does not import Flax.

The base distribution is a choice: :func:`flow_log_prob` takes ``base_log_prob=`` (z [B, ...] -> [B],
default N(0, I)) and :func:`gm_jax.samplers.reverse_flow_sample` takes the matching ``base_sample=``.
"""

from gm_jax.flows.autoregressive import MaskedAutoregressive, autoregressive_spline_layer, maf_layer
from gm_jax.flows.base import Bijector, Chain, Repeat, chain, flow_log_prob, repeat
from gm_jax.flows.conditioners import Conditioner, conv_conditioner, mlp_conditioner
from gm_jax.flows.coupling import Coupling, additive_coupling, affine_coupling, coupling_mask, spline_coupling, \
    transformed_elements
from gm_jax.flows.elementwise import Logit
from gm_jax.flows.linear import ActNorm, Invertible1x1Conv, Reverse
from gm_jax.flows.multiscale import MultiScale, Squeeze
from gm_jax.flows.planar import Planar, Radial, solve_increasing
from gm_jax.flows.spline import rational_quadratic_spline, spline_num_params
from gm_jax.flows.transformers import Additive, Affine, Spline

__all__ = [
    "Bijector", "Chain", "Repeat", "chain", "repeat", "flow_log_prob",
    "Coupling", "affine_coupling", "additive_coupling", "spline_coupling", "coupling_mask", "transformed_elements",
    "Conditioner", "mlp_conditioner", "conv_conditioner", "Affine", "Additive", "Spline",
    "rational_quadratic_spline", "spline_num_params",
    "ActNorm", "Invertible1x1Conv", "Reverse", "Squeeze", "MultiScale", "Logit",
    "Planar", "Radial", "solve_increasing",
    "MaskedAutoregressive", "maf_layer", "autoregressive_spline_layer",
]
