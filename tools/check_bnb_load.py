#!/usr/bin/env python3
"""Check that the bitsandbytes 4-bit directories `lathe quantize` writes load in transformers +
bitsandbytes and hold exactly lathe's numbers. Not part of `make test` (it needs torch,
bitsandbytes, transformers, accelerate and safetensors: pip install bitsandbytes torch
transformers accelerate safetensors). Checked with bitsandbytes 0.50.2, torch 2.15, transformers
5.23, accelerate 1.15, safetensors 0.8 (CPU backend); the script prints the versions it ran with.

For SRC (a GGUF file or HF directory lathe loads), for double quant on and off:
  1. `lathe quantize SRC --type nf4 [--no-double-quant] --out DIR` and `lathe convert SRC --to hf
     --dtype f32` (the F32 weights lathe quantized);
  2. transformers.AutoModelForCausalLM.from_pretrained(DIR, device_map="cpu"): every projection
     must come back as a bitsandbytes Linear4bit, every other parameter equal to the F32 source;
  3. per projection, bitsandbytes.functional.dequantize_4bit(weight, weight.quant_state) must equal
     bit for bit (a) lathe's dequantization formula (quant.h: code[q] * absmax, absmax =
     dynamic_map[qa] * nested_absmax + offset in F32) applied here to the raw tensors, and (b)
     what lathe itself loads: `lathe convert DIR --to hf --dtype f32` (HF loader ->
     lt_bnb_read_nf4 -> dequantized F32);
  4. per projection, bitsandbytes' own quantize_4bit of the F32 source weight (CPU backend) is
     compared with lathe's codes and absmax; quant.h names the only expected differences (values
     exactly on four NF4 thresholds, all-zero blocks, the last bit of the double-quant offset), so
     the script reports counts and fails only above a small named share;
  5. logits on a prompt: transformers' 4-bit model (bitsandbytes' AVX512-BF16 CPU kernel switched
     off, so it computes in F32; the default bf16 path is reported for information) against (a) an
     F32 transformers model holding the dequantized weights (LOGIT_ATOL) and (b) lathe:
     `lathe eval --model DIR --prompt ... --logits`, or, where eval takes GGUF files only, lathe
     eval on `lathe convert DIR --to gguf --dtype f32` (lathe's loading of DIR, dequantized).

Exit 0 when every check that could run passed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# Logits of the same dequantized F32 weights computed by two different matmul paths (bnb's CPU
# 4-bit linear vs torch.nn.Linear) and, for lathe, a different BLAS and summation order: F32
# rounding of 576-long dot products through 30 layers, measured at ~1e-4 on SmolLM2-135M (logit
# scale ~20). 2e-3 absolute still catches any wrong weight (a single flipped NF4 code in a
# projection moves logits by > 1e-2).
LOGIT_ATOL = 2e-3
# Share of codes that may differ from bitsandbytes' own CPU quantization of the same F32 weights
# (ties on the four thresholds where the CPU backend's F32 midpoints differ from the CUDA
# kernel's literals by one ulp; quant.h): rare in real weights, so 1e-4 flags any real bug.
MAX_CODE_MISMATCH_SHARE = 1e-4
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def lathe_dequant(f, name):
    """lathe's NF4 dequantization (src/quant/quant.h) of weight `name` from the raw file."""
    codes = f.get_tensor(name).numpy().reshape(-1)
    qs = json.loads(bytes(f.get_tensor(name + ".quant_state.bitsandbytes__nf4").numpy()))
    code = f.get_tensor(name + ".quant_map").numpy().astype(np.float32)
    B = qs["blocksize"]
    if "nested_offset" in qs:
        qa = f.get_tensor(name + ".absmax").numpy()
        a2 = f.get_tensor(name + ".nested_absmax").numpy().astype(np.float32)
        dmap = f.get_tensor(name + ".nested_quant_map").numpy().astype(np.float32)
        idx = np.arange(qa.size) // qs["nested_blocksize"]
        absmax = (dmap[qa] * a2[idx]).astype(np.float32) + np.float32(qs["nested_offset"])
    else:
        absmax = f.get_tensor(name + ".absmax").numpy().astype(np.float32)
    q = np.empty(codes.size * 2, dtype=np.uint8)
    q[0::2] = codes >> 4
    q[1::2] = codes & 15
    vals = code[q].reshape(-1, B) * absmax.astype(np.float32)[:, None]
    return vals.astype(np.float32).reshape(qs["shape"]), qs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", nargs="?", default=os.path.expanduser(
        "~/.cache/lathe/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--lathe", default=os.path.join(os.path.dirname(__file__), "..", "bin", "lathe"))
    ap.add_argument("--prompt", default="The capital of France is")
    ap.add_argument("--block-size", type=int, default=64)
    args = ap.parse_args()

    import accelerate
    import bitsandbytes as bnb
    import safetensors
    import torch
    import transformers
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    versions = {"python": sys.version.split()[0], "torch": torch.__version__,
                "bitsandbytes": bnb.__version__, "transformers": transformers.__version__,
                "accelerate": accelerate.__version__, "safetensors": safetensors.__version__}
    print("versions:", json.dumps(versions))
    ok = True
    work = tempfile.mkdtemp(prefix="lathe_bnb_check_")
    f32_dir = os.path.join(work, "f32")
    rc, out = run([args.lathe, "convert", args.src, "--to", "hf", "--dtype", "f32", "--out", f32_dir])
    if rc:
        sys.exit(f"lathe convert failed ({rc}):\n{out}")
    src_sd = {}
    with safe_open(os.path.join(f32_dir, "model.safetensors"), "pt") as f:
        for k in f.keys():
            src_sd[k] = f.get_tensor(k)

    for dq in (True, False):
        tag = "nf4+dq" if dq else "nf4"
        qdir = os.path.join(work, tag)
        cmd = [args.lathe, "quantize", args.src, "--type", "nf4", "--block-size",
               str(args.block_size), "--out", qdir]
        if not dq:
            cmd.insert(5, "--no-double-quant")
        rc, out = run(cmd)
        if rc:
            print(f"[{tag}] FAIL lathe quantize ({rc}): {out}")
            ok = False
            continue
        print(f"[{tag}] lathe quantize: {out.strip().splitlines()[-2]}")

        # 2. transformers loads the directory with its bitsandbytes integration
        model = AutoModelForCausalLM.from_pretrained(qdir, device_map="cpu")
        model.eval()
        n4 = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
        n_layers = model.config.num_hidden_layers
        print(f"[{tag}] transformers loaded {type(model).__name__}: {n4} Linear4bit modules "
              f"(expected {7 * n_layers}), quantization_config.bnb_4bit_use_double_quant="
              f"{model.config.quantization_config.bnb_4bit_use_double_quant}")
        ok &= n4 == 7 * n_layers
        plain_bad = []
        for name, p in model.named_parameters():
            if name in src_sd and p.dtype != torch.uint8:
                if not torch.equal(p.detach().float(), src_sd[name].float()):
                    plain_bad.append(name)
        print(f"[{tag}] non-quantized parameters equal to the F32 source: "
              f"{'all' if not plain_bad else 'NOT ' + ', '.join(plain_bad[:5])}")
        ok &= not plain_bad

        # lathe's own reading of the directory: its HF loader (lt_bnb_read_nf4) dequantizes the
        # NF4 weights when converting to F32
        deq_dir = qdir + "-lathe-f32"
        rc, out = run([args.lathe, "convert", qdir, "--to", "hf", "--dtype", "f32", "--out", deq_dir])
        lathe_sd = {}
        if rc:
            print(f"[{tag}] FAIL lathe convert of the 4-bit directory ({rc}): {out}")
            ok = False
        else:
            with safe_open(os.path.join(deq_dir, "model.safetensors"), "pt") as f:
                for k in f.keys():
                    lathe_sd[k] = f.get_tensor(k)

        # 3. + 4. per projection
        deq_bad, lathe_bad, code_diff, code_total, absmax_diff, offset_diff = [], [], 0, 0, 0, []
        deq_weights = {}
        with safe_open(os.path.join(qdir, "model.safetensors"), "pt") as f:
            for l in range(n_layers):
                for proj in PROJ:
                    parent = "self_attn" if proj in PROJ[:4] else "mlp"
                    name = f"model.layers.{l}.{parent}.{proj}.weight"
                    mod = model.get_submodule(name[:-len(".weight")])
                    w = mod.weight
                    got = bnb.functional.dequantize_4bit(w.data, w.quant_state).float()
                    want, qs = lathe_dequant(f, name)
                    deq_weights[name] = torch.from_numpy(want)
                    if not np.array_equal(got.numpy().view(np.uint32), want.view(np.uint32)):
                        deq_bad.append(name)
                    if lathe_sd and not np.array_equal(got.numpy().view(np.uint32),
                                                       lathe_sd[name].numpy().view(np.uint32)):
                        lathe_bad.append(name)
                    # bitsandbytes' own quantization of the F32 weight lathe quantized
                    ref, rs = bnb.functional.quantize_4bit(
                        src_sd[name].float().contiguous(), blocksize=qs["blocksize"],
                        compress_statistics=dq, quant_type="nf4")
                    ours = f.get_tensor(name).reshape(-1)
                    c1, c2 = ours.numpy(), ref.reshape(-1).numpy()
                    hi = (c1 >> 4) != (c2 >> 4)
                    lo = (c1 & 15) != (c2 & 15)
                    code_diff += int(hi.sum() + lo.sum())
                    code_total += 2 * c1.size
                    a_ours = f.get_tensor(name + ".absmax")
                    absmax_diff += int((a_ours != rs.absmax.to(a_ours.dtype)).sum())
                    if dq:
                        o_ref = float(rs.offset)
                        if o_ref != qs["nested_offset"]:
                            offset_diff.append((name, qs["nested_offset"], o_ref))
        print(f"[{tag}] bitsandbytes dequantize_4bit == lathe's dequantization, bit for bit: "
              f"{7 * n_layers - len(deq_bad)}/{7 * n_layers} projections"
              + (f" (differ: {deq_bad[:3]})" if deq_bad else ""))
        ok &= not deq_bad
        if lathe_sd:
            print(f"[{tag}] bitsandbytes dequantize_4bit == lathe's loader (lathe convert DIR --to hf "
                  f"--dtype f32), bit for bit: {7 * n_layers - len(lathe_bad)}/{7 * n_layers} "
                  f"projections" + (f" (differ: {lathe_bad[:3]})" if lathe_bad else ""))
            ok &= not lathe_bad
        share = code_diff / max(code_total, 1)
        print(f"[{tag}] lathe codes vs bitsandbytes CPU quantize_4bit of the same F32 weights: "
              f"{code_diff}/{code_total} codes differ ({share:.2e}); absmax entries differing: "
              f"{absmax_diff}" + (f"; double-quant offsets differing (last bit, quant.h): "
                                  f"{len(offset_diff)}/{7 * n_layers}" if dq else ""))
        ok &= share <= MAX_CODE_MISMATCH_SHARE

        # 5. logits
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(qdir)
        ids = tok(args.prompt, return_tensors="pt").input_ids
        if tok.bos_token_id is not None and ids[0, 0] != tok.bos_token_id and \
                getattr(tok, "add_bos_token", False):
            ids = torch.cat([torch.tensor([[tok.bos_token_id]]), ids], 1)
        lin4 = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
        fast = [bool(getattr(m, "support_avx512bf16_for_cpu", False)) for m in lin4]
        with torch.no_grad():
            # bitsandbytes' CPU Linear4bit takes an AVX512-BF16 kernel (bf16 arithmetic) when the
            # CPU has it; switched off first for the exact F32 comparison, then run as shipped.
            for m in lin4:
                m.support_avx512bf16_for_cpu = False
            l4 = model(ids).logits[0].float()
            for m, f0 in zip(lin4, fast):
                m.support_avx512bf16_for_cpu = f0
            l4_fast = model(ids).logits[0].float() if any(fast) else None
            ref = AutoModelForCausalLM.from_pretrained(f32_dir, dtype=torch.float32)
            sd = ref.state_dict()
            for k, v in deq_weights.items():
                sd[k].copy_(v)
            ref.eval()
            lf = ref(ids).logits[0].float()
        d = (l4 - lf).abs().max().item()
        print(f"[{tag}] logits ({ids.shape[1]} tokens): transformers 4-bit vs F32 model of the "
              f"dequantized weights: max |diff| {d:.3e} (tolerance {LOGIT_ATOL}); argmax equal: "
              f"{bool(torch.equal(l4.argmax(-1), lf.argmax(-1)))}")
        ok &= d <= LOGIT_ATOL
        if l4_fast is not None:
            d2 = (l4_fast - lf).abs().max().item()
            print(f"[{tag}] logits with bitsandbytes' default CPU path (AVX512-BF16 kernel, bf16 "
                  f"arithmetic; informational, no tolerance): max |diff| {d2:.3e}; argmax equal: "
                  f"{bool(torch.equal(l4_fast.argmax(-1), lf.argmax(-1)))}")
        lpath = os.path.join(work, f"{tag}.logits.f32")
        how = "lathe eval --model DIR"
        rc, out = run([args.lathe, "eval", "--model", qdir, "--prompt", args.prompt,
                       "--logits", lpath])
        if rc:
            # this lathe's eval takes GGUF files only: evaluate lathe's loading of DIR written
            # out as an F32 GGUF (the NF4 weights as lathe dequantizes them)
            how = "lathe eval on `lathe convert DIR --to gguf --dtype f32`"
            gguf = os.path.join(work, f"{tag}.gguf")
            rc, out = run([args.lathe, "convert", qdir, "--to", "gguf", "--dtype", "f32",
                           "--out", gguf])
            if not rc:
                rc, out = run([args.lathe, "eval", "--model", gguf, "--prompt", args.prompt,
                               "--logits", lpath])
        if rc:
            print(f"[{tag}] FAIL lathe logits not available ({rc}): {out.strip()[-300:]}")
            ok = False
        else:
            info = json.loads(out.strip().splitlines()[-1])
            lathe_ids = info.get("tokens")
            ll = torch.from_numpy(np.fromfile(lpath, dtype=np.float32).reshape(-1, l4.shape[1]))
            if lathe_ids is not None and list(lathe_ids) != ids[0].tolist():
                print(f"[{tag}] lathe tokenized the prompt differently: {lathe_ids} vs "
                      f"{ids[0].tolist()}; logits not compared")
                ok = False
            else:
                d = (ll - l4).abs().max().item()
                print(f"[{tag}] logits: {how} vs transformers 4-bit: max |diff| "
                      f"{d:.3e} (tolerance {LOGIT_ATOL}); argmax equal: "
                      f"{bool(torch.equal(ll.argmax(-1), l4.argmax(-1)))}")
                ok &= d <= LOGIT_ATOL
        del model
    print("RESULT:", "PASS" if ok else "FAIL", f"(work dir {work})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
