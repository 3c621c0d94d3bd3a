"""Every figure the chapters draw: image grids, training curves, snapshots over training."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

from .train import History

# Which recorded terms share a panel, and what its axis measures: terms of very different
# size (the VAE's KL beside its loss) or kind (probabilities, penalties) get their own axes.
PANELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("negative ELBO and reconstruction", "nats per image", ("loss", "recon")),
    ("KL term", "nats per image", ("kl",)),
    ("GAN losses", "loss (nats)", ("loss_D", "loss_G")),
    ("code losses", "loss (nats)", ("loss_cat", "loss_cont")),
    ("R1 gradient penalty", "penalty", ("R1",)),
    ("discriminator scores", "mean probability", ("D(x)", "D(G(z))")),
    ("training likelihood", "bits per dimension", ("bits_per_dim",)),
    ("training accuracy", "fraction correct", ("accuracy",)),
    ("denoising regression", "mean squared error per pixel", ("loss_simple", "loss_cfm")),
)


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


def panels_of(names: list[str]) -> list[tuple[str, str, list[str]]]:
    """The panels that `names` fall into, in PANELS order; an unknown term gets its own."""
    known = [(title, ylabel, [n for n in names if n in group]) for title, ylabel, group in PANELS]
    grouped = {n for _, _, group in PANELS for n in group}
    return [p for p in known if p[2]] + [(n, n, [n]) for n in names if n not in grouped]


def history(h: History, window: int = 50, title: str | None = None) -> plt.Figure:
    """Every recorded term against the iteration, one panel per kind of term (see PANELS)."""
    panels = panels_of(list(h.losses))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (name, ylabel, terms) in zip(axes[0], panels, strict=True):
        for term in terms:
            values = h.losses[term]
            y = smooth(values, window).numpy()
            ax.plot(range(len(values) - len(y) + 1, len(values) + 1), y, label=term)
        if ylabel == "mean probability":
            ax.set_ylim(0, 1)
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle((title + "; " if title else "")
                 + (f"running means over {window} iterations" if window > 1 else "per iteration"))
    fig.tight_layout()
    return fig


def snapshots(h: History, count: int = 16, steps: list[int] | None = None,
              in_epochs: bool = False, title: str | None = None) -> plt.Figure:
    """The fixed noise batch decoded at each snapshot iteration (or epoch), left to right."""
    steps = steps or sorted(h.snapshots)
    per_epoch = int(h.info.get("steps_per_epoch", 1))
    fig, axes = plt.subplots(1, len(steps), figsize=(2.6 * len(steps), 2.9), squeeze=False)
    for ax, step in zip(axes[0], steps, strict=True):
        label = f"epoch {step // per_epoch}" if in_epochs else f"iteration {step}"
        grid(h.snapshots[step][:count], nrow=4, ax=ax, title=label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def latent_scatter(z: torch.Tensor, labels: torch.Tensor, classes: list[str],
                   title: str = "latent codes of the test set") -> plt.Figure:
    """2-D latent codes as points coloured by class."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap("tab10")
    for k, name in enumerate(classes):
        pts = z[labels == k].cpu().numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, color=cmap(k), label=name)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title)
    ax.legend(markerscale=6, loc="center left", bbox_to_anchor=(1, 0.5), title="class")
    fig.tight_layout()
    return fig


def manifold(decode, extent: float = 3.0, n: int = 15,
             title: str = "decoded latent grid") -> plt.Figure:
    """Decode a regular n x n grid of 2-D codes over [-extent, extent]^2 into one image."""
    ticks = torch.linspace(-extent, extent, n)
    z2, z1 = torch.meshgrid(ticks.flip(0), ticks, indexing="ij")  # z2 grows upwards
    with torch.no_grad():
        images = decode(torch.stack([z1.flatten(), z2.flatten()], 1)).cpu()
    picture = make_grid(images, nrow=n, padding=0)[0].numpy()
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    ax.imshow(picture, cmap="gray", vmin=0, vmax=1,
              extent=(-extent, extent, -extent, extent))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title)
    return fig


def rows(images: dict[str, torch.Tensor], title: str | None = None,
         columns: list[str] | None = None) -> plt.Figure:
    """Rows of images, one per labelled tensor (N,1,28,28), e.g. originals over results;
    `columns` labels the columns above the first row (e.g. the value a code takes)."""
    n = max(len(v) for v in images.values())
    fig, axes = plt.subplots(len(images), 1, figsize=(0.75 * n, 0.8 * len(images) + 0.5),
                             squeeze=False)
    for ax, (label, batch) in zip(axes[:, 0], images.items(), strict=True):
        grid(batch, nrow=n, ax=ax)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    if columns:
        top = axes[0, 0]
        top.set_xticks([2 + 30 * i + 14 for i in range(len(columns))], columns)
        top.xaxis.tick_top()
        top.tick_params(length=0)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion(matrix: torch.Tensor, rows: list[str], columns: list[str], xlabel: str,
              ylabel: str, title: str | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """A count matrix as a heat map, each row in shares of its total, counts written in."""
    m = matrix.double()
    shares = m / m.sum(1, keepdim=True).clamp(min=1)
    ax = ax or plt.figure(figsize=(6.4, 5.6)).gca()
    ax.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in zip(torch.cartesian_prod(torch.arange(len(rows)),
                                                  torch.arange(len(columns))).tolist(),
                             matrix.flatten().tolist(), strict=True):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if shares[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def code_confusions(q_confusion: torch.Tensor, g_confusion: torch.Tensor,
                    matched: torch.Tensor, classes: list[str], name: str) -> plt.Figure:
    """InfoGAN's categorical code both ways, side by side: Q reading real images (code
    against true class) and G writing with code c (code against the class the evaluation
    classifier sees). Rows are ordered by the class each code is matched to (`matched[k]`
    is code k's class), so a code that works puts its counts on the diagonal."""
    order = torch.as_tensor(matched).argsort()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    for ax, matrix, xlabel, title in (
            (axes[0], q_confusion, "true class of the test image", "Q reading real images"),
            (axes[1], g_confusion, "class the classifier sees", "G writing with code c")):
        confusion(torch.as_tensor(matrix)[order], [f"code {k}" for k in order.tolist()],
                  classes, xlabel, "categorical code", title=f"{name}: {title}", ax=ax)
    fig.tight_layout()
    return fig
