#!/usr/bin/env bash
# gpu_check.sh BUNDLE OUTDIR — the whole GPU proof of issue 8 in one command (DESIGN.md §9).
#
# Runs on a locked-down GPU server from a bundle made by `make gpu-bundle` (bash, python3 and the
# NVIDIA driver there; torch/transformers/peft for the benchmark; no network, none of our Debian
# libraries). Writes OUTDIR/results.jsonl, one JSON object per check:
#   {"check": NAME, "status": "pass"|"fail"|"skip", ...figures..., "reason"|"summary": TEXT,
#    "elapsed_s": N}
# and a log per check in OUTDIR; prints one line per check; exits 1 when any check fails, else 0.
# Checks, in order:
#   environment          nvidia-smi, driver / runtime / cuBLASLt versions, the CUDA library files
#                        used and where they were found, measured bf16 GEMM TFLOP/s and copy GB/s
#                        (bin/bench_gpu rates)
#   cuda_ops             every CUDA op forward and backward against the CPU op (bin/test_cuda_ops:
#                        normalized error under named tolerances, NaN never passes, guard bytes)
#   cuda_ops_memcheck    the same under compute-sanitizer --tool memcheck
#   train_step           one whole training step on the GPU against the CPU
#   ci_recipe_cuda       recipes/ci-stories260k.yaml on the device: eval loss falls >= 10% and ends
#                        within 1% of the CPU run's (ref/cpu_ci_recipe.json); the adapter it writes
#                        loads and evaluates on the CPU
#   benchmark            lathe's training step against PyTorch + transformers + PEFT
#   benchmark_kernels_step  bench_gpu's hand-built decoder step (the CUDA ops wired by hand in
#                        bench/gpu/bench_gpu.c, NOT lathe's train step) against the same baseline
# Without a GPU (no nvidia-smi, nvidia-smi failing, or no device visible to the CUDA runtime on a
# machine without nvidia-smi) every GPU check is a "skip" line naming why, and the exit code is 0.
# train_step, ci_recipe_cuda and benchmark need lathe's device training path (issue 8 §1-2); the
# script detects it by asking the bundled lathe whether its recipe accepts a device key and skips
# them, saying so, while it does not.
#
# Environment: GPU_CHECK_BUDGET_S (default 470): seconds for the whole run; each check gets what
# is left, capped. LATHE_CUDA_LIBDIRS: directories to search first for the CUDA libraries.
# BENCH_MODELS (default "smollm2-135m llama3-8b"), BENCH_STEPS (default 10).
set -u -o pipefail

if [ $# -ne 2 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BUNDLE OUTDIR   (BUNDLE: a folder made by make gpu-bundle)" >&2
    exit 2
fi
BUNDLE=$(cd "$1" && pwd)
mkdir -p "$2" || exit 2
OUT=$(cd "$2" && pwd)
LATHE=$BUNDLE/bin/lathe
RECIPE=$BUNDLE/recipes/ci-stories260k.yaml
MODEL=$BUNDLE/models/stories260K.gguf
for f in "$LATHE" "$BUNDLE/bin/test_cuda_ops" "$BUNDLE/bin/bench_gpu" "$BUNDLE/needed-libs.txt" \
         "$BUNDLE/gpu_env.sh" "$RECIPE" "$MODEL" "$BUNDLE/ref/cpu_ci_recipe.json"; do
    [ -e "$f" ] || { echo "gpu_check.sh: $f missing: is $1 a bundle made by make gpu-bundle?" >&2; exit 2; }
done
command -v python3 >/dev/null 2>&1 || { echo "gpu_check.sh: python3 is needed (it reads the JSON lines)" >&2; exit 2; }
# shellcheck source=gpu_env.sh
source "$BUNDLE/gpu_env.sh"

RES=$OUT/results.jsonl
: > "$RES"
BUDGET=${GPU_CHECK_BUDGET_S:-470}
T0=$SECONDS
CHECK_T0=$SECONDS
FAILED=0
NO_DEVICE_PATH="lathe has no device training path yet (issue 8 §1-2)"

# ---- helpers ------------------------------------------------------------------------------------

jstr() { # a JSON string literal
    local s
    s=$(printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037')
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    printf '"%s"' "$s"
}

# emit CHECK STATUS TEXT [FIELDS]: one line to results.jsonl and one to the terminal. FIELDS is a
# JSON fragment ("k": v, ...) of figures. TEXT becomes "reason" (skip, fail) or "summary" (pass).
emit() {
    local check=$1 status=$2 text=$3 fields=${4:-} line
    line="{\"check\":$(jstr "$check"),\"status\":\"$status\""
    [ -n "$fields" ] && line+=",$fields"
    if [ "$status" = pass ]; then line+=",\"summary\":$(jstr "$text")"; else line+=",\"reason\":$(jstr "$text")"; fi
    line+=",\"elapsed_s\":$((SECONDS - CHECK_T0))}"
    echo "$line" >> "$RES"
    printf '%-4s  %-23s %s\n' "$status" "$check" "$text"
    [ "$status" = fail ] && FAILED=1
    CHECK_T0=$SECONDS
}

left() { echo $((BUDGET - (SECONDS - T0))); }
# cap WANT: seconds a check may take: WANT, or what is left of the budget when that is less.
cap() { local l; l=$(left); if [ "$1" -lt "$l" ]; then echo "$1"; else echo "$l"; fi; }

# budget_ok CHECK SECONDS_NEEDED: emits a fail line and returns 1 when fewer seconds are left.
budget_ok() {
    [ "$(left)" -ge "$2" ] && return 0
    emit "$1" fail "not run: the time budget (GPU_CHECK_BUDGET_S=$BUDGET s) is spent"
    return 1
}

# summarize_jsonl FILE RC: reads a JSON-lines program's output (test_cuda_ops protocol: one line
# per comparison with "status", a final "*_summary" line) and prints three lines: the status, a
# one-line text, and a JSON fragment of figures.
summarize_jsonl() {
    python3 - "$1" "$2" <<'PY'
import json, sys
path, rc = sys.argv[1], int(sys.argv[2])
recs, bad = [], 0
for line in open(path, errors="replace"):
    line = line.strip()
    if not line:
        continue
    try:
        recs.append(json.loads(line))
    except ValueError:
        bad += 1
summ = [r for r in recs if str(r.get("check", "")).endswith("_summary")]
cases = [r for r in recs if r not in summ]
failed = [r for r in cases if r.get("status") == "fail"]
passed = [r for r in cases if r.get("status") == "pass"]
skipped = [r for r in cases if r.get("status") == "skip"]
def label(r):
    s = r.get("case", "?")
    if r.get("dir"):
        s += " " + r["dir"]
    if r.get("what"):  # test_cuda_step: loss, grad_norm, grads, grads_worst_tensor
        s += " " + r["what"]
    if "input" in r:
        s += " input %d" % r["input"]
    return s
worst = None
for r in cases:
    if isinstance(r.get("err"), (int, float)) and r.get("tol") and r["err"] >= 0:
        q = r["err"] / r["tol"]
        if worst is None or q > worst[0]:
            worst = (q, label(r), r["err"], r["tol"], r.get("tol_name"))
fields = {"comparisons": len(cases), "passed": len(passed), "failed": len(failed),
          "skipped": len(skipped), "failed_cases": [label(r) for r in failed][:40],
          "exit_code": rc, "unparsed_lines": bad}
if worst:
    fields["worst"] = {"case": worst[1], "err": worst[2], "tol": worst[3], "tol_name": worst[4],
                       "err_over_tol": round(worst[0], 4)}
if not summ:
    last = label(cases[-1]) if cases else "none"
    status, text = "fail", "exited %d before its summary line (last line: %s)" % (rc, last)
elif summ[-1].get("status") == "skip" and not failed:
    status, text = "skip", summ[-1].get("reason", "skipped")
elif rc != 0 or failed or summ[-1].get("status") != "pass" or bad:
    status = "fail"
    text = "%d of %d comparisons failed%s (exit %d)" % (
        len(failed), len(cases), ": " + ", ".join(fields["failed_cases"][:6]) if failed else "", rc)
else:
    status = "pass"
    text = "%d comparisons pass on %s" % (len(passed), summ[-1].get("device", "?"))
    if worst:
        text += "; worst %s err %.3g (tol %s %.3g)" % (worst[1], worst[2], worst[4], worst[3])
if summ:
    fields["device"] = summ[-1].get("device")
print(status)
print(text)
print(json.dumps(fields)[1:-1])
PY
}

# run_capped SECONDS LOG CMD...: runs CMD with a time limit, stdout+stderr to LOG; returns CMD's
# exit status (124: timed out).
run_capped() {
    local t=$1 log=$2
    shift 2
    timeout -k 10 "$t" "$@" > "$log" 2>&1
}

# ---- what is here: GPU, CUDA libraries, the device path ------------------------------------------

GPU_REASON=
if ! command -v nvidia-smi >/dev/null 2>&1; then
    GPU_REASON="no NVIDIA GPU visible: nvidia-smi is not on PATH"
elif ! nvidia-smi -L > "$OUT/nvidia-smi-L.txt" 2>&1; then
    GPU_REASON="no NVIDIA GPU visible: nvidia-smi -L failed: $(head -1 "$OUT/nvidia-smi-L.txt")"
elif ! grep -q '^GPU ' "$OUT/nvidia-smi-L.txt"; then
    GPU_REASON="no NVIDIA GPU visible: nvidia-smi -L lists none"
fi

LIBS_OK=1
lt_gpu_env_find "$BUNDLE/needed-libs.txt" || LIBS_OK=0
LIB_REASON="CUDA libraries not found: $LT_GPU_LIBS_MISSING (searched the CUDA toolkits, python3's nvidia wheels and the loader cache; set LATHE_CUDA_LIBDIRS)"
DRIVER_LIB=$(lt_gpu_env_driver)
SANITIZER=$(lt_gpu_env_sanitizer)

GLIBC_HOST=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
GLIBC_NEEDED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["glibc_needed"])' "$BUNDLE/MANIFEST.json" 2>/dev/null)
GLIBC_OK=1
if [ -n "$GLIBC_HOST" ] && [ -n "$GLIBC_NEEDED" ] &&
   [ "$(printf '%s\n%s\n' "$GLIBC_NEEDED" "$GLIBC_HOST" | sort -V | head -1)" != "$GLIBC_NEEDED" ]; then
    GLIBC_OK=0
fi

# Can the bundled lathe start at all (libraries resolved, glibc new enough)?
LATHE_RUNS=0
"$LATHE" --help > "$OUT/lathe-help.txt" 2>&1 && LATHE_RUNS=1
LATHE_START_ERR=$(head -2 "$OUT/lathe-help.txt" | tr '\n' ' ')

# The device training path: does the bundled lathe's recipe accept a device key? Calibrated with a
# key that surely does not exist, so a changed message cannot pass for "accepted". Sets
# DEVICE_PATH (yes / no / unknown), DEVICE_HOW and DEVICE_RECIPE (the recipe to train with).
DEVICE_PATH=unknown DEVICE_HOW= DEVICE_RECIPE=$RECIPE DEVICE_SET=()
probe_device_path() {
    local p=$OUT/probe o
    rm -rf "$p" && mkdir -p "$p"
    [ "$LATHE_RUNS" = 1 ] || return 0
    o=$("$LATHE" train "$RECIPE" --set model.path="$p/none.gguf" --set output.dir="$p/run0" \
        --set train.lathe_gpu_check_probe=1 2>&1)
    if ! grep -q "unknown key 'train.lathe_gpu_check_probe'" <<< "$o"; then
        DEVICE_HOW="probe inconclusive: an unknown recipe key gave: $(head -1 <<< "$o")"
        return 0
    fi
    o=$("$LATHE" train "$RECIPE" --set model.path="$p/none.gguf" --set output.dir="$p/run1" \
        --set train.device=cuda 2>&1)
    if ! grep -q "unknown key 'train.device'" <<< "$o"; then
        DEVICE_PATH=yes DEVICE_HOW="--set train.device=cuda" DEVICE_SET=(--set train.device=cuda)
        return 0
    fi
    cp "$RECIPE" "$p/device-cuda.yaml" && printf '\ndevice: cuda\n' >> "$p/device-cuda.yaml"
    o=$("$LATHE" train "$p/device-cuda.yaml" --set model.path="$p/none.gguf" --set output.dir="$p/run2" 2>&1)
    if ! grep -q "unknown section 'device'" <<< "$o"; then
        DEVICE_PATH=yes DEVICE_HOW="top-level recipe key device: cuda" DEVICE_RECIPE=$p/device-cuda.yaml
        return 0
    fi
    DEVICE_PATH=no DEVICE_HOW="the recipe accepts neither train.device nor a top-level device key"
}
probe_device_path

# ---- 1. environment -----------------------------------------------------------------------------

CHECK_T0=$SECONDS
# (Python snippets live in functions: a here-document inside $( ) trips older bash parsers.)
env_fields() {
    python3 - "$LT_GPU_LIBS_FOUND" "$LT_GPU_LIBDIRS" "$LT_GPU_LIBS_MISSING" "$DRIVER_LIB" \
        "$SANITIZER" "$GLIBC_HOST" "$GLIBC_NEEDED" "$BUNDLE/MANIFEST.json" "$DEVICE_PATH" "$DEVICE_HOW" <<'PY'
import json, sys
found, dirs, missing, drv, san, gh, gn, manifest, dp, dh = sys.argv[1:11]
libs = {}
for line in found.splitlines():
    if line.strip():
        so, path, origin = line.split("\t")
        libs[so] = {"path": path, "found_in": origin}
try:
    m = json.load(open(manifest))
    bundle = {"commit": m.get("commit"), "dirty": m.get("dirty"), "built": m.get("built")}
except Exception:
    bundle = None
print(json.dumps({"cuda_libs": libs, "lib_dirs_added": [d for d in dirs.split(":") if d],
                  "cuda_libs_missing": missing.split(), "libcuda": drv or None,
                  "compute_sanitizer": san or None, "glibc_host": gh or None,
                  "glibc_needed": gn or None, "bundle": bundle,
                  "lathe_device_path": dp, "lathe_device_path_how": dh})[1:-1])
PY
}
ENV_FIELDS=$(env_fields)
# python side: versions of what the benchmark needs
py_versions() {
    timeout 120 python3 - 2>/dev/null <<'PY'
import json, platform
v = {"python": platform.python_version()}
for m in ("torch", "transformers", "peft"):
    try:
        v[m] = __import__(m).__version__
    except Exception as e:
        v[m] = None
        v[m + "_error"] = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
try:
    import torch
    v["torch_cuda"] = torch.version.cuda
    v["torch_sees_gpu"] = bool(torch.cuda.is_available())
except Exception:
    pass
print(json.dumps(v))
PY
}
PY_VERSIONS=$(py_versions)
[ -n "$PY_VERSIONS" ] || PY_VERSIONS='{"python": null}'
ENV_FIELDS+=",\"python_packages\":$PY_VERSIONS"
TORCH_OK=$(python3 -c 'import json,sys; v=json.loads(sys.argv[1]); print(1 if all(v.get(m) for m in ("torch","transformers","peft")) else 0)' "$PY_VERSIONS")

# The CUDA runtime's view (bench_gpu rates): a device it can use, and the measured rates. Asked
# even when nvidia-smi is missing (a container may lack it and still have a GPU).
DEV_OK=0
DEV_REASON=
RATES=
if [ "$GLIBC_OK" = 0 ]; then
    DEV_REASON="this host's glibc $GLIBC_HOST is older than the $GLIBC_NEEDED the bundle needs: build the bundle on an older distribution"
elif [ "$LIBS_OK" = 0 ]; then
    DEV_REASON=$LIB_REASON
elif [ "$LATHE_RUNS" = 0 ]; then
    DEV_REASON="the bundled lathe does not start: $LATHE_START_ERR"
else
    run_capped "$(cap 120)" "$OUT/rates.json" "$BUNDLE/bin/bench_gpu" rates
    rc=$?
    RATES=$(python3 -c 'import json,sys; print(json.dumps(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])))' "$OUT/rates.json" 2>/dev/null)
    if [ $rc -ne 0 ] || [ -z "$RATES" ]; then
        DEV_REASON="bench_gpu rates exited $rc: $(tail -2 "$OUT/rates.json" | tr '\n' ' ')"
        RATES=
    elif python3 -c 'import json,sys; sys.exit(0 if "skip" in json.loads(sys.argv[1]) else 1)' "$RATES"; then
        DEV_REASON="CUDA runtime: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["skip"])' "$RATES")"
    else
        DEV_OK=1
    fi
fi
[ -n "$RATES" ] && ENV_FIELDS+=",\"rates\":$RATES"
if [ -z "$GPU_REASON" ]; then
    nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
    GPUS=$(nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv,noheader 2>/dev/null)
    ENV_FIELDS+=",\"gpus\":$(jstr "$GPUS"),\"nvidia_smi_log\":\"nvidia-smi.txt\""
fi
if [ "$DEV_OK" = 1 ]; then
    rates_text() {
        python3 - "$RATES" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print("%s; driver CUDA %s, runtime %s, cuBLASLt %s; bf16 GEMM %.0f TFLOP/s, d2d %.0f GB/s, "
      "h2d %.1f GB/s, d2h %.1f GB/s" % (r["device"], r["driver_cuda_version"], r["runtime_version"],
      r["cublaslt_version"], r["gemm_bf16_tflops"], r["d2d_gbps"], r["h2d_gbps"], r["d2h_gbps"]))
PY
    }
    TEXT=$(rates_text)
    [ -n "$GPU_REASON" ] && TEXT+=" (note: $GPU_REASON)"
    emit environment pass "$TEXT" "$ENV_FIELDS"
elif [ -n "$GPU_REASON" ]; then
    # No GPU here: a skip that still records what was found (libraries, glibc, python packages).
    DEV_REASON="$GPU_REASON${DEV_REASON:+ ($DEV_REASON)}"
    emit environment skip "$DEV_REASON" "$ENV_FIELDS"
else
    # nvidia-smi lists a GPU that lathe cannot use: that is what this check exists to catch.
    DEV_REASON="nvidia-smi lists a GPU, but: $DEV_REASON"
    emit environment fail "$DEV_REASON" "$ENV_FIELDS"
fi

# ---- 2. every CUDA op against the CPU op, then under memcheck -----------------------------------

# run_ops CHECK LOGBASE SECONDS CMD...: run a JSON-lines test program (capped) and set EMIT_STATUS,
# EMIT_TEXT, EMIT_FIELDS for its check line.
run_ops() {
    local check=$1 base=$2 t rc st text fields
    t=$(cap "$3")
    shift 3
    timeout -k 10 "$t" "$@" > "$OUT/$base.jsonl" 2> "$OUT/$base.log"
    rc=$?
    { read -r st; read -r text; read -r fields; } < <(summarize_jsonl "$OUT/$base.jsonl" "$rc")
    [ $rc -eq 124 ] && st=fail text="timed out after $t s; $text"
    fields+=",\"log\":\"$base.log\",\"details\":\"$base.jsonl\""
    EMIT_STATUS=$st
    EMIT_TEXT=$text
    EMIT_FIELDS=$fields
}

CHECK_T0=$SECONDS
if [ "$LIBS_OK" = 0 ] || [ "$LATHE_RUNS" = 0 ] || [ "$GLIBC_OK" = 0 ]; then
    emit cuda_ops skip "test_cuda_ops cannot start: $DEV_REASON"
elif budget_ok cuda_ops 20; then
    # Runs without a GPU too: its host checks are real, its device cases say skip.
    run_ops cuda_ops cuda_ops 150 "$BUNDLE/bin/test_cuda_ops"
    if [ "$EMIT_STATUS" = skip ] && [ "$DEV_OK" = 0 ]; then
        # the host checks ran and passed (a failing one makes the status fail); say so
        EMIT_TEXT="$DEV_REASON; $(grep -c '"check":"cuda_host","case":[^,]*,"status":"pass"' "$OUT/cuda_ops.jsonl") host checks of test_cuda_ops pass"
    fi
    if [ "$EMIT_STATUS" = skip ] && [ "$DEV_OK" = 1 ]; then EMIT_STATUS=fail; fi # a device was usable
    emit cuda_ops "$EMIT_STATUS" "$EMIT_TEXT" "$EMIT_FIELDS"
fi

CHECK_T0=$SECONDS
if [ "$DEV_OK" = 0 ]; then
    emit cuda_ops_memcheck skip "${DEV_REASON:-no usable CUDA device}"
elif [ -z "$SANITIZER" ]; then
    emit cuda_ops_memcheck skip "compute-sanitizer not found (searched PATH and the CUDA toolkits: $(lt_gpu_env_toolkits | tr '\n' ' '))"
elif budget_ok cuda_ops_memcheck 60; then
    run_ops cuda_ops_memcheck cuda_ops_memcheck 240 env LATHE_MULTICALL=test_cuda_ops \
        "$SANITIZER" --tool memcheck --leak-check no \
        --error-exitcode 86 --print-limit 50 --log-file "$OUT/memcheck.log" "$BUNDLE/bin/test_cuda_ops"
    ERRS=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' "$OUT/memcheck.log" 2>/dev/null | tail -1)
    EMIT_FIELDS+=",\"sanitizer\":$(jstr "$SANITIZER"),\"memcheck_errors\":${ERRS:-null},\"memcheck_log\":\"memcheck.log\""
    if [ -z "$ERRS" ]; then
        EMIT_STATUS=fail EMIT_TEXT="no ERROR SUMMARY in memcheck.log; $EMIT_TEXT"
    elif [ "$ERRS" != 0 ]; then
        EMIT_STATUS=fail EMIT_TEXT="memcheck found $ERRS errors (memcheck.log); $EMIT_TEXT"
    else
        EMIT_TEXT="memcheck clean; $EMIT_TEXT"
    fi
    emit cuda_ops_memcheck "$EMIT_STATUS" "$EMIT_TEXT" "$EMIT_FIELDS"
fi

# ---- 3. one whole training step, GPU against CPU --------------------------------------------------

# gate CHECK: emits a skip line and returns 1 when the check cannot run here.
gate() {
    local why=
    [ "$DEV_OK" = 1 ] || why=${DEV_REASON:-no usable CUDA device}
    if [ "$DEVICE_PATH" != yes ]; then
        local dp=$NO_DEVICE_PATH
        [ "$DEVICE_PATH" = unknown ] && dp="cannot tell whether lathe has a device training path: ${DEVICE_HOW:-the bundled lathe does not start}"
        why=${why:+$why; also: }$dp
    fi
    [ -z "$why" ] && return 0
    emit "$1" skip "$why" "\"lathe_device_path\":\"$DEVICE_PATH\""
    return 1
}

CHECK_T0=$SECONDS
if gate train_step && budget_ok train_step 30; then
    # The comparison program comes with the device step (issue 8 §1): bin/test_cuda_step, same
    # JSON-lines protocol as test_cuda_ops (stories260K and a random SmolLM2-135M-shaped model).
    if [ ! -e "$BUNDLE/bin/test_cuda_step" ]; then
        emit train_step fail "lathe has a device training path but the bundle has no whole-step comparison (tests/cuda/test_cuda_step.c -> bin/test_cuda_step)"
    else
        run_ops train_step train_step 120 "$BUNDLE/bin/test_cuda_step" "$MODEL"
        emit train_step "$EMIT_STATUS" "$EMIT_TEXT" "$EMIT_FIELDS"
    fi
fi

# ---- 4. the CI recipe on the device -------------------------------------------------------------

# ci_judge METRICS CPU_REF EVAL_LOG EVAL_RC EVAL_FLAGS: status, text and figures of the device run.
ci_judge() {
    python3 - "$@" <<'PY'
import json, sys
metrics, ref_path, eval_log, erc, evdev = sys.argv[1:6]
ev = [json.loads(l)["eval_loss"] for l in open(metrics) if "eval_loss" in l]
ref = json.load(open(ref_path))
cpu_eval = None
for line in open(eval_log, errors="replace"):
    if line.startswith("{") and "eval_loss" in line:
        cpu_eval = json.loads(line)["eval_loss"]
f = {"first_eval_loss": ev[0] if ev else None, "last_eval_loss": ev[-1] if ev else None,
     "cpu_ref_first_eval_loss": ref["first_eval_loss"], "cpu_ref_last_eval_loss": ref["last_eval_loss"],
     "adapter_eval_on_cpu": cpu_eval, "adapter_eval_device_flag": evdev or None,
     "log": "ci_recipe_cuda.log", "metrics": "ci-run/metrics.jsonl"}
why = []
if not ev:
    why.append("no eval_loss in metrics.jsonl")
else:
    f["fall"] = round(1 - ev[-1] / ev[0], 4)
    f["rel_diff_vs_cpu"] = round(abs(ev[-1] - ref["last_eval_loss"]) / ref["last_eval_loss"], 5)
    if ev[-1] > 0.9 * ev[0]:
        why.append("eval loss %.4f -> %.4f fell less than 10%%" % (ev[0], ev[-1]))
    if f["rel_diff_vs_cpu"] > 0.01:
        why.append("last eval loss %.4f is %.2f%% from the CPU run's %.4f (limit 1%%)" % (
            ev[-1], 100 * f["rel_diff_vs_cpu"], ref["last_eval_loss"]))
if int(erc) != 0 or cpu_eval is None:
    why.append("the adapter did not evaluate on the CPU (lathe eval exit %s, ci_recipe_cpu_eval.log)" % erc)
elif ev and abs(cpu_eval - ev[-1]) / ev[-1] > 0.01:
    why.append("the adapter evaluated on the CPU gives %.4f, the device run's last eval %.4f" % (cpu_eval, ev[-1]))
if why:
    print("fail"); print("; ".join(why))
else:
    print("pass")
    print("eval loss %.4f -> %.4f (-%.1f%%), CPU run %.4f (diff %.2f%%); adapter on the CPU %.4f" % (
        ev[0], ev[-1], 100 * f["fall"], ref["last_eval_loss"], 100 * f["rel_diff_vs_cpu"], cpu_eval))
print(json.dumps(f)[1:-1])
PY
}


CHECK_T0=$SECONDS
if gate ci_recipe_cuda && budget_ok ci_recipe_cuda 30; then
    RUN=$OUT/ci-run
    rm -rf "$RUN"
    t=$(cap 150)
    run_capped "$t" "$OUT/ci_recipe_cuda.log" "$LATHE" train "$DEVICE_RECIPE" ${DEVICE_SET[@]+"${DEVICE_SET[@]}"} \
        --set model.path="$MODEL" --set "data.train=$BUNDLE/data/ci/train-*.h5" \
        --set "data.eval=$BUNDLE/data/ci/eval-*.h5" --set output.dir="$RUN"
    rc=$?
    if [ $rc -ne 0 ]; then
        emit ci_recipe_cuda fail "lathe train ($DEVICE_HOW) exited $rc$([ $rc = 124 ] && echo " (timed out after $t s)"): $(tail -2 "$OUT/ci_recipe_cuda.log" | tr '\n' ' ')" "\"log\":\"ci_recipe_cuda.log\""
    else
        # the adapter loads on the CPU: lathe eval with it, on the CPU
        EVAL_DEV=()
        "$LATHE" eval --help 2>&1 | grep -q -- '--device' && EVAL_DEV=(--device cpu)
        run_capped "$(cap 90)" "$OUT/ci_recipe_cpu_eval.log" "$LATHE" eval ${EVAL_DEV[@]+"${EVAL_DEV[@]}"} \
            --model "$MODEL" --adapter "$RUN/adapter" --data "$BUNDLE/data/ci/eval-*.h5" \
            --seq-len 128 --batch 8
        erc=$?
        { read -r st; read -r text; read -r fields; } < <(ci_judge "$RUN/metrics.jsonl" \
            "$BUNDLE/ref/cpu_ci_recipe.json" "$OUT/ci_recipe_cpu_eval.log" "$erc" "${EVAL_DEV[*]-}")
        emit ci_recipe_cuda "${st:-fail}" "${text:-could not read the metrics of the device run}" "${fields:-}"
    fi
fi

# ---- 5. the benchmark against PyTorch + transformers + PEFT -------------------------------------

CHECK_T0=$SECONDS
BENCH_RAN=0
if [ "$DEV_OK" = 1 ] && [ "$(left)" -ge 60 ]; then
    # bench/run.sh runs bench_gpu (LoRA-BF16; QLoRA modes report their own skip while NF4 is not
    # wired on CUDA) and the torch baseline (BF16 LoRA) side by side, one model at a time, capped.
    : > "$OUT/bench.jsonl"
    for model in ${BENCH_MODELS:-smollm2-135m llama3-8b}; do
        want=120
        [ "$model" = llama3-8b ] && want=240
        t=$(cap "$want")
        [ "$t" -ge 30 ] || { echo "{\"bench\":\"gpu_check\",\"model\":\"$model\",\"error\":\"not run: time budget spent\"}" >> "$OUT/bench.jsonl"; continue; }
        BENCH_GPU_BIN=$BUNDLE/bin/bench_gpu MODELS=$model MODES="lora qlora-nf4" \
            STEPS=${BENCH_STEPS:-10} timeout -k 10 "$t" "$BUNDLE/bench/run.sh" \
            >> "$OUT/bench.jsonl" 2>> "$OUT/bench.log"
        rc=$?
        [ $rc -eq 0 ] || echo "{\"bench\":\"gpu_check\",\"model\":\"$model\",\"error\":\"bench/run.sh exited $rc$([ $rc = 124 ] && echo ", timed out after $t s")\"}" >> "$OUT/bench.jsonl"
    done
    BENCH_RAN=1
fi
# Reads bench.jsonl: STEP_KIND is bench_gpu's "step" field ("lt_train_step" once bench_gpu runs
# lathe's step; "hand-built ..." before).
bench_summary() {
    python3 - "$OUT/bench.jsonl" "$TORCH_OK" <<'PY'
import json, sys
recs = []
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if line.startswith("{"):
        try:
            recs.append(json.loads(line))
        except ValueError:
            recs.append({"bench": "unparsed", "line": line[:200]})
ours = [r for r in recs if r.get("bench") == "lathe-gpu"]
theirs = {r.get("model"): r for r in recs if r.get("bench") == "torch-peft"}
errors = [r for r in recs if "error" in r or r.get("bench") == "unparsed"]
runs = []
for o in ours:
    t = theirs.get(o.get("model"), {})
    row = {"model": o.get("model"), "mode": o.get("mode")}
    if "skip" in o:
        row["lathe_skip"] = o["skip"]
    for k in ("tokens_per_s", "ms_per_step", "mfu", "peak_mem_gib", "gemm_tflops", "loss"):
        if k in o:
            row["lathe_" + k] = o[k]
        if k in t:
            row["torch_" + k] = t[k]
    if "skip" in t:
        row["torch_skip"] = t["skip"]
    if "tokens_per_s" in o and "tokens_per_s" in t:
        row["ratio_tokens_per_s"] = round(o["tokens_per_s"] / t["tokens_per_s"], 3)
    runs.append(row)
steps = sorted({o.get("step", "hand-built decoder in bench_gpu.c") for o in ours if "skip" not in o})
measured = [r for r in runs if "lathe_tokens_per_s" in r]
compared = [r for r in measured if "ratio_tokens_per_s" in r]
if errors or (not measured):
    status = "fail"
    text = "; ".join(str(e.get("error", e.get("line", ""))) for e in errors) or "bench_gpu produced no figures"
elif not compared:
    status = "skip" if sys.argv[2] != "1" else "fail"
    text = "bench_gpu measured, but no PyTorch + PEFT figures to compare: " + "; ".join(
        sorted({r.get("torch_skip", "torch baseline missing") for r in measured}))
else:
    status = "pass"
    text = ", ".join("%s %s %.0f tok/s vs torch %.0f (x%.2f, MFU %.0f%%)" % (
        r["model"], r["mode"], r["lathe_tokens_per_s"], r["torch_tokens_per_s"],
        r["ratio_tokens_per_s"], 100 * r.get("lathe_mfu", 0)) for r in compared)
print(status)
print(text)
print(" ".join(steps) if steps else "none")
print(json.dumps({"runs": runs, "details": "bench.jsonl", "log": "bench.log"})[1:-1])
PY
}
if [ "$BENCH_RAN" = 1 ]; then
    { read -r BST; read -r BTEXT; read -r BSTEP; read -r BFIELDS; } < <(bench_summary)
    if [ "$BSTEP" = lt_train_step ] && [ "$DEVICE_PATH" = yes ]; then
        emit benchmark "$BST" "lathe's train step: $BTEXT" "\"step\":\"lt_train_step\",$BFIELDS"
    elif [ "$DEVICE_PATH" = yes ]; then
        emit benchmark fail "lathe has a device training path, but bench_gpu still times its hand-built step (issue 8 §1: it is to run lt_train_step and say \"step\":\"lt_train_step\")" "\"lathe_device_path\":\"yes\""
        emit benchmark_kernels_step "$BST" "bench_gpu's hand-built decoder step (CUDA ops wired by hand, not lathe's train step): $BTEXT" "\"step\":$(jstr "$BSTEP"),$BFIELDS"
    else
        emit benchmark skip "$NO_DEVICE_PATH; bench_gpu times its hand-built step instead (benchmark_kernels_step)" "\"lathe_device_path\":\"$DEVICE_PATH\""
        emit benchmark_kernels_step "$BST" "bench_gpu's hand-built decoder step (CUDA ops wired by hand, not lathe's train step): $BTEXT" "\"step\":$(jstr "$BSTEP"),$BFIELDS"
    fi
else
    why=${DEV_REASON:-no usable CUDA device}
    [ "$DEV_OK" = 1 ] && why="not run: the time budget (GPU_CHECK_BUDGET_S=$BUDGET s) is spent"
    st=skip
    [ "$DEV_OK" = 1 ] && st=fail
    gate_text=$why
    [ "$DEVICE_PATH" = yes ] || gate_text="$why; also: $NO_DEVICE_PATH"
    emit benchmark "$st" "$gate_text" "\"lathe_device_path\":\"$DEVICE_PATH\""
    emit benchmark_kernels_step "$st" "$why"
fi

# ---- verdict ------------------------------------------------------------------------------------

python3 - "$RES" <<'PY' || FAILED=1
import json, sys
bad = 0
counts = {}
for i, line in enumerate(open(sys.argv[1]), 1):
    try:
        r = json.loads(line)
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    except (ValueError, KeyError) as e:
        print("gpu_check.sh: results.jsonl line %d is not a check object: %s" % (i, e))
        bad += 1
print("gpu_check: %s" % ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items())))
sys.exit(1 if bad else 0)
PY
echo "gpu_check: $((SECONDS - T0)) s; results in $RES"
rm -rf "$OUT/probe"
exit $FAILED
