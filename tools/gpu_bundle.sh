#!/usr/bin/env bash
# gpu_bundle.sh OUT MULTICALL_BINARY NAME... — assemble the GPU bundle (run by `make gpu-bundle`,
# which builds MULTICALL_BINARY first: tools/gpu_bundle_main.c with the programs NAME...).
#
# OUT (<= 64 MiB, DESIGN.md §9) receives:
#   bin/lathe                 the multi-call binary, debug info stripped; bin/NAME -> lathe links
#   needed-libs.txt           the shared CUDA libraries it needs (found on the GPU server by
#                             gpu_env.sh); everything else but glibc is linked in
#   gpu_check.sh gpu_env.sh   the check (run it there: ./gpu_check.sh . OUTDIR) and its locator
#   bench/                    bench/gpu/run.sh and torch_peft_bench.py (the PyTorch + PEFT side)
#   models/stories260K.gguf   from $LATHE_FIXTURES
#   recipes/ci-stories260k.yaml, data/ci/{train,eval}-*.h5 (identity.json tokenized now)
#   ref/cpu_ci_recipe.json    the CPU run of that recipe, measured now with the bundled lathe:
#                             eval losses (the figure gpu_check.sh compares the GPU run against),
#                             plus its metrics.jsonl, `lathe inspect` output and ldd output
#   MANIFEST.json             commit, build host and flags, glibc needed, sizes and sha256 of files
# Fails (exit 1) with a message when a fixture is missing, a binary needs a shared library that
# is neither glibc nor CUDA, the CPU run does not learn, or the bundle exceeds 64 MiB.
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 OUT MULTICALL_BINARY NAME..." >&2; exit 2; }
OUT=$1 MC=$2
shift 2
NAMES=("$@")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=${LATHE_FIXTURES:-$ROOT/../shared/fixtures}
LIMIT_BYTES=$((64 * 1024 * 1024))
# glibc's own libraries: the only shared libraries besides CUDA's a bundled binary may need
GLIBC_SONAMES="libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 ld-linux-x86-64.so.2 linux-vdso.so.1"

die() { echo "gpu_bundle.sh: $*" >&2; exit 1; }

MODEL_SRC=$FIX/stories260K/stories260K.gguf
DATA_SRC=$FIX/data/identity.json
for f in "$MODEL_SRC" "$DATA_SRC"; do
    [ -f "$f" ] || die "fixture $f not found (set LATHE_FIXTURES to the fixtures directory)"
done
[ -x "$MC" ] || die "$MC not built"

rm -rf "$OUT"
mkdir -p "$OUT"/{bin,bench,models,recipes,data/ci,ref}
OUT=$(cd "$OUT" && pwd)

# ---- binaries -----------------------------------------------------------------------------------
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug -o "$OUT/bin/lathe" "$MC"
else
    cp "$MC" "$OUT/bin/lathe"
fi
chmod 755 "$OUT/bin/lathe"
for n in "${NAMES[@]}"; do
    [ "$n" = lathe ] || ln -s lathe "$OUT/bin/$n"
done

: > "$OUT/needed-libs.txt"
for so in $(readelf -d "$OUT/bin/lathe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    case " $GLIBC_SONAMES " in *" $so "*) continue ;; esac
    case $so in
        libcu*|libnccl*|libnv*) echo "$so" >> "$OUT/needed-libs.txt" ;;
        *) die "bin/lathe needs $so, which is neither glibc nor CUDA: link it statically (STATIC_DEPS in the Makefile)" ;;
    esac
done
GLIBC_NEEDED=$(objdump -T "$OUT/bin/lathe" | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -1)

# ---- scripts, model, recipe, data ---------------------------------------------------------------
cp "$ROOT/tools/gpu_check.sh" "$ROOT/tools/gpu_env.sh" "$OUT/"
cp "$ROOT/bench/gpu/run.sh" "$ROOT/bench/gpu/torch_peft_bench.py" "$OUT/bench/"
chmod 755 "$OUT/gpu_check.sh" "$OUT/bench/run.sh"
cp "$MODEL_SRC" "$OUT/models/"
cp "$ROOT/recipes/ci-stories260k.yaml" "$OUT/recipes/"
cat > "$OUT/README.txt" <<'EOF'
lathe GPU bundle (make gpu-bundle). On the GPU server:
    ./gpu_check.sh . OUTDIR
writes OUTDIR/results.jsonl (one JSON object per check) and a log per check, prints one line per
check, exits non-zero when a check fails. The CUDA libraries in needed-libs.txt are found in a
CUDA toolkit or python3's nvidia wheels (set LATHE_CUDA_LIBDIRS=dir1:dir2 to choose).
GPU_CHECK_BUDGET_S (default 470) caps the whole run in seconds.
EOF

# ---- run the bundled lathe here: CPU parts, and the CPU reference figures -------------------------
# shellcheck source=gpu_env.sh
source "$OUT/gpu_env.sh"
lt_gpu_env_find "$OUT/needed-libs.txt" ||
    die "CUDA libraries not found on this machine: $LT_GPU_LIBS_MISSING (searched $LT_GPU_SEARCHED; set LATHE_CUDA_LIBDIRS)"

ldd "$OUT/bin/lathe" > "$OUT/ref/ldd.txt" 2>&1 || die "ldd bin/lathe failed: $(cat "$OUT/ref/ldd.txt")"
if grep -q "not found" "$OUT/ref/ldd.txt"; then die "unresolved libraries: $(grep 'not found' "$OUT/ref/ldd.txt")"; fi
# Transitively, allow glibc, libgcc_s / libstdc++ (what the CUDA libraries themselves load) and
# files inside the CUDA library directories.
while read -r so _ path _; do
    case " $GLIBC_SONAMES libgcc_s.so.1 libstdc++.so.6 " in *" $so "*) continue ;; esac
    case $so in /*) continue ;; esac # the loader line
    ok=
    IFS=: read -ra dirs <<< "$LT_GPU_LIBDIRS"
    for d in "${dirs[@]}"; do [ "${path#"$d"/}" != "$path" ] && ok=1; done
    case $so in libcu*|libnccl*|libnv*) ok=1 ;; esac
    [ -n "$ok" ] || die "bin/lathe loads $so ($path), which is neither glibc nor CUDA"
done < "$OUT/ref/ldd.txt"

"$OUT/bin/lathe" inspect "$OUT/models/stories260K.gguf" > "$OUT/ref/inspect.txt" 2>&1 ||
    die "bundled lathe inspect failed: $(tail -3 "$OUT/ref/inspect.txt")"
"$OUT/bin/lathe" tokenize --model "$OUT/models/stories260K.gguf" --input "$DATA_SRC" \
    --output "$OUT/data/ci" --eval-fraction 0.1 > "$OUT/ref/tokenize.log" 2>&1 ||
    die "bundled lathe tokenize failed: $(tail -3 "$OUT/ref/tokenize.log")"

RUN=$(mktemp -d "${TMPDIR:-/tmp}/lathe-bundle-ref.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
t0=$(date +%s.%N)
"$OUT/bin/lathe" train "$OUT/recipes/ci-stories260k.yaml" \
    --set model.path="$OUT/models/stories260K.gguf" \
    --set "data.train=$OUT/data/ci/train-*.h5" --set "data.eval=$OUT/data/ci/eval-*.h5" \
    --set output.dir="$RUN/run" > "$OUT/ref/cpu_ci_train.log" 2>&1 ||
    die "CPU reference run failed: $(tail -5 "$OUT/ref/cpu_ci_train.log")"
t1=$(date +%s.%N)
cp "$RUN/run/metrics.jsonl" "$OUT/ref/cpu_ci_metrics.jsonl"
python3 - "$OUT/ref/cpu_ci_metrics.jsonl" "$t0" "$t1" "$(uname -srm)" "$(nproc)" \
    > "$OUT/ref/cpu_ci_recipe.json" <<'PY' || die "the CPU reference run did not learn (see ref/cpu_ci_metrics.jsonl)"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ev = [(r["step"], r["eval_loss"]) for r in recs if "eval_loss" in r]
tr = [r for r in recs if "loss" in r]
out = {"recipe": "recipes/ci-stories260k.yaml", "device": "cpu",
       "measured_with": "this bundle's bin/lathe (NATIVE=0), at bundle time",
       "host": sys.argv[4], "cpus": int(sys.argv[5]),
       "eval_steps": [s for s, _ in ev], "eval_losses": [v for _, v in ev],
       "first_eval_loss": ev[0][1], "last_eval_loss": ev[-1][1],
       "last_train_loss": tr[-1]["loss"] if tr else None, "steps": tr[-1]["step"] if tr else None,
       "wall_s": round(float(sys.argv[3]) - float(sys.argv[2]), 2)}
print(json.dumps(out))
sys.exit(0 if ev[-1][1] <= 0.9 * ev[0][1] else 1)
PY

# ---- manifest and size --------------------------------------------------------------------------
COMMIT=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
DIRTY=$([ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && echo true || echo false)
NVCC_VER=$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -1)
python3 - "$OUT" "$COMMIT" "$DIRTY" "$GLIBC_NEEDED" "$NVCC_VER" "${NAMES[*]}" \
    > "$OUT/MANIFEST.json.tmp" <<'PY'
import hashlib, json, os, platform, sys, time
out, commit, dirty, glibc, nvcc, names = sys.argv[1:7]
files = []
for dp, dn, fn in os.walk(out):
    dn.sort()
    for f in sorted(fn):
        p = os.path.join(dp, f)
        rel = os.path.relpath(p, out)
        if rel == "MANIFEST.json.tmp":
            continue
        if os.path.islink(p):
            files.append({"path": rel, "link": os.readlink(p)})
            continue
        h = hashlib.sha256(open(p, "rb").read()).hexdigest()
        files.append({"path": rel, "bytes": os.path.getsize(p), "sha256": h})
print(json.dumps({"what": "lathe gpu-bundle", "commit": commit, "dirty": dirty == "true",
                  "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "build_host": platform.platform(), "nvcc": nvcc,
                  "cuda_targets": "sm_90a SASS + compute_80 PTX", "native": False,
                  "programs": names.split(), "glibc_needed": glibc.replace("GLIBC_", ""),
                  "needed_libs": open(os.path.join(out, "needed-libs.txt")).read().split(),
                  "files": files}, indent=1))
PY
mv "$OUT/MANIFEST.json.tmp" "$OUT/MANIFEST.json"

BYTES=$(du -sb "$OUT" | cut -f1)
[ "$BYTES" -le "$LIMIT_BYTES" ] ||
    die "the bundle is $BYTES bytes, over the 64 MiB limit ($LIMIT_BYTES): $(du -sh "$OUT"/* | sort -h | tail -3 | tr '\n' ' ')"
echo "gpu-bundle: $OUT, $(du -sh "$OUT" | cut -f1) ($BYTES bytes, limit $LIMIT_BYTES); glibc >= ${GLIBC_NEEDED#GLIBC_}; needs $(tr '\n' ' ' < "$OUT/needed-libs.txt")"
echo "gpu-bundle: CPU reference (ci-stories260k): $(cat "$OUT/ref/cpu_ci_recipe.json")"
