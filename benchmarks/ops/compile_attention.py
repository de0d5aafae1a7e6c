"""Compile the Triton attention kernels for a GPU target without a GPU, and fingerprint the PTX.

The Triton interpreter (the CPU test path) checks what the kernels compute, not whether they compile for the GPU.
This compiles each kernel variant ahead of time for ``--arch`` (default sm_90, H100/H200) on any machine, counts the
Hopper tensor-core instructions (``wgmma``) and prints a hash of the PTX with line info stripped. Two uses:

    python benchmarks/ops/compile_attention.py --quick          # a compile check (the test suite runs this)
    python benchmarks/ops/compile_attention.py > before.txt     # all variants; refactor; run again; diff:
                                                                #   identical hashes = identical GPU code

Variants: forward, dK/dV and dQ kernels x head dim (128, 80 padded to 128, 64) x causal x varlen x key mask,
bf16, at one block configuration each, plus the backward preprocess kernel.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import sys

if os.environ.get("TRITON_INTERPRET"):
    sys.exit("unset TRITON_INTERPRET: this compiles for the GPU")
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # triton >= 3.9 warns when unset; 1 is the default

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from bigmodel_fast.ops import attention_triton as at  # noqa: E402

POINTERS = {"LSE": "*fp32", "DELTA": "*fp32", "KMASK": "*u8", "CU": "*i32"}
FLOATS = ("qk_scale", "sm_scale")
TENSORS = ("Q", "K", "V", "O", "DO", "DQ", "DK", "DV")
# (kernel, BLOCK_M, BLOCK_N, num_warps, num_stages): one H100-sized config per kernel
KERNELS = [("fwd", at._attn_fwd, 128, 64, 8, 3), ("dkdv", at._attn_bwd_dkdv, 64, 128, 8, 3),
           ("dq", at._attn_bwd_dq, 128, 64, 8, 3)]


def signature(fn, consts: dict, dtype: str) -> dict:
    sig = {}
    for name in fn.arg_names:
        if name in consts:
            sig[name] = "constexpr"
        elif name in POINTERS:
            sig[name] = POINTERS[name]
        elif name in TENSORS:
            sig[name] = "*" + dtype
        else:
            sig[name] = "fp32" if name in FLOATS else "i32"
    return sig


def compile_ptx(kernel, consts: dict, target: GPUTarget, warps: int, stages: int, dtype: str = "bf16") -> str:
    fn = kernel.fn if isinstance(kernel, triton.runtime.Autotuner) else kernel
    src = ASTSource(fn=fn, signature=signature(fn, consts, dtype), constexprs=consts)
    ptx = triton.compile(src, target=target, options=dict(num_warps=warps, num_stages=stages)).asm["ptx"]
    ptx = ptx.split(".section\t.debug")[0]  # debug sections and line info move with every edit of the source
    return "\n".join(line for line in ptx.splitlines()
                     if line.strip() and not line.strip().startswith((".loc", ".file", "//", "$L__")))


def variants(quick: bool):
    dims = [(128, 128), (80, 128)] if quick else [(128, 128), (80, 128), (64, 64)]
    flags = [(False, False, False), (True, True, True)] if quick else list(itertools.product([False, True], repeat=3))
    for (d, bd), (causal, varlen, km) in itertools.product(dims, flags):
        for name, kernel, bm, bn, warps, stages in KERNELS:
            consts = dict(HEAD_DIM=d, BLOCK_D=bd, IS_CAUSAL=causal, IS_VARLEN=varlen, HAS_KMASK=km, DOT_PREC="tf32",
                          BLOCK_M=bm, BLOCK_N=bn)
            yield (f"{name} d={d} causal={int(causal)} varlen={int(varlen)} kmask={int(km)}", kernel, consts, warps,
                   stages)
    yield "preprocess d=128", at._bwd_preprocess, dict(HEAD_DIM=128, BLOCK_D=128, IS_VARLEN=False, BLOCK_M=64), 4, 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", type=int, default=90, help="compute capability, e.g. 90 (Hopper), 80 (Ampere)")
    p.add_argument("--quick", action="store_true", help="a few representative variants (a compile check)")
    args = p.parse_args(argv)
    target = GPUTarget("cuda", args.arch, 32)
    for label, kernel, consts, warps, stages in variants(args.quick):
        ptx = compile_ptx(kernel, consts, target, warps, stages)
        print(f"{label}: ptx={hashlib.sha1(ptx.encode()).hexdigest()[:12]} wgmma={ptx.count('wgmma.mma_async')}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
