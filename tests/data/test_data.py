"""Dataset loaders on the real files in ../shared/data, generic files, bad inputs, inspect and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from edgefn.cli.commands import main
from edgefn.core.errors import EdgefnError
from edgefn.data.catalog import (
    SPLITS,
    DataOptions,
    DatasetBundle,
    Split,
    format_inspect,
    inspect_data,
    list_datasets,
    load_data,
)
from edgefn.data.loaders import REUTERS_DATELINE, SAMPLE_FILE, _read_liar

_CACHE: dict[tuple[str, DataOptions], DatasetBundle] = {}


def cached(spec: str, options: DataOptions | None = None) -> DatasetBundle:
    """Load each (spec, options) once per test session: the loaders are deterministic."""
    options = options or DataOptions()
    if (spec, options) not in _CACHE:
        _CACHE[(spec, options)] = load_data(spec, options)
    return _CACHE[(spec, options)]


def rows(bundle: DatasetBundle) -> dict[str, int]:
    """Rows per split."""
    return {name: len(bundle.split(name)) for name in SPLITS}


def fakes(bundle: DatasetBundle) -> dict[str, int]:
    """Fake rows per split."""
    return {name: sum(bundle.split(name).labels) for name in SPLITS}


def all_rows(bundle: DatasetBundle) -> list[tuple[str, int]]:
    """Every (text, label) of every split."""
    return [
        row
        for name in SPLITS
        for row in zip(bundle.split(name).texts, bundle.split(name).labels, strict=True)
    ]


# --- real datasets ----------------------------------------------------------------------------------------


def test_constraint_official_splits(shared_data: Path) -> None:
    """Raw CONSTRAINT keeps the official 6420/2140/2140 splits minus the one val tweet also in train."""
    b = cached(str(shared_data / "covid19-constraint"), DataOptions(clean=False))
    assert b.name == "constraint" and b.info["splits"] == "official"
    assert rows(b) == {"train": 6420, "validation": 2139, "test": 2140}
    assert fakes(b) == {"train": 3060, "validation": 1020, "test": 1020}
    assert b.info["dropped"] == {
        "empty": 0,
        "duplicate": 0,
        "conflicting_labels": 0,
        "cross_split": {"validation": 1, "test": 0},
    }
    assert b.info["rows"] == rows(b)
    assert "Alfalfa is the only cure for COVID-19." in b.test.texts
    assert b.test.labels[b.test.texts.index("Alfalfa is the only cure for COVID-19.")] == 1


def test_constraint_cleaning_deletes_urls_and_handles(shared_data: Path) -> None:
    """By default URLs and @handles are deleted (recorded in info); posts that then coincide are dropped."""
    b = cached(str(shared_data / "covid19-constraint"))
    assert b.info["cleaning"]["applied"] and b.info["cleaning"]["names"] == ["drop-urls", "drop-handles"]
    texts = [text for text, _ in all_rows(b)]
    assert not any("https://" in t or "http://" in t for t in texts)
    assert sum(bool(re.search(r"(?<!\w)@\w", t)) for t in texts) == 0
    assert rows(b) == {"train": 6372, "validation": 2105, "test": 2096}
    assert b.info["dropped"]["duplicate"] == 59 and b.info["dropped"]["cross_split"] == {
        "validation": 29,
        "test": 39,
    }
    placeholders = load_data(
        str(shared_data / "covid19-constraint"), DataOptions(clean_rules=("urls", "handles"))
    )
    assert sum("URL" in t.split() for t in placeholders.train.texts) > 2500


def test_liar_binary_map(shared_data: Path) -> None:
    """LIAR maps pants-fire/false/barely-true to fake: 4,497 of 10,269 raw train rows, as documented."""
    raw = _read_liar(shared_data / "liar" / "train.tsv")
    assert len(raw) == 10269 and int(raw["label"].sum()) == 842 + 1998 + 1657 == 4497
    b = cached(f"liar:{shared_data / 'liar'}")
    assert (
        b.info["label_map"]
        == "fake = {pants-fire, false, barely-true}, real = {half-true, mostly-true, true}"
    )
    assert rows(b) == {"train": 10248, "validation": 1279, "test": 1279}
    assert fakes(b) == {"train": 4486, "validation": 612, "test": 554}
    assert b.info["dropped"] == {
        "empty": 0,
        "duplicate": 13,
        "conflicting_labels": 8,
        "cross_split": {"validation": 5, "test": 4},
    }


def test_isot_titles_variant_detected_and_cleaned(shared_data: Path) -> None:
    """ISOT titles-only is detected; cleaning strips the leading spaces that 9,045 fake titles carry."""
    b = cached(str(shared_data / "isot" / "titles"))
    assert b.info["variant"] == "titles only" and b.info["text"] == "title"
    assert b.info["cleaning"]["applied"] is True
    assert sum(text != text.strip() for text, _ in all_rows(b)) == 0
    assert rows(b) == {"train": 27109, "validation": 5809, "test": 5810}
    assert sum(fakes(b).values()) == 17903 and sum(rows(b).values()) == 44898 - 6170
    assert b.info["dropped"]["duplicate"] == 6170
    assert b.info["splits"] == "70/15/15 stratified, seed 42, after exact-duplicate removal"
    raw = cached(str(shared_data / "isot" / "titles"), DataOptions(clean=False))
    assert raw.info["cleaning"]["applied"] is False
    assert sum(text.startswith(" ") for text, label in all_rows(raw) if label == 1) > 8000


def test_isot_cleaning_removes_dateline(shared_data: Path) -> None:
    """On full ISOT articles the Reuters dateline and 'Featured image' trailers go, unless cleaning is off."""
    folder = shared_data / "isot" / "fulltext_head"
    clean, raw = cached(f"isot:{folder}"), cached(f"isot:{folder}", DataOptions(clean=False))
    assert clean.info["variant"] == "full articles" and clean.info["text"] == "title + ' ' + text"

    def count(bundle: DatasetBundle, label: int, needle: str) -> int:
        return sum(needle in text.lower() for text, y in all_rows(bundle) if y == label)

    assert count(clean, 0, "(reuters) -") == 0 and count(raw, 0, "(reuters) -") == 977
    assert count(clean, 1, "featured image") == 0 and count(raw, 1, "featured image") == 856
    assert count(raw, 1, "(reuters)") == 0
    assert rows(clean) == {"train": 1414, "validation": 303, "test": 304}
    real_raw = pd.read_csv(folder / "True.csv")["text"]
    assert int(real_raw.str.match(REUTERS_DATELINE).sum()) == 983  # incl. correction notes, "WASHINGTON () -"


@pytest.mark.parametrize("spec", ["covid19-constraint", "liar", "isot/titles", "isot/fulltext_head"])
def test_no_text_in_two_splits(shared_data: Path, spec: str) -> None:
    """After loading, no text occurs twice in a split or in two splits."""
    b = cached(str(shared_data / spec))
    texts = [text for text, _ in all_rows(b)]
    assert len(texts) == len(set(texts)) == sum(b.info["rows"].values())
    assert all(text.strip() for text in texts)
    assert set(b.train.labels) == set(b.test.labels) == {0, 1}


def test_default_locations(shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Names look in $EDGEFN_DATA_DIR; isot falls back to isot/titles; WELFake offline names its options."""
    monkeypatch.chdir(tmp_path)  # no ../shared/data from here
    monkeypatch.setenv("EDGEFN_DATA_DIR", str(shared_data))
    assert load_data("constraint").info["source"] == str(shared_data / "covid19-constraint")
    assert cached("liar").info["source"] == str(shared_data / "liar")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        EdgefnError,
        match=r"put WELFake_Dataset.csv in .*/welfake/ or unset HF_HUB_OFFLINE to download davanstrien/WELFake",
    ):
        load_data("welfake")


def test_hub_copies_oriented_by_reuters_dateline(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_homes: dict[str, Path]
) -> None:
    """Hub copies (cards disagree on 0/1) get 1 = fake from the data: Reuters wire copy is the real class."""
    import edgefn.data.loaders

    folder = shared_data / "isot" / "fulltext_head"
    df = pd.concat(
        [pd.read_csv(folder / "Fake.csv").assign(label=0), pd.read_csv(folder / "True.csv").assign(label=1)]
    )
    df = df.sample(frac=1.0, random_state=0)  # hub label 1 = true, as the GonzaloA/fake_news card says
    frames = {"train": df.iloc[:1400], "validation": df.iloc[1400:1700], "test": df.iloc[1700:]}
    welfake = {"train": df.assign(label=1 - df["label"])}  # hub label 1 = fake, as in the WELFake CSV
    monkeypatch.setattr(
        edgefn.data.loaders, "_hub_frames", lambda hub_id: welfake if "WELFake" in hub_id else frames
    )
    b = load_data("isot")  # no local copy in the empty data homes
    assert b.info["source"] == "GonzaloA/fake_news" and b.info["splits"] == "official"
    assert b.info["label_map"].startswith("hub label 1 -> real (0)")
    local = cached(f"isot:{folder}")
    assert sum(fakes(b).values()) == sum(fakes(local).values()) and sum(rows(b).values()) == sum(
        rows(local).values()
    )
    assert sum("(reuters) -" in text.lower() for text, _ in all_rows(b)) == 0
    w = load_data("welfake")
    assert w.info["source"] == "davanstrien/WELFake" and w.info["label_map"].startswith(
        "hub label 0 -> real (0)"
    )
    assert sum(fakes(w).values()) == sum(fakes(local).values()) and sum(rows(w).values()) == 2021


# --- generic files and WELFake format ---------------------------------------------------------------------


def test_generic_csv_joined_columns_and_fake_label(tmp_path: Path) -> None:
    """A CSV with two text columns and a custom fake label value splits 70/15/15, stratified."""
    df = pd.DataFrame(
        {
            "headline": [f"headline {i}" for i in range(40)],
            "body": [f"body {i}" for i in range(40)],
            "verdict": ["bogus" if i % 2 else "legit" for i in range(40)],
        }
    )
    df.to_csv(tmp_path / "news.csv", index=False)
    opts = DataOptions(text_cols=("headline", "body"), label_col="verdict", fake_label="bogus")
    b = load_data(str(tmp_path / "news.csv"), opts)
    assert b.name == "news" and rows(b) == {"train": 28, "validation": 6, "test": 6}
    assert fakes(b) == {"train": 14, "validation": 3, "test": 3}
    assert dict(all_rows(b))["headline 3 body 3"] == 1 and dict(all_rows(b))["headline 4 body 4"] == 0


def test_generic_jsonl_drops_empty_duplicate_and_conflicting(tmp_path: Path) -> None:
    """JSONL with fake/real labels: empties, duplicates and texts seen with both labels are dropped."""
    lines = [{"text": f"story number {i}", "label": "fake" if i % 2 else "REAL"} for i in range(40)]
    lines += [
        {"text": "   ", "label": "fake"},
        {"text": "story number 1", "label": "fake"},
        {"text": "both ways", "label": "fake"},
        {"text": "both ways", "label": "real"},
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    b = load_data(str(tmp_path / "d.jsonl"))
    assert b.info["dropped"] == {
        "missing_label": 0,
        "empty": 1,
        "duplicate": 1,
        "conflicting_labels": 2,
        "cross_split": {"validation": 0, "test": 0},
    }
    assert sum(rows(b).values()) == 40 and sum(fakes(b).values()) == 20


def test_generic_parquet_and_tsv(tmp_path: Path) -> None:
    """Parquet with 0/1 labels (1 = fake) and TSV files load through the same path."""
    df = pd.DataFrame({"text": [f"claim {i}" for i in range(20)], "label": [i % 2 for i in range(20)]})
    df.to_parquet(tmp_path / "d.parquet")
    df.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    a, b = load_data(str(tmp_path / "d.parquet")), load_data(str(tmp_path / "d.tsv"))
    assert a.fingerprint() == b.fingerprint()
    assert dict(all_rows(a)) == {f"claim {i}": i % 2 for i in range(20)}


def test_welfake_format_detected(tmp_path: Path) -> None:
    """A WELFake-format CSV (`,title,text,label`, 1 = fake) is recognised; text = title + ' ' + text."""
    df = pd.DataFrame(
        {
            "title": ["t"] * 19 + [None],
            "text": [f"article {i}" for i in range(20)],
            "label": [i % 2 for i in range(20)],
        }
    )
    df.to_csv(tmp_path / "WELFake_Dataset.csv")
    b = load_data(str(tmp_path / "WELFake_Dataset.csv"))
    assert b.name == "welfake" and b.info["text"] == "title + ' ' + text"
    assert dict(all_rows(b))["t article 1"] == 1 and "article 19" in dict(all_rows(b))
    assert load_data(f"welfake:{tmp_path}").fingerprint() == b.fingerprint()
    df.to_csv(tmp_path / "other.csv")
    assert load_data(str(tmp_path / "other.csv")).name == "welfake"


def test_sample_corpus() -> None:
    """The packaged smoke-test corpus loads with 70/15/15 splits and says it is not a benchmark."""
    if not SAMPLE_FILE.is_file():
        pytest.skip("edgefn/resources/sample.jsonl not written yet")
    lines = [
        json.loads(line) for line in SAMPLE_FILE.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    b = load_data("sample")
    assert sum(rows(b).values()) == len({x["text"].strip() for x in lines})
    assert abs(len(b.train) - 0.70 * sum(rows(b).values())) <= 1
    assert "not a benchmark" in b.info["note"]


def test_same_seed_same_splits(shared_data: Path) -> None:
    """The split is a function of the seed: same seed, same fingerprint; another seed, other splits."""
    folder = str(shared_data / "isot" / "fulltext_head")
    a, b = load_data(folder), cached(folder)
    c = load_data(folder, DataOptions(seed=7))
    assert a.fingerprint() == b.fingerprint() and a.train.texts == b.train.texts
    assert c.fingerprint() != a.fingerprint() and rows(c) == rows(a)
    assert c.info["splits"] == "70/15/15 stratified, seed 7, after exact-duplicate removal"


# --- bad input --------------------------------------------------------------------------------------------


def write_csv(path: Path, data: dict[str, list]) -> str:
    """Write a small CSV and return its path as a string."""
    pd.DataFrame(data).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown", r"unknown dataset 'nosuch'; known datasets: constraint, isot, liar, sample, welfake"),
        ("missing_path", r"data path .*missing\.csv does not exist"),
        ("missing_named_path", r"isot: path .*nowhere does not exist"),
        ("missing_columns", r"missing column\(s\) body, verdict; columns found: text, label"),
        (
            "bad_labels",
            r"unexpected label values 'maybe', 'unsure' \(values found: 'fake', 'maybe', 'real', 'unsure'\)",
        ),
        ("fake_label_absent", r"--fake-label 'bogus' is not a label value; values found: '0', '1'"),
        ("empty", r"no data left after cleaning \(dropped 3 empty texts\)"),
        ("one_class", r"every row is fake after cleaning"),
        ("folder", r"cannot tell which dataset folder"),
    ],
)
def test_bad_input_messages(tmp_path: Path, case: str, message: str) -> None:
    """Each bad input raises a one-line EdgefnError that names the problem."""
    text = [f"t{i}" for i in range(6)]
    specs = {
        "unknown": ("nosuch", DataOptions()),
        "missing_path": (str(tmp_path / "missing.csv"), DataOptions()),
        "missing_named_path": (f"isot:{tmp_path / 'nowhere'}", DataOptions()),
        "missing_columns": (
            write_csv(tmp_path / "a.csv", {"text": text, "label": [0, 1] * 3}),
            DataOptions(text_cols=("text", "body"), label_col="verdict"),
        ),
        "bad_labels": (
            write_csv(
                tmp_path / "b.csv",
                {"text": text, "label": ["fake", "real", "maybe", "unsure"] + ["fake"] * 2},
            ),
            DataOptions(),
        ),
        "fake_label_absent": (
            write_csv(tmp_path / "c.csv", {"text": text, "label": [0, 1] * 3}),
            DataOptions(fake_label="bogus"),
        ),
        "empty": (
            write_csv(tmp_path / "d.csv", {"text": ["", " ", None], "label": [0, 1, 1]}),
            DataOptions(),
        ),
        "one_class": (write_csv(tmp_path / "e.csv", {"text": text, "label": ["fake"] * 6}), DataOptions()),
        "folder": (str(tmp_path), DataOptions()),
    }
    spec, options = specs[case]
    with pytest.raises(EdgefnError, match=message) as err:
        load_data(spec, options)
    assert "\n" not in str(err.value)


# --- inspect and CLI --------------------------------------------------------------------------------------


def test_inspect_counts_duplicates_overlap_and_tokens() -> None:
    """inspect_data counts duplicates and cross-split overlap itself and measures WordPiece lengths."""
    bundle = DatasetBundle(
        "hand",
        Split(["hello world", "hello world", "fake news"], [0, 0, 1]),
        Split(["fake news"], [1]),
        Split(["a b c d e f"], [0]),
        info={"name": "hand"},
    )
    report = inspect_data(bundle)
    assert report["per_split"]["train"]["duplicates"] == 1
    assert report["cross_split_overlap"] == {"train/validation": 1, "train/test": 0, "validation/test": 0}
    assert report["per_split"]["train"]["fake"] == 1 and report["per_split"]["train"]["real"] == 2
    assert report["per_split"]["train"]["tokens"]["p50"] == 4  # [CLS] hello world [SEP]
    assert report["per_split"]["test"]["tokens"]["max"] == 8


def test_inspect_constraint_report(shared_data: Path) -> None:
    """The CONSTRAINT report has the split sizes, balance, ordered percentiles and no overlap."""
    report = inspect_data(cached(str(shared_data / "covid19-constraint"), DataOptions(clean=False)))
    train = report["per_split"]["train"]
    assert (train["rows"], train["fake"], train["duplicates"]) == (6420, 3060, 0)
    t = train["tokens"]
    assert (
        20 < t["p50"] <= t["p90"] <= t["p95"] <= t["p99"] <= t["max"] and t["rows_measured"] == 5000
    )  # a fixed sample
    assert set(report["cross_split_overlap"].values()) == {0}
    text = format_inspect(report)
    assert "6420" in text and "47.7%" in text and "official" in text


def test_cli_data_inspect_and_list(shared_data: Path) -> None:
    """`edgefn data inspect` prints the table or JSON; bad input exits 2 with one line."""
    runner = CliRunner()
    out = runner.invoke(main, ["data", "inspect", f"liar:{shared_data / 'liar'}"])
    assert out.exit_code == 0, out.output
    assert "10248" in out.output and "pants-fire, false, barely-true" in out.output
    out = runner.invoke(
        main, ["data", "inspect", str(shared_data / "isot" / "fulltext_head"), "--no-clean", "--json"]
    )
    report = json.loads(out.output)
    assert report["cleaning"]["applied"] is False and report["per_split"]["train"]["rows"] == 1414
    out = runner.invoke(main, ["data", "inspect", "nosuch"])
    assert out.exit_code == 2 and out.output.count("\n") == 1 and "known datasets" in out.output
    out = runner.invoke(main, ["data", "list", "--json"])
    assert out.exit_code == 0 and [d["name"] for d in json.loads(out.output)["datasets"]] == list_datasets()


# --- messy files, one file per class, unions -----------------------------------------------------------------


def test_blank_rows_and_float_labels_are_dropped_and_counted(tmp_path: Path) -> None:
    """A CSV with blank rows (empty text, no label) and 1.0/0.0 labels loads; --strict refuses it."""
    n = 60
    df = pd.DataFrame(
        {"title": [f"headline {i}" for i in range(n)], "label": [float(i % 2) for i in range(n)]}
    )
    blank = pd.DataFrame({"title": [None] * 7, "label": [None] * 7})
    unlabelled = pd.DataFrame({"title": ["a story without a label"], "label": [None]})
    pd.concat([df, blank, unlabelled]).to_csv(tmp_path / "headlines.csv", index=False)
    b = load_data(str(tmp_path / "headlines.csv"), DataOptions(text_cols=("title",)))
    assert b.info["dropped"]["missing_label"] == 8 and b.info["dropped"]["empty"] == 0
    assert sum(rows(b).values()) == n and dict(all_rows(b))["headline 3"] == 1
    assert "without a label" in format_inspect(inspect_data(b))
    with pytest.raises(EdgefnError, match=r"unexpected label values '<missing>'"):
        load_data(str(tmp_path / "headlines.csv"), DataOptions(text_cols=("title",), strict=True))


def test_boolean_labels_map_true_to_fake(tmp_path: Path) -> None:
    """A True/False label column (with a blank) reads True as fake (1), like 1 = fake."""
    flags = [i % 3 == 0 for i in range(39)] + [None]
    df = pd.DataFrame({"text": [f"claim {i}" for i in range(40)], "is_fake": flags})
    df.to_csv(tmp_path / "b.csv", index=False)
    b = load_data(str(tmp_path / "b.csv"), DataOptions(label_col="is_fake"))
    labels = dict(all_rows(b))
    assert labels["claim 3"] == 1 and labels["claim 4"] == 0 and "claim 39" not in labels
    assert b.info["dropped"]["missing_label"] == 1


def test_one_file_or_folder_per_class(tmp_path: Path) -> None:
    """fake=FILE,real=FOLDER: a CSV's text column for one class, a folder of .txt files for the other."""
    pd.DataFrame({"headline": [f"made up {i}" for i in range(30)]}).to_csv(
        tmp_path / "bogus.csv", index=False
    )
    (tmp_path / "real").mkdir()
    for i in range(30):
        (tmp_path / "real" / f"{i}.txt").write_text(f"reported fact {i}\n", encoding="utf-8")
    spec = f"real={tmp_path / 'real'},fake={tmp_path / 'bogus.csv'}"
    b = load_data(spec)
    assert b.name == "bogus+real" and sum(rows(b).values()) == 60 and sum(fakes(b).values()) == 30
    assert dict(all_rows(b))["made up 4"] == 1 and dict(all_rows(b))["reported fact 4"] == 0
    assert "30 .txt files" in b.info["text"] and "headline" in b.info["text"]
    with pytest.raises(EdgefnError, match="give both fake=PATH and real=PATH"):
        load_data(f"fake={tmp_path / 'bogus.csv'}")


def test_clean_rules_for_generic_files(tmp_path: Path) -> None:
    """--clean rules apply to a generic file and are recorded; an unknown rule is refused with the list."""
    df = pd.DataFrame(
        {
            "text": [f"  post {i} @someone #tag https://t.co/x{i}  " for i in range(20)],
            "label": [i % 2 for i in range(20)],
        }
    )
    df.to_csv(tmp_path / "posts.csv", index=False)
    b = load_data(str(tmp_path / "posts.csv"), DataOptions(clean_rules=("drop-urls", "handles", "hashtags")))
    assert dict(all_rows(b))["post 3 @USER tag"] == 1
    assert b.info["cleaning"]["names"] == ["drop-urls", "handles", "hashtags"]
    with pytest.raises(EdgefnError, match=r"unknown cleaning rule\(s\) 'nope'; known: urls, drop-urls"):
        load_data(str(tmp_path / "posts.csv"), DataOptions(clean_rules=("nope",)))


def test_union_keeps_sources(shared_data: Path, tmp_path: Path) -> None:
    """constraint+liar: per-source caps and counts; every row keeps its source, also in data/ files."""
    from edgefn.runs import read_split_jsonl, write_split_jsonl

    spec = f"constraint:{shared_data / 'covid19-constraint'}+liar:{shared_data / 'liar'}"
    u = load_data(spec, DataOptions(max_train_per_source=500))
    c, liar = cached(str(shared_data / "covid19-constraint")), cached(f"liar:{shared_data / 'liar'}")
    assert u.name == "constraint+liar"
    assert u.info["rows_per_source"]["constraint"] == {"train": 500, "validation": 2105, "test": 2096}
    assert u.info["rows_per_source"]["liar"]["train"] == 500 and u.info["max_train_per_source"] == 500
    assert len(u.test) == len(c.test) + len(liar.test)
    assert u.test.sources is not None and set(u.test.sources) == {"constraint", "liar"}
    assert u.test.sources[u.test.texts.index(liar.test.texts[0])] == "liar"
    assert set(u.train.texts) <= set(c.train.texts) | set(liar.train.texts)
    write_split_jsonl(u.test, tmp_path / "test.jsonl")
    assert read_split_jsonl(tmp_path / "test.jsonl") == u.test


def test_union_finetune_keeps_per_source_metrics(tmp_path: Path) -> None:
    """`edgefn finetune --data a.jsonl+b.jsonl`: test metrics per source add up, data/ rows keep their source,
    and the summary prints balanced accuracy per source and the shortcut verdicts."""
    from edgefn.runs import RunFolder

    for name, cue in (("alpha", "https://a.example/x"), ("beta", "")):
        lines = [
            {"text": f"{name} item {i} {cue if i % 2 == 0 else ''}".strip(), "label": i % 2}
            for i in range(80)
        ]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    spec = f"{tmp_path / 'alpha.jsonl'}+{tmp_path / 'beta.jsonl'}"
    out = CliRunner().invoke(
        main,
        ["finetune", "test-tiny-bert", "--data", spec, "--epochs", "1", "--max-length", "32"]
        + ["--init", "scratch", "--run-dir", str(tmp_path / "run")],
    )
    assert out.exit_code == 0, out.output
    run = RunFolder(tmp_path / "run")
    metrics = run.read_metrics()
    by_source = metrics["test_by_source"]
    assert (
        set(by_source) == {"alpha", "beta"}
        and by_source["alpha"]["n"] + by_source["beta"]["n"] == metrics["test"]["n"]
    )
    assert metrics["data"]["rows_per_source"]["alpha"]["test"] == by_source["alpha"]["n"] == 12
    assert run.read_split("test").sources.count("beta") == 12
    assert {"balanced_accuracy", "f1_macro", "roc_auc", "ece"} <= set(metrics["test"])
    assert any("[url]" in v for v in metrics["shortcut_verdicts"])
    assert (
        "test on alpha: 12 rows, balanced accuracy" in out.output and "shortcut: URL presence" in out.output
    )
