"""The repository's address comes from one place, `_config.yml`, and every copy agrees.

The book's repository button, the Colab link at the top of each chapter, each chapter's
`pip install git+...` cell, the README and the package metadata all name the repository;
moving it means changing `repository.url` in `_config.yml` and every place this test lists.
"""

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
URL, BRANCH = CONFIG["url"].rstrip("/"), CONFIG["branch"]
SLUG = URL.removeprefix("https://github.com/")
COLAB = f"https://colab.research.google.com/github/{SLUG}/blob/{BRANCH}/notebooks/"
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TEXTS = [ROOT / "README.md", ROOT / "pyproject.toml", *sorted((ROOT / "book").glob("*.md"))]
# any GitHub repository named anywhere, as github.com/OWNER/NAME or Colab's github/OWNER/NAME
NAMED = re.compile(r"(?:github\.com|colab\.research\.google\.com/github)/([\w.-]+/[\w.-]+)")


def test_config_names_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", URL), URL


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_links_colab_and_installs_from_the_configured_repository(chapter):
    cells = nbformat.read(chapter, as_version=4).cells
    assert COLAB + chapter.name in cells[0].source, f"{chapter.name}: first cell's Colab link"
    assert f"git+{URL}" in cells[1].source, f"{chapter.name}: the Colab install cell"


@pytest.mark.parametrize("path", [*TEXTS, *CHAPTERS], ids=lambda p: p.name)
def test_no_other_repository_is_named(path):
    text = path.read_text()
    others = {slug for slug in NAMED.findall(text) if slug != SLUG}
    # links to other projects' repositories are fine; this project's old names are not
    assert not {s for s in others if s.split("/")[1] == SLUG.split("/")[1]}, others


def test_package_metadata_and_readme_agree():
    assert f'Repository = "{URL}"' in (ROOT / "pyproject.toml").read_text()
    assert COLAB in (ROOT / "README.md").read_text()
