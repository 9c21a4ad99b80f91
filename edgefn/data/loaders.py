"""The named datasets (welfake, isot, constraint, liar, sample), registered in `edgefn.data.catalog`."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefn.core.errors import EdgefnError
from edgefn.data.cleaning import FEATURED_IMAGE, REUTERS_DATELINE, apply_rules, describe_rules
from edgefn.data.dataprep import (
    bundle_from_frame,
    bundle_from_splits,
    join_text_columns,
    load_generic,
    make_info,
    map_labels,
    require_columns,
)
from edgefn.data.dataset import FAKE, REAL, SPLITS, DataOptions, DatasetBundle, register_dataset
from edgefn.data.tables import blank_rows, dropped_blank, read_csv

if TYPE_CHECKING:
    import pandas as pd

WELFAKE_HUB, ISOT_HUB = "davanstrien/WELFake", "GonzaloA/fake_news"
LIAR_FAKE = ("pants-fire", "false", "barely-true")
LIAR_REAL = ("half-true", "mostly-true", "true")
LIAR_MAP = f"fake = {{{', '.join(LIAR_FAKE)}}}, real = {{{', '.join(LIAR_REAL)}}}"
# ISOT shortcut cues (../shared/data/README.md): REUTERS_DATELINE and FEATURED_IMAGE in cleaning.
ISOT_RULES = (
    "strip leading/trailing spaces of titles",
    "remove the '... (Reuters) - ' dateline at the start",
    "remove the 'Featured image via ...' trailer",
    "subject and date are never model inputs",
)
SAMPLE_FILE = Path(__file__).parents[1] / "resources" / "sample.jsonl"


def _read_csv(path: Path, strict: bool = True, **kwargs: Any) -> pd.DataFrame:
    """A dataset's CSV file, read strictly (`tables.read_csv`) unless `strict` is off (LIAR's unquoted TSV)
    or only the header is read (`nrows=0`)."""
    import pandas as pd

    if not strict or "nrows" in kwargs:
        if not path.is_file():
            raise EdgefnError(f"missing data file {path}")
        try:
            return pd.read_csv(path, **kwargs)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
            raise EdgefnError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
    return read_csv(path, **kwargs)


def _hub_frames(hub_id: str) -> dict[str, pd.DataFrame] | None:
    """Splits of a hub dataset as DataFrames; None when offline and not cached."""
    import datasets

    from edgefn.core.weights import hub_reachable

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    if not offline and not hub_reachable():
        return None  # fail at once with the local options instead of minutes of retries
    try:
        ds = datasets.load_dataset(hub_id)
    except Exception as e:  # datasets raises many types (connection, not found, offline mode)
        if offline:
            return None
        raise EdgefnError(
            f"cannot load {hub_id} from the Hugging Face hub: {str(e).splitlines()[0]}"
        ) from None
    return {split: ds[split].to_pandas() for split in ds}


def _orient_by_reuters(df: pd.DataFrame) -> tuple[Any, str]:
    """Fake labels for a hub copy whose card may state the label meaning wrongly: Reuters copy is real."""
    has_dateline = df["text"].fillna("").astype(str).str.contains("(Reuters)", regex=False)
    share = has_dateline.groupby(df["label"]).mean()
    real_value = share.idxmax()
    real_value = real_value.item() if hasattr(real_value, "item") else real_value  # numpy -> Python scalar
    note = (
        f"hub label {real_value!r} -> real (0), the other -> fake (1); checked on the data: "
        f"{share[real_value]:.0%} of label-{real_value!r} texts carry a Reuters dateline, "
        f"{share.drop(real_value).max():.0%} of the others"
    )
    return real_value, note


# --- welfake ----------------------------------------------------------------------------------------------


def _is_welfake(path: Path) -> bool:
    if path.is_dir():
        return any(path.glob("WELFake*.csv"))
    if path.suffix.lower() != ".csv":
        return False
    if path.name.lower().startswith("welfake"):
        return True
    return {"title", "text", "label"} <= set(_read_csv(path, nrows=0).columns)


def _welfake_bundle(df: pd.DataFrame, source: str, label_map: str, options: DataOptions) -> DatasetBundle:
    import pandas as pd

    frame = pd.DataFrame({"text": join_text_columns(df, ["title", "text"]), "label": df["label"]})
    info = make_info("welfake", source, text="title + ' ' + text", label_map=label_map)
    info["dropped_before"] = dropped_blank(blank_rows(df))
    return bundle_from_frame("welfake", frame, info, options.seed)


def _welfake_hub(options: DataOptions) -> DatasetBundle | None:
    frames = _hub_frames(WELFAKE_HUB)
    if frames is None:
        return None
    df = frames["train"]
    real_value, note = _orient_by_reuters(df)
    df = df.assign(label=(df["label"] != real_value).astype(int))
    return _welfake_bundle(df, WELFAKE_HUB, note, options)


@register_dataset(
    "welfake",
    detect=_is_welfake,
    folders=("welfake", "."),
    hint="WELFake_Dataset.csv",
    hub_id=WELFAKE_HUB,
    load_hub=_welfake_hub,
    source='Zenodo or Kaggle, "WELFake" (72,134 articles)',
)
def load_welfake(path: Path, options: DataOptions) -> DatasetBundle:
    """WELFake (72,134 articles): a CSV `,title,text,label` with label 1 = fake, or a folder holding it."""
    files = sorted(path.glob("WELFake*.csv")) if path.is_dir() else [path]
    if not files:
        raise EdgefnError(f"welfake: no WELFake*.csv in {path}")
    df = _read_csv(files[0])
    require_columns(df, ["title", "text", "label"], files[0])
    df = df.assign(label=map_labels(df["label"], options.fake_label, files[0]))
    return _welfake_bundle(
        df, str(files[0]), "label 1 -> fake (1), 0 -> real (0), as in the distributed CSV", options
    )


# --- isot -------------------------------------------------------------------------------------------------


def _is_isot(path: Path) -> bool:
    return (path / "Fake.csv").is_file() and (path / "True.csv").is_file()


def isot_text(title: pd.Series, body: pd.Series | None, clean: bool) -> pd.Series:
    """Model input for ISOT rows: title (+ " " + article), with the shortcut cues removed when `clean`."""
    title = title.fillna("").astype(str)
    if body is None:
        return title.str.strip() if clean else title
    body = body.fillna("").astype(str)
    if not clean:
        return title + " " + body
    body = body.str.replace(REUTERS_DATELINE, "", regex=True).str.replace(FEATURED_IMAGE, "", regex=True)
    return (title.str.strip() + " " + body.str.strip()).str.strip()


def _isot_info(source: str, variant: str, label_map: str, clean: bool) -> dict[str, Any]:
    text = "title" if variant == "titles only" else "title + ' ' + text"
    return make_info(
        "isot", source, text=text, label_map=label_map, rules=ISOT_RULES, clean=clean, variant=variant
    )


def _isot_hub(options: DataOptions) -> DatasetBundle | None:
    import pandas as pd

    frames = _hub_frames(ISOT_HUB)
    if frames is None:
        return None
    real_value, note = _orient_by_reuters(frames["train"])
    out = {
        split: pd.DataFrame(
            {
                "text": isot_text(df["title"], df["text"], options.clean),
                "label": (df["label"] != real_value).astype(int),
            }
        )
        for split, df in frames.items()
    }
    return bundle_from_splits("isot", out, _isot_info(ISOT_HUB, "full articles", note, options.clean))


@register_dataset(
    "isot",
    detect=_is_isot,
    folders=("isot", "isot/titles"),
    hint="Fake.csv and True.csv",
    hub_id=ISOT_HUB,
    load_hub=_isot_hub,
    source='University of Victoria, "ISOT Fake News Dataset" (News_dataset.zip)',
)
def load_isot(path: Path, options: DataOptions) -> DatasetBundle:
    """ISOT: a folder with Fake.csv + True.csv, full articles or the titles-only variant (detected)."""
    import pandas as pd

    files = {FAKE: path / "Fake.csv", REAL: path / "True.csv"}
    tables = {label: _read_csv(file) for label, file in files.items()}
    for label, df in tables.items():
        require_columns(df, ["title"], files[label])
    has_text = {"text" in df.columns for df in tables.values()}
    if len(has_text) != 1:
        raise EdgefnError(f"isot: only one of Fake.csv and True.csv in {path} has a text column")
    full = has_text == {True}
    frame = pd.concat(
        [
            pd.DataFrame(
                {"text": isot_text(df["title"], df["text"] if full else None, options.clean), "label": label}
            )
            for label, df in tables.items()
        ],
        ignore_index=True,
    )
    info = _isot_info(
        str(path),
        "full articles" if full else "titles only",
        "Fake.csv -> fake (1), True.csv -> real (0)",
        options.clean,
    )
    info["dropped_before"] = dropped_blank(blank_rows(*tables.values()))
    return bundle_from_frame("isot", frame, info, options.seed)


# --- constraint -------------------------------------------------------------------------------------------

CONSTRAINT_FILES = {
    "train": "Constraint_Train.csv",
    "validation": "Constraint_Val.csv",
    "test": "english_test_with_labels.csv",
}
# CONSTRAINT shortcut cues: 69% of real posts carry a URL against 33% of fake ones, 28% an @handle against
# 8%. They are deleted, not replaced by a placeholder: with "URL" in their place, URL presence alone still
# predicts the label with 69% accuracy (`edgefn data audit constraint --clean urls,handles`), and texts
# from elsewhere, which carry no URL, are then read as fake.
CONSTRAINT_RULES = ("drop-urls", "drop-handles")


def _is_constraint(path: Path) -> bool:
    return path.is_dir() and any(path.glob("Constraint_*.csv"))


@register_dataset(
    "constraint",
    detect=_is_constraint,
    folders=("covid19-constraint", "constraint"),
    hint="Constraint_Train.csv, Constraint_Val.csv and english_test_with_labels.csv",
    source="github.com/diptamath/covid_fake_news, folder data/ (CONSTRAINT@AAAI-2021 shared task)",
)
def load_constraint(path: Path, options: DataOptions) -> DatasetBundle:
    """CONSTRAINT@AAAI-2021 COVID-19 posts: official train / val / test (test labels from the labelled file)."""
    import pandas as pd

    rules = options.clean_rules or CONSTRAINT_RULES
    frames, blank = {}, 0
    for split, name in CONSTRAINT_FILES.items():
        df = _read_csv(path / name)
        blank += blank_rows(df)
        require_columns(df, ["tweet", "label"], path / name)
        text = join_text_columns(df, ["tweet"])
        frames[split] = pd.DataFrame(
            {
                "text": apply_rules(text, rules) if options.clean else text,
                "label": map_labels(df["label"], source=path / name),
            }
        )
    info = make_info(
        "constraint",
        str(path),
        text="tweet",
        label_map="fake -> fake (1), real -> real (0)",
        rules=describe_rules(rules),
        clean=options.clean,
        rule_names=rules,
        files=CONSTRAINT_FILES,
    )
    info["dropped_before"] = dropped_blank(blank)
    return bundle_from_splits("constraint", frames, info)


# --- liar -------------------------------------------------------------------------------------------------

LIAR_FILES = {"train": "train.tsv", "validation": "valid.tsv", "test": "test.tsv"}


def _is_liar(path: Path) -> bool:
    return path.is_dir() and all((path / name).is_file() for name in LIAR_FILES.values())


def _read_liar(path: Path) -> pd.DataFrame:
    import pandas as pd

    df = _read_csv(
        path, strict=False, sep="\t", header=None, quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False
    )
    if df.shape[1] != 14:
        raise EdgefnError(f"liar: {path} has {df.shape[1]} columns, expected 14 (LIAR TSV without header)")
    labels = df[1].str.strip()
    unexpected = sorted(set(labels) - set(LIAR_FAKE + LIAR_REAL))
    if unexpected:
        raise EdgefnError(f"liar: unexpected label values {', '.join(map(repr, unexpected))} in {path}")
    return pd.DataFrame({"text": df[2].str.strip(), "label": labels.isin(LIAR_FAKE).astype(int)})


@register_dataset(
    "liar",
    detect=_is_liar,
    folders=("liar",),
    hint="train.tsv, valid.tsv and test.tsv",
    source="LIAR v1.0 (Wang, ACL 2017), e.g. github.com/nishitpatel01/Fake_News_Detection, folder liar_dataset/",
)
def load_liar(path: Path, options: DataOptions) -> DatasetBundle:
    """LIAR (PolitiFact statements): official splits, six-way labels mapped to binary (map in info)."""
    frames = {split: _read_liar(path / LIAR_FILES[split]) for split in SPLITS}
    info = make_info("liar", str(path), text="statement (column 3)", label_map=LIAR_MAP, files=LIAR_FILES)
    return bundle_from_splits("liar", frames, info)


# --- sample -----------------------------------------------------------------------------------------------


@register_dataset(
    "sample",
    builtin=SAMPLE_FILE,
    hint="edgefn/resources/sample.jsonl",
    source="packaged with edgefn: 400 invented short items, a smoke test, not a benchmark",
)
def load_sample(path: Path, options: DataOptions) -> DatasetBundle:
    """The small smoke-test corpus shipped with edgefn (JSON lines {"text", "label": fake|real})."""
    return load_generic(
        path,
        DataOptions(seed=options.seed),
        name="sample",
        note="a small smoke-test corpus written for the edgefn project, not a benchmark",
    )
