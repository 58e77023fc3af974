#!/usr/bin/env python3
"""Reference models and logits for tests/unit/test_archs.c, from transformers itself.

For each case below this builds a tiny random-weight model with transformers' own config and
model classes (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM,
Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM), saves it with
save_pretrained (config.json as transformers writes it, BF16 safetensors), and records the
float32 logits of a fixed token sequence computed by that model in float32 on the BF16-rounded
weights (so lathe, which reads the BF16 file into F32, computes the same function):

  tests/data/models/<case>/config.json         as save_pretrained wrote it
  tests/data/models/<case>/model.safetensors   BF16 weights (absent for config-only variants)
  tests/data/models/<case>/refs.json           transformers / torch versions, token ids, what
                                               the case covers, "weights_from" for variants
  tests/data/models/<case>/logits.f32          float32 little-endian [T, vocab]

Cases cover Phi-3's fused projections, Gemma 2 and 3 (every Gemma-specific op), Qwen3's per-head q/k norms, both RoPE
spellings (transformers >= 5 "rope_parameters"; the older top-level
"rope_theta" + "rope_scaling", written here by hand and checked to give transformers the same
logits), llama3 and linear RoPE scaling, attention biases, explicit head_dim, tied and untied
embeddings, and sliding-window attention shorter than the sequence (Mistral on every layer,
Qwen2 above max_window_layers).

The vocabulary is 512 so that the tests can pair each model with stories260K's tokenizer for
`lathe convert` round trips; token ids are drawn from [3, 512).

Usage (torch, transformers, safetensors from PyPI, CPU only):
    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch transformers safetensors
    /tmp/refvenv/bin/python tools/gen_model_refs.py tests/data/models
"""
import json
import math
import os
import shutil
import sys

import torch
import transformers
from transformers import (AutoModelForCausalLM, Gemma2Config, Gemma3TextConfig, LlamaConfig,
                          MistralConfig, Phi3Config, Qwen2Config, Qwen3Config)

VOCAB = 512
T = 20
WINDOW = 5  # shorter than T: the sliding window cuts keys


def common(**kw):
    base = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    base.update(kw)
    return base


# name -> (config, what the case covers)
CASES = {
    "llama3": (LlamaConfig(**common(rope_parameters={
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 256})),
        "Llama 3.x: llama3 RoPE scaling in rope_parameters (blended, scaled and kept "
        "frequencies), rope_theta 500000, tied embeddings"),
    "llama_bias_linear": (LlamaConfig(**common(attention_bias=True, tie_word_embeddings=False,
                                              rope_parameters={"rope_type": "linear",
                                                               "rope_theta": 10000.0,
                                                               "factor": 2.0})),
                          "Llama with attention_bias (q/k/v/o biases), linear RoPE scaling, "
                          "untied lm_head"),
    "qwen2": (Qwen2Config(**common(rope_parameters={"rope_type": "default",
                                                    "rope_theta": 1000000.0},
                                   rms_norm_eps=1e-6)),
              "Qwen2/2.5: q/k/v biases, no o_proj bias, rope_theta 1e6, tied embeddings"),
    "qwen2_swa": (Qwen2Config(**common(use_sliding_window=True, sliding_window=WINDOW,
                                       max_window_layers=1,
                                       rope_parameters={"rope_type": "default",
                                                        "rope_theta": 10000.0})),
                  "Qwen2 with use_sliding_window: layer 1 slides (window 5 < 20 tokens), "
                  "layer 0 attends fully (max_window_layers 1)"),
    "qwen3": (Qwen3Config(**common(head_dim=32, tie_word_embeddings=False,
                                   rope_parameters={"rope_type": "default",
                                                    "rope_theta": 1000000.0})),
              "Qwen3 dense: per-head q/k RMSNorm before RoPE, head_dim 32 != hidden/heads, no "
              "biases, untied lm_head"),
    "gemma2": (Gemma2Config(**common(head_dim=32, num_hidden_layers=3, query_pre_attn_scalar=24,
                                     sliding_window=WINDOW, attn_logit_softcapping=3.0,
                                     final_logit_softcapping=5.0, rms_norm_eps=1e-6)),
               "Gemma 2: (1 + w) RMSNorm, embeddings x sqrt(hidden), GeGLU (tanh-GELU), norms "
               "after attention and MLP, query_pre_attn_scalar 24, attention soft-cap 3 and final "
               "soft-cap 5 (small enough to bend the logits), layers 0 and 2 sliding (window 5)"),
    "gemma3": (Gemma3TextConfig(**common(head_dim=32, num_hidden_layers=3, sliding_window=WINDOW,
                                         query_pre_attn_scalar=32, rms_norm_eps=1e-6,
                                         layer_types=["sliding_attention", "full_attention",
                                                      "sliding_attention"],
                                         rope_parameters={
                                             "full_attention": {"rope_type": "linear",
                                                                "factor": 4.0,
                                                                "rope_theta": 1000000.0},
                                             "sliding_attention": {"rope_type": "default",
                                                                   "rope_theta": 10000.0}})),
               "Gemma 3 text: Gemma's norms, scale and GeGLU, q/k (1 + w) norms, no soft-capping, "
               "per-layer-type RoPE (full layers theta 1e6 with linear x4, sliding layers theta "
               "1e4), layers 0 and 2 sliding (window 5)"),
    "phi3": (Phi3Config(**common(sliding_window=None, tie_word_embeddings=False, pad_token_id=0,
                                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
             "Phi-3 / Phi-4: fused qkv_proj and gate_up_proj, no sliding window (as Phi-4; the "
             "window is Mistral's code path), untied lm_head"),
    "mistral_swa": (MistralConfig(**common(sliding_window=WINDOW, head_dim=32,
                                           rope_parameters={"rope_type": "default",
                                                            "rope_theta": 1000000.0})),
                    "Mistral: sliding window 5 on every layer, head_dim 32 != hidden/heads"),
}

# config-only variants: the same weights and logits under another spelling of the config
LEGACY = {
    "llama3_legacy": ("llama3", "the llama3 case's config in the pre-5 spelling: top-level "
                      "rope_theta and rope_scaling {rope_type: llama3, ...}"),
    "qwen2_swa_legacy": ("qwen2_swa", "the qwen2_swa case's config in the pre-5 spelling "
                         "(rope_theta at top level, no layer_types: max_window_layers decides)"),
    "gemma3_legacy": ("gemma3", "the gemma3 case's config in the pre-5 spelling: rope_theta, "
                      "rope_scaling, rope_local_base_freq and sliding_window_pattern 2"),
}


def randomize(model, seed):
    """Weights big enough that every part of the function shows in the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
            # the stored model is BF16: compute the reference on the BF16-rounded values
            p.copy_(p.to(torch.bfloat16).to(torch.float32))


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].to(torch.float32).contiguous()


def legacy_config(cfg_json):
    """The same config in the spelling transformers < 5 wrote."""
    c = dict(cfg_json)
    rp = c.pop("rope_parameters")
    if "full_attention" in rp:  # Gemma 3: one RoPE per layer type
        c["rope_local_base_freq"] = rp["sliding_attention"]["rope_theta"]
        c["sliding_window_pattern"] = 2
        rp = rp["full_attention"]
    c["rope_theta"] = rp["rope_theta"]
    scaling = {k: v for k, v in rp.items() if k != "rope_theta"}
    c["rope_scaling"] = None if scaling.get("rope_type") == "default" else scaling
    c.pop("layer_types", None)
    c["torch_dtype"] = c.pop("dtype", "bfloat16")
    return c


def main(out_dir):
    versions = {"transformers": transformers.__version__, "torch": torch.__version__}
    g = torch.Generator().manual_seed(1234)
    ids = [int(x) for x in torch.randint(3, VOCAB, (T,), generator=g)]
    logits = {}
    for i, (name, (cfg, what)) in enumerate(CASES.items()):
        cfg._attn_implementation = "eager"
        torch.manual_seed(100 + i)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
        randomize(model, 100 + i)
        lg = logits_of(model, ids)
        d = os.path.join(out_dir, name)
        shutil.rmtree(d, ignore_errors=True)
        model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
        for extra in ("generation_config.json",):
            if os.path.exists(os.path.join(d, extra)):
                os.remove(os.path.join(d, extra))
        # reload what was written: the files, not the Python object, are the reference
        back = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                    attn_implementation="eager").eval()
        lb = logits_of(back, ids)
        assert torch.equal(lg, lb), f"{name}: reloaded model differs"
        logits[name] = lg
        write_case(d, name, what, ids, lg, versions, None)
        print(f"{name}: logit range [{lg.min():.3f}, {lg.max():.3f}]")
    for name, (src, what) in LEGACY.items():
        d = os.path.join(out_dir, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        with open(os.path.join(out_dir, src, "config.json")) as f:
            c = legacy_config(json.load(f))
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f, indent=2, sort_keys=True)
            f.write("\n")
        # transformers must read the legacy spelling as the same model
        tmp = d + ".check"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(os.path.join(out_dir, src), tmp)
        shutil.copy(os.path.join(d, "config.json"), os.path.join(tmp, "config.json"))
        back = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32,
                                                    attn_implementation="eager").eval()
        lb = logits_of(back, ids)
        shutil.rmtree(tmp)
        assert torch.equal(lb, logits[src]), f"{name}: transformers reads it differently"
        write_case(d, name, what, ids, lb, versions, src)
        print(f"{name}: same logits as {src}")


def write_case(d, name, what, ids, lg, versions, weights_from):
    with open(os.path.join(d, "logits.f32"), "wb") as f:
        f.write(lg.numpy().astype("<f4").tobytes())
    refs = {"case": name, "covers": what, "ids": ids, "logits_shape": list(lg.shape),
            "generated_by": "tools/gen_model_refs.py", **versions}
    if weights_from:
        refs["weights_from"] = weights_from
    with open(os.path.join(d, "refs.json"), "w") as f:
        json.dump(refs, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gen_model_refs.py OUT_DIR")
    main(sys.argv[1])
