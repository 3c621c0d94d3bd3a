"""The autoencoder and the variational autoencoder (Kingma & Welling, 2013), as MLPs.

Both share one body: encoder 784 -> 512 -> 256 -> latent, decoder latent -> 256 -> 512 -> 784.
The VAE's encoder outputs a Gaussian q(z|x) = N(mu, diag(exp(logvar))) instead of a point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generative, Trainable, adam

LATENT = 2        # seed design: a 2-D latent space one can draw
LR = 2e-4         # seed hyperparameters: Adam, learning rate 2e-4
BATCH_SIZE = 100  # seed design


def encoder(out: int) -> nn.Sequential:
    """x -> 512 ReLU -> 256 ReLU -> `out` numbers."""
    return nn.Sequential(
        nn.Flatten(),                      # (B, 784)
        nn.Linear(784, 512), nn.ReLU(),    # (B, 512)
        nn.Linear(512, 256), nn.ReLU(),    # (B, 256)
        nn.Linear(256, out),               # (B, out)
    )


def decoder(latent: int) -> nn.Sequential:
    """z -> 256 ReLU -> 512 ReLU -> 784 logits; their sigmoid is the image of pixel means."""
    return nn.Sequential(
        nn.Linear(latent, 256), nn.ReLU(),   # (B, 256)
        nn.Linear(256, 512), nn.ReLU(),      # (B, 512)
        nn.Linear(512, 784),                 # (B, 784) logits
        nn.Unflatten(1, (1, 28, 28)),        # (B, 1, 28, 28)
    )


def bce(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) for Bernoulli pixels with means sigmoid(logits), summed over pixels."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, in closed form."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


class Autoencoder(Trainable):
    """A deterministic encoder and decoder trained to reconstruct through a bottleneck."""

    batch_size = BATCH_SIZE

    def __init__(self, latent_dim: int = LATENT) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = encoder(latent_dim)
        self.decoder = decoder(latent_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = f(x)."""
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the code of x into pixel means (the VAE decodes the mean of q(z|x))."""
        z = self.encode(x)
        return torch.sigmoid(self.decoder(z[0] if isinstance(z, tuple) else z))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.parameters(), LR)}

    def step(self, x, y, opt):
        """Minimize the reconstruction error: cross-entropy summed over pixels, per image."""
        recon = bce(self.decoder(self.encoder(x)), x).mean()
        opt["model"].zero_grad(set_to_none=True)
        recon.backward()
        opt["model"].step()
        return {"recon": recon.detach()}


class VAE(Autoencoder, Generative):
    """The autoencoder made probabilistic: trained by maximizing the ELBO."""

    def __init__(self, latent_dim: int = LATENT) -> None:
        super().__init__(latent_dim)
        self.encoder = encoder(2 * latent_dim)  # mu and log sigma^2

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) as (mu, logvar)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ p(z) = N(0, I)."""
        return torch.randn(n, self.latent_dim, generator=generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def step(self, x, y, opt):
        """Maximize the ELBO: minimize E_q[-log p(x|z)] + KL(q(z|x) || p(z)), per image."""
        mu, logvar = self.encode(x)
        eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps  # the reparameterization trick
        recon = bce(self.decoder(z), x).mean()
        kl = kl_to_standard_normal(mu, logvar).mean()
        loss = recon + kl
        opt["model"].zero_grad(set_to_none=True)
        loss.backward()
        opt["model"].step()
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}
