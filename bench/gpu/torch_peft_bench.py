#!/usr/bin/env python3
"""PyTorch + transformers + PEFT baseline for bench-gpu: the same shapes as bench_gpu.c (random
weights, no download), LoRA r=16 (alpha 32, dropout 0.05) on all seven projections, SDPA
attention, bf16 (the model is built directly on the GPU), AdamW, grad clip 1.0; QLoRA through
bitsandbytes NF4 with double quant (the random model is saved to a temp dir and reloaded
quantized; bench/gpu/run.sh uses BF16 LoRA as the baseline for every mode unless TORCH_MODE says
otherwise, as the GPU servers have no bitsandbytes). Prints one JSON line with the same
fields as bench_gpu: tokens/s, ms/step (median after 2 warm-up steps), MFU over a bf16 GEMM rate
measured here, peak memory (torch.cuda.max_memory_allocated). Useful-FLOP formula as bench_gpu.c.
"""
import argparse, json, statistics, tempfile, time

SHAPES = {
    "llama3-8b": dict(num_hidden_layers=32, hidden_size=4096, num_attention_heads=32,
                      num_key_value_heads=8, intermediate_size=14336, vocab_size=128256,
                      rope_theta=500000.0),
    "smollm2-135m": dict(num_hidden_layers=30, hidden_size=576, num_attention_heads=9,
                         num_key_value_heads=3, intermediate_size=1536, vocab_size=49152,
                         rope_theta=100000.0),
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def gemm_tflops(torch, n=8192, reps=9):
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    a @ b
    ts = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); a @ b; e1.record(); torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1))
    return 2 * n ** 3 / (statistics.median(ts) * 1e-3) / 1e12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m"); ap.add_argument("--mode", default="lora")
    ap.add_argument("--seq", type=int, default=2048); ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model
    if not torch.cuda.is_available():
        print(json.dumps({"bench": "torch-peft", "skip": "torch sees no CUDA device"})); return
    s = SHAPES[a.model]
    cfg = LlamaConfig(**s, head_dim=s["hidden_size"] // s["num_attention_heads"],
                      max_position_embeddings=max(8192, a.seq), tie_word_embeddings=False,
                      attn_implementation="sdpa", torch_dtype=torch.bfloat16)
    torch.manual_seed(0)
    if a.mode == "lora":
        # built directly on the GPU in bf16: an 8B model built on the CPU in f32 first would take
        # 32 GB of host memory and minutes of random init
        torch.set_default_dtype(torch.bfloat16)
        with torch.device("cuda"):
            model = LlamaForCausalLM(cfg)
        torch.set_default_dtype(torch.float32)
    else:
        from transformers import BitsAndBytesConfig
        from peft import prepare_model_for_kbit_training
        with tempfile.TemporaryDirectory() as d:
            LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(d)
            q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                   bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
            model = LlamaForCausalLM.from_pretrained(d, quantization_config=q, torch_dtype=torch.bfloat16,
                                                     attn_implementation="sdpa", device_map={"": 0})
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
                                             target_modules=TARGETS, task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    N = a.batch * a.seq
    ids = torch.randint(0, s["vocab_size"], (a.batch, a.seq), device="cuda")
    gemm = gemm_tflops(torch)
    torch.cuda.reset_peak_memory_stats()
    ts, loss = [], 0.0
    for it in range(a.steps + 2):
        torch.cuda.synchronize(); t0 = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        loss = out.loss.item()
        torch.cuda.synchronize(); ts.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(ts[2:])
    D, F, V, L = s["hidden_size"], s["intermediate_size"], s["vocab_size"], s["num_hidden_layers"]
    Hq, Hkv = s["num_attention_heads"], s["num_key_value_heads"]; Dh = D // Hq
    ins = [D, D, D, Hq * Dh, D, D, F]; outs = [Hq * Dh, Hkv * Dh, Hkv * Dh, D, F, F, D]
    p_frozen = V * D + L * sum(i * o for i, o in zip(ins, outs))
    n_lora = L * sum(16 * (i + o) for i, o in zip(ins, outs))
    flops = 4 * N * p_frozen + 6 * N * n_lora + 3.5 * L * 2 * a.batch * a.seq ** 2 * Hq * Dh
    print(json.dumps({"bench": "torch-peft", "device": torch.cuda.get_device_name(), "model": a.model,
                      "mode": a.mode, "seq": a.seq, "batch": a.batch, "lora_r": 16,
                      "tokens_per_s": round(N / (med * 1e-3), 1), "ms_per_step": round(med, 2),
                      "mfu": round(flops / (med * 1e-3) / (gemm * 1e12), 4), "gemm_tflops": round(gemm, 1),
                      "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2),
                      "loss": round(loss, 4)}))


if __name__ == "__main__":
    main()
