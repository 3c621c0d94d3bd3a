"""DCGAN (Radford et al., 2015): the GAN's algorithm with convolutional networks.

The architecture rules: strided (transposed) convolutions instead of pooling, BatchNorm in
both networks, LeakyReLU activations, a tanh output. Training is `GAN.step`, unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from .gan import GAN

Z_DIM = 100       # z in R^100 (Chang, section 4.1)
BATCH_SIZE = 128  # Radford et al., section 4
NGF = 128         # generator channels at 7x7
NDF = 64          # discriminator channels after the first convolution


class ConvGenerator(nn.Sequential):
    """G: z -> FC + BN + LeakyReLU to 7x7 maps -> 14x14 -> 28x28 tanh."""

    def __init__(self, z_dim: int = Z_DIM, ngf: int = NGF) -> None:
        super().__init__(
            nn.Linear(z_dim, ngf * 7 * 7, bias=False),
            nn.BatchNorm1d(ngf * 7 * 7),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Unflatten(1, (ngf, 7, 7)),                          # (B, 128, 7, 7)
            nn.ConvTranspose2d(ngf, ngf // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf // 2),
            nn.LeakyReLU(0.2, inplace=True),                       # (B, 64, 14, 14)
            nn.ConvTranspose2d(ngf // 2, 1, 4, 2, 1),
            nn.Tanh(),                                             # (B, 1, 28, 28)
        )


class ConvDiscriminator(nn.Sequential):
    """D: image -> two strided convolutions with LeakyReLU -> FC to one logit.

    BatchNorm follows the second convolution, not the first: Radford et al. leave it out
    of the discriminator's input layer, as out of the generator's output layer.
    """

    def __init__(self, ndf: int = NDF) -> None:
        super().__init__(
            nn.Conv2d(1, ndf, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),                       # (B, 64, 14, 14)
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),                       # (B, 128, 7, 7)
            nn.Flatten(),                                          # (B, 6272)
            nn.Linear(ndf * 2 * 7 * 7, 1),
            nn.Flatten(0),                                         # (B,) logits
        )


def init_weights(module: nn.Module) -> None:
    """Radford et al.'s initialization (section 4): every weight drawn from N(0, 0.02).

    BatchNorm's scales are drawn around 1 instead, so that they start close to the identity
    (as in PyTorch's DCGAN example); biases start at zero.
    """
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class DCGAN(GAN):
    """The GAN with convolutional G and D, Radford et al.'s initialization, and beta1 = 0.5."""

    batch_size = BATCH_SIZE
    betas = (0.5, 0.999)  # Radford et al., section 4

    def __init__(self, z_dim: int = Z_DIM) -> None:
        super().__init__(z_dim, G=ConvGenerator(z_dim), D=ConvDiscriminator())
        self.apply(init_weights)
        # channels-last weights: the memory layout a CPU's convolution kernels run fastest on
        self.to(memory_format=torch.channels_last)
