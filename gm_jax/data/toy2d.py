"""Two-dimensional toy densities (the FFJORD / neural-spline-flow benchmark shapes).

Each dataset is a documented generator with a fixed train set (10,000 points) and test set (5,000 points).
Where the density is known in closed form or by one-dimensional quadrature, :func:`log_density` gives it
and :func:`entropy` estimates the differential entropy H(p) = -E_p log p(x), the expected test NLL of a
perfect model, i.e. the floor no model can beat (up to Monte-Carlo noise of the test set).

Generators (after Grathwohl et al. 2019, "FFJORD", whose toy-data shapes most papers reuse):

- ``eight_gaussians``: 8 equally weighted isotropic Gaussians, centres at radius 4/1.414 and angles
  k*45 degrees, standard deviation 0.5/1.414.
- ``checkerboard``: uniform on the 8 black squares of side 2 of a 4x4 board covering [-4, 4]^2
  (area 32, so H = ln 32).
- ``rings``: 4 concentric circles of radii 3, 2.25, 1.5, 0.75 (equal weights), uniform angle, isotropic
  Gaussian noise of std 0.08. The angular integral is closed form (a Bessel I0).
- ``moons``: scikit-learn's two half-moons, with the arc parameter drawn uniformly instead of on a grid,
  noise std 0.1, then scaled by 2 and shifted by (-1, -0.2). Density by Gauss-Legendre quadrature over the
  arc parameter.
- ``two_spirals``: two interleaved arms ±(-n cos n, n sin n)/3 with n = 3*pi*sqrt(u), u ~ U(0, 1), plus
  isotropic Gaussian noise of std 0.1 (FFJORD adds a uniform jitter instead; Gaussian noise keeps the
  density a one-dimensional integral). Density by quadrature over n.
- ``pinwheel``: 5 arms; f ~ N((1, 0), diag(0.3^2, 0.1^2)) rotated by 2*pi*k/5 + 0.25*exp(f_0), times 2.
  Its density needs all preimages of a non-injective map, so none is given (``log_density`` raises).
"""

from __future__ import annotations

import zlib

import numpy as np
import tensorflow_datasets as tfds

from gm_jax.errors import GMJaxError

__all__ = ["Toy2d", "NAMES", "NUM_TRAIN", "NUM_TEST", "sample", "split_seed", "log_density", "has_density", "entropy",
           "mode_distances"]

NAMES = ("eight_gaussians", "checkerboard", "rings", "moons", "two_spirals", "pinwheel")
NUM_TRAIN = 10_000
NUM_TEST = 5_000

_LOG_2PI = np.log(2.0 * np.pi)


# ----------------------------------------------------------------------------------------------- generators
_EIGHT_ANGLES = np.arange(8) * np.pi / 4
_EIGHT_CENTRES = np.stack([np.cos(_EIGHT_ANGLES), np.sin(_EIGHT_ANGLES)], -1) * (4 / 1.414)
_EIGHT_STD = 0.5 / 1.414


def _eight_gaussians(rng, n):
    return _EIGHT_CENTRES[rng.integers(0, 8, n)] + rng.normal(size=(n, 2)) * _EIGHT_STD


def _checkerboard(rng, n):
    x1 = rng.uniform(-2, 2, n)
    x2 = rng.uniform(0, 1, n) - 2 * rng.integers(0, 2, n) + np.floor(x1) % 2
    return np.stack([x1, x2], -1) * 2


_RING_RADII = np.array([3.0, 2.25, 1.5, 0.75])
_RING_STD = 0.08


def _rings(rng, n):
    radius = _RING_RADII[rng.integers(0, 4, n)]
    angle = rng.uniform(0, 2 * np.pi, n)
    return radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1) + rng.normal(size=(n, 2)) * _RING_STD


_MOONS_STD = 0.1


def _moon_curve(t, upper):
    """Noise-free half-moon points (after the x2 + shift of the generator); t in [0, pi]."""
    if upper:
        xy = np.stack([np.cos(t), np.sin(t)], -1)
    else:
        xy = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], -1)
    return 2 * xy + np.array([-1.0, -0.2])


def _moons(rng, n):
    t = rng.uniform(0, np.pi, n)
    upper = rng.integers(0, 2, n).astype(bool)
    xy = np.where(upper[:, None], _moon_curve(t, True), _moon_curve(t, False))
    return xy + rng.normal(size=(n, 2)) * (2 * _MOONS_STD)


_SPIRAL_TURN = 3 * np.pi
_SPIRAL_STD = 0.1


def _spiral_curve(s):
    """Arm point for turning parameter s in [0, 3*pi] (one arm; the other is its negation)."""
    return np.stack([-s * np.cos(s), s * np.sin(s)], -1) / 3


def _two_spirals(rng, n):
    s = _SPIRAL_TURN * np.sqrt(rng.uniform(0, 1, n))
    sign = np.where(rng.integers(0, 2, n) == 1, 1.0, -1.0)
    return sign[:, None] * _spiral_curve(s) + rng.normal(size=(n, 2)) * _SPIRAL_STD


def _pinwheel(rng, n):
    k = rng.integers(0, 5, n)
    f = rng.normal(size=(n, 2)) * np.array([0.3, 0.1]) + np.array([1.0, 0.0])
    angle = 2 * np.pi * k / 5 + 0.25 * np.exp(f[:, 0])
    c, s = np.cos(angle), np.sin(angle)
    return 2 * np.stack([c * f[:, 0] - s * f[:, 1], s * f[:, 0] + c * f[:, 1]], -1)


_GENERATORS = {
    "eight_gaussians": _eight_gaussians,
    "checkerboard": _checkerboard,
    "rings": _rings,
    "moons": _moons,
    "two_spirals": _two_spirals,
    "pinwheel": _pinwheel,
}


def _check_name(name):
    if name not in _GENERATORS:
        raise GMJaxError(f"unknown toy2d dataset '{name}'; choose one of: {', '.join(NAMES)}")


def sample(name: str, num: int, seed: int) -> np.ndarray:
    """Draws ``num`` points [num, 2] float64 from the named generator with ``numpy`` seed ``seed``."""
    _check_name(name)
    return _GENERATORS[name](np.random.default_rng(seed), num)


def split_seed(name: str, split: str) -> int:
    """The fixed seed of a split, so every machine prepares the same points."""
    return zlib.crc32(f"{name}/{split}".encode())


# ---------------------------------------------------------------------------------------------- densities
def _log_gauss_curve_mixture(x, curve_points, log_weights, std):
    """log sum_j w_j N(x; c_j, std^2 I) for x [N, 2], curve points [M, 2], log weights [M]."""
    out = np.empty(len(x))
    for lo in range(0, len(x), 2048):  # chunks keep the [chunk, M] matrix small
        xs = x[lo:lo + 2048]
        sq = ((xs[:, None, :] - curve_points[None]) ** 2).sum(-1)
        a = log_weights[None] - sq / (2 * std**2)
        m = a.max(-1, keepdims=True)
        out[lo:lo + 2048] = (m[:, 0] + np.log(np.exp(a - m).sum(-1))) - _LOG_2PI - 2 * np.log(std)
    return out


def _gauss_legendre(a, b, n):
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return 0.5 * (b - a) * nodes + 0.5 * (b + a), 0.5 * (b - a) * weights


def _log_i0(z):
    """log I0(z) for z >= 0, stable for large z (I0 grows like e^z / sqrt(2 pi z))."""
    small = z < 500
    zs = np.where(small, z, 1.0)
    zl = np.where(small, 1.0, z)
    return np.where(small, np.log(np.i0(zs)), zl - 0.5 * np.log(2 * np.pi * zl) + np.log1p(1 / (8 * zl)))


def log_density(name: str, x) -> np.ndarray:
    """Exact log-density log p(x) [N] (float64 nats) of the named generator at points x [N, 2].

    Raises GMJaxError for ``pinwheel``, whose density is not available.
    """
    _check_name(name)
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[-1] != 2:
        raise GMJaxError(f"toy2d log_density expects points of shape [N, 2], got {x.shape}")
    if name == "eight_gaussians":
        return _log_gauss_curve_mixture(x, _EIGHT_CENTRES, np.full(8, -np.log(8)), _EIGHT_STD)
    if name == "checkerboard":
        u = x / 2
        inside = (np.abs(u) < 2).all(-1) & ((np.floor(u[:, 0]) + np.floor(u[:, 1])) % 2 == 0)
        return np.where(inside, -np.log(32.0), -np.inf)
    if name == "rings":
        rho = np.linalg.norm(x, axis=-1)[:, None]
        r = _RING_RADII[None]
        z = rho * r / _RING_STD**2
        # angular integral of N(x; r(cos t, sin t), s^2 I) over t ~ U(0, 2 pi) = e^{-(rho^2 + r^2)/2s^2} I0(z)/(2 pi s^2)
        log_comp = -((rho - r) ** 2) / (2 * _RING_STD**2) + (_log_i0(z) - z) - _LOG_2PI - 2 * np.log(_RING_STD)
        m = log_comp.max(-1, keepdims=True)
        return m[:, 0] + np.log(np.exp(log_comp - m).mean(-1))
    if name == "moons":
        t, w = _gauss_legendre(0.0, np.pi, 256)
        pts = np.concatenate([_moon_curve(t, True), _moon_curve(t, False)])
        logw = np.log(np.concatenate([w, w]) / (2 * np.pi))
        return _log_gauss_curve_mixture(x, pts, logw, 2 * _MOONS_STD)
    if name == "two_spirals":
        # s = 3 pi sqrt(u) has density 2 s / (3 pi)^2 on [0, 3 pi]
        s, w = _gauss_legendre(0.0, _SPIRAL_TURN, 1024)
        arm = _spiral_curve(s)
        pts = np.concatenate([arm, -arm])
        wt = w * 2 * s / _SPIRAL_TURN**2 / 2
        logw = np.log(np.concatenate([wt, wt]))
        return _log_gauss_curve_mixture(x, pts, logw, _SPIRAL_STD)
    raise GMJaxError(f"toy2d '{name}' has no closed-form density (its generator folds the plane); "
                     "use one of: eight_gaussians, checkerboard, rings, moons, two_spirals")


def has_density(name: str) -> bool:
    _check_name(name)
    return name != "pinwheel"


def entropy(name: str, num: int = 50_000, seed: int = 12345) -> tuple[float, float]:
    """Monte-Carlo differential entropy H(p) = -E log p(x) in nats, with its standard error."""
    lp = log_density(name, sample(name, num, seed))
    return float(-lp.mean()), float(lp.std(ddof=1) / np.sqrt(num))


def mode_distances(name: str, x) -> np.ndarray:
    """Distance of points x [N, 2] to each mode of the named mixture, in units of the mode's standard deviation,
    [N, M] float64; the input of :func:`gm_jax.metrics.coverage.mode_coverage`.

    - ``eight_gaussians`` (M = 8): ||x - c_k|| / s for the generator's centres c_k = (4/1.414)(cos, sin)(k pi/4)
      and s = 0.5/1.414.
    - ``rings`` (M = 4): the modes are circles, so | ||x|| - r_k | / 0.08 for the radii r_k = 3, 2.25, 1.5, 0.75
      (away from the origin this radial offset is ~N(0, 0.08^2)).

    Raises GMJaxError for the other datasets, whose modes are not points or circles.
    """
    if name not in ("eight_gaussians", "rings"):
        raise GMJaxError(f"toy2d mode_distances supports 'eight_gaussians' and 'rings' (mixtures with known modes), "
                         f"got '{name}'")
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[-1] != 2:
        raise GMJaxError(f"toy2d mode_distances expects points of shape [N, 2], got {x.shape}")
    if name == "eight_gaussians":
        return np.linalg.norm(x[:, None, :] - _EIGHT_CENTRES[None], axis=-1) / _EIGHT_STD
    rho = np.linalg.norm(x, axis=-1)
    return np.abs(rho[:, None] - _RING_RADII[None]) / _RING_STD


# ------------------------------------------------------------------------------------------------ builder
class Toy2d(tfds.core.GeneratorBasedBuilder):
    """Fixed train/test samples of the 2-D toy densities (``toy2d/<name>``), generated locally."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=n, description=f"toy2d {n}") for n in NAMES]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({"point": tfds.features.Tensor(shape=(2,), dtype=np.float32)}),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        name = self.builder_config.name
        return {
            "train": self._generate_examples(sample(name, NUM_TRAIN, split_seed(name, "train"))),
            "test": self._generate_examples(sample(name, NUM_TEST, split_seed(name, "test"))),
        }

    def _generate_examples(self, points):
        for i, p in enumerate(points.astype(np.float32)):
            yield i, {"point": p}
