"""Quality presets (web / curated / off), the per-rule switches and the drop warning (issue 14, point 6)."""

import dataclasses
import re
from pathlib import Path

import pytest

from bigmodel_fast.data.clean import clean_text
from bigmodel_fast.data.filters import FAMILIES
from bigmodel_fast.data.filters.c4 import LINE_RULES
from bigmodel_fast.data.filters.presets import (
    CURATED_LOOSER,
    CURATED_OFF,
    PRESETS,
    RULE_SWITCHES,
    merge_overrides,
    preset_overrides,
    switch_off_hint,
)
from bigmodel_fast.data.quality import REASONS, QualityConfig, QualityFilter, QualityStats, drop_warnings, preset_config

README = Path(__file__).resolve().parents[2] / "README.md"

# a page of technical documentation: a heading, two sentences, an option list, a code block and a signature
TECH_DOC = """\
Reading configuration files
===========================

The loader reads a configuration file and returns a dictionary of settings. Every key
is a string and every value is parsed with the rules described below.

Options:

- ``path``: the file to read
- ``strict``: raise on unknown keys
- ``encoding``: defaults to utf-8
- ``env``: expand ${VAR} references

Example::

    from config import load
    cfg = load("app.toml", strict=True)
    for key in sorted(cfg):
        print(key, cfg[key])
    if cfg["debug"]:
        level = "DEBUG"

load(path, strict=False, encoding="utf-8")
    Return the settings in path as a dict.
"""

SPAM = "\n".join(["BUY NOW cheap pills today!!! click here for the best offer."] * 40)
# ordinary prose with a placeholder paragraph left in
LOREM = ("The committee met on Tuesday to discuss the budget for the coming year. Most members agreed that the "
         "library needs a new roof before winter. The treasurer said that the reserve fund can cover half of the "
         "cost. A local builder has offered to do the work at a discount. The rest of the money will come from a "
         "small increase in the annual fee. A final vote is planned for the next meeting in March.\n\n"
         "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.")


def _apply(overrides: dict, cfg: QualityConfig) -> bool:
    """True when every field in ``overrides`` has that value in ``cfg`` (lists compared as tuples)."""
    for fam, fields in overrides.items():
        for name, value in fields.items():
            want = tuple(value) if isinstance(value, list) else value
            if getattr(getattr(cfg, fam), name) != want:
                return False
    return True


def test_every_reason_and_line_rule_has_a_switch_that_exists():
    for reason in REASONS:
        if reason != "quality:empty":
            assert reason in RULE_SWITCHES, reason
    for rule in LINE_RULES:
        assert f"c4:line:{rule}" in RULE_SWITCHES
    for reason, over in RULE_SWITCHES.items():
        cfg = QualityConfig.from_dict(over)  # unknown field names would raise
        if reason != "c4:curly_bracket":  # the one rule that is off by default already
            assert cfg != QualityConfig(), reason  # it changes something


def test_web_is_the_defaults_and_off_has_no_overrides():
    assert PRESETS == ("web", "curated", "off")
    assert preset_config("web") == QualityConfig()
    assert preset_overrides("off") == {} and preset_overrides("web") == {}


def test_curated_switches_off_exactly_the_documented_rules():
    cfg = preset_config("curated")
    for reason in CURATED_OFF:
        assert _apply(RULE_SWITCHES[reason], cfg), reason
    # the repetition and obvious-junk rules stay on with the web thresholds ...
    web = QualityConfig()
    assert cfg.gopher_quality.min_words == web.gopher_quality.min_words == 50
    assert cfg.gopher_quality.max_words == web.gopher_quality.max_words
    assert cfg.c4.drop_lorem_ipsum and cfg.c4.drop_javascript_lines and cfg.c4.drop_policy_lines
    assert cfg.c4.max_word_length == web.c4.max_word_length and cfg.c4.drop_curly_bracket is False
    rep, web_rep = cfg.gopher_repetition, web.gopher_repetition
    assert (rep.max_dup_para_frac, rep.max_dup_para_char_frac, rep.top_ngrams, rep.dup_ngrams) == (
        web_rep.max_dup_para_frac, web_rep.max_dup_para_char_frac, web_rep.top_ngrams, web_rep.dup_ngrams)
    # ... except the line-duplication rules, loosened as documented
    assert set(CURATED_LOOSER) == {"gopher_repetition:dup_line_frac", "gopher_repetition:dup_line_char_frac",
                                   "fineweb:dup_line_char_ratio"}
    assert (rep.max_dup_line_frac, rep.max_dup_line_char_frac, cfg.fineweb.max_dup_line_char_ratio) == (0.5, 0.4, 0.4)
    # nothing else differs from web: every changed field is accounted for by CURATED_OFF / CURATED_LOOSER
    changed = {(fam, f.name) for fam in FAMILIES for f in dataclasses.fields(getattr(cfg, fam))
               if getattr(getattr(cfg, fam), f.name) != getattr(getattr(web, fam), f.name)}
    documented = {(fam, name) for r in CURATED_OFF for fam, fields in RULE_SWITCHES[r].items() for name in fields}
    documented |= {("gopher_repetition", "max_dup_line_frac"), ("gopher_repetition", "max_dup_line_char_frac"),
                   ("fineweb", "max_dup_line_char_ratio")}
    assert changed == documented


def test_readme_lists_every_curated_choice():
    text = README.read_text(encoding="utf-8")
    for reason in (*CURATED_OFF, *CURATED_LOOSER):
        assert f"`{reason}`" in text, reason


def test_overrides_go_on_top_of_the_preset_field_by_field():
    cfg = preset_config("curated", {"gopher_quality": {"min_stop_words": 2}, "c4": {"enabled": False}})
    assert cfg.gopher_quality.min_stop_words == 2
    assert cfg.gopher_quality.max_bullet_lines_ratio is None  # the rest of curated's gopher_quality stays
    assert cfg.c4.enabled is False and cfg.c4.drop_no_terminal_punct is False
    assert merge_overrides({"a": {"x": 1, "y": 2}, "k": 1}, {"a": {"y": 3}, "k": 2}) == {"a": {"x": 1, "y": 3}, "k": 2}


def test_technical_doc_is_kept_by_curated_and_dropped_by_web():
    text = clean_text(TECH_DOC)
    web = QualityFilter(preset_config("web")).filter(text)
    assert not web.keep and web.reason == "c4:min_sentences"
    cur = QualityFilter(preset_config("curated")).filter(text)
    assert cur.keep and cur.text == text  # kept whole: no line removed


@pytest.mark.parametrize("preset", ["web", "curated"])
def test_junk_is_dropped_by_both(preset):
    qf = QualityFilter(preset_config(preset))
    spam = qf.filter(clean_text(SPAM))
    assert not spam.keep and spam.reason.startswith("gopher_repetition:")
    lorem = qf.filter(clean_text(LOREM))
    assert not lorem.keep and lorem.reason == "c4:lorem_ipsum"
    assert qf.filter(clean_text(LOREM.split("\n\n")[0])).keep  # the same prose without the placeholder is kept
    assert qf.filter("far too short to be a document of any use").reason == "gopher_quality:word_count"


def test_bad_preset_and_overrides_are_one_line_errors():
    with pytest.raises(ValueError, match="quality preset 'webby': expected one of web, curated, off"):
        preset_config("webby")
    with pytest.raises(ValueError, match="expected a JSON object"):
        preset_config("web", ["c4"])
    with pytest.raises(ValueError, match=r"QualityConfig.c4: unknown keys \['nope'\]"):
        preset_config("curated", {"c4": {"nope": 1}})


def _stats(seen: int, dropped: dict, chars_in: int = 0, line_chars: dict | None = None) -> QualityStats:
    s = QualityStats(seen=seen, kept=seen - sum(dropped.values()))
    for reason, n in dropped.items():
        s.drop(reason, n)
    s.chars_in = chars_in
    for rule, n in (line_chars or {}).items():
        s.tally("line_chars_dropped", rule, n)
    return s


def test_drop_warning_fires_above_the_share_and_not_at_or_below():
    assert drop_warnings(_stats(100, {"gopher_quality:stop_words": 10}), 0.10) == []
    (msg,) = drop_warnings(_stats(100, {"gopher_quality:stop_words": 11, "c4:lorem_ipsum": 2}), 0.10)
    assert msg.startswith("quality rule gopher_quality:stop_words dropped 11 of 100 documents (11.0%")
    assert "--warn-drop-share 0.1" in msg and "--quality-preset curated" in msg
    assert '{"gopher_quality": {"min_stop_words": null}} in --quality-config' in msg
    assert '{"gopher_quality": {"enabled": false}} in --quality-config' in msg
    # a rule curated keeps: no curated hint, only the config switches
    (rep,) = drop_warnings(_stats(10, {"gopher_repetition:dup_line_frac": 5}), 0.10)
    assert "--quality-preset curated" not in rep and '"max_dup_line_frac": null' in rep
    # C4 line rules are judged by the characters they remove; the largest share comes first
    msgs = drop_warnings(_stats(10, {"gopher_quality:word_count": 2}, chars_in=1000,
                                line_chars={"no_terminal_punct": 340, "javascript": 100}), 0.10)
    assert len(msgs) == 2 and msgs[0].startswith("C4 line rule no_terminal_punct removed 340 of 1000 "
                                                              "characters (34.0%")
    assert msgs[1].startswith("quality rule gopher_quality:word_count dropped 2 of 10 documents (20.0%")
    assert drop_warnings(_stats(10, {"gopher_quality:word_count": 2}), 1.0) == []
    assert drop_warnings(QualityStats(), 0.0) == []  # nothing seen: nothing to warn about


def test_switch_off_hint_is_valid_json_for_the_rule():
    import json

    hint = switch_off_hint("fineweb:list_ratio")
    found = [json.loads(m) for m in re.findall(r"(\{.*?\}\})", hint)]
    assert {"fineweb": {"max_newline_word_ratio": None}} in found and {"fineweb": {"enabled": False}} in found
