"""ops.backend: the one backend resolution of attention and LSTM.

Precedence (documented in ``bigmodel_fast/ops/backend.py``): explicit ``backend=`` > ``use_backends`` block >
environment variable > device default; the same names, defaults and error timing for both ops; the export path
ends on the reference ops whatever the environment says.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
import torch

from bigmodel_fast.ops import attention as A
from bigmodel_fast.ops import backend as B
from bigmodel_fast.ops import lstm as L

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
OPS_DIR = Path(B.__file__).parent
# op -> (env var, its non-default backend on CPU, its CPU default, its own error class)
OPS = {"attention": ("BMF_ATTENTION", "reference", "sdpa", A.AttentionBackendError),
       "lstm": ("BMF_LSTM", "triton", "reference", L.LSTMBackendError)}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for env, *_ in OPS.values():
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # `triton` can run on CPU unless a test says otherwise


@pytest.mark.parametrize("op", list(OPS))
def test_precedence_argument_then_block_then_env_then_device(op, monkeypatch):
    env, other, default, _ = OPS[op]
    assert B.resolve_backend(op, CPU) == default
    assert B.resolve_backend(op) == default  # no device: CPU
    assert B.resolve_backend(op, CUDA) == "triton"
    monkeypatch.setenv(env, other)
    assert B.resolve_backend(op, CPU) == other  # env > device default
    with B.use_backends(**{op: "auto"}):
        assert B.resolve_backend(op, CPU) == default  # block > env ("auto" = device default)
        assert B.resolve_backend(op, CPU, backend=other) == other  # argument > block
        with B.use_backends(**{op: other}):  # innermost block wins
            assert B.resolve_backend(op, CPU) == other
        assert B.resolve_backend(op, CPU) == default
    monkeypatch.setenv(env, " AUTO ")
    assert B.resolve_backend(op, CUDA) == "triton"
    assert B.resolve_backend(op, CPU, backend=" Reference ") == "reference"  # case and whitespace ignored
    assert B.resolve_backend(op, CUDA, backend="") == "triton"  # empty argument: device default, env not read


def test_both_ops_share_names_and_defaults():
    assert A.VALID_BACKENDS == ("auto", "sdpa", "reference", "triton")
    assert L.VALID_BACKENDS == ("auto", "reference", "triton")
    assert A.ENV_VAR == "BMF_ATTENTION" and L.ENV_VAR == "BMF_LSTM"
    assert A.attention_backend(CPU) == "sdpa" and L.lstm_backend(CPU) == "reference"
    assert A.attention_backend(CUDA, "auto") == L.lstm_backend(CUDA, "auto") == "triton"
    with pytest.raises(ValueError, match="op='conv'"):
        B.resolve_backend("conv", CPU)


def test_keep_auto_leaves_the_attention_choice_on_cuda_to_the_call(monkeypatch):
    """``keep_auto=True`` (what the ops ask) returns "auto" only where the op decides per call: CUDA with Triton."""
    assert B.resolve_backend("attention", CUDA, keep_auto=True) == "auto"
    assert B.resolve_backend("attention", CUDA) == "triton"  # a caller that sees no call: the kernels auto may run
    assert B.resolve_backend("attention", CPU, keep_auto=True) == "sdpa"
    assert B.resolve_backend("attention", CUDA, "triton", keep_auto=True) == "triton"  # forced stays forced
    monkeypatch.setenv("BMF_ATTENTION", "sdpa")
    assert B.resolve_backend("attention", CUDA, keep_auto=True) == "sdpa"
    assert B.resolve_backend("attention", CUDA, "auto", keep_auto=True) == "auto"
    monkeypatch.setattr(B, "HAS_TRITON", False)
    assert B.resolve_backend("attention", CUDA, "auto", keep_auto=True) == "sdpa"


def test_requested_backend_names_where_the_name_came_from(monkeypatch):
    assert B.requested_backend("attention") == ("auto", "default")
    monkeypatch.setenv("BMF_ATTENTION", " SDPA ")
    assert B.requested_backend("attention") == ("sdpa", "environment variable BMF_ATTENTION")
    with B.use_backends(attention="reference"):
        assert B.requested_backend("attention") == ("reference", "use_backends(attention)")
        assert B.requested_backend("attention", "") == ("auto", "argument backend")
    monkeypatch.setenv("BMF_LSTM", "cudnn")
    with pytest.raises(L.LSTMBackendError, match="environment variable BMF_LSTM='cudnn'"):
        B.requested_backend("lstm")


def test_error_hierarchy():
    for err in (A.AttentionBackendError, L.LSTMBackendError, A.TritonUnavailableError):
        assert issubclass(err, B.BackendError) and issubclass(err, ValueError)
    assert issubclass(A.TritonUnavailableError, RuntimeError)
    assert issubclass(B.AttentionTritonUnavailableError, A.AttentionBackendError)
    assert issubclass(B.LSTMTritonUnavailableError, L.LSTMBackendError)
    assert issubclass(B.LSTMTritonUnavailableError, A.TritonUnavailableError)


def _op_calls(monkeypatch):
    """Spy every backend of both ops; returns the list of backends that ran."""
    calls = []
    for mod, name in ((A, "attention_sdpa"), (A, "attention_reference"), (A, "_triton_dense"),
                      (L, "lstm_recurrence_reference"), (L, "lstm_recurrence_triton")):
        real = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, _n=name, _r=real, **k: calls.append(_n) or _r(*a, **k))
    return calls


def _call(op, backend=None):
    if op == "attention":
        q = torch.randn(1, 2, 3, 8)
        return A.attention(q, q, q, backend=backend)
    xg, w, h0 = torch.randn(3, 2, 16), torch.randn(16, 4), torch.zeros(2, 4)
    return L.lstm_recurrence(xg, w, h0, h0, backend=backend)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("where", ["argument", "env", "block"])
def test_bad_name_raises_at_resolution_for_both_ops(op, where, monkeypatch):
    env, _, _, err = OPS[op]
    calls = _op_calls(monkeypatch)
    source = {"argument": "argument backend", "env": "environment variable " + env, "block": f"use_backends({op})"}
    with pytest.raises(err, match=re.escape(source[where]) + r"='cudnn'.*auto, .*reference, triton") as ei:
        if where == "argument":
            _call(op, backend="cudnn")
        elif where == "env":
            monkeypatch.setenv(env, "cudnn")
            _call(op)
        else:
            with B.use_backends(**{op: "cudnn"}):  # checked on entry: the body never runs
                calls.append("body")
    assert not isinstance(ei.value, B.TritonUnavailableError)
    assert calls == []  # raised before any backend ran


@pytest.mark.parametrize("op", list(OPS))
def test_triton_where_it_cannot_run_raises_at_resolution_for_both_ops(op, monkeypatch):
    env, _, _, err = OPS[op]
    calls = _op_calls(monkeypatch)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    for backend in ("triton", None):
        monkeypatch.setenv(env, "triton")
        with pytest.raises(B.TritonUnavailableError, match=f"TRITON_INTERPRET=1.*{env}=") as ei:
            _call(op, backend)
        assert isinstance(ei.value, err)
    assert B.resolve_backend(op, CUDA, "triton") == "triton"  # CUDA needs no interpreter
    monkeypatch.setattr(B, "HAS_TRITON", False)
    with pytest.raises(err, match="not installed"):
        B.resolve_backend(op, CUDA, "triton")
    monkeypatch.delenv(env)
    assert B.resolve_backend(op, CUDA) == OPS[op][2]  # default without Triton: the CPU default
    assert calls == []


def test_ops_dispatch_to_the_resolved_backend(monkeypatch):
    calls = _op_calls(monkeypatch)
    monkeypatch.setenv("BMF_ATTENTION", "reference")
    monkeypatch.setenv("BMF_LSTM", "reference")
    with B.use_backends(attention="sdpa", lstm="triton"):
        _call("attention")
        _call("lstm")
        _call("attention", backend="reference")
        _call("lstm", backend="reference")
    _call("attention")
    _call("lstm")
    assert calls == ["attention_sdpa", "lstm_recurrence_triton", "attention_reference", "lstm_recurrence_reference",
                     "attention_reference", "lstm_recurrence_reference"]


def test_lstm_stack_and_module_take_backend(monkeypatch):
    from bigmodel_fast.nn.lstm import LSTM

    calls = _op_calls(monkeypatch)
    x = torch.randn(3, 2, 4)
    LSTM(4, 8, num_layers=2, bidirectional=True, backend="triton")(x)
    assert calls == ["lstm_recurrence_triton"] * 4
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(L.LSTMBackendError, match="TRITON_INTERPRET=1"):  # once, before the first layer
        LSTM(4, 8, backend="triton")(x)
    assert len(calls) == 4


def test_use_backends_restores_on_exception_and_leaves_env_alone(monkeypatch):
    monkeypatch.setenv("BMF_LSTM", "triton")
    with pytest.raises(KeyError):
        with B.use_backends(attention="reference", lstm="reference"):
            assert B.resolve_backend("attention", CUDA) == "reference"
            assert os.environ["BMF_LSTM"] == "triton" and "BMF_ATTENTION" not in os.environ
            raise KeyError("boom")
    assert B.resolve_backend("attention", CUDA) == "triton"
    assert B.resolve_backend("lstm", CPU) == "triton"


def test_use_backends_is_local_to_its_thread():
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def other():
        inside.wait(5)
        seen["other"] = B.resolve_backend("attention", CPU)
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with B.use_backends(attention="reference"):
        inside.set()
        done.wait(5)
        seen["main"] = B.resolve_backend("attention", CPU)
    t.join(5)
    assert seen == {"other": "sdpa", "main": "reference"}


@pytest.mark.parametrize("env", ["triton", "sdpa", "auto"])
def test_export_runs_the_reference_ops_whatever_the_env_says(env, monkeypatch):
    from bigmodel_fast.export.targets import reference_ops

    monkeypatch.setenv("BMF_ATTENTION", env)
    monkeypatch.setenv("BMF_LSTM", "triton" if env == "sdpa" else env)
    before = dict(os.environ)
    calls = _op_calls(monkeypatch)
    with reference_ops():
        assert B.resolve_backend("attention", CUDA) == B.resolve_backend("lstm", CUDA) == "reference"
        assert dict(os.environ) == before
        _call("attention")
        _call("lstm")
    assert calls == ["attention_reference", "lstm_recurrence_reference"]
    assert dict(os.environ) == before


def test_resolution_traces_under_torch_compile_fullgraph(monkeypatch):
    """The resolver (env var and ``use_backends`` read) must not break a ``fullgraph`` trace of ``attention``."""
    calls = _op_calls(monkeypatch)
    q = torch.randn(1, 2, 5, 8)
    torch._dynamo.reset()
    with B.use_backends(attention="reference"):
        got = torch.compile(lambda q: A.attention(q, q, q, causal=True), backend="eager", fullgraph=True)(q)
    torch._dynamo.reset()
    assert calls == ["attention_reference"]
    torch.testing.assert_close(got, A.attention_sdpa(q, q, q, causal=True), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------- module structure
def test_ops_package_does_not_shadow_the_attention_module():
    import bigmodel_fast.ops
    import bigmodel_fast.ops.attention as m
    from bigmodel_fast.ops import attention as m2

    assert isinstance(m, types.ModuleType) and m is m2 is sys.modules["bigmodel_fast.ops.attention"]
    assert bigmodel_fast.ops.attention is m
    assert bigmodel_fast.ops.varlen_attention is m.varlen_attention  # the other public names are re-exported
    assert bigmodel_fast.ops.use_backends is B.use_backends
    assert "attention" not in bigmodel_fast.ops.__all__
    for name in bigmodel_fast.ops.__all__:
        assert hasattr(bigmodel_fast.ops, name), name


def test_importing_the_ops_and_the_export_path_does_not_import_triton():
    """TRITON_INTERPRET=1 must still be settable after import: the resolver and the op glue import Triton lazily."""
    code = ("import sys, bigmodel_fast.ops, bigmodel_fast.ops.lstm, bigmodel_fast.nn.lstm, "
            "bigmodel_fast.export.targets; print('triton' in sys.modules, 'torch._dynamo' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]


def _imports(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_dispatch_and_kernel_modules_do_not_import_each_other():
    for a, b in (("attention", "attention_triton"), ("lstm", "lstm_triton")):
        assert f"bigmodel_fast.ops.{b}" not in _imports(OPS_DIR / f"{a}.py"), a
        assert f"bigmodel_fast.ops.{a}" not in _imports(OPS_DIR / f"{b}.py"), b


def test_only_the_resolver_reads_the_backend_env_vars():
    env_vars = {env for env, *_ in OPS.values()}
    assert {spec.env_var for spec in B.OPS.values()} == env_vars
    for path in sorted(OPS_DIR.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        consts = {n.value for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Constant)}
        if path.name == "backend.py":
            assert env_vars <= consts
        else:
            assert not env_vars & consts and "environ.get(ENV_VAR" not in text, path.name
