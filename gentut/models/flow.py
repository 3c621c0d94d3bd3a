"""A RealNVP normalizing flow (Dinh et al., 2017) for 28x28 images, trained by exact likelihood.

An invertible map f takes an image x to a code z = f(x) with a Gaussian base density, and
log p(x) = log N(f(x); 0, I) + log |det df/dx|. Affine coupling layers keep the Jacobian
triangular: half of the inputs (chosen by a checkerboard or a channel mask) pass through
unchanged and set the log-scale s(.) and shift b(.) of the other half, so log |det| is a sum
of log-scales. Before the couplings, a logit transform with margin DELTA maps pixels in
[0, 1] onto [logit(DELTA), logit(1 - DELTA)] = [-2.94, 2.94], not onto the whole real line.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Generative, adam

LR = 1e-3
BATCH_SIZE = 64
DELTA = 0.05  # the logit's margin: x -> logit(DELTA + (1 - 2 DELTA) x) keeps off 0 and 1
HIDDEN = 64   # channels of each coupling's network
COUPLINGS = 3  # couplings per group (RealNVP's 3 checkerboard, 3 channel-wise, per scale)


def checkerboard(c: int, h: int, w: int, parity: int) -> torch.Tensor:
    """1 where (i + j) % 2 == parity: the inputs a checkerboard coupling leaves unchanged."""
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((i + j) % 2 == parity).float().expand(c, h, w).clone()


def channel_mask(c: int, h: int, w: int, parity: int) -> torch.Tensor:
    """1 on one half of the channels: those a channel coupling leaves unchanged."""
    mask = torch.zeros(c, h, w)
    half = c // 2
    mask[:half] = 1.0
    return mask if parity == 0 else 1 - mask


class Coupling(nn.Module):
    """y = m * x + (1 - m) * (x * exp(s) + b), with log-scale s and shift b computed from m * x."""

    def __init__(self, mask: torch.Tensor, hidden: int = HIDDEN) -> None:
        super().__init__()
        c = mask.shape[0]
        self.register_buffer("mask", mask)
        self.net = nn.Sequential(
            nn.Conv2d(c, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * c, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)  # start as the identity map
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(1, c, 1, 1))

    def scale_shift(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, b) from the kept inputs m * x; both are zero on the kept half itself."""
        s, b = self.net(x * self.mask).chunk(2, dim=1)
        s = self.scale * torch.tanh(s)  # bounded log-scales train stably
        return s * (1 - self.mask), b * (1 - self.mask)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, log |det dy/dx|) per example: the log-determinant is the sum of s."""
        s, b = self.scale_shift(x)
        return x * torch.exp(s) + b, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, b = self.scale_shift(y)  # the kept half of y equals that of x: same s and b
        return (y - b) * torch.exp(-s)


class Squeeze(nn.Module):
    """(C, H, W) -> (4C, H/2, W/2): trade resolution for channels; volume-preserving."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return nn.functional.pixel_unshuffle(x, 2), x.new_zeros(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.pixel_shuffle(y, 2)


def realnvp_layers(shape: tuple[int, int, int] = (1, 28, 28), scales: int = 2,
                   hidden: int = HIDDEN, couplings: int = COUPLINGS) -> list[nn.Module]:
    """Per scale: `couplings` checkerboard couplings, squeeze, `couplings` channel couplings;
    then `couplings` checkerboard couplings more. Consecutive masks alternate (parity p % 2)."""
    c, h, w = shape
    layers: list[nn.Module] = []
    for _ in range(scales):
        layers += [Coupling(checkerboard(c, h, w, p % 2), hidden) for p in range(couplings)]
        layers.append(Squeeze())
        c, h, w = 4 * c, h // 2, w // 2
        layers += [Coupling(channel_mask(c, h, w, p % 2), hidden) for p in range(couplings)]
    layers += [Coupling(checkerboard(c, h, w, p % 2), hidden) for p in range(couplings)]
    return layers


class Flow(nn.Module):
    """A stack of invertible layers: forward gives z and the summed log-determinant."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(len(x))
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per example."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).flatten(1).sum(1)


class RealNVP(Generative):
    """A flow on logit-transformed, dequantized images with a standard Gaussian base."""

    value_range = (0.0, 1.0)
    batch_size = BATCH_SIZE

    def __init__(self, scales: int = 2, hidden: int = HIDDEN, couplings: int = COUPLINGS) -> None:
        super().__init__()
        self.flow = Flow(realnvp_layers((1, 28, 28), scales, hidden, couplings))
        self.z_shape = (4 ** scales, 28 // 2 ** scales, 28 // 2 ** scales)

    @staticmethod
    def logit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y = logit(x_tilde), x_tilde = DELTA + (1 - 2 DELTA) x, for images x in [0, 1], and
        log |det dy/dx|; y lies in [logit(DELTA), logit(1 - DELTA)], not on the whole line."""
        x_tilde = DELTA + (1 - 2 * DELTA) * x
        log_x, log_1mx = torch.log(x_tilde), torch.log1p(-x_tilde)
        logdet = (math.log(1 - 2 * DELTA) - log_x - log_1mx).flatten(1).sum(1)
        return log_x - log_1mx, logdet

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) in nats for continuous images x in (0, 1), per example."""
        y, logdet = self.logit(x)
        z, flow_logdet = self.flow(y)
        return standard_normal_log_prob(z) + flow_logdet + logdet

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z = f(x) for images x in (0, 1): the code that `decode` maps back to x."""
        return self.flow(self.logit(x)[0])[0]

    def bits_per_dim(self, x: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Bits per pixel of 8-bit images x in [0, 1], with uniform dequantization, per example.

        For gray levels xbar in {0..255}^d, (xbar + u) / 256 with u ~ U[0, 1)^d has a density
        on [0, 1)^d; -log2 P(xbar) <= -E log2 p((xbar + u) / 256) + 8 d (Jensen). An upper
        bound: p itself has mass below 1 on [0, 1]^d (see `logit`), which only adds to it.
        """
        xbar = torch.round(x * 255)
        u = (torch.rand_like(x) if generator is None
             else torch.rand(x.shape, generator=generator).to(x.device))
        d = x[0].numel()
        return (-self.log_prob((xbar + u) / 256) / math.log(2) + d * 8) / d

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, *self.z_shape, generator=generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x = f^{-1}(z), clamped to [0, 1]: a code whose inverse leaves [logit(DELTA),
        logit(1 - DELTA)] would give pixels outside [0, 1], and the clamp puts them on 0 or 1."""
        x_tilde = torch.sigmoid(self.flow.inverse(z))
        return ((x_tilde - DELTA) / (1 - 2 * DELTA)).clamp(0, 1)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.parameters(), LR)}

    def step(self, x, y, opt):
        """Maximize the exact log-likelihood of dequantized images: minimize bits per dim."""
        bpd = self.bits_per_dim(x).mean()
        opt["model"].zero_grad(set_to_none=True)
        bpd.backward()
        opt["model"].step()
        return {"bits_per_dim": bpd.detach()}
