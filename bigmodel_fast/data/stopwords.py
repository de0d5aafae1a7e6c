"""Small built-in stop-word sets for the quality filters (:mod:`bigmodel_fast.data.quality`).

These are deliberately tiny: the Gopher stop-word rule only asks whether a document contains *some* very common
function words, which separates running prose from lists of keywords, tables, code and spam. Sets are tuples (so
configs holding them stay JSON-serialisable and hashable).

* :data:`GOPHER_EN`: the eight English words of the Gopher paper (Rae et al., 2021) and datatrove's
  ``GopherQualityFilter``: the, be, to, of, and, that, have, with.
* :data:`ZH`: eight of the most frequent Chinese function characters (的 了 是 在 和 有 我 不); counted as characters.
* :data:`JA`: Japanese particles and auxiliaries written in hiragana (の に は を が で と た); counted as characters.
* :data:`KO`: Korean particles (이 가 은 는 을 를 의 에); counted as syllables anywhere in the text, since Korean
  attaches particles to the preceding word.

:data:`BY_LANGUAGE` maps ``"en" | "zh" | "ja" | "ko"`` to these sets.
"""
from __future__ import annotations

__all__ = ["GOPHER_EN", "ZH", "JA", "KO", "BY_LANGUAGE"]

GOPHER_EN: tuple[str, ...] = ("the", "be", "to", "of", "and", "that", "have", "with")
ZH: tuple[str, ...] = ("的", "了", "是", "在", "和", "有", "我", "不")
JA: tuple[str, ...] = ("の", "に", "は", "を", "が", "で", "と", "た")
KO: tuple[str, ...] = ("이", "가", "은", "는", "을", "를", "의", "에")

BY_LANGUAGE: dict[str, tuple[str, ...]] = {"en": GOPHER_EN, "zh": ZH, "ja": JA, "ko": KO}
