"""Tests for bigmodel_fast.data.quality: every rule trips on a crafted positive and not on a crafted negative,
every switch turns its rule off, CJK and real prose survive, spam and boilerplate go for the right reason."""
from __future__ import annotations

import dataclasses
import itertools
import json
import random

import pytest

from bigmodel_fast.data import sample_files as samples
from bigmodel_fast.data.clean import clean_documents
from bigmodel_fast.data.filters import gopher_repetition
from bigmodel_fast.data.filters._text import TextView, cjk_tokens, detect_lang
from bigmodel_fast.data.quality import (
    REASONS,
    C4Config,
    FilterResult,
    FineWebConfig,
    GopherQualityConfig,
    GopherRepetitionConfig,
    QualityConfig,
    QualityFilter,
    QualityStats,
    filter_documents,
)
from bigmodel_fast.data.sources import Document, iter_documents

# ------------------------------------------------------------------------------------------- fixtures / texts

GOOD = (
    "The old lighthouse stood at the edge of the cliff for more than a century.\n"
    "Every evening the keeper climbed the narrow stairs to light the lamp and watch the sea.\n"
    "Ships that passed in the night relied on that steady beam to find their way home.\n"
    "When the storms of winter arrived, the waves crashed against the rocks with tremendous force.\n"
    "Still the light kept burning, and sailors learned to trust it with their lives.\n"
    "Years later the town decided to preserve the building as a museum for visitors."
)

ZH_GOOD = (
    "今年是改革开放二十周年,全国各族人民在党的领导下取得了巨大的成就。\n"
    "农业生产再次获得好的收成,企业改革继续深化,人民生活进一步改善。\n"
    "我们十分关注最近一个时期一些国家和地区发生的金融风波,相信情况会逐步得到缓解。\n"
    "对外经济技术合作与交流不断扩大,民主法制建设和精神文明建设都有新的进展。\n"
    "只要我们进一步解放思想,实事求是,建设事业就会越走越宽广。"
)

JA_GOOD = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"
    "吾輩はここで始めて人間というものを見た。しかもあとで聞くとそれは書生という人間中で一番獰悪な種族であったそうだ。"
)


@pytest.fixture(scope="module")
def pydoc_texts() -> list[str]:
    return [d.text for d in clean_documents(iter_documents([samples.sample_path("pydoc_en")]))]


@pytest.fixture(scope="module")
def zh_paragraphs() -> list[str]:
    docs = itertools.islice(iter_documents([samples.sample_path("peoples_daily_zh")]), 200)
    return [d.text for d in clean_documents(docs)]


# ------------------------------------------------------------------------------------------- solo configs

_OFF = {
    "gopher_quality": dict(min_words=None, max_words=None, min_mean_word_length=None, max_mean_word_length=None,
                           cjk_min_mean_word_length=None, cjk_max_mean_word_length=None,
                           max_symbol_word_ratio=None, max_bullet_lines_ratio=None, max_ellipsis_lines_ratio=None,
                           min_alpha_words_ratio=None, min_stop_words=None),
    "gopher_repetition": dict(max_dup_para_frac=None, max_dup_para_char_frac=None, max_dup_line_frac=None,
                              max_dup_line_char_frac=None, top_ngrams=(), dup_ngrams=()),
    "c4": dict(drop_lorem_ipsum=False, drop_curly_bracket=False, min_sentences=None, drop_no_terminal_punct=False,
               min_words_per_line=None, max_word_length=None, drop_javascript_lines=False, drop_policy_lines=False),
    "fineweb": dict(min_line_punct_ratio=None, max_short_line_ratio=None, max_dup_line_char_ratio=None,
                    max_newline_word_ratio=None),
}
_CLASSES = {"gopher_quality": GopherQualityConfig, "gopher_repetition": GopherRepetitionConfig, "c4": C4Config,
            "fineweb": FineWebConfig}


def solo(family: str, **on) -> QualityConfig:
    """Only ``family`` enabled, and in it only the rules named in ``on`` (with those values)."""
    fams = {f: _CLASSES[f](enabled=False) for f in _CLASSES}
    fams[family] = _CLASSES[family](**{**_OFF[family], **on})
    return QualityConfig(**fams)


def run(text: str, cfg: QualityConfig | None = None) -> FilterResult:
    return QualityFilter(cfg)(text)


def words(n: int, seed: int = 0) -> str:
    """n distinct-ish pseudo-words of 4..8 letters, no stop words."""
    rng = random.Random(seed)
    return " ".join("".join(rng.choice("bcdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 4)))
                    for _ in range(n))


# ------------------------------------------------------------------------------------------- rule table
# (reason, config that enables only this rule, positive text that trips it, negative text that does not)

CASES = [
    ("gopher_quality:word_count", solo("gopher_quality", min_words=50), "Too short to be a document.", GOOD),
    ("gopher_quality:word_count", solo("gopher_quality", max_words=20), GOOD, "A short line of text."),
    ("gopher_quality:mean_word_length", solo("gopher_quality", min_mean_word_length=3.0),
     " ".join(["a b c to of in"] * 12), GOOD),
    ("gopher_quality:mean_word_length", solo("gopher_quality", max_mean_word_length=10.0),
     " ".join(["internationalization", "counterrevolutionaries", "electroencephalograph"] * 20), GOOD),
    ("gopher_quality:symbol_word_ratio", solo("gopher_quality", max_symbol_word_ratio=0.1),
     GOOD + "\n" + " ".join(["#tag"] * 30), GOOD + "\n#python is fun."),
    ("gopher_quality:symbol_word_ratio", solo("gopher_quality", max_symbol_word_ratio=0.1),
     " ".join(["and then... nothing"] * 20), GOOD + " Wait... what?"),
    ("gopher_quality:bullet_lines", solo("gopher_quality", max_bullet_lines_ratio=0.9),
     "\n".join(f"- item number {i} of the list" for i in range(20)),
     "Intro line of the list.\n" + "\n".join(f"* item {i}" for i in range(5))),
    ("gopher_quality:ellipsis_lines", solo("gopher_quality", max_ellipsis_lines_ratio=0.3),
     "\n".join(f"Read more about story {i}..." for i in range(10)), GOOD + "\nTo be continued..."),
    ("gopher_quality:alpha_words", solo("gopher_quality", min_alpha_words_ratio=0.8),
     "Prices: " + " ".join(str(i * 37 % 1000) for i in range(60)), GOOD + " In 1998 it cost 12 dollars."),
    ("gopher_quality:stop_words", solo("gopher_quality", min_stop_words=2),
     "Cats sleep all day. Dogs bark at night. Birds sing in spring. " * 3, GOOD),
    ("gopher_repetition:dup_para_frac", solo("gopher_repetition", max_dup_para_frac=0.3),
     "First paragraph here.\n\nSecond one.\n\nFirst paragraph here.",
     "First paragraph here.\n\nSecond one.\n\nThird one.\n\nFirst paragraph here."),
    ("gopher_repetition:dup_para_char_frac", solo("gopher_repetition", max_dup_para_char_frac=0.2),
     GOOD + "\n\nShort.\n\n" + GOOD, GOOD + "\n\nShort.\n\nTiny.\n\nShort."),
    ("gopher_repetition:dup_line_frac", solo("gopher_repetition", max_dup_line_frac=0.3),
     "Buy now.\nGreat deals.\nBuy now.\nBuy now.", "Buy now.\nGreat deals.\nFree shipping.\nBuy now."),
    ("gopher_repetition:dup_line_char_frac", solo("gopher_repetition", max_dup_line_char_frac=0.2),
     GOOD + "\n" + GOOD.split("\n")[1] + "\n" + GOOD.split("\n")[3], GOOD + "\nOk.\nOk."),
    ("fineweb:line_punct_ratio", solo("fineweb", min_line_punct_ratio=0.12),
     "\n".join(f"Menu entry number {i} with some words" for i in range(10)),
     "\n".join(f"Menu entry number {i} with some words" for i in range(8)) + "\nThis one ends.\nSo does this."),
    ("fineweb:short_line_ratio", solo("fineweb", max_short_line_ratio=0.67),
     "\n".join(f"Short line {i}." for i in range(20)) + "\n" + GOOD, GOOD + "\nShort line.\nAnother."),
    ("fineweb:dup_line_char_ratio", solo("fineweb", max_dup_line_char_ratio=0.1),
     GOOD + "\n" + GOOD.split("\n")[1], GOOD + "\nOk.\nOk."),
    ("fineweb:list_ratio", solo("fineweb", max_newline_word_ratio=0.3),
     "\n".join(["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "melon"] * 3), GOOD),
    ("c4:lorem_ipsum", solo("c4", drop_lorem_ipsum=True), GOOD + "\nLorem ipsum dolor sit amet, consectetur.",
     GOOD + "\nLorem is a name, and ipsum a word."),
    ("c4:curly_bracket", solo("c4", drop_curly_bracket=True), GOOD + "\nUse {name} as a placeholder.", GOOD),
    ("c4:min_sentences", solo("c4", min_sentences=5), "One sentence here. Two sentences here.\nThree here.",
     GOOD),
    ("c4:empty", solo("c4", drop_no_terminal_punct=True), "No punctuation here\nNone here either",
     GOOD),
]


@pytest.mark.parametrize("reason,cfg,positive,negative", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_trips_on_positive_only(reason, cfg, positive, negative):
    pos = run(positive, cfg)
    assert not pos.keep and pos.reason == reason
    neg = run(negative, cfg)
    assert neg.keep and neg.reason is None


# each n-gram rule alone: a repeated run of exactly n words trips dup_{n}gram, one word shorter does not
@pytest.mark.parametrize("n,frac", GopherRepetitionConfig().dup_ngrams)
def test_dup_ngram_rules(n, frac):
    run_words = words(n, seed=n).split()
    short = run_words[:-1]
    uniq = words(40, seed=100 + n).split()
    positive = " ".join(run_words + [uniq[0]] + run_words + [uniq[1]] + run_words + [uniq[2]] + run_words)
    negative = " ".join(itertools.chain.from_iterable(short + [u] for u in uniq[:6]))
    cfg = solo("gopher_repetition", dup_ngrams=((n, frac),))
    assert run(positive, cfg).reason == f"gopher_repetition:dup_{n}gram"
    assert run(negative, cfg).keep  # the (n-1)-word run repeats, but no n-gram does
    assert run(negative, solo("gopher_repetition", dup_ngrams=((n - 1, 0.1),))).reason == \
        f"gopher_repetition:dup_{n - 1}gram"


@pytest.mark.parametrize("n,frac", GopherRepetitionConfig().top_ngrams)
def test_top_ngram_rules(n, frac):
    gram = words(n, seed=7 * n).split()
    filler = words(60, seed=3).split()
    positive = " ".join(gram * 12 + filler[:10])
    cfg = solo("gopher_repetition", top_ngrams=((n, frac),))
    assert run(positive, cfg).reason == f"gopher_repetition:top_{n}gram"
    assert run(GOOD, cfg).keep
    assert run(" ".join(filler), cfg).keep  # nothing repeats


# ------------------------------------------------------------------------------------------- C4 line rules


def _c4_lines(text: str, **on) -> tuple[FilterResult, dict[str, int]]:
    line_stats: dict[str, int] = {}
    return QualityFilter(solo("c4", **on))(text, line_stats), line_stats


@pytest.mark.parametrize("rule,on,bad_line,ok_line", [
    ("no_terminal_punct", dict(drop_no_terminal_punct=True), "Home About Contact", "A proper sentence ends here."),
    ("no_terminal_punct", dict(drop_no_terminal_punct=True), "And then it trailed off...", "He said \"yes.\""),
    ("too_few_words", dict(min_words_per_line=3), "Thanks!", "Thanks a lot!"),
    ("javascript", dict(drop_javascript_lines=True), "Please enable JavaScript to view this page.",
     "Please enable cookies in your browser settings."),
    ("policy", dict(drop_policy_lines=True), "This website uses cookies to improve your experience.",
     "The cookies in the jar were eaten by the children."),
    ("long_word", dict(max_word_length=1000), "A line with " + "x" * 1001 + " in it.", "A line with x in it."),
])
def test_c4_line_rules_remove_lines(rule, on, bad_line, ok_line):
    text = f"First line of the page is fine.\n{bad_line}\n{ok_line}\nLast line is fine too."
    r, stats = _c4_lines(text, **on)
    assert r.keep
    assert bad_line not in r.text and ok_line in r.text and r.text.startswith("First line")
    assert stats == {rule: 1}
    r2, _ = _c4_lines(text)  # every rule off: text unchanged
    assert r2.text == text


def test_c4_curly_bracket_off_by_default_keeps_code_docs(pydoc_texts):
    assert not QualityConfig().c4.drop_curly_bracket
    with_braces = [t for t in pydoc_texts if "{" in t]
    assert len(with_braces) > 10  # the curly rule would drop all of these
    on = QualityConfig(c4=C4Config(drop_curly_bracket=True))
    assert all(run(t, on).reason == "c4:curly_bracket" for t in with_braces[:5])


def test_c4_joins_hard_wrapped_lines():
    wrapped = (
        "When an error occurs, the interpreter prints an error message and a stack trace.\n"
        "In interactive mode, it then returns to the primary prompt; when input came from\n"
        "a file, it exits with a nonzero exit status after printing the stack trace.\n"
        "Some errors are unconditionally fatal and cause an exit with a nonzero exit; this\n"
        "applies to internal inconsistencies and some cases of running out of memory. All\n"
        "error messages are written to the standard error stream.\n"
        "Typing the interrupt character to the primary or secondary prompt cancels the\n"
        "input and returns to the primary prompt."
    )
    on = dict(drop_no_terminal_punct=True, min_sentences=5)
    r, stats = _c4_lines(wrapped, **on)
    assert r.keep and r.text == wrapped and not stats
    r, stats = _c4_lines(wrapped, join_wrapped_lines=False, **on)
    assert stats["no_terminal_punct"] == 4
    # a short heading and a code line in the same paragraph are still judged alone
    r, stats = _c4_lines("Error Handling\n" + wrapped + "\n>>> print(x)", **on)
    assert r.text == wrapped and stats == {"no_terminal_punct": 2}


def test_c4_keeps_paragraph_breaks():
    text = "Menu\n\n" + GOOD + "\n\nFooter links here\n\n" + GOOD.replace("\n", " ")
    r = run(text, solo("c4", drop_no_terminal_punct=True))
    assert r.text == GOOD + "\n\n" + GOOD.replace("\n", " ")


# ------------------------------------------------------------------------------------------- switches


SWITCH_OFF = {
    "gopher_quality:word_count": dict(gopher_quality=dict(min_words=None, max_words=None)),
    "gopher_quality:mean_word_length": dict(gopher_quality=dict(min_mean_word_length=None,
                                                                max_mean_word_length=None)),
    "gopher_quality:symbol_word_ratio": dict(gopher_quality=dict(max_symbol_word_ratio=None)),
    "gopher_quality:bullet_lines": dict(gopher_quality=dict(max_bullet_lines_ratio=None)),
    "gopher_quality:ellipsis_lines": dict(gopher_quality=dict(max_ellipsis_lines_ratio=None)),
    "gopher_quality:alpha_words": dict(gopher_quality=dict(min_alpha_words_ratio=None)),
    "gopher_quality:stop_words": dict(gopher_quality=dict(min_stop_words=None)),
    "gopher_repetition:dup_para_frac": dict(gopher_repetition=dict(max_dup_para_frac=None)),
    "gopher_repetition:dup_para_char_frac": dict(gopher_repetition=dict(max_dup_para_char_frac=None)),
    "gopher_repetition:dup_line_frac": dict(gopher_repetition=dict(max_dup_line_frac=None)),
    "gopher_repetition:dup_line_char_frac": dict(gopher_repetition=dict(max_dup_line_char_frac=None)),
    "fineweb:line_punct_ratio": dict(fineweb=dict(min_line_punct_ratio=None)),
    "fineweb:short_line_ratio": dict(fineweb=dict(max_short_line_ratio=None)),
    "fineweb:dup_line_char_ratio": dict(fineweb=dict(max_dup_line_char_ratio=None)),
    "fineweb:list_ratio": dict(fineweb=dict(max_newline_word_ratio=None)),
    "c4:lorem_ipsum": dict(c4=dict(drop_lorem_ipsum=False)),
    "c4:curly_bracket": dict(c4=dict(drop_curly_bracket=False)),
    "c4:min_sentences": dict(c4=dict(min_sentences=None)),
    "c4:empty": dict(c4=dict(drop_no_terminal_punct=False)),
}


@pytest.mark.parametrize("reason,cfg,positive,negative", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_switch_turns_its_rule_off(reason, cfg, positive, negative):
    family = reason.split(":")[0]
    off = SWITCH_OFF[reason][family]
    fam_cfg = dataclasses.replace(getattr(cfg, family), **off)
    r = run(positive, dataclasses.replace(cfg, **{family: fam_cfg}))
    assert r.reason != reason
    # and the family flag turns the whole family off
    r = run(positive, dataclasses.replace(cfg, **{family: dataclasses.replace(getattr(cfg, family), enabled=False)}))
    assert r.keep


def test_every_reason_is_covered_and_listed():
    ngram = {f"gopher_repetition:dup_{n}gram" for n in range(5, 11)} | \
        {f"gopher_repetition:top_{n}gram" for n in (2, 3, 4)}
    covered = {c[0] for c in CASES} | ngram | {"quality:empty"}
    assert covered == set(REASONS)
    # every reason with a single-case test has a switch-off setting; the n-gram ones and "empty" have none
    assert set(SWITCH_OFF) == set(REASONS) - ngram - {"quality:empty"}


def test_empty_text():
    assert run("").reason == "quality:empty"
    assert run(" \n\t ").reason == "quality:empty"


# ------------------------------------------------------------------------------------------- default chain


def test_default_thresholds_match_the_brief():
    cfg = QualityConfig()
    g = cfg.gopher_quality
    assert (g.min_words, g.max_words, g.min_mean_word_length, g.max_mean_word_length) == (50, 100_000, 3, 10)
    assert (g.max_symbol_word_ratio, g.max_bullet_lines_ratio, g.max_ellipsis_lines_ratio) == (0.1, 0.9, 0.3)
    assert (g.min_alpha_words_ratio, g.min_stop_words) == (0.8, 2)
    assert g.stop_words == ("the", "be", "to", "of", "and", "that", "have", "with")
    r = cfg.gopher_repetition
    assert (r.max_dup_line_frac, r.max_dup_line_char_frac, r.max_dup_para_frac, r.max_dup_para_char_frac) == \
        (0.3, 0.2, 0.3, 0.2)
    assert r.top_ngrams == ((2, 0.2), (3, 0.18), (4, 0.16))
    assert r.dup_ngrams == ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    f = cfg.fineweb
    assert (f.min_line_punct_ratio, f.max_short_line_ratio, f.short_line_length, f.max_dup_line_char_ratio) == \
        (0.12, 0.67, 30, 0.1)
    assert all(getattr(cfg, fam).enabled for fam in ("gopher_quality", "gopher_repetition", "c4", "fineweb"))


def test_good_prose_passes_default_chain():
    r = run(GOOD)
    assert r.keep and r.text == GOOD


def test_real_english_prose_is_kept(pydoc_texts):
    qf = QualityFilter()
    first = qf(pydoc_texts[0])
    assert first.keep
    assert "When an error occurs, the interpreter prints an error message" in first.text
    kept = [qf(t) for t in pydoc_texts]
    assert sum(r.keep for r in kept) >= 0.9 * len(pydoc_texts)
    kept_chars = sum(len(r.text) for r in kept if r.keep)
    assert kept_chars > 0.55 * sum(map(len, pydoc_texts))  # C4 removes code lines and headings, not prose


def test_cjk_prose_is_kept(zh_paragraphs):
    text = "\n".join(zh_paragraphs[:10])
    r = run(text)
    assert r.keep, r.reason
    # the headline/byline lines without terminal punctuation go, the speech stays
    assert "1997年,是中国发展历史上非常重要的很不平凡的一年。" in r.text
    assert len(r.text) > 0.8 * len(text)
    assert run(ZH_GOOD).keep
    assert run(JA_GOOD).keep


def test_cjk_groups_of_paragraphs_mostly_kept(zh_paragraphs):
    groups = ["\n".join(zh_paragraphs[i:i + 10]) for i in range(0, 200, 10)]
    assert sum(run(g).keep for g in groups) >= 0.85 * len(groups)


def test_cjk_word_rules_count_characters():
    # one whitespace "word" only: the word-based rules would drop it if CJK were not detected
    assert len(ZH_GOOD.split()) < 10
    assert run(ZH_GOOD).keep
    not_cjk = QualityConfig(detect_cjk=False)
    assert run(ZH_GOOD, not_cjk).reason == "gopher_quality:word_count"
    assert cjk_tokens("1998年新年 讲话(附图)")[:4] == ["1998", "年", "新", "年"]
    assert TextView(ZH_GOOD).word_stats()[1] > 150


def test_cjk_script_detection():
    assert detect_lang(ZH_GOOD) == "zh"
    assert detect_lang(JA_GOOD) == "ja"
    assert detect_lang("대한민국은 민주공화국이다. "
                       "대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다.") == "ko"
    assert detect_lang(GOOD) == "en"
    assert detect_lang(GOOD + " 中文") == "en"  # a few CJK characters in English text


def test_cjk_stop_words():
    cfg = solo("gopher_quality", min_stop_words=2)
    no_stop = "中共中央政治局委员李铁映与广播电影电视部部长孙家正等向中央三台代表颁证。" * 2
    assert run(no_stop, cfg).reason == "gopher_quality:stop_words"
    assert run(ZH_GOOD, cfg).keep
    skip = solo("gopher_quality", min_stop_words=2, cjk_stop_words=False)
    assert run(no_stop, skip).keep
    assert run("Cats sleep all day. Dogs bark at night.", skip).reason == "gopher_quality:stop_words"


def test_cjk_terminal_punctuation_and_ellipsis():
    cfg = solo("c4", drop_no_terminal_punct=True)
    text = "这是第一句话。\n他说:“走吧!”\n还有什么?\n省略号结尾……\n没有标点的标题"
    r = run(text, cfg)
    assert r.text == "这是第一句话。\n他说:“走吧!”\n还有什么?\n省略号结尾……"
    ell = solo("gopher_quality", max_ellipsis_lines_ratio=0.3)
    assert run("他想了想……\n然后又想了想......", ell).keep  # CJK ellipsis ends a sentence
    assert run("阅读更多...\n点击查看...", ell).reason == "gopher_quality:ellipsis_lines"


def test_cjk_repetition_uses_longer_character_ngrams():
    text = ("新华社北京1月2日电据国家体委综合司的最新统计,在1997年内,中国运动员共夺得92个世界冠军、创造29项世界纪录。"
            "这样,自新中国成立以来到去年末,中国运动员共获得1123个世界冠军,创造或超过880项世界纪录。")
    cfg = QualityConfig(gopher_quality=GopherQualityConfig(enabled=False), c4=C4Config(enabled=False))
    assert run(text, cfg).keep
    scale1 = dataclasses.replace(cfg, gopher_repetition=GopherRepetitionConfig(cjk_ngram_scale=1))
    assert run(text, scale1).reason.startswith("gopher_repetition:")
    assert run("欢迎光临本店。" * 30, cfg).reason.startswith("gopher_repetition:")


# ------------------------------------------------------------------------------------------- spam / boilerplate

SPAM = {
    "gopher_repetition:dup_line_frac": "\n".join(["Best prices on cheap watches, buy now and save big."] * 20),
    "gopher_repetition:top_2gram": " ".join(["cheap pills"] * 40 + ["the best offer and the lowest price"] * 3),
    "c4:lorem_ipsum": GOOD + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.",
    "gopher_quality:stop_words": "\n".join(
        f"Home Products Services Contact Blog Careers Login Register Cart Checkout {i}." for i in range(6)),
    "gopher_quality:word_count": "Click here to subscribe!",
    "fineweb:short_line_ratio": "\n".join(words(3, seed=i).capitalize() + "." for i in range(30)) + "\n" + GOOD,
}


@pytest.mark.parametrize("reason", sorted(SPAM))
def test_spam_and_boilerplate_dropped_for_the_right_reason(reason):
    r = run(SPAM[reason])
    assert not r.keep and r.reason == reason


def test_cookie_and_javascript_lines_removed_from_a_kept_page():
    page = GOOD + "\nThis site uses cookies. By continuing you accept our Privacy Policy.\n" \
        "You need to enable JavaScript to run this app.\nShare this:"
    r = run(page)
    assert r.keep and r.text == GOOD


# ------------------------------------------------------------------------------------------- stats / API


def test_stats_add_up(zh_paragraphs):
    texts = [GOOD, ZH_GOOD, "", "Too short.", *SPAM.values(), *zh_paragraphs[:40]]
    docs = [Document(text=t, source="mem", line=i) for i, t in enumerate(texts)]
    stats = QualityStats()
    kept = list(filter_documents(docs, QualityConfig(), stats))
    assert stats.seen == len(docs)
    assert stats.kept == len(kept)
    assert stats.seen == stats.kept + stats.dropped_total == stats.kept + sum(stats.dropped.values())
    expected: dict[str, int] = {}
    qf = QualityFilter()
    for t in texts:
        r = qf(t)
        if not r.keep:
            expected[r.reason] = expected.get(r.reason, 0) + 1
    assert stats.dropped == expected
    assert set(stats.dropped) <= set(REASONS)
    assert stats.chars_out == sum(len(d.text) for d in kept)
    assert stats.modified == sum(d.text != texts[d.line] for d in kept)
    assert kept[0].source == "mem" and kept[0].line == 0
    d = stats.to_dict()
    assert d["dropped_total"] == stats.dropped_total
    json.dumps(d)
    merged = QualityStats()
    merged.add(stats)
    merged.add(stats)
    assert merged.seen == 2 * stats.seen and merged.dropped_total == 2 * stats.dropped_total


def test_config_round_trip_and_errors():
    cfg = QualityConfig(c4=C4Config(drop_curly_bracket=True), fineweb=FineWebConfig(enabled=False))
    d = json.loads(json.dumps(cfg.to_dict()))
    assert QualityConfig.from_dict(d) == cfg
    assert QualityConfig.from_dict({}) == QualityConfig()
    with pytest.raises(ValueError, match="unknown keys"):
        QualityConfig.from_dict({"gopher": {}})
    with pytest.raises(ValueError, match="c4: unknown keys"):
        QualityConfig.from_dict({"c4": {"curly": True}})
    with pytest.raises(ValueError):
        QualityConfig(cjk_min_fraction=2.0)


def test_python_and_numpy_ngram_paths_agree():
    rng = random.Random(0)
    for _ in range(100):
        vocab = ["a", "bb", "ccc", "的", "了", "1998"] + [str(i) for i in range(rng.choice([2, 10, 50]))]
        toks = [rng.choice(vocab) for _ in range(rng.randint(0, 90))]
        py, np_ = gopher_repetition._PyNGrams(toks), gopher_repetition._NpNGrams(toks)
        for n in (2, 3, 4, 5, 8, 10):
            assert py.top(n, 1)[0] == np_.top(n, 1)[0]
            assert py.dup_chars(n) == np_.dup_chars(n)
            assert py.max_window(n) == np_.max_window(n)


def test_large_document_uses_numpy_path_consistently():
    big = " ".join([GOOD.replace("\n", " ")] * 2 + [words(600, seed=1)])
    toks = big.split()
    assert len(toks) >= gopher_repetition.NUMPY_MIN_TOKENS
    cfg = solo("gopher_repetition", dup_ngrams=((5, 0.15),), top_ngrams=((2, 0.2),))
    assert run(big, cfg).keep
    assert gopher_repetition._NpNGrams(toks).dup_chars(5) == gopher_repetition._PyNGrams(toks).dup_chars(5) > 0
