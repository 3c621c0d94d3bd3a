"""A small style-based generator (Karras et al., 2019) for 28x28 images, and its critic.

A mapping network turns z into an intermediate latent w; a learned constant is turned into
an image by convolutions whose weights each layer's style, an affine map of w, modulates
and demodulates (the form of StyleGAN2, Karras et al., 2020, section 2.2, which replaced
AdaIN to avoid its droplet artefacts; unlike AdaIN it subtracts no mean, adds no style bias,
and divides by the output's expected standard deviation, not the measured one); per-pixel
noise adds the stochastic detail; the resolution goes 7 -> 14 -> 28. Weight tensors are W
in the comments (the chapter's notation), w is the latent.
Training: the non-saturating loss, an R1 penalty on real images, style mixing
regularization, and a running mean of w for the truncation trick. Every layer uses the
equalized learning rate: weights drawn from N(0, 1) and scaled by He's constant at run time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Adversarial, adam
from .gan import generator_update

Z_DIM = 64            # z and w; the paper's 512 serve faces, 64 serve these 10-class sets
MAPPING_LAYERS = 4    # the paper uses 8; see the chapter for why 4 do here
MAPPING_LR_MUL = 0.01  # StyleGAN, appendix C: the mapping network learns 100x slower
CHANNELS = (64, 64, 64, 32, 32)  # synthesis layers at 7, 14, 14, 28, 28 pixels
NOISE_SIZES = (7, 14, 14, 28, 28)  # one per-pixel noise image per synthesis layer
STYLES = len(CHANNELS) + 1  # one per layer and one for the output: 1 at 7x7, 2 at 14, 3 at 28
NOISE_NUMBERS = sum(s * s for s in NOISE_SIZES)
LR = 2e-3             # StyleGAN2 configuration
BETAS = (0.0, 0.99)   # StyleGAN2 configuration
BATCH_SIZE = 64
R1_GAMMA = 0.01       # StyleGAN2-ADA's CIFAR-10 setting, the closest in image size
R1_BATCH = 16         # R1 measured on 16 of the 64 real images: unbiased, a quarter the cost
MIXING_PROB = 0.9     # style mixing regularization (StyleGAN, section 3.1)
W_AVG_BETA = 0.995    # running mean of w, the centre of the truncation trick
GAIN = math.sqrt(2)   # keeps LeakyReLU(0.2) activations at unit scale


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * GAIN


class EqualLinear(nn.Module):
    """A linear layer with equalized learning rate (`lr_mul` slows it down further)."""

    def __init__(self, d_in: int, d_out: int, lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((d_out,), bias_init / lr_mul))
        self.scale, self.lr_mul = lr_mul / math.sqrt(d_in), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    """A convolution with equalized learning rate."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = 1 / math.sqrt(c_in * kernel * kernel)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)


class Mapping(nn.Module):
    """The mapping network z -> w: z scaled to unit mean square, then LeakyReLU layers."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EqualLinear(Z_DIM, Z_DIM, MAPPING_LR_MUL)
                                    for _ in range(MAPPING_LAYERS))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)  # pixel norm of z
        for layer in self.layers:
            w = leaky(layer(w))
        return w


class ModulatedConv(nn.Module):
    """A convolution whose weights each sample's style scales per input channel, then
    rescales per output channel to unit expected variance, the variance the output would
    have for independent unit-variance inputs (modulation and demodulation)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, demodulate: bool = True,
                 upsample: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.affine = EqualLinear(Z_DIM, c_in, bias_init=1.0)  # style s = A(w), starts at 1
        self.scale = 1 / math.sqrt(c_in * kernel * kernel)
        self.demodulate, self.upsample = demodulate, upsample

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)                                         # (B, c_in)
        weight = self.weight * self.scale                          # (c_out, c_in, k, k)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        # modulate: W'_ijk = s_i W_ijk, applied to the input instead of the weights
        x = F.conv2d(x * s[:, :, None, None], weight, padding=weight.shape[-1] // 2)
        if self.demodulate:
            # demodulate: W''_ijk = W'_ijk / sqrt(sum_ik W'_ijk^2 + eps), per sample
            sigma = torch.rsqrt(s.pow(2) @ weight.pow(2).sum((2, 3)).T + 1e-8)  # (B, c_out)
            x = x * sigma[:, :, None, None]
        return x


class StyleLayer(nn.Module):
    """Modulated 3x3 convolution, per-pixel noise scaled per channel, bias, LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv(c_in, c_out, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(c_out))  # learned, starts silent
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)                                        # (B, c_out, H, W)
        x = x + self.noise_strength[:, None, None] * noise         # noise: (B, 1, H, W)
        return leaky(x + self.bias[:, None, None])


class Synthesis(nn.Module):
    """g: one style per layer (B, STYLES, Z_DIM) and noise images -> images (B, 1, 28, 28)."""

    def __init__(self) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.randn(1, CHANNELS[0], 7, 7))  # learned input
        c_in = (CHANNELS[0], *CHANNELS[:-1])
        up = [a != b for a, b in zip((7, *NOISE_SIZES[:-1]), NOISE_SIZES, strict=True)]
        self.layers = nn.ModuleList(StyleLayer(i, o, u)           # 7, 14, 14, 28, 28
                                    for i, o, u in zip(c_in, CHANNELS, up, strict=True))
        self.to_image = ModulatedConv(CHANNELS[-1], 1, kernel=1, demodulate=False)
        self.image_bias = nn.Parameter(torch.zeros(1))

    def forward(self, ws: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        x = self.const.expand(len(ws), -1, -1, -1)                 # (B, 64, 7, 7)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise[i])
        return self.to_image(x, ws[:, -1]) + self.image_bias       # (B, 1, 28, 28)


def minibatch_stddev(h: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append the features' standard deviation across groups of samples as one more channel:
    a batch of near-identical fakes then looks different from a batch of real images."""
    b, c, height, width = h.shape
    g = math.gcd(group, b)
    std = h.reshape(g, -1, c, height, width).var(0, unbiased=False).add(1e-8).sqrt()
    std = std.mean((1, 2, 3)).repeat(g)                            # (B,)
    return torch.cat([h, std[:, None, None, None].expand(-1, 1, height, width)], 1)


class StyleDiscriminator(nn.Module):
    """D: image -> strided convolutions 28 -> 14 -> 7, minibatch stddev, one logit."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([
            EqualConv2d(1, 32, 3, padding=1),                      # (B, 32, 28, 28)
            EqualConv2d(32, 64, 4, stride=2, padding=1),           # (B, 64, 14, 14)
            EqualConv2d(64, 128, 4, stride=2, padding=1),          # (B, 128, 7, 7)
            EqualConv2d(129, 128, 3, padding=1),                   # (B, 128, 7, 7)
        ])
        self.out = EqualLinear(128 * 7 * 7, 1)                     # (B, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = leaky(conv(minibatch_stddev(x) if i == 3 else x))
        return self.out(x.flatten(1)).flatten()                   # (B,) logits


class StyleGAN(Adversarial):
    """Mapping network, synthesis network, and a discriminator with an R1 penalty."""

    value_range = (-1.0, 1.0)
    batch_size = BATCH_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.mapping = Mapping()
        self.synthesis = Synthesis()
        self.D = StyleDiscriminator()
        self.register_buffer("w_avg", torch.zeros(Z_DIM))

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[z, noise images], all N(0, 1): the generator's whole randomness, so that a seed
        fixes a sample."""
        return torch.randn(n, Z_DIM + NOISE_NUMBERS, generator=generator)

    @staticmethod
    def split(latent: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """A prior draw as z (B, Z_DIM) and the noise images, (B, 1, s, s) per layer."""
        z, *flat = latent.split([Z_DIM, *(s * s for s in NOISE_SIZES)], dim=1)
        return z, [f.view(-1, 1, s, s) for f, s in zip(flat, NOISE_SIZES, strict=True)]

    def truncate(self, w: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """The truncation trick: w pulled towards the mean w by a factor psi."""
        return self.w_avg + psi * (w - self.w_avg)

    def decode(self, latent: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """Images for prior draws: the same w for every layer, truncated by psi."""
        z, noise = self.split(latent)
        w = self.truncate(self.mapping(z), psi)
        return self.synthesis(w[:, None].expand(-1, STYLES, -1), noise)

    def mixed_styles(self, z: torch.Tensor) -> torch.Tensor:
        """Per-layer styles for training: with probability MIXING_PROB the layers after a
        random crossover take the w of a second z, so that no layer relies on its neighbours
        sharing its style."""
        w = self.mapping(z)
        ws = w[:, None].repeat(1, STYLES, 1)
        if torch.rand(()) < MIXING_PROB:
            cut = int(torch.randint(1, STYLES, ()))
            ws[:, cut:] = self.mapping(torch.randn_like(z))[:, None]
        with torch.no_grad():
            self.w_avg.lerp_(w.mean(0).float(), 1 - W_AVG_BETA)
        return ws

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        g_params = [*self.mapping.parameters(), *self.synthesis.parameters()]
        return {"D": adam(self.D.parameters(), LR, BETAS), "G": adam(g_params, LR, BETAS)}

    def step(self, x, y, opt):
        """D's update with the R1 penalty, then G's non-saturating update (the GAN's)."""
        z, noise = self.split(torch.randn(len(x), Z_DIM + NOISE_NUMBERS, device=x.device))
        fake = self.synthesis(self.mixed_styles(z), noise)

        # update D: maximize log D(x) + log(1 - D(G(z)))  (separate passes: the minibatch
        # stddev must not mix real and fake images)
        d_real, d_fake = self.D(x), self.D(fake.detach())
        loss_D = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        # R1 = E ||grad_x l(x)||^2 over real images (l: D's logit), a penalty weighted by
        # gamma / 2: D's surface is kept flat on the data
        real = x[:R1_BATCH].detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.D(real).sum(), real, create_graph=True)
        r1 = grad.pow(2).sum((1, 2, 3)).mean()
        opt["D"].zero_grad(set_to_none=True)
        (loss_D + R1_GAMMA / 2 * r1).backward()
        opt["D"].step()

        # update G: maximize log D(G(z))  (the non-saturating loss, D held fixed)
        loss_G = generator_update(self.D, fake, opt["G"])
        return {
            "loss_D": loss_D.detach(),
            "loss_G": loss_G,
            "R1": r1.detach(),
            "D(x)": torch.sigmoid(d_real).mean().detach(),
            "D(G(z))": torch.sigmoid(d_fake).mean().detach(),
        }
