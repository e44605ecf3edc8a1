"""The README, BLUEPRINT and docs/ as a reader meets them: within their sizes, and every relative
link and anchor resolves."""

import re
from pathlib import Path

import pytest

LAB = Path(__file__).parents[1]
DOCS = [LAB / "README.md", LAB / "BLUEPRINT.md", *sorted((LAB / "docs").glob("*.md"))]


def anchors(path):
    """GitHub's anchors of a Markdown file's headings."""
    out = set()
    for heading in re.findall(r"(?m)^#+ (.+)$", path.read_text()):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not ours to check offline
        path, _, anchor = target.partition("#")
        where = (doc.parent / path).resolve() if path else doc
        assert where.exists(), f"{doc.name}: {target}"
        if anchor:
            assert anchor in anchors(where), f"{doc.name}: {target}"


def test_the_front_page_and_the_design_stay_short():
    assert len((LAB / "README.md").read_bytes()) <= 6144
    assert len((LAB / "BLUEPRINT.md").read_bytes()) <= 12288


def test_the_readme_starts_with_the_two_commands():
    block = re.search(r"```bash\n(.*?)```", (LAB / "README.md").read_text(), re.DOTALL)[1]
    assert block.strip().splitlines() == [
        "uv run python generate_icons.py && uv run python train.py && uv run python eval.py",
        "uv run pytest"]
