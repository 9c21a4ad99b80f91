"""Dataset preparation shared by the loaders: label mapping, text joining, de-duplication, splits, generic files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefn.core.errors import EdgefnError
from edgefn.data.cleaning import apply_rules, describe_rules
from edgefn.data.dataset import FAKE, SPLITS, DataOptions, DatasetBundle
from edgefn.data.tables import (
    TABLE_SUFFIXES,
    blank_rows,
    dropped_blank,
    read_document,
    read_lines,
    read_table,
    require_texts,
)
from edgefn.runs import Split

if TYPE_CHECKING:
    import pandas as pd

UNOFFICIAL_SPLITS = "70/15/15 stratified, seed {seed}, after exact-duplicate removal"
MISSING = "<missing>"


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


def _label_string(value: Any) -> str:
    """One label as a string: 1.0 / 0.0 read as "1" / "0", booleans as "1" (True) / "0" (False)."""
    import numpy as np
    import pandas as pd

    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    try:
        if pd.isna(value):
            return MISSING
    except (TypeError, ValueError):  # a list or dict read from JSON: no scalar
        pass
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip() or MISSING


def _label_strings(values: pd.Series) -> pd.Series:
    """Labels as strings (`_label_string` of each value; MISSING for NaN, None or blank)."""
    return values.map(_label_string)


def _label_shown(values: pd.Series) -> pd.Series:
    """Labels as the file spells them, for messages: booleans as True / False, 1.0 as 1."""
    import numpy as np

    return values.map(lambda v: str(bool(v)) if isinstance(v, (bool, np.bool_)) else _label_string(v))


def _canonical(label: str) -> str:
    """A label as --fake-label matches it: in any case, true / false as 1 / 0, 1.0 as 1."""
    low = label.strip().lower()
    if low in ("true", "false"):
        return str(int(low == "true"))
    try:
        number = float(low)
    except ValueError:
        return low
    return str(int(number)) if number.is_integer() else low


def _first_row(values: pd.Series, mask: Any) -> str:
    """Where the first row of `mask` is: its data row in the file (1-based, the header not counted)."""
    import numpy as np

    pos = int(np.flatnonzero(np.asarray(mask))[0])
    key = values.index[pos]
    return f"data row {int(key) + 1 if isinstance(key, (int, np.integer)) else pos + 1}"


def missing_labels(values: pd.Series) -> Any:
    """A boolean mask of rows without a label (NaN, None or blank)."""
    return (_label_strings(values) == MISSING).to_numpy()


def map_labels(values: pd.Series, fake_label: str | None = None, source: Path | str | None = None) -> Any:
    """Map a label column to 1 = fake / 0 = real; raise naming the bad values and the first row holding one.

    Without `fake_label` the column must hold 0/1 (1 = fake; 1.0 and True count as 1) or fake/real (any
    case). With it, the values matching `fake_label` (any case; TRUE, true and 1 match a boolean True; 1
    matches 1.0) are fake and the one other value present is real.
    """
    where = f"{source}: " if source is not None else ""
    s = _label_strings(values)
    shown = _label_shown(values)
    if fake_label is not None:
        canon = s.map(_canonical)
        fake = _canonical(str(fake_label))
        if not (canon == fake).any():
            raise EdgefnError(
                f"{where}--fake-label {fake_label!r} is not a label value; values found: "
                f"{_show(sorted(shown.unique()))}"
            )
        others = canon[canon != fake]
        if others.nunique() > 1:
            odd = canon.isin(others.unique()[1:])
            raise EdgefnError(
                f"{where}unexpected label values {_show(sorted(shown[canon != fake].unique()))} "
                f"({_first_row(values, odd)} holds {shown[odd].iloc[0]!r}): with --fake-label "
                f"{fake_label!r} only one other value (real) may be present"
            )
        return (canon == fake).to_numpy().astype(int)
    low = s.str.lower()
    schemes = [(s, {"0", "1"}, "1"), (low, {"fake", "real"}, "fake")]
    column, allowed, fake = max(schemes, key=lambda sc: len(set(sc[0].unique()) & sc[1]))
    bad = ~column.isin(allowed)
    if bad.any():
        raise EdgefnError(
            f"{where}unexpected label values {_show(sorted(shown[bad].unique()))} (values found: "
            f"{_show(sorted(shown.unique()))}), the first in {_first_row(values, bad)}; "
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
    rule_names: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    """The provenance record every loader starts from (splits, dropped and rows are added later)."""
    applied = bool(clean and rules)
    cleaning = {"applied": applied, "rules": list(rules) if applied else [], "available": list(rules)}
    if rule_names:
        cleaning["names"] = list(rule_names) if applied else []
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
    dropped = {**info.pop("dropped_before", {}), **dropped}
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
    info["dropped"] = {**info.pop("dropped_before", {}), **totals, "cross_split": cross}
    return _bundle(name, parts, info)


def _bundle(name: str, parts: dict[str, pd.DataFrame], info: dict[str, Any]) -> DatasetBundle:
    splits = {k: Split(df["text"].tolist(), [int(v) for v in df["label"]]) for k, df in parts.items()}
    for split, s in splits.items():
        if len(s) == 0:
            raise EdgefnError(f"{name}: the {split} split is empty after cleaning")
    info["rows"] = {k: len(s) for k, s in splits.items()}
    return DatasetBundle(name, splits["train"], splits["validation"], splits["test"], info=info)


# --- generic files ----------------------------------------------------------------------------------------


def load_generic(path: Path, options: DataOptions, name: str | None = None, **extra: Any) -> DatasetBundle:
    """A generic table: text = `options.text_cols` joined (default `text`), label from `options.label_col`."""
    import pandas as pd

    df = read_table(path)
    text_cols, label_col = options.text_cols or ("text",), options.label_col or "label"
    require_columns(df, [*text_cols, label_col], path)
    require_texts(df, text_cols, path)
    df, n_missing = drop_unlabelled(df, label_col, options.strict)
    rules = options.clean_rules if options.clean else ()
    frame = pd.DataFrame(
        {
            "text": apply_rules(join_text_columns(df, text_cols), rules),
            "label": map_labels(df[label_col], options.fake_label, path),
        }
    )
    fake = f"{options.fake_label!r}" if options.fake_label is not None else "1, True or 'fake'"
    info = make_info(
        name or path.stem,
        str(path),
        text=" + ' ' + ".join(text_cols),
        label_map=f"{label_col} = {fake} -> fake (1), the other value -> real (0)",
        rules=describe_rules(options.clean_rules),
        clean=options.clean,
        rule_names=options.clean_rules,
        **extra,
    )
    info["dropped_before"] = {**dropped_blank(blank_rows(df)), "missing_label": n_missing}
    return bundle_from_frame(name or path.stem, frame, info, options.seed)


def drop_unlabelled(df: pd.DataFrame, label_col: str, strict: bool) -> tuple[pd.DataFrame, int]:
    """Drop rows without a label and count them; with `strict` keep them (map_labels then refuses them)."""
    missing = missing_labels(df[label_col])
    if strict or not missing.any():
        return df, 0
    return df[~missing], int(missing.sum())


# --- one file or folder per class -------------------------------------------------------------------------


def _class_texts(path: Path, options: DataOptions) -> tuple[pd.Series, str, int]:
    """The texts of one class and the blank rows dropped from them: a table (text columns as given, else
    title + text, text or title), a .txt file (one text per line, blank lines kept as empty texts, which
    cleaning drops and counts), or a folder of .txt files (one text each) and/or tables."""
    import pandas as pd

    if not path.exists():
        raise EdgefnError(f"data path {path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".txt", *TABLE_SUFFIXES))
        if not files:
            raise EdgefnError(f"{path} holds no .txt or table files")
        docs = [p for p in files if p.suffix.lower() == ".txt"]
        parts = [pd.Series([read_document(p) for p in docs], dtype=object)]
        how = {f"{len(docs)} .txt files, one text each"} if docs else set()
        blank = 0
        for table in (p for p in files if p.suffix.lower() != ".txt"):
            texts, what, n = _class_texts(table, options)
            parts.append(texts)
            how.add(what)
            blank += n
        return pd.concat(parts, ignore_index=True), "; ".join(sorted(how)), blank
    if path.suffix.lower() == ".txt":
        return pd.Series(read_lines(path), dtype=object), "one text per line", 0
    df = read_table(path)
    cols = list(options.text_cols) or _default_text_cols(df, path)
    require_columns(df, cols, path)
    require_texts(df, cols, path)
    return join_text_columns(df, cols), " + ' ' + ".join(cols), blank_rows(df)


def _default_text_cols(df: pd.DataFrame, path: Path) -> list[str]:
    if {"title", "text"} <= set(df.columns):
        return ["title", "text"]
    for col in ("text", "title", "tweet", "statement", "headline", "content"):
        if col in df.columns:
            return [col]
    raise EdgefnError(
        f"{path}: no text column (text, title, tweet, statement, headline, content); "
        f"pass --text-col; columns found: {', '.join(map(str, df.columns))}"
    )


def load_class_files(files: dict[int, Path], options: DataOptions) -> DatasetBundle:
    """One file or folder per class (`fake=Fake.csv,real=True.csv`): the file names the label."""
    import pandas as pd

    frames, how, blank = [], {}, 0
    for label, path in files.items():
        texts, what, n = _class_texts(path, options)
        blank += n
        frames.append(pd.DataFrame({"text": texts.fillna("").astype(str).str.strip(), "label": label}))
        how[("real", "fake")[label]] = f"{path} ({what})"
    frame = pd.concat(frames, ignore_index=True)
    rules = options.clean_rules if options.clean else ()
    frame["text"] = apply_rules(frame["text"], rules)
    name = "+".join(files[k].stem for k in sorted(files, reverse=True))
    info = make_info(
        name,
        ", ".join(f"{k}={v}" for k, v in how.items()),
        text="; ".join(f"{k}: {v}" for k, v in how.items()),
        label_map="by file: "
        + ", ".join(f"{files[k]} -> {('real', 'fake')[k]} ({k})" for k in sorted(files)),
        rules=describe_rules(options.clean_rules),
        clean=options.clean,
        rule_names=options.clean_rules,
    )
    info["dropped_before"] = dropped_blank(blank)
    return bundle_from_frame(name, frame, info, options.seed)
