"""Dataset registry and loaders (label 1 = fake, 0 = real), cleaning, splits and inspection."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn.errors import EdgefnError

FAKE, REAL = 1, 0
SPLITS = ("train", "validation", "test")


@dataclass
class Split:
    """Texts and labels of one split (label 1 = fake, 0 = real)."""

    texts: list[str]
    labels: list[int]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class DataOptions:
    """How to read a dataset: generic-file columns, the fake label value, cleaning, split seed."""

    text_cols: tuple[str, ...] = ()
    label_col: str | None = None
    fake_label: str | None = None
    clean: bool = True
    seed: int = 42


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
            for text, label in zip(s.texts, s.labels):
                h.update(f"{label}\t{text}\n".encode())
        return h.hexdigest()


def write_split_jsonl(split: Split, path: Path) -> None:
    """Save a split as JSON lines {"text", "label"} (used for run folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for text, label in zip(split.texts, split.labels):
            f.write(json.dumps({"text": text, "label": int(label)}, ensure_ascii=False) + "\n")


def read_split_jsonl(path: Path) -> Split:
    """Read a split written by `write_split_jsonl`."""
    if not Path(path).is_file():
        raise EdgefnError(f"missing data file {path}")
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(int(row["label"]))
    return Split(texts, labels)
