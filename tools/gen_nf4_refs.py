#!/usr/bin/env python3
"""Reference NF4 / double-quantization values for tests/unit/test_nf4.c, from bitsandbytes itself.

Runs bitsandbytes.functional.quantize_4bit(A, blocksize=B, quant_type="nf4",
compress_statistics=False/True), dequantize_4bit and create_dynamic_map(signed=True) on fixed
inputs (a seeded Gaussian matrix and hand-built edge cases: an all-zero block, values exactly on
the NF4 decision thresholds and one float either side, +-absmax, a negative absmax) and writes
the results as little-endian binary files plus refs.json naming every file, shape, block size
and the bitsandbytes / torch versions that produced them.

bitsandbytes runs here on its CPU backend. Two places where that backend is not the definition
(csrc/kernels.cu is; lathe follows the CUDA kernels) are recorded, not hidden:
  * all-zero NF4 blocks: CUDA computes x * (1/0) = NaN, which fails every `x > t` of
    dQuantizeNF4 and gives code 0; the CPU backend (torch.bucketize after clamping absmax to
    1e-38) gives code 7. Both dequantize to zero. refs.json lists these blocks per case.
  * NF4 thresholds: dQuantizeNF4 compares with decimal F32 literals; four of them (between codes
    0/1, 8/9, 12/13, 14/15) are one ulp from the F32 midpoints the CPU backend bucketizes on, so
    a scaled value between the two lands on the other side. The edge input puts values exactly
    there; refs.json lists those elements ("cpu_threshold_ties").
  The stored `codes` follow the kernels (computed here by `nf4_quantize_cuda`), bitsandbytes' CPU
  output is stored beside them as `codes_cpu`, and the script asserts that the two differ only
  at the listed places. Dequantization references are bitsandbytes' dequantize_4bit run on the
  kernel-rule codes.
  * the 8-bit dynamic quantizer used for double quantization: the CPU backend
    (csrc/cpu_ops.cpp quantize_cpu_impl) looks codes up in a 65536-bin table, an approximation
    of the nearest code; CUDA's dQuantize<0> is an exact binary search with a midpoint rule.
    The absmax codes stored here are dQuantize<0> reimplemented below (`dquantize_cuda`) and
    applied to bitsandbytes' own F32 values (absmax - offset) and nested absmax; bitsandbytes'
    CPU codes are stored beside them (`*.absmax_q_cpu.u8`) and every difference is checked to
    be a CPU pick that is no nearer than ours. The DQ dequantization reference is
    bitsandbytes' dequantize_4bit run on that state.

Usage (torch and bitsandbytes from PyPI, CPU only):
    python3 -m venv /tmp/bnbvenv && /tmp/bnbvenv/bin/pip install torch bitsandbytes numpy
    /tmp/bnbvenv/bin/python tools/gen_nf4_refs.py tests/data/nf4
"""
import json
import os
import sys
from fractions import Fraction

import numpy as np
import torch
import bitsandbytes
import bitsandbytes.functional as F


def f32(x):
    return np.float32(x)


def dquantize_cuda(code, x):
    """csrc/kernels.cu dQuantize<0>(smem_code, 0, x) on F32 values (see src/quant/nf4.c)."""
    pivot, upper_pivot, lower_pivot = 127, 255, 0
    lower, upper = f32(-1.0), f32(1.0)
    val = code[pivot]
    i = 64
    while i > 0:
        if x > val:
            lower_pivot, lower, pivot = pivot, val, pivot + i
        else:
            upper_pivot, upper, pivot = pivot, val, pivot - i
        val = code[pivot]
        i >>= 1
    if upper_pivot == 255:
        upper = code[255]
    if lower_pivot == 0:
        lower = code[0]
    if x > val:
        mid = f32((upper + val) * f32(0.5))
        return upper_pivot if x > mid else pivot
    mid = f32((lower + val) * f32(0.5))
    return lower_pivot if x < mid else pivot


def edge_input():
    """[6, 128], block 64 -> 12 blocks of hand-built cases (see the block comments)."""
    thr = np.array([(f32(a) + f32(b)) / f32(2) for a, b in zip(CODE[:-1], CODE[1:])], np.float32)
    x = np.zeros((12, 64), np.float32)
    # block 0: all zero
    # block 1: absmax 1; the 15 thresholds exactly (ties), one float above, one below; codes
    for blk, scale in ((1, 1.0), (2, 2.0), (3, 0.25)):
        s = f32(scale)
        row = [s]
        row += list(thr * s)
        row += list(np.nextafter(thr, np.float32(np.inf)) * s)
        row += list(np.nextafter(thr, np.float32(-np.inf)) * s)
        row += [c * s for c in CODE[1:15]]
        row += [-s, f32(0.0)]
        x[blk, : len(row)] = row[:64]
    # block 4: +-absmax, the largest magnitude negative
    x[4, :] = np.linspace(-0.7, 0.7, 64, dtype=np.float32)
    x[4, 5], x[4, 9] = f32(-3.0), f32(3.0)
    # block 5: negative absmax alone
    x[5, :] = np.linspace(-0.1, 0.2, 64, dtype=np.float32)
    x[5, 17] = f32(-1.5)
    # block 6: a single non-zero
    x[6, 40] = f32(1e-3)
    # blocks 7..11: Gaussian at different scales
    g = torch.Generator().manual_seed(7)
    for k, sc in zip(range(7, 12), (1e-4, 1e-2, 1.0, 10.0, 300.0)):
        x[k, :] = (torch.randn(64, generator=g) * sc).numpy()
    return x.reshape(6, 128)


CODE = [f32(v) for v in F.get_4bit_type("nf4", device="cpu").tolist()]

# csrc/kernels.cu dQuantizeNF4's comparison constants, as written there (F32 literals).
NF4_TREE_DECIMALS = [
    "-0.8480964004993439", "-0.6106329262256622", "-0.4599952697753906", "-0.33967943489551544",
    "-0.23460740596055984", "-0.13791173323988914", "-0.045525018125772476", "0.03979014977812767",
    "0.1202552504837513", "0.2035212516784668", "0.2920137718319893", "0.3893125355243683",
    "0.5016634166240692", "0.6427869200706482", "0.8614784181118011",
]


def f32_literal(dec):
    """A decimal string rounded once to the nearest F32 (ties to even), as nvcc reads `...f`."""
    exact = Fraction(dec)
    c = f32(float(exact))
    cands = [np.nextafter(c, f32(-2)), c, np.nextafter(c, f32(2))]
    best = min(cands, key=lambda v: (abs(Fraction(float(v)) - exact),
                                     int(np.array(v, np.float32).view(np.uint32)) & 1))
    return f32(best)


NF4_TREE = [f32_literal(d) for d in NF4_TREE_DECIMALS]


def nf4_quantize_cuda(A, bs):
    """kQuantizeBlockwise<NF4> + dQuantizeNF4 on F32 data: packed codes (high nibble first)."""
    x = A.reshape(-1, bs).astype(np.float32)
    codes = np.zeros(x.shape, np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = (f32(1) / np.abs(x).max(axis=1)).astype(np.float32)
        xs = (x * inv[:, None]).astype(np.float32)
    for t in NF4_TREE:
        codes += (xs > t).astype(np.uint8)  # NaN (all-zero block) exceeds nothing: code 0
    flat = codes.reshape(-1)
    return (flat[0::2] << 4 | flat[1::2]).astype(np.uint8)


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    files = {}

    def save(name, arr, dtype):
        a = np.ascontiguousarray(np.asarray(arr, dtype=dtype))
        a.tofile(os.path.join(outdir, name))
        files[name] = a.size
        return name

    dmap = F.create_dynamic_map(signed=True).numpy().astype(np.float32)
    assert dmap.size == 256
    meta = {
        "generator": "tools/gen_nf4_refs.py",
        "bitsandbytes": bitsandbytes.__version__,
        "torch": torch.__version__,
        "backend": "cpu",
        "numpy": np.__version__,
        "layout": "little-endian raw arrays; .f32 float32, .u8 uint8; codes packed two per byte, "
        "first element in the high nibble",
        "dynamic_map": save("dynamic_map.f32", dmap, np.float32),
        "cases": [],
    }

    torch.manual_seed(1234)
    gauss = (torch.randn(72, 128) * 0.02).float()
    edge = torch.from_numpy(edge_input())
    inputs = {"gauss": gauss, "edge": edge}
    for k, v in inputs.items():
        save(f"{k}.in.f32", v.numpy(), np.float32)

    cases = [
        ("gauss_b64", "gauss", 64, False),
        ("gauss_b128", "gauss", 128, False),
        ("gauss_b64_dq", "gauss", 64, True),
        ("gauss_b32_dq", "gauss", 32, True),
        ("edge_b64", "edge", 64, False),
        ("edge_b64_dq", "edge", 64, True),
    ]
    for name, inp, bs, dq in cases:
        A = inputs[inp]
        q, st = F.quantize_4bit(A, blocksize=bs, quant_type="nf4", compress_statistics=dq)
        codes = q.numpy().reshape(-1)
        cuda = nf4_quantize_cuda(A.numpy(), bs)
        c = {"name": name, "input": f"{inp}.in.f32", "shape": list(A.shape), "blocksize": bs,
             "double_quant": dq, "codes_cpu": save(f"{name}.codes_cpu.u8", codes, np.uint8),
             "codes": save(f"{name}.codes.u8", cuda, np.uint8)}
        # all-zero blocks (CPU backend code 7, CUDA code 0: see the module docstring)
        flat = A.numpy().reshape(-1, bs)
        c["zero_blocks"] = [int(b) for b in np.nonzero(np.all(flat == 0, axis=1))[0]]
        # every other CPU/CUDA difference is a scaled value between an F32 midpoint (the CPU
        # bucketize boundary) and the kernel's literal threshold one ulp away
        diff = np.nonzero(codes != cuda)[0]
        mids = [f32((a + b) / f32(2)) for a, b in zip(CODE[:-1], CODE[1:])]
        ties = []
        for j in diff:
            for e in (2 * j, 2 * j + 1):
                b = e // bs
                if b in c["zero_blocks"]:
                    continue
                xe = A.numpy().reshape(-1)[e]
                xs = f32(xe * f32(f32(1) / np.abs(flat[b]).max()))
                hi, lo = (codes[j] >> 4, cuda[j] >> 4) if e % 2 == 0 else (codes[j] & 15, cuda[j] & 15)
                if hi != lo:
                    assert any(min(m, t) <= xs <= max(m, t) for m, t in zip(mids, NF4_TREE)
                               if m != t), (name, e, xs)
                    ties.append(int(e))
        c["cpu_threshold_ties"] = ties
        A_bnb_q = torch.from_numpy(cuda.copy()).reshape(q.shape)
        if not dq:
            c["absmax"] = save(f"{name}.absmax.f32", st.absmax.numpy(), np.float32)
            deq = F.dequantize_4bit(A_bnb_q, st)
        else:
            # bitsandbytes' own F32 absmax (same input, no DQ) and offset = torch mean
            _, st0 = F.quantize_4bit(A, blocksize=bs, quant_type="nf4", compress_statistics=False)
            absmax = st0.absmax.numpy().astype(np.float32)
            offset = st.offset.numpy().astype(np.float32).reshape(())
            v = (st0.absmax - st.offset).numpy().astype(np.float32)  # torch F32 subtraction
            absmax2 = st.state2.absmax.numpy().astype(np.float32)
            assert st.state2.blocksize == 256
            cpu_q = st.absmax.numpy().astype(np.uint8)
            ref_q = np.empty_like(cpu_q)
            for i in range(v.size):
                inv = f32(f32(1.0) / absmax2[i // 256])
                ref_q[i] = dquantize_cuda(dmap, f32(v[i] * inv))
                if ref_q[i] != cpu_q[i]:  # the CPU table lookup is never nearer than CUDA's rule
                    xs = f32(v[i] * inv)
                    assert abs(dmap[ref_q[i]] - xs) <= abs(dmap[cpu_q[i]] - xs), (name, i)
            c["absmax_f32_nodq"] = save(f"{name}.absmax_nodq.f32", absmax, np.float32)
            c["offset_bits"] = "0x%08x" % int(np.array(offset, np.float32).view(np.uint32))
            c["offset_mean_f64"] = float(absmax.astype(np.float64).mean())
            c["absmax_q"] = save(f"{name}.absmax_q.u8", ref_q, np.uint8)
            c["absmax_q_cpu"] = save(f"{name}.absmax_q_cpu.u8", cpu_q, np.uint8)
            c["absmax_q_cpu_differs"] = int((ref_q != cpu_q).sum())
            c["absmax2"] = save(f"{name}.absmax2.f32", absmax2, np.float32)
            st.absmax = torch.from_numpy(ref_q.copy())
            deq = F.dequantize_4bit(A_bnb_q, st)
        c["deq"] = save(f"{name}.deq.f32", deq.numpy().reshape(-1), np.float32)
        meta["cases"].append(c)

    with open(os.path.join(outdir, "refs.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    for c in meta["cases"]:
        print(c["name"], "zero blocks", c["zero_blocks"], "threshold ties", c["cpu_threshold_ties"],
              "cpu/cuda absmax code differences", c.get("absmax_q_cpu_differs", "-"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/nf4")
