"""Samplers and the exact likelihood of score-based SDE models (Song et al. 2021, "Score-Based Generative
Modeling through Stochastic Differential Equations", ICLR).

Given a forward SDE dx = f(x, t) dt + g(t) dW (:mod:`gm_jax.processes.sde`) and a score model
s(x, t) ~ grad_x log p_t(x):

- :func:`reverse_sde_sample`: Euler–Maruyama on the reverse-time SDE (eq. 6)
  dx = [f(x, t) - g(t)^2 s(x, t)] dt + g(t) dW-bar, from the prior at t = T down to t = eps.
- :func:`pc_sample`: predictor–corrector sampling (Alg. 1, 4, 5): the Euler–Maruyama predictor above
  with ``corrector_steps`` Langevin MCMC corrections per time, the step size set from a target
  signal-to-noise ratio ``snr``.
- :func:`probability_flow_sample`: the probability-flow ODE (eq. 13) dx/dt = f(x, t) - g(t)^2 s(x, t) / 2,
  whose marginals equal the SDE's, integrated from T to eps with a diffrax solver.
- :func:`ode_log_likelihood`: log p_eps(x) from the instantaneous change of variables (appendix D.2,
  Chen et al. 2018): integrate (x, int div v dt) along the ODE from eps to T, then
  log p_eps(x) = log p_T(x(T)) + int_eps^T div v(x(t), t) dt, with the divergence exact (low dimension)
  or the Hutchinson–Skilling estimate (Grathwohl et al. 2019, "FFJORD").

``score_fn(x [B, ...], t float32 [B]) -> [B, ...]`` is any callable (a bound network); it must act on
each example separately (no batch statistics), which the Jacobian traces rely on. Everything is jittable:
the fixed-step samplers are one ``lax.scan``; the ODE solves are diffrax loops (no host callbacks).
Batch-first shapes; model space as the network sees it.
"""

from __future__ import annotations


import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.processes.sde import VPSDE
from gm_jax.shapes import check_output
from gm_jax.shapes import per_example as _bcast

TRACES = ("hutchinson", "exact")


# ---------------------------------------------------------------------------------------------- helpers
def _checked(function: str, score_fn):
    """score_fn with its output shape checked against x at trace time, naming ``function``."""
    return lambda x, t: check_output(function, "score_fn(x, t)", score_fn(x, t), x.shape)


def _check_shape(shape):
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2 or min(shape) < 1:
        raise GMJaxError(f"shape must be (batch, *event) with every size >= 1, got {shape}")
    return shape


def _check_eps(sde, eps, name="eps"):
    if not 0.0 < eps < sde.T:
        raise GMJaxError(f"{name} must be in (0, T={sde.T}) (the score is singular at t = 0), got {eps}")


def _check_steps(num_steps, name="num_steps"):
    if int(num_steps) != num_steps or num_steps < 1:
        raise GMJaxError(f"{name} must be an integer >= 1, got {num_steps}")


def _time_grid(sde, num_steps, eps):
    """The ``num_steps`` start times T, T - h, ..., eps + h (float32) and the step h = (T - eps) / num_steps."""
    h = (sde.T - eps) / num_steps
    return jnp.asarray(sde.T - h * np.arange(num_steps), jnp.float32), h


def _reverse_drift(score_fn, sde, x, t):
    """f(x, t) - g(t)^2 s(x, t) [like x] and g(t) [B]: the reverse SDE's drift (forward-time convention)."""
    f, g = sde.drift_diffusion(x, t)
    return f - _bcast(g**2, x) * score_fn(x, t).astype(x.dtype), g


def reverse_sde_step(score_fn, sde, x, t, key, *, step_size: float):
    """One Euler–Maruyama step of the reverse SDE (eq. 6) from time t [B] to t - ``step_size`` (> 0): the
    kernel :func:`reverse_sde_sample` scans, public for loops of one's own. Returns x [B, ...]."""
    drift, g = _reverse_drift(_checked("reverse_sde_step", score_fn), sde, x, t)
    return x - drift * step_size + _bcast(g, x) * jnp.sqrt(step_size) * jax.random.normal(key, x.shape, x.dtype)


def _tweedie(score_fn, sde, x, eps):
    """E[x_0 | x_eps] = (x + s(eps)^2 score) / m(eps) (Tweedie's formula): removes the noise of scale
    s(eps) the samplers stop at, the role of the reference code's noise-free last step."""
    t = jnp.full(x.shape[:1], eps, jnp.float32)
    m, s = sde.marginal(t)
    return (x + _bcast(s**2, x) * score_fn(x, t).astype(x.dtype)) / _bcast(m, x)


# ---------------------------------------------------------------------------------------- SDE samplers
def reverse_sde_sample(score_fn, sde, key, shape, *, num_steps: int = 1000, eps: float = 1e-3, denoise: bool = True):
    """Euler–Maruyama on the reverse-time SDE (Song et al. 2021, eq. 6), T -> eps in ``num_steps`` equal steps.

    Args:
      score_fn: ``s(x [B, ...], t [B]) -> [B, ...]``.
      sde: a process of :mod:`gm_jax.processes.sde`.
      key: PRNG key (prior draw and per-step noise).
      shape: (B, *event) of the samples.
      num_steps: EM steps of size (T - eps) / num_steps.
      eps: the final time (> 0: the score is singular at t = 0).
      denoise: return Tweedie's E[x_0 | x_eps] instead of x_eps.
    Returns: samples float32 of ``shape`` in model space.
    """
    score_fn = _checked("reverse_sde_sample", score_fn)
    shape = _check_shape(shape)
    _check_steps(num_steps)
    _check_eps(sde, eps)
    k_prior, k_steps = jax.random.split(key)
    ts, h = _time_grid(sde, num_steps, eps)

    def step(x, inp):
        t, k = inp
        return reverse_sde_step(score_fn, sde, x, jnp.full(shape[:1], t), k, step_size=h), None

    x, _ = jax.lax.scan(step, sde.prior_sample(k_prior, shape), (ts, jax.random.split(k_steps, num_steps)))
    return _tweedie(score_fn, sde, x, eps) if denoise else x


def _langevin_alpha(sde, t, h):
    """The alpha_i of Alg. 5 for the (sub-)VP SDEs: 1 - beta_i with beta_i = beta(t) h to first order; we
    use exp(-beta(t) h), equal to first order and positive for any step (1 - beta(t) h < 0 once
    h > 1 / beta_max, i.e. with fewer than ~20 steps). 1 for VE (Alg. 4)."""
    if isinstance(sde, VPSDE):
        return jnp.exp(-sde.beta(t) * h)
    return jnp.ones_like(t)


def langevin_corrector_step(score_fn, sde, x, t, key, *, snr: float, step_size: float):
    """One Langevin corrector step at time t [B] targeting p_t (Alg. 4/5):
    x += eps_i s + sqrt(2 eps_i) z with eps_i = 2 alpha_i (snr ||z|| / ||s||)^2, alpha_i from the predictor's
    ``step_size`` (VP/sub-VP) or 1 (VE). Returns x [B, ...].

    As in the reference code, ||z|| and ||s|| are averages over the batch of the per-example norms. Per
    example (as the algorithm is written for one sample) the ratio is heavy-tailed in low dimension: a
    point near a mode has ||s|| ~ 0 and takes a huge step (in 2-D this inflated the variance of a Gaussian
    several-fold). The batch average makes the step depend on the batch it is drawn with; under a sharded
    batch XLA adds the reduction itself."""
    score = _checked("langevin_corrector_step", score_fn)(x, t).astype(x.dtype)
    z = jax.random.normal(key, x.shape, x.dtype)
    flat = lambda a: a.reshape(a.shape[0], -1)
    grad_norm = jnp.mean(jnp.linalg.norm(flat(score), axis=-1))
    noise_norm = jnp.mean(jnp.linalg.norm(flat(z), axis=-1))
    step = 2.0 * _langevin_alpha(sde, t, step_size) * jnp.square(snr * noise_norm / jnp.maximum(grad_norm, 1e-12))
    return x + _bcast(step, x) * score + _bcast(jnp.sqrt(2.0 * step), x) * z


def pc_step(score_fn, sde, x, t, key, *, step_size: float, snr: float = 0.16, corrector_steps: int = 1):
    """One predictor-corrector step at time t [B]: ``corrector_steps`` Langevin corrections at t, then the
    Euler–Maruyama predictor to t - ``step_size`` (the reference code's order). Kernel of :func:`pc_sample`."""
    k_pred, k_corr = jax.random.split(key)
    x, _ = jax.lax.scan(
        lambda x, kc: (langevin_corrector_step(score_fn, sde, x, t, kc, snr=snr, step_size=step_size), None), x,
        jax.random.split(k_corr, corrector_steps))
    return reverse_sde_step(score_fn, sde, x, t, k_pred, step_size=step_size)


def pc_sample(score_fn, sde, key, shape, *, num_steps: int = 1000, snr: float = 0.16, corrector_steps: int = 1,
              eps: float = 1e-3, denoise: bool = True):
    """Predictor–corrector sampling (Song et al. 2021, Alg. 1, 4, 5).

    At each of the ``num_steps`` times t_i = T, ..., eps + h: ``corrector_steps`` Langevin steps at t_i
    targeting p_{t_i}, then one Euler–Maruyama predictor step to t_i - h (the reference code's order).
    ``snr`` is the target signal-to-noise ratio r of the corrector (0.16 for CIFAR-10 VE in the paper;
    ``corrector_steps=0`` reduces to :func:`reverse_sde_sample`). Other arguments and the return value
    are those of :func:`reverse_sde_sample`.
    """
    score_fn = _checked("pc_sample", score_fn)
    shape = _check_shape(shape)
    _check_steps(num_steps)
    _check_eps(sde, eps)
    if corrector_steps < 0 or int(corrector_steps) != corrector_steps:
        raise GMJaxError(f"corrector_steps must be an integer >= 0, got {corrector_steps}")
    if not snr > 0:
        raise GMJaxError(f"snr must be > 0, got {snr}")
    k_prior, k_steps = jax.random.split(key)
    ts, h = _time_grid(sde, num_steps, eps)

    def step(x, inp):
        t, k = inp
        x = pc_step(score_fn, sde, x, jnp.full(shape[:1], t), k, step_size=h, snr=snr, corrector_steps=corrector_steps)
        return x, None

    x, _ = jax.lax.scan(step, sde.prior_sample(k_prior, shape), (ts, jax.random.split(k_steps, num_steps)))
    return _tweedie(score_fn, sde, x, eps) if denoise else x


# ---------------------------------------------------------------------------------------------- the ODE
def _flow_field(score_fn, sde, x, t):
    """The probability-flow velocity f(x, t) - g(t)^2 s(x, t) / 2 (eq. 13)."""
    f, g = sde.drift_diffusion(x, t)
    return f - 0.5 * _bcast(g**2, x) * score_fn(x, t).astype(x.dtype)


def _odeint(field, y0, t0, t1, rtol, atol, solver, num_steps, max_steps):
    """Integrates dy/dt = field(y, t) from t0 to t1 (either direction); returns (y(t1), diffrax stats)."""
    if num_steps is None:
        if not (rtol > 0 and atol > 0):
            raise GMJaxError(f"rtol and atol must be > 0, got rtol={rtol}, atol={atol}")
        controller, dt0 = diffrax.PIDController(rtol=rtol, atol=atol), None
    else:
        _check_steps(num_steps)
        controller, dt0, max_steps = diffrax.ConstantStepSize(), (t1 - t0) / num_steps, num_steps
    sol = diffrax.diffeqsolve(diffrax.ODETerm(lambda t, y, args: field(y, t)), solver or diffrax.Tsit5(),
                              t0, t1, dt0, y0, stepsize_controller=controller, max_steps=max_steps)
    return jax.tree_util.tree_map(lambda a: a[-1], sol.ys), sol.stats


def tsit5_evaluations(stats) -> jax.Array:
    """Vector-field evaluations of a Tsit5 solve, from its diffrax ``stats``: 6 per attempted step (accepted or
    rejected: Tsit5's seventh stage is the next step's first) and one to start. Counting the calls directly
    agrees exactly without rejected steps and within 1% with them."""
    return 6 * stats["num_steps"] + 1


def probability_flow_sample(score_fn, sde, key, shape, *, eps: float = 1e-3, rtol: float = 1e-5, atol: float = 1e-5,
                            solver=None, num_steps: int | None = None, denoise: bool = False,
                            max_steps: int = 4096, return_stats: bool = False, x_T=None):
    """Samples by integrating the probability-flow ODE (Song et al. 2021, eq. 13) from z ~ prior at T to eps.

    Args:
      score_fn, sde, key, shape, eps: as :func:`reverse_sde_sample`; z = ``sde.prior_sample(key, shape)``,
        so the map key -> sample is deterministic (the ODE is a bijection between z and x).
      x_T: the starting point z [shape] instead of a prior draw (the latent code of
        :func:`probability_flow_encode`).
      rtol, atol: tolerances of the adaptive step-size controller (ignored with ``num_steps``).
      solver: a diffrax solver; default ``diffrax.Tsit5()`` (the paper used RK45).
      num_steps: fixed-step integration with this many steps instead of the adaptive controller.
      denoise: apply Tweedie's denoising at eps (off by default, as in the reference ODE sampler).
      max_steps: the adaptive solver's step budget (diffrax raises past it).
      return_stats: also return diffrax's stats dict (``num_steps`` = accepted + rejected steps; with Tsit5,
        :func:`tsit5_evaluations` turns it into score evaluations).
    Returns: samples float32 of ``shape``, or (samples, stats).
    """
    score_fn = _checked("probability_flow_sample", score_fn)
    shape = _check_shape(shape)
    _check_eps(sde, eps)
    if x_T is None:
        z = sde.prior_sample(key, shape)
    elif jnp.shape(x_T) != shape:
        raise GMJaxError(f"probability_flow_sample: x_T must have the shape {shape}, got {jnp.shape(x_T)}")
    else:
        z = jnp.asarray(x_T, jnp.float32)
    field = lambda x, t: _flow_field(score_fn, sde, x, jnp.full(shape[:1], t, jnp.float32))
    x, stats = _odeint(field, z, sde.T, eps, rtol, atol, solver, num_steps, max_steps)
    if denoise:
        x = _tweedie(score_fn, sde, x, eps)
    return (x, stats) if return_stats else x


def probability_flow_encode(score_fn, sde, x, *, eps: float = 1e-3, rtol: float = 1e-5, atol: float = 1e-5,
                            solver=None, num_steps: int | None = None, max_steps: int = 4096):
    """The latent code z = x(T) of data x [B, ...] at time eps: the probability-flow ODE (Song et al. 2021,
    eq. 13) integrated forwards from eps to T, the inverse of :func:`probability_flow_sample` with
    ``x_T=z`` (up to the solver's error). Arguments as there."""
    score_fn = _checked("probability_flow_encode", score_fn)
    x = jnp.asarray(x, jnp.float32)
    _check_eps(sde, eps)
    field = lambda y, t: _flow_field(score_fn, sde, y, jnp.full(x.shape[:1], t, jnp.float32))
    return _odeint(field, x, eps, sde.T, rtol, atol, solver, num_steps, max_steps)[0]


def ode_log_likelihood(score_fn, sde, x, key, *, eps: float = 1e-5, trace: str = "hutchinson", num_probes: int = 1,
                       rtol: float = 1e-5, atol: float = 1e-5, solver=None, num_steps: int | None = None,
                       max_steps: int = 4096, return_latent: bool = False):
    """log p_eps(x) [B] in nats of the model-space density, by the probability-flow ODE (Song et al. 2021,
    appendix D.2; instantaneous change of variables of Chen et al. 2018).

    Solves d/dt (x, l) = (v(x, t), div_x v(x, t)) from (x, 0) at t = eps to T with
    v = f - g^2 s / 2, and returns ``sde.prior_log_prob(x(T)) + l(T)``.

    Args:
      score_fn, sde: as :func:`reverse_sde_sample`.
      x: model-space points [B, ...] (float), taken as samples of the marginal at time ``eps``.
      key: PRNG key of the Hutchinson probes (unused for ``trace="exact"``).
      eps: the time the likelihood is evaluated at (> 0).
      trace: ``"hutchinson"``: div v ~ mean over ``num_probes`` Rademacher probes e of e^T (dv/dx) e, the
        probes drawn once and held fixed over the solve so the ODE is deterministic (an unbiased estimate
        of the log-density up to the solver error); ``"exact"``: the full Jacobian trace by one
        forward-mode product per event dimension D (costs D score evaluations: low dimension only).
      num_probes: Hutchinson probes per example.
      rtol, atol, solver, num_steps, max_steps: as :func:`probability_flow_sample`.
      return_latent: also return x(T) [B, ...], the point's image under the flow (its prior latent).
    Returns: log p_eps(x) [B] float32, or (log p, latent).
    """
    if trace not in TRACES:
        raise GMJaxError(f"ode_log_likelihood: unknown trace '{trace}'; choose one of {', '.join(TRACES)}")
    score_fn = _checked("ode_log_likelihood", score_fn)
    _check_steps(num_probes, "num_probes")
    _check_eps(sde, eps)
    x = jnp.asarray(x, jnp.float32)
    _check_shape(x.shape)
    batch, event = x.shape[0], x.shape[1:]
    dim = int(np.prod(event))
    if trace == "hutchinson" and key is None:
        raise GMJaxError("trace='hutchinson' draws its probes from key; pass a jax.random.key or use trace='exact'")
    if trace == "exact":
        # Tangent i is the i-th basis vector of the event space, for every example at once: [D, B, ...].
        tangents = jnp.broadcast_to(jnp.eye(dim, dtype=jnp.float32).reshape((dim, 1) + event), (dim,) + x.shape)
    else:
        tangents = jax.random.rademacher(key, (num_probes,) + x.shape, jnp.float32)

    def field(state, t):
        y, _ = state
        v, jvp = jax.linearize(lambda y: _flow_field(score_fn, sde, y, jnp.full((batch,), t, jnp.float32)), y)
        products = jax.vmap(jvp)(tangents).reshape(tangents.shape[0], batch, dim)  # (dv/dx) e per probe
        if trace == "exact":
            div = jnp.einsum("ibi->b", products)
        else:
            div = jnp.mean(jnp.sum(products * tangents.reshape(products.shape), axis=-1), axis=0)
        return v, div

    (latent, delta), _ = _odeint(field, (x, jnp.zeros((batch,), jnp.float32)), eps, sde.T, rtol, atol, solver,
                                 num_steps, max_steps)
    log_p = sde.prior_log_prob(latent) + delta
    return (log_p, latent) if return_latent else log_p


__all__ = ["TRACES", "langevin_corrector_step", "ode_log_likelihood", "pc_sample", "pc_step", "probability_flow_encode",
           "probability_flow_sample", "reverse_sde_sample", "reverse_sde_step", "tsit5_evaluations"]
