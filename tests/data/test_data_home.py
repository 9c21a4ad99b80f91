"""Where dataset names are found: the look-up order, independent of the current folder, and the missing error."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefn.data import home
from edgefn.data.catalog import DatasetNotFound, get_dataset, load_data
from tests.conftest import REPO


def _liar(root: Path) -> Path:
    """A folder that the liar entry recognises (its three file names), under `root`."""
    folder = root / "liar"
    folder.mkdir(parents=True)
    for name in ("train.tsv", "valid.tsv", "test.tsv"):
        (folder / name).touch()
    return folder


def test_order_of_precedence(data_homes: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """$EDGEFN_DATA_DIR wins over the user data folder, which wins over the checkout's shared data."""
    liar = get_dataset("liar")
    assert home.locate(liar) is None
    folders = {where: _liar(root) for where, root in data_homes.items()}
    assert home.locate(liar) == folders["env"]
    monkeypatch.delenv("EDGEFN_DATA_DIR")
    assert home.locate(liar) == folders["user"]
    monkeypatch.setenv("XDG_DATA_HOME", str(data_homes["env"]))  # holds no edgefn/data
    assert home.locate(liar) == folders["shared"]
    assert [h.label for h in home.data_homes()] == [
        "$EDGEFN_DATA_DIR",
        "user data folder",
        "checkout's shared data",
    ]
    assert home.data_roots() == [data_homes["env"] / "edgefn" / "data", data_homes["shared"]]


def test_user_data_folder_defaults_to_local_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without $XDG_DATA_HOME (or with a relative one, which the XDG spec ignores): ~/.local/share/edgefn/data."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert home.user_data_dir() == tmp_path / ".local" / "share" / "edgefn" / "data"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/share")
    assert home.user_data_dir() == tmp_path / ".local" / "share" / "edgefn" / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert home.user_data_dir() == tmp_path / "xdg" / "edgefn" / "data"


def test_current_folder_plays_no_part(data_homes: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A ./data or ../shared/data beside the current folder is not looked in: only the documented homes."""
    cwd = data_homes["env"].parent / "project" / "work"
    _liar(cwd / "data")
    _liar(cwd.parent / "shared" / "data")
    monkeypatch.chdir(cwd)
    assert home.locate(get_dataset("liar")) is None
    with pytest.raises(DatasetNotFound, match=r"put train.tsv, valid.tsv and test.tsv in .*/env/liar/"):
        load_data("liar")


def test_checkout_shared_data_found_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From a folder far from the checkout, with no variable set, names are found in the shared/data folder
    beside the repository (computed from the package's location), as tests and benchmarks expect."""
    shared = REPO.parent / "shared" / "data"
    if not (shared / "liar").is_dir():
        pytest.skip(f"no {shared}/liar beside this checkout")
    for name in ("EDGEFN_DATA_DIR", "EDGEFN_SHARED_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert home.checkout_data_dir() == shared
    assert load_data("liar").info["source"] == str(shared / "liar")
    assert home.locate(get_dataset("constraint")) == shared / "covid19-constraint"


def test_sample_is_found_with_no_home(data_homes: dict[str, Path]) -> None:
    """The packaged sample needs no data folder; its status names the file inside the package."""
    status = home.status(get_dataset("sample"))
    assert status.found == home.PACKAGE_DIR / "resources" / "sample.jsonl" and status.put_in is None
    assert sum(len(load_data("sample").split(s)) for s in ("train", "validation", "test")) == 400


def test_missing_names_where_to_put_it(data_homes: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing name says which files go in which folder: under $EDGEFN_DATA_DIR when set, else the user's."""
    with pytest.raises(DatasetNotFound) as err:
        load_data("welfake")
    assert err.value.name == "welfake" and "\n" not in str(err.value)
    assert f"put WELFake_Dataset.csv in {data_homes['env'] / 'welfake'}/" in str(err.value)
    assert "unset HF_HUB_OFFLINE to download davanstrien/WELFake" in str(err.value)
    monkeypatch.delenv("EDGEFN_DATA_DIR")
    with pytest.raises(DatasetNotFound, match=r"Constraint_Val.csv and english_test_with_labels.csv in "):
        load_data("constraint")
    assert home.put_in(get_dataset("constraint")) == data_homes["user"] / "covid19-constraint"
