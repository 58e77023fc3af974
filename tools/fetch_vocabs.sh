#!/usr/bin/env bash
# Print the directory of llama.cpp's tokenizer test vocabularies, fetching them into the cache
# on first use: $LATHE_CACHE/vocabs (default ~/.cache/lathe/vocabs).
#
# Source: the PyPI source distribution llama-cpp-python==0.3.36 (checked by SHA-256), which
# vendors llama.cpp with its models/ggml-vocab-<name>.gguf test vocabularies (tokenizer keys
# only, no weights) and, beside each, <name>.gguf.inp (inputs, each followed by a line
# "__ggml_vocab_test__") and <name>.gguf.out (the ids Hugging Face `tokenizers` gives each
# input, one line per input, written by llama.cpp's convert_hf_to_gguf_update.py; llama.cpp's
# tests/test-tokenizer-0.cpp asserts its tokenizer reproduces them). Only PyPI is contacted, and
# only the vocabularies whose kind lathe reads (or refuses by name, gemma-4) are extracted.
# Nothing here is committed: tests/unit/test_vocabs.c reads the cache and skips without it.
# Idempotent: a second run checks the extracted files against the checksums written by the
# first and prints the directory.
set -euo pipefail
CACHE=${LATHE_CACHE:-$HOME/.cache/lathe}
DIR=$CACHE/vocabs
PKG=llama-cpp-python
VER=0.3.36
SDIST=llama_cpp_python-$VER.tar.gz
SHA=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
NAMES="llama-spm phi-3 gpt-2 mpt starcoder refact command-r falcon llama-bpe qwen2 qwen35
       deepseek-llm deepseek-coder gemma-4"
STAMP=$DIR/SHA256SUMS-$VER

if [ -f "$STAMP" ] && (cd "$DIR" && sha256sum --check --status "$(basename "$STAMP")"); then
    echo "$DIR"
    exit 0
fi

mkdir -p "$CACHE/dl" "$DIR"
TARBALL=$CACHE/dl/$SDIST
if [ ! -f "$TARBALL" ] || ! echo "$SHA  $TARBALL" | sha256sum --check --status; then
    rm -f "$TARBALL"
    echo "fetching $PKG==$VER (sdist, ~77 MB, from PyPI) into $CACHE/dl ..." >&2
    python3 -m pip download --quiet --no-deps --no-binary :all: --disable-pip-version-check \
        "$PKG==$VER" -d "$CACHE/dl" >&2
fi
if ! echo "$SHA  $TARBALL" | sha256sum --check --status; then
    echo "error: $TARBALL does not match its SHA-256 ($SHA); delete it and retry" >&2
    exit 3
fi

python3 - "$TARBALL" "$DIR" "llama_cpp_python-$VER/vendor/llama.cpp/models" $NAMES <<'PY'
import os, sys, tarfile
tarball, out, prefix, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
want = {f"{prefix}/ggml-vocab-{n}.gguf{ext}" for n in names for ext in ("", ".inp", ".out")}
found = set()
with tarfile.open(tarball, "r:gz") as tar:
    for m in tar:
        if m.name not in want or not m.isfile():
            continue
        dst = os.path.join(out, os.path.basename(m.name))
        with tar.extractfile(m) as src, open(dst + ".part", "wb") as f:
            f.write(src.read())
        os.replace(dst + ".part", dst)
        found.add(m.name)
missing = sorted(want - found)
if missing:
    sys.exit("error: the sdist lacks " + ", ".join(os.path.basename(p) for p in missing))
PY

(cd "$DIR" && sha256sum ggml-vocab-* > "$(basename "$STAMP").part" &&
    mv "$(basename "$STAMP").part" "$(basename "$STAMP")")
rm -f "$TARBALL" # 77 MB; the stamp keeps later runs from needing it
echo "$DIR"
