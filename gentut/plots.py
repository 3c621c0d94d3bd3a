"""Every figure the chapters draw: image grids, training curves, snapshots over training."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

from .train import History

SCORES = ("D(x)", "D(G(z))")  # probabilities, drawn on their own axis


def grid(images: torch.Tensor, nrow: int = 8, ax: plt.Axes | None = None,
         title: str | None = None) -> plt.Axes:
    """Draw images (N,1,28,28), float in [0,1] or uint8, as one grid."""
    if images.dtype == torch.uint8:
        images = images.float() / 255
    picture = make_grid(images.detach().cpu(), nrow=nrow, padding=2, pad_value=1.0)
    ax = ax or plt.figure(figsize=(nrow * 0.6, (len(images) + nrow - 1) // nrow * 0.6)).gca()
    ax.imshow(picture[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def smooth(values: list[float], window: int) -> torch.Tensor:
    """Running mean over `window` iterations, so that noisy per-step losses read as curves."""
    x = torch.tensor(values, dtype=torch.float64)
    if window <= 1 or len(x) < window:
        return x
    c = torch.cat([torch.zeros(1, dtype=x.dtype), x.cumsum(0)])
    return (c[window:] - c[:-window]) / window


def history(h: History, window: int = 50, title: str | None = None) -> plt.Figure:
    """Every loss term against the iteration; for GANs, D's scores on a second panel."""
    losses = {k: v for k, v in h.losses.items() if k not in SCORES}
    scores = {k: v for k, v in h.losses.items() if k in SCORES}
    panels = 1 + bool(scores)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 3.8), squeeze=False)
    for ax, series, ylabel in zip(axes[0], (losses, scores), ("loss", "mean probability"),
                                  strict=False):
        for name, values in series.items():
            y = smooth(values, window).numpy()
            ax.plot(range(len(values) - len(y) + 1, len(values) + 1), y, label=name)
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.legend()
        ax.grid(alpha=0.3)
    if scores:
        axes[0][1].set_ylim(0, 1)
        axes[0][1].set_title("discriminator scores")
    axes[0][0].set_title("losses" + (f" (running mean of {window})" if window > 1 else ""))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def snapshots(h: History, nrow: int = 8, count: int = 16) -> plt.Figure:
    """The fixed noise batch decoded at each snapshot iteration, left to right."""
    steps = sorted(h.snapshots)
    fig, axes = plt.subplots(1, len(steps), figsize=(2.6 * len(steps), 2.9), squeeze=False)
    for ax, step in zip(axes[0], steps, strict=True):
        grid(h.snapshots[step][:count], nrow=min(nrow, 4), ax=ax, title=f"iteration {step}")
    fig.tight_layout()
    return fig
