#!/usr/bin/env bash
# make bench: CPU training benchmark (SmolLM2-135M, r=16 on all seven projections, seq_len 512,
# micro-batch 4), once with LoRA on the F32 base (the GGUF's Q4_1 dequantized) and once with
# QLoRA (the same base quantized on load to NF4 + double quantization), each in its own process
# so that peak RSS is per mode, then LoRA again with gradient checkpointing (activation arena and
# tokens/s with each block recomputed in backward). Prints JSON lines; never fails on time.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$(tools/fetch_model.sh)
BIN="${BENCH_BIN:-build/bench_train}"
STEPS="${BENCH_STEPS:-3}"
"$BIN" "$MODEL" --steps "$STEPS" --batch 4 --seq 512 --rank 16 --quant none
"$BIN" "$MODEL" --steps "$STEPS" --batch 4 --seq 512 --rank 16 --quant nf4 --double-quant
"$BIN" "$MODEL" --steps "$STEPS" --batch 4 --seq 512 --rank 16 --quant none --checkpointing
# quantization error of each base layout (NF4, NF4 + DQ, int4 absmax, Q8_0) on Gaussian weights
# and on SmolLM2's own weights
"$(dirname "$BIN")/bench_quant" "$MODEL"
