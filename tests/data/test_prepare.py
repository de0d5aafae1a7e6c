import json

import pytest

from bigmodel_fast.data.data_dir import PreparedData
from bigmodel_fast.data.prepare import PrepareConfig, prepare
from bigmodel_fast.data.tokenizer import Tokenizer

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def _corpus(tmp_path, n=60):
    docs = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(40 + i % 13)) + f" doc{i}." for i in range(n)]
    (tmp_path / "in").mkdir()
    rows = [{"text": d} for d in docs]
    rows += [{"text": docs[3]}, {"text": docs[5]}, {"text": "<p>" + docs[5] + "</p>"}]  # 3 planted duplicates
    rows += [{"text": "   "}, {"text": "tiny"}]  # dropped by cleaning
    (tmp_path / "in" / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (tmp_path / "in" / "b.txt").write_bytes(b"caf\xe9 au lait is served with croissants every morning here.")
    return docs


def test_prepare_counts_and_round_trip(tmp_path):
    docs = _corpus(tmp_path)
    # synthetic word soup: the web-page quality rules would drop it, so they are off here (tested below)
    stats = prepare(PrepareConfig(inputs=[str(tmp_path / "in")], out=str(tmp_path / "out"), vocab_size=300,
                                  valid_fraction=0.1, quality=False, dedup="exact", progress=False))
    assert stats["read"]["documents"] == 66 and stats["read"]["repaired_bytes"] == 1
    assert stats["clean"]["dropped_empty"] + stats["clean"]["dropped_short"] == 2
    assert stats["dedup"]["exact"]["duplicates"] == 3  # the HTML-wrapped copy is equal after cleaning
    assert stats["dedup"]["duplicates"] >= 3
    assert stats["train"]["documents"] + stats["valid"]["documents"] == 61
    assert stats["valid"]["documents"] == 6
    on_disk = json.loads((tmp_path / "out" / "stats.json").read_text(encoding="utf-8"))
    assert on_disk["train"]["tokens"] == stats["train"]["tokens"] > 0

    data = PreparedData(tmp_path / "out")
    tok = Tokenizer(data.tokenizer_file)
    decoded = {tok.decode(shard[i].tolist()) for shard in data.train_shards() + data.valid_shards()
               for i in range(len(shard))}
    assert set(docs) <= decoded
    assert "café au lait is served with croissants every morning here." in decoded
    assert sum(s.num_tokens for s in data.train_shards()) == stats["train"]["tokens"]


def test_prepare_rerun_replaces_old_shards(tmp_path):
    _corpus(tmp_path)
    out = tmp_path / "out"
    prepare(PrepareConfig(inputs=[str(tmp_path / "in")], out=str(out), vocab_size=300, progress=False,
                          max_tokens_per_shard=500, quality=False, dedup="exact"))
    many = sorted(p.name for p in out.glob("train_*.bin"))
    assert len(many) > 1
    prepare(PrepareConfig(inputs=[str(tmp_path / "in")], out=str(out), vocab_size=300, progress=False,
                          quality=False))
    assert sorted(p.name for p in out.glob("train_*.bin")) == ["train_00000.bin"]


def test_prepare_bad_inputs(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n\n ", encoding="utf-8")
    with pytest.raises(ValueError, match="no document left"):
        prepare(PrepareConfig(inputs=[str(tmp_path / "empty.txt")], out=str(tmp_path / "o"), progress=False))
    with pytest.raises(FileNotFoundError):
        prepare(PrepareConfig(inputs=[str(tmp_path / "missing.txt")], out=str(tmp_path / "o"), progress=False))
    with pytest.raises(ValueError, match="no input"):
        PrepareConfig(inputs=[], out=str(tmp_path / "o"))
    with pytest.raises(FileNotFoundError, match="bmf prepare"):
        PreparedData(tmp_path / "o2")


def _prose_docs(n=12):
    """Real English prose: the first `n` Python-docs sample documents."""
    from bigmodel_fast.data import sample_files as samples
    from bigmodel_fast.data.clean import clean_text
    from bigmodel_fast.data.sources import iter_documents

    docs = [clean_text(d.text) for d in iter_documents([samples.sample_path("pydoc_en")])]
    return [d for d in docs if len(d.split()) > 300][:n]


def test_prepare_filters_masks_and_near_dedups(tmp_path):
    docs = _prose_docs()
    near = docs[0].replace(" the ", " a ", 3) + " One more closing sentence was added here."
    spam = "\n".join(["BUY NOW cheap pills!!! click here"] * 40)
    with_pii = docs[1] + "\nWrite to jane.doe@example.org or call +1 415 555 0132 from 192.168.10.20."
    rows = [docs[0], with_pii, *docs[2:], near, spam]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in rows) + "\n", encoding="utf-8")
    index = tmp_path / "mh.index"
    stats = prepare(PrepareConfig(inputs=[str(tmp_path / "in.jsonl")], out=str(tmp_path / "out"), vocab_size=600,
                                  valid_fraction=0.0, minhash_index=str(index), progress=False))
    q = stats["quality"]
    assert q["seen"] == len(rows) and q["dropped_total"] >= 1
    assert any(r.startswith("gopher_repetition") or r.startswith("gopher_quality") for r in q["dropped"])
    assert stats["pii"]["masked"].get("email") == 1 and stats["pii"]["masked"].get("ipv4") == 1
    assert stats["pii"]["masked"].get("phone") == 1
    mh = stats["dedup"]["minhash"]
    assert mh["duplicates"] == 1 and mh["threshold"] == 0.8
    assert stats["train"]["documents"] == len(rows) - q["dropped_total"] - stats["dedup"]["duplicates"]

    data = PreparedData(tmp_path / "out")
    tok = Tokenizer(data.tokenizer_file)
    texts = [tok.decode(s[i].tolist()) for s in data.train_shards() for i in range(len(s))]
    assert not any("jane.doe@example.org" in t for t in texts)
    assert any("<EMAIL>" in t for t in texts)

    # a second run against the saved index: every document duplicates the first run's, which must fail loudly
    with pytest.raises(ValueError, match="all .* duplicates"):
        prepare(PrepareConfig(inputs=[str(tmp_path / "in.jsonl")], out=str(tmp_path / "out2"), vocab_size=600,
                              valid_fraction=0.0, minhash_index=str(index), progress=False))
    with pytest.raises(ValueError, match="MinHash index was built with"):
        prepare(PrepareConfig(inputs=[str(tmp_path / "in.jsonl")], out=str(tmp_path / "out3"), vocab_size=600,
                              near_threshold=0.5, minhash_index=str(index), progress=False))


def test_minhash_index_is_saved_only_after_the_output_is_written(tmp_path, monkeypatch):
    """A run that fails after dedup must not record its documents as seen (a re-run would drop them all)."""
    import bigmodel_fast.data.prepare as prep_mod

    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in _prose_docs(6)) + "\n",
                                       encoding="utf-8")
    index = tmp_path / "mh.index"
    cfg = PrepareConfig(inputs=[str(tmp_path / "in.jsonl")], out=str(tmp_path / "out"), vocab_size=600,
                        valid_fraction=0.0, quality=False, minhash_index=str(index), progress=False)

    def broken_train(*args, **kwargs):
        raise RuntimeError("tokenizer training failed")

    with monkeypatch.context() as m:
        m.setattr(prep_mod.Tokenizer, "train", broken_train)
        with pytest.raises(RuntimeError, match="tokenizer training failed"):
            prepare(cfg)
    assert not index.exists()
    stats = prepare(cfg)  # the retry keeps every document and only now writes the index
    assert stats["dedup"]["duplicates"] == 0 and stats["train"]["documents"] == 6
    assert index.is_file()


def test_prepare_rejects_bad_dedup_and_quality_config(tmp_path):
    with pytest.raises(ValueError, match="dedup must be"):
        PrepareConfig(inputs=["x"], out="o", dedup="fuzzy")
    with pytest.raises(ValueError, match="unknown keys"):
        PrepareConfig(inputs=["x"], out="o", quality_config={"gopher": {}})


def test_prepare_one_shot_near_dedup_uses_union_find(tmp_path):
    docs = _prose_docs(6)
    near = docs[2].replace(" the ", " a ", 2)
    rows = [*docs, near]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in rows) + "\n", encoding="utf-8")
    stats = prepare(PrepareConfig(inputs=[str(tmp_path / "in.jsonl")], out=str(tmp_path / "out"), vocab_size=600,
                                  valid_fraction=0.0, quality=False, progress=False))
    mh = stats["dedup"]["minhash"]
    assert mh["clustering"] == "union_find" and mh["duplicates"] == 1
    assert stats["train"]["documents"] == len(docs)
