"""A RealNVP normalizing flow (Dinh et al., 2017) for 28x28 images, trained by exact likelihood.

An invertible map f takes an image x to a code z = f(x) with a Gaussian base density, and
log p(x) = log N(f(x); 0, I) + log |det df/dx|. Affine coupling layers keep the Jacobian
triangular: half of the inputs (chosen by a checkerboard or a channel mask) pass through
unchanged and set the scale and shift of the other half, so log |det| is a sum of scales.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Generative, adam

LR = 1e-3
BATCH_SIZE = 64
ALPHA = 0.05  # logit transform x -> logit(ALPHA + (1 - 2 ALPHA) x): keeps away from 0 and 1
HIDDEN = 64


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
    """y = m * x + (1 - m) * (x * exp(s) + t), with (s, t) computed from m * x."""

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

    def _st(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(x * self.mask).chunk(2, dim=1)
        s = self.scale * torch.tanh(s)  # bounded log-scales train stably
        return s * (1 - self.mask), t * (1 - self.mask)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, log |det dy/dx|) per example."""
        s, t = self._st(x)
        return x * torch.exp(s) + t, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t = self._st(y)  # the masked half of y equals that of x
        return (y - t) * torch.exp(-s)


class Squeeze(nn.Module):
    """(C, H, W) -> (4C, H/2, W/2): trade resolution for channels; volume-preserving."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return nn.functional.pixel_unshuffle(x, 2), x.new_zeros(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.pixel_shuffle(y, 2)


def realnvp_layers(shape: tuple[int, int, int] = (1, 28, 28), scales: int = 2,
                   hidden: int = HIDDEN) -> list[nn.Module]:
    """Per scale: 3 checkerboard couplings, squeeze, 3 channel couplings; then 3 checkerboard."""
    c, h, w = shape
    layers: list[nn.Module] = []
    for _ in range(scales):
        layers += [Coupling(checkerboard(c, h, w, p % 2), hidden) for p in range(3)]
        layers.append(Squeeze())
        c, h, w = 4 * c, h // 2, w // 2
        layers += [Coupling(channel_mask(c, h, w, p % 2), hidden) for p in range(3)]
    layers += [Coupling(checkerboard(c, h, w, p % 2), hidden) for p in range(3)]
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

    def __init__(self, scales: int = 2, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.flow = Flow(realnvp_layers((1, 28, 28), scales, hidden))
        self.z_shape = (4 ** scales, 28 // 2 ** scales, 28 // 2 ** scales)

    @staticmethod
    def logit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y = logit(ALPHA + (1 - 2 ALPHA) x) for images x in (0, 1), and log |det dy/dx|."""
        p = ALPHA + (1 - 2 * ALPHA) * x
        logdet = (math.log(1 - 2 * ALPHA) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        return torch.log(p) - torch.log1p(-p), logdet

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

        For pixel values k in {0..255}, (k + u) / 256 with u ~ U(0, 1) has a density on
        [0, 1]^D; -log2 P(k) <= -E log2 p((k + u) / 256) + D log2 256.
        """
        k = torch.round(x * 255)
        u = (torch.rand_like(x) if generator is None
             else torch.rand(x.shape, generator=generator).to(x.device))
        d = x[0].numel()
        return (-self.log_prob((k + u) / 256) / math.log(2) + d * 8) / d

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, *self.z_shape, generator=generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(self.flow.inverse(z))
        return ((p - ALPHA) / (1 - 2 * ALPHA)).clamp(0, 1)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.parameters(), LR)}

    def step(self, x, y, opt):
        """Maximize the exact log-likelihood of dequantized images: minimize bits per dim."""
        bpd = self.bits_per_dim(x).mean()
        opt["model"].zero_grad(set_to_none=True)
        bpd.backward()
        opt["model"].step()
        return {"bits_per_dim": bpd.detach()}
