"""`bmf finetune --long-text/--long-text-stride`: bad values exit 2 with one line, --max-len beyond the model's
positions is refused, the truncation report is printed, and a chunks run saves its setting and trains on windows."""

from __future__ import annotations

import json

import pytest

from bigmodel_fast.cli import main


def base(tiny_pretrained, sentiment_small, out) -> list[str]:
    return ["finetune", "--checkpoint", str(tiny_pretrained), "--train", str(sentiment_small["train"]),
            "--out", str(out), "--device", "cpu", "--no-progress"]


@pytest.mark.parametrize("args,needle", [(["--long-text", "split"], "invalid choice: 'split'"),
                                         (["--long-text-stride", "-1"], "long_text_stride must be >= 0, got -1"),
                                         (["--long-text-stride", "x"], "--long-text-stride")])
def test_bad_flags_exit_2_with_one_error_line(tiny_pretrained, sentiment_small, tmp_path, capsys, args, needle):
    try:
        code = main(base(tiny_pretrained, sentiment_small, tmp_path / "o") + args)
    except SystemExit as e:  # refused by the parser (after its usage line)
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "error:" in last and needle in last, err
    assert not (tmp_path / "o" / "checkpoint").exists()


def one_line(capsys, *needles) -> str:
    """Exactly one error line on stderr (notes of the run before it may precede it), holding every needle."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert "Traceback" not in err and len(errors) == 1, err
    for n in needles:
        assert n in errors[0], (n, err)
    return errors[0]


def test_max_len_beyond_the_positions_and_a_stride_beyond_the_window(tiny_pretrained, sentiment_small, tmp_path,
                                                                    capsys):
    from bigmodel_fast import checkpoint as ckpt

    limit = ckpt.read_meta(tiny_pretrained)[0]["max_position"]
    assert main(base(tiny_pretrained, sentiment_small, tmp_path / "a") + ["--max-len", str(limit + 1)]) == 2
    one_line(capsys, f"--max-len {limit + 1} exceeds the model's {limit} positions", f"--max-len {limit} or less",
             "--long-text chunks")
    assert main(base(tiny_pretrained, sentiment_small, tmp_path / "b") + ["--max-len", "16", "--long-text", "chunks",
                                                                        "--long-text-stride", "15"]) == 2
    one_line(capsys, "stride 15 exceeds the 14 text tokens")


def test_chunks_run_reports_cut_texts_and_saves_the_setting(tiny_pretrained, sentiment_small, tmp_path, capsys):
    from bigmodel_fast import checkpoint as ckpt
    from bigmodel_fast.data.classification import read_labelled
    from bigmodel_fast.data.long_text import encode_long
    from bigmodel_fast.data.tokenizer_base import load_tokenizer

    out = tmp_path / "ft"
    args = base(tiny_pretrained, sentiment_small, out) + ["--valid", str(sentiment_small["valid"]), "--max-len", "16",
                                                          "--long-text", "chunks", "--long-text-stride", "7",
                                                          "--epochs", "1"]
    assert main(args) == 0
    captured = capsys.readouterr()
    train = read_labelled(sentiment_small["train"])
    enc = encode_long(load_tokenizer(ckpt.tokenizer_path(tiny_pretrained)), train.texts, 16, "chunks", 7)
    r = enc.report
    assert r["over"] > 0
    assert (f"{r['over']} of {r['texts']} training texts exceed --max-len 16 by up to {r['max_excess']} tokens "
            f"(mean {r['mean_excess']:.1f}); --long-text chunks") in captured.err
    summary = json.loads(captured.out[captured.out.index("{"):])
    assert summary["train_windows"] == len(enc.seqs) > len(train)  # every window is a training example
    _, meta = ckpt.read_meta(out / "checkpoint")
    assert meta["long_text"] == {"mode": "chunks", "stride": 7} and meta["max_len"] == 16
