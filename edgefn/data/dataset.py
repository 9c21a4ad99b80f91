"""Dataset types and the dataset registry the loaders fill (label 1 = fake, 0 = real)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn.core.errors import ConfigError
from edgefn.runs import Split

FAKE, REAL = 1, 0
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class DataOptions:
    """How to read a dataset: generic-file columns, the fake label value, cleaning, split seed.

    `strict` refuses rows without a label instead of dropping and counting them; `clean_rules` names the
    cleaning rules (`cleaning.CLEAN_RULES`) for generic files, or replaces a named dataset's defaults;
    `max_train_per_source` caps each source's training rows (a seeded sample) in a union of datasets.
    """

    text_cols: tuple[str, ...] = ()
    label_col: str | None = None
    fake_label: str | None = None
    clean: bool = True
    seed: int = 42
    strict: bool = False
    clean_rules: tuple[str, ...] = ()
    max_train_per_source: int | None = None

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError("seed", f"must be a non-negative integer, got {self.seed}")


@dataclass
class DatasetBundle:
    """Train / validation / test splits plus a record of where they came from and what was done."""

    name: str
    train: Split
    validation: Split
    test: Split
    info: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def fingerprint(self) -> str:
        """SHA-256 over every split's texts and labels: equal data gives an equal fingerprint."""
        h = hashlib.sha256()
        for name in SPLITS:
            s = self.split(name)
            h.update(name.encode())
            for text, label in zip(s.texts, s.labels, strict=True):
                h.update(f"{label}\t{text}\n".encode())
        return h.hexdigest()


# --- registry ---------------------------------------------------------------------------------------------

Loader = Callable[[Path, DataOptions], DatasetBundle]


@dataclass(frozen=True)
class DatasetEntry:
    """A named dataset: its loader, how to recognise and find its files, and optionally a hub loader."""

    name: str
    load: Loader
    detect: Callable[[Path], bool]
    folders: tuple[str, ...] = ()  # default folders, relative to each of `home.data_roots()`
    hint: str = ""  # which files the user must provide
    builtin: Path | None = None  # a file shipped inside the package
    hub_id: str | None = None
    load_hub: Callable[[DataOptions], DatasetBundle | None] | None = None
    source: str = ""  # where to get the files (a public origin)


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(
    name: str,
    *,
    detect: Callable[[Path], bool] = lambda p: False,
    folders: tuple[str, ...] = (),
    hint: str = "",
    builtin: Path | None = None,
    hub_id: str | None = None,
    load_hub: Callable[[DataOptions], DatasetBundle | None] | None = None,
    source: str = "",
) -> Callable[[Loader], Loader]:
    """Decorator registering a loader `fn(path, options) -> DatasetBundle` under `name`."""

    def deco(fn: Loader) -> Loader:
        _REGISTRY[name] = DatasetEntry(name, fn, detect, folders, hint, builtin, hub_id, load_hub, source)
        return fn

    return deco


def registered() -> dict[str, DatasetEntry]:
    """The entries registered so far (`edgefn.data.catalog` imports the loaders, which register the named sets)."""
    return _REGISTRY
