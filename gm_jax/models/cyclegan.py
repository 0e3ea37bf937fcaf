"""CycleGAN: unpaired image-to-image translation (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks").

Two generators G_AB: A -> B and G_BA: B -> A (:class:`~gm_jax.nets.cyclegan.ResNetTranslator`) and two
PatchGAN discriminators D_A, D_B (:class:`~gm_jax.nets.cyclegan.PatchDiscriminator`, logit maps
[B, h, w]). The full objective (Zhu et al. eq. 3, plus the identity term of sec. 5.2):

    L_G = adv(D_B(G_AB(a))) + adv(D_A(G_BA(b)))
          + lambda_cycle    * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)
          + identity_weight * (|G_AB(b) - b|_1 + |G_BA(a) - a|_1)
    L_D = d(D_A(a), D_A(sg G_BA(b))) + d(D_B(b), D_B(sg G_AB(a)))

with ``adv`` / ``d`` the generator / discriminator losses of :mod:`gm_jax.losses.adversarial` for
``config.loss`` (least squares by default, as in the paper, sec. 4), |.|_1 the per-example mean absolute
error of :func:`~gm_jax.losses.cycle_consistency_loss` / :func:`~gm_jax.losses.identity_loss`, batch means
throughout, and sg the stop-gradient. Defaults follow the paper: lambda_cycle = 10, identity weight
0.5 lambda = 5, Adam lr 2e-4, beta1 0.5. Two notes on units: our least-squares losses carry Mao et al.'s
1/2 (D: 1/2 (r-1)^2 + 1/2 f^2, which is exactly the paper's "divide the objective by 2 while optimizing
D"; G: 1/2 (f-1)^2, half the paper's generator term, so relative to the L1 terms the adversarial weight
is half the paper's); the paper's history buffer of 50 generated images for the discriminator and its
linear learning-rate decay over the second half of training are not used.

Domains: on a two-domain dataset (``cycle_gan/horse2zebra`` and the rest of the TFDS cycle_gan family, or
the embedded ``digits2inverted``; :mod:`gm_jax.data.domains`) A and B are its ``image`` and ``image_b``
(``transform`` = ``second_domain``, what ``auto`` picks there). On a one-domain dataset (``auto``: invert)
domain B is a fixed transform of the images, ``transform`` = ``invert`` (x -> K-1-x, K grey levels) or
``flip`` (left-right mirror): within a batch the B images are the transformed A images rolled by a random
shift s in [1, B-1], so no A image meets its own transform: the pairs the model sees are never aligned
(and the shift changes every step).

Model space: integers 0..K-1 are uniformly dequantized into [-1, 1] for training (bin centres for
translation), the range of the generators' tanh. Parameter groups (updated in this order each step, with
their own Adam optimizers): ``discriminator`` {d_a, d_b}, then ``generator`` {g_ab, g_ba}. The networks
keep no state (instance norm), so ``state`` is {"generator": {}, "discriminator": {}}. CycleGAN defines no
likelihood (``has_log_prob = False``); ``sample`` translates given images (``source=``), and the trainer
passes the first test images, so ``samples.png`` shows their translations A -> B.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

import jax
import jax.numpy as jnp

from gm_jax.data.loading import DataSpec
from gm_jax.data.preprocess import dequantize, model_to_data_space
from gm_jax.errors import GMJaxError
from gm_jax.losses.adversarial import GANLoss, cycle_consistency_loss, discriminator_loss, generator_loss, \
    identity_loss
from gm_jax.models.base import Config, check_group, check_positive, hparam, rbg_key
from gm_jax.nets.cyclegan import Padding, PatchDiscriminator, ResNetTranslator

__all__ = ["CycleGAN", "CycleGANConfig", "TRANSFORMS", "DIRECTIONS"]

Transform = Literal["auto", "second_domain", "invert", "flip"]
Direction = Literal["a_to_b", "b_to_a"]
TRANSFORMS = typing.get_args(Transform)
DIRECTIONS = typing.get_args(Direction)


@dataclasses.dataclass(frozen=True)
class CycleGANConfig(Config):
    """CycleGAN hyper-parameters (defaults: the paper's objective and optimizer, networks sized for 8 x 8).

    Task: ``transform``: ``second_domain`` (a two-domain dataset's B images), or ``invert`` | ``flip``
    (domain B made from the dataset's images, domain A); ``auto``: second_domain where the dataset has one,
    else invert.
    Objective: ``loss`` (one of GAN_LOSSES; least_squares in the paper), ``lambda_cycle`` (lambda = 10)
    and ``identity_weight`` (Zhu et al. use 0.5 lambda = 5 where colours must be kept, e.g. photo <-> painting;
    0 here, the default, because inverting digits changes every intensity, and with 5 the invert task did not
    learn in 600 steps: test error 0.98 against 0.10 without the term).
    Training: Adam ``lr``, ``b1``, ``b2`` for both groups (2e-4, 0.5, 0.999 in the paper).
    Generators: ``width`` channels, ``num_blocks`` residual blocks, ``num_down`` stride-2 stages,
    ``in_kernel`` first/last kernel (paper at 256 x 256: 64, 9, 2, 7), ``padding`` of their stride-1 convs
    (reflect in the paper; zero compiles and runs about twice as fast on CPU). Discriminators: ``d_width``
    channels, ``d_layers`` stride-2 convs, ``d_kernel`` kernel (paper: 64, 3, 4).
    """

    transform: Transform = hparam("auto", "domain B: second_domain (the dataset's), invert or flip; auto picks")
    loss: GANLoss = hparam("least_squares", "adversarial objective (least_squares in the paper)")
    lambda_cycle: float = hparam(10.0, "weight lambda of the cycle-consistency loss")
    identity_weight: float = hparam(0.0, "weight of the identity loss (paper: 0.5 lambda where colours must be kept)")
    lr: float = hparam(2e-4, "Adam learning rate of both generators and both critics")
    b1: float = hparam(0.5, "Adam beta1 of both groups")
    b2: float = hparam(0.999, "Adam beta2 of both groups")
    width: int = hparam(32, "generator channels")
    num_blocks: int = hparam(4, "generator residual blocks")
    num_down: int = hparam(0, "generator stride-2 down- and up-sampling stages")
    in_kernel: int = hparam(3, "kernel size of the generators' first and last convs")
    padding: Padding = hparam(
        "reflect", "padding of the generators' stride-1 convs (reflect: paper; zero: faster on CPU)")
    d_width: int = hparam(32, "discriminator channels")
    d_layers: int = hparam(2, "discriminator stride-2 convs")
    d_kernel: int = hparam(4, "discriminator kernel size")

    def validate(self):
        check_positive(self, "width", "num_blocks", "in_kernel", "d_width", "d_layers", "d_kernel")
        if self.num_down < 0:
            raise GMJaxError(f"num_down must be >= 0, got {self.num_down}")
        if self.in_kernel % 2 == 0:
            raise GMJaxError(f"in_kernel must be odd (the conv keeps the image size), got {self.in_kernel}")
        if self.lambda_cycle < 0 or self.identity_weight < 0:
            raise GMJaxError(f"lambda_cycle and identity_weight must be >= 0, got {self.lambda_cycle}, "
                             f"{self.identity_weight}")
        if self.lr <= 0:
            raise GMJaxError(f"lr must be > 0, got {self.lr}")
        if not (0.0 <= self.b1 < 1.0 and 0.0 <= self.b2 < 1.0):
            raise GMJaxError(f"b1 and b2 must be in [0, 1), got {self.b1}, {self.b2}")


class CycleGAN:
    """CycleGAN on an image dataset, translating it to and from its ``transform`` (see the module doc).

    Variables: ``params`` {"generator": {"g_ab", "g_ba"}, "discriminator": {"d_a", "d_b"}}; ``state``
    {"generator": {}, "discriminator": {}}.
    """

    has_log_prob = False
    default_train = {"steps": 2000, "batch_size": 64, "checkpoint_every": 500, "log_every": 100}

    def __init__(self, config: CycleGANConfig, spec: DataSpec):
        if spec.kind != "image":
            raise GMJaxError(f"cyclegan translates images, and {spec.name} holds {spec.kind}")
        h, w = spec.shape[0], spec.shape[1]
        factor = 2 ** config.num_down
        if h % factor or w % factor:
            raise GMJaxError(f"num_down={config.num_down} needs image sides divisible by {factor}, got {h}x{w}; "
                             "lower num_down")
        if config.padding == "reflect" and (config.in_kernel - 1) // 2 >= min(h, w):
            raise GMJaxError(f"in_kernel={config.in_kernel} is too large for {h}x{w} images")
        transform = config.transform
        if transform == "auto":
            transform = "second_domain" if spec.second_domain else "invert"
        if transform == "second_domain" and not spec.second_domain:
            raise GMJaxError(f"transform=second_domain needs a two-domain dataset (e.g. cycle_gan/horse2zebra or "
                             f"digits2inverted), and {spec.name} has one domain; use transform=invert or flip")
        self.config, self.spec, self.transform = config, spec, transform
        self.generator = ResNetTranslator(config.width, config.num_blocks, config.num_down, config.in_kernel,
                                          out_channels=spec.shape[-1], padding=config.padding)
        self.discriminator = PatchDiscriminator(config.d_width, config.d_layers, config.d_kernel)
        self.param_groups = (("discriminator", 1), ("generator", 1))
        opt = {"lr": config.lr, "b1": config.b1, "b2": config.b2}
        self.group_train_overrides = {"discriminator": dict(opt), "generator": dict(opt)}

    # ------------------------------------------------------------------------------------ domains
    def domain_b(self, x):
        """The fixed transform making domain B, in data space: integers [B, H, W, C] -> [B, H, W, C], same
        dtype (``invert``: K-1-x; ``flip``: mirrored left-right, the W axis)."""
        x = jnp.asarray(x)
        if self.transform == "second_domain":
            raise GMJaxError(f"{self.spec.name}'s domain B is its own images (image_b), not a transform of A")
        if self.transform == "invert":
            return (self.spec.num_levels - 1 - x.astype(jnp.int32)).astype(x.dtype)
        return x[:, :, ::-1, :]

    def _check_source(self, x, who):
        x = jnp.asarray(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.spec.shape):
            raise GMJaxError(f"{who} expects data-space images [N, {', '.join(map(str, self.spec.shape))}], "
                             f"got shape {x.shape}")
        return x

    def to_model_space(self, x, key=None):
        """Data-space integers [B, H, W, C] -> model space [B, H, W, C] float32 in [-1, 1]: uniformly
        dequantized with ``key``, at the bin centres without one."""
        # The noise is drawn from an RBG key derived from ``key``: threefry's unrolled hash compiles slowly on CPU.
        noise_key = rbg_key(key) if key is not None else None
        y, _ = dequantize(x, self.spec.num_levels, noise_key, noise=key is not None)
        return y

    # ------------------------------------------------------------------------------------ networks
    def generate(self, variables, y, direction: str = "a_to_b"):
        """G_AB (``a_to_b``) or G_BA (``b_to_a``) in model space: [B, H, W, C] -> [B, H, W, C] in (-1, 1)."""
        if direction not in DIRECTIONS:
            raise GMJaxError(f"unknown direction '{direction}'; use a_to_b or b_to_a")
        name = "g_ab" if direction == "a_to_b" else "g_ba"
        return self.generator.apply({"params": variables["params"]["generator"][name]}, y)

    def critic(self, variables, y, domain: str):
        """D_A (``domain="a"``) or D_B (``"b"``) in model space: [B, H, W, C] -> patch logits [B, h, w]."""
        if domain not in ("a", "b"):
            raise GMJaxError(f"unknown domain '{domain}'; use a or b")
        return self.discriminator.apply({"params": variables["params"]["discriminator"][f"d_{domain}"]}, y)

    def translate(self, variables, x, direction: str = "a_to_b"):
        """Translates data-space images x [N, H, W, C] (integers, the dataset's layout) from domain A to B
        (``a_to_b``) or B to A (``b_to_a``): bin centres -> generator -> quantized [N, H, W, C] (uint8)."""
        x = self._check_source(x, "translate")
        return model_to_data_space(self.spec, self.generate(variables, self.to_model_space(x), direction))

    # ----------------------------------------------------------------------------------- the interface
    def init(self, key, example_batch):
        x = self.to_model_space(jnp.asarray(example_batch[self.spec.data_key][:1]))
        keys = jax.random.split(key, 4)
        g = jax.jit(lambda k: self.generator.init(rbg_key(k), x)["params"])
        d = jax.jit(lambda k: self.discriminator.init(rbg_key(k), x)["params"])
        return {"params": {"generator": {"g_ab": g(keys[0]), "g_ba": g(keys[1])},
                           "discriminator": {"d_a": d(keys[2]), "d_b": d(keys[3])}},
                "state": {"generator": {}, "discriminator": {}}}

    def unpaired_batch(self, batch, key):
        """(a, b) model-space batches [B, H, W, C] from one data batch: a = the images, b = the batch's
        ``image_b`` (a two-domain dataset) or the transform of the images rolled by a random shift in
        [1, B-1] (never aligned with a), both dequantized."""
        x = jnp.asarray(batch[self.spec.data_key])
        if self.transform == "second_domain":
            k_a, k_b = jax.random.split(key)
            return self.to_model_space(x, k_a), self.to_model_space(jnp.asarray(batch["image_b"]), k_b)
        n = x.shape[0]
        if n < 2:
            raise GMJaxError(f"cyclegan needs batches of at least 2 images to draw unpaired domains, got {n}")
        k_shift, k_a, k_b = jax.random.split(key, 3)
        shift = jax.random.randint(k_shift, (), 1, n)
        x_b = self.domain_b(jnp.roll(x, shift, axis=0))
        return self.to_model_space(x, k_a), self.to_model_space(x_b, k_b)

    def loss(self, variables, batch, key, *, group: str | None = None):
        """The loss of ``group`` (required: discriminator or generator; see the module doc), the batch
        mean, and its metrics: for the generator ``adv_ab``, ``adv_ba``, ``cycle`` and ``identity`` (the
        unweighted sums over both directions); for the discriminator ``d_a``, ``d_b`` (its two losses) and
        the mean logits on real and fake images."""
        check_group(self, group)
        c = self.config
        a, b = self.unpaired_batch(batch, key)
        n = a.shape[0]
        # Each generator runs once on its source batch and (for the identity term) its target batch; every
        # network acts on each example alone (instance norm), so concatenating batches changes nothing.
        idt = c.identity_weight > 0 and group == "generator"
        fake_b = self.generate(variables, jnp.concatenate([a, b]) if idt else a, "a_to_b")
        fake_a = self.generate(variables, jnp.concatenate([b, a]) if idt else b, "b_to_a")
        (fake_b, idt_b), (fake_a, idt_a) = (fake_b[:n], fake_b[n:]), (fake_a[:n], fake_a[n:])
        if group == "discriminator":
            fake_a, fake_b = jax.lax.stop_gradient(fake_a), jax.lax.stop_gradient(fake_b)
            la, lb = self.critic(variables, jnp.concatenate([a, fake_a]), "a"), \
                self.critic(variables, jnp.concatenate([b, fake_b]), "b")
            (ra, fa), (rb, fb) = (la[:n], la[n:]), (lb[:n], lb[n:])
            d_a, d_b = jnp.mean(discriminator_loss(ra, fa, kind=c.loss)), jnp.mean(discriminator_loss(rb, fb, kind=c.loss))
            metrics = {"d_a": d_a, "d_b": d_b, "d_a_real": jnp.mean(ra), "d_a_fake": jnp.mean(fa),
                       "d_b_real": jnp.mean(rb), "d_b_fake": jnp.mean(fb)}
            return d_a + d_b, metrics, variables["state"]
        adv_ab = jnp.mean(generator_loss(self.critic(variables, fake_b, "b"), kind=c.loss))
        adv_ba = jnp.mean(generator_loss(self.critic(variables, fake_a, "a"), kind=c.loss))
        cycle = (jnp.mean(cycle_consistency_loss(a, self.generate(variables, fake_b, "b_to_a")))
                 + jnp.mean(cycle_consistency_loss(b, self.generate(variables, fake_a, "a_to_b"))))
        loss = adv_ab + adv_ba + c.lambda_cycle * cycle
        metrics = {"adv_ab": adv_ab, "adv_ba": adv_ba, "cycle": cycle}
        if idt:
            identity = jnp.mean(identity_loss(b, idt_b)) + jnp.mean(identity_loss(a, idt_a))
            loss = loss + c.identity_weight * identity
            metrics["identity"] = identity
        return loss, metrics, variables["state"]

    def log_prob(self, variables, x, key, *, labels=None):
        raise GMJaxError("CycleGAN has no likelihood (has_log_prob is False): it translates images between two "
                         "domains; judge its translations (e.g. the error against the known transform) instead")

    def sample(self, variables, key, num, *, source=None, direction: str = "a_to_b"):
        """Translations of ``source`` (data-space images [N, H, W, C] of the input domain; the first ``num``
        are used) -> data-space images [min(N, num), H, W, C] (uint8 like the dataset). Translation is
        deterministic; ``key`` is unused. ``gm-jax train`` passes the first test images as ``source``."""
        del key
        if source is None:
            raise GMJaxError("cyclegan translates images: pass source=... (gm-jax train writes translations of "
                             "test images)")
        source = self._check_source(source, "sample")
        return self.translate(variables, source[:num], direction)
