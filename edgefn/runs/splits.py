"""A split of texts and labels, and its JSON-lines file in a run's data/ folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn.core.errors import EdgefnError


@dataclass
class Split:
    """Texts and labels of one split (label 1 = fake, 0 = real)."""

    texts: list[str]
    labels: list[int]
    sources: list[str] | None = None  # each row's dataset, for a union of datasets

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if self.sources is not None and len(self.sources) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.sources)} sources")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: list[int]) -> Split:
        """The rows at `idx`, sources kept."""
        sources = None if self.sources is None else [self.sources[i] for i in idx]
        return Split([self.texts[i] for i in idx], [self.labels[i] for i in idx], sources)


def write_split_jsonl(split: Split, path: Path) -> None:
    """Save a split as JSON lines {"text", "label"} (used for run folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, (text, label) in enumerate(zip(split.texts, split.labels, strict=True)):
            row: dict[str, Any] = {"text": text, "label": int(label)}
            if split.sources is not None:
                row["source"] = split.sources[i]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_split_jsonl(path: Path) -> Split:
    """Read a split written by `write_split_jsonl`."""
    if not Path(path).is_file():
        raise EdgefnError(f"missing data file {path}")
    texts, labels, sources = [], [], []
    with open(path, encoding="utf-8", errors="strict") as f:
        for number, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                text, label = row["text"], row["label"]
            except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError and UnicodeDecodeError included
                raise EdgefnError(
                    f"{path} line {number} is damaged ({type(e).__name__}: {e}); "
                    "re-run `edgefn finetune --overwrite` to write the run's data again"
                ) from None
            if isinstance(label, bool) or not isinstance(label, (int, float)) or label not in (0, 1):
                raise EdgefnError(  # 1.0 and 0.0 are 1 and 0; 2, 0.5, NaN, "fake" or true would mislead
                    f"{path} line {number}: label {label!r} is not 0 or 1 (1 = fake, 0 = real); "
                    "correct it, or re-run `edgefn finetune --overwrite` to write the run's data again"
                )
            texts.append(str(text))
            labels.append(int(label))
            sources.append(row.get("source"))
    return Split(texts, labels, sources if sources and all(s is not None for s in sources) else None)
