"""Tests for bigmodel_fast.data.filters: the one DocFilter interface, the family registry and the chain's list."""
from __future__ import annotations

import dataclasses

import pytest

from bigmodel_fast.data.filters import FAMILIES, KEEP, C4Filter, DocFilter, Verdict
from bigmodel_fast.data.filters._text import TextView, detect_lang
from bigmodel_fast.data.quality import REASONS, QualityConfig, QualityFilter, QualityStats, filter_documents
from bigmodel_fast.data.sources import Document

from .test_quality import GOOD, ZH_GOOD

SHOUT = " ".join(["THIS IS A LOUD SENTENCE THAT GOES ON AND ON."] * 12)


class NoShouting:
    """A custom filter: drops all-capitals documents with ``custom:shouting``."""

    name = "custom"

    def filter(self, view: TextView, stats=None) -> Verdict:
        return Verdict(False, reason="custom:shouting") if view.text.isupper() else KEEP


class Spy:
    """Keeps everything and records the views it was given."""

    name = "spy"

    def __init__(self):
        self.views: list[TextView] = []

    def filter(self, view: TextView, stats=None) -> Verdict:
        self.views.append(view)
        return KEEP


def only(*families: str) -> QualityConfig:
    """The default config with every family but ``families`` switched off."""
    cfg = QualityConfig()
    return dataclasses.replace(cfg, **{f: dataclasses.replace(getattr(cfg, f), enabled=False)
                                       for f in FAMILIES if f not in families})


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_registered_family_implements_the_interface(name):
    cls = FAMILIES[name]
    f = cls(getattr(QualityConfig(), name))
    assert isinstance(f, DocFilter) and f.name == name
    assert isinstance(f.cfg, cls.Config) and cls.Config is type(getattr(QualityConfig(), name))
    assert {f"{name}:{r}" for r in cls.RULES} <= set(REASONS)
    v = f.filter(TextView(GOOD))
    assert isinstance(v, Verdict) and v.keep and v.reason is None
    bad = f.filter(TextView("Home\n\nHome\n\nHome\n\nlorem ipsum"))
    assert not bad.keep and bad.reason.startswith(f"{name}:") and bad.reason in REASONS


def test_chain_is_one_list_in_registry_order_with_the_enabled_families():
    assert list(FAMILIES) == ["gopher_quality", "gopher_repetition", "c4", "fineweb"]
    assert [f.name for f in QualityFilter().filters] == list(FAMILIES)
    assert [f.name for f in QualityFilter(only("fineweb", "gopher_quality")).filters] == ["gopher_quality", "fineweb"]
    assert QualityFilter(only()).filters == []
    assert REASONS[0] == "quality:empty" and len(REASONS) == len(set(REASONS)) == 1 + sum(
        len(cls.RULES) for cls in FAMILIES.values())


def test_custom_filter_drops_with_its_reason_and_is_counted_in_the_shared_stats():
    custom = NoShouting()
    qf = QualityFilter(only(), extra_filters=[custom])
    assert qf.filters == [custom]
    assert qf(SHOUT) == Verdict(False, SHOUT, "custom:shouting")
    assert qf(GOOD) == Verdict(True, GOOD)
    docs = [Document(text=t, source="mem") for t in (GOOD, SHOUT, SHOUT, "")]
    stats = QualityStats()
    kept = list(filter_documents(docs, only(), stats, extra_filters=[custom]))
    assert [d.text for d in kept] == [GOOD]
    assert stats.dropped == {"custom:shouting": 2, "quality:empty": 1}
    assert stats.seen == 4 and stats.kept == 1 and stats.to_dict()["dropped_total"] == 3
    # after the families: a document the families drop never reaches it
    stats = QualityStats()
    list(filter_documents(docs, QualityConfig(), stats, extra_filters=[custom]))
    assert "custom:shouting" not in stats.dropped and stats.kept == 1


def test_extra_filter_must_implement_the_interface():
    with pytest.raises(TypeError, match="extra_filters: .* is not a DocFilter"):
        QualityFilter(extra_filters=[lambda view: KEEP])


def test_c4_text_change_reaches_later_filters_as_a_new_view():
    page = GOOD + "\nThis site uses cookies. By continuing you accept our Privacy Policy.\nShare this:"
    spy = Spy()
    first = TextView(page)
    lines: dict[str, int] = {}
    r = QualityFilter(only("c4"), extra_filters=[spy])(page, lines)
    assert r == Verdict(True, GOOD)
    (seen,) = spy.views
    assert seen.text == GOOD and seen is not first
    assert lines == {"policy": 1, "no_terminal_punct": 1}
    # C4 itself leaves the view it was given alone and answers with the new text
    v = C4Filter(QualityConfig().c4).filter(first)
    assert first.text == page and v.keep and v.text == GOOD


def test_new_view_keeps_the_script_decision_of_the_whole_document():
    zh_heads = [f"这是一个没有句号的中文标题行第{n}" for n in "一二三"]
    en = [f"Cats sat here {i}." for i in range(5)]
    text = "\n\n".join(zh_heads + en)
    assert detect_lang(text) == "zh"
    spy = Spy()
    r = QualityFilter(only("c4"), extra_filters=[spy])(text)
    assert r.keep and r.text == "\n\n".join(en)
    (seen,) = spy.views
    assert detect_lang(seen.text) == "en" and seen.lang == "zh"  # C4 only removed lines


def test_zh_document_kept_through_the_whole_chain():
    spy = Spy()
    r = QualityFilter(extra_filters=[spy])(ZH_GOOD)
    assert r.keep and spy.views[0].lang == "zh" and spy.views[0].text == r.text
