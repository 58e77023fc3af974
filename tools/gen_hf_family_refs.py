#!/usr/bin/env python3
"""Hugging Face tokenizer.json files of the model families users move to, and the ids Hugging Face
`tokenizers` gives for them (tests/data/tokenizer/hf_<family>.refs), for lathe's tokenizer.json
reader (the tokenizer_hf/family_* tests of tests/unit/test_tokenizer_hf.c).

No Hub: each tokenizer directory is built by transformers from one of llama.cpp's tokenizer test
vocabularies (ggml-vocab-<family>.gguf, cached by tools/fetch_vocabs.sh in $LATHE_CACHE/vocabs,
default ~/.cache/lathe/vocabs), the way transformers loads a GGUF's tokenizer:
    AutoTokenizer.from_pretrained(VOCABS, gguf_file="ggml-vocab-<family>.gguf")
        .save_pretrained(VOCABS/hf-<family>)
(tokenizer.json, tokenizer_config.json, chat_template.jinja where the GGUF has a template). None
of it is committed; the refs record the SHA-256 of the tokenizer.json they were made from.

--convert (what tools/fetch_hf_vocabs.sh runs in a venv of its own, and CI through it) makes the
directories without torch: transformers' GGUF loading (integrations/gguf) reads the file with a
reader that imports torch for tensors, and AutoTokenizer builds a model config first, which needs
torch for these architectures. So this reads the metadata with the `gguf` package instead
(gguf_metadata below, the same dict transformers' read_gguf_metadata returns) and calls the
tokenizer class AutoTokenizer picks for the file (CLASS column) directly:
    <CLASS>.from_pretrained(VOCABS, gguf_file="ggml-vocab-<family>.gguf")
--cross-check (needs torch installed as well) checks that this gives byte for byte the files
AutoTokenizer.from_pretrained(...) gives, and the same metadata as transformers' own reader.

Where transformers' conversion lacks a part of the family's own tokenizer.json, the PATCH column
sets it, as the model's published tokenizer.json has it:
  - qwen2: normalizer NFC (Qwen2's tokenizer.json has it, and transformers' Qwen2Tokenizer sets
    it when it loads a directory, so that without it `tokenizers` and transformers disagree on
    text not in NFC). Not qwen35: llama.cpp's Qwen3.5 vectors show its tokenizer.json has none
    ("e" + U+0301 stays two tokens);
  - llama-bpe: model.ignore_merges = true (Llama 3's tokenizer.json sets it; the GGUF conversion
    leaves BPE's default, false, so "Việt" comes out in pieces), and Llama 3's post-processor,
    Sequence[ByteLevel(trim_offsets=false), TemplateProcessing("<|begin_of_text|> $A")] (the
    conversion writes one without BOS, so add_special_tokens would add none);
  - deepseek-llm, deepseek-coder: transformers has no split regexes for these pre-tokenizer types
    and leaves GPT-2's ByteLevel regex; DeepSeek's tokenizer.json files split with Split(Regex,
    Isolated) pre-tokenizers, then Digits, then ByteLevel(use_regex=false): the regexes are the
    ones llama.cpp copied from those files (llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM /
    _CODER), the Greek and letterlike characters that Unicode normalization would change spelled
    as \\u escapes.
Each converted tokenizer.json is then checked against llama.cpp's test vectors for its
vocabulary (ggml-vocab-<family>.gguf.inp/.out: the ids `tokenizers` gives with the model's own
tokenizer.json, written by llama.cpp's convert_hf_to_gguf_update.py): every vector must agree,
except for llama-spm, whose directory has transformers' LlamaTokenizer layout (Metaspace with
prepend_scheme "first", as newer Llama-2-style and Mistral tokenizer.json files have), while the
vectors come from Llama 2's legacy layout (a normalizer prepending U+2581 even before a leading
space): there exactly the inputs that start with a space may differ.

Families transformers does not convert (refused): mpt, refact and command-r ("GGUF model with
architecture ... is not supported yet": it needs a model config for the architecture first),
gemma-4 (its config fails validation: num_key_value_heads is a per-layer list). starcoder and
falcon convert, but without their pre-tokenizers (StarCoder's Digits split, Falcon's
punctuation/digit splits), so llama.cpp's vectors disagree and they are not used.

Default mode (no flag): the reference ids, from the cached directories. Each case is tokenized
with tokenizers.Tokenizer.from_file(VOCABS/hf-<family>/tokenizer.json):
    tok.encode_special_tokens = not SPECIAL; tok.encode(text, add_special_tokens=False).ids
and cross-checked with transformers.AutoTokenizer.from_pretrained(VOCABS/hf-<family>)(text,
add_special_tokens=False, split_special_tokens=not SPECIAL).input_ids (the script stops when
they differ, except for the families in AUTO_DIFFERS, where it counts the cases). Cases: the
fixture slices of tools/gen_tokenizer_refs.py, the edge cases of
tests/data/tokenizer/pretok_edge.txt, the family's chat text with special tokens parsed
(SPECIAL = 1, as `lathe tokenize` encodes a rendered conversation), and NFC_CASES: text that
Unicode normalization changes (tests/data/tokenizer/nfc.txt: decomposed letters, marks out of
canonical order, Hangul jamo, singletons, composition exclusions, marks after special tokens),
plain and with special tokens parsed, for every family (Qwen2's NFC normalizer changes its ids;
the others must not normalize). Output format: that of tools/gen_tokenizer_refs.py, plus header
lines "# tokenizer.json sha256 <hex>" and "# add_special_tokens=True prefix|suffix <ids,
comma-separated, or ->": what transformers adds around a text with add_special_tokens=True (BOS,
EOS), for lathe's add_bos; and where the pre-tokenizer is Metaspace (prepend_scheme first or
always), "# decode drops the leading space <case names, or ->": the cases whose text starts with a
space, which such a tokenizer encodes as it encodes the text without it, so that decoding gives
the text without it.

Versions: transformers 5.24.0, tokenizers 0.23.3, gguf 0.19.0 (pinned by
tools/fetch_hf_vocabs.sh). Usage (from the repository root):
    tools/fetch_hf_vocabs.sh             # or, with the packages: gen_hf_family_refs.py --convert
    python3 tools/gen_hf_family_refs.py --cross-check   # optional, with torch installed
    LATHE_FIXTURES=../shared/fixtures python3 tools/gen_hf_family_refs.py
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_tokenizer_refs as base  # noqa: E402  (SLICES, EDGE, resolve, snap, edge_cases)

VERSIONS = {"transformers": "5.24.0", "tokenizers": "0.23.3", "gguf": "0.19.0"}
CACHE = os.environ.get("LATHE_CACHE") or os.path.expanduser("~/.cache/lathe")
VOCABS = os.path.join(CACHE, "vocabs")
OUT_DIR = "tests/data/tokenizer"

# (family = llama.cpp test vocabulary, what it stands for, CLASS AutoTokenizer picks, PATCH,
#  chat text: a file under tests/data/tokenizer/, encoded with special tokens parsed)
FAMILIES = [
    ("qwen2", "Qwen2 / Qwen2.5 (DeepSeek-R1-Distill-Qwen has the same pre-tokenizer)",
     "Qwen2Tokenizer", ("nfc",), "chatml_3turn.txt"),
    ("qwen35", "Qwen3.5", "Qwen2Tokenizer", (), "chatml_3turn.txt"),
    ("llama-bpe", "Llama 3 / 3.1 / 3.2 (and DeepSeek-R1-Distill-Llama)", "TokenizersBackend",
     ("ignore_merges", "llama3_bos"), "chat_llama3.txt"),
    ("deepseek-llm", "DeepSeek LLM", "TokenizersBackend", ("deepseek-llm",), "chat_deepseek.txt"),
    ("deepseek-coder", "DeepSeek Coder", "TokenizersBackend", ("deepseek-coder",),
     "chat_deepseek.txt"),
    ("phi-3", "Phi-3 (SentencePiece BPE, normalizer Prepend + Replace)", "TokenizersBackend", (),
     "chat_phi3.txt"),
    ("llama-spm", "Llama 2 / Mistral SentencePiece BPE, Metaspace(prepend_scheme first) layout",
     "TokenizersBackend", (), "chat_llama2.txt"),
    ("gpt-2", "GPT-2 (ByteLevel with its own regex)", "GPT2Tokenizer", (), "docs_endoftext.txt"),
]

# Families whose directory transformers' AutoTokenizer does not load as the file says: the
# cross-check of the refs only counts the cases where it disagrees with `tokenizers`.
NFC_CASES = [("nfc_text", f"repo/{OUT_DIR}/nfc.txt", 0, -1, 0),
             ("nfc_specials", f"repo/{OUT_DIR}/nfc.txt", 0, -1, 1)]
AUTO_DIFFERS = {
    "qwen35": "AutoTokenizer loads it as Qwen2Tokenizer (the test vocabulary says architecture "
              "qwen2), which rebuilds its pipeline: Qwen2's regex instead of Qwen3.5's, and NFC",
}

DEEPSEEK_CJK = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"
# (Split regexes in order, Digits individual_digits)
DEEPSEEK_SPLITS = {
    "deepseek-llm": ([
        "[\r\n]",
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-"
        "Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1f7dᾀ-ᾴᾶ-ᾼ\u1fbeῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212a-"
        "ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
        "\\s+$",
        DEEPSEEK_CJK,
    ], False),
    "deepseek-coder": (["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", DEEPSEEK_CJK], True),
}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_versions():
    import importlib.metadata as md
    for pkg, want in VERSIONS.items():
        got = md.version(pkg)
        if got != want:
            print(f"warning: {pkg} {got} installed, the refs were made with {want} (the test "
                  "skips when a tokenizer.json comes out different)", file=sys.stderr)


# ---- conversion (--convert) ------------------------------------------------------------------

def gguf_metadata(path, string_arrays=()):
    """transformers' integrations/gguf/reader.py read_gguf_metadata, through the `gguf` package:
    (metadata, tensor names), every key's value, string arrays as their length unless named."""
    from gguf import GGUFReader, GGUFValueType
    reader = GGUFReader(path)
    meta = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):  # the header, not metadata
            continue
        if (field.types[0] == GGUFValueType.ARRAY and field.types[-1] == GGUFValueType.STRING
                and key not in string_arrays):
            meta[key] = len(field.data)
        else:
            meta[key] = field.contents()
    return meta, tuple(t.name for t in reader.tensors)


def use_torchless_reader():
    """Make transformers' GGUF tokenizer loading read metadata with gguf_metadata."""
    name = "transformers.integrations.gguf.reader"
    mod = types.ModuleType(name)
    mod.read_gguf_metadata = gguf_metadata
    sys.modules[name] = mod


def save(tok, patches, out):
    """tok.save_pretrained(out) (atomic), with the PATCH column applied."""
    from tokenizers import Regex, normalizers, pre_tokenizers, processors
    backend = tok.backend_tokenizer
    for kind in patches:
        if kind == "nfc":
            backend.normalizer = normalizers.NFC()
        elif kind == "ignore_merges":
            backend.model.ignore_merges = True
        elif kind == "llama3_bos":
            bos = "<|begin_of_text|>"
            backend.post_processor = processors.Sequence([
                processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
                processors.TemplateProcessing(
                    single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1",
                    special_tokens=[(bos, backend.token_to_id(bos))])])
        elif kind in DEEPSEEK_SPLITS:
            regexes, individual = DEEPSEEK_SPLITS[kind]
            backend.pre_tokenizer = pre_tokenizers.Sequence(
                [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in regexes] +
                [pre_tokenizers.Digits(individual_digits=individual),
                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        else:
            raise ValueError(kind)
    tmp = out + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def check_vectors(family, out):
    """The converted tokenizer.json against llama.cpp's vectors for the vocabulary."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    tok.encode_special_tokens = True  # test-tokenizer-0.cpp: parse_special = false
    gguf = os.path.join(VOCABS, f"ggml-vocab-{family}.gguf")
    with open(gguf + ".inp", encoding="utf-8", newline="") as f:
        inputs = f.read().split("\n__ggml_vocab_test__\n")
    with open(gguf + ".out") as f:
        outputs = f.read().split("\n")
    if inputs and inputs[-1] == "":
        inputs.pop()
    differ = [text for text, ids in zip(inputs, outputs)
              if tok.encode(text, add_special_tokens=False).ids != [int(x) for x in ids.split()]]
    allowed = [t for t in differ if family == "llama-spm" and t.startswith(" ")]
    if len(differ) != len(allowed):
        bad = [t for t in differ if t not in allowed]
        sys.exit(f"{family}: {len(bad)} of llama.cpp's vectors disagree with the converted "
                 f"tokenizer.json, first {bad[0]!r}")
    return len(inputs), len(differ)


def main_convert():
    check_versions()
    use_torchless_reader()
    import transformers
    for family, _, cls, patches, _ in FAMILIES:
        gguf = os.path.join(VOCABS, f"ggml-vocab-{family}.gguf")
        if not os.path.exists(gguf):
            sys.exit(f"{gguf}: not found (run tools/fetch_vocabs.sh, or set LATHE_CACHE)")
        out = os.path.join(VOCABS, f"hf-{family}")
        tok = getattr(transformers, cls).from_pretrained(VOCABS, gguf_file=os.path.basename(gguf))
        save(tok, patches, out)
        n, differ = check_vectors(family, out)
        print(f"hf-{family}: {' + '.join((cls,) + patches)}; llama.cpp vectors: "
              f"{n - differ}/{n} agree; tokenizer.json sha256 "
              f"{sha256(os.path.join(out, 'tokenizer.json'))}", file=sys.stderr)


def main_cross_check():
    """With torch: AutoTokenizer's own route gives the same files, the reader the same dict."""
    from transformers import AutoTokenizer
    from transformers.integrations.gguf.reader import read_gguf_metadata
    keys = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges")
    for family, _, cls, patches, _ in FAMILIES:
        name = f"ggml-vocab-{family}.gguf"
        gguf = os.path.join(VOCABS, name)
        if read_gguf_metadata(gguf, keys) != gguf_metadata(gguf, keys):
            sys.exit(f"{family}: gguf_metadata differs from transformers' read_gguf_metadata")
        tok = AutoTokenizer.from_pretrained(VOCABS, gguf_file=name)
        if type(tok).__name__ != cls:
            sys.exit(f"{family}: AutoTokenizer gives {type(tok).__name__}, FAMILIES says {cls}")
        cached = os.path.join(VOCABS, f"hf-{family}")
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out")
            save(tok, patches, out)
            names = sorted(os.listdir(out))
            if names != sorted(os.listdir(cached)):
                sys.exit(f"{family}: AutoTokenizer writes {names}, --convert "
                         f"{sorted(os.listdir(cached))}")
            for n in names:
                if sha256(os.path.join(out, n)) != sha256(os.path.join(cached, n)):
                    sys.exit(f"{family}: {n} differs between AutoTokenizer and --convert")
        print(f"hf-{family}: identical to AutoTokenizer.from_pretrained(gguf_file={name!r})",
              file=sys.stderr)


# ---- reference ids (default) ----------------------------------------------------------------

def main_refs():
    check_versions()
    import tokenizers
    import transformers
    for family, what, cls, patches, chat in FAMILIES:
        d = os.path.join(VOCABS, f"hf-{family}")
        path = os.path.join(d, "tokenizer.json")
        if not os.path.exists(path):
            sys.exit(f"{path}: not found (run tools/fetch_hf_vocabs.sh)")
        tok = tokenizers.Tokenizer.from_file(path)
        auto = transformers.AutoTokenizer.from_pretrained(d)
        cases = list(base.SLICES) + base.edge_cases(base.EDGE) + [
            ("chat", f"repo/{OUT_DIR}/{chat}", 0, -1, 1)] + NFC_CASES
        lines = [
            f"# reference token ids from Hugging Face tokenizers for hf-{family}/tokenizer.json: "
            f"{what}; made by transformers {VERSIONS['transformers']} from llama.cpp's "
            f"ggml-vocab-{family}.gguf ({' + '.join((cls,) + patches)}; "
            "tools/fetch_hf_vocabs.sh)",
            f"# tokenizer.json sha256 {sha256(path)}",
            f"# made by tools/gen_hf_family_refs.py with tokenizers {tokenizers.__version__} "
            f"(cross-checked with transformers {transformers.__version__} AutoTokenizer), "
            "encode(add_special_tokens=False, encode_special_tokens=not S)",
            "# name\tsource\toffset\tlength\tspecial\tids...",
        ]
        # what add_special_tokens=True adds around the text (BOS / EOS), for lathe's add_bos
        plain = auto("Hi", add_special_tokens=False)["input_ids"]
        full = auto("Hi", add_special_tokens=True)["input_ids"]
        k = next(i for i in range(len(full) + 1) if full[i:i + len(plain)] == plain)
        for side, ids in (("suffix", full[k + len(plain):]), ("prefix", full[:k])):
            lines.insert(2, f"# add_special_tokens=True {side} "
                            f"{','.join(map(str, ids)) if ids else '-'}")
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        pre = spec.get("pre_tokenizer") or {}
        metaspace = pre.get("type") == "Metaspace" and pre.get("prepend_scheme") != "never"
        lossy = []
        nbytes = nids = auto_differ = 0
        for case, source, off, length, special in cases:
            data = open(base.resolve(source), "rb").read()
            off, length = base.snap(data, off, length)
            text = data[off:off + length].decode("utf-8")
            tok.encode_special_tokens = not special
            ids = tok.encode(text, add_special_tokens=False).ids
            ids2 = auto(text, add_special_tokens=False,
                        split_special_tokens=not special)["input_ids"]
            if ids != ids2 and family not in AUTO_DIFFERS:
                sys.exit(f"{family}:{case}: tokenizers and transformers disagree")
            auto_differ += ids != ids2
            lines.append("\t".join([case, source, str(off), str(length), str(special),
                                    " ".join(map(str, ids))]))
            if metaspace and text.startswith(" "):
                lossy.append(case)
            nbytes += length
            nids += len(ids)
        if metaspace:
            lines.insert(4, f"# decode drops the leading space {' '.join(lossy) if lossy else '-'}")
        if family in AUTO_DIFFERS:
            lines.insert(4, f"# transformers AutoTokenizer differs on {auto_differ}/{len(cases)} "
                            f"cases: {AUTO_DIFFERS[family]}")
        out = f"hf_{family}.refs"
        with open(os.path.join(OUT_DIR, out), "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"{out}: {len(cases)} cases, {nbytes} bytes -> {nids} ids", file=sys.stderr)
        if family in AUTO_DIFFERS:
            print(f"  transformers AutoTokenizer differs on {auto_differ}/{len(cases)} cases: "
                  f"{AUTO_DIFFERS[family]}", file=sys.stderr)


def main():
    if sys.argv[1:] == ["--convert"]:
        return main_convert()
    if sys.argv[1:] == ["--cross-check"]:
        return main_cross_check()
    if sys.argv[1:]:
        sys.exit(__doc__)
    main_refs()


if __name__ == "__main__":
    main()
