"""The text cleaning rules (URLs, handles, datelines ...) as pure string functions: training and serving share them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgefn.core.errors import EdgefnError

# edgefn/web/src/cleaning.js holds the same patterns for the web page (tests/core/test_cleaning.py checks that
# both give the same text on a list of tricky strings): change one, change the other.
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
HANDLE = re.compile(r"(?<![\w@])@+\w+(?:@+\w+)*")  # "@@name" and "@a@b" chains too; no e-mails
HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
URL_PLACEHOLDER, HANDLE_PLACEHOLDER = "URL", "@USER"
# ISOT: real texts open with a "CITY (Reuters) - " dateline, at times after a correction note, hence the short
# free prefix; "WASHINGTON () - " is the dateline with "Reuters" cut. Fake texts end "Featured image via ...".
REUTERS_DATELINE = re.compile(r"^.{0,250}?\((?:Reuters)?\)\s*[-\u2013\u2014]\s*", re.DOTALL)
FEATURED_IMAGE = re.compile(r"\s*featured image.{0,200}$", re.IGNORECASE | re.DOTALL)
SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Rule:
    """One cleaning rule: what it does, and the pattern replaced by `replacement` (None: spaces only)."""

    description: str
    pattern: re.Pattern[str] | None
    replacement: str = ""


# name -> rule, in the order `--clean` lists them. Every rule list ends with spaces collapsed and stripped.
RULES: dict[str, Rule] = {
    "urls": Rule(f"URLs replaced by '{URL_PLACEHOLDER}'", URL, URL_PLACEHOLDER),
    "drop-urls": Rule("URLs deleted", URL, " "),
    "handles": Rule(f"@handles replaced by '{HANDLE_PLACEHOLDER}'", HANDLE, HANDLE_PLACEHOLDER),
    "drop-handles": Rule("@handles deleted", HANDLE, " "),
    "hashtags": Rule("'#' of hashtags removed (the word kept)", HASHTAG, r"\1"),
    "reuters": Rule("the '... (Reuters) - ' dateline at the start removed", REUTERS_DATELINE, ""),
    "featured-image": Rule("the 'Featured image via ...' trailer removed", FEATURED_IMAGE, ""),
    "whitespace": Rule("leading/trailing spaces stripped, inner runs collapsed", None),
}


def check_rules(rules: Sequence[str], where: str = "") -> None:
    """Raise a one-line error for an unknown cleaning rule (naming `where` when given), listing the known ones."""
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise EdgefnError(
            f"{where + ': ' if where else ''}unknown cleaning rule(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(RULES)}"
        )


def describe_rules(rules: Sequence[str]) -> tuple[str, ...]:
    """`name: what it does` for each rule."""
    check_rules(rules)
    return tuple(f"{r}: {RULES[r].description}" for r in rules)


def clean_text(text: str, rules: Sequence[str]) -> str:
    """One text with `rules` applied in order, then spaces collapsed and stripped (no rules: unchanged)."""
    if not rules:
        return text
    check_rules(rules)
    for name in rules:
        rule = RULES[name]
        if rule.pattern is not None:
            text = rule.pattern.sub(rule.replacement, text)
    return SPACES.sub(" ", text).strip()


def clean_texts(texts: Sequence[str], rules: Sequence[str]) -> list[str]:
    """`clean_text` on each text."""
    check_rules(rules)
    return [clean_text(t, rules) for t in texts] if rules else list(texts)


def _applied(cleaning: Any) -> tuple[str, ...]:
    """The rule names a dataset record's `cleaning` applied (none when off or recorded without names)."""
    if not isinstance(cleaning, Mapping) or not cleaning.get("applied"):
        return ()
    names = cleaning.get("names") or ()
    return tuple(str(n) for n in names) if isinstance(names, list) else ()


def serving_rules(info: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
    """The rules to apply at serving for a model trained on a dataset record (`DatasetBundle.info`, kept in
    metrics.json's `data`), and a note when there is a choice to explain.

    A named dataset or generic file: the named rules its loading applied (CONSTRAINT: drop-urls, drop-handles).
    ISOT's cleaning is per field (the dateline is cut from the article, after the title) and has no text-level
    rule, so none. A union a+b: the rules every source applied, in the first source's order; where the sources
    differ the note says so (a rule applied to some sources only is not applied at serving)."""
    sources = info.get("sources")
    if not isinstance(sources, Mapping) or not sources:
        return _applied(info.get("cleaning")), None
    per = {
        str(name): _applied(s.get("cleaning") if isinstance(s, Mapping) else None)
        for name, s in sources.items()
    }
    first = next(iter(per.values()))
    common = tuple(r for r in first if all(r in rules for rules in per.values()))
    if all(set(rules) == set(common) for rules in per.values()):
        return common, None
    each = "; ".join(f"{n}: {', '.join(r) or 'none'}" for n, r in per.items())
    return common, (
        f"the union's sources were cleaned differently ({each}); serving applies the rules common to all: "
        f"{', '.join(common) or 'none'}"
    )
