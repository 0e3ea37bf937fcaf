"""The training state and the pure, jittable train step shared by every model.

Models with several parameter groups (e.g. a GAN's generator and discriminator) declare
``param_groups = (("discriminator", n_critic), ("generator", 1))``: each group has its own optimizer
and the step updates the groups in that order, each ``n`` times, taking gradients of
``model.loss(variables, batch, key, group=name)`` with respect to that group's parameters only.
A model without groups is updated as one group over all its parameters.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from gm_jax.data.augment import random_hflip
from gm_jax.models.base import param_groups

__all__ = ["TrainState", "init_train_state", "make_train_step", "ema_decay_at", "ALL"]

ALL = "all"  # optimizer-state key of the single group of a model without param_groups


@flax.struct.dataclass
class TrainState:
    """Everything a resumed run needs (the data position is ``step``; see ``batch_indices``).

    step: int32 scalar, updates done. params / model_state: the model's variables. opt_state: dict
    group -> optax state. ema_params: EMA of params ({} when disabled). key: uint32 key data of the
    run's base key; step t uses fold_in(key, t). first_bad_step: int32, -1 while every loss and gradient
    has been finite, else the first step that was not (that step's update was skipped).
    """

    step: jax.Array
    params: Any
    opt_state: Any
    model_state: Any
    ema_params: Any
    key: jax.Array
    first_bad_step: jax.Array


def init_train_state(variables, optimizers: dict, key, ema: bool) -> TrainState:
    params = variables["params"]
    opt_state = {name: tx.init(params if name == ALL else params[name]) for name, tx in optimizers.items()}
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=opt_state,
        model_state=variables["state"],
        ema_params=jax.tree_util.tree_map(jnp.copy, params) if ema else {},
        key=jax.random.key_data(key),
        first_bad_step=jnp.full((), -1, jnp.int32),
    )


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def ema_decay_at(step, decay: float):
    """The EMA decay of update ``step`` (0-based): min(decay, (1 + step) / (10 + step)), the warm-up of
    TensorFlow's ``ExponentialMovingAverage(num_updates=...)`` that diffusers' EMA also uses. Early on the
    average follows the parameters closely, so a run shorter than the horizon 1 / (1 - decay) does not
    sample from weights still dominated by the initialisation."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def make_train_step(model, optimizers: dict, ema_decay: float = 0.0, *, hflip: bool = False):
    """Returns ``train_step(state, batch) -> (state, metrics)``, pure and jittable.

    ``hflip`` mirrors each training image with probability 1/2 (:func:`gm_jax.data.random_hflip`) before
    every group's update sees the batch; its key is folded apart from the groups' keys, so turning it on
    leaves the rest of a run's randomness as it was.

    Non-finite losses or gradients skip the update (so parameters stay the last good ones) and record
    ``first_bad_step``; the loop turns that into a clear stop.
    """
    groups = param_groups(model)

    def group_update(params, opt_state, model_state, batch, key, group):
        name = group or ALL
        sub = params if group is None else params[group]
        kwargs = {} if group is None else {"group": group}

        def objective(p):
            full = p if group is None else {**params, group: p}
            loss, metrics, new_state = model.loss({"params": full, "state": model_state}, batch, key, **kwargs)
            return loss, (metrics, new_state)

        (loss, (metrics, new_model_state)), grads = jax.value_and_grad(objective, has_aux=True)(sub)
        finite = jnp.isfinite(loss) & _all_finite(grads)
        updates, new_opt = optimizers[name].update(grads, opt_state[name], sub)
        new_sub = optax.apply_updates(sub, updates)
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), new, old)
        new_sub, new_opt = keep(new_sub, sub), keep(new_opt, opt_state[name])
        new_model_state = keep(new_model_state, model_state)
        params = new_sub if group is None else {**params, group: new_sub}
        prefix = "" if group is None else f"{group}/"
        metrics = {f"{prefix}{k}": v for k, v in {"loss": loss, "grad_norm": optax.tree.norm(grads),
                                                  **metrics}.items()}
        return params, {**opt_state, name: new_opt}, new_model_state, metrics, finite

    def train_step(state: TrainState, batch):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        params, opt_state, model_state = state.params, state.opt_state, state.model_state
        all_metrics, finite = {}, jnp.array(True)
        if hflip:
            # each image of the batch (and of a second domain, drawn independently) mirrored with probability 1/2
            flip_key = jax.random.fold_in(key, len(groups))
            batch = {**batch, model.spec.data_key: random_hflip(batch[model.spec.data_key], flip_key)}
            if "image_b" in batch:
                batch["image_b"] = random_hflip(batch["image_b"], jax.random.fold_in(flip_key, 1))
        for gi, (group, repeats) in enumerate(groups):
            keys = jax.random.split(jax.random.fold_in(key, gi), repeats)
            if repeats == 1:
                params, opt_state, model_state, metrics, ok = group_update(
                    params, opt_state, model_state, batch, keys[0], group)
            else:  # e.g. n_critic discriminator updates: a scan, unrolled because XLA:CPU runs the
                # backward pass of convolutions inside a loop body 10-25x slower (SNGAN's ResNet critic:
                # 3 s per step rolled, 0.1 s unrolled); repeats are few, so the compile cost is small
                def body(carry, k, group=group):
                    p, o, s = carry
                    p, o, s, m, ok = group_update(p, o, s, batch, k, group)
                    return (p, o, s), (m, ok)

                (params, opt_state, model_state), (metrics, oks) = jax.lax.scan(
                    body, (params, opt_state, model_state), keys, unroll=True)
                metrics, ok = jax.tree_util.tree_map(lambda m: m[-1], metrics), jnp.all(oks)
            all_metrics.update(metrics)
            finite = finite & ok
        ema = state.ema_params
        if ema_decay > 0:
            ema = optax.incremental_update(params, ema, step_size=1.0 - ema_decay_at(state.step, ema_decay))
        bad = jnp.where((state.first_bad_step < 0) & ~finite, state.step, state.first_bad_step)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                                  model_state=model_state, ema_params=ema, first_bad_step=bad)
        return new_state, all_metrics

    return train_step
