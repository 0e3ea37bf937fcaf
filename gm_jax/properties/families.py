"""What each family is, as the property table needs it: its kind of likelihood, its samplers, how many
network evaluations a sample costs, and the verdict the literature commonly gives on each property.

The verdicts (``Family.claims``) are the common claims the table is usually filled with, not measurements:
the generative learning trilemma of Xiao, Kreis & Vahdat 2022 ("Tackling the Generative Learning Trilemma with
Denoising Diffusion GANs", ICLR, Fig. 1) for high-quality samples, coverage and efficient sampling of GANs,
VAEs, flows and diffusion models; the definitions for likelihoods (exact for autoregressive models; exact for flows
on continuous data, a dequantization bound on images; a bound for VAEs and diffusion; none for GANs;
unnormalised for EBMs); sequential sampling for autoregressive
models and MCMC for EBMs; unstable adversarial training. ``None`` where no common claim exists (a family
without a latent code has no latent-space claim).
"""

from __future__ import annotations

import dataclasses

from gm_jax.errors import GMJaxError

__all__ = ["Family", "FAMILIES", "IMAGE_FAMILIES", "POINT_FAMILIES", "PROPERTIES", "family",
           "network_evaluations"]

# the table's columns
PROPERTIES = ("probabilistic", "efficient_sampling", "high_quality_samples", "coverage", "well_behaved_latent",
              "interpretable_latent", "efficient_likelihood", "stable_training")


@dataclasses.dataclass(frozen=True)
class Family:
    """One model of the table.

    Attributes:
      name: the registry name (``gm-jax list``).
      group: the family as surveys group it (``VAE``, ``GAN``, ``flow``, ``autoregressive``, ``diffusion``, ``EBM``).
      likelihood: ``exact`` (log p of the discrete data), ``bound`` (a lower bound or its unbiased estimate:
        IWAE, dequantization, VLB, ODE with dequantization) or ``none``.
      samplers: {label: sampler keyword arguments of ``model.sample``}; the first is the default, the one
        sample quality is measured with.
      latent: how a latent code is reached: ``prior`` (decoder / generator from z ~ N(0, I)), ``flow``
        (bijection), ``ode`` (deterministic DDIM / probability-flow map) or ``none``.
      claims: the common verdict per property (:data:`PROPERTIES`; True, False or None).
    """

    name: str
    group: str
    likelihood: str
    samplers: dict
    latent: str
    claims: dict


def _claims(**marks) -> dict:
    unknown = set(marks) - set(PROPERTIES)
    assert not unknown, unknown
    return {p: marks.get(p) for p in PROPERTIES}


_VAE = _claims(probabilistic=True, efficient_sampling=True, high_quality_samples=False, coverage=True,
               well_behaved_latent=True, efficient_likelihood=True, stable_training=True)
_GAN = _claims(probabilistic=False, efficient_sampling=True, high_quality_samples=True, coverage=False,
               well_behaved_latent=True, efficient_likelihood=False, stable_training=False)
_FLOW = _claims(probabilistic=True, efficient_sampling=True, high_quality_samples=False, coverage=True,
                efficient_likelihood=True, stable_training=True)
_AR = _claims(probabilistic=True, efficient_sampling=False, coverage=True, efficient_likelihood=True,
              stable_training=True)
_DIFFUSION = _claims(probabilistic=True, efficient_sampling=False, high_quality_samples=True, coverage=True,
                     efficient_likelihood=False, stable_training=True)
_EBM = _claims(probabilistic=True, efficient_sampling=False, efficient_likelihood=False)

_GAN_SAMPLERS = {"generator": {}}
FAMILIES = {f.name: f for f in (
    Family("vae", "VAE", "bound", {"decoder mean": {"mode": "mean"}}, "prior", _VAE),
    Family("made", "autoregressive", "exact", {"ancestral": {}}, "none", _AR),
    Family("pixelcnn", "autoregressive", "exact", {"ancestral": {}}, "none", _AR),
    Family("realnvp", "flow", "bound", {"inverse": {}}, "flow", _FLOW),
    Family("glow", "flow", "bound", {"inverse": {}}, "flow", _FLOW),
    Family("maf", "flow", "bound", {"inverse": {}}, "flow", _FLOW),
    Family("spline_flow", "flow", "bound", {"inverse": {}}, "flow", _FLOW),
    Family("ddpm", "diffusion", "bound", {"ddpm": {"sampler": "ddpm"}, "ddim 50": {"sampler": "ddim", "steps": 50}},
           "ode", _DIFFUSION),
    Family("score_sde", "diffusion", "bound", {"pc": {"sampler": "pc"}, "ode": {"sampler": "ode"}}, "ode",
           _DIFFUSION),
    Family("ncsn", "diffusion", "none", {"annealed langevin": {}}, "none", _DIFFUSION),
    # fresh chains from noise, and chains continued from the replay buffer (as Du & Mordatch sample)
    Family("ebm", "EBM", "none", {"langevin": {}, "langevin, buffer": {"from_buffer": True}}, "none", _EBM),
    Family("dcgan", "GAN", "none", _GAN_SAMPLERS, "prior", _GAN),
    Family("wgan_gp", "GAN", "none", _GAN_SAMPLERS, "prior", _GAN),
    Family("sngan", "GAN", "none", _GAN_SAMPLERS, "prior", _GAN),
    Family("stylegan_small", "GAN", "none", _GAN_SAMPLERS, "prior", _GAN),
)}
IMAGE_FAMILIES = tuple(FAMILIES)
# the families that train on points (toy2d): the image-only flows and PixelCNN are left out
POINT_FAMILIES = ("vae", "made", "maf", "spline_flow", "realnvp", "ddpm", "score_sde", "ncsn", "ebm", "dcgan",
                  "wgan_gp")


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise GMJaxError(f"no property-table family '{name}'; choose from {', '.join(FAMILIES)}")
    return FAMILIES[name]


def network_evaluations(name: str, model, sampler_kwargs: dict) -> int | None:
    """Network evaluations per sample (one batch-wide pass of the network counts once), from the model's
    config and the sampler options; None for an adaptive solver, whose count depends on the model.

    Sequential models pay one pass per dimension (``made``, ``pixelcnn``, and ``maf``'s inverse); an EBM's
    Langevin step is one energy gradient (a forward and a backward pass, counted as one); score models also
    count their final denoising pass."""
    c, dims = model.config, model.spec.num_dims
    sampler, steps = sampler_kwargs.get("sampler"), sampler_kwargs.get("steps")
    if name in ("made", "pixelcnn", "maf"):
        return dims
    if name == "ddpm":
        if (sampler or c.sampler) == "ddpm":
            return c.num_steps
        return steps or c.sample_steps or c.num_steps
    if name == "score_sde":  # the sampling loop, then the Tweedie denoising pass when on
        sampler = sampler or c.sampler
        if sampler == "ode":  # fixed steps of Tsit5: 6 a step and one to start (samplers.tsit5_evaluations)
            return 6 * c.ode_steps + 1 + int(c.denoise) if c.ode_steps else None
        n = steps or c.sample_steps
        return (n * (1 + c.corrector_steps) if sampler == "pc" else n) + int(c.denoise)
    if name == "ncsn":
        return c.num_scales * (steps or c.steps_per_sigma) + int(c.denoise)
    if name == "ebm":
        return steps or c.sample_steps
    return 1
