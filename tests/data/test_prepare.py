import json

import pytest

from bigmodel_fast.data.prepare import PrepareConfig, prepare
from bigmodel_fast.data.prepared import PreparedData
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
    stats = prepare(PrepareConfig(inputs=[str(tmp_path / "in")], out=str(tmp_path / "out"), vocab_size=300,
                                  valid_fraction=0.1, progress=False))
    assert stats["read"]["documents"] == 66 and stats["read"]["repaired_bytes"] == 1
    assert stats["clean"]["dropped_empty"] + stats["clean"]["dropped_short"] == 2
    assert stats["dedup"]["duplicates"] == 3  # the HTML-wrapped copy is equal after cleaning
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
                          max_tokens_per_shard=500))
    many = sorted(p.name for p in out.glob("train_*.bin"))
    assert len(many) > 1
    prepare(PrepareConfig(inputs=[str(tmp_path / "in")], out=str(out), vocab_size=300, progress=False))
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
