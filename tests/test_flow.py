"""The RealNVP flow is invertible, its log-determinant is exact, and it learns real digits."""

import math

import torch

from gentut import data, models, train
from gentut.models.flow import DELTA, Coupling, Flow, realnvp_layers, standard_normal_log_prob


def randomized(flow):
    """Give every coupling non-zero output weights: the identity map would test nothing."""
    torch.manual_seed(0)
    for p in flow.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return flow


def test_flow_is_invertible_to_1e_5():
    model = models.RealNVP()
    randomized(model.flow)
    x = torch.rand(4, 1, 28, 28)
    z, _ = model.flow(x)
    assert z.shape == (4, 16, 7, 7)
    assert (model.flow.inverse(z) - x).abs().max() < 1e-5
    images = torch.rand(4, 1, 28, 28)
    assert (model.decode(model.encode(images)) - images).abs().max() < 1e-5


def test_log_determinant_matches_autograd_jacobian():
    flow = randomized(Flow(realnvp_layers((1, 4, 4), scales=1, hidden=8))).double()
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    _, logdet = flow(x)
    jac = torch.autograd.functional.jacobian(lambda v: flow(v.view(1, 1, 4, 4))[0].flatten(),
                                             x.flatten())
    sign, logabsdet = torch.linalg.slogdet(jac)
    assert sign != 0
    assert torch.allclose(logdet[0], logabsdet, atol=1e-8)


def test_log_prob_integrates_the_change_of_variables():
    model = models.RealNVP()
    x = torch.rand(3, 1, 28, 28)
    # at initialization every coupling is the identity: only the logit transform remains
    x_tilde = DELTA + (1 - 2 * DELTA) * x
    y = torch.log(x_tilde) - torch.log1p(-x_tilde)
    expected = (standard_normal_log_prob(y)
                + (math.log(1 - 2 * DELTA) - torch.log(x_tilde) - torch.log1p(-x_tilde))
                .flatten(1).sum(1))
    assert torch.allclose(model.log_prob(x), expected, atol=1e-3)


def test_logit_maps_the_unit_interval_onto_plus_minus_logit_delta_only():
    y, _ = models.RealNVP.logit(torch.tensor([[0.0, 0.5, 1.0]]))
    edge = math.log((1 - DELTA) / DELTA)  # logit(1 - DELTA) = 2.944 for DELTA = 0.05
    assert torch.allclose(y, torch.tensor([[-edge, 0.0, edge]]), atol=1e-5)
    assert abs(edge - 2.944) < 1e-3


def test_density_on_the_unit_box_has_mass_below_one():
    """Pushed back to pixels, N(0, 1) in logit space keeps only P(|y| <= logit(1 - DELTA))."""
    x = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    y, logdet = models.RealNVP.logit(x[:, None])
    density = torch.exp(-0.5 * y[:, 0] ** 2 - 0.5 * math.log(2 * math.pi) + logdet)
    mass = torch.trapezoid(density, x).item()
    edge = math.log((1 - DELTA) / DELTA)
    inside = math.erf(edge / math.sqrt(2))  # P(|y| <= edge) for y ~ N(0, 1)
    assert abs(mass - inside) < 1e-6 and mass < 0.997


def test_coupling_layer_count_follows_the_couplings_argument():
    layers = realnvp_layers((1, 28, 28), scales=2, hidden=8, couplings=1)
    assert sum(isinstance(layer, Coupling) for layer in layers) == 5  # 2 * (1 + 1) + 1
    model = models.RealNVP(hidden=8, couplings=1)
    randomized(model.flow)
    images = torch.rand(2, 1, 28, 28)
    assert (model.decode(model.encode(images)) - images).abs().max() < 1e-5


def test_sample_and_bits_per_dim_fall_on_real_digits(mnist):
    torch.manual_seed(0)
    model = models.RealNVP(hidden=16)  # narrow, to keep the test quick
    batches = data.Batches(mnist, 32, device="cpu", limit=2048)
    h = train.fit(model, batches, 40, progress=False, snapshots=())
    column = torch.tensor(h.losses["bits_per_dim"])
    assert column[:5].mean() > column[-5:].mean() + 0.5
    s = model.sample(4, seed=0)
    assert s.shape == (4, 1, 28, 28) and 0 <= s.min() and s.max() <= 1
