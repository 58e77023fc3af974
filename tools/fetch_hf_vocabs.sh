#!/usr/bin/env bash
# Print the directory holding the Hugging Face tokenizer directories hf-<family>/ (tokenizer.json,
# tokenizer_config.json) that tests/unit/test_tokenizer_hf.c compares with
# tests/data/tokenizer/hf_<family>.refs, making them on first use: $LATHE_CACHE/vocabs (default
# ~/.cache/lathe/vocabs), beside llama.cpp's vocabularies.
#
# Source: no Hub. transformers builds each directory from llama.cpp's test vocabulary
# ggml-vocab-<family>.gguf (tools/fetch_vocabs.sh) with tools/gen_hf_family_refs.py --convert,
# which explains how. That runs in a venv of its own, $LATHE_CACHE/venv-hf-<pins hash>, with the
# versions below from PyPI (no torch: ~300 MB, ~1 min to install). Nothing here is committed; the
# test skips, naming this script, when a tokenizer.json is missing or is not the one its refs
# were made from (their header records its SHA-256).
# Idempotent: when every tokenizer.json already has the SHA-256 its refs name, it only prints the
# directory (no venv, nothing fetched).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${LATHE_CACHE:-$HOME/.cache/lathe}
DIR=$CACHE/vocabs
PINS="transformers==5.24.0 tokenizers==0.23.3 gguf==0.19.0"
REFS=$(ls tests/data/tokenizer/hf_*.refs)

# Each hf_<family>.refs names the SHA-256 of the tokenizer.json it was made from.
up_to_date() {
    local refs family want
    for refs in $REFS; do
        family=$(basename "$refs" .refs)
        family=${family#hf_}
        want=$(sed -n 's/^# tokenizer\.json sha256 \([0-9a-f]\{64\}\)$/\1/p' "$refs")
        [ -n "$want" ] || { echo "error: $refs has no tokenizer.json sha256 line" >&2; exit 3; }
        echo "$want  $DIR/hf-$family/tokenizer.json" | sha256sum --check --status 2>/dev/null ||
            return 1
    done
}

if up_to_date; then
    echo "$DIR"
    exit 0
fi

tools/fetch_vocabs.sh > /dev/null
VENV=$CACHE/venv-hf-$(echo "$PINS" | sha256sum | cut -c1-12)
if [ ! -f "$VENV/installed" ]; then # written last: a venv without it was cut short
    echo "installing $PINS (from PyPI) into $VENV ..." >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS >&2
    echo "$PINS" > "$VENV/installed"
fi
echo "converting llama.cpp's vocabularies with transformers into $DIR/hf-* ..." >&2
"$VENV/bin/python" tools/gen_hf_family_refs.py --convert >&2
if ! up_to_date; then
    echo "error: a converted tokenizer.json differs from the one tests/data/tokenizer/hf_*.refs" \
         "were made from (other package versions than $PINS?)" >&2
    exit 3
fi
echo "$DIR"
