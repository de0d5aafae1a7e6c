"""ops.attention_dispatch: the measured choice of dense attention on CUDA, its table, generator and reasons.

No GPU here: the CUDA decision runs on CPU tensors with the device check and the GPU-name lookup faked
(:func:`fake_cuda`); the Triton launchers are replaced by stubs that record the call and return the reference
result, so no kernel is launched.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from bigmodel_fast.ops import attention as A
from bigmodel_fast.ops import attention_dispatch as D
from bigmodel_fast.ops import backend as B

ROOT = Path(__file__).resolve().parents[2]
H100_CSV = ROOT / "benchmarks" / "results" / "attention_h100.csv"
H100 = "NVIDIA H100 80GB HBM3"
FAKE = "Fake GPU X1"
CUDA = torch.device("cuda")


def _generator():
    spec = importlib.util.spec_from_file_location("make_dispatch_table",
                                                  ROOT / "benchmarks" / "ops" / "make_dispatch_table.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_dispatch_table", mod)
    spec.loader.exec_module(mod)
    return mod


GEN = _generator()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("BMF_ATTENTION", raising=False)


def _h100_ms(dtype, causal, head_dim, seq, direction):
    """(triton ms, sdpa ms) of one key, read from the committed CSV independently of the generator."""
    got = {}
    with open(H100_CSV, newline="") as f:
        for r in csv.DictReader(f):
            if (r["dtype"], r["causal"], r["head_dim"], r["seq"], r["direction"]) == (
                    dtype, str(int(causal)), str(head_dim), str(seq), direction) and r["impl"] in ("triton", "sdpa"):
                got[r["impl"]] = float(r["ms"])
    return got["triton"], got["sdpa"]


# ------------------------------------------------------------------------------------------------ buckets, names
def test_head_dim_bucket_is_the_next_power_of_two_from_16():
    assert [D.head_dim_bucket(d) for d in (1, 8, 16, 17, 32, 33, 64, 65, 96, 128, 129)] == [
        16, 16, 16, 32, 32, 64, 64, 128, 128, 128, 256]


def test_seq_bucket_is_the_nearest_power_of_two_on_a_log_scale():
    # edges at b * sqrt(2): 362.04 (256 | 512), 724.08 (512 | 1024), 11585.2 (8192 | 16384)
    assert [D.seq_bucket(s) for s in (0, 1, 2, 362, 363, 512, 724, 725, 1000, 3000, 11585, 11586)] == [
        1, 1, 2, 256, 512, 512, 512, 1024, 1024, 4096, 8192, 16384]


def test_gpu_names_are_normalised():
    assert D.normalise_gpu_name("NVIDIA H100 80GB HBM3") == "nvidia h100 80gb hbm3"
    assert D.normalise_gpu_name("  NVIDIA A100-SXM4-80GB ") == "nvidia a100 sxm4 80gb"


def test_gpu_name_is_asked_once_per_device(monkeypatch):
    asked = []

    def props(index):
        asked.append(index)
        return type("P", (), {"name": ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"][index]})()

    monkeypatch.setattr(D, "_GPUS", {})
    monkeypatch.setattr(torch.cuda, "get_device_properties", props)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    for dev in (torch.device("cuda"), torch.device("cuda", 0), torch.device("cuda"), torch.device("cuda", 1)):
        D.gpu_name(dev)
    assert asked == [0, 1]
    assert D.gpu_name(torch.device("cuda", 1)) == ("NVIDIA A100-SXM4-80GB", "nvidia a100 sxm4 80gb")


# ------------------------------------------------------------------------------------- the committed H100 table
def _as_gpu(monkeypatch, name):
    monkeypatch.setattr(D, "gpu_name", lambda device: (name, D.normalise_gpu_name(name)))


def test_committed_table_is_what_the_generator_makes_of_the_committed_csvs():
    csvs = GEN.default_csvs()
    assert H100_CSV in csvs and all(p.name != "attention_dispatch_cpu.csv" for p in csvs)  # other CSV format
    assert GEN.render(GEN.build_table(csvs)) == D.TABLE_PATH.read_text(encoding="utf-8")
    assert GEN.main(["--check"]) == 0


def test_h100_table_sends_every_dense_key_to_sdpa(monkeypatch):
    _as_gpu(monkeypatch, H100)
    entries = D.TABLE.entries["nvidia h100 80gb hbm3"]
    assert len(entries) == 2 * 2 * 2 * 2 * 6  # dtype x head dim x causal x direction x seq
    assert {m.winner for m in entries.values()} == {"sdpa"}
    for dtype, name in ((torch.bfloat16, "bf16"), (torch.float16, "fp16")):
        for d in (64, 128):
            for causal in (False, True):
                for s in (512, 1024, 2048, 4096, 8192, 16384):
                    for needs_grad in (False, True):
                        assert D.dense_backend(CUDA, dtype, d, causal, s, needs_grad) == "sdpa"


def test_h100_reason_names_key_ratio_source_and_date(monkeypatch):
    _as_gpu(monkeypatch, H100)
    t, s = _h100_ms("bf16", True, 128, 4096, "fwd+bwd")
    backend, reason = D.dense_choice(CUDA, torch.bfloat16, 128, True, 4096, True)
    assert backend == "sdpa"
    assert reason == (f"NVIDIA H100 80GB HBM3 bf16 d128 causal seq 4096 fwd+bwd: sdpa measured {t / s:.2f}x faster "
                      "than triton (benchmarks/results/attention_h100.csv, 2026-11-22)")
    # inference (no grad) reads the fwd rows: another ratio
    t_f, s_f = _h100_ms("bf16", True, 128, 4096, "fwd")
    assert abs(t_f / s_f - t / s) > 0.05
    assert D.dense_choice(CUDA, torch.bfloat16, 128, True, 4096, False)[1].startswith(
        f"NVIDIA H100 80GB HBM3 bf16 d128 causal seq 4096 fwd: sdpa measured {t_f / s_f:.2f}x faster")
    m = D.lookup(CUDA, torch.float16, 64, False, 512, True)
    assert (m.triton_ms, m.sdpa_ms) == _h100_ms("fp16", False, 64, 512, "fwd+bwd")


def test_calls_between_measured_shapes_use_their_bucket(monkeypatch):
    _as_gpu(monkeypatch, H100)
    assert D.lookup(CUDA, torch.bfloat16, 96, False, 3000, True) == D.lookup(CUDA, torch.bfloat16, 128, False, 4096,
                                                                            True)
    assert D.lookup(CUDA, torch.bfloat16, 64, False, 724, True) == D.lookup(CUDA, torch.bfloat16, 64, False, 512,
                                                                           True)
    assert D.lookup(CUDA, torch.bfloat16, 64, False, 725, True) == D.lookup(CUDA, torch.bfloat16, 64, False, 1024,
                                                                           True)
    reason = D.dense_choice(CUDA, torch.bfloat16, 96, False, 3000, True)[1]
    assert reason.startswith("NVIDIA H100 80GB HBM3 bf16 d96 (bucket d128) non-causal seq 3000 (bucket 4096) fwd+bwd: ")


def test_unmeasured_gpu_or_key_gets_sdpa(monkeypatch):
    _as_gpu(monkeypatch, "NVIDIA A100-SXM4-80GB")
    assert D.lookup(CUDA, torch.bfloat16, 128, True, 4096, True) is None
    assert D.dense_choice(CUDA, torch.bfloat16, 128, True, 4096, True) == (
        "sdpa", "no committed measurement for NVIDIA A100-SXM4-80GB: sdpa")
    _as_gpu(monkeypatch, H100)
    for args, what in (((torch.float32, 128, True, 4096), "fp32 d128 causal seq 4096"),
                       ((torch.bfloat16, 32, True, 4096), "bf16 d32 causal seq 4096"),
                       ((torch.bfloat16, 128, False, 256), "bf16 d128 non-causal seq 256"),
                       ((torch.bfloat16, 128, False, 32768), "bf16 d128 non-causal seq 32768")):
        assert D.lookup(CUDA, *args, True) is None
        assert D.dense_choice(CUDA, *args, True) == ("sdpa", f"NVIDIA H100 80GB HBM3 {what} fwd+bwd: not measured: "
                                                             "sdpa")


def test_pyproject_ships_the_table_as_package_data():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # no tomllib on Python 3.10
    section = text.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    line = next(ln for ln in section.splitlines() if ln.startswith('"bigmodel_fast" ='))
    assert '"ops/attention_dispatch.json"' in line


# ------------------------------------------------------------------------------------------------- the generator
CSV_FIELDS = ["gpu", "torch", "triton", "date", "impl", "sdpa_backend", "dtype", "causal", "head_dim", "batch",
              "heads", "seq", "direction", "ms", "tflops", "peak_mem_mb", "note"]


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for gpu, date, impl, dtype, causal, d, s, direction, ms in rows:
            w.writerow(dict(gpu=gpu, torch="2.x", triton="3.x", date=date, impl=impl,
                            sdpa_backend="FLASH_ATTENTION" if impl == "sdpa" else "", dtype=dtype, causal=causal,
                            head_dim=d, batch=1, heads=1, seq=s, direction=direction, ms=ms, tflops=1, peak_mem_mb=1,
                            note=""))
    return path


@pytest.fixture
def fake_table(tmp_path, monkeypatch):
    """A table for FAKE: fp32 d16 causal seq 8 -> triton wins fwd+bwd (2x), sdpa wins fwd (1.25x)."""
    old, new = "2026-01-01 00:00 UTC", "2026-02-01 00:00 UTC"
    a = _write_csv(tmp_path / "attention_a.csv", [
        (FAKE, new, "triton", "fp32", 1, 16, 8, "fwd+bwd", 1.0), (FAKE, new, "sdpa", "fp32", 1, 16, 8, "fwd+bwd", 2.0),
        (FAKE, new, "triton", "fp32", 1, 16, 8, "fwd", 1.25), (FAKE, new, "sdpa", "fp32", 1, 16, 8, "fwd", 1.0),
        (FAKE, new, "triton", "fp32", 1, 16, 8, "bwd", 0.1), (FAKE, new, "sdpa", "fp32", 1, 16, 8, "bwd", 9.0),
        (FAKE, new, "eager", "fp32", 1, 16, 8, "fwd+bwd", 0.01),  # only triton vs sdpa counts
        (FAKE, new, "triton", "fp32", 0, 16, 8, "fwd+bwd", 1.0),  # no sdpa row: no entry
        ("cpu-interpreter", new, "triton", "fp32", 1, 16, 8, "fwd", 1.0),
        ("cpu-interpreter", new, "sdpa", "fp32", 1, 16, 8, "fwd", 2.0),
    ])
    b = _write_csv(tmp_path / "attention_b.csv", [  # an older run of one key: loses to the newer one in a.csv
        (FAKE, old, "triton", "fp32", 1, 16, 8, "fwd+bwd", 5.0), (FAKE, old, "sdpa", "fp32", 1, 16, 8, "fwd+bwd", 1.0),
        (FAKE, old, "triton", "fp16", 0, 64, 1024, "fwd", 1.0), (FAKE, old, "sdpa", "fp16", 0, 64, 1024, "fwd", 1.04),
    ])
    table = GEN.build_table([b, a])
    out = tmp_path / "table.json"
    out.write_text(GEN.render(table), encoding="utf-8")
    monkeypatch.setattr(D, "TABLE", D.load_table(out))
    return table, out, (a, b)


def test_generator_keeps_the_newest_complete_run_per_key(fake_table):
    table, _, (a, b) = fake_table
    assert list(table["gpus"]) == ["fake gpu x1"]  # the interpreter dry run is no GPU
    entries = {(e["dtype"], e["head_dim"], e["causal"], e["seq"], e["direction"]): e
               for e in table["gpus"]["fake gpu x1"]["entries"]}
    assert set(entries) == {("fp32", 16, True, 8, "fwd+bwd"), ("fp32", 16, True, 8, "fwd"),
                            ("fp16", 64, False, 1024, "fwd")}
    e = entries["fp32", 16, True, 8, "fwd+bwd"]
    assert (e["winner"], e["ratio"], e["triton_ms"], e["sdpa_ms"], e["date"]) == (
        "triton", 2.0, 1.0, 2.0, "2026-02-01 00:00 UTC")
    assert e["source"] == a.as_posix() and e["sdpa_backend"] == "FLASH_ATTENTION"  # outside the repo: as given
    assert (entries["fp32", 16, True, 8, "fwd"]["winner"], entries["fp32", 16, True, 8, "fwd"]["ratio"]) == (
        "sdpa", 1.25)
    assert entries["fp16", 64, False, 1024, "fwd"]["winner"] == "triton"
    margin = GEN.build_table([b, a], min_ratio=1.05)  # 1.04x is under a 5% margin
    assert [e["winner"] for e in margin["gpus"]["fake gpu x1"]["entries"] if e["dtype"] == "fp16"] == ["sdpa"]


def test_generator_cli_writes_and_checks(fake_table, tmp_path, capsys):
    _, want, (a, b) = fake_table
    out = tmp_path / "cli.json"
    assert GEN.main([str(b), str(a), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == want.read_text(encoding="utf-8")
    assert GEN.main([str(b), str(a), "--out", str(out), "--check"]) == 0
    assert GEN.main([str(a), "--out", str(out), "--check"]) == 1  # a.csv alone: another table
    assert "stale" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("gpu,impl,ms\nX,triton,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        GEN.build_table([bad])


def test_margin_reason_and_bad_schema(fake_table, tmp_path, monkeypatch):
    _, _, (a, b) = fake_table
    out = tmp_path / "margin.json"
    out.write_text(GEN.render(GEN.build_table([b, a], min_ratio=1.05)), encoding="utf-8")
    monkeypatch.setattr(D, "TABLE", D.load_table(out))
    _as_gpu(monkeypatch, FAKE)
    assert D.dense_choice(CUDA, torch.float16, 64, False, 1024, False) == (
        "sdpa", f"Fake GPU X1 fp16 d64 non-causal seq 1024 fwd: triton measured only 1.04x faster, not above the "
                f"1.05x margin: sdpa ({b.as_posix()}, 2026-01-01)")
    raw = json.loads(out.read_text(encoding="utf-8"))
    raw["schema"] = 99
    out.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ValueError, match="schema=99"):
        D.load_table(out)


# ------------------------------------------------------------------ attention() / attention_choice() on fake CUDA
@pytest.fixture
def fake_cuda(monkeypatch, fake_table):
    """CPU tensors resolve as if on CUDA on FAKE; the Triton launchers record and return the reference."""
    real = A.attention_backend

    def as_cuda(device=None, backend=None, keep_auto=False):
        return real(CUDA if device is None or device.type == "cpu" else device, backend, keep_auto)

    monkeypatch.setattr(A, "attention_backend", as_cuda)
    _as_gpu(monkeypatch, FAKE)
    calls = []
    reference = A.attention_reference
    for name, ran in (("attention_sdpa", "sdpa"), ("attention_reference", "reference")):
        fn = getattr(A, name)
        monkeypatch.setattr(A, name, lambda *a, _f=fn, _r=ran, **k: calls.append(_r) or _f(*a, **k))
    monkeypatch.setattr(A, "_triton_dense", lambda q, k, v, m, c, s: calls.append("triton")
                        or reference(q, k, v, m, c, s))
    monkeypatch.setattr(A, "triton_varlen_attention", lambda q, k, v, cu, ms, c, s: calls.append("triton_varlen")
                        or q.clone())
    return calls


def _qkv(s_q=8, s_k=8, h=2, h_kv=2, d=16, grad=True):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, h, s_q, d, generator=g).requires_grad_(grad)
    k = torch.randn(1, h_kv, s_k, d, generator=g).requires_grad_(grad)
    v = torch.randn(1, h_kv, s_k, d, generator=g).requires_grad_(grad)
    return q, k, v


def test_auto_on_cuda_runs_the_measured_winner_and_says_why(fake_cuda, fake_table):
    calls = fake_cuda
    q, k, v = _qkv()
    src = fake_table[2][0].as_posix()
    assert A.attention_choice(q, k, v, causal=True) == (
        "triton", f"Fake GPU X1 fp32 d16 causal seq 8 fwd+bwd: triton measured 2.00x faster than sdpa ({src}, "
                  "2026-02-01)")
    out = A.attention(q, k, v, causal=True)
    out.sum().backward()  # the stub is differentiable: a training call
    with torch.no_grad():  # inference reads the fwd rows: sdpa won those
        assert A.attention_choice(q, k, v, causal=True) == (
            "sdpa", f"Fake GPU X1 fp32 d16 causal seq 8 fwd: sdpa measured 1.25x faster than triton ({src}, "
                    "2026-02-01)")
        A.attention(q, k, v, causal=True)
    qn, kn, vn = _qkv(grad=False)  # no tensor needs grad: inference too
    assert A.attention_choice(qn, kn, vn, causal=True)[0] == "sdpa"
    A.attention(qn, kn, vn, causal=True)
    assert A.attention_choice(q, k, v, causal=False) == (  # key not measured
        "sdpa", "Fake GPU X1 fp32 d16 non-causal seq 8 fwd+bwd: not measured: sdpa")
    A.attention(q, k, v, causal=False)
    assert calls == ["triton", "sdpa", "sdpa", "sdpa"]


def test_auto_on_cuda_calls_outside_the_table(fake_cuda):
    calls = fake_cuda
    q, k, v = _qkv()
    choice = A.attention_choice(q, k, v, causal=True, dropout_p=0.1)
    assert choice == ("sdpa", "auto: the Triton kernel cannot run this call (dropout_p > 0 (the kernel has no "
                              "dropout)): sdpa")
    qs, ks, vs = _qkv(s_q=4, s_k=8)
    assert A.attention_choice(qs, ks, vs, causal=True) == (
        "sdpa", "auto: no committed measurement for S_q=4 != S_k=8 (the table holds S_q == S_k): sdpa")
    pad = torch.ones(1, 1, 1, 8, dtype=torch.bool)
    pad[..., 6:] = False
    backend, reason = A.attention_choice(q, k, v, pad, causal=True)
    assert backend == "triton" and reason.endswith("[measured without attn_mask]")
    qg, kg, vg = _qkv(h=4, h_kv=2)
    assert A.attention_choice(qg, kg, vg, causal=True)[1].endswith("[measured with H == H_kv]")
    general = torch.ones(8, 8, dtype=torch.bool).tril()
    assert "not a bool key-padding mask" in A.attention_choice(q, k, v, general)[1]
    A.attention(q, k, v, causal=True, dropout_p=0.1)
    A.attention(qs, ks, vs, causal=True)
    A.attention(q, k, v, pad, causal=True)
    A.attention(qg, kg, vg, causal=True)
    A.attention(q, k, v, general)
    assert calls == ["sdpa", "sdpa", "triton", "triton", "sdpa"]


def test_overrides_still_force_a_backend_on_cuda(fake_cuda, monkeypatch):
    calls = fake_cuda
    q, k, v = _qkv(grad=False)  # auto would pick sdpa (the fwd rows)
    assert A.attention_choice(q, k, v, causal=True, backend="triton") == ("triton", "triton: set by argument backend")
    A.attention(q, k, v, causal=True, backend="triton")
    monkeypatch.setenv("BMF_ATTENTION", "triton")
    assert A.attention_choice(q, k, v, causal=True) == ("triton",
                                                        "triton: set by environment variable BMF_ATTENTION")
    A.attention(q, k, v, causal=True)
    assert A.attention_choice(q, k, v, causal=True, dropout_p=0.5)[1] == (
        "triton set by environment variable BMF_ATTENTION, but the kernel cannot run this call (dropout_p > 0 "
        "(the kernel has no dropout)): sdpa")
    qg, kg, vg = _qkv(grad=True)  # auto would pick triton (the fwd+bwd rows)
    monkeypatch.setenv("BMF_ATTENTION", "sdpa")
    assert A.attention_choice(qg, kg, vg, causal=True) == ("sdpa", "sdpa: set by environment variable BMF_ATTENTION")
    A.attention(qg, kg, vg, causal=True)
    with B.use_backends(attention="reference"):
        assert A.attention_choice(qg, kg, vg, causal=True) == ("reference", "reference: set by use_backends(attention)")
        A.attention(qg, kg, vg, causal=True)
        assert A.attention_choice(qg, kg, vg, causal=True, backend="auto")[0] == "triton"  # argument > block
        A.attention(qg, kg, vg, causal=True, backend="auto")
    monkeypatch.setenv("BMF_ATTENTION", " AUTO ")
    assert A.attention_choice(qg, kg, vg, causal=True)[0] == "triton"
    assert calls == ["triton", "triton", "sdpa", "reference", "triton"]


def test_packed_calls_on_cuda_run_the_varlen_kernel(fake_cuda, monkeypatch):
    calls = fake_cuda
    q = torch.randn(9, 2, 16)
    cu = torch.tensor([0, 4, 9], dtype=torch.int32)
    assert A.varlen_attention_choice(q, q, q) == (
        "triton", "auto on cuda: packed calls run the Triton varlen kernel (SDPA needs padding)")
    A.varlen_attention(q, q, q, cu, 5)
    assert A.varlen_attention_choice(q, q, q, backend="sdpa") == ("sdpa", "sdpa per-sequence loop: set by argument "
                                                                          "backend")
    assert A.varlen_attention_choice(q.double(), q.double(), q.double())[0] == "sdpa"  # fp64: not the kernel's
    monkeypatch.setenv("BMF_ATTENTION", "triton")
    assert A.varlen_attention_choice(q, q, q) == (
        "triton", "triton: set by environment variable BMF_ATTENTION (the varlen kernel)")
    A.varlen_attention(q, q, q, cu, 5)
    assert calls == ["triton_varlen", "triton_varlen"]
    with pytest.raises(ValueError, match="packed 3-D"):
        A.varlen_attention_choice(q[None], q[None], q[None])


@pytest.mark.parametrize("dynamic", [False, True])
def test_auto_on_cuda_traces_under_torch_compile_fullgraph(fake_cuda, dynamic):
    """The measured choice (table lookup, buckets, grad check) must not break a fullgraph trace of attention, with
    static or symbolic sequence lengths."""
    calls = fake_cuda
    q, k, v = _qkv()
    torch._dynamo.reset()
    try:
        if dynamic:
            for t in (q, k, v):
                torch._dynamo.mark_dynamic(t, 2)
        got = torch.compile(lambda q, k, v: A.attention(q, k, v, causal=True), backend="eager", fullgraph=True)(
            q, k, v)
    finally:
        torch._dynamo.reset()
    assert calls == ["triton"]
    torch.testing.assert_close(got, A.attention_reference(q, k, v, causal=True))


# ---------------------------------------------------------------------------------------- real CPU, no faking
def test_cpu_choices_are_unchanged(monkeypatch):
    q, k, v = _qkv()
    assert A.attention_choice(q, k, v) == ("sdpa", "auto on cpu: sdpa (the device default)")
    assert A.attention_backend(q.device, keep_auto=True) == "sdpa"  # auto is decided per call on CUDA only
    monkeypatch.setenv("BMF_ATTENTION", "Reference")
    assert A.attention_choice(q, k, v) == ("reference", "reference: set by environment variable BMF_ATTENTION")
    monkeypatch.setenv("BMF_ATTENTION", "")
    assert A.attention_choice(q, k, v) == ("sdpa", "auto on cpu: sdpa (the device default)")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert A.attention_choice(q, k, v, backend="triton") == ("triton", "triton: set by argument backend")
    with pytest.raises(A.AttentionBackendError, match="flash9"):
        A.attention_choice(q, k, v, backend="flash9")
    with pytest.raises(ValueError, match="4-D"):
        A.attention_choice(q[0], k[0], v[0])
    assert A.varlen_attention_choice(q[0], k[0], v[0]) == ("sdpa", "auto on cpu: sdpa per-sequence loop (the device "
                                                                   "default)")
