"""Where dataset names find their files, whatever the current folder, and what `edgefn data list` reports."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn.core.errors import EdgefnError
from edgefn.data.dataset import DatasetEntry

DATA_ENV = "EDGEFN_DATA_DIR"
SHARED_ENV = "EDGEFN_SHARED_DATA"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # edgefn/
CHECKOUT_DIR = PACKAGE_DIR.parent  # the repository root when edgefn runs from a source checkout


@dataclass(frozen=True)
class DataHome:
    """One place dataset names are looked up in: what it is, and its folder (None: not set here)."""

    label: str
    path: Path | None
    unset: str = ""  # why `path` is None


@dataclass(frozen=True)
class DatasetStatus:
    """Whether a named dataset is found, where, and how to get it."""

    name: str
    found: Path | None  # the folder (or packaged file) it loads from; None when missing
    put_in: Path | None  # where to put the files when missing (None: packaged, nothing to put)
    files: str
    source: str
    hub_id: str | None

    def to_json(self) -> dict[str, str | bool | None]:
        return {
            "name": self.name,
            "found": self.found is not None,
            "folder": str(self.found) if self.found else None,
            "put_in": str(self.put_in) if self.put_in else None,
            "files": self.files,
            "source": self.source,
            "hub_id": self.hub_id,
        }


class DatasetNotFound(EdgefnError):
    """A named dataset with no local copy and no hub copy; `how` says where to put its files."""

    def __init__(self, name: str, how: str) -> None:
        super().__init__(f"dataset {name} not found: {how}")
        self.name, self.how = name, how


def user_data_dir() -> Path | None:
    """`$XDG_DATA_HOME/edgefn/data`, by default `~/.local/share/edgefn/data` (None without a home folder)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec ignores a relative value
        return Path(xdg) / "edgefn" / "data"
    try:
        return Path.home() / ".local" / "share" / "edgefn" / "data"
    except RuntimeError:  # no HOME and no password entry
        return None


def checkout_data_dir() -> Path | None:
    """`$EDGEFN_SHARED_DATA`, else the `shared/data` folder beside a source checkout (None when installed)."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env).expanduser()
    if (CHECKOUT_DIR / "pyproject.toml").is_file():
        return CHECKOUT_DIR.parent / "shared" / "data"
    return None


def data_homes() -> list[DataHome]:
    """The look-up order of dataset names, first match wins; the packaged sample needs none of them."""
    env = os.environ.get(DATA_ENV)
    return [
        DataHome(f"${DATA_ENV}", Path(env).expanduser() if env else None, "not set"),
        DataHome("user data folder", user_data_dir(), "no home folder"),
        DataHome("checkout's shared data", checkout_data_dir(), "not a source checkout"),
    ]


def data_roots() -> list[Path]:
    """The folders of `data_homes()` that are set, in look-up order."""
    return [home.path for home in data_homes() if home.path is not None]


def locate(entry: DatasetEntry) -> Path | None:
    """The folder (or packaged file) `entry` loads from; None when no home holds it."""
    if entry.builtin is not None:
        return entry.builtin if entry.builtin.is_file() else None
    for root in data_roots():
        for folder in entry.folders:
            if (root / folder).is_dir() and entry.detect(root / folder):
                return root / folder
    return None


def put_in(entry: DatasetEntry) -> Path | None:
    """Where to put the files of a missing `entry`: its folder under $EDGEFN_DATA_DIR if set, else under the
    user data folder."""
    if entry.builtin is not None:
        return None
    roots = [home.path for home in data_homes()[:2] if home.path is not None]
    if not roots:
        return None
    folder = next((f for f in entry.folders if f != "."), ".")
    return roots[0] / folder


def status(entry: DatasetEntry) -> DatasetStatus:
    """Whether `entry` is found locally, where, and how to get it."""
    return DatasetStatus(entry.name, locate(entry), put_in(entry), entry.hint, entry.source, entry.hub_id)


def short(path: Path) -> str:
    """`path` with the home folder written as ~."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except (ValueError, RuntimeError):
        return str(path)


def list_json(homes: list[DataHome], datasets: list[DatasetStatus]) -> dict[str, Any]:
    """`edgefn data list --json`: the look-up folders in order and each dataset's status."""
    places = [{"label": h.label, "folder": str(h.path) if h.path else None} for h in homes]
    return {"look_up": places, "datasets": [d.to_json() for d in datasets]}


def format_list(homes: list[DataHome], datasets: list[DatasetStatus], width: int = 120) -> str:
    """`edgefn data list`: the look-up folders in order, then per dataset found / missing, the folder, the
    source and the hub id, wrapped at `width`."""
    lines = ["A dataset name is looked up in these folders, in this order:"]
    for i, place in enumerate(homes, 1):
        where = place.unset if place.path is None else short(place.path)
        absent = " (no such folder)" if place.path is not None and not place.path.is_dir() else ""
        lines.append(f"  {i}. {place.label:23s} {where}{absent}")
    lines += [
        "  sample is packaged with edgefn; NAME:PATH (constraint:/data/constraint) reads a folder anywhere.",
        "",
    ]
    for d in datasets:
        if d.found is not None:
            fields = [("found", short(d.found) + ("" if d.found.is_file() else "/"))]
        else:
            target = f"{short(d.put_in)}/" if d.put_in else f"a folder of ${DATA_ENV}"
            fields = [("missing", f"put {d.files} in {target}")]
        fields.append(("source", d.source))
        if d.hub_id:
            fields.append(("hub", f"{d.hub_id} (downloaded when not found here and online)"))
        for i, (label, text) in enumerate(fields):
            head = f"{d.name if i == 0 else '':11s} {label:8s} "
            lines.append(
                textwrap.fill(
                    text,
                    width=width,
                    initial_indent=head,
                    subsequent_indent=" " * len(head),
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
    return "\n".join(lines)


def not_found(entry: DatasetEntry) -> DatasetNotFound:
    """The error for a named dataset found neither locally nor on the hub: where its files go."""
    target = put_in(entry)
    where = (
        f"put {entry.hint} in {short(target)}/" if target else f"put {entry.hint} in a folder of ${DATA_ENV}"
    )
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    hub, note = "", "sources: `edgefn data list`"
    if entry.hub_id and offline:
        hub = f" or unset HF_HUB_OFFLINE to download {entry.hub_id}"
    elif entry.hub_id:
        note = f"{entry.hub_id} on the hub is unreachable; {note}"
    return DatasetNotFound(entry.name, f"{where}{hub} ({note})")
