"""The generated documentation: the committed pages match the generator, and the check catches stale ones."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_docs", ROOT / ".ci" / "check_docs.py")
assert _spec is not None and _spec.loader is not None
check_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_docs)
make_docs = check_docs.make_docs


def test_committed_pages_match_the_generator():
    """docs/cli.md, docs/reference.md, docs/results.md, docs/robustness.md and the README's headline table
    are what benchmarks/make_docs.py writes now: .ci/check_docs.py passes, run in a fresh process as CI runs
    it (the CLI page is rendered from the registries, which a test may have extended with a toy engine)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "check_docs.py")], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_generation_is_deterministic_and_covers_every_command():
    """Two renderings give the same bytes, and the CLI page has a section for every command."""
    first, second = make_docs.expected_pages(), make_docs.expected_pages()
    assert first == second
    for command in ("finetune", "export", "bench", "eval", "predict", "package", "show", "run", "demo"):
        assert f"## `edgefn {command}`" in first["docs/cli.md"]
    assert "## `edgefn data inspect`" in first["docs/cli.md"] and "`--isa " in first["docs/cli.md"]


def test_stale_missing_and_orphaned_pages_are_reported(tmp_path: Path):
    """A page that differs, a page that is missing and a page marked as generated that the generator no
    longer writes are each one problem; a hand-written page is left alone."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("old\n", encoding="utf-8")
    (docs / "gone.md").write_text(make_docs.generated_header("somewhere") + "# Gone\n", encoding="utf-8")
    (docs / "guide.md").write_text("# Written by hand\n", encoding="utf-8")
    expected = {"docs/a.md": "new\n", "docs/b.md": "b\n", "docs/guide.md": "# Written by hand\n"}
    assert make_docs.problems(expected, tmp_path) == [
        "docs/a.md differs from what benchmarks/make_docs.py writes",
        "docs/b.md is missing",
        "docs/gone.md is marked as generated but benchmarks/make_docs.py no longer writes it",
    ]


def test_readme_headline_is_written_between_its_markers():
    """The README's headline table replaces only the text between its markers; without them it stops."""
    text = f"intro\n{make_docs.HEADLINE_BEGIN}\nold table\n{make_docs.HEADLINE_END}\nrest\n"
    out = make_docs.render_readme(text)
    assert out.startswith(f"intro\n{make_docs.HEADLINE_BEGIN}\n| minilm on CONSTRAINT |")
    assert "old table" not in out and out.endswith(f"{make_docs.HEADLINE_END}\nrest\n")
    with pytest.raises(SystemExit):
        make_docs.render_readme("no markers here\n")
