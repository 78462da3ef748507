"""The repository explains itself: no pointers to documents outside it; its doc links resolve."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
SKIP = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache"}


def files() -> list[Path]:
    out = []
    for path in ROOT.rglob("*"):
        if any(part in SKIP or part.endswith(".egg-info") for part in path.parts):
            continue
        if path.is_file() and path.suffix in {".py", ".md", ".toml", ".cfg", ".txt", ""}:
            out.append(path)
    return out


def test_no_reference_to_design_notes_outside_the_repository() -> None:
    outside = re.compile(r"(DESIGN|DOMAIN|INTEGRATIONS)\.md|shared/docs")
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in files()
        if p.name != "test_repository_docs.py"
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if outside.search(line)
    ]
    assert found == []


def test_every_relative_link_in_the_docs_points_at_a_file() -> None:
    link = re.compile(r"\]\(([^)#:]+)(#[^)]*)?\)")
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, _anchor in link.findall(doc.read_text(encoding="utf-8")):
            if target.startswith(("http", "mailto")):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []
