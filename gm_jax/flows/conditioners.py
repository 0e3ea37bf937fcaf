"""Conditioners: the networks that parameterise coupling and autoregressive layers, as plain functions.

A conditioner is a :class:`Conditioner` ``(init, apply)`` of two pure functions, with no framework:

- ``init(key, x_example) -> params``: ``x_example`` [B, *event] is an example of the conditioner's input
  (the masked input of a coupling, the input of an autoregressive layer); ``params`` is any pytree;
- ``apply(params, x) -> raw``: x [B, *event] -> raw [B, *event, num_params], the unconstrained
  parameters of the elementwise transformer at every element (``num_params = transformer.num_params``:
  2 affine, 1 additive, 3K - 1 for a K-bin spline). Raw values are cast to float32 by the layer.

Any network works: a hand-written MLP with a dict of arrays, an Equinox or Haiku model behind two
functions, or a Flax module through :func:`gm_jax.nets.flax_conditioner`. An autoregressive layer's
conditioner must also be autoregressive (``raw[:, i]`` depends only on earlier inputs, e.g. MADE).

The defaults here are pure JAX. Both zero-initialise their output layer, so a fresh coupling is the
identity map (every transformer in gm_jax.flows is the identity at raw = 0), the initialisation RealNVP
and Glow use to start a deep flow near the identity (Kingma & Dhariwal 2018, section 3.3).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError
from gm_jax.shapes import check_output

__all__ = ["Conditioner", "mlp_conditioner", "conv_conditioner", "conditioner_raw", "check_conditioner"]


class Conditioner(NamedTuple):
    """A conditioner as two plain functions (see the module docstring for the shapes).

    ``init(key, x_example [B, *event]) -> params``; ``apply(params, x [B, *event]) -> raw
    [B, *event, num_params]``. Calling the conditioner, ``conditioner(params, x)``, is ``apply``.
    """

    init: Callable[[Any, Any], Any]
    apply: Callable[[Any, Any], Any]

    def __call__(self, params, x):
        return self.apply(params, x)


def check_conditioner(function: str, conditioner) -> None:
    """Raise one line unless ``conditioner`` is a :class:`Conditioner` of two callables. (Strict on purpose:
    a Flax module also has ``init`` and ``apply``, with other signatures; other objects wrap as
    ``Conditioner(obj.init, obj.apply)``.)"""
    if not (isinstance(conditioner, Conditioner) and callable(conditioner.init) and callable(conditioner.apply)):
        hint = ("; wrap a Flax module with gm_jax.nets.flax_conditioner(module)"
                if hasattr(conditioner, "init_with_output") else "")
        raise GMJaxError(f"{function}: the conditioner must be a gm_jax.flows.Conditioner(init, apply) of plain "
                         f"functions, got {type(conditioner).__name__}{hint}")


def conditioner_raw(function: str, conditioner, params, x, num_params: int, *, hint: str = ""):
    """raw [B, *event, num_params] float32 = ``conditioner.apply(params, x)``, its shape checked at trace time."""
    raw = conditioner.apply(params, x)
    check_output(function, "conditioner.apply(params, x)", raw, tuple(x.shape) + (num_params,), hint=hint)
    return raw.astype(jnp.float32)


def check_conditioner_init(function: str, conditioner, params, x, num_params: int, *, hint: str = ""):
    """The shape check of :func:`conditioner_raw` without running the network (``jax.eval_shape``)."""
    out = jax.eval_shape(conditioner.apply, params, x)
    check_output(function, "conditioner.apply(params, x)", out, tuple(x.shape) + (num_params,), hint=hint)


@dataclasses.dataclass(frozen=True)
class _Fixed:
    """``fn`` with keyword options fixed. Unlike ``functools.partial`` it compares (and hashes) by value, so
    two identically built flows are equal static arguments and share jit caches."""

    fn: Callable
    options: tuple

    def __call__(self, *args):
        return self.fn(*args, **dict(self.options))


def _fixed_pair(init_fn, apply_fn, **options) -> Conditioner:
    options = tuple(sorted(options.items()))
    return Conditioner(_Fixed(init_fn, options), _Fixed(apply_fn, options))


_lecun_normal = jax.nn.initializers.lecun_normal()  # the default kernel init of Flax's Dense and Conv


def _layer(key, shape, zero=False):
    """{"w": kernel of ``shape`` (fan-in on all but the last axis), "b": zeros [shape[-1]]}, float32."""
    w = jnp.zeros(shape, jnp.float32) if zero else _lecun_normal(key, shape, jnp.float32)
    return {"w": w, "b": jnp.zeros(shape[-1:], jnp.float32)}


# --------------------------------------------------------------------------------------------- MLP
def _mlp_init(key, x, *, num_params, hidden, activation, dtype, outputs):
    if x.ndim != 2:
        raise GMJaxError(f"mlp_conditioner is for vectors [B, D], got shape {tuple(x.shape)}; "
                         "use conv_conditioner for images")
    widths = (x.shape[-1],) + hidden
    keys = jax.random.split(key, len(hidden) + 1)
    params = {f"hidden_{i}": _layer(keys[i], (widths[i], widths[i + 1])) for i in range(len(hidden))}
    params["out"] = _layer(keys[-1], (widths[-1], (outputs or x.shape[-1]) * num_params), zero=True)
    return params


def _mlp_apply(params, x, *, num_params, hidden, activation, dtype, outputs):
    h = x.astype(dtype)
    for i in range(len(hidden)):
        p = params[f"hidden_{i}"]
        h = activation(h @ p["w"].astype(dtype) + p["b"].astype(dtype))
    out = h @ params["out"]["w"].astype(dtype) + params["out"]["b"].astype(dtype)
    return out.astype(jnp.float32).reshape((x.shape[0], outputs or x.shape[-1], num_params))


def mlp_conditioner(num_params: int, *, hidden=(64, 64), activation: Callable = jax.nn.silu,
                    dtype: Any = jnp.float32, outputs: int | None = None) -> Conditioner:
    """Vectors x [B, D] -> raw [B, n, num_params] with n = ``outputs`` (default D): dense layers of widths
    ``hidden`` each followed by ``activation``, then a zero-initialised dense layer to n * num_params (entry
    (i, p) at i * num_params + p). A coupling's conditioner needs parameters for its transformed elements
    only: ``outputs=len(transformed_elements(mask, (D,), parity=...))``.

    Params: {"hidden_i": {"w": [fan_in, width], "b": [width]}, "out": {"w", "b"}}, float32 (LeCun-normal
    kernels, zero biases); ``dtype`` is the compute dtype (e.g. bfloat16).
    """
    if outputs is not None and int(outputs) < 1:
        raise GMJaxError(f"mlp_conditioner: outputs must be >= 1 elements, got {outputs}")
    return _fixed_pair(_mlp_init, _mlp_apply, num_params=int(num_params), hidden=tuple(int(h) for h in hidden),
                       activation=activation, dtype=dtype, outputs=None if outputs is None else int(outputs))


# ------------------------------------------------------------------------------------ conv ResNet
def _conv(p, h, dtype):
    """SAME-padded stride-1 convolution of NHWC ``h`` with an HWIO kernel, plus bias."""
    y = jax.lax.conv_general_dilated(h, p["w"].astype(dtype), window_strides=(1, 1), padding="SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + p["b"].astype(dtype)


def _conv_init(key, x, *, num_params, channels, num_blocks, dtype):
    if x.ndim != 4:
        raise GMJaxError(f"conv_conditioner is for images [B, H, W, C], got shape {tuple(x.shape)}; "
                         "use mlp_conditioner for vectors")
    c = x.shape[-1]
    keys = jax.random.split(key, 2 * num_blocks + 1)
    params = {"in": _layer(keys[0], (3, 3, c, channels))}
    for i in range(num_blocks):
        params[f"block_{i}_a"] = _layer(keys[2 * i + 1], (3, 3, channels, channels))
        params[f"block_{i}_b"] = _layer(keys[2 * i + 2], (1, 1, channels, channels))
    params["out"] = _layer(None, (3, 3, channels, c * num_params), zero=True)
    return params


def _conv_apply(params, x, *, num_params, channels, num_blocks, dtype):
    h = _conv(params["in"], x.astype(dtype), dtype)
    for i in range(num_blocks):
        r = _conv(params[f"block_{i}_a"], jax.nn.silu(h), dtype)
        h = h + _conv(params[f"block_{i}_b"], jax.nn.silu(r), dtype)
    out = _conv(params["out"], jax.nn.silu(h), dtype)
    return out.astype(jnp.float32).reshape(x.shape + (num_params,))


def conv_conditioner(num_params: int, *, channels: int = 64, num_blocks: int = 1,
                     dtype: Any = jnp.float32) -> Conditioner:
    """Images x [B, H, W, C] -> raw [B, H, W, C, num_params]: a small ResNet in the style of RealNVP's
    (Dinh et al. 2017, section 4.1) and Glow's (Kingma & Dhariwal 2018) coupling networks.

    A 3x3 convolution to ``channels``, ``num_blocks`` residual blocks h + conv1x1(silu(conv3x3(silu(h)))),
    SiLU and a zero-initialised 3x3 convolution to C * num_params (entry (c, p) at c * num_params + p).
    Params: {"in", "block_i_a", "block_i_b", "out"}, each {"w": HWIO kernel, "b": [out]}, float32;
    ``dtype`` is the compute dtype.
    """
    return _fixed_pair(_conv_init, _conv_apply, num_params=int(num_params), channels=int(channels),
                       num_blocks=int(num_blocks), dtype=dtype)
