"""The cleaning rules: one set of patterns for training (pandas) and serving (per text, and the web page's JS)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pandas as pd
import pytest

from edgefn.core.cleaning import RULES, clean_text, clean_texts, serving_rules
from edgefn.core.errors import EdgefnError
from edgefn.data.cleaning import apply_rules
from edgefn.package.webbuild import WEB_SOURCES
from edgefn.runs.manifests import VariantManifest

TRICKY = [
    "",
    "   ",
    "Read https://t.co/abc123 and www.example.com/x?y=1!",
    "HTTPS://EXAMPLE.COM/Path HtTp://a.b WWW.X.ORG",
    "httpſ://long-s.example and http:// alone, www. alone",
    "mail me at a@b.com, @user1 @@double @a@b chain, a@@b, __@x, x_@y, @ alone, @_",
    "café@name @名前 @١٢٣ #تست #hash_tag x#no ##two #",
    "emoji 😀 @user😀 #tag😀 https://x.y/😀 ok",
    "astral 𝒜𝒷 @𝒜𝒷 #𝒜𝒷 and digits @٣ #²",
    "combining e\u0301 @e\u0301x #e\u0301 @x\u0301y",
    "WASHINGTON (Reuters) - The vote was held.",
    "WASHINGTON () \u2013 text after an en dash",
    "Title\u00a0(Reuters)\u2014\u3000body after an em dash",
    "x" * 260 + " (Reuters) - too far for the dateline",
    "(Reuters)-no spaces",
    "body text. Featured image via Getty\n",
    "body FEATURED İMAGE via x",
    "body featured ımage via y\n\n",
    *("body featured image " + "a" * n + "\n" for n in (198, 199, 200)),  # "$" before a final newline
    "body featured image " + "a" * 300,
    "\x1c\x1dtext\x85more\ufeff\u200b end\u2028\u2029",
    "tabs\t\tand\nnewlines\r\n\v\f  ",
    " lead and trail \u3000",
    "Kelvin \u212a http://k.example \u212aelvin",
]
RULE_LISTS = [[name] for name in RULES] + [
    ["drop-urls", "drop-handles"],
    ["urls", "handles", "hashtags"],
    list(RULES),
    [],
]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node not found: required under CI")
        pytest.skip("node not found")
    return node


def test_page_js_cleans_as_python() -> None:
    """edgefn/web/src/cleaning.js gives the same text as `clean_text` for every rule and rule list on strings
    that probe each pattern's edges: Unicode word characters and spaces, case folding, dashes, the 250- and
    200-character windows, a final newline."""
    module = (WEB_SOURCES / "src" / "cleaning.js").as_uri()
    script = (
        f"import {{ cleanText }} from {json.dumps(module)};"
        "const job = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(job.lists.map((rules) => job.texts.map((t) => cleanText(t, rules)))));"
    ).replace("require('fs')", "(await import('node:fs'))")
    job = {"texts": TRICKY, "lists": RULE_LISTS}
    out = subprocess.run(
        [_node(), "--input-type=module", "-e", script],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout)
    for rules, js in zip(RULE_LISTS, got):
        for text, cleaned in zip(TRICKY, js):
            assert cleaned == clean_text(text, rules), (rules, text)
    assert got[RULE_LISTS.index(["drop-urls", "drop-handles"])][2] == "Read and"


def test_page_js_refuses_an_unknown_rule() -> None:
    module = (WEB_SOURCES / "src" / "cleaning.js").as_uri()
    script = f"import {{ cleanText }} from {json.dumps(module)}; cleanText('x', ['drop-urls', 'nope']);"
    out = subprocess.run([_node(), "--input-type=module", "-e", script], capture_output=True, text=True)
    assert out.returncode != 0 and 'unknown cleaning rule "nope"' in out.stderr


def test_series_and_text_rules_agree() -> None:
    """data.cleaning's Series API (training) and core.cleaning's per-text functions (serving) agree."""
    series = pd.Series(TRICKY)
    for rules in RULE_LISTS:
        assert apply_rules(series, rules).tolist() == clean_texts(TRICKY, rules), rules
    assert clean_text("RT @who: cases up https://t.co/x", ["drop-urls", "drop-handles"]) == "RT : cases up"
    with pytest.raises(EdgefnError, match=r"unknown cleaning rule\(s\) 'nope'; known: urls, drop-urls"):
        clean_texts(["x"], ["nope"])


def _info(names: list[str] | None, applied: bool = True) -> dict:
    cleaning: dict = {"applied": applied, "rules": [], "available": []}
    if names is not None:
        cleaning["names"] = names
    return {"cleaning": cleaning}


def test_serving_rules_of_datasets_and_unions() -> None:
    """A dataset's applied rule names; none when off or recorded without names (ISOT); a union serves the rules
    common to its sources and says so when they differ."""
    constraint = _info(["drop-urls", "drop-handles"])
    assert serving_rules(constraint) == (("drop-urls", "drop-handles"), None)
    assert serving_rules(_info(["drop-urls"], applied=False)) == ((), None)
    assert serving_rules(_info(None)) == ((), None)  # isot: cleaned per field
    assert serving_rules({}) == ((), None)
    same = {"sources": {"a": constraint, "b": _info(["drop-handles", "drop-urls"])}}
    assert serving_rules(same) == (("drop-urls", "drop-handles"), None)
    mixed = {
        "sources": {"constraint": constraint, "liar": _info([], applied=False), "c": _info(["drop-urls"])}
    }
    rules, note = serving_rules(mixed)
    assert rules == () and note is not None
    assert "constraint: drop-urls, drop-handles; liar: none" in note and note.endswith("common to all: none")
    rules, note = serving_rules({"sources": {"a": constraint, "c": _info(["drop-urls"])}})
    assert rules == ("drop-urls",) and note is not None and note.endswith("common to all: drop-urls")


def test_variant_manifest_cleaning_field() -> None:
    """export.json without `cleaning` (older edgefn) loads as none; one that is no list of names is refused."""
    assert VariantManifest.from_dict({"variant": "fp32"}, "export.json").cleaning is None
    m = VariantManifest.from_dict({"cleaning": ["drop-urls"]}, "export.json")
    assert m.cleaning == ["drop-urls"] and m.to_dict() == {"cleaning": ["drop-urls"]}
    for bad in ("drop-urls", [1]):
        with pytest.raises(EdgefnError, match="export.json: 'cleaning'"):
            VariantManifest.from_dict({"cleaning": bad}, "export.json")


def test_rule_tables_match() -> None:
    """cleaning.js names the same rules, in the same order, as core.cleaning.RULES."""
    source = (WEB_SOURCES / "src" / "cleaning.js").read_text(encoding="utf-8")
    body = source.split("export const RULES = {")[1].split("};")[0]
    names = [line.strip().split(":")[0].strip("'") for line in body.strip().splitlines()]
    assert names == list(RULES)
