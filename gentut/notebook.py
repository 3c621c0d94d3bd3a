"""Small helpers the chapters use to show their own code and the course's diagrams."""

from __future__ import annotations

import base64
import inspect
import textwrap
from html import escape
from pathlib import Path

from IPython.display import HTML, Code

DIAGRAMS = Path(__file__).parent / "diagrams"


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
