#!/usr/bin/env bash
# make bench: CPU LoRA training benchmark (SmolLM2-135M, r=16 on all seven projections,
# seq_len 512, micro-batch 4). Prints JSON lines; never fails on time.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$(tools/fetch_model.sh)
"${BENCH_BIN:-build/bench_train}" "$MODEL" --steps "${BENCH_STEPS:-3}" --batch 4 --seq 512 --rank 16
