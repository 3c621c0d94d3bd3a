"""Chapter plumbing: train-or-load, the data sets a chapter runs on, run summaries, and
showing the chapter's own code and the course's diagrams."""

from __future__ import annotations

import base64
import dataclasses
import inspect
import textwrap
from html import escape
from pathlib import Path

import torch
from IPython.display import HTML, Code

from . import pretrained
from .models.base import Trainable
from .train import History

DIAGRAMS = Path(__file__).parent / "diagrams"
BOTH = ("mnist", "fashion")
SMOKE_IMAGES, SMOKE_STEPS = 512, 20  # a real but brief run, for CI


def datasets_of(choice: str) -> list[str]:
    """The data sets a chapter's DATASET parameter names: "mnist", "fashion" or "both"."""
    if choice == "both":
        return list(BOTH)
    if choice not in BOTH:
        raise ValueError(f"DATASET = {choice!r}: choose 'mnist', 'fashion' or 'both'")
    return [choice]


def train_or_load(name: str, *, train: bool = False, epochs: int | None = None,
                  device: str | torch.device = "auto", smoke: bool = False,
                  dataset: str | None = None) -> tuple[Trainable, History]:
    """A chapter's model and history: the shipped ones, or trained here when `train` is set.

    Training follows the recipe of `name`, for `epochs` (default: the recipe's) on `dataset`
    (default: the recipe's), on `device`; `smoke` trains on a few hundred real images for a
    few steps instead (what CI runs).
    """
    recipe = pretrained.recipe_of(name)
    dataset = dataset or recipe.dataset
    if not train:
        if dataset != recipe.dataset:
            raise ValueError(f"{name} ships trained on {recipe.dataset}, not {dataset}: "
                             "set TRAIN = True to train it on that data set")
        return pretrained.load(name, device), pretrained.history(name)
    recipe = dataclasses.replace(recipe, epochs=epochs or recipe.epochs, dataset=dataset)
    model, h = pretrained.run_recipe(recipe, device, limit=SMOKE_IMAGES if smoke else None,
                                     smoke_steps=SMOKE_STEPS if smoke else None)
    h.info.update(name=name, dataset=recipe.dataset)
    print(summary(f"trained {name} here", h))
    return model.eval(), h


def summary(label: str, history: History) -> str:
    """One line on how a run went: iterations, batch, device, speed and total time."""
    info = history.info
    bf16 = " with bf16" if info.get("bf16") else ""
    return (f"{label}: {history.steps:,} iterations of {info['batch_size']} on "
            f"{info['device']}{bf16}, {info['seconds_per_epoch']:.1f} s per epoch "
            f"({info['wall_time_s'] / 60:.0f} min in all)")


def show(obj) -> Code:
    """The source of a function or class, highlighted: what the chapter shows is what runs."""
    return Code(textwrap.dedent(inspect.getsource(obj)), language="python")


def diagram(name: str, alt: str) -> HTML:
    """The course's diagram `name` (gentut/diagrams/NAME.svg) as an image with alt text.

    The SVG ships inside the package and is embedded in the cell's output, so it shows in
    the book, in Jupyter and in Colab alike (a relative link into book/ resolves in none
    but the book). `python book/diagrams/draw.py` redraws every diagram.
    """
    file = DIAGRAMS / f"{name}.svg"
    if not file.is_file():
        known = sorted(p.stem for p in DIAGRAMS.glob("*.svg"))
        raise FileNotFoundError(f"no diagram {name!r} in {DIAGRAMS}: choose one of {known}, "
                                "or draw it with `python book/diagrams/draw.py`")
    data = base64.b64encode(file.read_bytes()).decode("ascii")
    return HTML(f'<img src="data:image/svg+xml;base64,{data}" alt="{escape(alt)}" '
                'style="max-width: 100%; height: auto;">')
