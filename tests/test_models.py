"""The networks match the sources' designs, sample correctly, and the math holds numerically."""

import math

import pytest
import torch
from torch import distributions as dist
from torch import nn

from gentut import models
from gentut.models.vae import kl_to_standard_normal


def linear(i, o, bias=True):
    return i * o + (o if bias else 0)


def conv(i, o, k, bias=True):
    return i * o * k * k + (o if bias else 0)


def bn(c):
    return 2 * c


def count(module):
    return sum(p.numel() for p in module.parameters())


# Parameter counts written out from the sources' designs, layer by layer (the DCGAN's D with
# the BatchNorm that Radford et al.'s rules put in both networks).
EXPECTED = {
    "GAN.G": linear(64, 256) + linear(256, 256) + linear(256, 784),
    "GAN.D": linear(784, 256) + linear(256, 256) + linear(256, 1),
    "VAE.encoder": linear(784, 512) + linear(512, 256) + linear(256, 2 * 2),
    "VAE.decoder": linear(2, 256) + linear(256, 512) + linear(512, 784),
    "Autoencoder.encoder": linear(784, 512) + linear(512, 256) + linear(256, 2),
    "DCGAN.G": linear(100, 128 * 49, bias=False) + bn(128 * 49)
    + conv(128, 64, 4, bias=False) + bn(64) + conv(64, 1, 4),
    "DCGAN.D": conv(1, 64, 4) + conv(64, 128, 4, bias=False) + bn(128) + linear(128 * 49, 1),
    "InfoGAN.G": conv(74, 1024, 1, bias=False) + bn(1024) + conv(1024, 128, 7, bias=False)
    + bn(128) + conv(128, 64, 4, bias=False) + bn(64) + conv(64, 1, 4),
    "InfoGAN.body": conv(1, 64, 4) + conv(64, 128, 4, bias=False) + bn(128)
    + conv(128, 1024, 7, bias=False) + bn(1024),
    "InfoGAN.D_head": conv(1024, 1, 1),
    "InfoGAN.Q": conv(1024, 128, 1, bias=False) + bn(128) + linear(128, 10) + 2 * linear(128, 2),
}


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_parameter_counts_match_the_sources_design(path):
    family, part = path.split(".")
    assert count(getattr(getattr(models, family)(), part)) == EXPECTED[path]


def test_dcgan_starts_from_radford_et_al_initialization():
    """Every weight ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02), biases 0 (section 4)."""
    torch.manual_seed(0)
    m = models.DCGAN()
    layers = [mod for mod in m.modules() if hasattr(mod, "weight")]
    assert len(layers) == 9  # 6 linear or convolutional, 3 BatchNorm
    for mod in layers:
        mean = 1.0 if isinstance(mod, nn.modules.batchnorm._BatchNorm) else 0.0
        w = mod.weight.detach()
        assert abs(w.mean().item() - mean) < 0.01 and abs(w.std().item() - 0.02) < 0.005
        assert mod.bias is None or not mod.bias.any()


@pytest.mark.parametrize("family", ["GAN", "DCGAN", "InfoGAN", "StyleGAN"])
def test_discriminator_never_sees_real_and_fake_in_one_batch(family):
    """A BatchNorm in D must normalize real and fake batches apart: with one mixed batch, D's
    update and G's (fakes alone) normalize differently, and the DCGAN's D then wins outright."""
    torch.manual_seed(0)
    m = getattr(models, family)()
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    seen = []
    D = m.body if family == "InfoGAN" else m.D  # InfoGAN's D is a head on a shared body
    D.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    m.step(x, torch.arange(8) % 10, m.optimizers())
    assert seen and torch.equal(seen[0], x)
    assert all(len(batch) == len(x) for batch in seen)


@pytest.mark.parametrize("family,z", [("GAN", 64), ("DCGAN", 100), ("InfoGAN", 74)])
def test_generator_and_discriminator_shapes(family, z):
    torch.manual_seed(0)
    m = getattr(models, family)().eval()
    x = m.G(torch.randn(5, z))
    assert x.shape == (5, 1, 28, 28)
    lo, hi = m.value_range
    assert x.min() >= lo and x.max() <= hi
    assert m.D(x).shape == (5,)
    p = m.discriminate(x)
    assert p.shape == (5,) and p.min() >= 0 and p.max() <= 1


def test_vae_shapes():
    m = models.VAE()
    mu, logvar = m.encode(torch.rand(7, 1, 28, 28))
    assert mu.shape == logvar.shape == (7, 2)
    assert m.reconstruct(torch.rand(7, 1, 28, 28)).shape == (7, 1, 28, 28)
    assert models.Autoencoder().encode(torch.rand(7, 1, 28, 28)).shape == (7, 2)


@pytest.mark.parametrize("family", ["GAN", "DCGAN", "VAE", "InfoGAN", "StyleGAN"])
def test_sample_is_in_unit_range_and_seeded(family):
    m = getattr(models, family)()
    a, b, c = m.sample(6, seed=1), m.sample(6, seed=1), m.sample(6, seed=2)
    assert a.shape == (6, 1, 28, 28) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert m.training  # sampling leaves the mode as it was


def test_infogan_sample_takes_the_codes():
    m = models.InfoGAN()
    z = m.prior(4, torch.Generator().manual_seed(0), c=7, cont=torch.tensor([0.5, -2.0]))
    assert z.shape == (4, 74)
    assert torch.equal(z[:, 62:72].argmax(1), torch.full((4,), 7))
    assert torch.equal(z[:, 72:], torch.tensor([[0.5, -2.0]] * 4))
    per_row = m.prior(3, c=torch.tensor([0, 1, 2]))
    assert per_row[:, 62:72].argmax(1).tolist() == [0, 1, 2]
    assert m.sample(3, seed=0, c=torch.tensor([0, 1, 2])).shape == (3, 1, 28, 28)


def test_closed_form_kl_equals_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    q = dist.Normal(mu, torch.exp(0.5 * logvar))
    p = dist.Normal(torch.zeros(3), torch.ones(3))
    z = q.sample((200_000,))
    log_ratio = (q.log_prob(z) - p.log_prob(z)).sum(-1)  # (samples, 4)
    mc, se = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(z))
    closed = kl_to_standard_normal(mu, logvar)
    assert torch.all((closed - mc).abs() < 4 * se + 1e-3)
    exact = dist.kl_divergence(q, p).sum(-1)
    assert torch.allclose(closed, exact, atol=1e-5)


def test_trained_discriminator_approaches_the_optimal_one():
    """With G fixed, GAN.step's D loss drives D(x) to p_data / (p_data + p_G)."""
    torch.manual_seed(0)
    G = nn.Linear(1, 1)  # p_G = N(1.5, 0.5^2), held fixed
    with torch.no_grad():
        G.weight.fill_(0.5)
        G.bias.fill_(1.5)
    D = nn.Sequential(nn.Linear(1, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64),
                      nn.LeakyReLU(0.2), nn.Linear(64, 1), nn.Flatten(0))
    gan = models.GAN(z_dim=1, G=G, D=D)
    opt = {"D": torch.optim.Adam(D.parameters(), lr=2e-3),
           "G": torch.optim.SGD(G.parameters(), lr=0.0)}
    for _ in range(2000):
        gan.step(torch.randn(512, 1), None, opt)  # p_data = N(0, 1)
    x = torch.linspace(-1.5, 2.5, 41).unsqueeze(1)
    p_data = dist.Normal(0.0, 1.0).log_prob(x).exp()
    p_g = dist.Normal(1.5, 0.5).log_prob(x).exp()
    optimal = (p_data / (p_data + p_g)).squeeze(1)
    with torch.no_grad():
        learned = gan.discriminate(x)
    assert (learned - optimal).abs().max() < 0.06
