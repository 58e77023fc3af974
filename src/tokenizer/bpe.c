/*
 * bpe.c — byte-level BPE over a "gpt2" GGUF vocabulary (tokenizer.ggml.merges by rank).
 *
 * Pipeline (llama.cpp src/llama-vocab.cpp llm_tokenizer_bpe / llm_tokenizer_bpe_session,
 * HF tokenizers ByteLevel): the text is pre-split by the regexes chosen from tokenizer.ggml.pre,
 * applied one after another (each splits every piece left by the previous one; text a regex
 * does not match stays a piece of its own); each piece's bytes map to GPT-2's bytes_to_unicode
 * characters (one initial symbol per byte); adjacent symbols are merged lowest rank first (ties:
 * leftmost); each final symbol is its token id.
 *
 * Regexes are compiled once with PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF (JIT when
 * available), so invalid UTF-8 never matches a pattern: those bytes become pieces of their own
 * and, being byte-level, still encode. A byte whose character is not in the vocabulary (SmolLM2
 * lacks 0xC0, 0xC1, 0xF5-0xFF and a few control bytes) is dropped, as HF tokenizers' BPE does
 * without an unknown token: the file's "unknown" id is often <|endoftext|>, which would cut a
 * document in two. (llama.cpp aborts on such input.)
 */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* GPT-2 pre-tokenizer (openai/gpt-2 encoder.py; llama.cpp LLAMA_VOCAB_PRE_TYPE_GPT2). HF
 * tokenizers' ByteLevel(use_regex) appends "|\\s+"; that alternative can only match a lone
 * whitespace character followed by a non-space (every other whitespace run matches
 * "\\s+(?!\\S)" or " ?..."), which split() already makes a piece of its own as a gap. */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
const char *const LT_TOK_RE_GPT2 = RE_GPT2;
/* Llama 3 (llama.cpp LLAMA_VOCAB_PRE_TYPE_LLAMA3, case-insensitive contractions spelled out). */
#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3                                                                                \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"                                             \
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen2 (LLAMA_VOCAB_PRE_TYPE_QWEN2): Llama 3's pattern with single digits. */
#define RE_QWEN2                                                                                 \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"                                             \
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen3.5 (LLAMA_VOCAB_PRE_TYPE_QWEN35): Qwen2's with combining marks inside words. */
#define RE_QWEN35                                                                                \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|"                                     \
    "\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* The CJK runs DeepSeek LLM and Coder split out (U+4E00-9FA5, U+0800-4E00, U+AC00-D7FF). */
#define RE_DEEPSEEK_CJK "[一-龥ࠀ-一가-퟿]+"

typedef struct {
    const char *names; /* '|'-separated tokenizer.ggml.pre values; the first is the canonical one */
    int n;
    const char *re[TOK_MAX_REGEX];
    bool ignore_merges; /* a whole pre-token that is a token is that token (llama.cpp) */
    bool add_bos;       /* default of tokenizer.ggml.add_bos_token (llama.cpp's add_bos) */
    /* tokenizer.json spellings of re[] where they differ (NULL: same), so a tokenizer.json
     * with these regexes gets this row's name when written as GGUF (lt_tok_bpe_known_pre) */
    const char *hf_re[TOK_MAX_REGEX];
} pre_spec;

/* From llama.cpp's llm_tokenizer_bpe constructor (regex lists, in order) and
 * llama_vocab::impl::load (which tokenizer.ggml.pre names map to which list, and the flags),
 * src/llama-vocab.cpp as vendored by llama-cpp-python 0.3.36. Only names whose list and flags
 * are identical share a row. clean_spaces (clean_up_tokenization_spaces) is not a column: it
 * changes llama.cpp's detokenizer only, and lathe's decoder never applies it (decode(encode(x))
 * == x). Verified id for id against llama.cpp's models/ggml-vocab-*.gguf test vectors
 * (tests/unit/test_vocabs.c): gpt-2, mpt, starcoder, refact, command-r, falcon, llama-bpe, qwen2,
 * qwen35, deepseek-llm, deepseek-coder; the other names of those rows share their list and
 * flags. default, deepseek-v3 and tekken have no test vocabulary there: their lists are
 * llama.cpp's strings, unchanged, verified id for id against llama.cpp on qwen2's and
 * llama-bpe's test vocabularies with the pre key overridden (tests/data/tokenizer/pre_*.refs,
 * vocabs/pre_* in test_vocabs.c). The first name of a row is what lathe writes into a GGUF
 * (lt_tok_bpe_known_pre), so it is one llama.cpp accepts. */
static const pre_spec PRE_SPECS[] = {
    {"default", 4, {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false,
     false, {0}},
    {"gpt-2|gpt2|mpt|phi-2", 1, {RE_GPT2}, false, false, {0}},
    /* digits one by one, then GPT-2 */
    {"smollm|starcoder|refact|codeshell|command-r", 2, {"\\p{N}", RE_GPT2}, false, false, {0}},
    {"falcon", 3, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, false, false, {0}},
    {"llama3|llama-v3|llama-bpe|falcon3|pixtral", 1, {RE_LLAMA3}, true, true, {0}},
    {"qwen2|deepseek-r1-qwen|megrez|stablelm2", 1, {RE_QWEN2}, false, false, {0}},
    {"qwen35", 1, {RE_QWEN35}, false, false, {0}},
    /* the letters of DeepSeek LLM's tokenizer.json; the \u escapes are characters that Unicode
     * normalization would replace by others (U+2126 OHM SIGN by U+03A9, ...), spelled so that no
     * editor can */
    {"deepseek-llm",
     6,
     {"[\r\n]",
      "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
      "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", RE_DEEPSEEK_CJK, "\\p{N}+"},
     false,
     false,
     {0}},
    {"deepseek-coder", 5, {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_DEEPSEEK_CJK, "\\p{N}"},
     false, false, {0}},
    {"deepseek-v3",
     3,
     {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
      "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
     false,
     false,
     {0}},
    /* Mistral NeMo's "tekken": llama.cpp's rewrite of the tokenizer.json pattern (upper/lower
     * case as "a letter other than a-z / A-Z", no \p{M}); that original is hf_re[0]. */
    {"tekken",
     1,
     {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|"
      "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     true,
     true,
     {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
      "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
};

/* tokenizer.ggml.pre values llama.cpp knows that lathe refuses, and why (llama.cpp implements
 * them with code of its own rather than a regex list, or without GPT-2's byte map). */
static const struct {
    const char *names, *why;
} PRE_REFUSED[] = {
    {"kimi-k2", "llama.cpp splits it with hand-written code (\\p{Han} exclusions), not a regex"},
    {"afmoe", "llama.cpp groups its digits with hand-written code, not a regex"},
    {"superbpe", "its digit-grouping regex matches empty strings, which lathe's splitter skips"},
    {"tiny_aya|cohere2moe", "llama.cpp groups its digits with hand-written code, not a regex"},
    {"gemma4|granite-embed-multi-311m|sarvam-moe|whitespace",
     "a BPE over raw UTF-8 without GPT-2's byte map, which lathe's byte-level engine lacks"},
};

static bool name_in(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && memcmp(p, name, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* ---- the (left, right) -> (rank, result) map ----------------------------------------------- */

static inline uint64_t pair_hash(uint64_t k) {
    k ^= k >> 31;
    k *= 0x7fb5d329728ea185ULL;
    k ^= k >> 27;
    k *= 0x81dadef4bc2dd44dULL;
    k ^= k >> 33;
    return k;
}

static inline uint64_t pair_key(int32_t l, int32_t r) {
    return (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
}

/* Slot of the pair, or -1. */
static inline int64_t pair_find(const tok_pairmap *m, int32_t l, int32_t r) {
    uint64_t key = pair_key(l, r);
    uint64_t i = pair_hash(key) & m->mask;
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) return (int64_t)i;
        if (k == 0) return -1;
        i = (i + 1) & m->mask;
    }
}

static void pair_insert(tok_pairmap *m, int32_t l, int32_t r, int32_t rank, int32_t result) {
    uint64_t key = pair_key(l, r);
    uint64_t i = pair_hash(key) & m->mask;
    while (m->keys[i] != 0) {
        if (m->keys[i] == key) return; /* a repeated merge keeps its first (lowest) rank */
        i = (i + 1) & m->mask;
    }
    m->keys[i] = key;
    m->rank[i] = rank;
    m->result[i] = result;
}

/* ---- set-up -------------------------------------------------------------------------------- */

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

void lt_tok_bpe_bytes(lt_tokenizer *t) {
    /* GPT-2 bytes_to_unicode (openai/gpt-2 src/encoder.py): printable Latin-1 bytes map to
     * themselves, the other 68 to U+0100 onwards in byte order. */
    uint32_t next = 256;
    for (int i = 0; i < 324; i++) t->cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->byte_to_cp[b] = (uint16_t)(keep ? (uint32_t)b : next++);
        t->cp_to_byte[t->byte_to_cp[b]] = (int16_t)b;
    }
    for (int b = 0; b < 256; b++) {
        char u[4];
        size_t l = put_utf8(u, t->byte_to_cp[b]);
        t->byte_ids[b] = lt_tok_lookup(t, u, l);
    }
}

lt_status lt_tok_bpe_add_regex(lt_tokenizer *t, const char *src, tok_split how, const char *where) {
    if (t->n_regex == TOK_MAX_REGEX)
        return lt_error_set(LT_ERR_MODEL,
                            "%s: more than %d pre-tokenizer regexes; lathe supports at most %d",
                            where, TOK_MAX_REGEX, TOK_MAX_REGEX);
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &eoff,
                                   NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return lt_error_set(LT_ERR_MODEL,
                            "%s: pre-tokenizer regex \"%.80s\" does not compile at offset %zu: %s "
                            "(PCRE2 syntax; a PCRE2 built without Unicode support fails here too)",
                            where, src, (size_t)eoff, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter on failure */
    t->regex_src[t->n_regex] = lt_xstrdup(src);
    t->regex_split[t->n_regex] = how;
    t->regex[t->n_regex++] = re;
    return LT_OK;
}

const char *lt_tok_bpe_known_pre(const lt_tokenizer *t) {
    for (size_t i = 0; i < sizeof PRE_SPECS / sizeof PRE_SPECS[0]; i++) {
        const pre_spec *s = &PRE_SPECS[i];
        if (s->n != t->n_regex || s->ignore_merges != t->ignore_merges) continue;
        bool same = true;
        for (int k = 0; k < s->n; k++)
            same &= (strcmp(s->re[k], t->regex_src[k]) == 0 ||
                     (s->hf_re[k] && strcmp(s->hf_re[k], t->regex_src[k]) == 0)) &&
                    t->regex_split[k] == TOK_SPLIT_ISOLATED;
        if (same) {
            const char *bar = strchr(s->names, '|');
            static _Thread_local char name[32];
            size_t l = bar ? (size_t)(bar - s->names) : strlen(s->names);
            snprintf(name, sizeof name, "%.*s", (int)l, s->names);
            return name;
        }
    }
    return NULL;
}

size_t lt_tokenizer_pre_names(char *buf, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < sizeof PRE_SPECS / sizeof PRE_SPECS[0]; i++)
        for (const char *p = PRE_SPECS[i].names; *p; p++) {
            if (*p == '|' || (p == PRE_SPECS[i].names && i > 0)) {
                if (n + 2 < cap) buf[n] = ',', buf[n + 1] = ' ';
                n += 2;
            }
            if (*p != '|') {
                if (n + 1 < cap) buf[n] = *p;
                n++;
            }
        }
    if (cap) buf[n < cap ? n : cap - 1] = 0;
    return n;
}

void lt_tok_bpe_merges_alloc(lt_tokenizer *t, size_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap <<= 1;
    t->merge_map.keys = lt_xcalloc(cap, sizeof(uint64_t));
    t->merge_map.rank = lt_xmalloc(cap * sizeof(int32_t));
    t->merge_map.result = lt_xmalloc(cap * sizeof(int32_t));
    t->merge_map.mask = cap - 1;
    t->n_merges = (int)n;
}

bool lt_tok_bpe_add_merge(lt_tokenizer *t, int32_t rank, const char *ls, size_t ll, const char *rs,
                          size_t rl) {
    int32_t l = lt_tok_lookup(t, ls, ll), r = lt_tok_lookup(t, rs, rl);
    if (l < 0 || r < 0) return false;
    char small[256];
    char *cat = ll + rl <= sizeof small ? small : lt_xmalloc(ll + rl);
    memcpy(cat, ls, ll);
    memcpy(cat + ll, rs, rl);
    int32_t res = lt_tok_lookup(t, cat, ll + rl);
    if (cat != small) free(cat);
    if (res < 0) return false;
    pair_insert(&t->merge_map, l, r, rank, res);
    return true;
}

size_t lt_tok_bpe_merge_pairs(const lt_tokenizer *t, int32_t **pairs) {
    /* rank order: walk the table once, placing each pair at its rank; ranks of merges that
     * were skipped (parts not tokens) stay empty and are squeezed out */
    uint64_t *byrank = lt_xcalloc((size_t)t->n_merges + 1, sizeof(uint64_t));
    for (uint64_t i = 0; t->merge_map.keys && i <= t->merge_map.mask; i++)
        if (t->merge_map.keys[i] && t->merge_map.rank[i] < t->n_merges)
            byrank[t->merge_map.rank[i]] = t->merge_map.keys[i];
    int32_t *p = lt_xmalloc(((size_t)t->n_merges * 2 + 1) * sizeof(int32_t));
    size_t n = 0;
    for (int i = 0; i < t->n_merges; i++) {
        if (!byrank[i]) continue;
        uint64_t k = byrank[i] - 1;
        p[2 * n] = (int32_t)(k >> 32);
        p[2 * n + 1] = (int32_t)(uint32_t)k;
        n++;
    }
    free(byrank);
    *pairs = p;
    return n;
}

lt_status lt_tok_bpe_init(lt_tokenizer *t, const lt_gguf *g, const char *path) {
    lt_tok_bpe_bytes(t);
    char names[512];
    LT_ASSERT(lt_tokenizer_pre_names(names, sizeof names) < sizeof names);
    const pre_spec *spec = NULL;
    for (size_t i = 0; i < sizeof PRE_SPECS / sizeof PRE_SPECS[0]; i++)
        if (name_in(PRE_SPECS[i].names, t->pre)) spec = &PRE_SPECS[i];
    for (size_t i = 0; !spec && i < sizeof PRE_REFUSED / sizeof PRE_REFUSED[0]; i++)
        if (name_in(PRE_REFUSED[i].names, t->pre))
            return lt_error_set(LT_ERR_MODEL,
                                "%s: key tokenizer.ggml.pre = \"%s\" is not supported: %s; "
                                "supported: %s",
                                path, t->pre, PRE_REFUSED[i].why, names);
    if (!spec)
        return lt_error_set(LT_ERR_MODEL,
                            "%s: key tokenizer.ggml.pre = \"%s\" is not a supported pre-tokenizer; "
                            "supported: %s",
                            path, t->pre, names);
    t->ignore_merges = spec->ignore_merges;
    t->add_bos = spec->add_bos;
    char where[512];
    snprintf(where, sizeof where, "%s: key tokenizer.ggml.pre = \"%s\"", path, t->pre);
    for (int i = 0; i < spec->n; i++) {
        lt_status st = lt_tok_bpe_add_regex(t, spec->re[i], TOK_SPLIT_ISOLATED, where);
        if (st) return st;
    }

    const lt_gguf_kv *km = lt_gguf_find(g, "tokenizer.ggml.merges");
    if (!km || km->type != LT_GGUF_ARRAY || km->arr_type != LT_GGUF_STRING || !km->arr_str)
        return lt_error_set(LT_ERR_MODEL,
                            "%s: key tokenizer.ggml.merges is missing or not a string array; a "
                            "\"gpt2\" vocabulary needs its merges",
                            path);
    if (km->arr_n > INT32_MAX / 4)
        return lt_error_set(LT_ERR_MODEL, "%s: key tokenizer.ggml.merges has %llu entries", path,
                            (unsigned long long)km->arr_n);
    lt_tok_bpe_merges_alloc(t, km->arr_n);
    for (uint64_t i = 0; i < km->arr_n; i++) {
        lt_gguf_str s = km->arr_str[i];
        /* "left right": the separator is the first space after the first byte (llama.cpp) */
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp)
            return lt_error_set(LT_ERR_MODEL,
                                "%s: key tokenizer.ggml.merges: entry %llu \"%.*s\" is not "
                                "\"left right\"",
                                path, (unsigned long long)i, (int)(s.len > 64 ? 64 : s.len), s.ptr);
        size_t ll = (size_t)(sp - s.ptr);
        /* a merge whose parts or result are not tokens can never produce a token: skipped */
        lt_tok_bpe_add_merge(t, (int32_t)i, s.ptr, ll, sp + 1, s.len - ll - 1);
    }
    return LT_OK;
}

void lt_tok_bpe_free(lt_tokenizer *t) {
    for (int i = 0; i < t->n_regex; i++) {
        pcre2_code_free(t->regex[i]);
        free(t->regex_src[i]);
        t->regex_src[i] = NULL;
    }
    t->n_regex = 0;
    free(t->merge_map.keys);
    free(t->merge_map.rank);
    free(t->merge_map.result);
    memset(&t->merge_map, 0, sizeof t->merge_map);
}

/* ---- encoding ------------------------------------------------------------------------------ */

typedef struct {
    int32_t prev, next, id; /* id -1: a byte with no token (cannot merge) */
} bpe_sym;

typedef struct {
    int32_t rank, left;
    int32_t lid, rid; /* the ids the pair had when queued (stale when they changed) */
} bpe_pair;

typedef struct {
    const lt_tokenizer *t;
    pcre2_match_data *md[TOK_MAX_REGEX];
    bpe_sym *sym;
    size_t sym_cap;
    bpe_pair *heap;
    size_t heap_n, heap_cap;
    char *enc; /* byte-encoded piece for ignore_merges lookups */
    size_t enc_cap;
    uint8_t mask;
    lt_tokens *out;
} bpe_ctx;

static inline bool pair_before(const bpe_pair *a, const bpe_pair *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->left < b->left;
}

static void hpush(bpe_ctx *c, bpe_pair v) {
    if (c->heap_n == c->heap_cap) {
        c->heap_cap = c->heap_cap ? c->heap_cap * 2 : 64;
        c->heap = lt_xrealloc(c->heap, c->heap_cap * sizeof *c->heap);
    }
    size_t i = c->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!pair_before(&v, &c->heap[p])) break;
        c->heap[i] = c->heap[p];
        i = p;
    }
    c->heap[i] = v;
}

static bpe_pair hpop(bpe_ctx *c) {
    bpe_pair top = c->heap[0], last = c->heap[--c->heap_n];
    size_t i = 0, n = c->heap_n;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= n) break;
        if (k + 1 < n && pair_before(&c->heap[k + 1], &c->heap[k])) k++;
        if (!pair_before(&c->heap[k], &last)) break;
        c->heap[i] = c->heap[k];
        i = k;
    }
    if (n) c->heap[i] = last;
    return top;
}

static inline void try_pair(bpe_ctx *c, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t a = c->sym[l].id, b = c->sym[r].id;
    if (a < 0 || b < 0) return;
    int64_t s = pair_find(&c->t->merge_map, a, b);
    if (s < 0) return;
    hpush(c, (bpe_pair){c->t->merge_map.rank[s], l, a, b});
}

/* BPE one pre-token piece (raw bytes). */
static void bpe_piece(bpe_ctx *c, const unsigned char *p, size_t n) {
    const lt_tokenizer *t = c->t;
    if (n == 1) { /* the common one-byte piece: no merging possible */
        if (t->byte_ids[p[0]] >= 0) lt_tokens_push(c->out, t->byte_ids[p[0]], c->mask);
        return;
    }
    if (t->ignore_merges) {
        if (n * 2 > c->enc_cap) {
            c->enc_cap = n * 2 + 16;
            c->enc = lt_xrealloc(c->enc, c->enc_cap);
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += put_utf8(c->enc + k, t->byte_to_cp[p[i]]);
        int32_t id = lt_tok_lookup(t, c->enc, k);
        if (id >= 0) {
            lt_tokens_push(c->out, id, c->mask);
            return;
        }
    }
    if (n > c->sym_cap) {
        c->sym_cap = n * 2;
        c->sym = lt_xrealloc(c->sym, c->sym_cap * sizeof *c->sym);
    }
    bpe_sym *sym = c->sym;
    for (size_t i = 0; i < n; i++)
        sym[i] = (bpe_sym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, t->byte_ids[p[i]]};
    c->heap_n = 0;
    for (size_t i = 1; i < n; i++) try_pair(c, (int32_t)i - 1, (int32_t)i);
    while (c->heap_n) {
        bpe_pair b = hpop(c);
        bpe_sym *L = &sym[b.left];
        if (L->id != b.lid || L->next < 0) continue;
        bpe_sym *R = &sym[L->next];
        if (R->id != b.rid) continue;
        int64_t s = pair_find(&t->merge_map, b.lid, b.rid);
        L->id = t->merge_map.result[s];
        int32_t rnext = R->next;
        R->id = -2; /* merged away */
        L->next = rnext;
        if (rnext >= 0) sym[rnext].prev = b.left;
        try_pair(c, L->prev, b.left);
        try_pair(c, b.left, rnext);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        if (sym[i].id >= 0) lt_tokens_push(c->out, sym[i].id, c->mask);
}

/* Split p[0..n) with regex k (matches and the gaps between them), recursing to regex k+1. */
static void split(bpe_ctx *c, int k, const char *p, size_t n) {
    if (n == 0) return;
    if (k == c->t->n_regex) {
        bpe_piece(c, (const unsigned char *)p, n);
        return;
    }
    pcre2_code *re = c->t->regex[k];
    pcre2_match_data *md = c->md[k];
    size_t pos = 0, gap = 0;
    while (pos < n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)p, n, pos, 0, md, NULL);
        if (rc < 0) break; /* no further match (or a matching error): the rest is one gap */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e <= s) { /* empty match (not produced by the shipped patterns): step over a byte */
            pos = s + 1;
            continue;
        }
        if (s > gap) split(c, k + 1, p + gap, s - gap);
        if (c->t->regex_split[k] == TOK_SPLIT_ISOLATED) split(c, k + 1, p + s, e - s);
        pos = gap = e;
    }
    if (n > gap) split(c, k + 1, p + gap, n - gap);
}

void lt_tok_bpe_encode(const lt_tokenizer *t, const char *text, size_t len, uint8_t mask,
                       lt_tokens *out) {
    bpe_ctx c = {.t = t, .mask = mask, .out = out};
    for (int k = 0; k < t->n_regex; k++)
        c.md[k] = pcre2_match_data_create_from_pattern(t->regex[k], NULL);
    split(&c, 0, text, len);
    for (int k = 0; k < t->n_regex; k++) pcre2_match_data_free(c.md[k]);
    free(c.sym);
    free(c.heap);
    free(c.enc);
}
