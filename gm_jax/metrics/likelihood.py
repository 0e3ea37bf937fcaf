"""Test log-likelihood of any model with ``log_prob``, in DESIGN.md's common unit."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from gm_jax import parallel
from gm_jax.data.loading import Dataset
from gm_jax.losses.likelihood import bits_per_dim

__all__ = ["make_log_prob_fn", "evaluate_log_likelihood"]


@functools.lru_cache(maxsize=8)  # evaluations during training reuse the compiled function
def make_log_prob_fn(model, mesh):
    """jit of ``model.log_prob`` over the mesh: (variables, x [B, ...], labels [B] | None, key) -> [B]."""

    def log_prob(variables, x, labels, key):
        kw = {} if labels is None else {"labels": labels}
        return model.log_prob(variables, x, key, **kw)

    return jax.jit(log_prob, in_shardings=(parallel.replicated(mesh), parallel.batch_sharding(mesh),
                                           parallel.batch_sharding(mesh), parallel.replicated(mesh)),
                   out_shardings=parallel.batch_sharding(mesh))


def evaluate_log_likelihood(model, variables, dataset: Dataset, key, mesh, batch_size: int = 256,
                            max_examples: int = 0, split: str = "test", *, progress: bool = True) -> dict:
    """Mean test NLL over ``split`` in nats per example and bits/dim (accumulated in float64).

    Batches are padded to a fixed size (one compilation) and the padding is masked out; the key of
    batch i is fold_in(key, i), so results do not depend on anything but (variables, data, key).
    ``progress`` shows a bar on stderr (the first batch includes compilation).
    """
    spec = dataset.spec
    n = dataset.size(split) if not max_examples else min(max_examples, dataset.size(split))
    batch_size = -(-min(batch_size, n) // mesh.size) * mesh.size
    fn = make_log_prob_fn(model, mesh)
    total, count = 0.0, 0
    bar = tqdm(total=n, desc=f"{split} NLL", unit="ex", disable=not progress or jax.process_index() != 0,
               dynamic_ncols=True, leave=False)
    with bar:  # cleared on an error too
        for i, lo in enumerate(range(0, n, batch_size)):
            idx = np.arange(lo, min(lo + batch_size, n))
            rows = parallel.local_rows(np.pad(idx, (0, batch_size - len(idx)), mode="edge"), mesh)
            batch = parallel.global_batch(dataset.read(split, rows), mesh)  # each process reads its rows
            lp = fn(variables, batch[spec.data_key], batch.get("label"), jax.random.fold_in(key, i))
            lp = parallel.to_host(lp).astype(np.float64)[:len(idx)]
            total += float(-lp.sum())
            count += len(idx)
            bar.update(len(idx))
    nll = total / count
    return {"test_nll_nats": nll, "test_bits_per_dim": float(bits_per_dim(nll, spec.num_dims)),
            "num_test_examples": count}
