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

Second mode, --hf DIR: reference ids from Hugging Face `tokenizers` for the tokenizer.json files
lathe writes (lt_tokenizer_write_hf), into tests/data/tokenizer/<model>.hf.refs. DIR holds
stories260K/ and smollm2/ as written by the test that exports them:
    LATHE_TOKENIZER_EXPORT=/tmp/lathe_hf LATHE_FIXTURES=../shared/fixtures \\
        build/lathe_tests --filter 'tokenizer_hf/export_for_reference'
    python3 tools/gen_tokenizer_refs.py --hf /tmp/lathe_hf
Each case is tokenized with tokenizers.Tokenizer.from_file(DIR/MODEL/tokenizer.json):
    tok.encode_special_tokens = not SPECIAL; tok.encode(text, add_special_tokens=False).ids
and, as a cross-check that transformers loads the directory the same way,
    transformers.AutoTokenizer.from_pretrained(DIR/MODEL)(text, add_special_tokens=False,
        split_special_tokens=not SPECIAL).input_ids
must agree (the script stops otherwise). Packages: tokenizers 0.23.3, transformers 5.23.0
(`pip install tokenizers==0.23.3 transformers==5.23.0`, CPU only, no torch needed).

Third mode, --pre: reference ids for the pre-tokenizer types llama.cpp ships no test vocabulary
for (tokenizer.ggml.pre = deepseek-v3, tekken, default). llama.cpp tokenizes with each of
llama.cpp's byte-level test vocabularies in PRE_VOCABS, its pre type overridden:
    Llama(model_path=VOCAB, vocab_only=True, kv_overrides={"tokenizer.ggml.pre": PRE})
        .tokenize(text_bytes, add_bos=False, special=False)
The vocabularies are the ggml-vocab-*.gguf files tools/fetch_vocabs.sh caches in
$LATHE_CACHE/vocabs (default ~/.cache/lathe/vocabs). The inputs are the fixture slices above
(except specials_on) and the cases of tests/data/tokenizer/pretok_edge.txt (see its header), one
per "@@ name" line. The override is checked to take effect: with each vocabulary, some cases must
give other ids than the file's own pre type (printed: "N/M cases differ from <pre>"), or the
script stops. Output: tests/data/tokenizer/pre_<vocab>_<pre>.refs, read by the vocabs/pre_*
tests of tests/unit/test_vocabs.c:
    LATHE_FIXTURES=../shared/fixtures python3 tools/gen_tokenizer_refs.py --pre

Fourth mode, --gemma: reference ids for Gemma 3 270M (SentencePiece vocabulary in GGUF:
tokenizer.ggml.model "llama", 262,144 tokens, no dummy-prefix space, byte fallback, control and
user-defined tokens such as <start_of_turn>), the Q4_K_M GGUF that tools/fetch_gemma.sh caches
($LATHE_GEMMA3_GGUF, default ~/.cache/lathe/models/gemma-3-270m-q4_k_m.gguf). Tokenized as in the
first mode,
    Llama(model_path=GGUF, vocab_only=True).tokenize(text_bytes, add_bos=False, special=SPECIAL)
over the fixture slices, the cases of pretok_edge.txt and a Gemma chat transcript
(tests/data/tokenizer/gemma_3turn.txt) with special off and on. Output:
tests/data/tokenizer/gemma3_270m.refs, read by tokenizer/gemma3_matches_llama_cpp:
    tools/fetch_gemma.sh && LATHE_FIXTURES=../shared/fixtures \\
        python3 tools/gen_tokenizer_refs.py --gemma
"""
import os
import re
import sys

SOURCE_PACKAGE = "llama-cpp-python"
SOURCE_VERSION = "0.3.36"
HF_VERSIONS = {"tokenizers": "0.23.3", "transformers": "5.23.0"}

FIXTURES = os.environ.get("LATHE_FIXTURES", "../shared/fixtures")
SMOLLM2 = os.environ.get(
    "LATHE_SMOLLM2_GGUF",
    os.path.expanduser("~/.cache/lathe/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
OUT_DIR = "tests/data/tokenizer"

CACHE = os.environ.get("LATHE_CACHE") or os.path.expanduser("~/.cache/lathe")
# --pre: llama.cpp test vocabularies (byte-level BPE) x pre types to override them with
PRE_VOCABS = ["qwen2", "llama-bpe"]
PRE_TYPES = ["deepseek-v3", "tekken", "default"]
EDGE = "repo/tests/data/tokenizer/pretok_edge.txt"
GEMMA3 = os.environ.get(
    "LATHE_GEMMA3_GGUF", os.path.join(CACHE, "models", "gemma-3-270m-q4_k_m.gguf"))
GEMMA_CHAT = "repo/tests/data/tokenizer/gemma_3turn.txt"

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


def main_hf(export_dir):
    try:
        import tokenizers
        import transformers
    except ImportError:
        sys.exit("needs " + " ".join(f"{k}=={v}" for k, v in HF_VERSIONS.items()))
    got = {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__}
    for k, v in HF_VERSIONS.items():
        if got[k] != v:
            print(f"warning: {k} {got[k]} installed, refs were made with {v}", file=sys.stderr)
    for refs, gguf, extra in MODELS:
        name = "stories260K" if refs.startswith("stories") else "smollm2"
        d = os.path.join(export_dir, name)
        tok = tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        auto = transformers.AutoTokenizer.from_pretrained(d)
        lines = [
            f"# reference token ids from Hugging Face tokenizers for the tokenizer.json lathe writes "
            f"from {os.path.basename(gguf)}",
            f"# made by tools/gen_tokenizer_refs.py --hf with tokenizers {got['tokenizers']} "
            f"(cross-checked with transformers {got['transformers']} AutoTokenizer), "
            "encode(add_special_tokens=False, encode_special_tokens=not S)",
            "# name\tsource\toffset\tlength\tspecial\tids...",
        ]
        for case, source, off, length, special in SLICES + extra:
            data = open(resolve(source), "rb").read()
            off, length = snap(data, off, length)
            text = data[off:off + length].decode("utf-8")
            tok.encode_special_tokens = not special
            ids = tok.encode(text, add_special_tokens=False).ids
            ids2 = auto(text, add_special_tokens=False,
                        split_special_tokens=not special)["input_ids"]
            if ids != ids2:
                sys.exit(f"{name}:{case}: tokenizers and transformers disagree")
            lines.append("\t".join([case, source, str(off), str(length), str(special),
                                    " ".join(map(str, ids))]))
            print(f"{refs}: {case}: {length} bytes -> {len(ids)} ids", file=sys.stderr)
        out = refs.replace(".refs", ".hf.refs")
        with open(os.path.join(OUT_DIR, out), "w") as f:
            f.write("\n".join(lines) + "\n")


def edge_cases(source):
    """(name, source, offset, length, 0) for each case of the edge-case file: the text after a
    line "@@ name" up to the newline before the next such line (or the end of the file, less
    its final newline)."""
    data = open(resolve(source), "rb").read()
    heads = [m.start() for m in re.finditer(rb"(?m)^@@ ", data)]
    out = []
    for i, pos in enumerate(heads):
        eol = data.index(b"\n", pos)
        end = heads[i + 1] - 1 if i + 1 < len(heads) else len(data) - data.endswith(b"\n")
        out.append((f"edge_{data[pos + 3:eol].decode()}", source, eol + 1, end - eol - 1, 0))
    return out


def main_pre():
    import llama_cpp
    from llama_cpp import Llama
    if llama_cpp.__version__ != SOURCE_VERSION:
        print(f"warning: {SOURCE_PACKAGE} {llama_cpp.__version__} installed, refs were made "
              f"with {SOURCE_VERSION}", file=sys.stderr)
    cases = [c for c in SLICES if c[4] == 0] + edge_cases(EDGE)
    texts = []
    for name, source, off, length, special in cases:
        data = open(resolve(source), "rb").read()
        off, length = snap(data, off, length)
        texts.append((name, source, off, length, data[off:off + length]))
    for vocab in PRE_VOCABS:
        gguf = os.path.join(CACHE, "vocabs", f"ggml-vocab-{vocab}.gguf")
        if not os.path.exists(gguf):
            sys.exit(f"{gguf}: not found (run tools/fetch_vocabs.sh, or set LATHE_CACHE)")
        own = Llama(model_path=gguf, vocab_only=True, verbose=False)
        own_ids = [own.tokenize(t[4], add_bos=False, special=False) for t in texts]
        own_pre = own.metadata.get("tokenizer.ggml.pre", "default")
        del own
        for pre in PRE_TYPES:
            tok = Llama(model_path=gguf, vocab_only=True, verbose=False,
                        kv_overrides={"tokenizer.ggml.pre": pre})
            lines = [
                f"# reference token ids for ggml-vocab-{vocab}.gguf (llama.cpp's test vocabulary, "
                f"tools/fetch_vocabs.sh) with tokenizer.ggml.pre = \"{pre}\" instead of "
                f"\"{own_pre}\"",
                f"# made by tools/gen_tokenizer_refs.py --pre with {SOURCE_PACKAGE} "
                f"{llama_cpp.__version__} (llama.cpp tokenizer), "
                f"kv_overrides={{\"tokenizer.ggml.pre\": \"{pre}\"}}, "
                "tokenize(add_bos=False, special=False)",
                "# name\tsource\toffset\tlength\tspecial\tids...",
            ]
            differ = nbytes = 0
            for (name, source, off, length, text), base in zip(texts, own_ids):
                ids = tok.tokenize(text, add_bos=False, special=False)
                differ += ids != base
                nbytes += length
                lines.append("\t".join([name, source, str(off), str(length), "0",
                                        " ".join(map(str, ids))]))
            if differ == 0:
                sys.exit(f"{vocab}/{pre}: every case gives the ids of pre {own_pre}: the "
                         "override did not take effect")
            out = f"pre_{vocab}_{pre}.refs"
            with open(os.path.join(OUT_DIR, out), "w") as f:
                f.write("\n".join(lines) + "\n")
            print(f"{out}: {len(texts)} cases, {nbytes} bytes, {differ}/{len(texts)} cases "
                  f"differ from {own_pre}", file=sys.stderr)
            del tok


def main_gemma():
    import llama_cpp
    from llama_cpp import Llama
    if llama_cpp.__version__ != SOURCE_VERSION:
        print(f"warning: {SOURCE_PACKAGE} {llama_cpp.__version__} installed, refs were made "
              f"with {SOURCE_VERSION}", file=sys.stderr)
    if not os.path.exists(GEMMA3):
        sys.exit(f"{GEMMA3}: not found (run tools/fetch_gemma.sh, or set LATHE_GEMMA3_GGUF)")
    cases = SLICES + edge_cases(EDGE) + [("gemma_chat_off", GEMMA_CHAT, 0, -1, 0),
                                         ("gemma_chat_on", GEMMA_CHAT, 0, -1, 1)]
    tok = Llama(model_path=GEMMA3, vocab_only=True, verbose=False)
    if tok.n_vocab() != 262144:
        sys.exit(f"{GEMMA3}: {tok.n_vocab()} tokens, expected Gemma 3's 262144")
    lines = [
        f"# reference token ids for {os.path.basename(GEMMA3)} (Gemma 3 270M, "
        "tools/fetch_gemma.sh)",
        f"# made by tools/gen_tokenizer_refs.py --gemma with {SOURCE_PACKAGE} "
        f"{llama_cpp.__version__} (llama.cpp tokenizer), tokenize(add_bos=False, special=S)",
        "# name\tsource\toffset\tlength\tspecial\tids...",
    ]
    nbytes = nids = 0
    for name, source, off, length, special in cases:
        data = open(resolve(source), "rb").read()
        off, length = snap(data, off, length)
        ids = tok.tokenize(data[off:off + length], add_bos=False, special=bool(special))
        lines.append("\t".join([name, source, str(off), str(length), str(special),
                                " ".join(map(str, ids))]))
        nbytes += length
        nids += len(ids)
    out = "gemma3_270m.refs"
    with open(os.path.join(OUT_DIR, out), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {len(cases)} cases, {nbytes} bytes -> {nids} ids", file=sys.stderr)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--gemma":
        return main_gemma()
    if len(sys.argv) == 3 and sys.argv[1] == "--hf":
        return main_hf(sys.argv[2])
    if len(sys.argv) == 2 and sys.argv[1] == "--pre":
        return main_pre()
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
