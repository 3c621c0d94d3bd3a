"""InfoGAN (Chen et al., 2016): a GAN that also maximizes I(c; G(z, c)) for latent codes c.

Networks follow the InfoGAN paper's MNIST design as written in Natsu6767/InfoGAN-PyTorch.
The generator's input is 74 numbers: 62 noise, a one-hot 10-way categorical code, and two
continuous codes uniform in [-1, 1]. D and Q share a convolutional body.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Adversarial, adam

NOISE = 62         # InfoGAN paper, appendix C.1
CATEGORIES = 10    # one 10-way categorical code
CONTINUOUS = 2     # two continuous codes, uniform in [-1, 1]
LAMBDA = 1.0       # information weight for the categorical code (InfoGAN paper, section 7)
LAMBDA_CONT = 0.1  # smaller for the continuous codes, to keep L_I on the GAN loss's scale
LR_D = 2e-4        # InfoGAN paper, appendix C.1
LR_G = 1e-3        # InfoGAN paper, appendix C.1
BETAS = (0.5, 0.999)
BATCH_SIZE = 128   # InfoGAN paper, appendix C.1


class InfoGenerator(nn.Sequential):
    """G: 74 -> four transposed convolutions, BatchNorm + ReLU on the first three, sigmoid."""

    def __init__(self, z_dim: int = NOISE + CATEGORIES + CONTINUOUS) -> None:
        super().__init__(
            nn.Unflatten(1, (z_dim, 1, 1)),                        # (B, 74, 1, 1)
            nn.ConvTranspose2d(z_dim, 1024, 1, bias=False),
            nn.BatchNorm2d(1024),
            nn.ReLU(inplace=True),                                 # (B, 1024, 1, 1)
            nn.ConvTranspose2d(1024, 128, 7, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),                                 # (B, 128, 7, 7)
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),                                 # (B, 64, 14, 14)
            nn.ConvTranspose2d(64, 1, 4, 2, 1),
            nn.Sigmoid(),                                          # (B, 1, 28, 28)
        )


class SharedBody(nn.Sequential):
    """The convolutional body shared by D and Q: image -> 1024 features."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(1, 64, 4, 2, 1),
            nn.LeakyReLU(0.1, inplace=True),                       # (B, 64, 14, 14)
            nn.Conv2d(64, 128, 4, 2, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.1, inplace=True),                       # (B, 128, 7, 7)
            nn.Conv2d(128, 1024, 7, bias=False),
            nn.BatchNorm2d(1024),
            nn.LeakyReLU(0.1, inplace=True),                       # (B, 1024, 1, 1)
        )


class QHead(nn.Module):
    """Q(c|x): logits of the categorical code; mean and log-variance of the continuous ones."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1024, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Flatten(),                                          # (B, 128)
        )
        self.logits = nn.Linear(128, CATEGORIES)                   # (B, 10)
        self.mu = nn.Linear(128, CONTINUOUS)                       # (B, 2)
        self.logvar = nn.Linear(128, CONTINUOUS)                   # (B, 2)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.body(h)
        return self.logits(h), self.mu(h), self.logvar(h)


def gaussian_nll(c: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """-log N(c; mu, exp(logvar)), summed over codes and averaged over the batch."""
    nll = 0.5 * (math.log(2 * math.pi) + logvar + (c - mu).pow(2) * torch.exp(-logvar))
    return nll.sum(1).mean()


class InfoGAN(Adversarial):
    """G(z, c), a discriminator D and an auxiliary Q sharing D's body."""

    value_range = (0.0, 1.0)  # G ends in a sigmoid
    batch_size = BATCH_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.G = InfoGenerator()
        self.body = SharedBody()
        self.D_head = nn.Sequential(nn.Conv2d(1024, 1, 1), nn.Flatten(0))  # (B,) logits
        self.Q = QHead()

    def D(self, x: torch.Tensor) -> torch.Tensor:
        """D's logit for images x."""
        return self.D_head(self.body(x))

    def prior(self, n: int, generator: torch.Generator | None = None,
              c: int | torch.Tensor | None = None,
              cont: torch.Tensor | None = None) -> torch.Tensor:
        """[z, one_hot(c), cont]: the given codes, the rest drawn from the prior."""
        z = torch.randn(n, NOISE, generator=generator)
        if c is None:
            c = torch.randint(CATEGORIES, (n,), generator=generator)
        c = torch.as_tensor(c).expand(n)
        if cont is None:
            cont = torch.rand(n, CONTINUOUS, generator=generator) * 2 - 1
        cont = torch.as_tensor(cont, dtype=torch.float32).expand(n, CONTINUOUS)
        return torch.cat([z, F.one_hot(c, CATEGORIES).float(), cont], dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        d_params = [*self.body.parameters(), *self.D_head.parameters()]
        g_params = [*self.G.parameters(), *self.Q.parameters()]
        return {
            "D": adam(d_params, LR_D, BETAS),
            "G": adam(g_params, LR_G, BETAS),
        }

    def step(self, x, y, opt):
        """The GAN's update for D, then G and Q together on the GAN loss plus lambda L_I."""
        n = len(x)
        c = torch.randint(CATEGORIES, (n,), device=x.device)
        cont = torch.rand(n, CONTINUOUS, device=x.device) * 2 - 1
        z = torch.randn(n, NOISE, device=x.device)
        fake = self.G(torch.cat([z, F.one_hot(c, CATEGORIES).float(), cont], dim=1))

        # update D: maximize log D(x) + log(1 - D(G(z, c)))
        # (real and fake in separate passes: the body's BatchNorm must not mix them)
        d_real = self.D(x)
        d_fake = self.D(fake.detach())
        loss_D = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        opt["D"].zero_grad(set_to_none=True)
        loss_D.backward()
        opt["D"].step()

        # update G and Q: maximize log D(G(z, c)) + lambda L_I(G, Q)
        self.body.requires_grad_(False)  # D is held fixed: skip its weight gradients
        self.D_head.requires_grad_(False)
        h = self.body(fake)
        loss_G = F.softplus(-self.D_head(h)).mean()
        logits, mu, logvar = self.Q(h)
        loss_cat = F.cross_entropy(logits, c)        # -E log Q(c|x) for the categorical code
        loss_cont = gaussian_nll(cont, mu, logvar)   # -E log Q(c|x) for the continuous codes
        loss = loss_G + LAMBDA * loss_cat + LAMBDA_CONT * loss_cont
        opt["G"].zero_grad(set_to_none=True)
        loss.backward()
        opt["G"].step()
        self.body.requires_grad_(True)
        self.D_head.requires_grad_(True)

        return {
            "loss_D": loss_D.detach(),
            "loss_G": loss_G.detach(),
            "loss_cat": loss_cat.detach(),
            "loss_cont": loss_cont.detach(),
            "D(x)": torch.sigmoid(d_real).mean().detach(),
            "D(G(z))": torch.sigmoid(d_fake).mean().detach(),
        }
