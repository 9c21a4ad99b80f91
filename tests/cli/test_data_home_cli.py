"""`edgefn data list` (found / missing, where, how to get each) and the one-line error for a missing dataset."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edgefn.cli.commands import main
from edgefn.data.catalog import list_datasets, load_data


def _constraint(root: Path) -> Path:
    """A folder that the constraint entry recognises, under `root`."""
    folder = root / "covid19-constraint"
    folder.mkdir(parents=True)
    for name in ("Constraint_Train.csv", "Constraint_Val.csv", "english_test_with_labels.csv"):
        (folder / name).write_text("id,tweet,label\n", encoding="utf-8")
    return folder


def _blocks(output: str) -> dict[str, list[str]]:
    """The lines of `data list` per dataset: a block starts with the name in column 0."""
    blocks: dict[str, list[str]] = {}
    name = ""
    for line in output.split("\n\n", 1)[1].splitlines():
        if not line.startswith(" "):
            name = line.split()[0]
        blocks.setdefault(name, []).append(line)
    return blocks


def test_data_list_found_and_missing(data_homes: dict[str, Path], tmp_path: Path) -> None:
    """Found datasets name their folder, missing ones the folder and files to put there and their source;
    every line fits 120 columns and no Python repr leaks."""
    liar = data_homes["env"] / "liar"
    liar.mkdir()
    for name in ("train.tsv", "valid.tsv", "test.tsv"):
        (liar / name).touch()
    constraint = _constraint(data_homes["user"])
    out = CliRunner().invoke(main, ["data", "list"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert all(len(line) <= 120 for line in lines), max(lines, key=len)
    assert not any(word in out.output for word in ("PosixPath", "None", "{", "["))
    assert f"1. $EDGEFN_DATA_DIR        {data_homes['env']}" in out.output
    assert f"2. user data folder        {data_homes['user']}" in out.output
    blocks = _blocks(out.output)
    assert sorted(blocks) == list_datasets()
    assert blocks["liar"][0].split() == ["liar", "found", f"{liar}/"]
    assert blocks["constraint"][0].split() == ["constraint", "found", f"{constraint}/"]
    assert blocks["sample"][0].split()[:2] == ["sample", "found"]
    welfake = " ".join(" ".join(blocks["welfake"]).split())
    assert welfake.startswith(f"welfake missing put WELFake_Dataset.csv in {data_homes['env'] / 'welfake'}/")
    assert 'source Zenodo or Kaggle, "WELFake"' in welfake and "hub davanstrien/WELFake" in welfake
    isot = " ".join(" ".join(blocks["isot"]).split())
    assert isot.startswith("isot missing put Fake.csv and True.csv in ") and "ISOT Fake News Dataset" in isot
    assert "github.com/diptamath/covid_fake_news" in " ".join(blocks["constraint"])

    report = json.loads(CliRunner().invoke(main, ["data", "list", "--json"]).output)
    found = {d["name"]: d["folder"] for d in report["datasets"] if d["found"]}
    assert found.keys() == {"constraint", "liar", "sample"} and found["liar"] == str(liar)
    assert [h["folder"] for h in report["look_up"]] == [str(p) for p in data_homes.values()]


def _parsed(argv: list[str]) -> tuple[str, dict]:
    """The leaf command's name and parameters click parses from `argv` (nothing runs)."""
    ctx = main.make_context("edgefn", list(argv), resilient_parsing=False)
    group: click.Group = main
    args = list(argv)
    while isinstance(group, click.Group):
        name, cmd, args = group.resolve_command(ctx, args)
        assert cmd is not None
        ctx = cmd.make_context(name, args, parent=ctx)
        group = cmd  # type: ignore[assignment]
    return ctx.command_path, ctx.params


@pytest.mark.parametrize(
    "typed",
    [
        "finetune mobilebert",  # the README's first example, on the default data (nothing trains here)
        "finetune minilm --epochs 2 --no-clean --text-col 'a title' --data welfake",
        "data inspect constraint",
    ],
)
def test_missing_data_names_a_runnable_command(data_homes: dict[str, Path], typed: str) -> None:
    """A missing dataset ends in one line that names the same command on the packaged sample, which parses
    to the same parameters but the data, and which loads, plus the folder for the missing files."""
    argv = shlex.split(typed)
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    line = result.output.strip()
    assert line.startswith("Error: dataset ") and "not found; run `edgefn " in line
    command = line.split("`")[1]
    assert command.startswith("edgefn ") and "sample" in shlex.split(command)
    path, params = _parsed(shlex.split(command)[1:])
    want_path, want = _parsed(argv)
    assert path == want_path and params == {**want, "data": "sample"}
    assert len(load_data(params["data"]).train) > 0
    assert f"in {data_homes['env']}/" in line and "(sources: `edgefn data list`)" in line


def test_data_inspect_from_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`edgefn data inspect NAME` run outside the checkout finds the shared data beside it, no variable set."""
    from tests.conftest import REPO

    shared = REPO.parent / "shared" / "data"
    if not (shared / "liar").is_dir():
        pytest.skip(f"no {shared}/liar beside this checkout")
    for name in ("EDGEFN_DATA_DIR", "EDGEFN_SHARED_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["data", "inspect", "liar", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["source"] == str(shared / "liar")
