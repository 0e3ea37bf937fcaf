"""``properties.json`` -> the Markdown tables and the figures of the property table.

Every number printed comes from ``properties.json``: per family, the mean over its seeds (± the standard
deviation where there are several), and the verdict per property by the rules of :data:`RULES`, beside the
common claim (:mod:`gm_jax.properties.families`); a cell where they disagree is marked.
"""

from __future__ import annotations

import os

import numpy as np

from gm_jax.properties.families import FAMILIES, PROPERTIES
from gm_jax.properties.summary import mean as _mean
from gm_jax.properties.summary import stats as _stats
from gm_jax.properties.summary import summarise

__all__ = ["verdicts", "RULES", "RELATIVE", "main_table", "compact_table", "settings_list", "run_time", "samplers_table", "claims_table", "points_table", "rules_list", "write_report"]

# How a measurement becomes a yes / no (each rule reads the family's summary and the reference row).
RULES = {
    "probabilistic": "a likelihood (exact or a bound) is defined",
    "efficient_sampling": "the default sampler draws at least 1/100 as many samples per second as the fastest family",
    "high_quality_samples": "FID at most 4x the training split's FID against the test split",
    "coverage": "recall at least 0.8 and no digit class under half its share",
    "well_behaved_latent": "a latent code whose decoder's perceptual path length per latent dimension (slerp paths "
                           "between Gaussian codes grow with the dimension) is at most 2x the median over the "
                           "families that have one",
    "interpretable_latent": "a linear probe reads the digit class from the encoder's codes at least as well as "
                            "from the pixels themselves",
    "efficient_likelihood": "log p costs at most 100x the cheapest family's time per test example",
    "stable_training": "no seed diverged or gave a non-finite FID, and the FID's spread over seeds is at most 25% "
                       "of its mean",
}
# the rules that compare a family with the other families of the same table
RELATIVE = ("efficient_sampling", "well_behaved_latent", "efficient_likelihood")


def verdicts(summary: dict, reference: dict) -> dict:
    """{family: {property: True | False | None}} by :data:`RULES` (None: not measurable or not measured)."""
    speeds = {n: next(iter(s["samplers"].values()))["samples_per_s"] for n, s in summary.items() if s["samplers"]}
    fastest = max((v[0] for v in speeds.values() if v), default=None)
    costs = [_mean(s, "likelihood_ms_per_example") for s in summary.values()]
    cheapest = min((c for c in costs if c is not None), default=None)
    per_dim = {n: _mean(s, "ppl") / _mean(s, "latent_dims") for n, s in summary.items()
               if _mean(s, "ppl") is not None and _mean(s, "latent_dims")}
    median_ppl = float(np.median(list(per_dim.values()))) if per_dim else None
    out = {}
    for name, s in summary.items():
        v = dict.fromkeys(PROPERTIES)
        if name in per_dim:
            v["well_behaved_latent"] = per_dim[name] <= 2 * median_ppl
        if _mean(s, "probe_accuracy") is not None and reference.get("probe_accuracy") is not None:
            v["interpretable_latent"] = _mean(s, "probe_accuracy") >= reference["probe_accuracy"]
        v["probabilistic"] = s["likelihood"] != "none"
        speed = speeds.get(name)
        if speed and fastest:
            v["efficient_sampling"] = speed[0] >= fastest / 100
        fid, recall = _mean(s, "fid"), _mean(s, "recall")
        if fid is not None:
            v["high_quality_samples"] = fid <= 4 * reference["fid"]
        if recall is not None:
            v["coverage"] = recall >= 0.8 and _mean(s, "classes_under_half") == 0
        cost = _mean(s, "likelihood_ms_per_example")
        v["efficient_likelihood"] = False if s["likelihood"] == "none" else (
            None if cost is None or cheapest is None else cost <= 100 * cheapest)
        spread = s.get("fid")
        if s["diverged"] or s.get("non_finite_fid"):
            v["stable_training"] = False
        elif spread is not None and spread[1] is not None:
            v["stable_training"] = spread[1] <= 0.25 * spread[0]
        out[name] = v
    return out


def _fmt(stat, digits: int = 3, scale: float = 1.0) -> str:
    if stat is None:
        return "-"
    mean, std = stat
    text = f"{mean * scale:.{digits}g}"
    return text if std is None else f"{text} ± {std * scale:.2g}"


def _nfe(sampler: dict) -> str:
    n = sampler.get("network_evaluations")
    if n is None:
        return "-"
    return f"{n:.0f} (adaptive)" if sampler.get("adaptive") else f"{n:.0f}"


def main_table(results: dict) -> str:
    """One row per family: likelihood, sampling speed, sample quality, coverage, memorisation, training."""
    summary, ref = summarise(results), results["reference"]
    head = ("| family | likelihood | bits/dim | log p ms/example | sampler | samples/s | NFE | FID | precision | "
            "density | recall | kNN coverage | class KL | classes < half | copying C_T | PPL | probe acc. | train s | "
            "steps | params | diverged |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    lines.append(f"| training split (reference) | - | - | - | - | - | - | {ref['fid']:.3g} | {ref['precision']:.3g} | "
                 f"{ref['density']:.3g} | {ref['recall']:.3g} | {ref['coverage']:.3g} | {ref['class_kl']:.3g} | "
                 f"{ref['classes_under_half']} | {ref['data_copying_ct']:.3g} | - | {ref['probe_accuracy']:.3g} (pixels) | - "
                 f"| - | - | - |")
    for name in FAMILIES:
        if name not in summary:
            continue
        s = summary[name]
        label, sampler = next(iter(s["samplers"].items())) if s["samplers"] else ("-", {})
        cells = [name, s["likelihood"], _fmt(s["test_bits_per_dim"]), _fmt(s["likelihood_ms_per_example"]), label,
                 _fmt(sampler.get("samples_per_s")), _nfe(sampler),
                 _fmt(s["fid"]), _fmt(s["precision"]), _fmt(s["density"]), _fmt(s["recall"]), _fmt(s["coverage"]),
                 _fmt(s["class_kl"]), _fmt(s["classes_under_half"], 2), _fmt(s["data_copying_ct"]), _fmt(s["ppl"]),
                 _fmt(s["probe_accuracy"]), _fmt(s["train_seconds"]), _fmt(s["steps"], 6), _fmt(s["num_params"], 9),
                 f"{s['diverged']}/{s['seeds']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compact_table(results: dict) -> str:
    """The main table's headline columns (the README's table): likelihood, default sampler, quality, coverage,
    memorisation, latent and training time."""
    summary, ref = summarise(results), results["reference"]
    lines = ["| family | bits/dim | sampler | samples/s | NFE | FID | precision | recall | classes < half | copying C_T "
             "| PPL | probe acc. | train s |", "|" + "---|" * 13]
    lines.append(f"| training split (reference) | - | - | - | - | {ref['fid']:.3g} | {ref['precision']:.3g} | "
                 f"{ref['recall']:.3g} | {ref['classes_under_half']} | {ref['data_copying_ct']:.3g} | - | "
                 f"{ref['probe_accuracy']:.3g} (pixels) | - |")
    for name in FAMILIES:
        if name not in summary:
            continue
        s = summary[name]
        label, sampler = next(iter(s["samplers"].items())) if s["samplers"] else ("-", {})
        bits = _fmt(s["test_bits_per_dim"])
        cells = [name, bits if bits == "-" else f"{bits} ({s['likelihood']})", label, _fmt(sampler.get("samples_per_s")),
                 _nfe(sampler), _fmt(s["fid"]), _fmt(s["precision"]), _fmt(s["recall"]), _fmt(s["classes_under_half"], 2),
                 _fmt(s["data_copying_ct"]), _fmt(s["ppl"]), _fmt(s["probe_accuracy"]), _fmt(s["train_seconds"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def samplers_table(results: dict) -> str:
    """One row per family and sampler: speed, network evaluations per sample, FID, precision and recall (the
    main table shows the default sampler only)."""
    summary = summarise(results)
    lines = ["| family | sampler | samples/s | NFE | FID | precision | recall |", "|---|---|---|---|---|---|---|"]
    for name in FAMILIES:
        for label, m in summary.get(name, {}).get("samplers", {}).items():
            lines.append(f"| {name} | {label} | {_fmt(m['samples_per_s'])} | {_nfe(m)} | {_fmt(m['fid'])} | "
                         f"{_fmt(m['precision'])} | {_fmt(m['recall'])} |")
    return "\n".join(lines)


def claims_table(results: dict) -> str:
    """Measured verdicts beside the common claims: ``✔``/``✖`` measured, then the claim in brackets; a cell
    where the two disagree is marked **bold** with ``≠``."""
    summary = summarise(results)
    measured = verdicts(summary, results["reference"])
    mark = {True: "✔", False: "✖", None: "?"}
    head = "| family | " + " | ".join(p.replace("_", " ") for p in PROPERTIES) + " |"
    lines = [head, "|" + "---|" * (len(PROPERTIES) + 1)]
    for name in FAMILIES:
        if name not in measured:
            continue
        cells = []
        for p in PROPERTIES:
            m, c = measured[name][p], FAMILIES[name].claims[p]
            text = f"{mark[m]} ({mark[c]})"
            cells.append(f"**{text} ≠**" if m is not None and c is not None and m != c else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def points_table(results: dict) -> str:
    """Per toy2d dataset and family: modes covered, share of high-quality samples, NLL gap to the truth."""
    rows: dict = {}
    for r in results.get("points", {}).values():
        rows.setdefault((r["dataset"], r["family"]), []).append(r)
    lines = ["| dataset | family | modes covered | high-quality share | NLL gap (nats) | diverged |",
             "|---|---|---|---|---|---|"]
    for (dataset, name), rs in sorted(rows.items()):
        ok = [r for r in rs if not r["diverged"]]
        modes = _stats([r["modes_covered"] for r in ok])
        total = ok[0]["num_modes"] if ok else "-"
        lines.append(f"| {dataset} | {name} | {_fmt(modes, 2)} / {total} | {_fmt(_stats([r['high_quality'] for r in ok]))} "
                     f"| {_fmt(_stats([r.get('nll_gap_nats') for r in ok]))} | {len(rs) - len(ok)}/{len(rs)} |")
    return "\n".join(lines)


def settings_list(results: dict) -> str:
    """One Markdown line per image family: the settings its runs were trained with (beyond the model's
    defaults), as the rows record them, and its training time."""
    summary, lines = summarise(results), []
    for name in FAMILIES:
        rows = [r for r in results.get("runs", {}).values() if r["family"] == name]
        if not rows:
            continue
        sets = {k: v for k, v in rows[0].get("sets", {}).items() if k not in ("log_every", "checkpoint_every")}
        text = ", ".join(f"{k}={v}" for k, v in sorted(sets.items())) or "the model's defaults"
        lines.append(f"- `{name}`: {text}; {_fmt(summary[name]['train_seconds'])} s of training")
    return "\n".join(lines)


def run_time(results: dict) -> str:
    """The table's cost: runs, and minutes of training and of measuring (wall clock, summed over runs)."""
    rows = [r for group in ("runs", "points") for r in results.get(group, {}).values()]
    minutes = lambda key: sum(r.get(key) or 0.0 for r in rows) / 60
    return (f"{len(rows)} runs: {minutes('train_seconds'):.0f} min of training and {minutes('measure_seconds'):.0f} "
            f"min of measuring, wall clock.")


def rules_list() -> str:
    """The rules of :data:`RULES` as a Markdown list."""
    return "\n".join(f"- {p.replace('_', ' ')}: {rule}" for p, rule in RULES.items())


def write_report(results: dict, out: str) -> list[str]:
    """Writes ``out/properties.md`` (the tables and the rules) and the figures; returns the paths written."""
    text = ["# The families' property table, measured", "",
            f"Config `{results['config']['name']}` on `{results['evaluator']['dataset']}` "
            f"(evaluator: the domain classifier, test accuracy {results['evaluator']['classifier_test_accuracy']}); "
            + run_time(results),
            "", main_table(results), "", "Every sampler:", "", samplers_table(results), "",
            "Measured verdict (common claim):", "", claims_table(results), "",
            "Rules:", "", rules_list()]
    measured = {row["family"] for row in results.get("runs", {}).values()}
    if measured != set(FAMILIES):
        text += ["", f"Only {len(measured)} of the {len(FAMILIES)} families are measured here: the verdicts on "
                     f"{', '.join(p.replace('_', ' ') for p in RELATIVE)} compare a family with the others in this "
                     f"table, so they may differ in the full table."]
    if results.get("points"):
        text += ["", points_table(results)]
    path = os.path.join(out, "properties.md")
    with open(path, "w") as f:
        f.write("\n".join(text) + "\n")
    written = [path]
    from gm_jax.properties import figures

    written += figures.write_figures(results, out)
    return written
