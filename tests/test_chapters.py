"""Every chapter runs end to end with TRAIN=True, SMOKE=True: real data, real training, briefly.

(`pytest --nbval notebooks` checks the committed outputs of the TRAIN=False run; this test
checks the training path the committed outputs do not show.)
"""

from pathlib import Path

import papermill
import pytest

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


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_trains_for_real_in_smoke_mode(chapter, tmp_path):
    out = tmp_path / chapter.name
    papermill.execute_notebook(str(chapter), str(out), parameters={"TRAIN": True, "SMOKE": True},
                               cwd=str(chapter.parent), progress_bar=False, kernel_name="python3")
    assert out.exists()
