"""Every chapter runs end to end with TRAIN=True, SMOKE=True: real data, real training, briefly.

(`pytest --nbval notebooks` checks the committed outputs of the TRAIN=False run; this test
checks the training path the committed outputs do not show.)
"""

import re
from pathlib import Path

import papermill
import pytest

from gentut.notebook import SMOKE_STEPS

pytestmark = pytest.mark.slow
CHAPTERS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_every_chapter_has_a_parameters_cell():
    assert CHAPTERS, "no chapter notebooks found"
    import nbformat

    for chapter in CHAPTERS:
        nb = nbformat.read(chapter, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, chapter.name
        for name in ("TRAIN", "EPOCHS", "DATASET", "DEVICE", "SMOKE"):
            assert f"{name} =" in tagged[0].source, (chapter.name, name)


def printed(nb) -> str:
    """Everything a notebook's code cells printed."""
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_trains_for_real_in_smoke_mode(chapter, tmp_path):
    import nbformat

    out = tmp_path / chapter.name
    papermill.execute_notebook(str(chapter), str(out), parameters={"TRAIN": True, "SMOKE": True},
                               cwd=str(chapter.parent), progress_bar=False, kernel_name="python3")
    # every model the chapter trains reports its run ("trained NAME here: N iterations ..."),
    # and each ran the smoke run's steps: real training happened, as many steps as it says
    source = chapter.read_text()
    runs = re.findall(r"^trained (\S+) here: ([\d,]+) iterations", printed(nbformat.read(out, 4)),
                      re.MULTILINE)
    assert bool(runs) == ("train_or_load(" in source), (chapter.name, runs)
    assert all(int(n.replace(",", "")) == SMOKE_STEPS for _, n in runs), runs
