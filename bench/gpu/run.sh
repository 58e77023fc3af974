#!/bin/sh
# bench-gpu: bench_gpu's CUDA training step vs PyTorch + transformers + PEFT on the same shapes, in
# one run on one machine. JSON lines: per model, the torch baseline once, then bench_gpu per mode
# and the ratio. The baseline is BF16 LoRA for every mode (the GPU servers have no bitsandbytes;
# DESIGN.md §9): QLoRA's claim is "faster than PEFT's BF16 LoRA", so that is the comparison.
# Environment: BENCH_GPU_BIN (built by make), STEPS (default 10), BATCH (1), SEQ (2048),
#              MODELS ("smollm2-135m llama3-8b"), MODES ("lora qlora-nf4"),
#              TORCH_MODE (lora; qlora-nf4 needs bitsandbytes).
# Run by `make bench-gpu` and by tools/gpu_check.sh (check benchmark_kernels_step), which caps
# its time.
set -u
BIN=${BENCH_GPU_BIN:-build/bench_gpu}
STEPS=${STEPS:-10}; BATCH=${BATCH:-1}; SEQ=${SEQ:-2048}
MODELS=${MODELS:-"smollm2-135m llama3-8b"}; MODES=${MODES:-"lora qlora-nf4"}
TORCH_MODE=${TORCH_MODE:-lora}
HERE=$(dirname "$0")
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo '{"bench":"gpu","skip":"no NVIDIA GPU visible (nvidia-smi -L failed)"}'
    exit 0
fi
for model in $MODELS; do
    if python3 -c 'import torch, transformers, peft' 2>/dev/null; then
        theirs=$(python3 "$HERE/torch_peft_bench.py" --model "$model" --mode "$TORCH_MODE" \
                 --seq "$SEQ" --batch "$BATCH" --steps "$STEPS" | tail -1)
        [ -n "$theirs" ] || theirs="{\"bench\":\"torch-peft\",\"model\":\"$model\",\"error\":\"torch_peft_bench.py printed nothing (see stderr)\"}"
    else
        theirs="{\"bench\":\"torch-peft\",\"model\":\"$model\",\"skip\":\"python3 cannot import torch, transformers and peft\"}"
    fi
    echo "$theirs"
    for mode in $MODES; do
        ours=$("$BIN" "$model" "$mode" "$SEQ" "$BATCH" "$STEPS" | tail -1)
        [ -n "$ours" ] || ours="{\"bench\":\"lathe-gpu\",\"model\":\"$model\",\"mode\":\"$mode\",\"error\":\"bench_gpu printed nothing (see stderr)\"}"
        echo "$ours"
        python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = (json.loads(x) for x in sys.argv[1:3])
if "tokens_per_s" in a and "tokens_per_s" in b:
    print(json.dumps({"bench": "ratio", "model": a["model"], "mode": a["mode"],
                      "baseline": "torch-peft " + b.get("mode", "?"),
                      "lathe_over_torch_tokens_per_s": round(a["tokens_per_s"] / b["tokens_per_s"], 3)}))
PY
    done
done
exit 0
