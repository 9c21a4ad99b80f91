"""Shortcut audit of a dataset: surface cues per class, what each cue alone predicts, top n-grams, near-duplicates."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from edgefn.core.progress import wrap_line
from edgefn.data.cleaning import HANDLE, HANDLE_PLACEHOLDER, HASHTAG, URL, URL_PLACEHOLDER
from edgefn.data.dataset import SPLITS, DatasetBundle

STRONG_CUE = 0.60  # balanced accuracy on test of a classifier that sees only the cue
URL_OR_PLACEHOLDER = re.compile(URL.pattern + rf"|\b{URL_PLACEHOLDER}\b", re.IGNORECASE)
HANDLE_OR_PLACEHOLDER = re.compile(HANDLE.pattern + "|" + re.escape(HANDLE_PLACEHOLDER))
REUTERS = re.compile(r"\(reuters\)", re.IGNORECASE)
FEATURED = re.compile(r"featured image via", re.IGNORECASE)
TOP_DOMAINS = 20


@dataclass(frozen=True)
class Cue:
    """A surface feature of a text, as a category (a bucket for numeric features)."""

    name: str
    describe: str  # what "present" means, for the verdict line
    value: Callable[[str], str]
    binary: bool = True  # value is "yes" / "no"


def _yes(pattern: re.Pattern[str]) -> Callable[[str], str]:
    return lambda text: "yes" if pattern.search(text) else "no"


def _caps_bucket(text: str) -> str:
    letters = [c for c in text if c.isalpha()]
    ratio = sum(c.isupper() for c in letters) / len(letters) if letters else 0.0
    return next(f"<={b:.0%}" for b in (0.05, 0.1, 0.2, 0.4, 0.7, 1.0) if ratio <= b)


def _length_bucket(text: str) -> str:
    n = len(text)
    return next(f"<={b}" for b in (40, 80, 120, 200, 400, 1000, 3000, 10**12) if n <= b)


def _bangs(text: str) -> str:
    n = text.count("!")
    return str(n) if n < 3 else "3+"


def _domain(text: str) -> str:
    m = URL.search(text)
    if not m:
        return "none"
    url = m.group(0)
    host = urlparse(url if "://" in url else f"http://{url}").netloc.lower()
    return host.removeprefix("www.") or "none"


CUES = (
    Cue("url", "URL presence", _yes(URL_OR_PLACEHOLDER)),
    Cue("handle", "an @handle", _yes(HANDLE_OR_PLACEHOLDER)),
    Cue("hashtag", "a hashtag", _yes(HASHTAG)),
    Cue("edge_whitespace", "leading/trailing whitespace", lambda t: "yes" if t != t.strip() else "no"),
    Cue("reuters_dateline", "a '(Reuters)' dateline", _yes(REUTERS)),
    Cue("featured_image", "'Featured image via'", _yes(FEATURED)),
    Cue("caps_ratio", "the share of capital letters", _caps_bucket, binary=False),
    Cue("length", "the text length", _length_bucket, binary=False),
    Cue("exclamations", "the count of '!'", _bangs, binary=False),
    Cue("url_domain", "the URL's domain", _domain, binary=False),
)


def _balanced_accuracy(labels: list[int], preds: list[int]) -> float:
    recalls = [
        sum(p == c for p, y in zip(preds, labels) if y == c) / n
        for c in (0, 1)
        if (n := sum(y == c for y in labels))
    ]
    return float(sum(recalls) / len(recalls)) if recalls else 0.0


def _cue_report(cue: Cue, bundle: DatasetBundle) -> dict[str, Any]:
    """Per split the cue's rate (binary) or value shares (buckets) per class; a value -> majority-label
    classifier fitted on train and scored on test."""
    values = {s: [cue.value(t) for t in bundle.split(s).texts] for s in SPLITS}
    train_y = bundle.train.labels
    majority = int(sum(train_y) * 2 >= len(train_y))
    if cue.name == "url_domain":  # rare domains pooled, so the classifier cannot memorise one-off links
        keep = {v for v, _ in Counter(values["train"]).most_common(TOP_DOMAINS)}
        values = {s: [v if v in keep else "other" for v in vs] for s, vs in values.items()}
    votes: dict[str, list[int]] = {}
    for v, y in zip(values["train"], train_y):
        votes.setdefault(v, [0, 0])[y] += 1
    rule = {v: int(c[1] > c[0]) if c[0] != c[1] else majority for v, c in votes.items()}
    test_y = bundle.test.labels
    preds = [rule.get(v, majority) for v in values["test"]]
    out: dict[str, Any] = {
        "describe": cue.describe,
        "test_accuracy": float(np.mean([p == y for p, y in zip(preds, test_y)])) if test_y else 0.0,
        "test_balanced_accuracy": _balanced_accuracy(test_y, preds),
        "majority_accuracy": float(np.mean([y == majority for y in test_y])) if test_y else 0.0,
        "rule": dict(sorted(rule.items())),
        "per_split": {},
    }
    for s in SPLITS:
        labels = bundle.split(s).labels
        by_class: dict[str, Any] = {}
        for label, name in ((1, "fake"), (0, "real")):
            vs = [v for v, y in zip(values[s], labels) if y == label]
            if cue.binary:
                by_class[name] = float(np.mean([v == "yes" for v in vs])) if vs else 0.0
            else:
                counts = Counter(vs)
                by_class[name] = {v: n / len(vs) for v, n in counts.most_common(8)} if vs else {}
        out["per_split"][s] = by_class
    return out


def verdicts(report: dict[str, Any], threshold: float = STRONG_CUE) -> list[str]:
    """One line per strong cue: its balanced accuracy alone on test is at least `threshold`."""
    lines = []
    for name, c in report["cues"].items():
        if c["test_balanced_accuracy"] >= threshold:
            rates = ""
            if isinstance(c["per_split"]["train"]["fake"], float):
                t = c["per_split"]["train"]
                rates = f"; present in {t['fake']:.0%} of fake and {t['real']:.0%} of real training texts"
            lines.append(
                f"{c['describe'][0].upper()}{c['describe'][1:]} alone predicts the label with "
                f"{c['test_accuracy']:.0%} accuracy (balanced {c['test_balanced_accuracy']:.0%}, majority "
                f"class {c['majority_accuracy']:.0%}) on {report['name']} test{rates} [{name}]"
            )
    return lines


def _top_ngrams(bundle: DatasetBundle, n: int, max_rows: int | None) -> dict[str, Any]:
    """A TF-IDF (1-2 grams) logistic regression on train: its test accuracy and its heaviest n-grams."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train = bundle.train
    if max_rows is not None and len(train) > max_rows:
        idx = sorted(np.random.default_rng(0).choice(len(train), size=max_rows, replace=False).tolist())
        train = train.subset(idx)
    vec = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, max_features=100_000, sublinear_tf=True, lowercase=True
    )
    x = vec.fit_transform(train.texts)
    model = LogisticRegression(max_iter=1000, C=1.0).fit(x, train.labels)
    pred = model.predict(vec.transform(bundle.test.texts)).tolist()
    names = vec.get_feature_names_out()
    order = np.argsort(model.coef_[0])
    weight = model.coef_[0]
    return {
        "model": "TF-IDF 1-2 grams + logistic regression (C=1) on train",
        "test_accuracy": float(np.mean([p == y for p, y in zip(pred, bundle.test.labels)])),
        "test_balanced_accuracy": _balanced_accuracy(bundle.test.labels, pred),
        "fake": [[str(names[i]), round(float(weight[i]), 3)] for i in order[::-1][:n]],
        "real": [[str(names[i]), round(float(weight[i]), 3)] for i in order[:n]],
    }


def _shingles(text: str, k: int = 3) -> set[bytes]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < k:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + k]).encode() for i in range(len(words) - k + 1)}


def near_duplicates(
    bundle: DatasetBundle, threshold: float = 0.8, num_perm: int = 64, examples: int = 5
) -> dict[str, Any]:
    """Validation and test texts whose word 3-shingles are near a training text's (MinHash LSH, datasketch),
    and test texts near a validation text: counts per split pair and a few pairs with their exact Jaccard."""
    from datasketch import MinHash, MinHashLSH

    def sketches(texts: list[str]) -> list[tuple[set[bytes], Any]]:
        sets = [_shingles(t) for t in texts]
        hashes = MinHash.bulk([list(s) for s in sets], num_perm=num_perm, seed=1)
        return list(zip(sets, hashes))

    signed = {s: sketches(bundle.split(s).texts) for s in SPLITS}
    out: dict[str, Any] = {"method": f"MinHash LSH (datasketch), word 3-shingles, Jaccard >= {threshold}"}
    for base, query in (("train", "validation"), ("train", "test"), ("validation", "test")):
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        for i, (shingles, h) in enumerate(signed[base]):
            if shingles:
                lsh.insert(i, h)
        pairs = []
        for j, (shingles, h) in enumerate(signed[query]):
            if not shingles:
                continue
            for i in lsh.query(h):
                other = signed[base][i][0]
                jaccard = len(shingles & other) / len(shingles | other)
                if jaccard >= threshold:
                    pairs.append((jaccard, i, j))
                    break
        texts_b, texts_q = bundle.split(base), bundle.split(query)
        out[f"{base}/{query}"] = {
            "pairs": len(pairs),
            "share_of_" + query: len(pairs) / max(len(texts_q), 1),
            "same_label": sum(texts_b.labels[i] == texts_q.labels[j] for _, i, j in pairs),
            "examples": [
                {"jaccard": round(jac, 3), base: texts_b.texts[i][:200], query: texts_q.texts[j][:200]}
                for jac, i, j in sorted(pairs, reverse=True)[:examples]
            ],
        }
    return out


def audit_data(
    bundle: DatasetBundle,
    ngrams: int = 15,
    duplicates: bool = True,
    max_rows: int | None = 20_000,
) -> dict[str, Any]:
    """Shortcut audit of a dataset.

    Args:
        bundle: the loaded dataset (cleaning as the model would see it).
        ngrams: how many top n-grams per class from the linear model (0: skip the model).
        duplicates: look for near-duplicate pairs across splits (MinHash).
        max_rows: fit the linear model on at most this many training rows (a fixed sample).

    Returns:
        A JSON-ready dict: `cues` (per cue: per-split per-class rates, the cue-only classifier's test accuracy
        and balanced accuracy), `ngrams`, `near_duplicates`, `verdicts` (one line per strong cue).
    """
    report: dict[str, Any] = {
        "name": bundle.name,
        "rows": {s: len(bundle.split(s)) for s in SPLITS},
        "fake_share": {
            s: (sum(bundle.split(s).labels) / len(bundle.split(s)) if len(bundle.split(s)) else 0.0)
            for s in SPLITS
        },
        "cleaning": bundle.info.get("cleaning"),
        "strong_cue_threshold": STRONG_CUE,
        "cues": {cue.name: _cue_report(cue, bundle) for cue in CUES},
    }
    if ngrams:
        report["ngrams"] = _top_ngrams(bundle, ngrams, max_rows)
    if duplicates:
        report["near_duplicates"] = near_duplicates(bundle)
    report["verdicts"] = verdicts(report)
    return report


CELL = 13  # characters of one class's shares in the cue table


def _rate(v: Any, width: int = CELL) -> str:
    """A binary cue's rate, or a bucketed cue's most common buckets (as many whole ones as fit `width`)."""
    if isinstance(v, float):
        return f"{v:.1%}"
    if not v:
        return "-"
    parts = [f"{k} {share:.0%}" for k, share in sorted(v.items(), key=lambda kv: -kv[1])]
    cell = parts[0]
    for part in parts[1:]:
        if len(cell) + 2 + len(part) > width:
            break
        cell += ", " + part
    return cell


def format_audit(report: dict[str, Any]) -> str:
    """A readable audit: cue table (train and test rates per class, cue-only test accuracy), n-grams,
    near-duplicates and the verdict lines."""
    cleaning = report.get("cleaning") or {}
    lines = [
        f"dataset    {report['name']}  rows "
        + ", ".join(f"{split} {n:,}" for split, n in report["rows"].items()),
        f"cleaning   {'; '.join(cleaning.get('rules') or []) or 'none applied'}",
        "",
        f"{'cue':17s} {'train fake':>{CELL}s} / {'real':<{CELL}s}  {'test fake':>{CELL}s} / {'real':<{CELL}s}  "
        "alone: acc  bal.acc",
    ]
    for name, c in report["cues"].items():
        tr, te = c["per_split"]["train"], c["per_split"]["test"]
        lines.append(
            f"{name:17s} {_rate(tr['fake']):>{CELL}s} / {_rate(tr['real']):<{CELL}s}  "
            f"{_rate(te['fake']):>{CELL}s} / {_rate(te['real']):<{CELL}s}  "
            f"{c['test_accuracy']:10.1%} {c['test_balanced_accuracy']:8.1%}"
        )
    if "ngrams" in report:
        g = report["ngrams"]
        lines += [
            "",
            f"linear model ({g['model']}): test accuracy {g['test_accuracy']:.1%}, "
            f"balanced {g['test_balanced_accuracy']:.1%}",
            "  fake: " + ", ".join(t for t, _ in g["fake"]),
            "  real: " + ", ".join(t for t, _ in g["real"]),
        ]
    if "near_duplicates" in report:
        d = report["near_duplicates"]
        pairs = ", ".join(f"{k} {v['pairs']}" for k, v in d.items() if isinstance(v, dict))
        lines += ["", f"near-duplicates ({d['method']}): {pairs}"]
    lines += [""] + (
        report["verdicts"] or ["no strong cue (none alone reaches balanced accuracy 60% on test)"]
    )
    return "\n".join(wrap_line(line) for line in lines)
