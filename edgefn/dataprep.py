"""Dataset preparation shared by the loaders: label mapping, text joining, de-duplication, splits, tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefn.dataset import FAKE, SPLITS, DataOptions, DatasetBundle
from edgefn.errors import EdgefnError
from edgefn.runs import Split

if TYPE_CHECKING:
    import pandas as pd

UNOFFICIAL_SPLITS = "70/15/15 stratified, seed {seed}, after exact-duplicate removal"


def _show(values: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def require_columns(df: pd.DataFrame, cols: list[str], source: Path | str) -> None:
    """Raise a one-line error naming the missing columns and listing the columns found."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise EdgefnError(
            f"{source}: missing column(s) {', '.join(missing)}; columns found: "
            f"{', '.join(str(c) for c in df.columns)}"
        )


def join_text_columns(df: pd.DataFrame, cols: tuple[str, ...] | list[str], strip: bool = True) -> pd.Series:
    """Join text columns with a space (title + " " + text); missing values count as empty strings."""
    out = None
    for col in cols:
        part = df[col].fillna("").astype(str)
        part = part.str.strip() if strip else part
        out = part if out is None else out + " " + part
    assert out is not None
    return out.str.strip() if strip else out


def _label_strings(values: pd.Series) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_float_dtype(values) and bool((values.dropna() % 1 == 0).all()):
        values = values.astype("Int64")
    return values.astype(str).str.strip().where(values.notna(), "<missing>")


def map_labels(values: pd.Series, fake_label: str | None = None) -> Any:
    """Map a label column to 1 = fake / 0 = real (values compared as strings); raise listing bad values.

    Without `fake_label` the column must hold 0/1 (1 = fake) or fake/real (any case). With it, the value
    equal to `fake_label` is fake and the one other value present is real.
    """
    s = _label_strings(values)
    found = sorted(s.unique())
    if fake_label is not None:
        fake = str(fake_label).strip()
        others = [v for v in found if v != fake]
        if fake not in found:
            raise EdgefnError(f"--fake-label {fake!r} is not a label value; values found: {_show(found)}")
        if len(others) > 1:
            raise EdgefnError(
                f"unexpected label values {_show(others)}: with --fake-label {fake!r} "
                "only one other value (real) may be present"
            )
        return (s == fake).to_numpy().astype(int)
    low = s.str.lower()
    schemes = [(s, {"0", "1"}, "1"), (low, {"fake", "real"}, "fake")]
    column, allowed, fake = max(schemes, key=lambda sc: len(set(sc[0].unique()) & sc[1]))
    unexpected = sorted(set(column.unique()) - allowed)
    if unexpected:
        raise EdgefnError(
            f"unexpected label values {_show(unexpected)} (values found: {_show(found)}); "
            "expected 0/1 (1 = fake) or fake/real, or pass --fake-label VALUE"
        )
    return (column == fake).to_numpy().astype(int)


def make_info(
    name: str,
    source: str,
    *,
    text: str,
    label_map: str,
    rules: tuple[str, ...] = (),
    clean: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """The provenance record every loader starts from (splits, dropped and rows are added later)."""
    applied = bool(clean and rules)
    cleaning = {"applied": applied, "rules": list(rules) if applied else [], "available": list(rules)}
    return {
        "name": name,
        "source": source,
        "text": text,
        "label_map": label_map,
        "cleaning": cleaning,
        **extra,
    }


def _dedupe(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop empty texts, texts seen with both labels (all copies), then exact duplicates (keep first)."""
    empty = df["text"].str.strip() == ""
    df = df[~empty]
    conflict = df.groupby("text", sort=False)["label"].transform("nunique") > 1
    df = df[~conflict]
    dup = df.duplicated("text", keep="first")
    return df[~dup], {
        "empty": int(empty.sum()),
        "duplicate": int(dup.sum()),
        "conflicting_labels": int(conflict.sum()),
    }


def bundle_from_frame(name: str, df: pd.DataFrame, info: dict[str, Any], seed: int) -> DatasetBundle:
    """Clean a frame (text, label) without official splits and split it 70/15/15, stratified."""
    from sklearn.model_selection import train_test_split

    df, dropped = _dedupe(df)
    if len(df) == 0:
        raise EdgefnError(f"{name}: no data left after cleaning (dropped {dropped['empty']} empty texts)")
    y = df["label"].to_numpy()
    if len(set(y)) < 2:
        raise EdgefnError(
            f"{name}: every row is {'fake' if y[0] == FAKE else 'real'} after cleaning; "
            "a classifier needs both labels"
        )
    try:
        train, rest = train_test_split(range(len(df)), test_size=0.30, random_state=seed, stratify=y)
        val, test = train_test_split(rest, test_size=0.50, random_state=seed, stratify=y[rest])
    except ValueError as e:
        raise EdgefnError(
            f"{name}: too few rows ({len(df)} after cleaning) for stratified 70/15/15 splits: {e}"
        ) from None
    info["splits"] = UNOFFICIAL_SPLITS.format(seed=seed)
    info["dropped"] = {**dropped, "cross_split": {"validation": 0, "test": 0}}
    return _bundle(name, {"train": df.iloc[train], "validation": df.iloc[val], "test": df.iloc[test]}, info)


def bundle_from_splits(name: str, frames: dict[str, pd.DataFrame], info: dict[str, Any]) -> DatasetBundle:
    """Clean official splits: drop empties and duplicates, and texts already in an earlier split."""
    parts: dict[str, pd.DataFrame] = {}
    totals = {"empty": 0, "duplicate": 0, "conflicting_labels": 0}
    cross: dict[str, int] = {}
    seen: set[str] = set()
    for split in SPLITS:
        df, dropped = _dedupe(frames[split])
        for key, n in dropped.items():
            totals[key] += n
        overlap = df["text"].isin(seen)
        parts[split] = df[~overlap]
        seen.update(parts[split]["text"])
        if split != "train":
            cross[split] = int(overlap.sum())
    info["splits"] = "official"
    info["dropped"] = {**totals, "cross_split": cross}
    return _bundle(name, parts, info)


def _bundle(name: str, parts: dict[str, pd.DataFrame], info: dict[str, Any]) -> DatasetBundle:
    splits = {k: Split(df["text"].tolist(), [int(v) for v in df["label"]]) for k, df in parts.items()}
    for split, s in splits.items():
        if len(s) == 0:
            raise EdgefnError(f"{name}: the {split} split is empty after cleaning")
    info["rows"] = {k: len(s) for k, s in splits.items()}
    return DatasetBundle(name, splits["train"], splits["validation"], splits["test"], info=info)


# --- generic files ----------------------------------------------------------------------------------------


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV / TSV / JSONL / JSON / Parquet file into a DataFrame, with a one-line error if it fails."""
    import pandas as pd

    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        ".csv": pd.read_csv,
        ".tsv": lambda p: pd.read_csv(p, sep="\t"),
        ".tab": lambda p: pd.read_csv(p, sep="\t"),
        ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False),
        ".json": lambda p: pd.read_json(p, dtype=False),
        ".parquet": pd.read_parquet,
        ".pq": pd.read_parquet,
    }
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise EdgefnError(f"cannot read {path}: use a .csv, .tsv, .jsonl, .json or .parquet file")
    try:
        return reader(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise EdgefnError(
            f"cannot read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None


def load_generic(path: Path, options: DataOptions, name: str | None = None, **extra: Any) -> DatasetBundle:
    """A generic table: text = `options.text_cols` joined (default `text`), label from `options.label_col`."""
    import pandas as pd

    df = read_table(path)
    text_cols, label_col = options.text_cols or ("text",), options.label_col or "label"
    require_columns(df, [*text_cols, label_col], path)
    frame = pd.DataFrame(
        {"text": join_text_columns(df, text_cols), "label": map_labels(df[label_col], options.fake_label)}
    )
    fake = f"{options.fake_label!r}" if options.fake_label is not None else "1 or 'fake'"
    info = make_info(
        name or path.stem,
        str(path),
        text=" + ' ' + ".join(text_cols),
        label_map=f"{label_col} = {fake} -> fake (1), the other value -> real (0)",
        **extra,
    )
    return bundle_from_frame(name or path.stem, frame, info, options.seed)
