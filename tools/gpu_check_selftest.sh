#!/usr/bin/env bash
# gpu_check_selftest.sh BUNDLE — part of `make gpu-bundle-check`: tests gpu_check.sh's own logic
# on the branches a machine without a GPU never reaches, so that a mistake in the script does not
# cost a GPU window. It copies the bundle, replaces the GPU-facing pieces with SIMULATED programs
# (nvidia-smi, compute-sanitizer, test_cuda_ops, test_cuda_step, bench_gpu, the torch baseline;
# lathe's train.device=cuda dropped so that the run happens on the CPU), runs gpu_check.sh against
# them and asserts the statuses it must report: all pass (the CI-recipe check against the CPU
# reference included); an op failure, a crash and memcheck errors fail with exit 1; a failing or
# missing whole-step comparison fails; a benchmark that times bench_gpu's hand-built step instead
# of lt_train_step fails.
# Nothing here is a result about lathe on a GPU: only gpu_check.sh's reading of such results.
set -euo pipefail
SRC=$(cd "$1" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-selftest.XXXXXX")
trap 'rm -rf "$T"' EXIT
B=$T/bundle
cp -a "$SRC" "$B"
mkdir -p "$T/path" "$T/py/torch" "$T/py/transformers" "$T/py/peft"
for m in torch transformers peft; do echo '__version__ = "0-simulated"' > "$T/py/$m/__init__.py"; done

cat > "$T/path/nvidia-smi" <<'EOF'
#!/bin/bash
case "$*" in
    -L) echo "GPU 0: Simulated H200 (UUID: GPU-selftest)" ;;
    *query*) echo "0, Simulated H200, 0.0, 143771 MiB, 9.0" ;;
    *) echo "simulated nvidia-smi" ;;
esac
EOF
cat > "$T/path/compute-sanitizer" <<'EOF'
#!/bin/bash
log=/dev/null
while [ $# -gt 0 ]; do
    case $1 in
        --log-file) log=$2; shift 2 ;;
        --tool|--leak-check|--error-exitcode|--print-limit) shift 2 ;;
        *) break ;;
    esac
done
"$@"; rc=$?
echo "========= ERROR SUMMARY: ${SIM_MEMCHECK_ERRORS:-0} errors" > "$log"
exit $rc
EOF
rm "$B/bin/test_cuda_ops" "$B/bin/test_cuda_step" "$B/bin/bench_gpu"
cat > "$B/bin/test_cuda_step" <<'EOF'
#!/bin/bash
line() { echo "{\"check\":\"cuda_step\",\"case\":\"$1\",\"what\":\"grads\",\"err\":$2,\"tol\":6.0e-02,\"tol_name\":\"TOL_STEP_GRAD\",\"status\":\"$3\"}"; }
line stories260k 1.0e-02 pass
if [ -n "${SIM_STEP_FAIL:-}" ]; then
    line smollm2-135m-random 3.0e-01 fail
    echo '{"check":"cuda_step_summary","status":"fail","checks":2,"failed":1,"device":"Simulated H200"}'
    exit 1
fi
line smollm2-135m-random 2.0e-02 pass
echo '{"check":"cuda_step_summary","status":"pass","checks":2,"failed":0,"device":"Simulated H200"}'
EOF
cat > "$B/bin/test_cuda_ops" <<'EOF'
#!/bin/bash
line() { echo "{\"check\":\"cuda_op\",\"case\":\"$1\",\"dir\":\"forward\",\"err\":$2,\"tol\":2.0e-02,\"tol_name\":\"TOL_BF16_FWD\",\"nonfinite\":0,\"guard_bytes\":0,\"status\":\"$3\"}"; }
line add 1.0e-03 pass
line rmsnorm 4.0e-03 pass
[ -n "${SIM_CRASH:-}" ] && { echo "CUDA error: simulated" >&2; exit 134; }
if [ -n "${SIM_OP_FAIL:-}" ]; then
    line attention_doc 5.0e-01 fail
    echo '{"check":"cuda_ops_summary","status":"fail","checks":3,"failed":1,"device":"Simulated H200"}'
    exit 1
fi
echo '{"check":"cuda_ops_summary","status":"pass","checks":2,"failed":0,"device":"Simulated H200"}'
EOF
cat > "$B/bin/bench_gpu" <<'EOF'
#!/bin/bash
if [ "$1" = rates ]; then
    echo '{"bench":"rates","device":"Simulated H200","mem_total_gib":139.8,"driver_cuda_version":"13.0","runtime_version":"13.0","cublaslt_version":"13.1.0","gemm_bf16_tflops":700.0,"gemm_shape":"8192x8192x8192","d2d_gbps":4000.0,"h2d_gbps":50.0,"d2h_gbps":50.0,"loaded_libs":[]}'
elif [ "$2" = qlora-nf4 ]; then
    echo "{\"bench\":\"lathe-gpu\",\"model\":\"$1\",\"mode\":\"$2\",\"skip\":\"simulated skip\"}"
else
    step=lt_train_step
    [ -n "${SIM_BENCH_HAND:-}" ] && step="hand-built decoder in bench_gpu.c"
    echo "{\"bench\":\"lathe-gpu\",\"step\":\"$step\",\"model\":\"$1\",\"mode\":\"$2\",\"tokens_per_s\":2000.0,\"ms_per_step\":1024.0,\"mfu\":0.4,\"gemm_tflops\":700.0,\"peak_mem_gib\":20.0,\"loss\":11.0}"
fi
EOF
cat > "$B/bench/torch_peft_bench.py" <<'EOF'
import json, sys
m = sys.argv[sys.argv.index("--model") + 1]
print(json.dumps({"bench": "torch-peft", "model": m, "mode": "lora", "tokens_per_s": 1000.0,
                  "ms_per_step": 2048.0, "mfu": 0.2, "gemm_tflops": 700.0, "peak_mem_gib": 30.0}))
EOF
# lathe as on a GPU machine: train.device=cuda dropped, the run happens on the CPU
mv "$B/bin/lathe" "$B/bin/lathe-cpu"
cat > "$B/bin/lathe" <<'EOF'
#!/bin/bash
args=()
while [ $# -gt 0 ]; do
    if [ "$1" = --set ] && [ "${2:-}" = train.device=cuda ]; then shift 2; continue; fi
    args+=("$1"); shift
done
exec "$(dirname "$0")/lathe-cpu" "${args[@]}"
EOF
chmod +x "$T/path/"* "$B/bin/test_cuda_ops" "$B/bin/test_cuda_step" "$B/bin/bench_gpu" "$B/bin/lathe"

FAILS=0
# expect NAME EXIT_WANTED "check=status ..." [VAR=value ...]: run gpu_check.sh and compare
expect() {
    local name=$1 want_rc=$2 want=$3 rc=0 got c
    shift 3
    rm -rf "$T/out"
    env "$@" PATH="$T/path:$PATH" PYTHONPATH="$T/py" BENCH_MODELS=smollm2-135m \
        "$B/gpu_check.sh" "$B" "$T/out" > "$T/log" 2>&1 || rc=$?
    got=$(python3 -c 'import json,sys; print(" ".join("%s=%s" % (r["check"], r["status"]) for r in map(json.loads, open(sys.argv[1]))))' "$T/out/results.jsonl")
    for c in $want; do
        case " $got " in *" $c "*) ;; *) echo "gpu_check_selftest: $name: wanted $c, got: $got" >&2; FAILS=1 ;; esac
    done
    [ "$rc" = "$want_rc" ] || { echo "gpu_check_selftest: $name: exit $rc, wanted $want_rc" >&2; cat "$T/log" >&2; FAILS=1; }
}

expect all-pass 0 "environment=pass cuda_ops=pass cuda_ops_memcheck=pass train_step=pass ci_recipe_cuda=pass benchmark=pass"
expect op-failure 1 "cuda_ops=fail cuda_ops_memcheck=fail" SIM_OP_FAIL=1
expect crash 1 "cuda_ops=fail" SIM_CRASH=1
expect memcheck-errors 1 "cuda_ops=pass cuda_ops_memcheck=fail" SIM_MEMCHECK_ERRORS=3
expect step-failure 1 "train_step=fail ci_recipe_cuda=pass" SIM_STEP_FAIL=1
expect hand-built-benchmark 1 "benchmark=fail benchmark_kernels_step=pass" SIM_BENCH_HAND=1
rm "$B/bin/test_cuda_step"
expect no-step-comparison 1 "train_step=fail ci_recipe_cuda=pass"

[ $FAILS = 0 ] && echo "gpu_check_selftest: gpu_check.sh reads simulated GPU results right (all pass; op failure, crash, memcheck errors, a failing or missing step comparison, a hand-built benchmark step fail)"
exit $FAILS
