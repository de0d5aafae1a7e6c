"""The FLOPs formula against ``FlopCounterMode`` over a real forward + backward, the peak table and the MFU maths.

The counter counts exactly the matmuls (mm / addmm / bmm, forward and backward), and attention runs the
``reference`` backend (two matmuls, counted; the CPU SDPA op is not). So each counted total equals the formula
times the number of positions plus a difference known in closed form: the causal scores the formula halves, or
the one recurrent matmul per LSTM layer whose input (h0 = 0) needs no gradient.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bigmodel_fast.models import ModelConfig, build_pretraining_model
from bigmodel_fast.ops.backend import use_backends
from bigmodel_fast.train import flops
from bigmodel_fast.train.flops import peak_for_name, peak_tflops, throughput, training_flops_per_token

B, S, E, L, V = 3, 16, 32, 2, 97


def counted_fwd_bwd(cfg: ModelConfig, lm_loss: str = "plain", **batch) -> int:
    """FLOPs FlopCounterMode counts over one forward + backward of the pretraining model (dropout 0). GPT / LSTM
    count with the plain LM loss by default: the chunked one runs the same three (N, E) x (E, V) matmuls, but its
    weight-gradient accumulation is an in-place ``addmm_``, which the counter does not see (see the test below)."""
    torch.manual_seed(0)
    model = build_pretraining_model(cfg).train()
    if hasattr(model, "lm_loss"):
        model.lm_loss = lm_loss
    with use_backends(attention="reference", lstm="reference"), FlopCounterMode(display=False) as counter:
        model(**batch)["loss"].backward()
    return counter.get_total_flops()


def ids(vocab: int = V) -> torch.Tensor:
    return torch.randint(5, vocab, (B, S), generator=torch.Generator().manual_seed(1))


def test_gpt_matches_counted_matmuls_up_to_the_causal_half():
    cfg = ModelConfig(arch="gpt", vocab_size=V, hidden_size=E, num_layers=L, num_heads=4, intermediate_size=48,
                      max_position=S, dropout=0.0)
    x = ids()
    counted = counted_fwd_bwd(cfg, input_ids=x, labels=x)
    formula = training_flops_per_token(cfg, S) * B * S
    # the reference computes all S x S scores; the formula counts half of them: 3 x L x (4 S E / 2) per token
    masked_half = 3 * L * (2 * 2 * S * E * 0.5) * B * S
    assert counted == pytest.approx(formula + masked_half, rel=1e-12)
    assert formula < counted < 1.2 * formula  # the causal half is a small share at S = 16, E = 32
    # the chunked loss: the same matmuls, minus the grad-weight addmm_ (2 N E V) the counter misses
    chunked = counted_fwd_bwd(cfg, lm_loss="chunked", input_ids=x, labels=x)
    assert chunked == counted - 2 * B * S * E * V


def test_gpt_grouped_query_heads_and_untied_head():
    cfg = ModelConfig(arch="gpt", vocab_size=V, hidden_size=E, num_layers=L, num_heads=4, num_kv_heads=2,
                      intermediate_size=40, max_position=S, dropout=0.0, tie_embeddings=False)
    x = ids()
    counted = counted_fwd_bwd(cfg, input_ids=x, labels=x)
    masked_half = 3 * L * (2 * 2 * S * E * 0.5) * B * S
    assert counted == pytest.approx(training_flops_per_token(cfg, S) * B * S + masked_half, rel=1e-12)


@pytest.mark.parametrize("nsp", [True, False])
def test_bert_mlm_head_at_the_masked_positions_only(nsp):
    cfg = ModelConfig(arch="bert", vocab_size=V, hidden_size=E, num_layers=L, num_heads=4, intermediate_size=48,
                      max_position=S, dropout=0.0)
    x = ids()
    labels = torch.full_like(x, -100)
    masked = [(0, 1), (0, 5), (1, 2), (2, 0), (2, 9), (2, 15), (1, 11)]  # N = 7 of the B * S = 48 positions
    for r, c in masked:
        labels[r, c] = x[r, c]
    batch = dict(input_ids=x, mlm_labels=labels)
    if nsp:
        batch["nsp_labels"] = torch.tensor([0, 1, 0])
    counted = counted_fwd_bwd(cfg, **batch)
    formula = training_flops_per_token(cfg, S, mlm_fraction=len(masked) / (B * S), nsp=nsp) * B * S
    if nsp:  # bidirectional attention and a known masked count: nothing is approximated
        assert counted == pytest.approx(formula, rel=1e-12)
    else:  # without NSP the pooler + classifier run forward only: 2 (E^2 + 2E) per row, left out by the formula
        assert counted == pytest.approx(formula + 2 * (E * E + 2 * E) * B, rel=1e-12)
    # all 48 positions through the MLM head instead of 7: 20% more, far outside the exact match above
    wrong = training_flops_per_token(cfg, S, mlm_fraction=1.0, nsp=nsp) * B * S
    assert wrong > 1.15 * counted


def test_lstm_gate_matmuls_and_head():
    cfg = ModelConfig(arch="lstm", vocab_size=V, hidden_size=E, num_layers=L, dropout=0.0, max_position=S)
    x = ids()
    counted = counted_fwd_bwd(cfg, input_ids=x, labels=x)
    formula = training_flops_per_token(cfg, S) * B * S
    # step 0 of each layer multiplies h0 = 0, which needs no gradient: its backward is one matmul, not two
    no_grad_h0 = L * 2 * B * E * 4 * E
    assert counted == pytest.approx(formula - no_grad_h0, rel=1e-12)


def test_gpt2_124m_figure():
    """The well-known figure: about 6 x 124M x (1 + attention) ~ 0.8 GFLOP per token at seq 1024."""
    cfg = ModelConfig(arch="gpt", vocab_size=50257, hidden_size=768, num_layers=12, num_heads=12,
                      intermediate_size=3072, max_position=1024)
    f = training_flops_per_token(cfg, 1024)
    non_embedding = 12 * 12 * 768 * 768  # 85M: 12 layers x (4 E^2 attention + 8 E^2 MLP)
    expected = 6 * (non_embedding + 768 * 50257) + 3 * 12 * 2 * 1024 * 768  # + causal attention
    assert f == pytest.approx(expected, rel=1e-12)
    assert 0.79e9 < f < 0.81e9


def test_bad_arguments_raise_naming_the_field():
    gpt = ModelConfig(arch="gpt", vocab_size=V, hidden_size=E, num_layers=1, num_heads=4, max_position=S)
    bert = ModelConfig(arch="bert", vocab_size=V, hidden_size=E, num_layers=1, num_heads=4, max_position=S)
    with pytest.raises(ValueError, match="mlm_fraction"):
        training_flops_per_token(bert, S)  # the MLM share must be given
    with pytest.raises(ValueError, match="mlm_fraction"):
        training_flops_per_token(bert, S, mlm_fraction=1.5)
    with pytest.raises(ValueError, match="mlm_fraction"):
        training_flops_per_token(gpt, S, mlm_fraction=0.15)
    with pytest.raises(ValueError, match="seq_len"):
        training_flops_per_token(gpt, 0)


@pytest.mark.parametrize("name,precision,expected", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.0),
    ("NVIDIA H100 PCIe", "bf16", 756.0),
    ("NVIDIA H100 NVL", "fp16", 835.0),
    ("NVIDIA H200", "bf16", 989.0),
    ("NVIDIA H200 NVL", "bf16", 835.0),
    ("NVIDIA GH200 480GB", "bf16", 989.0),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312.0),
    ("NVIDIA A100 80GB PCIe", "tf32", 156.0),
    ("NVIDIA A10", "bf16", 125.0),
    ("NVIDIA L40S", "bf16", 362.0),
    ("NVIDIA L40", "bf16", 181.0),
    ("NVIDIA L4", "bf16", 121.0),
    ("NVIDIA H100 80GB HBM3", "tf32", 494.5),
    ("NVIDIA H100 80GB HBM3", "fp32", 67.0),
])
def test_peak_table(name, precision, expected):
    value, source = peak_for_name(name, precision)
    assert value == expected
    assert name in source and precision in source


def test_peak_unknown_gpus_and_cpu_need_an_override():
    assert peak_for_name("NVIDIA A10G", "bf16")[0] is None  # "A10" must not match A10G (or A100 match A10)
    assert peak_for_name("Tesla T4", "bf16") == (None, "no peak known for 'Tesla T4'; pass --peak-tflops")
    assert peak_tflops("cpu", "auto") == (None, "no peak known for CPU; pass --peak-tflops")
    assert peak_tflops("cpu", "auto", override=123.0) == (123.0, "--peak-tflops")
    with pytest.raises(ValueError, match="peak_tflops"):
        peak_tflops("cpu", "auto", override=0)
    with pytest.raises(ValueError, match="precision"):
        peak_for_name("NVIDIA H100", "int8")


def test_peak_on_cuda_reads_the_device_name(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert peak_tflops("cuda", "auto")[0] == 989.0
    assert peak_tflops("cuda:0", "fp16")[0] == 989.0
    # set and restored by hand: cuBLAS's flags are served by the module's __getattr__, which some pytest versions'
    # monkeypatch does not see (it then deletes the attribute at teardown and fails)
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "highest")
        assert peak_tflops("cuda", "off")[0] == 67.0
        monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "high")
        assert peak_tflops("cuda", "off")[0] == 494.5
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    with pytest.raises(ValueError, match="amp"):
        peak_tflops("cuda", "int8")


def test_throughput_window():
    rec = throughput(tokens=2_000_000, seconds=4.0, flops_per_token=0.8e9, peak=989.0)
    assert rec["tokens_per_s"] == 500_000.0
    assert rec["tflops"] == pytest.approx(400.0)
    assert rec["mfu"] == pytest.approx(400.0 / 989.0, rel=1e-5)
    cpu = throughput(tokens=1000, seconds=2.0, flops_per_token=1e6)  # tiny CPU model: not rounded to 0
    assert cpu == {"tokens_per_s": 500.0, "tflops": 5e-4, "mfu": None}
    assert throughput(10, 0.0, 1e6, 989.0) == {"tokens_per_s": None, "tflops": None, "mfu": None}
    assert flops.__all__  # the module's public names are declared
