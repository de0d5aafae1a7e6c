"""Quality-filter presets (``bmf prepare --quality-preset web|curated|off``) and the config switch of every rule.

* ``web`` (the default): every family with its datatrove-like thresholds, i.e. the :class:`QualityConfig`
  defaults. Built for text extracted from web pages, where the word-statistics rules catch menus, tables of links,
  spam and boilerplate;
* ``curated``: for documentation, books, code-bearing technical prose, hand-written corpora. Keeps the repetition
  rules and the obvious-junk rules and switches off the word-statistics and terminal-punctuation rules that punish
  code, lists, tables and headings (:data:`CURATED_OFF`, with why per rule);
* ``off``: no quality filters at all (as ``--no-quality``).

The preset is a set of overrides (:func:`preset_overrides`, the same JSON shape as ``--quality-config``) applied
to the defaults; ``--quality-config`` is merged on top of it key by key (:func:`merge_overrides`), so
``--quality-preset curated --quality-config '{"gopher_quality": {"min_stop_words": 2}}'`` is curated with the
stop-word rule back on.

:data:`RULE_SWITCHES` maps every drop reason ``"<family>:<rule>"`` to the overrides that switch that one rule off;
the drop warning (:func:`bigmodel_fast.data.quality.drop_warnings`) quotes it.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["PRESETS", "DEFAULT_PRESET", "CURATED_OFF", "CURATED_LOOSER", "RULE_SWITCHES", "preset_overrides",
           "merge_overrides", "switch_off_hint"]

PRESETS = ("web", "curated", "off")
DEFAULT_PRESET = "web"

_REP_NGRAMS = "top_ngrams / dup_ngrams"  # one n-gram rule: remove its (n, frac) pair

#: reason (``c4:line:<rule>`` for a C4 line rule) -> the overrides that switch only that rule off (an n-gram rule:
#: the whole n-gram list, see :func:`switch_off_hint`)
RULE_SWITCHES: dict[str, dict[str, dict[str, Any]]] = {
    "gopher_quality:word_count": {"gopher_quality": {"min_words": None, "max_words": None}},
    "gopher_quality:mean_word_length": {"gopher_quality": {
        "min_mean_word_length": None, "max_mean_word_length": None,
        "cjk_min_mean_word_length": None, "cjk_max_mean_word_length": None}},
    "gopher_quality:symbol_word_ratio": {"gopher_quality": {"max_symbol_word_ratio": None}},
    "gopher_quality:bullet_lines": {"gopher_quality": {"max_bullet_lines_ratio": None}},
    "gopher_quality:ellipsis_lines": {"gopher_quality": {"max_ellipsis_lines_ratio": None}},
    "gopher_quality:alpha_words": {"gopher_quality": {"min_alpha_words_ratio": None}},
    "gopher_quality:stop_words": {"gopher_quality": {"min_stop_words": None}},
    "gopher_repetition:dup_para_frac": {"gopher_repetition": {"max_dup_para_frac": None}},
    "gopher_repetition:dup_para_char_frac": {"gopher_repetition": {"max_dup_para_char_frac": None}},
    "gopher_repetition:dup_line_frac": {"gopher_repetition": {"max_dup_line_frac": None}},
    "gopher_repetition:dup_line_char_frac": {"gopher_repetition": {"max_dup_line_char_frac": None}},
    **{f"gopher_repetition:top_{n}gram": {"gopher_repetition": {"top_ngrams": []}} for n in (2, 3, 4)},
    **{f"gopher_repetition:dup_{n}gram": {"gopher_repetition": {"dup_ngrams": []}} for n in range(5, 11)},
    "c4:lorem_ipsum": {"c4": {"drop_lorem_ipsum": False}},
    "c4:curly_bracket": {"c4": {"drop_curly_bracket": False}},
    "c4:min_sentences": {"c4": {"min_sentences": None}},
    "c4:empty": {"c4": {"drop_no_terminal_punct": False, "min_words_per_line": None}},
    "fineweb:line_punct_ratio": {"fineweb": {"min_line_punct_ratio": None}},
    "fineweb:short_line_ratio": {"fineweb": {"max_short_line_ratio": None}},
    "fineweb:dup_line_char_ratio": {"fineweb": {"max_dup_line_char_ratio": None}},
    "fineweb:list_ratio": {"fineweb": {"max_newline_word_ratio": None}},
    # C4 line rules (they remove lines, not documents)
    "c4:line:long_word": {"c4": {"max_word_length": None}},
    "c4:line:no_terminal_punct": {"c4": {"drop_no_terminal_punct": False}},
    "c4:line:too_few_words": {"c4": {"min_words_per_line": None}},
    "c4:line:javascript": {"c4": {"drop_javascript_lines": False}},
    "c4:line:policy": {"c4": {"drop_policy_lines": False}},
}

#: the rules ``curated`` switches off (drop reasons, plus the C4 *line* rules as ``c4:line:<rule>``), and why
CURATED_OFF: dict[str, str] = {
    "gopher_quality:mean_word_length": "identifiers, paths and URLs are long words; 'x = 1' is short ones",
    "gopher_quality:symbol_word_ratio": "'#' starts comments and headings, '...' is the doctest prompt",
    "gopher_quality:bullet_lines": "lists and option tables are real content in documentation",
    "gopher_quality:ellipsis_lines": "doctest continuation lines end in '...'",
    "gopher_quality:alpha_words": "code and tables are full of numbers and operators",
    "gopher_quality:stop_words": "API references and tables have few function words",
    "c4:min_sentences": "short pages and code-heavy pages have few sentences ending in '.'",
    "c4:line:no_terminal_punct": "removes every code line, heading, table row and list item",
    "c4:line:too_few_words": "removes short code lines ('return x') and list items",
    "fineweb:line_punct_ratio": "code and lists rarely end lines in punctuation",
    "fineweb:short_line_ratio": "code and lists are mostly short lines",
    "fineweb:list_ratio": "code and lists have few words per line",
}

#: the rules ``curated`` keeps with a looser threshold, and why
CURATED_LOOSER: dict[str, str] = {
    "gopher_repetition:dup_line_frac": "0.3 -> 0.5: tutorials repeat code lines ('import logging', '}'); a page "
                                       "of one repeated spam line sits above 0.9",
    "gopher_repetition:dup_line_char_frac": "0.2 -> 0.4, as dup_line_frac",
    "fineweb:dup_line_char_ratio": "0.1 -> 0.4, as dup_line_frac (the same measure as gopher's dup_line_char_frac)",
}

_CURATED: dict[str, dict[str, Any]] = {
    "gopher_quality": {"min_mean_word_length": None, "max_mean_word_length": None, "cjk_min_mean_word_length": None,
                       "cjk_max_mean_word_length": None, "max_symbol_word_ratio": None, "max_bullet_lines_ratio": None,
                       "max_ellipsis_lines_ratio": None, "min_alpha_words_ratio": None, "min_stop_words": None},
    "gopher_repetition": {"max_dup_line_frac": 0.5, "max_dup_line_char_frac": 0.4},
    "c4": {"min_sentences": None, "drop_no_terminal_punct": False, "min_words_per_line": None},
    "fineweb": {"min_line_punct_ratio": None, "max_short_line_ratio": None, "max_newline_word_ratio": None,
                "max_dup_line_char_ratio": 0.4},
}


def preset_overrides(name: str) -> dict[str, dict[str, Any]]:
    """The overrides (``--quality-config`` shape) of preset ``name`` on top of the defaults; ``{}`` for ``web`` and
    ``off`` (``off`` switches the stage off instead)."""
    if name not in PRESETS:
        raise ValueError(f"quality preset {name!r}: expected one of {', '.join(PRESETS)}")
    return copy.deepcopy(_CURATED) if name == "curated" else {}


def merge_overrides(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` on top: a family's keys are merged one by one, any other key is replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def switch_off_hint(reason: str) -> str:
    """What to pass to switch the rule ``reason`` off: ``--quality-preset curated`` where curated has it off, and the
    ``--quality-config`` JSON for that rule and for its whole family."""
    family = reason.split(":", 1)[0]
    parts = []
    if reason in CURATED_OFF:
        parts.append("--quality-preset curated (which has this rule off)")
    if reason in RULE_SWITCHES:
        extra = f" (one n-gram rule: remove its pair from {_REP_NGRAMS})" if "gram" in reason else ""
        parts.append(f"{json.dumps(RULE_SWITCHES[reason])} in --quality-config{extra}")
    parts.append(f"{json.dumps({family: {'enabled': False}})} in --quality-config")
    return " or ".join(parts)
