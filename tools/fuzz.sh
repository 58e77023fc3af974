#!/usr/bin/env bash
# make fuzz: build the libFuzzer harnesses (tests/fuzz/fuzz_*.c; clang, ASan + UBSan), cut seed
# corpora from the fixtures (never committed), and run each harness for FUZZ_SECONDS seconds, one
# at a time. A crash, sanitizer report, leak, timeout or OOM fails the run (exit 1) and leaves the
# input in $FUZZ_BUILD/artifacts/; each harness's last line of libFuzzer figures is printed.
# Without clang's libFuzzer it prints one SKIP line and exits 0.
# usage: tools/fuzz.sh FUZZ_BUILD SECONDS      (called by `make fuzz`; MAKE and FUZZ_CC from it)
set -uo pipefail
cd "$(dirname "$0")/.."
FB=${1:?FUZZ_BUILD}
SECS=${2:-20}
CC_F=${FUZZ_CC:-clang}
FIX=${LATHE_FIXTURES:-../shared/fixtures}

probe=$(mktemp -d)
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$probe/p.c"
if ! "$CC_F" -fsanitize=fuzzer,address,undefined -fopenmp "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
    rm -rf "$probe"
    echo "SKIP fuzz: $CC_F cannot build a libFuzzer + ASan + UBSan + OpenMP program (Debian: clang, libclang-rt-dev, libomp-dev)"
    exit 0
fi
rm -rf "$probe"

${MAKE:-make} --no-print-directory FUZZ_BUILD="$FB" fuzz-build >"$FB.build.log" 2>&1 || {
    cat "$FB.build.log"; echo "FAIL fuzz: build failed"; exit 1; }

# ---- seed corpora ----
S="$FB/seeds"
rm -rf "$S"
mkdir -p "$S"/{gguf,safetensors,hf_config,tokenizer_json,recipe,records,jinja,bnb,shard,report,nfc}
G="$FIX/stories260K/stories260K.gguf"
if [ -r "$G" ]; then
    head -c 16384 "$G" > "$S/gguf/stories260K_head.gguf"  # header, metadata, tensor infos
    "$FB/fuzz_seeds" "$S" "$G" > /dev/null 2>&1
    for d in "$S"/tokhf_*; do [ -f "$d/tokenizer.json" ] && cp "$d/tokenizer.json" "$S/tokenizer_json/$(basename "$d").json"; done
    rm -rf "$S"/tokhf_*
else
    echo "note: $G not found; GGUF and tokenizer.json seeds are the crafted ones only"
    "$FB/fuzz_seeds" "$S" /nonexistent > /dev/null 2>&1
fi
for m in tests/data/models/*/; do
    n=$(basename "$m")
    [ -f "$m/config.json" ] && cp "$m/config.json" "$S/hf_config/$n.json"
    [ -f "$m/model.safetensors" ] && head -c 8192 "$m/model.safetensors" > "$S/safetensors/$n"
done
cp recipes/*.yaml "$S/recipe/"
printf -- '--set train.micro_batch_size=8\n--set lora.target_modules=[q_proj, v_proj]\n--set data.train=[a/*.h5]\n--set model.path=m.gguf\n--set output.dir=out\n' > "$S/recipe/sets.txt"
# chat templates: the real ones when `make chat-templates` has cached them, else the fixtures'
for t in "$HOME"/.cache/lathe/chat-templates-*/*.jinja; do [ -r "$t" ] && cp "$t" "$S/jinja/"; done
python3 - "$S/jinja" "$FIX" tests/data/models <<'PY' 2>/dev/null
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for root in sys.argv[2:]:
    for p in pathlib.Path(root).rglob("tokenizer_config.json"):
        t = json.loads(p.read_text()).get("chat_template")
        if isinstance(t, str):
            (out / (p.parent.name + ".jinja")).write_text(t)
PY
# shards: fuzz_shard's first byte; bit 0 starts from a valid shard, bit 1 checks vocab_size
printf '\001' > "$S/shard/valid"
printf '\003' > "$S/shard/valid_expect_vocab"
printf '\001\001\000\005\002\001\001\000\001\000' > "$S/shard/valid_then_tokens"
# report: a run's manifest.json, a NUL, then its metrics.jsonl
printf '{"status": "completed", "started": "2026-12-01T01:30:00Z", "base_model": {"path": "m.gguf", "sha256": "%064d"}, "shards": [{"path": "a.h5"}], "tokenized": [{"role": "train", "inputs": [{"path": "d.jsonl"}], "reused": true}], "gate": {"metric": "eval_loss", "baseline": 2.5, "candidate": 2.25, "passed": true, "baseline_is": "base model"}, "published": {"version": "v1"}, "init_from": {"adapter_sha256": "ab"}, "adapter": {"sha256": "cd"}}\000{"step": 0, "eval_loss": 2.5, "eval_ppl": 12.1}\n{"step": 5, "loss": 2.4, "lr": 0.001, "tokens_per_s": 3000.5, "grad_norm": 1.5}\n{"step": 10, "loss": 2.3, "lr": 0.0005, "tokens_per_s": 3100, "grad_norm": 1.2}\n{"step": 10, "eval_loss": 2.25, "eval_ppl": 9.5}\n' 0 > "$S/report/run"
# nfc: text Unicode normalization changes, and text it leaves
cp tests/data/tokenizer/nfc.txt tests/data/tokenizer/mixed.txt "$S/nfc/"
for f in "$FIX"/data/*.json "$FIX"/data/*.jsonl; do
    [ -r "$f" ] && head -c 4096 "$f" > "$S/records/$(basename "$f")"
done

# ---- runs, one at a time ----
status=0
declare -A LEN=([fuzz_gguf]=65536 [fuzz_safetensors]=16384 [fuzz_hf_config]=8192
                [fuzz_tokenizer_json]=65536 [fuzz_recipe]=8192 [fuzz_records]=8192
        [fuzz_jinja]=8192 [fuzz_bnb]=16384 [fuzz_shard]=8192 [fuzz_report]=16384
        [fuzz_nfc]=4096)
declare -A SEED=([fuzz_gguf]=gguf [fuzz_safetensors]=safetensors [fuzz_hf_config]=hf_config
                 [fuzz_tokenizer_json]=tokenizer_json [fuzz_recipe]=recipe [fuzz_records]=records
         [fuzz_jinja]=jinja [fuzz_bnb]=bnb [fuzz_shard]=shard [fuzz_report]=report
         [fuzz_nfc]=nfc)
for h in fuzz_gguf fuzz_safetensors fuzz_hf_config fuzz_tokenizer_json fuzz_recipe fuzz_records \
         fuzz_jinja fuzz_bnb fuzz_shard fuzz_report fuzz_nfc; do
    [ -x "$FB/$h" ] || continue
    corpus="$FB/corpus/$h"
    mkdir -p "$corpus" "$FB/artifacts"
    log="$FB/$h.log"
    "$FB/$h" -max_total_time="$SECS" -max_len="${LEN[$h]}" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$FB/artifacts/$h-" "$corpus" "$S/${SEED[$h]}" \
        > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "PASS $h: ${SECS}s, ${execs:-?} executions, ${cov:-cov: ?}, ${ft:-ft: ?}, corpus $(ls "$corpus" | wc -l)"
    else
        status=1
        echo "FAIL $h (exit $rc): ${execs:-?} executions; input in $FB/artifacts/, log $log"
        grep -m3 -E 'ERROR|SUMMARY|runtime error|Assertion|deadly signal' "$log" | sed 's/^/    /'
    fi
done
exit $status
