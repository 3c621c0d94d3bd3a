"""The course's diagrams: every one a chapter shows is shipped, and each is what draw.py draws."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIAGRAMS = ROOT / "gentut" / "diagrams"
DRAW = ROOT / "book" / "diagrams" / "draw.py"
CALL = re.compile(r"""diagram\(\s*["']([\w-]+)["']""")


def chapter_diagrams() -> dict[str, list[str]]:
    """The diagram names each notebook's code cells pass to `diagram(...)`, read now."""
    found: dict[str, list[str]] = {}
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for name in CALL.findall(code):
            found.setdefault(name, []).append(notebook.name)
    return found


def drawn() -> list[str]:
    """The names draw.py knows: the SVGs it is the source of."""
    out = subprocess.run([sys.executable, str(DRAW), "--list"], capture_output=True,
                         text=True, check=True).stdout
    return out.split()


def test_every_diagram_a_chapter_shows_is_shipped():
    missing = {name: books for name, books in chapter_diagrams().items()
               if not (DIAGRAMS / f"{name}.svg").is_file()}
    assert not missing, f"no gentut/diagrams/NAME.svg for {missing}: draw it in {DRAW}"


def test_every_shipped_diagram_is_drawn_by_the_script():
    assert sorted(p.stem for p in DIAGRAMS.glob("*.svg")) == sorted(drawn())


@pytest.mark.parametrize("name", ["vae", "stylegan"])
def test_redrawing_a_diagram_gives_the_committed_bytes(name, tmp_path):
    subprocess.run([sys.executable, str(DRAW), name, "--out", str(tmp_path)], check=True,
                   capture_output=True)
    assert (tmp_path / f"{name}.svg").read_bytes() == (DIAGRAMS / f"{name}.svg").read_bytes(), (
        f"{name}.svg is not what draw.py draws: run `python book/diagrams/draw.py {name}`")
