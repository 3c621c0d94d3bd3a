"""DDPM and flow matching: the forward process, the losses, the samplers and the likelihood
against closed forms on Gaussians; seeded sampling, guidance, the EMA and the shared loop."""

import math

import pytest
import torch
from torch import nn

from gentut import data, models, train
from gentut.models.diffusion import (
    T,
    ancestral_sample,
    cosine_alpha_bar,
    ddim_sample,
    linear_alpha_bar,
)
from gentut.models.flowmatch import ancestral_sample as flow_ancestral
from gentut.models.flowmatch import euler_sample, heun_sample, time_grid
from gentut.models.unet import NULL_CLASS, UNet


def gaussian_eps(mu: float, s: float, alpha_bar: torch.Tensor):
    """The exact denoiser of x_0 ~ N(mu, s^2): E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu)
    / (ab s^2 + 1 - ab), for an integer step t."""
    def eps_model(x, t):
        ab = alpha_bar[t].double()
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * s ** 2 + 1 - ab)
    return eps_model


class GaussianVelocity(nn.Module):
    """The exact marginal velocity of x_t = (1 - t) x_0 + t x_1, x_0 ~ N(0, I), x_1 ~ N(mu,
    diag s^2): v = mu + (t s^2 - (1 - t)) / sigma_t^2 (x - t mu), sigma_t^2 = (1 - t)^2 + t^2
    s^2. Its flow maps x_0 to mu + s x_0, and it ignores the label."""

    def __init__(self, mu: torch.Tensor, s: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mu", mu)
        self.register_buffer("s", s)
        self.calls = 0
        self.images = 0  # images evaluated, over all calls

    def forward(self, x, t, y):
        self.calls += 1
        self.images += len(x)
        t = t.view(-1, *[1] * (x.dim() - 1)).to(x.dtype)
        var_t = (1 - t) ** 2 + t ** 2 * self.s ** 2
        return self.mu + (t * self.s ** 2 - (1 - t)) / var_t * (x - t * self.mu)


def image_gaussian(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel means in [-0.2, 0.2] and standard deviations in [0.15, 0.25] (1x28x28)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 28, 28, generator=g) * 0.4 - 0.2,
            torch.rand(1, 28, 28, generator=g) * 0.1 + 0.15)


def randomized(model: models.Generative) -> models.Generative:
    """Give a small U-Net's zero-initialized layers weights, so that its output depends on x, t
    and y; copy them to the EMA, which sampling uses."""
    torch.manual_seed(0)
    for name, p in model.net.named_parameters():
        if not name.startswith("label"):  # the class embedding keeps its N(0, 1) start
            nn.init.normal_(p, std=0.1)
    model.ema.load_state_dict({k: v.detach() for k, v in model.net.state_dict().items()})
    return model.eval()


def small(family) -> models.Generative:
    return randomized(family(net=UNet(channels=(8, 16, 16))))


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_closed_form_q_matches_t_steps_of_the_forward_chain(schedule):
    torch.manual_seed(0)
    model = models.DDPM(schedule)
    x_0 = torch.tensor([0.8, -0.5]).repeat(20_000, 1)           # 20,000 chains per value
    x, checks = x_0.clone(), (1, 10, 300, T)
    for t in range(1, T + 1):  # x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps
        beta = model.beta[t]
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn_like(x)
        if t in checks:
            ab = model.alpha_bar[t]
            tt = torch.full((len(x_0),), t)
            closed = model.q_sample(x_0, tt, torch.randn_like(x_0))
            for sample in (x, closed):
                sd = (1 - ab).sqrt()
                assert torch.allclose(sample.mean(0), ab.sqrt() * x_0[0], atol=5 * sd / 141), t
                assert torch.allclose(sample.var(0) / (1 - ab), torch.ones(2), atol=0.05), t


def test_schedules_start_at_one_and_end_near_pure_noise():
    for alpha_bar in (cosine_alpha_bar(), linear_alpha_bar()):
        assert alpha_bar.shape == (T + 1,) and alpha_bar[0] == 1
        assert (alpha_bar[1:] < alpha_bar[:-1]).all() and alpha_bar[-1] < 1e-4
    # the cosine schedule keeps more signal mid-way (Nichol & Dhariwal, Figure 5)
    assert cosine_alpha_bar()[T // 2] > 2 * linear_alpha_bar()[T // 2]


class TrueNoise(nn.Module):
    """The ideal DDPM network for a fixed batch x_0: reads the noise out of x_t."""

    def __init__(self, x_0: torch.Tensor, alpha_bar: torch.Tensor) -> None:
        super().__init__()
        self.x_0, self.alpha_bar = x_0, alpha_bar

    def forward(self, x_t, t, y):
        assert 0 < t.min() and t.max() <= 1 and torch.allclose(t * T, (t * T).round()), \
            "the network's time is the step over T"
        ab = self.alpha_bar[(t * T).round().long()].view(-1, 1, 1, 1)
        return (x_t - ab.sqrt() * self.x_0) / (1 - ab).sqrt()


class TrueVelocity(nn.Module):
    """The ideal flow-matching network for a fixed batch x_1: x_1 - x_0 from x_t and t."""

    def __init__(self, x_1: torch.Tensor) -> None:
        super().__init__()
        self.x_1 = x_1

    def forward(self, x_t, t, y):
        t = t.view(-1, 1, 1, 1)
        x_0 = (x_t - t * self.x_1) / (1 - t)
        return self.x_1 - x_0


def test_losses_of_networks_returning_the_true_noise_and_velocity_are_zero():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    y = torch.randint(0, 10, (64,))
    ddpm = models.DDPM()
    ddpm.net = TrueNoise(x, ddpm.alpha_bar)
    assert ddpm.loss(x, y) < 1e-6
    fm = models.FlowMatching(net=TrueVelocity(x))
    assert fm.loss(x, y) < 1e-6
    # and a network that knows nothing pays the noise's variance: the loss measures something
    assert 0.9 < models.DDPM().loss(x, y) < 1.1


def test_ddim_over_the_full_chain_matches_ancestral_sampling_on_a_gaussian():
    mu, s, n = 0.5, 0.3, 20_000
    alpha_bar = cosine_alpha_bar().float()
    eps_model = gaussian_eps(mu, s, alpha_bar)
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(n, 1, generator=g, dtype=torch.float64)
    ddim = ddim_sample(eps_model, x_T, alpha_bar, steps=T)
    ancestral = ancestral_sample(eps_model, x_T, alpha_bar, generator=g)
    ddim_50 = ddim_sample(eps_model, x_T, alpha_bar, steps=50)
    for x in (ddim, ancestral):  # both land on the data's N(0.5, 0.3^2)
        assert abs(x.mean() - mu) < 0.01 and abs(x.std() - s) < 0.01
    assert abs(ddim.mean() - ancestral.mean()) < 0.01 and abs(ddim.std() - ancestral.std()) < 0.01
    # DDIM is deterministic, and on Gaussians its map is affine: x_0 = mu + s x_T, not so
    # for ancestral sampling, whose every step adds fresh noise
    assert (ddim - (mu + s * x_T)).abs().max() < 0.01
    assert (ancestral - (mu + s * x_T)).abs().mean() > 0.1
    # 50 DDIM steps come close at a twentieth of the cost (3.6% short on the spread here)
    assert abs(ddim_50.mean() - mu) < 0.01 and abs(ddim_50.std() - s) < 0.02
    # ancestral sampling respaced to 50 steps keeps the mean but falls further short on the
    # spread (8.7% here): each step's noise is q(x_s | x_t, x_0)'s, as if x_0 were known
    ancestral_50 = ancestral_sample(eps_model, x_T, alpha_bar, generator=g, steps=50)
    assert abs(ancestral_50.mean() - mu) < 0.01
    assert 0.85 * s < ancestral_50.std() < ddim_50.std() < s


def test_flow_matching_samplers_carry_noise_onto_the_known_target():
    mu, s = image_gaussian()
    model = models.FlowMatching(net=GaussianVelocity(mu, s))
    target = mu + s * model.prior(16, torch.Generator().manual_seed(3))  # the exact flow map
    heun_25 = model.sample(16, seed=3, sampler="heun", steps=25)
    assert (heun_25 - model.to_unit(target)).abs().max() < 5e-3
    v = model.ema
    x_0 = model.prior(16, torch.Generator().manual_seed(3))

    def vel(x, t):
        return v(x, torch.full((len(x),), t), None)

    heun = (heun_sample(vel, x_0, 10) - target).abs().max()
    euler = (euler_sample(vel, x_0, 10) - target).abs().max()
    euler_40 = (euler_sample(vel, x_0, 40) - target).abs().max()
    assert heun < euler / 5                                         # second order against first
    assert 2.5 < euler / euler_40 < 6                               # Euler's error falls as h


def test_flow_matching_ancestral_steps_land_on_the_target_distribution_not_its_map():
    """As the DDPM's respaced ancestral steps: the right mean, a spread short by a tenth in 50
    steps and less in more, and fresh noise deciding which image (far from the ODE's map)."""
    mu, s = image_gaussian()
    model = models.FlowMatching(net=GaussianVelocity(mu, s))
    x_0 = model.prior(500, torch.Generator().manual_seed(3))

    def vel(x, t):
        return model.ema(x, torch.full((len(x),), t), None)

    spread = {}
    for steps in (50, 200):
        x = flow_ancestral(vel, x_0, steps, torch.Generator().manual_seed(4))
        z = (x - mu) / s                                            # standardized: N(0, 1)
        assert z.mean().abs() < 0.01 and (x - (mu + s * x_0)).abs().mean() > 0.1
        spread[steps] = z.std()
    assert 0.85 < spread[50] < spread[200] < 1
    assert model.evaluations() == 50 and model.sampler == "ancestral"


def test_ode_log_likelihood_of_a_gaussian_matches_its_closed_form():
    mu, s = image_gaussian()
    model = models.FlowMatching(net=GaussianVelocity(mu, s))
    g = torch.Generator().manual_seed(0)
    x_1 = mu + s * torch.randn(32, 1, 28, 28, generator=g)
    x = (x_1 + 1) / 2                                               # pixels in [0, 1]
    d = 784
    exact = (torch.distributions.Normal(mu, s).log_prob(x_1).flatten(1).sum(1)
             + d * math.log(2))                                     # + the [-1, 1] scaling
    rademacher = model.log_prob(x, generator=torch.Generator().manual_seed(1))
    # for a diagonal Jacobian a Rademacher probe is exact: only the ODE solver's error is
    # left, under a nat per image of ~1100 in the default 100 Heun steps (0.002 bits/dim),
    # a quarter of what 50 steps leave (the solver's second order)
    err_100 = (rademacher - exact).abs().max()
    err_50 = (model.log_prob(x, steps=50, generator=torch.Generator().manual_seed(1))
              - exact).abs().max()
    assert err_100 < 1 and err_100 < err_50 / 3
    gaussian = model.log_prob(x, probe="gaussian", generator=torch.Generator().manual_seed(1))
    err = gaussian - exact
    assert err.std() > 1                                            # a Gaussian probe is noisy...
    assert err.mean().abs() < 4 * err.std() / math.sqrt(len(err))   # ...and unbiased
    # bits/dim dequantize as the flow chapter does: (-log p((xbar + u) / 256) / ln 2 + 8 d) / d
    bpd = model.bits_per_dim(x, torch.Generator().manual_seed(2))
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(2))
    x_tilde = (torch.round(x * 255) + u) / 256
    log_p = (torch.distributions.Normal(mu, s).log_prob(2 * x_tilde - 1).flatten(1).sum(1)
             + d * math.log(2))
    assert torch.allclose(bpd, (-log_p / math.log(2) + 8 * d) / d, atol=2e-3)  # solver error


def test_likelihood_grid_shrinks_towards_sharp_data():
    """Data as sharp as 8-bit pixels (standard deviations of 0.003 to 0.005 on [-1, 1]) make
    the field's divergence grow like 1 / (1 - t) near t = 1: evenly spaced steps miss the
    log-density by over a hundred nats there, steps shrinking as (1 - u)^3 by under ten."""
    assert time_grid(4) == [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]
    grid = time_grid(4, power=3, backwards=True)
    assert grid[0][0] == 1.0 and grid[-1][1] == 0.0
    assert [round(t - s, 4) for t, s in grid] == [0.0156, 0.1094, 0.2969, 0.5781]
    mu, s = image_gaussian()
    s = s * 0.02
    model = models.FlowMatching(net=GaussianVelocity(mu, s))
    x_1 = mu + s * torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    exact = (torch.distributions.Normal(mu, s).log_prob(x_1).flatten(1).sum(1)
             + 784 * math.log(2))
    errors = {power: (model.log_prob((x_1 + 1) / 2, power=power,
                                     generator=torch.Generator().manual_seed(1))
                      - exact).abs().max() for power in (1, 3)}
    assert errors[3] < 10 < 100 < errors[1]


@pytest.mark.parametrize("family", [models.DDPM, models.FlowMatching])
def test_sample_is_seeded_and_returns_images_in_the_unit_range(family):
    model = small(family)
    a = model.sample(3, seed=5, steps=2)
    assert a.shape == (3, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    assert a.std() > 0.05
    assert torch.equal(a, model.sample(3, seed=5, steps=2))
    assert not torch.equal(a, model.sample(3, seed=6, steps=2))
    assert model.training is False


def test_decode_is_a_map_from_noise_with_ddim_and_draws_fresh_noise_ancestrally():
    model = small(models.DDPM)
    z = model.prior(3, torch.Generator().manual_seed(0))
    ddim = model.decode(z, steps=3, sampler="ddim")
    assert torch.equal(ddim, model.decode(z, steps=3, sampler="ddim"))
    assert not torch.equal(model.decode(z, steps=3), model.decode(z, steps=3))  # ancestral


def test_default_samplers_cost_fifty_evaluations():
    mu, s = image_gaussian()
    cases = [(models.DDPM, None, 50), (models.FlowMatching, None, 50),
             (models.DDPM, "ddim", 50), (models.FlowMatching, "heun", 100)]
    for family, sampler, calls in cases:
        model = family(net=GaussianVelocity(mu, s))
        model.sample(2, seed=0, sampler=sampler)
        assert model.ema.calls == calls == model.evaluations(sampler), (family, sampler)
    for family in (models.DDPM, models.FlowMatching):  # guidance: two predictions a step
        for omega, per_sample in ((1.0, 10), (2.0, 20)):
            model = family(net=GaussianVelocity(mu, s))
            model.sample(3, seed=0, y=[1, 2, 3], steps=10 // model.samplers[model.sampler],
                         guidance=omega)
            assert model.ema.images == 3 * per_sample
            assert model.evaluations(steps=10 // model.samplers[model.sampler],
                                     guidance=omega, conditional=True) == per_sample
    model = models.DDPM(net=GaussianVelocity(mu, s))  # Ho et al.'s full chain, on request
    model.sample(2, seed=0, sampler="ancestral", steps=T)
    assert model.ema.calls == T == model.evaluations("ancestral", T)
    with pytest.raises(ValueError, match="unknown sampler"):
        models.DDPM().sample(2, sampler="heun")


class LabelEcho(nn.Module):
    """A network whose output is its label, to check the guidance formula."""

    def forward(self, x, t, y):
        return torch.zeros_like(x) + y.view(-1, 1, 1, 1).float()


@pytest.mark.parametrize("family", [models.DDPM, models.FlowMatching])
def test_guidance_zero_is_unconditional_and_labels_change_samples(family):
    model = small(family)
    uncond = model.sample(4, seed=1, steps=3)
    assert torch.equal(model.sample(4, seed=1, y=[1, 2, 3, 4], steps=3, guidance=0), uncond)
    three = model.sample(4, seed=1, y=3, steps=3)
    seven = model.sample(4, seed=1, y=7, steps=3)
    assert (three - seven).abs().mean() > 1e-3 and (three - uncond).abs().mean() > 1e-3
    # out(null) + omega (out(y) - out(null)) with out = the label: 10 + 2 (3 - 10) = -4
    echo = family(net=LabelEcho())
    x, y = torch.zeros(2, 1, 28, 28), torch.tensor([3, 3])
    assert torch.equal(echo.predict(x, 0.5, y, 2.0), torch.full_like(x, -4.0))
    assert torch.equal(echo.predict(x, 0.5, y, 0.0), torch.full_like(x, float(NULL_CLASS)))
    assert torch.equal(echo.predict(x, 0.5, None, 2.0), torch.full_like(x, float(NULL_CLASS)))


class Constant(nn.Module):
    """A network whose output is one number everywhere: a guide, to check autoguidance."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x, t, y):
        return torch.full_like(x, self.value)


@pytest.mark.parametrize("family", [models.DDPM, models.FlowMatching])
def test_autoguidance_pushes_the_unconditional_output_away_from_the_guide(family):
    echo = family(net=LabelEcho())  # unconditional output: the null class, 10
    x, y = torch.zeros(2, 1, 28, 28), torch.tensor([3, 3])
    assert echo.evaluations() == echo.steps * echo.samplers[echo.sampler]  # no guide yet
    echo.attach_guide(family(net=Constant(4.0)))
    # guide + omega (model - guide) = 4 + 2 (10 - 4) = 16; omega = 1 is the model alone
    assert torch.equal(echo.predict(x, 0.5, None, 2.0), torch.full_like(x, 16.0))
    assert torch.equal(echo.predict(x, 0.5, None, 1.0), torch.full_like(x, float(NULL_CLASS)))
    assert torch.equal(echo.predict(x, 0.5, None, 0.0), torch.full_like(x, 4.0))
    assert torch.equal(echo.predict(x, 0.5, y, 2.0), torch.full_like(x, -4.0))  # labels: CFG
    one = echo.steps * echo.samplers[echo.sampler]
    assert echo.evaluations() == 2 * one == echo.evaluations(conditional=True)
    assert echo.evaluations(guidance=1) == one == echo.evaluations(guidance=0, conditional=True)


def test_label_dropout_uses_the_null_class_at_the_rate_p_uncond():
    from gentut.models.diffusion import P_UNCOND

    torch.manual_seed(0)
    dropped = models.DDPM().drop_labels(torch.full((20_000,), 4))
    share = (dropped == NULL_CLASS).float().mean()
    assert abs(share - P_UNCOND) < 0.015 and set(dropped.tolist()) == {4, NULL_CLASS}


@pytest.mark.parametrize("family", [models.DDPM, models.FlowMatching])
def test_state_dict_round_trips_the_ema_which_sampling_uses(family, tmp_path):
    torch.manual_seed(0)
    model = family(net=UNet(channels=(8, 16, 16)))
    opt = model.optimizers()
    x, y = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (8,))
    for _ in range(3):
        model.step(x, y, opt)
    net, ema = model.net.state_dict(), model.ema.state_dict()
    assert not all(torch.equal(net[k], ema[k]) for k in net)       # the average lags the weights
    assert sum(p.numel() for p in model.parameters()) == sum(v.numel() for v in net.values())
    train.save_atomic({"model": model.state_dict()}, tmp_path / "m.pt")
    fresh = family(net=UNet(channels=(8, 16, 16)))
    fresh.load_state_dict(train.load_checkpoint(tmp_path / "m.pt")["model"])
    assert all(torch.equal(v, fresh.ema.state_dict()[k]) for k, v in ema.items())
    assert fresh.ema_updates == 3
    reference = model.sample(2, seed=0, steps=2)
    assert torch.equal(fresh.sample(2, seed=0, steps=2), reference)
    with torch.no_grad():
        for p in fresh.net.parameters():
            p.add_(1.0)                                               # the raw weights move...
    assert torch.equal(fresh.sample(2, seed=0, steps=2), reference)   # ...samples do not


@pytest.mark.parametrize("family", [models.DDPM, models.FlowMatching])
def test_trains_in_the_shared_loop_with_finite_losses(family, mnist):
    torch.manual_seed(0)
    model = family(net=UNet(channels=(8, 16, 16)))
    batches = data.Batches(mnist, 32, value_range=model.value_range, device="cpu", limit=320)
    h = train.fit(model, batches, 4, progress=False, snapshots=(4,), snapshot_size=4)
    (name,) = h.losses
    assert name in ("loss_simple", "loss_cfm") and len(h.losses[name]) == 4
    assert all(math.isfinite(v) for v in h.losses[name])
    assert model.ema_updates == 4 and h.snapshots[4].shape == (4, 1, 28, 28)


def test_network_slices_a_large_cpu_batch_and_returns_the_same_outputs():
    from gentut.models.diffusion import CPU_BATCH

    model = small(models.DDPM).eval()
    n = 2 * CPU_BATCH + 5
    x, t = torch.randn(n, 1, 28, 28), torch.rand(n)
    y = torch.randint(0, NULL_CLASS + 1, (n,))
    calls = []
    model.ema.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    with torch.no_grad():
        sliced = model.network(model.ema, x, t, y)
        whole = model.ema(x, t, y)
    assert calls == [CPU_BATCH, CPU_BATCH, 5, n]
    assert torch.allclose(sliced, whole, atol=1e-5)
