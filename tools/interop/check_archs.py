#!/usr/bin/env python3
"""`make interop-archs`: every decoder family lathe builds, trained and exported, in its consumers.

For each tiny transformers-built model in tests/data/models (tools/gen_model_refs.py: Llama 3
rope scaling in both config spellings, Llama with biases, Qwen2, Qwen2 with sliding layers,
Qwen3, Mistral with a sliding window, Gemma 2, Gemma 3 in both RoPE spellings, Phi-3 with its
fused modules), paired with stories260K's tokenizer (same 512-token vocabulary), this:
  1. tokenizes identity.json with the HF directory as --model and trains a LoRA adapter on all
     seven projections with lathe (recipes/ci-stories260k.yaml, a few steps);
  2. compares logits on a fixed prompt, base and adapted, between lathe and
       - transformers (float32) on the base directory, and on lathe's merged-safetensors export,
       - peft.PeftModel.from_pretrained(base, lathe's PEFT export),
       - llama.cpp (llama-cpp-python, F32 KV cache) on lathe's merged GGUF and on the base
         converted to GGUF + lathe's GGUF LoRA adapter, where llama.cpp computes the same
         function; where the model has a sliding window shorter than the prompt, the cell
         records whether llama.cpp applies it (measured, not a failure of lathe's export);
  3. checks that lathe refuses, with a message, the exports a format cannot express (a GGUF of a
     model whose sliding window covers only some layers).
Tolerance: max |logit difference| <= 1e-3 x (range of lathe's logits), as tools/interop/check.py.
Prints one JSON line per check, then a table (architecture x format, the measured relative
error) for docs/models.md, and exits non-zero if any check fails.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check as base  # noqa: E402  (shared helpers: lathe(), compare(), llama_cpp_logits(), ...)

ROOT = base.ROOT
MODELS = os.path.join(ROOT, "tests", "data", "models")
CASES = ["llama3", "llama3_legacy", "llama_bias_linear", "qwen2", "qwen2_swa", "qwen3",
         "mistral_swa", "gemma2", "gemma3", "gemma3_legacy", "phi3"]
COLUMNS = ["load HF", "load GGUF", "train", "PEFT", "merged safetensors", "merged GGUF",
           "GGUF adapter"]
table = {}


def cell(case, col, text):
    table.setdefault(case, {})[col] = text


def rel(ours, theirs):
    n = min(len(ours), len(theirs))
    return float(np.max(np.abs(ours[:n] - theirs[:n])) / (np.max(ours) - np.min(ours)))


def compare(check, case, col, ours, theirs):
    r = rel(ours, theirs)
    base.compare(check, case, ours, theirs)
    cell(case, col, f"{r:.1e}" if r <= base.REL_TOL else f"FAIL {r:.1e}")


def assemble(case, work, tok_dir):
    refs = json.load(open(os.path.join(MODELS, case, "refs.json")))
    src = refs.get("weights_from", case)
    d = os.path.join(work, "hf")
    os.makedirs(d)
    shutil.copy(os.path.join(MODELS, case, "config.json"), d)
    shutil.copy(os.path.join(MODELS, src, "model.safetensors"), d)
    for f in os.listdir(tok_dir):
        if f.startswith("tokenizer") or f == "special_tokens_map.json":
            shutil.copy(os.path.join(tok_dir, f), d)
    return d


def sliding_layers(hf_dir):
    c = json.load(open(os.path.join(hf_dir, "config.json")))
    lt = c.get("layer_types") or []
    if c.get("architectures", [""])[0].startswith("Mistral") and c.get("sliding_window"):
        return c["num_hidden_layers"]
    return sum(t == "sliding_attention" for t in lt)


def check_case(case, tok_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    work = tempfile.mkdtemp(prefix=f"lathe-archs-{case}-")
    try:
        hf = assemble(case, work, tok_dir)
        shards = os.path.join(work, "shards")
        base.lathe("tokenize", "--model", hf, "--input",
                   os.path.join(base.FIXTURES, "data", "identity.json"), "--output", shards,
                   "--eval-fraction", "0.1")
        run = base.train_adapter(hf, work, shards, 10)
        adapter = os.path.join(run, "adapter")
        tokens, ours_base = base.lathe_logits(hf, work)
        _, ours_tuned = base.lathe_logits(hf, work, adapter, "adapted")
        changed = float(np.max(np.abs(ours_base - ours_tuned)))
        base.report("adapter_changes_logits", case, ok=changed > 1e-3, max_abs_change=changed)
        cell(case, "train", "ok" if changed > 1e-3 else "FAIL (no change)")

        b = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32).eval()
        compare("transformers base (HF directory)", case, "load HF", ours_base,
                base.hf_logits(b, tokens))
        exp = os.path.join(work, "exports")
        base.lathe("export", run, "--format", "peft", "--out", os.path.join(exp, "peft"))
        p = PeftModel.from_pretrained(b, os.path.join(exp, "peft")).eval()
        compare("peft PeftModel on the base", case, "PEFT", ours_tuned, base.hf_logits(p, tokens))
        base.lathe("export", run, "--format", "merged-safetensors", "--dtype", "f32", "--out",
                   os.path.join(exp, "merged"))
        m = AutoModelForCausalLM.from_pretrained(os.path.join(exp, "merged"),
                                                 dtype=torch.float32).eval()
        compare("transformers merged safetensors", case, "merged safetensors", ours_tuned,
                base.hf_logits(m, tokens))

        gguf = os.path.join(work, "base.gguf")
        r = subprocess.run([base.LATHE, "convert", hf, "--to", "gguf", "--dtype", "f32", "--out",
                            gguf], capture_output=True, text=True)
        n_swa = sliding_layers(hf)
        if r.returncode != 0 and "cannot write a" in r.stderr:
            why = ("a GGUF cannot say which layers slide" if "sliding window" in r.stderr
                   else "llama.cpp derives Gemma's query scale from the model size"
                   if "query_pre_attn_scalar" in r.stderr else r.stderr.strip()[-120:])
            base.report("GGUF export refused", case, ok=r.returncode == 3, reason=why,
                        message=r.stderr.strip()[-300:])
            for col in ("load GGUF", "merged GGUF", "GGUF adapter"):
                cell(case, col, "refused: " + why)
            return
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        _, from_gguf = base.lathe_logits(gguf, work, tag="gguf")
        compare("lathe on its own GGUF", case, "load GGUF", ours_base, from_gguf)
        for fmt in ("merged-gguf", "gguf-adapter"):
            base.lathe("export", run, "--format", fmt, "--dtype", "f32", "--out",
                       os.path.join(exp, fmt))
        merged_gguf = next(os.path.join(exp, "merged-gguf", f)
                           for f in os.listdir(os.path.join(exp, "merged-gguf")))
        lora_gguf = next(os.path.join(exp, "gguf-adapter", f)
                         for f in os.listdir(os.path.join(exp, "gguf-adapter")))
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            for col in ("merged GGUF", "GGUF adapter"):
                cell(case, col, "not measured (llama-cpp-python missing)")
            return
        if n_swa and len(tokens) > window_of(hf):
            # measured, not assumed: if llama.cpp ignores the window its logits differ, and that
            # is llama.cpp's model, not an error in lathe's export (lathe reads it back exactly)
            for col, theirs in (("merged GGUF", base.llama_cpp_logits(merged_gguf, tokens)),
                                ("GGUF adapter", base.llama_cpp_logits(gguf, tokens,
                                                                       lora=lora_gguf))):
                r = rel(ours_tuned, theirs)
                same = r <= base.REL_TOL
                base.report(f"llama.cpp {col} (sliding window {window_of(hf)})", case, ok=True,
                            rel=r, llama_cpp_applies_window=same)
                cell(case, col, f"{r:.1e}" if same else
                     f"llama.cpp ignores the window: {r:.1e} (lathe reads the file back exactly)")
            return
        compare("llama.cpp merged GGUF", case, "merged GGUF", ours_tuned,
                base.llama_cpp_logits(merged_gguf, tokens))
        compare("llama.cpp base GGUF + GGUF LoRA adapter", case, "GGUF adapter", ours_tuned,
                base.llama_cpp_logits(gguf, tokens, lora=lora_gguf))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def window_of(hf):
    return json.load(open(os.path.join(hf, "config.json"))).get("sliding_window") or 1 << 30


def main():
    import importlib.metadata as md
    versions = {}
    for p in ("transformers", "peft", "torch", "llama_cpp_python"):
        try:
            versions[p] = md.version(p)
        except md.PackageNotFoundError:
            versions[p] = None
    print(json.dumps({"versions": versions}), flush=True)
    tok_root = tempfile.mkdtemp(prefix="lathe-archs-tok-")
    try:
        tok_dir = os.path.join(tok_root, "hf")
        base.lathe("convert", os.path.join(base.FIXTURES, "stories260K", "stories260K.gguf"),
                   "--to", "hf", "--out", tok_dir)
        for case in CASES:
            try:
                check_case(case, tok_dir)
            except Exception as e:  # one case's crash is that case's failure
                base.report("run", case, ok=False, error=str(e)[-2000:])
                cell(case, "train", "FAIL: " + str(e).splitlines()[-1][:80])
    finally:
        shutil.rmtree(tok_root, ignore_errors=True)
    print("| case | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for case in CASES:
        row = table.get(case, {})
        print(f"| {case} | " + " | ".join(row.get(c, "-") for c in COLUMNS) + " |")
    sys.exit(1 if base.failures else 0)


if __name__ == "__main__":
    main()
