"""The style-based generator: modulation, styles per layer, noise, truncation, training."""

import torch

from gentut import data, models, train
from gentut.models import stylegan
from gentut.models.stylegan import STYLES, Z_DIM, ModulatedConv, minibatch_stddev


def test_demodulation_restores_unit_scale_whatever_the_style():
    torch.manual_seed(0)
    conv = ModulatedConv(64, 32)
    x = torch.randn(8, 64, 14, 14)
    w = torch.randn(8, Z_DIM)
    with torch.no_grad():
        conv.affine.bias.fill_(5.0)  # styles far from 1: demodulation must undo their scale
        std = conv(x, w)[..., 1:-1, 1:-1].std((1, 2, 3))  # interior pixels, away from padding
    assert torch.allclose(std, torch.ones(8), atol=0.1)
    raw = ModulatedConv(64, 32, demodulate=False)
    raw.weight, raw.affine = conv.weight, conv.affine
    with torch.no_grad():
        assert raw(x, w).std() > 3  # without it, the style's scale passes through


def test_each_layer_takes_its_own_style_and_noise():
    torch.manual_seed(0)
    m = models.StyleGAN().eval()
    for layer in m.synthesis.layers:
        torch.nn.init.constant_(layer.noise_strength, 0.5)
    z, noise = m.split(m.prior(2, torch.Generator().manual_seed(0)))
    assert z.shape == (2, Z_DIM) and [n.shape[-1] for n in noise] == [7, 14, 14, 28, 28]
    ws = m.mapping(z)[:, None].repeat(1, STYLES, 1)
    with torch.no_grad():
        base = m.synthesis(ws, noise)
        assert torch.equal(base, m.decode(m.prior(2, torch.Generator().manual_seed(0))))
        fine = ws.clone()
        fine[:, 3:] = ws[[1, 0], 3:]  # swap the 28x28 layers' styles between the two
        swapped = m.synthesis(fine, noise)
        renoised = m.synthesis(ws, [torch.randn_like(n) for n in noise])
    assert swapped.shape == (2, 1, 28, 28)
    assert not torch.allclose(base, swapped) and not torch.allclose(base, renoised)


def test_truncation_to_zero_gives_the_mean_style():
    m = models.StyleGAN().eval()
    m.w_avg.copy_(torch.randn(Z_DIM))
    w = torch.randn(5, Z_DIM)
    assert torch.allclose(m.truncate(w, 0.0), m.w_avg.expand(5, -1))
    assert torch.allclose(m.truncate(w, 1.0), w)
    with torch.no_grad():
        a = m.decode(m.prior(3, torch.Generator().manual_seed(1)), psi=0.0)
        b = m.decode(m.prior(3, torch.Generator().manual_seed(2)), psi=0.0)
    for layer in m.synthesis.layers:  # noise is silent at initialization: same w, same image
        assert layer.noise_strength.abs().max() == 0
    assert torch.allclose(a, b, atol=1e-5)


def test_minibatch_stddev_is_zero_for_identical_samples_and_positive_otherwise():
    same = torch.randn(1, 3, 7, 7).repeat(8, 1, 1, 1)
    assert minibatch_stddev(same).shape == (8, 4, 7, 7)
    assert minibatch_stddev(same)[:, 3].max() < 1e-3
    assert minibatch_stddev(torch.randn(8, 3, 7, 7))[:, 3].min() > 0.5
    assert minibatch_stddev(torch.randn(6, 3, 7, 7)).shape == (6, 4, 7, 7)  # groups of 2


def test_trains_in_the_shared_loop_with_finite_losses_and_tracks_the_mean_w(mnist):
    torch.manual_seed(0)
    m = models.StyleGAN()
    batches = data.Batches(mnist, 32, value_range=m.value_range, device="cpu", limit=320)
    h = train.fit(m, batches, 6, progress=False, snapshots=(6,))
    assert set(h.losses) == {"loss_D", "loss_G", "R1", "D(x)", "D(G(z))"}
    assert all(torch.isfinite(torch.tensor(v)).all() for v in h.losses.values())
    assert min(h.losses["R1"]) > 0
    assert m.w_avg.abs().sum() > 0 and h.snapshots[6].shape == (64, 1, 28, 28)
    assert stylegan.R1_BATCH <= m.batch_size
