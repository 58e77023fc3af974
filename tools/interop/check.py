#!/usr/bin/env python3
"""`make interop`: prove lathe's models and exports with the consumers' own loaders.

For each base model (stories260K from the fixtures, SmolLM2-135M-Instruct from the cache) this
trains a small adapter with lathe, exports it in every format, and compares logits on a fixed
prompt between lathe and:
  - llama.cpp (llama-cpp-python): the base GGUF; the merged GGUF; the base GGUF + GGUF LoRA adapter
  - transformers (AutoModelForCausalLM, CPU, float32): the merged safetensors directory
  - peft (PeftModel.from_pretrained) on the base converted to a Hugging Face directory by lathe
  - transformers' tokenizer loaded from that converted directory (token ids must be identical)
Tolerance: max |logit difference| <= 1e-3 x (range of lathe's logits), for F32 exports.
Prints one JSON line per check and exits non-zero if any check fails.

Run through `make interop`, which creates the virtual environment under build/ with the packages
(versions are printed in the first JSON line).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LATHE = os.environ.get("LATHE_BIN", os.path.join(ROOT, "bin", "lathe"))
FIXTURES = os.environ.get("LATHE_FIXTURES", os.path.join(ROOT, "..", "shared", "fixtures"))
REL_TOL = 1e-3
# A block-quantized GGUF (SmolLM2's is Q4_1) is also compared as is, but llama.cpp computes those
# matmuls on activations it quantizes to Q8_1 (ggml's vec_dot_q4_1_q8_1), an error lathe's exact
# dequantize-then-F32 path does not make; 8-bit activations bound the difference to a few
# percent of the logit range, so that comparison gets its own tolerance and label. The exact
# F32 comparisons use an F32 GGUF written by `lathe convert` from the same weights.
QUANT_ACT_REL_TOL = 5e-2
PROMPT = "Once upon a time, there was a little robot who wanted to learn"

failures = 0


def report(check, model, err=None, rng=None, ok=None, tol=REL_TOL, **extra):
    global failures
    if ok is None:
        ok = err is not None and rng is not None and err <= tol * rng
    failures += 0 if ok else 1
    line = {"check": check, "model": model, "ok": bool(ok)}
    if err is not None:
        line.update(max_abs_diff=float(err), logit_range=float(rng),
                    tolerance=float(tol * rng), rel=float(err / rng))
    line.update(extra)
    print(json.dumps(line), flush=True)


def lathe(*args, capture=True):
    r = subprocess.run([LATHE, *args], capture_output=capture, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"lathe {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def lathe_logits(model, work, adapter=None, tag="base"):
    out = os.path.join(work, f"logits-{tag}.f32")
    args = ["eval", "--model", model, "--prompt", PROMPT, "--logits", out]
    if adapter:
        args += ["--adapter", adapter]
    info = json.loads(lathe(*args))
    logits = np.fromfile(out, dtype=np.float32).reshape(len(info["tokens"]), info["n_vocab"])
    return info["tokens"], logits


def compare(check, model, ours, theirs, tol=REL_TOL):
    n = min(len(ours), len(theirs))
    err = float(np.max(np.abs(ours[:n] - theirs[:n])))
    rng = float(np.max(ours) - np.min(ours))
    report(check, model, err, rng, tol=tol, positions=n)


def gguf_is_f32(path):
    from gguf import GGUFReader
    return all(t.tensor_type.name in ("F32",) for t in GGUFReader(path).tensors)


def llama_cpp_logits(gguf, tokens, lora=None):
    from llama_cpp import Llama
    kw = dict(model_path=gguf, n_ctx=max(64, len(tokens) + 8), logits_all=True, verbose=False,
              n_threads=2, n_batch=len(tokens) + 8,
              type_k=0, type_v=0)  # F32 KV cache (GGML_TYPE_F32): llama.cpp defaults to F16
    if lora:
        kw["lora_path"] = lora
    llm = Llama(**kw)
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def hf_logits(model_obj, tokens):
    import torch
    with torch.no_grad():
        return model_obj(torch.tensor([tokens])).logits[0].float().numpy()


def train_adapter(model, work, shards, steps):
    run = os.path.join(work, "run")
    lathe("train", os.path.join(ROOT, "recipes", "ci-stories260k.yaml"),
          "--set", f"model.path={model}", "--set", f"data.train={shards}/train-*.h5",
          "--set", f"data.eval={shards}/eval-*.h5", "--set", f"output.dir={run}",
          "--set", f"train.max_steps={steps}", "--set", "train.eval_every=0",
          "--set", "train.save_every=0", "--set", "schedule.warmup_steps=1",
          "--set", "lora.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]",
          "--set", "lora.rslora=true")
    return run


def check_model(name, gguf, data, steps):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import PeftModel
    work = tempfile.mkdtemp(prefix=f"lathe-interop-{name}-")
    try:
        shards = os.path.join(work, "shards")
        lathe("tokenize", "--model", gguf, "--input", data, "--output", shards,
              "--eval-fraction", "0.1")
        run = train_adapter(gguf, work, shards, steps)
        adapter = os.path.join(run, "adapter")
        tokens, base = lathe_logits(gguf, work)
        _, tuned = lathe_logits(gguf, work, adapter, "adapted")
        report("adapter_changes_logits", name,
               ok=float(np.max(np.abs(base - tuned))) > 1e-3,
               max_abs_change=float(np.max(np.abs(base - tuned))))

        exp = os.path.join(work, "exports")
        for fmt in ("gguf-adapter", "merged-gguf", "merged-safetensors", "peft"):
            dtype = ["--dtype", "f32"] if fmt != "peft" else []
            lathe("export", run, "--format", fmt, *dtype, "--out", os.path.join(exp, fmt))
        hf_base = os.path.join(work, "hf-base")
        lathe("convert", gguf, "--to", "hf", "--dtype", "f32", "--out", hf_base)
        base_f32 = gguf
        if not gguf_is_f32(gguf):
            compare("llama.cpp base GGUF, native quantized (Q8_1 activations)", name, base,
                    llama_cpp_logits(gguf, tokens), tol=QUANT_ACT_REL_TOL)
            base_f32 = os.path.join(work, "base-f32.gguf")
            lathe("convert", hf_base, "--to", "gguf", "--dtype", "f32", "--out", base_f32)
        compare("llama.cpp base GGUF (F32)", name, base, llama_cpp_logits(base_f32, tokens))

        merged_gguf = [os.path.join(exp, "merged-gguf", f) for f in os.listdir(os.path.join(exp, "merged-gguf")) if f.endswith(".gguf")][0]
        compare("llama.cpp merged GGUF", name, tuned, llama_cpp_logits(merged_gguf, tokens))
        lora_gguf = [os.path.join(exp, "gguf-adapter", f) for f in os.listdir(os.path.join(exp, "gguf-adapter")) if f.endswith(".gguf")][0]
        compare("llama.cpp base GGUF (F32) + GGUF LoRA adapter", name, tuned,
                llama_cpp_logits(base_f32, tokens, lora=lora_gguf))

        m = AutoModelForCausalLM.from_pretrained(os.path.join(exp, "merged-safetensors"),
                                                 dtype=torch.float32)
        compare("transformers merged safetensors", name, tuned, hf_logits(m, tokens))
        b = AutoModelForCausalLM.from_pretrained(hf_base, dtype=torch.float32)
        compare("transformers converted base", name, base, hf_logits(b, tokens))
        p = PeftModel.from_pretrained(b, os.path.join(exp, "peft"))
        compare("peft PeftModel on converted base", name, tuned, hf_logits(p, tokens))

        tok = AutoTokenizer.from_pretrained(hf_base)
        text = open(data, encoding="utf-8").read()[:4000]
        ours = json.loads(lathe("eval", "--model", gguf, "--prompt", text))["tokens"]
        theirs = tok(text)["input_ids"]
        report("transformers tokenizer from converted dir", name, ok=ours == theirs,
               tokens=len(ours), first_mismatch=next((i for i, (a, c) in enumerate(zip(ours, theirs)) if a != c), None))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    import importlib.metadata as md
    print(json.dumps({"versions": {p: md.version(p) for p in
                                   ("llama_cpp_python", "transformers", "peft", "torch")}}), flush=True)
    models = [("stories260K", os.path.join(FIXTURES, "stories260K", "stories260K.gguf"),
               os.path.join(FIXTURES, "data", "identity.json"), 20)]
    smol = subprocess.run([os.path.join(ROOT, "tools", "fetch_model.sh")], capture_output=True,
                          text=True)
    if smol.returncode == 0:
        models.append(("SmolLM2-135M", smol.stdout.strip(),
                       os.path.join(FIXTURES, "data", "identity.json"), 3))
    for name, gguf, data, steps in models:
        try:
            check_model(name, gguf, data, steps)
        except Exception as e:  # a crash in one model's checks is a failure, not an abort
            report("run", name, ok=False, error=str(e)[-2000:])
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
