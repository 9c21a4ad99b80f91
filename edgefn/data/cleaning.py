"""Shortcut cues in news texts (URLs, handles, datelines ...) and the cleaning rules that remove them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from edgefn.core.errors import EdgefnError

if TYPE_CHECKING:
    import pandas as pd

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
HANDLE = re.compile(r"(?<![\w@])@+\w+(?:@+\w+)*")  # "@@name" and "@a@b" chains too; no e-mails
HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
URL_PLACEHOLDER, HANDLE_PLACEHOLDER = "URL", "@USER"
# ISOT: real texts open with a "CITY (Reuters) - " dateline, at times after a correction note, hence the short
# free prefix; "WASHINGTON () - " is the dateline with "Reuters" cut. Fake texts end "Featured image via ...".
REUTERS_DATELINE = re.compile(r"^.{0,250}?\((?:Reuters)?\)\s*[-\u2013\u2014]\s*", re.DOTALL)
FEATURED_IMAGE = re.compile(r"\s*featured image.{0,200}$", re.IGNORECASE | re.DOTALL)
SPACES = re.compile(r"\s+")


def _sub(pattern: re.Pattern[str], repl: str) -> Callable[[pd.Series], pd.Series]:
    return lambda texts: texts.str.replace(pattern, repl, regex=True)


# name -> (what it does, the function on a Series of texts). Every rule ends with spaces collapsed.
CLEAN_RULES: dict[str, tuple[str, Callable[[pd.Series], pd.Series]]] = {
    "urls": (f"URLs replaced by '{URL_PLACEHOLDER}'", _sub(URL, URL_PLACEHOLDER)),
    "drop-urls": ("URLs deleted", _sub(URL, " ")),
    "handles": (f"@handles replaced by '{HANDLE_PLACEHOLDER}'", _sub(HANDLE, HANDLE_PLACEHOLDER)),
    "drop-handles": ("@handles deleted", _sub(HANDLE, " ")),
    "hashtags": ("'#' of hashtags removed (the word kept)", _sub(HASHTAG, r"\1")),
    "reuters": ("the '... (Reuters) - ' dateline at the start removed", _sub(REUTERS_DATELINE, "")),
    "featured-image": ("the 'Featured image via ...' trailer removed", _sub(FEATURED_IMAGE, "")),
    "whitespace": ("leading/trailing spaces stripped, inner runs collapsed", lambda texts: texts),
}


def check_rules(rules: tuple[str, ...] | list[str]) -> None:
    """Raise a one-line error for an unknown cleaning rule, listing the known ones."""
    unknown = [r for r in rules if r not in CLEAN_RULES]
    if unknown:
        raise EdgefnError(
            f"unknown cleaning rule(s) {', '.join(map(repr, unknown))}; known: {', '.join(CLEAN_RULES)}"
        )


def describe_rules(rules: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """`name: what it does` for each rule."""
    check_rules(rules)
    return tuple(f"{r}: {CLEAN_RULES[r][0]}" for r in rules)


def apply_rules(texts: pd.Series, rules: tuple[str, ...] | list[str]) -> pd.Series:
    """Apply cleaning rules in order, then collapse spaces and strip."""
    check_rules(rules)
    texts = texts.fillna("").astype(str)
    for rule in rules:
        texts = CLEAN_RULES[rule][1](texts)
    return texts.str.replace(SPACES, " ", regex=True).str.strip() if rules else texts
