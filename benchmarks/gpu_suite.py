"""The one-shot GPU suite: pretraining throughput and MFU, the CUDA tests, and the kernel benchmarks, in one command.

What it runs, in this order (the most valuable first, so a spent budget cuts the least useful part), with the
expected time on one H100 / H200:

0. ``native``: builds the C++ loader extension in place (``setup.py build_ext --inplace -j N``) when
   ``bigmodel_fast._C`` does not import (a fresh machine, another Python): ~30-60 s, else 0 s. Without it the
   trainer's Python reference loader is used (same batches, slower; the ``data_wait`` column shows its cost).
1. ``pretrain``: the REAL trainer (``bigmodel_fast.train.pretrain.pretrain``) on synthetic token shards (random ids,
   a word-level ``tokenizer.json`` of exactly the vocabulary; documents are whole windows, so no window crosses a
   document and no BERT row is padded), bf16, a log window every 5 steps: GPT-2-124M shape (seq 1024, batch 32,
   ``compile`` on for 80 steps, then off for 40), BERT-base (seq 128 batch 256, seq 512 batch 64; the trainer's
   default compile). Throughput is the median ``window_tokens_per_s`` of the log windows after the warm-up
   quarter (compilation, autotuning); seq/s and MFU from :mod:`bigmodel_fast.train.flops` and its peak table
   (``log_tflops`` / ``log_mfu``: the trainer's own figures, for comparison). Goals: GPT-2-124M >= 45% MFU,
   BERT-base seq 128 >= 5,000 seq/s. ~20-90 s per run (compilation and the final checkpoint included), ~3-4 min.
2. ``tests``: ``python -m pytest -v`` over the test files that mention ``cuda`` (ops first, AOTInductor export
   last), with a timeout; passed / failed / skipped / errors per file. ~1-3 min.
3. ``kernels``: ``benchmarks/ops/bench_attention.py`` (head dim 64 and 128, seq 512-4096, bf16, causal and not,
   Triton vs SDPA) and ``benchmarks/ops/bench_lstm.py --quick --no-eager`` as subprocesses writing their own CSVs
   into ``--out``; then, when present, ``benchmarks/ops/bench_lm_loss.py`` (plain vs chunked LM loss memory) and
   ``benchmarks/ops/make_dispatch_table.py`` (the attention dispatch table regenerated from the committed CSVs plus
   the new one, written to ``--out``, not over the package's table). ~1-2 min, cut to the budget left.

No part's failure stops the suite: it becomes an ``error`` row (type and first line of the message) and the next
part runs; a part the budget no longer covers becomes a ``skipped`` row.

    python benchmarks/gpu_suite.py [--out benchmarks/results] [--budget-s 470] [--smoke]
        [--only pretrain tests] [--set RUN.FIELD=JSON ...] [--peak-tflops X]

With the device tool (one command, ~8 min of device time plus the machine's start; one archive comes back, since
at most 8 files do)::

    export PYTHONUNBUFFERED=1; mkdir -p /tmp/suite; python3 benchmarks/gpu_suite.py --out /tmp/suite 2>&1 |
    tee /tmp/suite/log.txt; tar czf $OUT/gpu_suite.tgz -C /tmp suite

(``timeout_s`` 590.) Results: ``gpu_suite_<gpu>_{pretrain,tests,kernels,summary}.csv`` in ``--out`` (every row
with gpu name, torch and triton versions and the UTC date), the benchmarks' own ``attention_<gpu>.csv``,
``lstm_<gpu>.csv`` (and plots), ``attention_dispatch_<gpu>.json``, a summary table on stdout. ``--smoke`` runs
every part on the CPU with tiny shapes (tiny models, seq 32, 4 steps, one fast test file, the SDPA rows of
``bench_attention.py --dry-run``; the interpreted LSTM benchmark is left out) into a temporary folder in ~35 s on
two shared cores: ``tests/test_gpu_suite.py`` runs it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

META = ["gpu", "torch", "triton", "date"]
FIELDS = {
    "pretrain": META + ["run", "status", "arch", "seq_len", "batch_size", "steps", "amp", "compile", "dropout",
                        "loader", "tokens_per_s", "seq_per_s", "flops_per_token", "tflops", "mfu", "peak_tflops",
                        "peak_source", "goal", "goal_met", "log_tflops", "log_mfu", "windows", "data_wait",
                        "peak_mem_gb", "wall_s", "note"],
    "tests": META + ["file", "status", "passed", "failed", "skipped", "errors", "wall_s", "note"],
    "kernels": META + ["script", "status", "rc", "wall_s", "command", "outputs", "note"],
    "summary": META + ["part", "status", "wall_s", "note"],
}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<|endoftext|>"]  # roles pad..mask, GPT-2's bos/eos
GPT2 = {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072, "max_position": 1024,
        "hidden_act": "gelu_new", "dropout": 0.0}
BERT_BASE = {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072, "max_position": 512,
             "dropout": 0.1}
TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64, "dropout": 0.0}


@dataclasses.dataclass
class Run:
    """One pretraining throughput run: the ``PretrainConfig`` settings that differ from the suite's defaults."""

    name: str
    arch: str
    model: dict
    vocab: int
    seq_len: int
    batch_size: int
    steps: int
    compile: str  # "on" | "off" | "auto" (PretrainConfig.compile, when the trainer has it)
    goal: str = ""  # "mfu>=0.45" or "seq_per_s>=5000"
    est_s: float = 60.0  # expected seconds on an H100, compilation included (skip the run when less is left)


def gpu_runs() -> list[Run]:
    return [
        Run("gpt2_124m_compile", "gpt", GPT2, 50257, 1024, 32, 80, "on", "mfu>=0.45", 90),
        Run("bert_base_seq128", "bert", BERT_BASE, 30522, 128, 256, 80, "auto", "seq_per_s>=5000", 60),
        Run("gpt2_124m_eager", "gpt", GPT2, 50257, 1024, 32, 40, "off", "mfu>=0.45", 30),
        Run("bert_base_seq512", "bert", BERT_BASE, 30522, 512, 64, 60, "auto", "", 60),
    ]


def smoke_runs() -> list[Run]:
    return [
        Run("smoke_gpt_compile", "gpt", TINY, 300, 32, 4, 4, "off", "mfu>=0.45", 5),  # CPU: compiling takes minutes
        Run("smoke_bert_seq32", "bert", TINY, 300, 32, 4, 4, "off", "seq_per_s>=5000", 5),
        Run("smoke_gpt_eager", "gpt", TINY, 300, 32, 4, 4, "off", "", 5),
    ]


class Suite:
    """The budget, the output CSVs and the rows written so far."""

    def __init__(self, args):
        import torch

        self.args, self.smoke = args, args.smoke
        self.start = time.monotonic()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.cuda = torch.cuda.is_available() and not args.smoke
        self.gpu = torch.cuda.get_device_name() if self.cuda else "cpu"
        self.slug = re.sub(r"[^a-z0-9]+", "_", self.gpu.lower()).strip("_") + ("_smoke" if args.smoke else "")
        try:
            import triton

            triton_version = triton.__version__
        except ImportError:
            triton_version = ""
        self.meta = {"gpu": self.gpu, "torch": torch.__version__, "triton": triton_version,
                     "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
        self.rows: dict[str, list[dict]] = {k: [] for k in FIELDS}
        self.overrides = parse_sets(args.set)

    def left(self) -> float:
        return self.args.budget_s - (time.monotonic() - self.start)

    def csv_path(self, kind: str) -> Path:
        return self.out / f"gpu_suite_{self.slug}_{kind}.csv"

    def add(self, kind: str, **row) -> dict:
        """Append one row (the meta columns first) and rewrite that CSV, so an interrupted suite keeps its rows."""
        full = {**self.meta, **row}
        unknown = set(full) - set(FIELDS[kind])
        if unknown:
            raise ValueError(f"{kind} row: unknown column(s) {sorted(unknown)}")
        self.rows[kind].append(full)
        with open(self.csv_path(kind), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS[kind])
            w.writeheader()
            w.writerows(self.rows[kind])
        return full

    def env(self) -> dict:
        """Environment of the subprocesses: the checkout importable, output unbuffered, the Triton interpreter
        only on the CPU."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        if self.cuda:
            env.pop("TRITON_INTERPRET", None)
        else:
            env["TRITON_INTERPRET"] = "1"
        return env


def parse_sets(items: list[str]) -> dict[str, dict]:
    """``["RUN.FIELD=JSON", ...]`` -> ``{RUN: {FIELD: value}}`` (a value that is not JSON is taken as a string)."""
    out: dict[str, dict] = {}
    for item in items:
        m = re.fullmatch(r"([\w-]+)\.(\w+)=(.*)", item)
        if not m:
            raise SystemExit(f"--set: expected RUN.FIELD=VALUE, got {item!r}")
        try:
            value = json.loads(m.group(3))
        except json.JSONDecodeError:
            value = m.group(3)
        out.setdefault(m.group(1), {})[m.group(2)] = value
    return out


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


# ------------------------------------------------------------------------------------------------ 0. native loader
def part_native(s: Suite) -> str:
    """Build ``bigmodel_fast._C`` in place when it does not import; returns the loader the trainer will use."""
    if native_ok():
        return "native"
    if s.smoke:
        return "python"
    cmd = [sys.executable, "setup.py", "build_ext", "--inplace", "-j", str(os.cpu_count() or 4)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=s.env(), capture_output=True, text=True,
                              timeout=max(10.0, min(240.0, s.left() - 300)))
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] if proc.returncode else []
    except subprocess.TimeoutExpired:
        tail = ["build timed out"]
    if native_ok():
        return "native"
    raise RuntimeError(f"native loader did not build ({' '.join(tail)[:200]}); pretraining uses loader=python")


def native_ok() -> bool:
    try:
        import bigmodel_fast._C  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------------------ 1. pretraining
def write_tokenizer(path: Path, vocab: int) -> Path:
    """A word-level ``tokenizer.json`` of exactly ``vocab`` ids: :data:`SPECIALS`, then ``w6 .. w<vocab-1>``."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = SPECIALS + [f"w{i}" for i in range(len(SPECIALS), vocab)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(SPECIALS)
    tok.save(str(path))
    return path


def write_data(root: Path, run: Run) -> Path:
    """A prepared data directory (``tokenizer.json`` + ``train_*`` shards, no validation split) for ``run``: random
    non-special ids, documents of 4 whole windows (causal: ``seq_len`` tokens each, so no window crosses a
    document; MLM: chunks of ``seq_len - 3``, so rows are full), enough tokens for every step."""
    import numpy as np

    from bigmodel_fast.data.hf_tokenizer import HFTokenizer
    from bigmodel_fast.data.shards import ShardWriter

    data = root / f"data_{run.name}"
    data.mkdir(parents=True, exist_ok=True)
    tok = HFTokenizer(write_tokenizer(data / "tokenizer.json", run.vocab))
    if tok.vocab_size != run.vocab:
        raise ValueError(f"synthetic tokenizer has {tok.vocab_size} ids, expected {run.vocab}")
    window = run.seq_len if run.arch != "bert" else run.seq_len - 3
    doc_len = 4 * window
    docs = -(-(run.steps + 2) * run.batch_size * (run.seq_len + 1) // doc_len) + 2
    rng = np.random.default_rng(0)
    ids = rng.integers(len(SPECIALS), run.vocab, size=(docs, doc_len), dtype=np.int64)
    with ShardWriter(data, run.vocab, prefix="train") as w:
        for doc in ids:
            w.add(doc)
    return data


def window_stats(metrics: Path) -> dict:
    """Medians over the log windows after the warm-up quarter (at least the first window when there are two)."""
    recs = []
    for line in metrics.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("window_tokens_per_s"):
            recs.append(rec)
    if not recs:
        raise RuntimeError(f"{metrics}: no log window with window_tokens_per_s")
    skip = max(1, len(recs) // 4) if len(recs) > 1 else 0
    used = recs[skip:]

    def med(key):
        vals = [r[key] for r in used if isinstance(r.get(key), (int, float))]
        return statistics.median(vals) if vals else None

    return {"tokens_per_s": med("window_tokens_per_s"), "data_wait": med("data_wait_fraction"),
            "log_tflops": med("tflops"), "log_mfu": med("mfu"), "windows": f"{len(used)} of {len(recs)}"}


def pretrain_one(s: Suite, run: Run, loader: str, work: Path) -> dict:
    """Run the trainer for ``run``; returns its pretrain CSV row fields."""
    import torch

    from bigmodel_fast.data.tokenizer_base import load_tokenizer
    from bigmodel_fast.train import flops
    from bigmodel_fast.train.pretrain import PretrainConfig, build_model_config, pretrain

    data = write_data(work, run)
    amp = "bf16" if s.cuda else "auto"
    kw = dict(data=str(data), out=str(work / f"run_{run.name}"), arch=run.arch, preset="tiny",
              model_overrides=dict(run.model), seq_len=run.seq_len, batch_size=run.batch_size, max_steps=run.steps,
              log_every=2 if s.smoke else 5, eval_every=10**9, eval_batches=0, save_every=10**9,
              device="cuda" if s.cuda else "cpu", amp=amp, progress=False, loader=loader,
              loader_threads=min(8, os.cpu_count() or 2), compile=run.compile, peak_tflops=s.args.peak_tflops)
    kw.update(s.overrides.get(run.name, {}))
    known = {f.name for f in dataclasses.fields(PretrainConfig)}
    dropped = sorted(k for k in kw if k not in known)
    cfg = PretrainConfig(**{k: v for k, v in kw.items() if k in known})
    if s.cuda:
        torch.cuda.reset_peak_memory_stats()
    pretrain(cfg)
    stats = window_stats(Path(cfg.out) / "metrics.jsonl")
    model_cfg = build_model_config(cfg, load_tokenizer(data / "tokenizer.json"))
    fpt = flops.training_flops_per_token(model_cfg, cfg.seq_len,
                                         cfg.mlm_probability if run.arch == "bert" else None,
                                         nsp=cfg.nsp if run.arch == "bert" else True)
    peak, source = flops.peak_tflops(cfg.device, cfg.amp, kw.get("peak_tflops"))
    tput = flops.throughput(stats["tokens_per_s"], 1.0, fpt, peak)
    seq_per_s = stats["tokens_per_s"] / cfg.seq_len
    goal_met = ""
    if run.goal:
        key, target = run.goal.split(">=")
        value = tput["mfu"] if key == "mfu" else seq_per_s
        goal_met = "" if value is None else str(value >= float(target))
    note = f"PretrainConfig has no {', '.join(dropped)}: not passed" if dropped else ""
    return dict(arch=run.arch, seq_len=cfg.seq_len, batch_size=cfg.batch_size, steps=cfg.max_steps, amp=cfg.amp,
                compile=kw["compile"] if "compile" in known else "n/a", dropout=model_cfg.dropout, loader=cfg.loader,
                tokens_per_s=round(stats["tokens_per_s"], 1), seq_per_s=round(seq_per_s, 1),
                flops_per_token=f"{fpt:.6g}", tflops=tput["tflops"], mfu=tput["mfu"], peak_tflops=peak,
                peak_source=source, goal=run.goal, goal_met=goal_met, log_tflops=stats["log_tflops"],
                log_mfu=stats["log_mfu"], windows=stats["windows"], data_wait=stats["data_wait"],
                peak_mem_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2) if s.cuda else "", note=note)


def part_pretrain(s: Suite, loader: str) -> str:
    """Every run of the list: a failure is that run's error row; runs the budget cannot cover are skipped."""
    import torch

    runs = smoke_runs() if s.smoke else gpu_runs()
    compile_known = None
    done = errors = 0
    with tempfile.TemporaryDirectory(prefix="bmf_gpu_suite_") as tmp:
        for run in runs:
            if compile_known is None:
                from bigmodel_fast.train.pretrain import PretrainConfig

                compile_known = "compile" in {f.name for f in dataclasses.fields(PretrainConfig)}
            if not compile_known and run.compile == "off" and run.arch == "gpt" and not s.smoke:
                s.add("pretrain", run=run.name, status="skipped", arch=run.arch,
                      note="PretrainConfig has no compile field: the compile run already ran eager")
                continue
            if s.left() < run.est_s:
                s.add("pretrain", run=run.name, status="skipped", arch=run.arch,
                      note=f"budget: {s.left():.0f} s left, the run needs ~{run.est_s:.0f} s")
                continue
            t = time.monotonic()
            try:
                row = pretrain_one(s, run, loader, Path(tmp))
                s.add("pretrain", run=run.name, status="ok", wall_s=round(time.monotonic() - t, 1), **row)
                done += 1
            except Exception as e:  # noqa: BLE001 - one failing run must not stop the suite
                s.add("pretrain", run=run.name, status="error", arch=run.arch, wall_s=round(time.monotonic() - t, 1),
                      note=one_line(e))
                errors += 1
            finally:
                gc.collect()
                if s.cuda:
                    torch.cuda.empty_cache()
                try:
                    torch._dynamo.reset()  # the next run compiles its own model, not a cached guard failure
                except Exception:  # noqa: BLE001
                    pass
    return f"{done} runs ok, {errors} errors"


# ------------------------------------------------------------------------------------------------ 2. tests
TEST_ORDER = ("tests/ops/", "tests/nn/", "tests/models/", "tests/train/", "tests/hf/", "tests/export/")
SMOKE_TEST_FILES = ["tests/ops/test_triton_env.py"]
OUTCOME = re.compile(r"^(tests/\S+?\.py)::\S*.*?\s(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b")
COLLECT_ERROR = re.compile(r"^ERROR (tests/\S+?\.py)\b")


def cuda_test_files() -> list[str]:
    """The test files that mention ``cuda`` (GPU paths, skipped or interpreted on the CPU), kernels first."""
    files = []
    for p in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = p.relative_to(ROOT).as_posix()
        if rel != "tests/test_gpu_suite.py" and "cuda" in p.read_text(encoding="utf-8", errors="replace"):
            files.append(rel)
    rank = lambda f: next((i for i, d in enumerate(TEST_ORDER) if f.startswith(d)), len(TEST_ORDER))  # noqa: E731
    return sorted(files, key=lambda f: (rank(f), f))


def count_outcomes(output: str, files: list[str]) -> dict[str, dict[str, int]]:
    """Per file ``{passed, failed, skipped, errors}`` from ``pytest -v`` lines (xfail counts as skipped, xpass as
    passed; a collection error as an error of its file)."""
    counts = {f: {"passed": 0, "failed": 0, "skipped": 0, "errors": 0} for f in files}
    key = {"PASSED": "passed", "XPASS": "passed", "FAILED": "failed", "SKIPPED": "skipped", "XFAIL": "skipped",
           "ERROR": "errors"}
    for line in output.splitlines():
        m = OUTCOME.match(line)
        if m:
            counts.setdefault(m.group(1), dict.fromkeys(("passed", "failed", "skipped", "errors"), 0))
            counts[m.group(1)][key[m.group(2)]] += 1
            continue
        m = COLLECT_ERROR.match(line)
        if m and m.group(1) in counts and not any(counts[m.group(1)].values()):
            counts[m.group(1)]["errors"] += 1
    return counts


def part_tests(s: Suite) -> str:
    files = SMOKE_TEST_FILES if s.smoke else cuda_test_files()
    timeout = min(s.args.tests_timeout_s, s.left() - (0 if s.smoke else 60))
    if timeout < 20:
        raise TimeoutError(f"budget: {s.left():.0f} s left, too little for the tests")
    cmd = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--no-header", "-rfE", *files]
    t = time.monotonic()
    timed_out = False
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=s.env(), capture_output=True, text=True, timeout=timeout)
        output, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc, timed_out = None, True
    wall = round(time.monotonic() - t, 1)
    counts = count_outcomes(output, files)
    total = {k: sum(c[k] for c in counts.values()) for k in ("passed", "failed", "skipped", "errors")}
    failed = [ln.split(" - ")[0][7:] for ln in output.splitlines() if ln.startswith("FAILED ")][:8]
    for f, c in counts.items():
        status = "ok" if not (c["failed"] or c["errors"]) and any(c.values()) else ("failed" if any(c.values())
                                                                                    else "not run")
        s.add("tests", file=f, status=status, **c,
              note=" ".join(x for x in failed if x.startswith(f))[:300])
    note = f"timed out after {timeout:.0f} s (counts so far)" if timed_out else f"pytest exit {rc}"
    if rc not in (0, 1, None) and not any(total.values()):
        note += ": " + " | ".join(output.strip().splitlines()[-3:])[:300]
    status = "ok" if rc == 0 else ("timeout" if timed_out else "failed")
    s.add("tests", file="TOTAL", status=status, wall_s=wall, note=note, **total)
    return (f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped, "
            f"{total['errors']} errors ({note})")


# ------------------------------------------------------------------------------------------------ 3. kernels
def script_help(path: Path, env: dict) -> str:
    try:
        return subprocess.run([sys.executable, str(path), "--help"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60).stdout
    except (subprocess.TimeoutExpired, OSError):
        return ""


def kernel_commands(s: Suite) -> list[tuple[str, list[str], float]]:
    """``(script, arguments, time cap in s)`` of the benchmarks to run, in order (cap 0: recorded as skipped);
    the optional scripts only when present."""
    ops = ROOT / "benchmarks" / "ops"
    out = str(s.out)
    if s.smoke:
        # SDPA only (the interpreted Triton rows take longer); the LSTM dry run (~12 s interpreted) is left out
        cmds = [("bench_attention.py", ["--dry-run", "--impls", "sdpa", "--causal", "1", "--dtypes", "fp16",
                                        "--out", out], 60),
                ("bench_lstm.py", ["--dry-run", "--no-eager", "--dtypes", "fp32", "--out", out], 0)]
    else:
        cmds = [("bench_attention.py", ["--head-dims", "64", "128", "--seqs", "512", "1024", "2048", "4096",
                                        "--dtypes", "bf16", "--causal", "0", "1", "--impls", "triton", "sdpa",
                                        "--out", out], 100),
                ("bench_lstm.py", ["--quick", "--no-eager", "--out", out], 60)]
    lm_loss = ops / "bench_lm_loss.py"
    if lm_loss.is_file():
        flags = script_help(lm_loss, s.env())
        args = (["--out", out] if "--out" in flags else [])
        if not s.smoke:
            cmds.append(("bench_lm_loss.py", args, 60))
        elif "--dry-run" in flags:
            cmds.append(("bench_lm_loss.py", ["--dry-run", *args], 60))
    if (ops / "make_dispatch_table.py").is_file():
        committed = sorted(str(p) for p in (ROOT / "benchmarks" / "results").glob("attention_*.csv")
                           if not p.name.startswith("attention_dispatch"))
        fresh = str(s.out / f"attention_{'cpu_interpreter' if s.smoke else s.slug}.csv")
        csvs = sorted(set(committed) | {fresh})
        cmds.append(("make_dispatch_table.py", [*csvs, "--out", str(s.out / f"attention_dispatch_{s.slug}.json")],
                     60))
    return cmds


def part_kernels(s: Suite) -> str:
    done = 0
    for script, args, cap in kernel_commands(s):
        path = ROOT / "benchmarks" / "ops" / script
        args = [a for a in args if not a.endswith(".csv") or Path(a).is_file()]  # an attention run that wrote none
        command = " ".join(["python", f"benchmarks/ops/{script}", *[a.replace(str(ROOT) + "/", "") for a in args]])
        timeout = min(cap, s.left())
        if timeout < 15:
            s.add("kernels", script=script, status="skipped", command=command,
                  note="left out of --smoke" if cap == 0 else f"budget: {s.left():.0f} s left")
            continue
        before = {p.name: p.stat().st_mtime for p in s.out.iterdir()}
        t = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, str(path), *args], cwd=ROOT, env=s.env(), capture_output=True,
                                  text=True, timeout=timeout)
            rc, status = proc.returncode, "ok" if proc.returncode == 0 else "error"
            note = "" if rc == 0 else " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])[:300]
        except subprocess.TimeoutExpired:
            rc, status, note = "", "timeout", f"stopped after {timeout:.0f} s (rows written so far are kept)"
        outputs = sorted(p.name for p in s.out.iterdir()
                         if not p.name.startswith("gpu_suite_") and before.get(p.name) != p.stat().st_mtime)
        s.add("kernels", script=script, status=status, rc=rc, wall_s=round(time.monotonic() - t, 1),
              command=command, outputs=" ".join(outputs), note=note)
        done += status == "ok"
    return f"{done} benchmarks ok"


# ------------------------------------------------------------------------------------------------ main
PARTS = ("native", "pretrain", "tests", "kernels")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results; --smoke: a temp dir)")
    p.add_argument("--budget-s", type=float, default=470.0, help="wall-clock budget; parts past it are skipped")
    p.add_argument("--smoke", action="store_true", help="CPU, tiny shapes: checks the suite itself in < 60 s")
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="run only these parts")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="dense peak TFLOP/s for MFU when the GPU is not in bigmodel_fast.train.flops.GPU_PEAKS")
    p.add_argument("--tests-timeout-s", type=float, default=150.0, help="cap of the tests part")
    p.add_argument("--set", action="append", default=[], metavar="RUN.FIELD=JSON",
                   help="override a PretrainConfig field of one pretraining run, e.g. gpt2_124m_eager.batch_size=16")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = (tempfile.mkdtemp(prefix="gpu_suite_smoke_") if args.smoke
                    else str(ROOT / "benchmarks" / "results"))
    return args


def print_summary(s: Suite) -> None:
    print(f"\ngpu suite on {s.gpu} (torch {s.meta['torch']}, triton {s.meta['triton']}, {s.meta['date']}), "
          f"{time.monotonic() - s.start:.0f} s")
    cols = ("run", "status", "tokens_per_s", "seq_per_s", "tflops", "mfu", "goal", "goal_met", "note")
    rows = [[str(r.get(c, "") if r.get(c) is not None else "") for c in cols] for r in s.rows["pretrain"]]
    rows += [[f"part {r['part']}", r["status"], "", "", "", "", "", "", r["note"]] for r in s.rows["summary"]]
    widths = [max(len(c), *(min(len(r[i]), 60) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    for line in [list(cols)] + rows:
        print("  ".join(v[:60].ljust(w) for v, w in zip(line, widths)).rstrip())
    print(f"results: {s.out}")


def main(argv=None) -> int:
    args = parse_args(argv)
    s = Suite(args)
    loader = "native" if native_ok() else "python"
    for part in PARTS:
        if part not in args.only:
            continue
        t = time.monotonic()
        if s.left() <= 0:
            s.add("summary", part=part, status="skipped", note="budget spent")
            continue
        try:
            if part == "native":
                loader = part_native(s)
                note = f"pretraining uses loader={loader}"
            elif part == "pretrain":
                note = part_pretrain(s, loader)
            elif part == "tests":
                note = part_tests(s)
            else:
                note = part_kernels(s)
            status = "ok"
        except Exception as e:  # noqa: BLE001 - a failing part is recorded, the next one runs
            status, note = "error", one_line(e)
        s.add("summary", part=part, status=status, wall_s=round(time.monotonic() - t, 1), note=note)
        print(f"[gpu_suite] {part}: {status} ({note})", flush=True)
    print_summary(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
