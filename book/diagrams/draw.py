"""Draw the course's model diagrams as SVG files into gentut/diagrams/.

    python book/diagrams/draw.py               # redraw every diagram
    python book/diagrams/draw.py vae gan       # only these
    python book/diagrams/draw.py --out DIR     # write into DIR instead
    python book/diagrams/draw.py --list        # the names it draws

Each diagram is one function below, drawn from the shapes in gentut/models/ with the
symbols of book/notation.md. The output is deterministic (hash salt, no date, text as paths),
so redrawing an unchanged diagram gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Polygon  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from gentut.models.diffusion import GUIDANCE, P_UNCOND  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "gentut" / "diagrams"
WIDTH = 9.5  # inches: about 700 px in the book, so 11 pt text stays about 11 px tall

matplotlib.rcParams.update({
    "svg.hashsalt": "gentut",    # fixed ids: the same drawing gives the same bytes
    "svg.fonttype": "path",      # text as paths: no font needed where it is shown
    "font.family": "DejaVu Sans",
    "font.size": 12,
    "mathtext.fontset": "dejavusans",
    "path.simplify": True,
})

INK = "#1f2328"    # text and data arrows
MUTED = "#57606a"  # tensor shapes and notes
# fill and edge per kind of box; a network's losses and updates take its colour
COLORS: dict[str, tuple[str, str]] = {
    "enc": ("#dbe9f7", "#2f6db5"),    # encoders
    "dec": ("#dcf0dc", "#2e7d32"),    # decoders
    "G": ("#fde6cf", "#c2620a"),      # generators
    "D": ("#e9def5", "#6a3d9a"),      # discriminators
    "Q": ("#d6f0ee", "#00796b"),      # InfoGAN's Q, the flow's s and b networks
    "loss": ("#fbe3e3", "#b42318"),   # losses
    "op": ("#eef0f2", "#57606a"),     # fixed operations: sampling, reshapes, squeeze
    "group": ("#f6f8fa", "#afb8c1"),  # a frame around a group of boxes
    "text": ("none", "none"),         # a variable: only its symbol
}


@dataclass(frozen=True)
class Box:
    """A drawn box: its centre and size, with the points arrows attach to."""

    x: float
    y: float
    w: float
    h: float

    @property
    def left(self) -> tuple[float, float]:
        return (self.x - self.w / 2, self.y)

    @property
    def right(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y)

    @property
    def top(self) -> tuple[float, float]:
        return (self.x, self.y + self.h / 2)

    @property
    def bottom(self) -> tuple[float, float]:
        return (self.x, self.y - self.h / 2)

    def at(self, side: str, t: float) -> tuple[float, float]:
        """A point on `side` ('left', 'right', 'top', 'bottom'), t in [-1, 1] along it."""
        if side in ("left", "right"):
            x = self.x + (self.w / 2 if side == "right" else -self.w / 2)
            return (x, self.y + t * self.h / 2)
        y = self.y + (self.h / 2 if side == "top" else -self.h / 2)
        return (self.x + t * self.w / 2, y)


def figure(height: float, title: str, width: float = WIDTH) -> tuple[Figure, Axes]:
    """A white figure on a rounded card, with axes in inches (origin bottom left) and a title."""
    fig = plt.figure(figsize=(width, height), facecolor="white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    ax.add_patch(FancyBboxPatch((0.06, 0.06), width - 0.12, height - 0.12,
                                boxstyle="round,pad=0,rounding_size=0.18",
                                facecolor="white", edgecolor="#d0d7de", lw=1.2, zorder=-10))
    ax.text(0.3, height - 0.32, title, ha="left", va="center", fontsize=15,
            fontweight="bold", color=INK)
    return fig, ax


def box(ax: Axes, x: float, y: float, w: float, h: float, text: str = "", kind: str = "op",
        size: float = 12, taper: float = 0.0, bold: bool = False) -> Box:
    """A box centred at (x, y) with centred text; taper > 0 narrows its right side (a funnel)."""
    face, edge = COLORS[kind]
    if taper:
        shrink_l, shrink_r = max(-taper, 0) * h / 2, max(taper, 0) * h / 2
        corners = [(x - w / 2, y - h / 2 + shrink_l), (x + w / 2, y - h / 2 + shrink_r),
                   (x + w / 2, y + h / 2 - shrink_r), (x - w / 2, y + h / 2 - shrink_l)]
        ax.add_patch(Polygon(corners, closed=True, facecolor=face, edgecolor=edge, lw=1.4,
                             joinstyle="round"))
    elif kind != "text":
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                    boxstyle="round,pad=0,rounding_size=0.08",
                                    facecolor=face, edgecolor=edge,
                                    lw=1.0 if kind == "group" else 1.4,
                                    zorder=0 if kind == "group" else 1))
    if text:
        ax.text(x, y, text, ha="center", va="center", fontsize=size, color=INK,
                fontweight="bold" if bold else "normal", linespacing=1.35, zorder=3)
    return Box(x, y, w, h)


def var(ax: Axes, x: float, y: float, text: str, w: float = 0.5, h: float = 0.4,
        size: float = 16) -> Box:
    """A variable: its symbol alone, in a box that arrows attach to but no one sees."""
    return box(ax, x, y, w, h, text, kind="text", size=size)


def label(ax: Axes, x: float, y: float, text: str, size: float = 12, color: str = MUTED,
          ha: str = "center", va: str = "center", **kw) -> None:
    """A piece of text: by default a muted note, such as a tensor shape."""
    ax.text(x, y, text, ha=ha, va=va, fontsize=size, color=color, linespacing=1.35,
            zorder=4, **kw)


def arrow(ax: Axes, *points: tuple[float, float], text: str = "", where: str = "above",
          color: str = INK, dashed: bool = False, lw: float = 1.4, rad: float = 0.0,
          text_color: str = MUTED, size: float = 12, at: float = 0.5) -> None:
    """An arrow through `points` (straight segments, or one arc bent by `rad`), labelled.

    The label sits `where` ('above', 'below', 'left', 'right') the point a fraction `at`
    along the first segment: that is where tensor shapes go.
    """
    style = dict(arrowstyle="-|>", mutation_scale=13, color=color, lw=lw, zorder=2,
                 linestyle=(0, (4, 3)) if dashed else "-", shrinkA=0, shrinkB=0)
    if len(points) == 2:
        patch = FancyArrowPatch(points[0], points[1], connectionstyle=f"arc3,rad={rad}",
                                **style)
    else:
        path = MplPath(points, [MplPath.MOVETO] + [MplPath.LINETO] * (len(points) - 1))
        patch = FancyArrowPatch(path=path, joinstyle="miter", **style)
    ax.add_patch(patch)
    if text:
        (x0, y0), (x1, y1) = points[0], points[1]
        x, y = x0 + at * (x1 - x0), y0 + at * (y1 - y0)
        dx, dy, ha, va = {"above": (0, 0.07, "center", "bottom"),
                          "below": (0, -0.07, "center", "top"),
                          "left": (-0.08, 0, "right", "center"),
                          "right": (0.08, 0, "left", "center")}[where]
        label(ax, x + dx, y + dy, text, size=size, color=text_color, ha=ha, va=va)


def line(ax: Axes, *points: tuple[float, float], color: str = INK, lw: float = 1.4,
         dashed: bool = False) -> None:
    """A plain line through `points`: a bus, or the stem of a fork."""
    xs, ys = zip(*points, strict=True)
    ax.plot(xs, ys, color=color, lw=lw, solid_capstyle="butt", zorder=2,
            linestyle=(0, (4, 3)) if dashed else "-")


def key(ax: Axes, x: float, y: float, text: str, color: str = INK, dashed: bool = False,
        lw: float = 1.4) -> None:
    """A legend entry: a short sample arrow at (x, y) and what it means to its right."""
    arrow(ax, (x, y), (x + 0.45, y), color=color, dashed=dashed, lw=lw)
    label(ax, x + 0.55, y, text, ha="left")


def tensor(ax: Axes, x: float, y: float, side: float, depth: float, text: str,
           kind: str = "G", below: bool = True) -> Box:
    """A feature-map stack drawn as a block: `side` for its pixels, `depth` for its channels."""
    face, edge = COLORS[kind]
    d = depth * 0.6  # oblique offset
    x0, y0 = x - (side + d) / 2, y - (side + d) / 2
    front = [(x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side)]
    top = [(x0, y0 + side), (x0 + side, y0 + side), (x0 + side + d, y0 + side + d),
           (x0 + d, y0 + side + d)]
    right = [(x0 + side, y0), (x0 + side + d, y0 + d), (x0 + side + d, y0 + side + d),
             (x0 + side, y0 + side)]
    for corners, alpha in ((right, 0.7), (top, 0.85), (front, 1.0)):
        ax.add_patch(Polygon(corners, closed=True, facecolor=face, edgecolor=edge, lw=1.2,
                             alpha=alpha, zorder=1))
    h = side + d
    if text:
        label(ax, x, y - h / 2 - 0.08 if below else y + h / 2 + 0.08, text,
              va="top" if below else "bottom", color=INK)
    return Box(x, y, side + d, h)


def save(fig: Figure, name: str, out: Path) -> Path:
    """Write `fig` as OUT/NAME.svg with no date, so that the bytes depend only on the drawing."""
    out.mkdir(parents=True, exist_ok=True)
    file = out / f"{name}.svg"
    fig.savefig(file, format="svg", metadata={"Date": None}, facecolor="white")
    plt.close(fig)
    return file


# --------------------------------------------------------------------------- the diagrams


def autoencoder() -> Figure:
    """x -> enc_phi -> z -> dec_theta -> x-hat, trained on the reconstruction error."""
    fig, ax = figure(3.4, "Autoencoder: a deterministic code through a bottleneck")
    y = 2.05
    x = var(ax, 0.5, y, "$x$")
    enc = box(ax, 2.3, y, 2.0, 1.3, r"encoder $\mathrm{enc}_\phi$" "\n784→512→256→$d_z$"
              "\nReLU between", kind="enc", taper=0.45)
    z = var(ax, 4.75, y, "$z$")
    dec = box(ax, 7.2, y, 2.0, 1.3, r"decoder $\mathrm{dec}_\theta$" "\n$d_z$→256→512→784"
              "\nReLU between", kind="dec", taper=-0.45)
    xh = var(ax, 9.0, y, r"$\hat{x}$")
    arrow(ax, x.right, enc.left, text="784")
    arrow(ax, enc.right, z.left, text="$d_z = 2$")
    arrow(ax, z.right, dec.left, text="$d_z$")
    arrow(ax, dec.right, xh.left, text="784")
    label(ax, 0.5, y - 0.36, "1×28×28")
    label(ax, 9.0, y - 0.36, "sigmoid\nof logits", va="top")
    loss = box(ax, 4.75, 0.7, 5.6, 0.85, kind="loss")
    label(ax, loss.x, loss.y + 0.15, r"reconstruction loss  $\mathcal{L}(x) = -\sum_i"
          r"\,[\,x_i \log \hat{x}_i + (1 - x_i) \log (1 - \hat{x}_i)\,]$", color=INK)
    label(ax, loss.x, loss.y - 0.23, "binary cross-entropy, summed over the 784 pixels")
    arrow(ax, (0.5, y - 0.6), (0.5, loss.y), loss.left, color=MUTED)
    arrow(ax, (9.0, y - 0.8), (9.0, loss.y), loss.right, color=MUTED)
    return fig


def vae() -> Figure:
    """The VAE: q_phi(z|x), the reparameterization with eps as a side input, p_theta(x|z)."""
    fig, ax = figure(4.9, "Variational autoencoder: a Gaussian code, sampled differentiably")
    grad = COLORS["loss"][1]  # the arrows gradients flow back along
    y = 3.15
    x = var(ax, 0.3, y, "$x$")
    enc = box(ax, 1.85, y, 1.7, 1.35, "encoder\n784→512→256\n→$2 d_z$", kind="enc",
              taper=0.4)
    label(ax, enc.x, enc.y + 0.9, r"$q_\phi(z \mid x) = \mathcal{N}(\mu, \mathrm{diag}\,"
          r"\sigma^2)$", color=INK, size=13)
    mu = var(ax, 3.35, y + 0.42, r"$\mu$", w=0.6)
    logvar = var(ax, 3.35, y - 0.42, r"$\log \sigma^2$", w=0.85)
    rep = box(ax, 4.95, y, 1.85, 1.05, r"$z = \mu + \sigma \odot \epsilon$" "\n"
              r"$\sigma = \exp(\log \sigma^2 / 2)$", size=13)
    label(ax, rep.x, rep.y + 0.68, "reparameterization")
    eps = var(ax, rep.x, 1.7, r"$\epsilon \sim \mathcal{N}(0, I)$", w=1.7)
    z = var(ax, 6.35, y, "$z$")
    dec = box(ax, 7.65, y, 1.5, 1.35, "decoder\n$d_z$→256\n→512→784", kind="dec",
              taper=-0.4)
    label(ax, dec.x, dec.y + 0.9, r"$p_\theta(x \mid z)$", color=INK, size=13)
    xh = var(ax, 9.05, y, r"$\hat{x}$")
    label(ax, xh.x - 0.1, 2.15, "784 pixel means", ha="right")

    arrow(ax, x.right, enc.left, text="784")
    arrow(ax, enc.at("right", 0.45), mu.left, color=grad, lw=2)
    arrow(ax, enc.at("right", -0.45), logvar.left, color=grad, lw=2)
    label(ax, mu.x, y, "$d_z$ each")
    arrow(ax, mu.right, rep.at("left", 0.4), color=grad, lw=2)
    arrow(ax, logvar.right, rep.at("left", -0.4), color=grad, lw=2)
    arrow(ax, eps.top, rep.bottom, text="$d_z$", where="right", dashed=True, color=MUTED)
    arrow(ax, rep.right, z.left, color=grad, lw=2)
    arrow(ax, z.right, dec.left, text="$d_z$", color=grad, lw=2)
    arrow(ax, dec.right, xh.left, color=grad, lw=2)

    kl = box(ax, 2.45, 0.95, 2.9, 0.75, r"$\mathrm{KL}(q_\phi(z \mid x) \,\Vert\, p(z))$"
             "\nclosed form, $p(z) = \\mathcal{N}(0, I)$", kind="loss")
    rec = box(ax, 7.75, 0.95, 2.9, 0.75, r"reconstruction $-\log p_\theta(x \mid z)$"
              "\n" r"cross-entropy of $\hat{x}$ and $x$", kind="loss")
    arrow(ax, logvar.bottom, (logvar.x, kl.top[1]), text=r"$\mu, \log \sigma^2$",
          where="right", color=grad, lw=2)
    arrow(ax, xh.bottom, (xh.x, rec.top[1]), at=0.75, color=grad, lw=2)
    label(ax, 5.1, 0.95, "$+$", color=INK, size=16)
    key(ax, 0.35, 0.3, r"the gradients of $\mathcal{L}$ = KL + reconstruction (the negative "
        r"ELBO) flow back along these to $\theta$ and $\phi$", color=grad, lw=2)
    label(ax, 5.9, 1.7, r"sampled: no gradient" "\n" r"flows into $\epsilon$", ha="left")
    return fig


def gan() -> Figure:
    """The GAN's game: G maps noise to images, D tells them from real ones; two losses."""
    fig, ax = figure(5.0, "GAN: a generator and a discriminator in a two-player game")
    g_edge, d_edge = COLORS["G"][1], COLORS["D"][1]
    yg, yd = 3.55, 2.55
    z = var(ax, 0.85, yg, r"$z \sim \mathcal{N}(0, I)$", w=1.5)
    G = box(ax, 2.75, yg, 1.7, 1.0, "generator $G$\n64→256→256\n→784, tanh", kind="G")
    gz = var(ax, 4.3, yg, "$G(z)$", w=0.8)
    x = var(ax, 4.3, 1.75, r"$x \sim p_{\mathrm{data}}$", w=1.3)
    label(ax, gz.x, gz.y + 0.32, "fake")
    label(ax, x.x, x.y - 0.32, "real")
    D = box(ax, 6.3, yd, 1.65, 1.0, "discriminator $D$\n784→256→256\n→1, LeakyReLU",
            kind="D")
    out = var(ax, 8.65, yd, r"$D(\cdot) \in (0, 1)$", w=1.3)
    arrow(ax, z.right, G.left, text="64")
    arrow(ax, G.right, gz.left)
    arrow(ax, gz.right, D.at("left", 0.5), text="1×28×28", where="right", at=0.35)
    arrow(ax, x.right, D.at("left", -0.5), text="1×28×28", where="right", at=0.2)
    arrow(ax, D.right, out.left, text=r"logit $\ell(\cdot)$")
    label(ax, (D.right[0] + out.left[0]) / 2, yd - 0.1, "sigmoid", va="top")

    lg = box(ax, 2.2, 0.8, 3.6, 0.85, kind="G")
    label(ax, lg.x, lg.y + 0.17, r"$G$'s loss, $D$ held fixed:", color=INK)
    label(ax, lg.x, lg.y - 0.18, r"minimize $-\log D(G(z))$  (non-saturating)", color=INK)
    ld = box(ax, 6.95, 0.8, 4.3, 0.85, kind="D")
    label(ax, ld.x, ld.y + 0.17, r"$D$'s loss, $G$ held fixed:", color=INK)
    label(ax, ld.x, ld.y - 0.18, r"maximize $\log D(x) + \log(1 - D(G(z)))$", color=INK)
    arrow(ax, (G.x, lg.top[1]), G.bottom, text=r"updates $\theta_G$", where="left",
          color=g_edge, dashed=True, text_color=g_edge)
    arrow(ax, (D.x, ld.top[1]), D.bottom, text=r"updates $\theta_D$", where="right",
          color=d_edge, dashed=True, text_color=d_edge)
    label(ax, 9.2, 1.55, "one step of each,\nin turn", ha="right")
    return fig


def dcgan() -> Figure:
    """The DCGAN's generator and discriminator, block by block, as in gentut/models/dcgan.py."""
    fig, ax = figure(5.9, "DCGAN: the GAN with convolutional networks")
    yg, yd = 4.0, 1.65
    label(ax, 0.3, 5.15, "generator $G$", ha="left", color=INK, size=13)
    z = box(ax, 0.55, yg, 0.16, 1.0, kind="G")
    label(ax, z.x + 0.1, z.y - 0.62, "$z$, 100", va="top", color=INK)
    g7 = tensor(ax, 2.6, yg, 0.35, 0.5, "128×7×7")
    g14 = tensor(ax, 5.05, yg, 0.7, 0.35, "64×14×14")
    g28 = tensor(ax, 7.55, yg, 1.4, 0.04, "1×28×28")
    gz = var(ax, 8.95, yg, "$G(z)$", w=0.8)
    arrow(ax, (0.7, yg), g7.left, text="Linear 100→6272\nno bias, BN,\nLeakyReLU(0.2)",
          size=11)
    arrow(ax, g7.right, g14.left, text="ConvT 4×4, s2\nBN, LeakyReLU(0.2)", size=11)
    arrow(ax, g14.right, g28.left, text="ConvT 4×4, s2\ntanh", size=11)
    arrow(ax, g28.right, gz.left)

    label(ax, 0.3, 2.75, "discriminator $D$: the mirror", ha="left", color=INK, size=13)
    d28 = tensor(ax, 1.1, yd, 0.85, 0.03, "", kind="D")
    label(ax, d28.x, d28.y - 0.55, "1×28×28\n$x$ or $G(z)$", va="top", color=INK)
    d14 = tensor(ax, 3.55, yd, 0.42, 0.35, "64×14×14", kind="D")
    d7 = tensor(ax, 5.95, yd, 0.21, 0.5, "128×7×7", kind="D")
    logit = var(ax, 8.25, yd, r"$\ell(x)$", w=0.7)
    label(ax, logit.x, logit.y - 0.3, "one logit,\n" r"$D(x) = \mathrm{sigmoid}(\ell(x))$",
          va="top")
    arrow(ax, d28.right, d14.left, text="Conv 4×4, s2\nLeakyReLU(0.2)", size=11)
    arrow(ax, d14.right, d7.left, text="Conv 4×4, s2\nBN, LeakyReLU(0.2)", size=11)
    arrow(ax, d7.right, logit.left, text="flatten 6272\nLinear → 1", size=11)
    label(ax, 0.3, 0.35, "every (transposed) convolution 4×4, stride 2, padding 1; no pooling; "
          "BatchNorm everywhere but on G's output and D's input", ha="left", size=11)
    return fig


def infogan() -> Figure:
    """InfoGAN: G(z, c), a body shared by D's head and Q's head, the GAN and information losses."""
    fig, ax = figure(6.6, "InfoGAN: codes the generator must keep readable")
    q_edge = COLORS["Q"][1]
    yg = 4.3
    zc = var(ax, 0.65, yg, "$(z, c)$", w=0.9)
    label(ax, 0.3, yg - 0.3, "$z$: 62, $\\mathcal{N}(0, I)$\n$c_1$: one-hot of 10\n"
          "$c_2, c_3 \\sim U(-1, 1)$", ha="left", va="top", color=INK, size=11)
    G = box(ax, 2.75, yg, 2.2, 1.3, "generator $G$\n4 transposed convs\n"
            "1×1→7×7→14×14→28×28\nBN, ReLU; sigmoid", kind="G", size=11)
    gz = var(ax, 4.5, yg, "$G(z, c)$", w=0.9)
    x = var(ax, 4.55, 1.95, r"$x \sim p_{\mathrm{data}}$", w=1.2)
    body = box(ax, 6.15, 3.1, 1.5, 1.8, "shared body\n3 convolutions\n14×14→7×7→1×1\n"
               "BN, LeakyReLU", kind="D", size=11)
    dh = box(ax, 8.0, body.at("right", 0.65)[1], 1.25, 0.75, "$D$ head\n1×1 conv → 1",
             kind="D", size=11)
    qh = box(ax, 8.0, body.at("right", -0.65)[1], 1.25, 0.9,
             "$Q(c \\mid x)$\nhead: 1×1\nconv, Linear", kind="Q", size=11)
    arrow(ax, zc.right, G.left, text="74")
    arrow(ax, G.right, gz.left)
    arrow(ax, gz.bottom, body.at("left", 0.55), text="1×28×28", where="left", at=0.6)
    arrow(ax, x.right, body.at("left", -0.55), text="1×28×28", where="right", at=0.15)
    arrow(ax, body.at("right", 0.65), dh.left, text="1024")
    arrow(ax, body.at("right", -0.65), qh.left, text="1024")

    gan = box(ax, 7.1, 5.55, 4.4, 0.95, kind="D")
    label(ax, gan.x, gan.y + 0.25, r"GAN loss on the logit $\ell$", color=INK, size=11)
    label(ax, gan.x, gan.y, r"$D$ (body, head): maximize $\log D(x) + \log(1 - D(G(z, c)))$",
          color=INK, size=11)
    label(ax, gan.x, gan.y - 0.25, r"$G$: minimize $-\log D(G(z, c))$, $D$ held fixed",
          color=INK, size=11)
    arrow(ax, dh.top, (dh.x, gan.bottom[1]), text=r"$\ell(x)$", where="right", size=14,
          text_color=INK)

    info = box(ax, 6.2, 0.7, 6.2, 0.85, kind="Q")
    label(ax, info.x, info.y + 0.16, r"information term $-\lambda L_I$, minimized by $G$ and "
          r"$Q$ ($D$'s body held fixed):", color=INK, size=11)
    label(ax, info.x, info.y - 0.17, r"cross-entropy of $c_1$ ($\lambda = 1$) + Gaussian "
          r"NLL of $c_2, c_3$ ($\lambda = 0.1$)", color=INK, size=11)
    arrow(ax, qh.bottom, (qh.x, info.top[1]), text="logits 10; $\\mu$, $\\log \\sigma^2$ 2 each",
          where="left", color=q_edge)
    arrow(ax, (zc.x, 3.2), (zc.x, info.y), info.left, text="the codes $c$:\nQ's targets",
          where="right", at=0.4, color=q_edge, dashed=True)
    return fig


def stylegan() -> Figure:
    """The style-based generator: mapping network to w, and a synthesis network whose every
    layer takes its own style (an affine map A of w) and its own noise (scaled by B)."""
    fig, ax = figure(8.3, "StyleGAN: a style for every layer of the synthesis network")
    # the mapping network, on the left
    z = var(ax, 1.3, 7.4, "$z$")
    frame = box(ax, 1.3, 5.65, 2.05, 2.6, kind="group")
    label(ax, 1.3, 6.65, "mapping network\nlearning rate × 0.01", color=INK, size=11)
    norm = box(ax, 1.3, 6.15, 1.75, 0.3, "pixel norm", size=11)
    fcs = [box(ax, 1.3, 5.75 - 0.38 * i, 1.75, 0.3, "Linear 64, LeakyReLU", kind="G",
               size=11) for i in range(4)]
    w = var(ax, 1.3, 3.9, r"$w \in \mathcal{W}$", w=1.0)
    arrow(ax, z.bottom, frame.top, text="64", where="right")
    for a, b in zip([norm, *fcs[:-1]], fcs, strict=True):
        arrow(ax, a.bottom, b.top, lw=1.0)
    arrow(ax, frame.bottom, w.top, text="64", where="right")
    label(ax, 0.3, 3.45, r"sampling: $w \leftarrow \bar{w} + \psi\,(w - \bar{w})$",
          ha="left", size=11)
    label(ax, 0.3, 3.1, "Each layer takes its own\nstyle $w_1, \\dots, w_6$. In\n"
          "training, the layers after\na random cut get the $w$\nof a second $z$: "
          "style mixing.", ha="left", va="top", size=11)

    # the synthesis network: one row per layer, grouped by resolution
    rows = [("constant (learned)", "64×7×7", 7), ("conv 3×3", "64×7×7", 7),
            ("↑2, conv 3×3", "64×14×14", 14), ("conv 3×3", "64×14×14", 14),
            ("↑2, conv 3×3", "32×28×28", 28), ("conv 3×3", "32×28×28", 28),
            ("toRGB: conv 1×1", "1×28×28", 28)]
    ys = [7.1 - 0.75 * i - 0.3 * (i > 1) - 0.3 * (i > 3) for i in range(len(rows))]
    for res, channels, (top, bottom) in ((7, 64, (0, 1)), (14, 64, (2, 3)),
                                         (28, 32, (4, 6))):
        y0, y1 = ys[bottom] - 0.33, ys[top] + 0.33
        box(ax, 6.15, (y0 + y1) / 2, 6.3, y1 - y0, kind="group")
        label(ax, 8.85, (y0 + y1) / 2, f"{res}×{res}\n{channels} ch", color=INK)
    bus_x = 2.65
    line(ax, (bus_x, ys[-1]), (bus_x, ys[1]))
    arrow(ax, w.right, (bus_x, w.y))
    layers = [box(ax, 4.9, y, 1.8, 0.45, text, kind="G" if i else "op", size=11)
              for i, ((text, _, _), y) in enumerate(zip(rows, ys, strict=True))]
    for (_, shape, _), a, b in zip(rows[:-1], layers[:-1], layers[1:], strict=True):
        arrow(ax, a.bottom, b.top, text=shape, where="right")
    for i, ((_, _, res), y, layer) in enumerate(zip(rows, ys, layers, strict=True)):
        if i == 0:
            continue  # the constant takes no style and no noise
        a = box(ax, 3.35, y, 0.45, 0.45, "A", kind="D", size=11)
        arrow(ax, (bus_x, y), a.left, text=f"$w_{i}$", size=11, at=0.45)
        arrow(ax, a.right, layer.left)
        if i < len(rows) - 1:
            b = box(ax, 6.45, y, 0.45, 0.45, "B", kind="Q", size=11)
            noise = var(ax, 7.55, y, f"noise 1×{res}×{res}", w=1.3, size=11)
            arrow(ax, b.left, layer.right)
            arrow(ax, noise.left, b.right)
    out = var(ax, 4.9, ys[-1] - 0.85, "image", w=1.5, size=12)
    arrow(ax, layers[-1].bottom, out.top, text=rows[-1][1], where="right")
    label(ax, 3.0, 0.3, "A: an affine map of $w$ to the style, one scale per input channel,\n"
          "modulating (and demodulating) the conv's weights;  B: a learned per-channel\n"
          "strength for the noise image", ha="left", va="bottom", size=11)
    return fig


def flow() -> Figure:
    """RealNVP: one affine coupling layer, and the multi-scale stack of gentut/models/flow.py."""
    fig, ax = figure(7.8, "Normalizing flow (RealNVP): invertible layers with easy Jacobians")
    net_edge = COLORS["Q"][1]
    # one affine coupling layer
    label(ax, 0.3, 6.95, "one affine coupling layer", ha="left", color=INK, size=13)
    ya, yb = 6.45, 5.0
    ym = (ya + yb) / 2
    x = var(ax, 0.5, ym, "$x$")
    split = box(ax, 1.7, ym, 1.2, 0.8, "split by\nmask $m$", size=11)
    xa, xb = var(ax, 3.0, ya, "$x_a$"), var(ax, 3.0, yb, "$x_b$")
    net = box(ax, 5.0, ym, 1.8, 0.55, "$s(\\cdot)$, $b(\\cdot)$: 3 convs", kind="Q",
              size=11)
    mul = box(ax, 5.6, yb, 0.8, 0.45, r"$\odot\, e^{s}$", size=13)
    add = box(ax, 7.3, yb, 0.55, 0.45, "$+\\,b$", size=13)
    y_a, y_b = var(ax, 8.9, ya, "$y_a$"), var(ax, 8.9, yb, "$y_b$")
    arrow(ax, x.right, split.left)
    arrow(ax, split.at("right", 0.5), xa.left)
    arrow(ax, split.at("right", -0.5), xb.left)
    arrow(ax, xa.right, y_a.left, text="$y_a = x_a$", at=0.75)
    arrow(ax, (net.at("top", -0.6)[0], ya), net.at("top", -0.6))
    arrow(ax, net.at("bottom", 0.67), mul.top, text="$s$", where="right", size=13,
          color=net_edge, text_color=net_edge)
    arrow(ax, net.right, (add.x, net.y), add.top, text="$b$", size=13, color=net_edge,
          text_color=net_edge)
    arrow(ax, xb.right, mul.left)
    arrow(ax, mul.right, add.left)
    arrow(ax, add.right, y_b.left)
    label(ax, 0.3, 4.5, r"$y_b = x_b \odot \exp(s(x_a)) + b(x_a)$,   "
          r"$\log\,|\det \partial y / \partial x| = \sum s(x_a)$  (a triangular Jacobian)",
          ha="left", color=INK)
    label(ax, 0.3, 4.17, r"inverse, as $y_a = x_a$:  $x_b = (y_b - b(y_a)) \odot "
          r"\exp(-s(y_a))$;   $s$ is bounded by a tanh", ha="left", color=INK)
    line(ax, (0.3, 3.9), (9.2, 3.9), color=COLORS["group"][1], lw=1.0)

    # the multi-scale stack
    label(ax, 0.3, 3.62, "the flow $f$: 2 scales, every layer keeps all 784 numbers "
          "(no factoring out)", ha="left", color=INK, size=13)
    y1, y2, h = 2.75, 0.95, 0.7
    box(ax, 6.4, y1 + 0.05, 5.9, 1.15, kind="group")
    label(ax, 3.6, y1 + 0.48, "scale 1: 28×28 → 14×14", ha="left", size=11)
    box(ax, 2.85, y2 + 0.05, 5.4, 1.15, kind="group")
    label(ax, 5.45, y2 + 0.48, "scale 2: 14×14 → 7×7", ha="right", size=11)
    checker, channel = "3 couplings\ncheckerboard", "3 couplings\nchannel mask"
    x = var(ax, 0.5, y1, "$x$")
    row1 = [box(ax, 2.3, y1, 1.25, h, "logit, $\\delta$\n= 0.05", size=11),
            box(ax, 4.5, y1, 1.25, h, checker, kind="Q", size=11),
            box(ax, 6.5, y1, 0.85, h, "squeeze", size=11),
            box(ax, 8.5, y1, 1.25, h, channel, kind="Q", size=11)]
    row2 = [box(ax, 0.95, y2, 1.25, h, checker, kind="Q", size=11),
            box(ax, 2.95, y2, 0.85, h, "squeeze", size=11),
            box(ax, 4.95, y2, 1.25, h, channel, kind="Q", size=11),
            box(ax, 7.15, y2, 1.25, h, checker, kind="Q", size=11)]
    z = var(ax, 8.95, y2, "$z$")
    label(ax, z.x, z.y + 0.3, "$\\mathcal{N}(0, I)$", va="bottom", size=11)
    for a, b, shape in zip([x, *row1[:-1]], row1, ["1×28×28"] * 3 + ["4×14×14"],
                           strict=True):
        arrow(ax, a.right, b.left, text=shape)
    ymid = (y1 + y2) / 2 + 0.05
    arrow(ax, row1[-1].bottom, (row1[-1].x, ymid), (row2[0].x, ymid), row2[0].top)
    label(ax, 4.7, ymid + 0.07, "4×14×14", va="bottom")
    for a, b, shape in zip(row2, [*row2[1:], z], ["4×14×14", "16×7×7", "16×7×7", "16×7×7"],
                           strict=True):
        arrow(ax, a.right, b.left, text=shape)
    label(ax, 9.2, 0.25, "squeeze: C×H×W → 4C×H/2×W/2, a reshape with log|det| = 0",
          ha="right", size=11)
    return fig


def diffusion() -> Figure:
    """DDPM: the fixed forward chain, training eps_theta on q(x_t | x_0), guided sampling back
    from noise; and, for comparison, flow matching's straight path (time runs the other way)."""
    height = 12.0
    fig, ax = figure(height, "Diffusion: learn to undo a gradual noising, one step at a time")
    rule = COLORS["group"][1]
    g_edge = COLORS["G"][1]

    # (1) the forward process: a fixed chain of Gaussian noisings, and its closed-form jump
    top = height - 0.82
    label(ax, 0.3, top, r"forward process $q$: fixed, no parameters, $T = 1000$ steps "
          r"(cosine schedule of $\beta_t$)", ha="left", color=INK, size=13)
    yf = top - 1.05
    chain = [var(ax, 0.6, yf, "$x_0$"), var(ax, 1.85, yf, "$x_1$"),
             var(ax, 2.95, yf, r"$\cdots$"), var(ax, 4.2, yf, "$x_{t-1}$", w=0.7),
             var(ax, 6.55, yf, "$x_t$"), var(ax, 7.6, yf, r"$\cdots$"),
             var(ax, 8.75, yf, "$x_T$")]
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        arrow(ax, a.right, b.left)
    arrow(ax, chain[0].top, chain[4].top, rad=-0.12, color=MUTED, dashed=True)
    label(ax, (chain[0].x + chain[4].x) / 2, yf + 0.65,
          r"in one jump:  $q(x_t \mid x_0) = \mathcal{N}(\sqrt{\bar\alpha_t}\,x_0,\ "
          r"(1 - \bar\alpha_t)\,I)$,   $\bar\alpha_t = (1 - \beta_1) \cdots (1 - \beta_t)$",
          color=INK, size=11, va="bottom")
    step = (chain[3].right[0] + chain[4].left[0]) / 2
    label(ax, step, yf - 0.1, r"$q(x_t \mid x_{t-1})$", va="top", color=INK)
    label(ax, step, yf - 0.42, r"$= \mathcal{N}(\sqrt{1 - \beta_t}\,x_{t-1},\ \beta_t I)$",
          va="top", size=11)
    label(ax, chain[0].x, yf - 0.3, "image", va="top", size=11)
    label(ax, 0.3, yf - 0.52, r"each step adds Gaussian noise of variance $\beta_t$",
          ha="left", va="top", size=11)
    label(ax, chain[-1].x, yf - 0.3, r"$\approx \mathcal{N}(0, I)$", va="top", size=11)
    line(ax, (0.3, yf - 0.85), (9.2, yf - 0.85), color=rule, lw=1.0)

    # (2) training: noise an image in one jump, and have the U-Net name the noise
    top = yf - 1.13
    label(ax, 0.3, top, r"training: the U-Net learns the noise $\epsilon$ that made $x_t$",
          ha="left", color=INK, size=13)
    yt = top - 1.1
    ye = yt - 1.25
    eps = var(ax, 1.0, yt + 0.3, r"$\epsilon \sim \mathcal{N}(0, I)$", w=1.5, size=14)
    x0 = var(ax, 1.0, yt - 0.3, r"$x_0 \sim p_{\mathrm{data}}$", w=1.5, size=14)
    t = var(ax, 1.0, ye, r"$t \sim \mathcal{U}\{1, \dots, T\}$", w=1.5, size=14)
    noise = box(ax, 2.95, yt, 1.9, 0.95, r"$x_t = \sqrt{\bar\alpha_t}\,x_0$" "\n"
                r"$+ \sqrt{1 - \bar\alpha_t}\,\epsilon$", size=13)
    unet = box(ax, 5.9, yt, 2.1, 1.2, r"U-Net $\epsilon_\theta(x_t, t, y)$" "\n"
               "28→14→7→14→28, skips\nattention at 7×7", kind="G", size=11)
    loss = box(ax, 8.35, yt, 1.5, 0.95, r"$\Vert \epsilon - \epsilon_\theta \Vert^2$"
               "\nmean over pixels", kind="loss", size=11)
    arrow(ax, eps.right, (noise.left[0], eps.y))
    arrow(ax, x0.right, (noise.left[0], x0.y))
    arrow(ax, noise.right, unet.left, text="$x_t$", size=13, text_color=INK)
    label(ax, (noise.right[0] + unet.left[0]) / 2, yt - 0.08, "1×28×28", va="top", size=11)
    arrow(ax, unet.right, loss.left, text=r"$\epsilon_\theta$", size=13, text_color=INK)
    ytop = yt + 0.85
    line(ax, eps.top, (eps.x, ytop))
    arrow(ax, (eps.x, ytop), (loss.x, ytop), loss.top, text=r"the target $\epsilon$",
          at=0.8)
    # the conditioning: time and class embeddings, summed, enter every residual block
    tx = noise.at("bottom", -0.6)[0]
    arrow(ax, t.right, (tx, ye), (tx, noise.bottom[1]))
    temb = box(ax, 3.75, ye, 1.6, 0.6, "time embedding\nsinusoids, MLP", kind="G", size=11)
    arrow(ax, (tx, ye), temb.left)
    plus = box(ax, unet.x, ye, 0.36, 0.36, "$+$", size=13)
    cemb = box(ax, 7.1, ye, 1.45, 0.6, "class embedding\n10 classes + null", kind="G",
               size=11)
    drop = box(ax, 8.62, ye, 1.15, 0.6, f"$y \\to$ null\nwith $p = {P_UNCOND:g}$", size=11)
    y = var(ax, drop.x, ye - 0.75, "$y$")
    arrow(ax, temb.right, plus.left)
    arrow(ax, cemb.left, plus.right)
    arrow(ax, drop.left, cemb.right)
    arrow(ax, y.top, drop.bottom)
    arrow(ax, plus.top, unet.bottom, text="128", where="right")
    label(ax, 0.3, ye - 0.72, "the sum enters every residual block as a per-channel bias",
          ha="left", size=11)
    line(ax, (0.3, ye - 1.05), (9.2, ye - 1.05), color=rule, lw=1.0)

    # (3) sampling: from noise, the network applied again and again, backwards in t
    top = ye - 1.33
    label(ax, 0.3, top, r"sampling: from noise back to an image, $t = T, \dots, 1$",
          ha="left", color=INK, size=13)
    ys = top - 1.25
    xT = var(ax, 0.95, ys, r"$x_T \sim \mathcal{N}(0, I)$", w=1.5, size=14)
    net = box(ax, 3.5, ys, 2.3, 0.95, r"$\epsilon_y = \epsilon_\theta(x_t, t, y)$" "\n"
              r"$\epsilon_{\mathrm{null}} = \epsilon_\theta(x_t, t, \mathrm{null})$",
              kind="G", size=11)
    guide = box(ax, 6.2, ys, 2.3, 0.95, r"$\epsilon_{\mathrm{null}} + \omega\,"
                r"(\epsilon_y - \epsilon_{\mathrm{null}})$", size=12)
    stepb = box(ax, 8.45, ys, 1.4, 0.95, "one step back\nancestral\nor DDIM", size=11)
    x0s = var(ax, stepb.x, ys - 1.05, "$x_0$")
    arrow(ax, xT.right, net.left, text="$x_t$", size=13, text_color=INK)
    arrow(ax, net.right, guide.left)
    arrow(ax, guide.right, stepb.left, text=r"$\tilde\epsilon$", size=13, text_color=INK)
    yloop = ys + 0.72
    arrow(ax, stepb.top, (stepb.x, yloop), (net.x, yloop), net.top)
    label(ax, (stepb.x + net.x) / 2, yloop + 0.07, r"repeat: $x_{t-1}$ becomes the next "
          r"$x_t$", va="bottom")
    arrow(ax, stepb.bottom, x0s.top)
    label(ax, x0s.x - 0.3, x0s.y, "the image, after $t = 1$", ha="right")
    label(ax, net.x, ys - 0.55, "the EMA network, run twice", va="top", size=11)
    label(ax, guide.x, ys - 0.55, rf"classifier-free guidance, $\omega = {GUIDANCE:g}$", va="top",
          size=11)
    label(ax, 0.3, ys - 0.95, r"ancestral (the default): $x_{t-1} \sim "
          r"\mathcal{N}(\mu_\theta, \tilde\beta_t I)$, 50 respaced steps or all $T$" "\n"
          r"DDIM ($\eta = 0$): deterministic jumps through 50 of them, no fresh noise" "\n"
          r"$\omega = 0$: unconditional, $1$: conditional, more: pushed further towards $y$",
          ha="left", va="top", size=11)
    line(ax, (0.3, ys - 1.75), (9.2, ys - 1.75), color=rule, lw=1.0)

    # (4) flow matching: the straight path from noise to data, and its velocity
    top = ys - 2.03
    label(ax, 0.3, top, r"flow matching, for comparison: the same U-Net learns a velocity "
          r"$v_\theta(x_t, t, y)$", ha="left", color=INK, size=13)
    label(ax, 0.3, top - 0.3, r"mind the direction: here time runs from noise at $t = 0$ to "
          r"data at $t = 1$, the reverse of DDPM's $x_0$ and $x_T$", ha="left", va="top",
          size=11)
    yb = top - 1.2
    (ax0, ay0), (ax1, ay1) = (0.75, yb - 0.25), (3.25, yb + 0.25)
    line(ax, (ax0, ay0), (ax1, ay1), color=MUTED, lw=1.2, dashed=True)
    at = 0.35
    pt = (ax0 + at * (ax1 - ax0), ay0 + at * (ay1 - ay0))
    arrow(ax, pt, (pt[0] + 0.4 * (ax1 - ax0), pt[1] + 0.4 * (ay1 - ay0)), color=g_edge, lw=2)
    ax.plot([ax0, pt[0], ax1], [ay0, pt[1], ay1], "o", color=INK, ms=5, zorder=3)
    label(ax, ax0, ay0 - 0.12, r"noise $x_0$, $t = 0$", va="top", color=INK)
    label(ax, ax1, ay1 + 0.12, r"data $x_1$, $t = 1$", va="bottom", color=INK)
    label(ax, pt[0] + 0.05, pt[1] - 0.1, "$x_t$", ha="left", va="top", color=INK, size=13)
    label(ax, 2.1, yb + 0.18, "$x_1 - x_0$", ha="right", va="bottom", color=g_edge, size=13)
    label(ax, 4.2, yb + 0.5, r"the straight path  $x_t = (1 - t)\,x_0 + t\,x_1$,  "
          r"$t \sim \mathcal{U}[0, 1]$", ha="left", color=INK)
    fm = box(ax, 6.6, yb - 0.05, 4.8, 0.5, kind="loss")
    label(ax, fm.x, fm.y, r"$\Vert v_\theta(x_t, t, y) - (x_1 - x_0) \Vert^2$:  regress the "
          "path's velocity", color=INK)
    label(ax, 4.2, yb - 0.57, r"sampling: integrate $dx/dt = v_\theta$ from $t = 0$ to $1$ "
          "(25 Heun steps)", ha="left", size=11)
    return fig


DIAGRAMS: dict[str, Callable[[], Figure]] = {
    "autoencoder": autoencoder,
    "vae": vae,
    "gan": gan,
    "dcgan": dcgan,
    "infogan": infogan,
    "stylegan": stylegan,
    "flow": flow,
    "diffusion": diffusion,
}


def main(argv: Sequence[str] | None = None) -> None:
    """Redraw the named diagrams (all by default) into --out (gentut/diagrams/ by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"diagrams to draw, of: {', '.join(DIAGRAMS)}")
    parser.add_argument("--out", type=Path, default=OUT, help="folder to write into")
    parser.add_argument("--list", action="store_true", help="print the names and stop")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(DIAGRAMS))
        return
    unknown = sorted(set(args.names) - set(DIAGRAMS))
    if unknown:
        parser.error(f"no diagram {', '.join(unknown)}: choose of {', '.join(DIAGRAMS)}")
    for name in args.names or DIAGRAMS:
        file = save(DIAGRAMS[name](), name, args.out)
        print(f"{file}  {file.stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    sys.exit(main())
