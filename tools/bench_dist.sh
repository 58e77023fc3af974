#!/usr/bin/env bash
# make bench-dist: data-parallel training on CPU ranks over MPI, printed as JSON lines; never
# fails on time. The CI recipe (stories260K) with the same global batch of 16 sequences of 128
# tokens per step, once as 1 rank x grad_accum 2 and once as 2 ranks x grad_accum 1 (mpirun), one
# thread per rank: tokens/s (the global batch over the step time, i.e. the sum over ranks, mean
# of the logged steps) and the gradient all-reduce in ms per step as `lathe train` measured it
# (it includes waiting for the slower rank). Then bench_dist: the all-reduce alone (after a
# barrier) at 1 and 2 ranks for the adapters of stories260K, SmolLM2-135M and Llama-3-8B (r=16,
# seven projections). Needs the fixtures (LATHE_FIXTURES) and mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
LATHE="${LATHE_BIN:-bin/lathe}"
BENCH_DIST="${BENCH_DIST_BIN:-build/bench_dist}"
FIX="${LATHE_FIXTURES:-../shared/fixtures}"
STEPS="${BENCH_STEPS:-30}"
MODEL="$FIX/stories260K/stories260K.gguf"
command -v mpirun > /dev/null || { echo "SKIP bench-dist: mpirun not found (make deps)"; exit 0; }
[ -r "$MODEL" ] || { echo "SKIP bench-dist: $MODEL not found (set LATHE_FIXTURES)"; exit 0; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
WORK=$(mktemp -d /tmp/lathe_bench_dist_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$LATHE" tokenize --model "$MODEL" --input "$FIX/data/identity.json" --output "$WORK/data" \
    --eval-fraction 0.1 > /dev/null 2>&1
COMMON=(--set "model.path=$(realpath "$MODEL")" --set "data.train=$WORK/data/train-*.h5"
        --set "data.eval=$WORK/data/eval-*.h5" --set train.threads=1 --set "train.max_steps=$STEPS"
        --set train.save_every=0 --set train.eval_every=0 --set train.log_every=1
        --set train.micro_batch_size=8)
run() { # ranks accum
    local ranks=$1 accum=$2 out="$WORK/run-$1" launcher=()
    [ "$ranks" -gt 1 ] && launcher=(mpirun --oversubscribe -np "$ranks")
    "${launcher[@]}" "$LATHE" train recipes/ci-stories260k.yaml "${COMMON[@]}" \
        --set "train.grad_accum=$accum" --set "output.dir=$out" > "$out.log" 2>&1
    python3 - "$out" "$ranks" "$accum" <<'PY'
import json, re, sys
run, ranks, accum = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tps = [json.loads(l)["tokens_per_s"] for l in open(run + "/metrics.jsonl") if '"loss"' in l]
tps = tps[1:] if len(tps) > 1 else tps  # the first step warms caches and threads
m = re.search(r"gradient all-reduce: ([0-9.]+) ms", open(run + ".log").read())
print(json.dumps({"bench": "train_dist", "ranks": ranks, "grad_accum": accum,
                  "global_batch_tokens": ranks * accum * 8 * 128, "steps": len(tps) + 1,
                  "tokens_per_s": round(sum(tps) / len(tps), 1),
                  "allreduce_ms_per_step": float(m.group(1)) if m else 0.0}))
PY
}
run 1 2
run 2 1
"$BENCH_DIST"
mpirun --oversubscribe -np 2 "$BENCH_DIST"
