"""Shipping a trained model: retrain, write, list, load, and the errors on the way."""

import io

import pytest
import torch

from gentut import data, models, pretrained
from gentut.models.unet import UNet

SUBSET = 3000  # real images a recipe trains on here, to keep the tests fast


@pytest.fixture
def shop(tmp_path, monkeypatch, mnist, mnist_test):
    """An empty weights folder and two short recipes on a subset of the real data."""
    splits = {"train": mnist, "test": mnist_test}

    def subset(name, split="train", root=None):
        d = splits[split]
        return data.Dataset(d.images[:SUBSET], d.labels[:SUBSET], d.classes)

    monkeypatch.setattr(pretrained.data, "load", subset)
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path / "weights")
    monkeypatch.setitem(pretrained.RECIPES, "gan-mnist", pretrained.Recipe(
        models.GAN, "mnist", epochs=2, snapshots=(1, 10), snapshot_epochs=(2,)))
    monkeypatch.setitem(pretrained.RECIPES, "classifier-mnist", pretrained.Recipe(
        models.Classifier, "mnist", epochs=2))
    pretrained._read.cache_clear()
    yield tmp_path
    pretrained._read.cache_clear()


def test_train_ship_and_load_round_trip(shop):
    assert pretrained.available() == []
    out = pretrained.train("gan-mnist", "cpu", runs=shop / "runs", progress=False)
    assert out == shop / "weights" / "gan-mnist.pt"
    assert pretrained.available() == ["gan-mnist"]
    model = pretrained.load("gan-mnist")
    assert isinstance(model, models.GAN) and not model.training
    assert next(model.parameters()).dtype == torch.float32
    h = pretrained.history("gan-mnist")
    assert h.steps == 60 and sorted(h.snapshots) == [1, 10, 60]
    assert h.info["dataset"] == "mnist" and h.info["device"] == "cpu"
    assert h.info["parameters"] == 550929 and h.info["wall_time_s"] > 0
    # the shipped file is the run's last snapshot, sampled again from the loaded weights
    again = (model.sample(64, seed=0) * 255).round().to(torch.uint8)
    assert (again.int() - h.snapshots[60].int()).abs().max() <= 2  # float16 weights


def test_generators_ship_in_float16_only_when_samples_do_not_move(shop):
    pretrained.train("gan-mnist", "cpu", runs=shop / "runs", progress=False)
    state = torch.load(pretrained.path("gan-mnist"), weights_only=True)
    assert state["model"]["G.0.weight"].dtype == torch.float16
    assert pretrained.history("gan-mnist").info["dtype"] == "float16"
    pretrained.train("classifier-mnist", "cpu", runs=shop / "runs", progress=False)
    clf = pretrained.history("classifier-mnist").info
    assert clf["dtype"] == "float32" and clf["test_accuracy"] > 0.8


def test_diffusion_models_ship_their_average_once(shop, monkeypatch):
    """The shipped file stores the EMA weights once, as both `net` and `ema`: about half the
    bytes of the two stored apart; the loaded model samples as the trained one did."""
    monkeypatch.setitem(pretrained.RECIPES, "diffusion-mnist", pretrained.Recipe(
        lambda: models.DDPM(net=UNet(channels=(8, 16, 16))), "mnist", epochs=1,
        snapshots=(1,), snapshot_epochs=(1,)))
    pretrained.train("diffusion-mnist", "cpu", runs=shop / "runs", progress=False)
    state = torch.load(pretrained.path("diffusion-mnist"), weights_only=True)["model"]
    shipped, apart = io.BytesIO(), io.BytesIO()
    torch.save(state, shipped)
    torch.save({k: v.clone() for k, v in state.items()}, apart)
    assert len(shipped.getvalue()) < 0.6 * len(apart.getvalue())
    model = pretrained.load("diffusion-mnist")
    average = dict(model.ema.named_buffers())
    assert all(torch.equal(p, average[name]) for name, p in model.net.named_parameters())
    h = pretrained.history("diffusion-mnist")
    again = (model.sample(64, seed=0) * 255).round().to(torch.uint8)
    assert (again.int() - h.snapshots[h.steps].int()).abs().max() < 4  # if float16 shipped


def test_a_diffusion_model_loads_with_its_guide_which_must_ship(shop, monkeypatch):
    """`load` attaches the guide trained beside the model; without its file, the error names
    the command that trains it; the guided unconditional sample differs from the model's own."""
    guide = pretrained.Recipe(lambda: models.DDPM(net=UNet(channels=(8, 8, 8))), "mnist",
                              epochs=1)
    monkeypatch.setitem(pretrained.RECIPES, "diffusion-mnist", pretrained.Recipe(
        lambda: models.DDPM(net=UNet(channels=(8, 16, 16))), "mnist", epochs=1, guide=guide))
    monkeypatch.setitem(pretrained.GUIDES, "diffusion-mnist-guide", guide)
    pretrained.train("diffusion-mnist", "cpu", runs=shop / "runs", progress=False)
    with pytest.raises(FileNotFoundError, match="train diffusion-mnist-guide"):
        pretrained.load("diffusion-mnist")
    pretrained.train("diffusion-mnist-guide", "cpu", runs=shop / "runs", progress=False)
    assert pretrained.available() == ["diffusion-mnist"]  # a guide is part of its model
    model = pretrained.load("diffusion-mnist")
    shipped = pretrained.load("diffusion-mnist-guide").ema
    assert all(torch.equal(b, dict(shipped.named_buffers())[k])
               for k, b in model.guide.named_buffers())
    guided, alone = model.sample(4, seed=0, steps=5), model.sample(4, seed=0, steps=5, guidance=1)
    assert (guided - alone).abs().max() > 1e-3


def test_unknown_and_missing_models_say_what_to_do(shop):
    with pytest.raises(ValueError, match="unknown model 'gan-cifar'.*'dcgan-mnist'"):
        pretrained.load("gan-cifar")
    with pytest.raises(FileNotFoundError, match="python -m gentut.pretrained train vae-mnist"):
        pretrained.load("vae-mnist")


def test_every_recipe_builds_its_model():
    for name, recipe in pretrained.RECIPES.items():
        model = recipe.family()
        assert isinstance(model, models.Trainable), name
        assert recipe.dataset in ("mnist", "fashion")
    assert pretrained.RECIPES["vae20-mnist"].family().latent_dim == 20
    steps, marks = pretrained.steps_of(pretrained.RECIPES["vae-mnist"], 600)
    assert steps == 24000 and marks == (1, 600, 6000, 12000, 24000)


def test_the_long_stylegans_see_as_many_images_as_the_dcgans():
    def images(name: str, train_size: int = 60_000) -> int:
        batch = pretrained.RECIPES[name].family().batch_size
        return pretrained.steps_of(pretrained.RECIPES[name], train_size // batch)[0] * batch

    for dataset in ("mnist", "fashion"):
        dcgan, short = images(f"dcgan-{dataset}"), images(f"stylegan-{dataset}")
        assert abs(images(f"stylegan60-{dataset}") / dcgan - 1) < 0.005 < abs(short / dcgan - 1)
        assert (pretrained.RECIPES[f"stylegan60-{dataset}"].seed
                == pretrained.RECIPES[f"stylegan-{dataset}"].seed)  # the budget alone differs


# The shipped weights: 100 MB for the models, and 4 MB more for the four diffusion and
# flow-matching guides (3.2 MB in float32), which halve those models' FIDs on Fashion-MNIST
# (book/making/diffusion.md)
MODELS_BUDGET, GUIDES_BUDGET = 100e6, 4e6


def test_shipped_weights_fit_the_budget_and_sample_images():
    """Each shipped file under 50 MB, the models' under 100 MB together and the guides'
    under 4 MB; each model samples (n,1,28,28) in [0,1]."""
    sizes = {file.stem: file.stat().st_size for file in pretrained.WEIGHTS.glob("*.pt")}
    assert sizes, "no shipped weights found"
    guides = sum(size for name, size in sizes.items() if name in pretrained.GUIDES)
    assert max(sizes.values()) < 50e6 and sum(sizes.values()) - guides < MODELS_BUDGET, sizes
    assert guides < GUIDES_BUDGET, sizes
    for name in pretrained.available():
        model = pretrained.load(name)
        if hasattr(model, "sample"):
            x = model.sample(4, seed=0)
            assert x.shape == (4, 1, 28, 28) and 0 <= x.min() and x.max() <= 1, name


def test_an_autoencoder_is_rounded_only_if_its_reconstructions_barely_move(monkeypatch):
    torch.manual_seed(0)
    model, probe = models.Autoencoder().eval(), torch.rand(8, 1, 28, 28)
    assert pretrained.compact(model, model.state_dict(), probe)[1] == "float16"
    assert pretrained.compact(model, model.state_dict())[1] == "float32"  # nothing to compare
    classifier = models.Classifier().eval()  # the metrics' instrument stays exact
    assert pretrained.compact(classifier, classifier.state_dict(), probe)[1] == "float32"
    monkeypatch.setattr(pretrained, "FP16_TOLERANCE", -1.0)
    assert pretrained.compact(model, model.state_dict(), probe)[1] == "float32"


def test_a_rejected_float16_trial_leaves_the_float32_weights_untouched(monkeypatch):
    monkeypatch.setattr(pretrained, "FP16_TOLERANCE", -1.0)  # reject float16 whatever it does
    torch.manual_seed(0)
    model = models.GAN().eval()
    state = model.state_dict()  # on the CPU: shares storage with the parameters
    original = {k: v.clone() for k, v in state.items()}
    weights, dtype = pretrained.compact(model, state)
    assert dtype == "float32"
    for k, v in original.items():
        assert torch.equal(weights[k], v) and torch.equal(model.state_dict()[k], v), k
