"""Shortcut audit: a planted URL cue is found, a clean set is not flagged, near-duplicates across splits."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from edgefn.cli.commands import main
from edgefn.data.audit import audit_data, format_audit, near_duplicates, verdicts
from edgefn.data.catalog import DataOptions, DatasetBundle, Split, load_data

WORDS = [
    "vaccine",
    "cases",
    "report",
    "health",
    "city",
    "officials",
    "study",
    "people",
    "week",
    "data",
    "trial",
    "virus",
    "school",
    "plan",
]


def synthetic(n: int, url: bool, seed: int = 0) -> DatasetBundle:
    """n rows per split of random words, labels random; with `url`, real rows end with a link."""
    rng = random.Random(seed)

    def split(rows: int) -> Split:
        texts, labels = [], []
        for i in range(rows):
            label = rng.randint(0, 1)
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
            link = f" https://news.example.org/{i}" if url and label == 0 else ""
            texts.append(f"{words} {i}{link}")
            labels.append(label)
        return Split(texts, labels)

    return DatasetBundle("synthetic", split(n), split(n // 3), split(n // 3), info={"name": "synthetic"})


def test_planted_url_cue_is_found():
    """When a URL decides the label, the URL cue alone scores 100% on test and gets a verdict line."""
    report = audit_data(synthetic(600, url=True), ngrams=5, duplicates=False)
    url = report["cues"]["url"]
    assert url["test_accuracy"] == 1.0 and url["test_balanced_accuracy"] == 1.0
    assert url["per_split"]["train"]["real"] == 1.0 and url["per_split"]["train"]["fake"] == 0.0
    assert url["rule"] == {"no": 1, "yes": 0}
    lines = verdicts(report)
    assert any(line.startswith("URL presence alone predicts the label with 100% accuracy") for line in lines)
    assert report["cues"]["hashtag"]["test_balanced_accuracy"] == 0.5  # absent everywhere
    assert "https" in [t for t, _ in report["ngrams"]["real"]]


def test_clean_set_is_not_flagged():
    """Without the planted link no cue reaches the threshold: no verdict line."""
    report = audit_data(synthetic(600, url=False), ngrams=5, duplicates=False)
    assert report["verdicts"] == []
    assert max(c["test_balanced_accuracy"] for c in report["cues"].values()) < 0.6
    assert "no strong cue" in format_audit(report)


def test_near_duplicates_across_splits():
    """A test text equal to a training text but for its last word is found by MinHash; a fresh one is not."""
    base = synthetic(300, url=False, seed=1)
    n = 2 * len(WORDS)
    original = " ".join(f"{w}{i}" for i, w in enumerate(WORDS * 2))  # n distinct words, n - 2 shingles
    planted = original.rsplit(" ", 1)[0] + " changed"  # all shingles but the last shared
    train = Split([original, *base.train.texts], [1, *base.train.labels])
    test = Split([planted, *base.test.texts], [1, *base.test.labels])
    pair = near_duplicates(DatasetBundle("dups", train, base.validation, test))["train/test"]
    assert pair["pairs"] == 1 and pair["same_label"] == 1
    assert pair["examples"][0] == {
        "jaccard": round((n - 3) / (n - 1), 3),
        "train": original[:200],
        "test": planted[:200],
    }


def test_constraint_cleaning_removes_the_url_cue(shared_data: Path):
    """CONSTRAINT as loaded (URLs and handles deleted) loses the URL verdict that the raw posts get."""
    folder = f"constraint:{shared_data / 'covid19-constraint'}"
    raw = audit_data(load_data(folder, DataOptions(clean=False)), ngrams=0, duplicates=False)
    clean = audit_data(load_data(folder), ngrams=0, duplicates=False)
    assert 0.65 < raw["cues"]["url"]["test_accuracy"] < 0.72
    assert raw["cues"]["url"]["per_split"]["train"]["real"] > 0.6
    assert clean["cues"]["url"]["test_balanced_accuracy"] < 0.52
    assert any("[url]" in v for v in raw["verdicts"]) and not any("[url]" in v for v in clean["verdicts"])


def test_cli_data_audit(tmp_path: Path):
    """`edgefn data audit FILE --json --output` reports the planted cue and writes the same JSON."""
    b = synthetic(300, url=True)
    rows = [(t, y) for s in (b.train, b.validation, b.test) for t, y in zip(s.texts, s.labels)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "planted.csv", index=False)
    out = tmp_path / "audit.json"
    res = CliRunner().invoke(
        main,
        ["data", "audit", str(tmp_path / "planted.csv"), "--json", "--output", str(out), "--ngrams", "3"],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report == json.loads(out.read_text())
    assert report["cues"]["url"]["test_accuracy"] == 1.0 and len(report["ngrams"]["fake"]) == 3
    assert report["near_duplicates"]["train/test"]["pairs"] == 0


def test_audit_table_cells_are_whole_buckets_and_lines_fit():
    """The bucketed cues (caps_ratio, length, exclamations) show whole `bucket share` items, most common
    first, never a bucket cut mid-string; rows are `split n`, not a dict; every line fits 120 columns."""
    report = audit_data(synthetic(600, url=True), ngrams=5, duplicates=False)
    report["cues"]["length"]["per_split"]["train"]["fake"] = {"<=200": 0.45, "<=500": 0.35, "<=1000": 0.2}
    text = format_audit(report)
    assert "{" not in text and f"rows train {len(synthetic(600, url=True).train)}," in text
    length_row = next(line for line in text.splitlines() if line.startswith("length "))
    assert "<=200 45%" in length_row and "<=500" not in length_row  # the second does not fit whole
    cells = [c.strip() for part in length_row[17:].split("  ") for c in part.split(" / ") if c.strip()]
    assert all(cell.endswith("%") for cell in cells), length_row
    assert all(len(line) <= 120 for line in text.splitlines())
