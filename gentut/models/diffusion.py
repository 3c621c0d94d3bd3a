"""Denoising diffusion (DDPM, Ho et al., 2020) for 28x28 images, with DDIM sampling and guidance.

The forward process adds Gaussian noise in T steps, q(x_t | x_{t-1}) = N(sqrt(1 - beta_t)
x_{t-1}, beta_t I), so that x_T is nearly pure noise; its t-step marginal has the closed form
q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), alpha_bar_t = prod_{s<=t} (1 -
beta_s). A U-Net eps_theta(x_t, t, y) learns the noise that made x_t from x_0 (the simplified
loss); reversing the chain with it turns noise into images: ancestral sampling over all T
steps (Ho et al., Algorithm 2) or over a subsequence of them (Nichol & Dhariwal's
respacing), or DDIM's deterministic jumps (Song et al., 2021, with eta = 0). Labels are
dropped to a null class during training, so the same network also predicts unconditionally
and classifier-free guidance (Ho & Salimans, 2022) can mix the two; without a label, a
smaller, shorter-trained version of the network can guide the unconditional prediction the
same way (autoguidance, Karras et al., 2024). `Guided` holds what flow matching
(`gentut.models.flowmatch`) shares.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .base import Generative, adam
from .unet import NULL_CLASS, UNet

T = 1000                     # Ho et al., section 4: T = 1000 steps
BETA_1, BETA_T = 1e-4, 0.02  # Ho et al., section 4: the linear schedule's ends
COSINE_S = 0.008             # Nichol & Dhariwal, eq. 17: the offset that keeps beta_1 from 0
MAX_BETA = 0.999             # Nichol & Dhariwal, section 3.2: clip beta_t, no singularity at T
LR = 1e-3                    # measured; see the note in `Guided.optimizers`
BATCH_SIZE = 128             # Ho et al., appendix B
GRAD_CLIP = 1.0              # Ho et al.'s released code clips the gradient norm at 1
# A label is dropped to the null class with p = 0.5, where Ho & Salimans drop 0.1 or 0.2 (0.5
# did worse for their guided samples): the unconditional prediction, which `sample` uses
# without labels, learns only from the dropped ones. At 0.1, after the recipe's 18,720 steps
# on MNIST, 500 unconditional samples scored FID 70.9 against 16.1 for 500 conditional ones
# (500 real images: 15.0); 2,000 more steps at 0.5 brought the unconditional FID to 54.5
# (book/making/diffusion.md)
P_UNCOND = 0.5
EMA_DECAY = 0.999            # the weights' moving average; Ho et al. use 0.9999 for 800k steps
# omega = 1 + w of Ho & Salimans, who sweep w from 0.1 to 4: small w gives their best FID,
# large w their best Inception Score; omega = 2 is a middle choice for the chapter to measure
GUIDANCE = 2.0
# omega of autoguidance (Karras et al., 2024): the unconditional prediction pushed away from
# its guide's. Guided by a (16, 32, 32) U-Net of 3,000 iterations, 1,000 unconditional samples
# of diffusion-fashion scored FID 16.1 alone, 9.6, 9.0, 9.5 and 10.2 at 1.5, 1.75, 2 and 2.5,
# and of flowmatch-fashion 8.6 at 1.75 and 13.4 at 2.25 (book/making/diffusion.md)
AUTOGUIDANCE = 1.75
# images per network call when sampling on a CPU: in slices of 64, the U-Net took 2.1 ms an
# image against 3.1 ms in one call of 1,024 (2-core AMD EPYC, float32; 64 and 128 were best)
CPU_BATCH = 64

EpsModel = Callable[[torch.Tensor, int], torch.Tensor]  # (x_t, integer step t) -> eps


def linear_alpha_bar(steps: int = T) -> torch.Tensor:
    """alpha_bar_t for t = 0..steps (alpha_bar_0 = 1) of Ho et al.'s linear betas, 1e-4 to 0.02."""
    beta = torch.linspace(BETA_1, BETA_T, steps, dtype=torch.float64)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - beta, 0)])


def cosine_alpha_bar(steps: int = T) -> torch.Tensor:
    """alpha_bar_t for t = 0..steps of Nichol & Dhariwal's cosine schedule (their eq. 17),
    alpha_bar_t = f(t) / f(0) with f(t) = cos((t / T + s) / (1 + s) pi / 2)^2, its betas
    clipped at MAX_BETA: noise is added more evenly, and fewer steps are wasted on near-noise."""
    t = torch.arange(steps + 1, dtype=torch.float64)
    f = torch.cos((t / steps + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2
    beta = (1 - f[1:] / f[:-1]).clamp(max=MAX_BETA)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - beta, 0)])


SCHEDULES = {"cosine": cosine_alpha_bar, "linear": linear_alpha_bar}


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, alpha_bar_t: torch.Tensor) -> torch.Tensor:
    """x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t): q(x_t|x_0) solved for x_0."""
    return (x_t - (1 - alpha_bar_t).sqrt() * eps) / alpha_bar_t.sqrt()


def ancestral_sample(eps_model: EpsModel, x: torch.Tensor, alpha_bar: torch.Tensor,
                     generator: torch.Generator | None = None, clip: bool = False,
                     steps: int | None = None) -> torch.Tensor:
    """Ho et al.'s Algorithm 2: from x_T = x, draw x_{t-1} ~ N(mu_t, beta_tilde_t I) for t = T..1.

    mu_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0 + sqrt(alpha_t) (1 -
    alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t is the mean of q(x_{t-1} | x_t, x_0) (Ho et al.,
    eq. 7) at x_0 predicted from eps; it equals Algorithm 2's 1/sqrt(alpha_t) (x_t - beta_t /
    sqrt(1 - alpha_bar_t) eps). The variance is that posterior's, beta_tilde_t = (1 -
    alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t. `clip` clamps the predicted x_0 to [-1, 1]
    (images' range), as Ho et al.'s code does. Noise is drawn on the CPU from `generator`.
    With `steps` < T it walks the subsequence `ddim_steps(steps)` instead, each pair t > s a
    step with alpha_t = alpha_bar_t / alpha_bar_s (Nichol & Dhariwal's respacing, section 4:
    the same as DDIM with eta = 1).
    """
    ts = ddim_steps(steps or len(alpha_bar) - 1, len(alpha_bar) - 1)
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        ab_t, ab_prev = alpha_bar[t], alpha_bar[s]
        alpha_t = ab_t / ab_prev
        beta_t = 1 - alpha_t
        x_0 = predict_x0(x, eps_model(x, t), ab_t)
        if clip:
            x_0 = x_0.clamp(-1, 1)
        mu = (ab_prev.sqrt() * beta_t * x_0 + alpha_t.sqrt() * (1 - ab_prev) * x) / (1 - ab_t)
        x = mu
        if s > 0:  # beta_tilde = 0 on the step to x_0 (alpha_bar_0 = 1): it adds no noise
            z = torch.randn(x.shape, generator=generator).to(x.device)
            x = mu + ((1 - ab_prev) / (1 - ab_t) * beta_t).sqrt() * z
    return x


def ddim_steps(steps: int, chain: int = T) -> list[int]:
    """The DDIM subsequence: `steps` + 1 evenly spaced integers from `chain` down to 0."""
    if not 1 <= steps <= chain:
        raise ValueError(f"DDIM takes 1 to {chain} steps, got {steps}")
    return torch.linspace(chain, 0, steps + 1).round().long().tolist()


def ddim_sample(eps_model: EpsModel, x: torch.Tensor, alpha_bar: torch.Tensor, steps: int,
                clip: bool = False) -> torch.Tensor:
    """DDIM with eta = 0 (Song et al., eq. 12): from x_T = x, for each pair t > s of the
    subsequence, x_s = sqrt(alpha_bar_s) x_0 + sqrt(1 - alpha_bar_s) eps, where x_0 and eps are
    the network's predictions at x_t. Deterministic: the same x_T gives the same image. With
    `clip`, x_0 is clamped to [-1, 1] and eps recomputed from it, to keep the two consistent."""
    ts = ddim_steps(steps, len(alpha_bar) - 1)
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        ab_t, ab_s = alpha_bar[t], alpha_bar[s]
        eps = eps_model(x, t)
        x_0 = predict_x0(x, eps, ab_t)
        if clip:
            x_0 = x_0.clamp(-1, 1)
            eps = (x - ab_t.sqrt() * x_0) / (1 - ab_t).sqrt()
        x = ab_s.sqrt() * x_0 + (1 - ab_s).sqrt() * eps
    return x


def ema_copy(net: nn.Module) -> nn.Module:
    """A copy of `net` whose weights are buffers: saved in the state_dict and moved by .to()
    with the model, but neither optimized nor counted among its parameters."""
    ema = copy.deepcopy(net)
    for module in ema.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            delattr(module, name)
            module.register_buffer(name, p.detach().clone())
    return ema


class Guided(Generative):
    """What DDPM and flow matching share: a U-Net (x_t, t, y) -> image-sized output, its
    moving average used for sampling, label dropout, classifier-free guidance, autoguidance
    by a guide (`attach_guide`), and `sample`.

    A family sets `sampler` and `steps` (its default way to sample) and `loss_name`, and
    implements `loss` (its objective) and `generate` (its sampling); `step` is shared. Pass
    `net` to use another network of the U-Net's signature (in the tests, an exact analytic
    one).
    """

    value_range = (-1.0, 1.0)  # Ho et al., section 3.3: images scaled to [-1, 1]
    batch_size = BATCH_SIZE
    guidance = GUIDANCE
    autoguidance = AUTOGUIDANCE
    sampler: str = ""
    steps: int = 0
    samplers: dict[str, int] = {}  # each sampler's network evaluations per step
    loss_name: str = ""  # the family's regression loss, as its history records it

    def __init__(self, net: nn.Module | None = None) -> None:
        super().__init__()
        self.net = net if net is not None else UNet()
        self.ema = ema_copy(self.net)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        self.guide: nn.Module | None = None  # set by `attach_guide`

    def attach_guide(self, guide: Guided) -> None:
        """Guide unconditional samples with `guide`'s moving average: a smaller network of the
        same family, trained shorter on the same data (a bad version of this one)."""
        self.guide = guide.ema.to(self.device)

    @property
    def device(self) -> torch.device:
        return self.ema_updates.device  # an analytic `net` may have no parameters

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # LR: Ho et al. use 2e-4 for 800k steps; over 300 steps on MNIST here, 1e-3 lowered the
        # loss faster with no instability (the budget of this CPU is tens of thousands of steps)
        return {"model": adam(self.net.parameters(), LR)}

    def drop_labels(self, y: torch.Tensor) -> torch.Tensor:
        """y with each label replaced by the null class with probability P_UNCOND, so that the
        one network learns the conditional and the unconditional prediction."""
        drop = torch.rand(y.shape, device=y.device) < P_UNCOND
        return torch.where(drop, torch.full_like(y, NULL_CLASS), y)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The family's regression loss on images x and labels y (L_simple, L_CFM)."""
        raise NotImplementedError

    def step(self, x, y, opt):
        """One step of either family: labels dropped to the null class (Ho & Salimans), the
        family's regression loss, a clipped gradient step and the EMA's step. For DDPM it is
        Ho et al.'s Algorithm 1: the network learns to name the noise in x_t; for flow
        matching, the velocity that carries noise to images."""
        loss = self.loss(x, self.drop_labels(y))
        self.update(loss, opt)
        return {self.loss_name: loss.detach()}

    def update(self, loss: torch.Tensor, opt: dict[str, torch.optim.Optimizer]) -> None:
        """A gradient step on `loss` (its norm clipped at GRAD_CLIP), then the EMA's step."""
        opt["model"].zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), GRAD_CLIP)
        opt["model"].step()
        self.update_ema()

    @torch.no_grad()
    def update_ema(self) -> None:
        """theta_ema <- d theta_ema + (1 - d) theta, with d = min(EMA_DECAY, (1 + n) / (10 + n))
        after n updates (the warm-up of TensorFlow's ExponentialMovingAverage): early on the
        average follows the weights, so that snapshots show what training has reached."""
        self.ema_updates += 1
        n = self.ema_updates.float()
        decay = torch.clamp((1 + n) / (10 + n), max=EMA_DECAY)
        ema = dict(self.ema.named_buffers())
        for name, p in self.net.named_parameters():
            ema[name].lerp_(p.detach().to(ema[name].dtype), 1 - decay)

    def predict(self, x: torch.Tensor, t: float, y: torch.Tensor | None,
                guidance: float) -> torch.Tensor:
        """The EMA network's output at time t in [0, 1], guided: weak + omega (strong - weak),
        omega = `guidance`, 0 the weak prediction and 1 the strong one. With labels y, strong
        is the conditional output and weak the unconditional one (classifier-free guidance,
        more pushes samples towards class y). Without, strong is the unconditional output
        and weak the guide's (autoguidance); with no guide, the unconditional output alone."""
        tt = torch.full((len(x),), t, device=x.device)
        null = torch.full((len(x),), NULL_CLASS, device=x.device, dtype=torch.long)
        if y is None:  # autoguidance: the model against its guide, where it has one
            if self.guide is None or guidance == 1:
                return self.network(self.ema, x, tt, null)
            if guidance == 0:
                return self.network(self.guide, x, tt, null)
            strong = self.network(self.ema, x, tt, null)
            weak = self.network(self.guide, x, tt, null)
        else:  # classifier-free guidance: the conditional against the unconditional output
            if guidance in (0, 1):
                return self.network(self.ema, x, tt, y if guidance == 1 else null)
            both = self.network(self.ema, torch.cat([x, x]), torch.cat([tt, tt]),
                                torch.cat([y, null]))
            strong, weak = both.chunk(2)
        return weak + guidance * (strong - weak)

    @staticmethod
    def network(net: nn.Module, x: torch.Tensor, t: torch.Tensor,
                y: torch.Tensor) -> torch.Tensor:
        """`net` on a batch, in slices of CPU_BATCH images on a CPU, whose caches hold a small
        batch's activations: the outputs of one call, up to rounding, sooner."""
        if x.device.type != "cpu" or len(x) <= CPU_BATCH:
            return net(x, t, y)
        return torch.cat([net(*part) for part in zip(x.split(CPU_BATCH), t.split(CPU_BATCH),
                                                     y.split(CPU_BATCH), strict=True)])

    def default_guidance(self, conditional: bool) -> float:
        """omega where none is given: classifier-free guidance's with labels, else
        autoguidance's."""
        return self.guidance if conditional else self.autoguidance

    def labels(self, y: int | Sequence[int] | torch.Tensor, n: int) -> torch.Tensor:
        """y as n class labels on the model's device: one label for all, or one per image."""
        y = torch.as_tensor(y, dtype=torch.long)
        y = y.expand(n) if y.dim() == 0 else y
        if y.shape != (n,) or y.min() < 0 or y.max() >= NULL_CLASS:
            raise ValueError(f"y must be one label or {n} labels in 0..{NULL_CLASS - 1}, "
                             f"got shape {tuple(y.shape)}")
        return y.to(self.device)

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n noise images N(0, I), where sampling starts (on the CPU, for reproducibility)."""
        return torch.randn(n, *self.image_shape, generator=generator)

    def generate(self, x: torch.Tensor, y: torch.Tensor | None, sampler: str,
                 steps: int | None, guidance: float,
                 generator: torch.Generator | None) -> torch.Tensor:
        """Images in [-1, 1] from the noise x with `sampler`; the family's sampling."""
        raise NotImplementedError

    def evaluations(self, sampler: str | None = None, steps: int | None = None,
                    guidance: float | None = None, conditional: bool = False) -> int:
        """Network evaluations per sample with `sampler` in `steps` steps and omega =
        `guidance` (the defaults where None), with labels where `conditional`: twice as many
        where omega mixes two predictions (omega other than 0 and 1; without labels, only with
        a guide, whose smaller pass counts as one; see `predict`)."""
        sampler = sampler or self.sampler
        steps = steps or self.steps
        omega = self.default_guidance(conditional) if guidance is None else guidance
        mixes = omega not in (0, 1) and (conditional or self.guide is not None)
        return self.samplers[sampler] * steps * (2 if mixes else 1)

    def decode(self, z: torch.Tensor, y: int | Sequence[int] | torch.Tensor | None = None, *,
               steps: int | None = None, guidance: float | None = None,
               sampler: str | None = None) -> torch.Tensor:
        """Images in [-1, 1] for starting noise z with `sampler` (default: the family's): a
        map from noise to images where that sampler is deterministic (DDIM, Euler, Heun)."""
        labels = None if y is None else self.labels(y, len(z))
        omega = self.default_guidance(y is not None) if guidance is None else guidance
        return self.generate(z, labels, sampler or self.sampler, steps, omega, None)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None,
               y: int | Sequence[int] | torch.Tensor | None = None, *,
               steps: int | None = None, guidance: float | None = None,
               sampler: str | None = None) -> torch.Tensor:
        """n images (n,1,28,28) in [0,1]: unconditional, or of classes y, guided by omega =
        `guidance` (see `predict`; default: the class's `autoguidance` without labels, its
        `guidance` with them); `sampler` and `steps` default to the family's. All noise is
        drawn on the CPU from `seed`: the same images on any device."""
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        sampler = sampler or self.sampler
        if sampler not in self.samplers:
            raise ValueError(f"unknown sampler {sampler!r}: choose one of {tuple(self.samplers)}")
        x = self.prior(n, generator).to(self.device)
        labels = None if y is None else self.labels(y, n)
        was_training = self.training
        self.eval()
        try:
            omega = self.default_guidance(y is not None) if guidance is None else guidance
            x = self.generate(x, labels, sampler, steps, omega, generator)
        finally:
            self.train(was_training)
        return self.to_unit(x.float())


class DDPM(Guided):
    """A denoising diffusion model: eps_theta learns the noise of q(x_t | x_0); sampling
    reverses the chain. `schedule` is "cosine" (Nichol & Dhariwal, the default) or "linear"
    (Ho et al.)."""

    # ancestral sampling respaced to 50 steps: 50 network evaluations instead of the full
    # chain's 1000; measured ahead of DDIM in 50 (gentut/weights/diffusion_study.json)
    sampler = "ancestral"
    steps = 50
    samplers = {"ancestral": 1, "ddim": 1}
    loss_name = "loss_simple"
    clip_x0 = True  # clamp predicted x_0 to [-1, 1] while sampling, as Ho et al.'s code does

    def __init__(self, schedule: str = "cosine", net: nn.Module | None = None) -> None:
        super().__init__(net)
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}: choose one of {list(SCHEDULES)}")
        self.schedule = schedule
        alpha_bar = SCHEDULES[schedule](T)                        # (T + 1,), alpha_bar_0 = 1
        beta = torch.cat([torch.zeros(1, dtype=torch.float64), 1 - alpha_bar[1:] / alpha_bar[:-1]])
        # fixed by `schedule`, so left out of the state_dict
        self.register_buffer("alpha_bar", alpha_bar.float(), persistent=False)
        self.register_buffer("beta", beta.float(), persistent=False)  # beta_0 = 0 unused

    def q_sample(self, x_0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x_0) in closed form: sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,
        for integer steps t (B,) in 1..T and noise eps ~ N(0, I)."""
        ab = self.alpha_bar[t].view(-1, *[1] * (x_0.dim() - 1))
        return ab.sqrt() * x_0 + (1 - ab).sqrt() * eps

    def loss(self, x_0: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """L_simple = E_{t, x_0, eps} || eps - eps_theta(x_t, t, y) ||^2 (Ho et al., eq. 14),
        t ~ U{1..T}, eps ~ N(0, I), x_t from q(x_t | x_0), averaged over pixels."""
        t = torch.randint(1, T + 1, (len(x_0),), device=x_0.device)
        eps = torch.randn_like(x_0)
        x_t = self.q_sample(x_0, t, eps)
        eps_pred = self.net(x_t, t / T, y)
        return (eps_pred.float() - eps).pow(2).mean()

    def generate(self, x, y, sampler, steps, guidance, generator):
        def eps_model(x_t: torch.Tensor, t: int) -> torch.Tensor:
            return self.predict(x_t, t / T, y, guidance).float()

        if sampler == "ancestral":
            return ancestral_sample(eps_model, x, self.alpha_bar, generator, self.clip_x0,
                                    steps or self.steps)
        return ddim_sample(eps_model, x, self.alpha_bar, steps or self.steps, self.clip_x0)
