#!/usr/bin/env python3
"""Write reference token ids for lathe's tokenizer tests (tests/data/tokenizer/*.refs).

Source of truth: llama.cpp's own tokenizer, through the PyPI package llama-cpp-python 0.3.36
(`pip install llama-cpp-python==0.3.36`, which builds its vendored llama.cpp from source).
Each case is tokenized with
    Llama(model_path=GGUF, vocab_only=True).tokenize(text_bytes, add_bos=False, special=SPECIAL)
so the ids come from llama.cpp's llm_tokenizer_spm / llm_tokenizer_bpe, not from lathe.

Inputs are byte ranges of the shared fixture files (never copied into the repository: only the
file, offset and length are stored) plus small hand-written files under tests/data/tokenizer/.
Slices are snapped to UTF-8 character boundaries here, and the snapped offsets are stored.

Output format, one case per line, tab-separated:
    name  source  offset  length  special  id id id ...
source is "fixtures/<path under LATHE_FIXTURES>" or "repo/<path under the repository root>".
Lines starting with '#' are comments.

Usage (from the repository root):
    LATHE_FIXTURES=../shared/fixtures LATHE_SMOLLM2_GGUF=/path/SmolLM2-135M-Instruct.Q4_1.gguf \\
        python3 tools/gen_tokenizer_refs.py
"""
import os
import sys

SOURCE_PACKAGE = "llama-cpp-python"
SOURCE_VERSION = "0.3.36"

FIXTURES = os.environ.get("LATHE_FIXTURES", "../shared/fixtures")
SMOLLM2 = os.environ.get(
    "LATHE_SMOLLM2_GGUF",
    os.path.expanduser("~/.cache/lathe/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
OUT_DIR = "tests/data/tokenizer"

# (name, source, offset, length, special): fixture slices of varied real text.
SLICES = [
    ("shakespeare_head", "fixtures/data/tinyshakespeare.txt", 0, 4000, 0),
    ("shakespeare_mid", "fixtures/data/tinyshakespeare.txt", 612345, 3000, 0),
    ("c4_web", "fixtures/data/c4_demo.jsonl", 10000, 4000, 0),
    ("gsm8k_math", "fixtures/data/gsm8k_train.jsonl", 50000, 3000, 0),
    ("tldr_commands", "fixtures/data/tldr_alpaca.jsonl", 100000, 3000, 0),
    ("glaive_toolcall", "fixtures/data/glaive_toolcall_en_demo.json", 20000, 3000, 0),
    ("mixed_handwritten", "repo/tests/data/tokenizer/mixed.txt", 0, -1, 0),
    ("specials_off", "repo/tests/data/tokenizer/specials.txt", 0, -1, 0),
    ("specials_on", "repo/tests/data/tokenizer/specials.txt", 0, -1, 1),
]
MODELS = [
    # (refs file, gguf path, extra cases for this model)
    ("stories260K.refs", os.path.join(FIXTURES, "stories260K/stories260K.gguf"),
     [("alpaca_2turn", "repo/tests/data/tokenizer/alpaca_2turn.txt", 0, -1, 1)]),
    ("smollm2.refs", SMOLLM2,
     [("chatml_3turn", "repo/tests/data/tokenizer/chatml_3turn.txt", 0, -1, 1)]),
]


def resolve(source):
    kind, path = source.split("/", 1)
    return os.path.join(FIXTURES, path) if kind == "fixtures" else path


def snap(data, off, length):
    """Move off forward and the end backward onto UTF-8 character starts."""
    if length < 0:
        return 0, len(data)
    end = min(off + length, len(data))
    while off < end and (data[off] & 0xC0) == 0x80:
        off += 1
    while end < len(data) and end > off and (data[end] & 0xC0) == 0x80:
        end -= 1
    return off, end - off


def main():
    try:
        import llama_cpp
        from llama_cpp import Llama
    except ImportError:
        sys.exit(f"needs {SOURCE_PACKAGE}=={SOURCE_VERSION}: pip install "
                 f"{SOURCE_PACKAGE}=={SOURCE_VERSION}")
    if llama_cpp.__version__ != SOURCE_VERSION:
        print(f"warning: {SOURCE_PACKAGE} {llama_cpp.__version__} installed, refs were made "
              f"with {SOURCE_VERSION}", file=sys.stderr)
    for refs, gguf, extra in MODELS:
        if not os.path.exists(gguf):
            sys.exit(f"{gguf}: not found (set LATHE_FIXTURES / LATHE_SMOLLM2_GGUF)")
        tok = Llama(model_path=gguf, vocab_only=True, verbose=False)
        lines = [
            f"# reference token ids for {os.path.basename(gguf)}",
            f"# made by tools/gen_tokenizer_refs.py with {SOURCE_PACKAGE} "
            f"{llama_cpp.__version__} (llama.cpp tokenizer), tokenize(add_bos=False, special=S)",
            "# name\tsource\toffset\tlength\tspecial\tids...",
        ]
        for name, source, off, length, special in SLICES + extra:
            data = open(resolve(source), "rb").read()
            off, length = snap(data, off, length)
            text = data[off:off + length]
            ids = tok.tokenize(text, add_bos=False, special=bool(special))
            lines.append("\t".join([name, source, str(off), str(length), str(special),
                                    " ".join(map(str, ids))]))
            print(f"{refs}: {name}: {length} bytes -> {len(ids)} ids", file=sys.stderr)
        with open(os.path.join(OUT_DIR, refs), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
