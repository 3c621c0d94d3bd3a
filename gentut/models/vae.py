"""The autoencoder and the variational autoencoder (Kingma & Welling, 2013), as MLPs.

Both have Chang's networks ("Comparison Analysis of Generative Models", section 3.1): encoder
784 -> 512 -> 256 -> latent, decoder latent -> 256 -> 512 -> 784. The VAE's encoder outputs
a Gaussian q(z|x) = N(mu, diag(exp(logvar))) instead of a point: two numbers per latent
dimension. The VAE's two pieces of math, the reparameterization and the per-image negative
ELBO, are functions here, so that the training step and `gentut.metrics` share them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generative, Trainable, adam

LATENT = 2        # Chang, section 3.1: a 2-D latent space (one can draw it)
LR = 2e-4         # Adam's learning rate; Chang gives 2e-4 for the DCGAN (section 4.1)
BATCH_SIZE = 100  # Chang, section 3.1: "N is the batch size 100"


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


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """One z ~ N(mu, diag exp(logvar)) per row, as z = mu + sigma * eps with eps ~ N(0, I):
    a deterministic function of (mu, logvar), so gradients flow back into the encoder."""
    eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def negative_elbo(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor,
                  logvar: torch.Tensor) -> torch.Tensor:
    """-ELBO per image in nats, from one z ~ q(z|x) decoded to `logits`:
    -log p(x|z) + KL(q(z|x) || p(z)), with q(z|x) = N(mu, diag exp(logvar))."""
    return bce(logits, x) + kl_to_standard_normal(mu, logvar)


class Autoencoder(Trainable):
    """A deterministic encoder and decoder trained to reconstruct through a bottleneck."""

    batch_size = BATCH_SIZE
    outputs_per_latent = 1  # the encoder's numbers per latent dimension: the code itself

    def __init__(self, latent_dim: int = LATENT) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = encoder(self.outputs_per_latent * latent_dim)
        self.decoder = decoder(latent_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = enc(x)."""
        return self.encoder(x)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The one code of each image that `reconstruct` decodes."""
        return self.encode(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the code of x into pixel means."""
        return torch.sigmoid(self.decoder(self.code(x)))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.parameters(), LR)}

    def step(self, x, y, opt):
        """Minimize the reconstruction error: cross-entropy summed over pixels, per image."""
        recon = bce(self.decoder(self.encode(x)), x).mean()
        opt["model"].zero_grad(set_to_none=True)
        recon.backward()
        opt["model"].step()
        return {"recon": recon.detach()}


class VAE(Autoencoder, Generative):
    """The autoencoder made probabilistic: trained by maximizing the ELBO."""

    outputs_per_latent = 2  # mu and log sigma^2 for each latent dimension

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) as (mu, logvar)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of q(z|x): the code `reconstruct` decodes."""
        return self.encode(x)[0]

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ p(z) = N(0, I)."""
        return torch.randn(n, self.latent_dim, generator=generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def step(self, x, y, opt):
        """Maximize the ELBO: minimize E_q[-log p(x|z)] + KL(q(z|x) || p(z)), per image."""
        mu, logvar = self.encode(x)                # q(z|x) = N(mu, diag exp(logvar))
        z = reparameterize(mu, logvar)             # z = mu + sigma * eps, eps ~ N(0, I)
        loss = negative_elbo(self.decoder(z), x, mu, logvar).mean()  # batch mean
        kl = kl_to_standard_normal(mu, logvar).mean().detach()  # logged apart, with the rest
        opt["model"].zero_grad(set_to_none=True)
        loss.backward()
        opt["model"].step()
        return {"loss": loss.detach(), "recon": loss.detach() - kl, "kl": kl}
