"""The vanilla GAN (Goodfellow et al., 2014) with multilayer-perceptron networks.

`GAN.step` is the non-saturating alternating update the GAN chapter derives; the DCGAN
reuses it unchanged with convolutional networks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Adversarial, adam

Z_DIM = 64        # d_z: z in R^64 (Chang, section 3.1)
HIDDEN = 256      # two hidden layers of 256 units (Chang, section 3.1)
BATCH_SIZE = 100  # Chang, section 3.1 (the loss's batch size N)


class MLPGenerator(nn.Sequential):
    """G: z -> 256 ReLU -> 256 ReLU -> 784 tanh, reshaped to an image."""

    def __init__(self, z_dim: int = Z_DIM, hidden: int = HIDDEN) -> None:
        super().__init__(
            nn.Linear(z_dim, hidden), nn.ReLU(),   # (B, 256)
            nn.Linear(hidden, hidden), nn.ReLU(),  # (B, 256)
            nn.Linear(hidden, 784), nn.Tanh(),     # (B, 784) in [-1, 1]
            nn.Unflatten(1, (1, 28, 28)),          # (B, 1, 28, 28)
        )


class MLPDiscriminator(nn.Sequential):
    """D: image -> 256 LeakyReLU(0.2) -> 256 LeakyReLU(0.2) -> 1 logit (D(x) = sigmoid)."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__(
            nn.Flatten(),                                      # (B, 784)
            nn.Linear(784, hidden), nn.LeakyReLU(0.2),         # (B, 256)
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),      # (B, 256)
            nn.Linear(hidden, 1), nn.Flatten(0),               # (B,) logits
        )


def generator_update(D: nn.Module, fake: torch.Tensor,
                     opt: torch.optim.Optimizer) -> torch.Tensor:
    """update G: maximize log D(G(z)), the non-saturating loss, with D held fixed.

    Every GAN of the course whose generator has no loss terms of its own updates it so.
    """
    D.requires_grad_(False)  # D is held fixed: skip its weight gradients
    loss_G = F.softplus(-D(fake)).mean()
    opt.zero_grad(set_to_none=True)
    loss_G.backward()
    opt.step()
    D.requires_grad_(True)
    return loss_G.detach()


class GAN(Adversarial):
    """A generator G and a discriminator D trained against each other."""

    value_range = (-1.0, 1.0)  # G ends in tanh
    batch_size = BATCH_SIZE
    lr = 2e-4                  # Adam's learning rate (Chang, section 4.1, for the DCGAN's G)
    betas = (0.9, 0.999)       # Adam's defaults; the conv GANs use beta1 = 0.5

    def __init__(self, z_dim: int = Z_DIM, G: nn.Module | None = None,
                 D: nn.Module | None = None) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.G = G if G is not None else MLPGenerator(z_dim)
        self.D = D if D is not None else MLPDiscriminator()

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I)."""
        return torch.randn(n, self.z_dim, generator=generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "D": adam(self.D.parameters(), self.lr, self.betas),
            "G": adam(self.G.parameters(), self.lr, self.betas),
        }

    def step(self, x, y, opt):
        """One discriminator update, then one non-saturating generator update.

        On the logit l (d_real = l(x), d_fake = l(G(z))), with D = sigmoid(l):
        -log D = softplus(-l) and -log(1 - D) = softplus(l).
        """
        z = torch.randn(len(x), self.z_dim, device=x.device)
        fake = self.G(z)  # one batch of fakes serves both updates (Chang draws a new z for G's)

        # update D: maximize log D(x) + log(1 - D(G(z)))  (real and fake in separate passes,
        # so that a BatchNorm in D normalizes each batch by its own statistics, never a mix)
        d_real, d_fake = self.D(x), self.D(fake.detach())
        loss_D = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        opt["D"].zero_grad(set_to_none=True)
        loss_D.backward()
        opt["D"].step()

        # update G: maximize log D(G(z))  (the non-saturating loss, D held fixed)
        loss_G = generator_update(self.D, fake, opt["G"])
        return {
            "loss_D": loss_D.detach(),
            "loss_G": loss_G,
            "D(x)": torch.sigmoid(d_real).mean().detach(),
            "D(G(z))": torch.sigmoid(d_fake).mean().detach(),
        }
