"""Small helpers the chapters use to show their own code."""

from __future__ import annotations

import inspect
import textwrap

from IPython.display import Code


def show(obj) -> Code:
    """The source of a function or class, highlighted: what the chapter shows is what runs."""
    return Code(textwrap.dedent(inspect.getsource(obj)), language="python")
