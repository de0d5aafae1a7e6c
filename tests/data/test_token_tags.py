"""data.token_tags: CoNLL / JSONL tagged sentences, BIO <-> BIOES, bad rows reported and skipped, seqeval's reading
of scheme violations."""

from __future__ import annotations

import json
import random

import pytest

from bigmodel_fast.data.token_tags import detect_scheme, read_tagged, split_tag, to_bio, to_bioes


def write(path, text: str):
    path.write_bytes(text.encode("utf-8"))
    return path


def test_conll_reads_sentences_docstart_extra_columns_and_crlf(tmp_path):
    f = write(tmp_path / "train.conll",
              "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n\n"
              "Peter B-PER\r\nBlackburn I-PER\r\n\r\n北 B-LOC\n京 I-LOC\n")  # no final blank line
    data = read_tagged(f)
    assert data.tokens == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["北", "京"]]
    assert data.tags == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"], ["B-LOC", "I-LOC"]]
    assert data.lines == [3, 8, 11] and data.scheme == "bio"
    assert data.stats.as_dict() == {"sentences": 3, "tokens": 7, "skipped": 0, "repaired": 0}
    assert data.label_names() == ["O", "B-LOC", "I-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]


def test_jsonl_rows_and_bioes_held_as_bio(tmp_path):
    rows = [{"tokens": ["New", "York", "City"], "tags": ["B-LOC", "I-LOC", "E-LOC"], "id": 1},
            {"tokens": ["Ann"], "tags": ["S-PER"]}]
    f = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    data = read_tagged(f)
    assert data.scheme == "bioes" and data.tags == [["B-LOC", "I-LOC", "I-LOC"], ["B-PER"]]
    assert [to_bioes(t) for t in data.tags] == [r["tags"] for r in rows]


def test_bad_sentences_are_reported_with_file_line_and_skipped(tmp_path):
    f = write(tmp_path / "bad.conll", "a B-PER\nb\n\nc O\nd X-PER\n\ne B-\n\nf O\ng B-LOC\n")
    data = read_tagged(f)
    assert data.tokens == [["f", "g"]] and data.lines == [9]
    assert data.stats.skipped == 3
    problems = data.stats.problems
    assert problems[0].startswith(f"{f}:1: line 2 has one column")
    assert problems[1].startswith(f"{f}:4: ") and "X-PER" in problems[1]
    assert problems[2].startswith(f"{f}:7: ") and "'B-'" in problems[2]
    rows = ['{"tokens": ["a", "b"], "tags": ["O"]}', "not json", '["a"]', '{"tokens": ["a"], "tags": [1]}',
            '{"tokens": [" a"], "tags": ["O"]}', '{"tokens": ["ok"], "tags": ["O"]}']
    j = read_tagged(write(tmp_path / "bad.jsonl", "\n".join(rows) + "\n"))
    assert j.tokens == [["ok"]] and j.stats.skipped == 5
    assert [p.split(": ", 1)[0] for p in j.stats.problems] == [f"{tmp_path / 'bad.jsonl'}:{n}" for n in range(1, 6)]
    assert "2 tokens but 1 tags" in j.stats.problems[0]


def test_empty_invalid_utf8_and_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="no usable tagged sentence.*empty"):
        read_tagged(write(tmp_path / "e.conll", "\n\n-DOCSTART- O\n"))
    with pytest.raises(ValueError, match=r"only\.conll: no usable.*one column"):
        read_tagged(write(tmp_path / "only.conll", "a\n"))
    bad = tmp_path / "latin1.conll"
    bad.write_bytes("a O\n".encode() + "caf\xe9 O\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.conll:2: not valid UTF-8"):
        read_tagged(bad)
    with pytest.raises(ValueError, match="scheme must be one of"):
        read_tagged(bad, scheme="iob1")
    with pytest.raises(ValueError, match="on_violation must be one of"):
        read_tagged(bad, on_violation="fix")
    with pytest.raises(ValueError, match="prefix 'E'"):  # BIOES prefixes in a file said to be BIO
        to_bio(["B-X", "E-X"], "bio")
    with pytest.raises(OSError):
        read_tagged(tmp_path / "missing.conll")


def test_violations_repaired_by_default_or_skipped(tmp_path):
    f = write(tmp_path / "v.conll", "a I-PER\nb I-PER\nc O\n\nd B-LOC\ne I-ORG\n\nf B-PER\ng I-PER\n")
    repaired = read_tagged(f)
    assert repaired.tags == [["B-PER", "I-PER", "O"], ["B-LOC", "B-ORG"], ["B-PER", "I-PER"]]
    assert repaired.stats.repaired == 2 and repaired.stats.skipped == 0
    strict = read_tagged(f, on_violation="skip")
    assert strict.tags == [["B-PER", "I-PER"]] and strict.stats.skipped == 2 and strict.stats.repaired == 0
    assert "break the BIO scheme" in strict.stats.problems[0]


def _random_tags(rng: random.Random, prefixes: str, n: int) -> list[str]:
    return ["O" if rng.random() < 0.3 else f"{rng.choice(prefixes)}-{rng.choice('AB')}" for _ in range(n)]


@pytest.mark.parametrize("scheme,prefixes", [("bio", "BI"), ("bioes", "BIES")])
def test_entities_equal_seqeval_default_reading_of_the_raw_tags(scheme, prefixes):
    """Random tag sequences, violations included: the BIO we hold spells the entities seqeval's default mode reads
    in the raw tags; converting to BIOES and back is the identity; the scheme is detected."""
    labeling = pytest.importorskip("seqeval.metrics.sequence_labeling",
                                   reason="seqeval (test extra) is the oracle for entity spans")
    get_entities = labeling.get_entities
    rng = random.Random(0)
    for _ in range(2000):
        raw = _random_tags(rng, prefixes, rng.randint(1, 12))
        bio, _ = to_bio(raw, scheme)
        assert get_entities(bio) == get_entities(raw), raw
        assert to_bio(to_bioes(bio), "bioes") == (bio, 0)
        assert all(split_tag(t)[0] in "BIO" for t in bio)
    assert detect_scheme([["B-X", "I-X"], ["O"]]) == "bio" and detect_scheme([["O"], ["S-X"]]) == "bioes"


def test_gzip_files_read_by_the_suffix_before_gz_with_file_line_errors(tmp_path):
    """``.jsonl.gz`` / ``.conll.gz`` are decompressed and read as their inner format; extra JSONL fields (``doc``)
    are accepted; bad rows, invalid UTF-8 and broken gzip data name ``file:line`` of the decompressed text."""
    import gzip

    rows = [{"tokens": ["北", "京"], "tags": ["B-LOC", "I-LOC"], "doc": "19980101-01-001", "line": 7},
            {"tokens": ["a", "b"], "tags": ["O"], "doc": "d2"},
            {"tokens": ["江", "泽", "民"], "tags": ["B-PER", "I-PER", "I-PER"], "doc": "d2"}]
    jz = tmp_path / "train.jsonl.gz"
    jz.write_bytes(gzip.compress("\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode(), mtime=0))
    data = read_tagged(jz, scheme="bio")
    assert data.tokens == [["北", "京"], ["江", "泽", "民"]] and data.lines == [1, 3]
    assert data.tags == [["B-LOC", "I-LOC"], ["B-PER", "I-PER", "I-PER"]]
    assert data.stats.skipped == 1 and data.stats.problems[0].startswith(f"{jz}:2: 2 tokens but 1 tags")
    plain = write(tmp_path / "train.jsonl", gzip.decompress(jz.read_bytes()).decode())
    assert read_tagged(plain).tags == data.tags

    cz = tmp_path / "dev.CONLL.GZ"  # suffix case does not matter; CoNLL, not JSONL, although it is gzip
    cz.write_bytes(gzip.compress("EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n".encode()))
    conll = read_tagged(cz)
    assert conll.tokens == [["EU", "rejects"], ["Peter", "Blackburn"]] and conll.lines == [1, 4]

    latin = tmp_path / "latin.conll.gz"
    latin.write_bytes(gzip.compress("a O\n".encode() + "caf\xe9 O\n".encode("latin-1")))
    with pytest.raises(ValueError, match=r"latin\.conll\.gz:2: not valid UTF-8"):
        read_tagged(latin)
    whole = gzip.compress(("a O\n" * 5000).encode())
    truncated = tmp_path / "cut.conll.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"cut\.conll\.gz:\d+: corrupt or truncated gzip"):
        read_tagged(truncated)
    notgz = write(tmp_path / "fake.jsonl.gz", '{"tokens": ["a"], "tags": ["O"]}\n')
    with pytest.raises(ValueError, match=r"fake\.jsonl\.gz:1: corrupt or truncated gzip"):
        read_tagged(notgz)
