"""``properties.json`` rows summarised per family over seeds: (mean, standard deviation) of every number."""

from __future__ import annotations

import math

import numpy as np

from gm_jax.properties.families import FAMILIES

__all__ = ["stats", "summarise", "mean"]


def stats(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def summarise(results: dict) -> dict:
    """{family: summary} over seeds: means and standard deviations of the numbers, seeds, diverged runs."""
    by_family: dict[str, list] = {}
    for row in results.get("runs", {}).values():
        by_family.setdefault(row["family"], []).append(row)
    out = {}
    for name, rows in by_family.items():
        ok = [r for r in rows if not r["diverged"]]
        s = {"seeds": len(rows), "diverged": len(rows) - len(ok), "likelihood": FAMILIES[name].likelihood,
             # a seed whose FID is NaN or inf left out of the mean (the stability verdict counts it)
             "non_finite_fid": sum(r.get("fid") is not None and not math.isfinite(r["fid"]) for r in ok)}
        for key in ("test_bits_per_dim", "likelihood_ms_per_example", "fid", "precision", "recall", "density",
                    "coverage", "class_kl", "classes_under_half", "data_copying_ct", "ppl", "latent_dims",
                    "probe_accuracy", "train_seconds", "steps", "num_params"):
            s[key] = stats([r.get(key) for r in ok])
        samplers = {}
        for r in ok:
            for label, m in r["sampling"].items():
                samplers.setdefault(label, []).append(m)
        s["samplers"] = {}
        # the family's order (the first is its default sampler), not the file's: properties.json sorts its keys
        order = [label for label in FAMILIES[name].samplers if label in samplers]
        for label, ms in ((label, samplers[label]) for label in order + sorted(set(samplers) - set(order))):
            s["samplers"][label] = {k: stats([m.get(k) for m in ms]) for k in ("samples_per_s", "fid", "precision",
                                                                                "recall")}
            # fixed by the config, or (adaptive solvers) counted per seed: then their mean
            evaluations = stats([m["network_evaluations"] for m in ms])
            s["samplers"][label]["network_evaluations"] = None if evaluations is None else evaluations[0]
            s["samplers"][label]["adaptive"] = any(m.get("adaptive") for m in ms)
        out[name] = s
    return out


def mean(s, key):
    return None if s.get(key) is None else s[key][0]
