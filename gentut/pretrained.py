"""The course's trained models: what was trained, how, and the weights that ship with it.

`available()` lists the shipped names, `load(name)` returns a model ready to sample, and
`history(name)` the training curves and snapshots recorded while it trained.
`python -m gentut.pretrained train NAME` retrains a model from scratch with its recipe,
resuming from its checkpoint after an interruption, and writes the file that ships. A
diffusion or flow-matching model comes with a guide, `NAME-guide`: a smaller network of its
family trained briefly, which `load(NAME)` attaches for autoguidance; `train NAME` trains both.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from . import data, models
from .data import cache_dir
from .hardware import device as pick_device
from .hardware import fast_bf16
from .models.base import Generative, Trainable
from .models.unet import UNet
from .train import History, fit, load_checkpoint, save_atomic

WEIGHTS = Path(__file__).parent / "weights"
FP16_TOLERANCE = 4 / 255  # float16 weights ship only if no pixel moves by 4 gray levels
GUIDE = "-guide"  # a model's guide ships as NAME-guide
# the guides' U-Net: half the width of the models' (32, 64, 64), a quarter of the parameters;
# (8, 16, 16) guided worse (book/making/diffusion.md)
GUIDE_CHANNELS = (16, 32, 32)


@dataclass(frozen=True)
class Recipe:
    """How one shipped model is trained: family, data set, length, snapshots, seed."""

    family: Callable[[], Trainable]
    dataset: str
    epochs: int
    snapshots: tuple[int, ...] = ()
    snapshot_epochs: tuple[int, ...] = ()
    seed: int = 0
    bf16: bool = False  # bfloat16 autocast, where the device runs it in hardware
    guide: Recipe | None = None  # the bad version of itself that guides its samples


@functools.cache  # one function per family: its guides share a network (`cost.group`)
def guide_family(family: Callable[[], Trainable]) -> Callable[[], Trainable]:
    """`family` with the guides' smaller U-Net."""
    def build() -> Trainable:
        return family(net=UNet(GUIDE_CHANNELS))
    return build


def guided(family: Callable[[], Trainable], dataset: str, **kwargs) -> Recipe:
    """A diffusion or flow-matching recipe and its guide: the smaller U-Net of the same
    family, trained from the same seed on the same data for 6 epochs (2,808 iterations)
    where the model trains 40 (Karras et al.'s guide is smaller and trained shorter)."""
    guide = Recipe(guide_family(family), dataset, epochs=6, bf16=True)
    return Recipe(family, dataset, epochs=40, bf16=True, guide=guide, **kwargs)


RECIPES: dict[str, Recipe] = {
    "classifier-mnist": Recipe(models.Classifier, "mnist", epochs=8),
    "classifier-fashion": Recipe(models.Classifier, "fashion", epochs=20),
    "ae-mnist": Recipe(models.Autoencoder, "mnist", epochs=40),
    "vae-mnist": Recipe(models.VAE, "mnist", epochs=40, snapshots=(1,),
                        snapshot_epochs=(1, 10, 20, 40)),  # Chang, Figure 2
    "vae20-mnist": Recipe(functools.partial(models.VAE, latent_dim=20), "mnist", epochs=100,
                          snapshot_epochs=(1, 10, 100)),
    "gan-mnist": Recipe(models.GAN, "mnist", epochs=100, snapshots=(1, 100, 200, 400, 800),
                        snapshot_epochs=(10, 50, 100)),  # Chang, Figure 1
    # bf16 steps the DCGAN 1.3x faster on a 2-core AVX-512 CPU (0.098 s against 0.13 s),
    # 50 minutes for 60 epochs there; the shipped two trained on an H200 (190-195 s each,
    # four runs side by side). Without BatchNorm in D, each of seven seeds ended with too
    # few 6s (2.7-3.8%); with it, seeds 0-2 draw every digit at least 5.68% (book/making/dcgan.md)
    "dcgan-mnist": Recipe(models.DCGAN, "mnist", epochs=60, bf16=True,
                          snapshots=(1, 100, 500, 1500),  # Chang, Figure 3
                          snapshot_epochs=(10, 30, 60)),
    "dcgan-fashion": Recipe(models.DCGAN, "fashion", epochs=60, bf16=True,
                            snapshots=(1, 100, 500, 1500), snapshot_epochs=(10, 30, 60)),
    # 40,000 iterations of 128; bf16 makes a 2-core AVX-512 CPU step 1.6x faster (0.19 s).
    # Whether the categorical code splits all ten digits depends on the seed. The shipped
    # MNIST model is seed 7, trained on an H200 (485 s): seeds 0 and 1 ran in full and merged
    # a pair of digits (87% and 90% code accuracy); seeds 2-16 were screened on 10,000
    # training images at 4,000 iterations, and the best of them ran on (see chapter 4)
    "infogan-mnist": Recipe(models.InfoGAN, "mnist", epochs=86, bf16=True, seed=7,
                            snapshots=(500, 5000, 10000, 40000)),  # Chang, Figure 4
    "infogan-fashion": Recipe(models.InfoGAN, "fashion", epochs=86, bf16=True,
                              snapshots=(500, 5000, 10000, 40000)),
    # 20 epochs of 937 batches of 64: 1.20 million images, a third of the DCGANs' 60 epochs of
    # 128 (stylegan60 below is the retrain at their budget); both trained on the 2-core CPU
    # in 1.66-1.75 h (the histories' info); see book/making/stylegan.md
    "stylegan-mnist": Recipe(models.StyleGAN, "mnist", epochs=20, bf16=True,
                             snapshots=(1, 500, 2000, 5000), snapshot_epochs=(10, 20)),
    # seed 1 (100 min on the 2-core CPU, shared with other jobs): seed 0 drew too few
    # sandals (2.7%; 2.6% after 30 epochs; not shipped), seed 1 draws 6.5%
    "stylegan-fashion": Recipe(models.StyleGAN, "fashion", epochs=20, bf16=True, seed=1,
                               snapshots=(1, 500, 2000, 5000), snapshot_epochs=(10, 20)),
    # the same two at the DCGANs' budget: 60 epochs of 64 (56,220 iterations) are 3.6 million
    # images, as many as 60 epochs of 128; 3.8 hours each on the 2-core CPU, side by side on
    # one thread each (the histories' info); the Fashion-MNIST one stays float32 (compact)
    "stylegan60-mnist": Recipe(models.StyleGAN, "mnist", epochs=60, bf16=True,
                               snapshots=(1, 500, 2000, 5000), snapshot_epochs=(10, 20, 60)),
    "stylegan60-fashion": Recipe(models.StyleGAN, "fashion", epochs=60, bf16=True, seed=1,
                                 snapshots=(1, 500, 2000, 5000), snapshot_epochs=(10, 20, 60)),
    # 14 epochs of 937 batches of 64 (61 minutes here: 8 epochs, then 6 more resumed from
    # the checkpoint): bf16 steps the flow 1.8x faster on a 2-core AVX-512 CPU (0.26 s
    # against 0.47 s); its likelihood is scored in float32
    "flow-mnist": Recipe(models.RealNVP, "mnist", epochs=14, bf16=True,
                         snapshot_epochs=(1, 4, 8, 14)),
    # 40 epochs of 468 batches of 128 (18,720 iterations, 2.4 million images; the DCGANs'
    # 60 epochs of 128 are 3.6 million): about 0.35 s per iteration on a 2-core AVX-512 CPU
    # under bf16, under 2 hours a model; the same U-Net and budget for both objectives
    "diffusion-mnist": guided(models.DDPM, "mnist", snapshots=(1, 500, 2000, 5000),
                              snapshot_epochs=(10, 20, 40)),
    "diffusion-fashion": guided(models.DDPM, "fashion", snapshots=(1, 500, 2000, 5000),
                                snapshot_epochs=(10, 20, 40)),
    "flowmatch-mnist": guided(models.FlowMatching, "mnist", snapshots=(1, 500, 2000, 5000),
                              snapshot_epochs=(10, 20, 40)),
    "flowmatch-fashion": guided(models.FlowMatching, "fashion", snapshots=(1, 500, 2000, 5000),
                                snapshot_epochs=(10, 20, 40)),
}
GUIDES = {f"{name}{GUIDE}": r.guide for name, r in RECIPES.items() if r.guide is not None}


def recipe_of(name: str) -> Recipe:
    """The recipe of `name` (a model or a model's guide), or an error listing the models."""
    if name in GUIDES:
        return GUIDES[name]
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}: choose one of {sorted(RECIPES)}")
    return RECIPES[name]


def path(name: str) -> Path:
    """The shipped file of `name`."""
    recipe_of(name)
    return WEIGHTS / f"{name}.pt"


def available() -> list[str]:
    """The names whose trained weights ship with this copy of gentut."""
    return sorted(name for name in RECIPES if path(name).exists())


@functools.cache
def _read(name: str) -> dict:
    file = path(name)
    if not file.exists():
        raise FileNotFoundError(
            f"{name} has no shipped weights in {WEIGHTS}: train them with "
            f"`python -m gentut.pretrained train {name}` (shipped: {available() or 'none'})")
    return load_checkpoint(file)


def load(name: str, device: str | torch.device = "cpu") -> Trainable:
    """The trained model `name`, in eval mode on `device`, with its guide where it has one."""
    state = _read(name)
    recipe = recipe_of(name)
    model = recipe.family()
    model.load_state_dict(state["model"])  # float16 weights are cast back to float32 here
    model = model.to(pick_device(device)).eval()
    if recipe.guide is not None:
        model.attach_guide(load(f"{name}{GUIDE}", device))
    return model


def history(name: str) -> History:
    """The recorded training history of `name`: loss curves, snapshots and run facts."""
    return History.from_state_dict(_read(name)["history"])


def steps_of(recipe: Recipe, steps_per_epoch: int) -> tuple[int, tuple[int, ...]]:
    """Total iterations and snapshot iterations of a recipe."""
    marks = set(recipe.snapshots) | {e * steps_per_epoch for e in recipe.snapshot_epochs}
    return recipe.epochs * steps_per_epoch, tuple(sorted(marks))


def compact(model: Trainable, state: dict[str, torch.Tensor],
            probe: torch.Tensor | None = None) -> tuple[dict, str]:
    """The state dict in float16 when the model's outputs barely move, else as it is.

    The outputs are a generator's 64 seeded samples, or an autoencoder's reconstructions of
    the images `probe`; the evaluation classifier, the metrics' instrument, stays float32.
    `state` may share storage with the model's parameters (a CPU state_dict does), so it is
    copied before the float16 trial overwrites them, and the model gets its weights back.
    """
    if isinstance(model, Generative):
        outputs = functools.partial(model.sample, 64, seed=0)
    elif isinstance(model, models.Autoencoder) and probe is not None:
        outputs = functools.partial(model.reconstruct, probe)
    else:
        return state, "float32"
    state = {k: v.clone() for k, v in state.items()}
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with torch.no_grad():
        reference = outputs()
        model.load_state_dict(half)
        error = (outputs() - reference).abs().max().item()
    model.load_state_dict(state)
    return (half, "float16") if error < FP16_TOLERANCE else (state, "float32")


def share_average(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with each network weight replaced by its moving average (`net.X` by `ema.X`).

    A diffusion or flow-matching model samples with the average alone, and training resumes
    from the run's checkpoint, not from the shipped file; both names then hold one tensor,
    which torch.save writes once: the shipped file is half the size, and loading fills both.
    A state without an average comes back as it is."""
    return {k: state.get(f"ema.{k[4:]}", v) if k.startswith("net.") else v
            for k, v in state.items()}


def run_recipe(recipe: Recipe, device: str | torch.device = "auto", root: str | None = None,
               limit: int | None = None, smoke_steps: int | None = None,
               checkpoint: Path | None = None,
               progress: bool = True) -> tuple[Trainable, History]:
    """Train a fresh model as `recipe` says; what both shipping and the chapters run."""
    dev = pick_device(device)
    torch.manual_seed(recipe.seed)
    model = recipe.family()
    batches = data.Batches(data.load(recipe.dataset, root=root), model.batch_size,
                           value_range=model.value_range, device=dev, seed=recipe.seed,
                           limit=limit)
    steps, marks = steps_of(recipe, len(batches))
    if smoke_steps:
        steps, marks = smoke_steps, (1, smoke_steps)
    h = fit(model, batches, steps, checkpoint=checkpoint, every=1000, resume=True,
            snapshots=marks, seed=recipe.seed, bf16=recipe.bf16 and fast_bf16(dev),
            progress=progress)
    return model, h


def train(name: str, device: str | torch.device = "auto", runs: Path | None = None,
          root: str | None = None, progress: bool = True) -> Path:
    """Train `name` from its recipe (resuming its checkpoint), then write its shipped file."""
    recipe = recipe_of(name)
    runs = Path(runs or cache_dir() / "runs")
    model, h = run_recipe(recipe, device, root, checkpoint=runs / f"{name}.pt",
                          progress=progress)
    model = model.cpu().eval()
    test = data.load(recipe.dataset, "test", root=root)
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    weights, dtype = compact(model, state, probe=test.images[:64].float() / 255)
    weights = share_average(weights)
    if isinstance(model, models.Classifier):
        h.info["test_accuracy"] = model.accuracy(test.images.float() / 255, test.labels)
    h.info.update(name=name, dataset=recipe.dataset, epochs=recipe.epochs, dtype=dtype,
                  finished=time.strftime("%Y-%m-%d %H:%M"),
                  parameters=sum(p.numel() for p in model.parameters()),
                  torch=str(torch.__version__))
    out = path(name)
    save_atomic({
        "model": weights,
        "history": h.state_dict(),
    }, out)
    _read.cache_clear()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gentut.pretrained",
                                     description="Retrain the course's shipped models.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train models from scratch (resuming checkpoints)")
    t.add_argument("names", nargs="+", choices=sorted(RECIPES | GUIDES), metavar="NAME",
                   help="a model (and its guide, where it has one), or a model's guide alone")
    t.add_argument("--device", default="auto")
    t.add_argument("--runs", type=Path, default=None, help="checkpoint folder")
    t.add_argument("--data", default=None, help="data root (default: GENTUT_DATA, cache)")
    sub.add_parser("list", help="list the models and whether their weights ship")
    args = parser.parse_args()
    if args.command == "list":
        for name in RECIPES | GUIDES:
            print(f"{name:24s} {'shipped' if path(name).exists() else '-'}")
        return
    for name in args.names:
        guide = [f"{name}{GUIDE}"] if f"{name}{GUIDE}" in GUIDES else []
        for part in [name, *guide]:
            print(f"{part}: wrote {train(part, args.device, args.runs, args.data)}", flush=True)


if __name__ == "__main__":
    main()
