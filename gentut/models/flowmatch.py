"""Flow matching (Lipman et al., 2023) on straight paths, i.e. rectified flow (Liu et al., 2023).

Convention: time runs from noise to data. x_0 ~ N(0, I) is noise, x_1 an image in [-1, 1],
and x_t = (1 - t) x_0 + t x_1 for t in [0, 1] the straight line between them (Lipman et al.'s
optimal-transport path with sigma_min = 0; Liu et al.'s X_0 noise and X_1 data). Along it
dx_t/dt = x_1 - x_0, and a U-Net v_theta(x_t, t, y) regresses that velocity (the conditional
flow matching loss). Its minimizer is the marginal velocity v(x, t) = E[x_1 - x_0 | x_t = x],
whose ODE dx/dt = v(x, t) carries N(0, I) at t = 0 to the data at t = 1: sampling integrates
it (Euler or Heun steps) or takes ancestral steps that add fresh noise as the DDPM's do, and
the same ODE gives log-likelihoods by the change of variables
d log p_t(x_t) / dt = -div v(x_t, t) (Chen et al., 2018), with the divergence estimated by
Hutchinson's trace estimator (Hutchinson, 1989; Grathwohl et al., 2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .diffusion import Guided
from .flow import standard_normal_log_prob

# Heun steps of the likelihood ODE (200 network evaluations), on a grid whose steps shrink
# towards the data as (1 - u)^3: the divergence grows there (measured: book/making/diffusion.md)
LIKELIHOOD_STEPS = 100
LIKELIHOOD_POWER = 3

Velocity = Callable[[torch.Tensor, float], torch.Tensor]  # (x, t) -> v(x, t)


def time_grid(steps: int, power: float = 1.0,
              backwards: bool = False) -> list[tuple[float, float]]:
    """`steps` intervals (t, t + h) from t = 0 to 1 (from 1 to 0 if `backwards`): equal for
    power = 1, else t = 1 - (1 - u)^power for u evenly spaced, steps shrinking towards t = 1."""
    if steps < 1:
        raise ValueError(f"an ODE solve takes at least 1 step, got {steps}")
    u = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    ts = (u if power == 1 else 1 - (1 - u) ** power).tolist()
    if backwards:
        ts = ts[::-1]
    return list(zip(ts[:-1], ts[1:], strict=True))


def euler_sample(v: Velocity, x: torch.Tensor, steps: int) -> torch.Tensor:
    """x_{t+h} = x_t + h v(x_t, t) from t = 0 to 1: one network evaluation per step."""
    for t, s in time_grid(steps):
        x = x + (s - t) * v(x, t)
    return x


def heun_sample(v: Velocity, x: torch.Tensor, steps: int) -> torch.Tensor:
    """Heun's method from t = 0 to 1: an Euler step, then the mean of the velocities at both
    ends, x_{t+h} = x_t + h/2 (v(x_t, t) + v(x_t + h v(x_t, t), t + h)). Two evaluations per
    step, error O(h^2) against Euler's O(h)."""
    for t, s in time_grid(steps):
        h = s - t
        d1 = v(x, t)
        d2 = v(x + h * d1, s)
        x = x + h / 2 * (d1 + d2)
    return x


def ancestral_sample(v: Velocity, x: torch.Tensor, steps: int,
                     generator: torch.Generator | None = None, clip: bool = False) -> torch.Tensor:
    """The DDPM's ancestral step on the straight path, from t = 0 to 1. x_t = t x_1 + (1 - t)
    x_0 adds Gaussian noise of scale 1 - t to t x_1, so for each pair t < s of `time_grid`,
    predict x_1 = x_t + (1 - t) v(x_t, t) and the noise eps = (x_t - t x_1) / (1 - t), then
    draw x_s from q(x_s | x_t, x_1) of the noising chain with those marginals: mean s x_1 +
    sqrt((1 - s)^2 - sigma^2) eps and variance
    sigma^2 = (1 - s)^2 (1 - (t (1 - s) / (s (1 - t)))^2) (Song et al.'s eta = 1). One
    evaluation per step; `clip` clamps x_1 to [-1, 1] first, as the DDPM does x_0. Noise is
    drawn on the CPU from `generator`."""
    for t, s in time_grid(steps):
        x_1 = x + (1 - t) * v(x, t)
        if clip:
            x_1 = x_1.clamp(-1, 1)
        if s == 1:  # the last step lands on the prediction: no noise is left
            return x_1
        eps = (x - t * x_1) / (1 - t)
        sigma2 = (1 - s) ** 2 * (1 - (t * (1 - s) / (s * (1 - t))) ** 2)
        z = torch.randn(x.shape, generator=generator).to(x.device)
        x = s * x_1 + math.sqrt((1 - s) ** 2 - sigma2) * eps + math.sqrt(sigma2) * z
    return x


def probe_like(x: torch.Tensor, kind: str = "rademacher",
               generator: torch.Generator | None = None) -> torch.Tensor:
    """A Hutchinson probe of x's shape with E[r r^T] = I: Rademacher (+-1) or Gaussian entries,
    drawn on the CPU from `generator`."""
    if kind == "rademacher":
        r = torch.randint(0, 2, x.shape, generator=generator).float() * 2 - 1
    elif kind == "gaussian":
        r = torch.randn(x.shape, generator=generator)
    else:
        raise ValueError(f"unknown probe {kind!r}: choose 'rademacher' or 'gaussian'")
    return r.to(x.device)


def divergence(v: Velocity, x: torch.Tensor, t: float,
               r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """v(x, t) and Hutchinson's estimate of its divergence per example, r^T (dv/dx) r:
    unbiased, since E[r^T A r] = tr A when E[r r^T] = I; one vector-Jacobian product."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = v(x, t)
        (vjp,) = torch.autograd.grad(out, x, r)                  # r^T dv/dx
    return out.detach(), (vjp * r).flatten(1).sum(1)


def ode_log_likelihood(v: Velocity, x_1: torch.Tensor, steps: int = LIKELIHOOD_STEPS,
                       probe: str = "rademacher", generator: torch.Generator | None = None,
                       power: float = LIKELIHOOD_POWER) -> torch.Tensor:
    """log p_1(x_1) in nats, per example, of the density the ODE dx/dt = v carries N(0, I) to.

    log p_1(x_1) = log N(x_0; 0, I) - int_0^1 div v(x_t, t) dt, where x_t solves the ODE
    backwards from x_1 to x_0: both integrals with Heun steps on `time_grid(steps, power)`,
    the divergence by Hutchinson's estimator with one probe per example held along the path.
    Exact but for the solver's error; the estimate is unbiased over probes.
    """
    r = probe_like(x_1, probe, generator)
    x, integral = x_1, x_1.new_zeros(len(x_1))
    for t, s in time_grid(steps, power, backwards=True):
        h = s - t                                                 # negative: t runs to 0
        d1, div1 = divergence(v, x, t, r)
        d2, div2 = divergence(v, x + h * d1, s, r)
        x = x + h / 2 * (d1 + d2)
        integral = integral - h / 2 * (div1 + div2)               # int_0^1 = -int_1^0
    return standard_normal_log_prob(x) - integral


class FlowMatching(Guided):
    """A velocity field v_theta on the straight noise-to-data paths, sampled with an ODE solver;
    exact log-likelihoods through the same ODE."""

    # ancestral in 50 steps, as the DDPM: 50 network evaluations, measured ahead of Heun in 25
    # (gentut/weights/diffusion_study.json)
    sampler = "ancestral"
    steps = 50
    samplers = {"ancestral": 1, "heun": 2, "euler": 1}
    clip_x1 = True  # clamp predicted x_1 to [-1, 1] in ancestral steps, as the DDPM clips x_0
    loss_name = "loss_cfm"

    def loss(self, x_1: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """L_CFM = E_{t, x_0, x_1} || v_theta(x_t, t, y) - (x_1 - x_0) ||^2, t ~ U[0, 1],
        x_0 ~ N(0, I), x_t = (1 - t) x_0 + t x_1, averaged over pixels."""
        x_0 = torch.randn_like(x_1)
        t = torch.rand(len(x_1), device=x_1.device)
        tt = t.view(-1, *[1] * (x_1.dim() - 1))
        x_t = (1 - tt) * x_0 + tt * x_1
        v = self.net(x_t, t, y)
        return (v.float() - (x_1 - x_0)).pow(2).mean()

    def generate(self, x, y, sampler, steps, guidance, generator):
        def v(x_t: torch.Tensor, t: float) -> torch.Tensor:
            return self.predict(x_t, t, y, guidance).float()

        if sampler == "ancestral":
            return ancestral_sample(v, x, steps or self.steps, generator, self.clip_x1)
        solve = heun_sample if sampler == "heun" else euler_sample
        return solve(v, x, steps or self.steps)

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None,
                 steps: int = LIKELIHOOD_STEPS, probe: str = "rademacher",
                 generator: torch.Generator | None = None,
                 power: float = LIKELIHOOD_POWER) -> torch.Tensor:
        """log p(x) in nats for continuous images x in [0, 1], per example (of class y, where
        given): log p(x) = log p_1(2x - 1) + d log 2, the second term the Jacobian of the
        scaling to the model's [-1, 1]; p_1 from `ode_log_likelihood` with the EMA network."""
        labels = None if y is None else self.labels(y, len(x))

        def v(x_t: torch.Tensor, t: float) -> torch.Tensor:
            return self.predict(x_t, t, labels, 1.0).float()

        d = x[0].numel()
        return (ode_log_likelihood(v, 2 * x - 1, steps, probe, generator, power)
                + d * math.log(2))

    def bits_per_dim(self, x: torch.Tensor, generator: torch.Generator | None = None,
                     **kwargs) -> torch.Tensor:
        """Bits per pixel of 8-bit images x in [0, 1], with uniform dequantization, per example
        (as `RealNVP.bits_per_dim`, so that `gentut.metrics.flow_bits_per_dim` scores both).

        For gray levels xbar in {0..255}^d, x~ = (xbar + u) / 256 with u ~ U[0, 1)^d, and
        bits/dim = (-log p(x~) / ln 2 + 8 d) / d, an upper bound on -log2 P(xbar) / d (Jensen),
        with log p(x~) = log p_1(2 x~ - 1) + d ln 2 from `log_prob` (kwargs go to it).
        """
        xbar = torch.round(x * 255)
        u = (torch.rand_like(x) if generator is None
             else torch.rand(x.shape, generator=generator).to(x.device))
        d = x[0].numel()
        log_p = self.log_prob((xbar + u) / 256, generator=generator, **kwargs)
        return (-log_p / math.log(2) + d * 8) / d

