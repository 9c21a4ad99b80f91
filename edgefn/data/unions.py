"""Several datasets as one: each split the union of theirs, rows tagged with their source, duplicates dropped."""

from __future__ import annotations

from typing import Any

from edgefn.core.errors import EdgefnError
from edgefn.data.dataset import SPLITS, DataOptions, DatasetBundle
from edgefn.runs import Split


def union_bundles(bundles: list[DatasetBundle], options: DataOptions) -> DatasetBundle:
    """Several datasets as one: each split the concatenation of theirs, each row tagged with its source.

    Texts found in two sources are kept once (the first source's row; texts with both labels are dropped);
    validation and test rows whose text is in an earlier split are dropped, as in one dataset.
    `options.max_train_per_source` caps each source's training rows (a seeded sample).
    """
    import random

    names = [b.name for b in bundles]
    if len(set(names)) != len(names):
        raise EdgefnError(f"a union names a dataset twice: {'+'.join(names)}")
    parts: dict[str, Split] = {}
    seen: set[str] = set()
    dropped = {"duplicate": 0, "conflicting_labels": 0}
    cross_split = {"validation": 0, "test": 0}
    per_source: dict[str, dict[str, int]] = {n: {} for n in names}
    for split in SPLITS:
        rows: dict[str, tuple[int, str]] = {}
        conflicts: set[str] = set()
        for b in bundles:
            s = b.split(split)
            idx = list(range(len(s)))
            cap = options.max_train_per_source
            if split == "train" and cap is not None and cap < len(s):
                idx = sorted(random.Random(options.seed).sample(idx, cap))
            for i in idx:
                text, label = s.texts[i], s.labels[i]
                if text in rows:
                    dropped["duplicate"] += 1
                    if rows[text][0] != label:
                        conflicts.add(text)
                    continue
                rows[text] = (label, b.name)
        for text in conflicts:
            del rows[text]
            dropped["conflicting_labels"] += 1
        overlap = [t for t in rows if t in seen]
        for text in overlap:
            del rows[text]
        if split != "train":
            cross_split[split] = len(overlap)
        seen.update(rows)
        parts[split] = Split(list(rows), [v[0] for v in rows.values()], [v[1] for v in rows.values()])
        for n in names:
            per_source[n][split] = sum(v[1] == n for v in rows.values())
    info: dict[str, Any] = {
        "name": "+".join(names),
        "source": " + ".join(str(b.info.get("source", b.name)) for b in bundles),
        "text": "; ".join(f"{b.name}: {b.info.get('text', '?')}" for b in bundles),
        "label_map": "; ".join(f"{b.name}: {b.info.get('label_map', '?')}" for b in bundles),
        "cleaning": _union_cleaning(bundles),
        "splits": "each source's own splits, concatenated",
        "dropped": {**dropped, "cross_split": cross_split},
        "sources": {
            b.name: {k: b.info.get(k) for k in ("source", "splits", "cleaning", "dropped")} for b in bundles
        },
        "rows_per_source": per_source,
    }
    if options.max_train_per_source is not None:
        info["max_train_per_source"] = options.max_train_per_source
    info["rows"] = {k: len(v) for k, v in parts.items()}
    for split, s in parts.items():
        if len(s) == 0:
            raise EdgefnError(f"{info['name']}: the {split} split is empty")
    return DatasetBundle(info["name"], parts["train"], parts["validation"], parts["test"], info=info)


def _union_cleaning(bundles: list[DatasetBundle]) -> dict[str, Any]:
    rules: list[str] = []
    available: list[str] = []
    for b in bundles:
        c = b.info.get("cleaning") or {}
        rules += [f"{b.name}: {r}" for r in c.get("rules", [])]
        available += [f"{b.name}: {r}" for r in c.get("available", [])]
    return {"applied": bool(rules), "rules": rules, "available": available}
