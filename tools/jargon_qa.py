#!/usr/bin/env python3
"""Turn the Jargon File into question/answer chat data for `make demo`.

Source: the Jargon File 4.4.7 (Eric S. Raymond et al., public domain), as packaged by Debian's
`dict-jargon`: /usr/share/dictd/jargon.dict.dz (dictzip, which any gzip reader can inflate) and
/usr/share/dictd/jargon.index (one line per entry: headword TAB offset TAB length, the two numbers
in dictd's base64 digits A-Z a-z 0-9 + /, most significant first, counting bytes of the
uncompressed text). Format reference: dictd's dictfmt(1) and index.c.

Each entry's text is: the headword line, an optional pronunciation / part-of-speech line
(` /kluhj/, n.`), a blank line, then 4-space-indented paragraphs; `{foo}` marks a cross-reference.
We keep a short cleaned definition (the first 1-3 sentences, or the first 1-3 numbered senses,
at most ~400 characters), skip dictd's `00-database-*` entries and entries whose cleaned
definition is too short, and write OpenAI-style chat JSONL, one object per line:

    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}

Everything is deterministic for a given --seed (SHA-256 of the seed and headword decides the
held-out split, the question phrasings and the output order), so two runs give identical files on
any Python 3. Standard library only.

Usage: tools/jargon_qa.py --out build/jargon/train.jsonl --eval-out build/jargon/eval.jsonl \
           --questions build/jargon/questions.json [--max-entries N] [--seed S]
"""

import argparse
import gzip
import hashlib
import json
import os
import re
import sys

DICT_DIR = "/usr/share/dictd"
DICTD_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
B64_VALUE = {c: i for i, c in enumerate(DICTD_B64)}

MAX_DEF_CHARS = 400     # cleaned definition budget
MAX_UNITS = 3           # sentences (or numbered senses) kept
MIN_DEF_CHARS = 25      # shorter cleaned definitions ("A flamer.") are skipped
EVAL_PER_MILLE = 30     # ~3% of entries held out for evaluation

QUESTION_TEMPLATES = [
    'What does "{h}" mean in hacker jargon?',
    "In the Jargon File, what is {h}?",
    'Define the hacker term "{h}".',
    'What is meant by "{h}" in hacker slang?',
    'Explain the jargon term "{h}".',
]
ANSWER_TEMPLATE = 'In hacker jargon, "{h}" means: {d}'

# Well-known entries for the demo's before/after comparison, in order of preference.
DEMO_HEADWORDS = ["grok", "kluge", "cruft", "foo", "bogus", "hack", "RTFM", "luser", "wizard",
                  "crufty", "hairy", "frob"]

# Part-of-speech labels as they appear in the File ("n.", "vt.", "pl.n.", "n.,adj." ...).
POS = r"(?:n|v|vt|vi|adj|adv|interj|excl|prov|imper|imp|pref|suff|quant|abbrev|obs|pron|prep|conj|num|pl\.n)"
POS_PREFIX = re.compile(r"^(?:" + POS + r"\.(?:\s*,\s*|\s+|$))+")
SENSE_NUMBER = re.compile(r"^(\d+)\.\s+")
PRONUNCIATION = re.compile(r"^/[^/\s][^/]*/,?\s*")  # "/kluhj/ n. ..." inside a sense
# Words after which a period does not end a sentence.
ABBREVIATIONS = {"e.g", "i.e", "esp", "etc", "cf", "vs", "orig", "poss", "prob", "syn",
                 "approx", "mr", "mrs", "dr", "st", "no", "vol", "fig", "n", "v", "vt", "vi",
                 "adj", "adv", "obs", "ca", "al", "ibid", "op", "lit", "abbr", "abbrev", "incl",
                 "usu", "var", "pl", "ed", "jr", "sr", "inc", "ltd", "co", "u.s", "a.k.a", "q.v",
                 "mt", "ft", "pp", "jan", "feb", "aug", "sept", "oct", "nov", "dec"}
XREF_SENTENCE = re.compile(r"^(?:See|See also|Compare|Cf\.|Also see|Syn\.|Opposite|Antonym)\b")


def die(msg):
    print("jargon_qa: " + msg, file=sys.stderr)
    sys.exit(1)


def b64_decode(s):
    """dictd index number: base64 digits, most significant first."""
    v = 0
    for c in s:
        if c not in B64_VALUE:
            raise ValueError("bad base64 digit %r in %r" % (c, s))
        v = v * 64 + B64_VALUE[c]
    return v


def read_entries(dict_dir):
    """Yield (index headword, raw entry text) in index order."""
    dz = os.path.join(dict_dir, "jargon.dict.dz")
    index = os.path.join(dict_dir, "jargon.index")
    for path in (dz, index):
        if not os.path.exists(path):
            die("%s not found: install dict-jargon (make deps)" % path)
    try:
        with gzip.open(dz, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        die("%s: cannot inflate (%s); reinstall dict-jargon (make deps)" % (dz, e))
    seen = set()
    with open(index, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                die("%s:%d: expected headword<TAB>offset<TAB>length" % (index, lineno))
            head, off, length = parts
            try:
                off, length = b64_decode(off), b64_decode(length)
            except ValueError as e:
                die("%s:%d: %s" % (index, lineno, e))
            if off + length > len(data):
                die("%s:%d: entry %r runs past the end of %s" % (index, lineno, head, dz))
            if (off, length) in seen:
                continue
            seen.add((off, length))
            yield head, data[off:off + length].decode("utf-8", errors="replace")


def strip_leading_asides(s):
    """Drop leading "[...]" usage / etymology tags and "(alt.: ...)"-style asides (they may
    nest) when text follows them. A bracket the File never closes is just dropped."""
    while s[:1] in ("[", "("):
        opening = s[0]
        closing = "]" if opening == "[" else ")"
        depth = 0
        for i, c in enumerate(s):
            depth += (c == opening) - (c == closing)
            if depth == 0:
                rest = s[i + 1:].lstrip(" .,;:")
                if not rest:
                    return ""  # the whole paragraph is a tag: "[from 'cut and paste']"
                if not (rest[0].isalnum() or rest[0] in "[(\"'"):
                    return s  # strip "(foo) bar" only when text follows
                s = rest
                break
        else:
            return s[1:].lstrip() if opening == "[" else s
    return s


def strip_lead(s):
    """Strip pronunciation, part-of-speech labels and leading asides, in any order, from the
    start of a paragraph or sense: "adj. [Invented by ...] Connected ..." -> "Connected ..."."""
    while True:
        t = strip_leading_asides(POS_PREFIX.sub("", PRONUNCIATION.sub("", s)))
        if t == s:
            return s
        s = t


def clean_text(s):
    s = s.replace("\u00ad", "")                         # soft hyphens
    s = re.sub(r"(?<=[A-Za-z0-9])/\n\s+(?=\S)", "/", s)  # "a/\n    b" is one word "a/b"
    s = re.sub(r"\s+", " ", s)
    s = re.sub(r"\{\s*([^{}]*?)\s*\}", r"\1", s)       # {cross reference} -> cross reference
    s = s.replace("{", "").replace("}", "")            # the File's few unbalanced braces
    s = re.sub(r"“\s+", "“", s)
    s = re.sub(r"\s+”", "”", s)
    s = re.sub(r"‘\s+", "‘", s)
    s = s.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    s = re.sub(r"\s+([,.;:!?])", r"\1", s)
    return s.strip()


def split_sentences(s):
    out, start = [], 0
    for m in re.finditer(r'[.!?]["\')]?(?=\s+["(\[A-Z0-9])', s):
        end = m.end()
        if s[start:end].count('"') % 2:
            continue  # inside a quotation: "Suppose we have ... BAZ. Then..."
        word = re.search(r"([A-Za-z.]+)[.!?][\"')]?$", s[start:end])
        if word and m.group(0)[0] == "." and (word.group(1).lower() in ABBREVIATIONS
                                              or len(word.group(1)) == 1):
            continue
        out.append(s[start:end].strip())
        start = end
    if s[start:].strip():
        out.append(s[start:].strip())
    return out


def keep_units(units, budget):
    """First units (sentences or senses) that fit in the budget; the first is always kept, cut at
    a word boundary if it alone is too long."""
    out, used = [], 0
    for u in units:
        if len(out) == MAX_UNITS:
            break
        add = len(u) + (1 if out else 0)
        if used + add > budget:
            if not out:
                cut = u[:budget - 3].rsplit(" ", 1)[0].rstrip(",;:")
                out.append(cut + "...")
            break
        out.append(u)
        used += add
    return out


def definition_sentences(par):
    """Sentences of a paragraph, minus pure cross-reference ones ("See also foo.")."""
    return [x for x in split_sentences(par) if not XREF_SENTENCE.match(x)]


def parse_entry(text):
    """(headword, cleaned definition or None)."""
    blocks = re.split(r"\n\s*\n", text.strip("\n"))
    header = blocks[0].split("\n")
    headword = header[0].strip()
    paragraphs = []
    for b in blocks[1:]:
        p = strip_lead(clean_text(b))
        if not p or (p.startswith("(") and p.endswith(")")):
            continue  # empty after tags, or an "(also ... n.)" aside
        paragraphs.append(p)
    if not paragraphs:
        return headword, None

    senses = []  # first sentence of each numbered sense, in order
    for p in paragraphs:
        m = SENSE_NUMBER.match(p)
        if m:
            body = strip_lead(p[m.end():])
            sents = definition_sentences(body)
            if sents:
                senses.append(sents[0])
    if senses:
        kept = keep_units(senses, MAX_DEF_CHARS - 3 * len(senses))
        if len(kept) == 1:
            definition = kept[0]
        else:
            definition = " ".join("%d. %s" % (i + 1, s) for i, s in enumerate(kept))
    else:
        sents = []
        for p in paragraphs:
            sents.extend(definition_sentences(p))
            if len(sents) >= MAX_UNITS:
                break
        if not sents:
            return headword, None
        definition = " ".join(keep_units(sents, MAX_DEF_CHARS))
    if definition[:1].islower():
        definition = definition[0].upper() + definition[1:]
    if len(definition) < MIN_DEF_CHARS or not re.search(r"[A-Za-z]{3}", definition):
        return headword, None
    return headword, definition


def key(seed, *parts):
    h = hashlib.sha256(("%s\0" % seed + "\0".join(parts)).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big")


def pair(question, answer):
    return {"messages": [{"role": "user", "content": question},
                         {"role": "assistant", "content": answer}]}


def questions_for(seed, headword, k, demo=False):
    """k distinct question templates for this headword, chosen by hash. Demo headwords always
    get the first template first, so every demo question reads the same way and was trained."""
    order = sorted(range(len(QUESTION_TEMPLATES)),
                   key=lambda i: (not (demo and i == 0), key(seed, "q", headword, str(i))))
    return [QUESTION_TEMPLATES[i].format(h=headword) for i in order[:k]]


def write_atomic(path, text):
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def jsonl(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="training chat JSONL to write")
    ap.add_argument("--eval-out", help="held-out chat JSONL (~3%% of entries) to write")
    ap.add_argument("--questions", help="JSON list of demo questions about held-in entries")
    ap.add_argument("--max-entries", type=int, default=0,
                    help="use at most N entries in all (0 = all); the demo entries are kept")
    ap.add_argument("--seed", type=int, default=0, help="split / phrasing / order seed (0)")
    ap.add_argument("--phrasings", type=int, default=2,
                    help="question phrasings per training entry, 1..%d (2)" % len(QUESTION_TEMPLATES))
    ap.add_argument("--num-questions", type=int, default=5, help="demo questions (5)")
    ap.add_argument("--dict-dir", default=DICT_DIR, help="where jargon.dict.dz and jargon.index are")
    a = ap.parse_args(argv)
    if not 1 <= a.phrasings <= len(QUESTION_TEMPLATES):
        ap.error("--phrasings must be in 1..%d" % len(QUESTION_TEMPLATES))
    if a.max_entries < 0:
        ap.error("--max-entries must be >= 0")

    n_index = n_meta = n_short = n_dup = 0
    entries, heads = [], set()
    for idx_head, text in read_entries(a.dict_dir):
        n_index += 1
        if idx_head.startswith("00-database") or idx_head.startswith("00database"):
            n_meta += 1
            continue
        headword, definition = parse_entry(text)
        if not definition:
            n_short += 1
            continue
        if headword in heads:
            n_dup += 1
            continue
        heads.add(headword)
        entries.append((headword, definition))

    demo = [h for h in DEMO_HEADWORDS if h in heads][:a.num_questions]
    demo_set = set(demo)
    # Deterministic order: demo entries first (so --max-entries keeps them), then by hash.
    entries.sort(key=lambda e: (e[0] not in demo_set, key(a.seed, "order", e[0])))
    if a.max_entries and len(entries) > a.max_entries:
        entries = entries[:a.max_entries]
    demo = [h for h in demo if any(e[0] == h for e in entries)]
    demo_set = set(demo)

    train, held = [], []
    for headword, definition in entries:
        is_eval = (a.eval_out and headword not in demo_set
                   and key(a.seed, "split", headword) % 1000 < EVAL_PER_MILLE)
        (held if is_eval else train).append((headword, definition))

    answer = {h: ANSWER_TEMPLATE.format(h=h, d=d) for h, d in entries}
    train_rows = []
    for h, _ in train:
        for q in questions_for(a.seed, h, a.phrasings, h in demo_set):
            train_rows.append((key(a.seed, "row", q), pair(q, answer[h])))
    train_rows = [r for _, r in sorted(train_rows, key=lambda x: x[0])]
    # Held-out entries: one question each, a phrasing chosen the same way.
    eval_rows = [pair(questions_for(a.seed, h, 1)[0], answer[h]) for h, _ in held]

    write_atomic(a.out, jsonl(train_rows))
    if a.eval_out:
        write_atomic(a.eval_out, jsonl(eval_rows))
    if a.questions:
        qs = [{"headword": h, "question": questions_for(a.seed, h, 1, True)[0],
               "reference": answer[h]}
              for h in demo]
        write_atomic(a.questions, json.dumps(qs, ensure_ascii=False, indent=2) + "\n")

    print("jargon_qa: %d index entries: %d dictd metadata, %d too short, %d duplicate headwords; "
          "%d entries used" % (n_index, n_meta, n_short, n_dup, len(entries)), file=sys.stderr)
    print("jargon_qa: train %d entries -> %d pairs (%s)" % (len(train), len(train_rows), a.out),
          file=sys.stderr)
    if a.eval_out:
        print("jargon_qa: eval %d entries -> %d pairs (%s)" % (len(held), len(eval_rows),
                                                               a.eval_out), file=sys.stderr)
    if a.questions:
        print("jargon_qa: %d demo questions (%s): %s" % (len(demo), a.questions, ", ".join(demo)),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
