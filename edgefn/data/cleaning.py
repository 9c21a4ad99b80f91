"""The cleaning rules (`edgefn.core.cleaning`, shared with serving) on pandas Series of texts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from edgefn.core.cleaning import (
    FEATURED_IMAGE,
    HANDLE,
    HANDLE_PLACEHOLDER,
    HASHTAG,
    REUTERS_DATELINE,
    RULES,
    SPACES,
    URL,
    URL_PLACEHOLDER,
    Rule,
    check_rules,
    describe_rules,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CLEAN_RULES",
    "FEATURED_IMAGE",
    "HANDLE",
    "HANDLE_PLACEHOLDER",
    "HASHTAG",
    "REUTERS_DATELINE",
    "SPACES",
    "URL",
    "URL_PLACEHOLDER",
    "apply_rules",
    "check_rules",
    "describe_rules",
]


def _on_series(rule: Rule) -> Callable[[pd.Series], pd.Series]:
    if rule.pattern is None:
        return lambda texts: texts
    pattern, replacement = rule.pattern, rule.replacement
    return lambda texts: texts.str.replace(pattern, replacement, regex=True)


# name -> (what it does, the function on a Series of texts). Every rule ends with spaces collapsed.
CLEAN_RULES: dict[str, tuple[str, Callable[[pd.Series], pd.Series]]] = {
    name: (rule.description, _on_series(rule)) for name, rule in RULES.items()
}


def apply_rules(texts: pd.Series, rules: tuple[str, ...] | list[str]) -> pd.Series:
    """Apply cleaning rules in order, then collapse spaces and strip (as `core.cleaning.clean_text` per text)."""
    check_rules(rules)
    texts = texts.fillna("").astype(str)
    for rule in rules:
        texts = CLEAN_RULES[rule][1](texts)
    return texts.str.replace(SPACES, " ", regex=True).str.strip() if rules else texts
