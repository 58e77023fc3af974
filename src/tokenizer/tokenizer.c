/*
 * tokenizer.c — loading a vocabulary from GGUF tokenizer.ggml.* keys, token lookup, the
 * special-token splitter, decoding and the vocabulary checksum. The two encoders live in spm.c
 * and bpe.c, chat templates in chat.c.
 *
 * Key meanings follow llama.cpp src/llama-vocab.cpp (llama_vocab::impl::load): ids stored as
 * uint32 with 0xFFFFFFFF meaning "none", token types as llama_token_type, add_bos_token defaulting
 * to true for "llama" vocabularies and false for "gpt2" ones (true for the llama3 and tekken
 * pre-tokenizers).
 */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- token vector ------------------------------------------------------------------------- */

void lt_tokens_push(lt_tokens *v, int32_t id, uint8_t mask) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 256;
        v->ids = lt_xrealloc(v->ids, v->cap * sizeof *v->ids);
        v->mask = lt_xrealloc(v->mask, v->cap * sizeof *v->mask);
    }
    v->ids[v->n] = id;
    v->mask[v->n] = mask;
    v->n++;
}

void lt_tokens_free(lt_tokens *v) {
    if (!v) return;
    free(v->ids);
    free(v->mask);
    v->ids = NULL;
    v->mask = NULL;
    v->n = v->cap = 0;
}

/* ---- hashing and the string map ----------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

uint64_t lt_tok_hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0x100000001b3ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix64(h ^ w) + 0x2545F4914F6CDD1DULL;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return mix64(h ^ w ^ ((uint64_t)n << 56));
}

static void strmap_build(lt_tokenizer *t) {
    uint64_t cap = 16;
    while (cap < (uint64_t)t->n_vocab * 2) cap <<= 1;
    t->tok_map.slots = lt_xcalloc(cap, sizeof(uint32_t));
    t->tok_map.mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = lt_tok_text(t, id);
        uint32_t n = t->tok_len[id];
        uint64_t i = lt_tok_hash_bytes(s, n) & t->tok_map.mask;
        for (;;) {
            uint32_t v = t->tok_map.slots[i];
            if (v == 0) {
                t->tok_map.slots[i] = (uint32_t)id + 1;
                break;
            }
            /* duplicate strings keep the lowest id (llama.cpp's token_to_id keeps the last
             * insertion; files with duplicates are broken anyway and the first id is stable) */
            if (t->tok_len[v - 1] == n && memcmp(lt_tok_text(t, (int32_t)v - 1), s, n) == 0) break;
            i = (i + 1) & t->tok_map.mask;
        }
    }
}

int32_t lt_tok_lookup(const lt_tokenizer *t, const char *s, size_t n) {
    uint64_t i = lt_tok_hash_bytes(s, n) & t->tok_map.mask;
    for (;;) {
        uint32_t v = t->tok_map.slots[i];
        if (v == 0) return -1;
        int32_t id = (int32_t)v - 1;
        if (t->tok_len[id] == n && memcmp(lt_tok_text(t, id), s, n) == 0) return id;
        i = (i + 1) & t->tok_map.mask;
    }
}

/* ---- loading ------------------------------------------------------------------------------ */

/* Optional id key: -1 when absent or 0xFFFFFFFF / negative; LT_ERR_MODEL when out of range. */
static lt_status read_id(const lt_gguf *g, const char *key, int32_t n_vocab, int32_t dflt,
                         int32_t *out) {
    int64_t v;
    *out = dflt;
    if (!lt_gguf_find(g, key)) return LT_OK;
    if (!lt_gguf_get_int(g, key, &v))
        return lt_error_set(LT_ERR_MODEL, "%s: key %s is not an integer", g->path, key);
    if (v < 0 || v == 0xFFFFFFFFLL) {
        *out = -1;
        return LT_OK;
    }
    if (v >= n_vocab)
        return lt_error_set(LT_ERR_MODEL,
                            "%s: key %s = %lld is outside the vocabulary (%d tokens); the file's "
                            "tokenizer metadata is corrupt",
                            g->path, key, (long long)v, n_vocab);
    *out = (int32_t)v;
    return LT_OK;
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const lt_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    unsigned char fx = (unsigned char)lt_tok_text(t, x)[0], fy = (unsigned char)lt_tok_text(t, y)[0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (t->tok_len[x] != t->tok_len[y]) return t->tok_len[x] > t->tok_len[y] ? -1 : 1;
    return x < y ? -1 : (x > y);
}

static void build_specials(lt_tokenizer *t) {
    int32_t n = 0;
    t->special_ids = lt_xmalloc(((size_t)t->n_vocab + 3) * sizeof(int32_t));
    for (int32_t id = 0; id < t->n_vocab; id++) {
        bool sp = t->types[id] == TOK_CONTROL || t->types[id] == TOK_USER_DEFINED ||
                  t->types[id] == TOK_UNKNOWN || id == t->bos ||
                  id == t->eos || id == t->pad;
        if (sp && t->tok_len[id] > 0) {
            t->special_ids[n++] = id;
            t->n_user_defined += t->types[id] == TOK_USER_DEFINED;
        }
    }
    qsort_r(t->special_ids, (size_t)n, sizeof(int32_t), cmp_special, t);
    int32_t k = 0;
    for (int c = 0; c < 256; c++) {
        t->special_start[c] = (uint32_t)k;
        while (k < n && (unsigned char)lt_tok_text(t, t->special_ids[k])[0] == c) k++;
    }
    t->special_start[256] = (uint32_t)n;
}

static void compute_sha(lt_tokenizer *t) {
    /* model kind, pre, the normalizer, then per token: length, bytes, score bits, type; then
     * merges (as the id pairs they resolve to, in rank order) */
    size_t cap = 64 + strlen(t->pre) + (size_t)t->n_vocab * 12 + (size_t)t->n_merges * 8;
    for (int32_t i = 0; i < t->n_vocab; i++) cap += t->tok_len[i];
    char *buf = lt_xmalloc(cap);
    size_t n = 0;
#define PUT(p, k)                                                                                \
    do {                                                                                         \
        memcpy(buf + n, (p), (k));                                                               \
        n += (k);                                                                                \
    } while (0)
    const char *kind = t->kind == TOK_KIND_SPM ? "llama" : "gpt2";
    PUT(kind, strlen(kind) + 1);
    PUT(t->pre, strlen(t->pre) + 1);
    if (t->nfc) PUT("nfc", 4); /* only when set: the checksums of other tokenizers stay */
    PUT(&t->n_vocab, 4);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        PUT(&t->tok_len[i], 4);
        PUT(lt_tok_text(t, i), t->tok_len[i]);
        PUT(&t->scores[i], 4);
        PUT(&t->types[i], 4);
    }
    if (t->kind == TOK_KIND_BPE) {
        int32_t *pairs;
        size_t np = lt_tok_bpe_merge_pairs(t, &pairs);
        for (size_t i = 0; i < np; i++) {
            /* the (left << 32 | right) + 1 key the merge table stores, as before */
            uint64_t key = (((uint64_t)(uint32_t)pairs[2 * i] << 32) | (uint32_t)pairs[2 * i + 1]) + 1;
            PUT(&key, 8);
        }
        free(pairs);
    }
#undef PUT
    lt_sha256_hex(buf, n, t->sha256);
    free(buf);
}

void lt_tok_alloc_vocab(lt_tokenizer *t, int32_t n, size_t blob_bytes) {
    t->n_vocab = n;
    t->blob = lt_xmalloc(blob_bytes ? blob_bytes : 1);
    t->tok_off = lt_xmalloc((size_t)n * sizeof *t->tok_off);
    t->tok_len = lt_xmalloc((size_t)n * sizeof *t->tok_len);
    t->scores = lt_xcalloc((size_t)n, sizeof *t->scores);
    t->types = lt_xmalloc((size_t)n * sizeof *t->types);
    for (int32_t i = 0; i < n; i++) t->types[i] = TOK_NORMAL;
}

void lt_tok_build_map(lt_tokenizer *t) { strmap_build(t); }

void lt_tok_finish(lt_tokenizer *t) {
    build_specials(t);
    compute_sha(t);
}

lt_status lt_tokenizer_load(lt_tokenizer **out, const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return lt_tokenizer_from_hf_dir(out, path);
    lt_gguf *g = NULL;
    lt_status st = lt_gguf_open_meta(&g, path); /* metadata only: any tensor types */
    if (st) return st;
    st = lt_tokenizer_from_gguf(out, g);
    lt_gguf_close(g);
    return st;
}

/* Token texts llama.cpp treats as end-of-generation whatever the file's token_type says: on load
 * (llama-vocab.cpp, llama_vocab::impl::load, "control-looking token ... its type will be
 * overridden") each vocabulary token with one of these texts gets the CONTROL attribute, so it is
 * matched only with parse_special and decodes to "" without special. Gemma 3's GGUF has "</s>"
 * as a user-defined token; without this lathe split "a</s>b" around it where llama.cpp does not. */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "[e~["};

static int32_t lookup_str(const lt_tokenizer *t, const char *s) {
    return lt_tok_lookup(t, s, strlen(s));
}

/* Apply llama.cpp's load-time type overrides by token text (EOG_TEXTS above), with its two
 * exceptions: "<|end|>" stays user-defined when the vocabulary also has "<|return|>" and
 * "<|call|>", or "<|call|>"/"<|calls|>" and "<|flush|>" (gpt-oss, solar-open), and "</s>" is a
 * normal token when "<|tool_response>" exists or EOS is "<|plamo:eos|>" (gemma4, plamo).
 * Needs the string map (lt_tok_build_map) and the special ids. */
static void control_by_text(lt_tokenizer *t) {
    for (size_t i = 0; i < sizeof EOG_TEXTS / sizeof *EOG_TEXTS; i++) {
        int32_t id = lookup_str(t, EOG_TEXTS[i]);
        if (id >= 0) t->types[id] = TOK_CONTROL;
    }
    bool call = lookup_str(t, "<|call|>") >= 0 || lookup_str(t, "<|calls|>") >= 0;
    int32_t end = lookup_str(t, "<|end|>");
    if (end >= 0 && call &&
        (lookup_str(t, "<|return|>") >= 0 || lookup_str(t, "<|flush|>") >= 0))
        t->types[end] = TOK_USER_DEFINED;
    int32_t s = lookup_str(t, "</s>");
    bool plamo = t->eos >= 0 && t->tok_len[t->eos] == 13 &&
                 memcmp(lt_tok_text(t, t->eos), "<|plamo:eos|>", 13) == 0;
    if (s >= 0 && (lookup_str(t, "<|tool_response>") >= 0 || plamo)) t->types[s] = TOK_NORMAL;
}

lt_status lt_tokenizer_from_gguf(lt_tokenizer **out, const lt_gguf *g) {
    *out = NULL;
    const char *path = g->path ? g->path : "(gguf)";
    lt_gguf_str model;
    if (!lt_gguf_get_str(g, "tokenizer.ggml.model", &model))
        return lt_error_set(LT_ERR_MODEL,
                            "%s: key tokenizer.ggml.model is missing; the file carries no "
                            "tokenizer (convert the model with llama.cpp's convert_hf_to_gguf.py)",
                            path);
    tok_kind kind;
    if (lt_gguf_str_eq(model, "llama"))
        kind = TOK_KIND_SPM;
    else if (lt_gguf_str_eq(model, "gpt2"))
        kind = TOK_KIND_BPE;
    else
        return lt_error_set(LT_ERR_MODEL,
                            "%s: key tokenizer.ggml.model = \"%.*s\" is not supported; supported: "
                            "llama (SentencePiece BPE), gpt2 (byte-level BPE)",
                            path, (int)(model.len > 64 ? 64 : model.len), model.ptr);

    const lt_gguf_kv *ktok = lt_gguf_find(g, "tokenizer.ggml.tokens");
    if (!ktok || ktok->type != LT_GGUF_ARRAY || ktok->arr_type != LT_GGUF_STRING || !ktok->arr_str)
        return lt_error_set(LT_ERR_MODEL,
                            "%s: key tokenizer.ggml.tokens is missing or not a string array", path);
    if (ktok->arr_n == 0 || ktok->arr_n > INT32_MAX / 2)
        return lt_error_set(LT_ERR_MODEL, "%s: key tokenizer.ggml.tokens has %llu entries", path,
                            (unsigned long long)ktok->arr_n);

    lt_tokenizer *t = lt_xcalloc(1, sizeof *t);
    t->kind = kind;
    lt_status st = LT_OK;

    size_t total = 0;
    for (uint64_t i = 0; i < ktok->arr_n; i++) total += ktok->arr_str[i].len + 1;
    lt_tok_alloc_vocab(t, (int32_t)ktok->arr_n, total);
    size_t off = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        lt_gguf_str s = ktok->arr_str[i];
        if (s.len > 0xFFFF) {
            st = lt_error_set(LT_ERR_MODEL, "%s: key tokenizer.ggml.tokens: token %d is %llu bytes",
                              path, i, (unsigned long long)s.len);
            goto fail;
        }
        memcpy(t->blob + off, s.ptr, s.len);
        t->blob[off + s.len] = 0;
        t->tok_off[i] = off;
        t->tok_len[i] = (uint32_t)s.len;
        off += s.len + 1;
    }

    const lt_gguf_kv *ksc = lt_gguf_find(g, "tokenizer.ggml.scores");
    if (ksc) {
        if (ksc->type != LT_GGUF_ARRAY || ksc->arr_n != ktok->arr_n || ksc->arr_str) {
            st = lt_error_set(LT_ERR_MODEL,
                              "%s: key tokenizer.ggml.scores must be a numeric array with one "
                              "entry per token (%d)",
                              path, t->n_vocab);
            goto fail;
        }
        for (int32_t i = 0; i < t->n_vocab; i++) t->scores[i] = (float)lt_gguf_arr_float(ksc, i);
    } else if (kind == TOK_KIND_SPM) {
        st = lt_error_set(LT_ERR_MODEL,
                          "%s: key tokenizer.ggml.scores is missing; a \"llama\" (SentencePiece) "
                          "vocabulary merges by score",
                          path);
        goto fail;
    }
    const lt_gguf_kv *kty = lt_gguf_find(g, "tokenizer.ggml.token_type");
    if (kty) {
        if (kty->type != LT_GGUF_ARRAY || kty->arr_n != ktok->arr_n || !lt_gguf_arr_is_int(kty)) {
            st = lt_error_set(LT_ERR_MODEL,
                              "%s: key tokenizer.ggml.token_type must be an integer array with "
                              "one entry per token (%d; corrupt file? convert_hf_to_gguf.py "
                              "writes int32)",
                              path, t->n_vocab);
            goto fail;
        }
        for (int32_t i = 0; i < t->n_vocab; i++)
            t->types[i] = (int32_t)lt_gguf_arr_int(kty, i);
    }

    bool spm = kind == TOK_KIND_SPM;
    if ((st = read_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, spm ? 1 : -1, &t->bos)) ||
        (st = read_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, spm ? 2 : -1, &t->eos)) ||
        (st = read_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, spm ? 0 : -1, &t->unk)) ||
        (st = read_id(g, "tokenizer.ggml.padding_token_id", t->n_vocab, -1, &t->pad)))
        goto fail;
    if (t->bos >= t->n_vocab) t->bos = -1;
    if (t->eos >= t->n_vocab) t->eos = -1;
    if (t->unk >= t->n_vocab) t->unk = -1;

    lt_gguf_str pre = {0};
    if (kind == TOK_KIND_BPE) {
        if (!lt_gguf_get_str(g, "tokenizer.ggml.pre", &pre)) pre = (lt_gguf_str){"default", 7};
        t->pre = lt_xmalloc(pre.len + 1);
        memcpy(t->pre, pre.ptr, pre.len);
        t->pre[pre.len] = 0;
    } else {
        t->pre = lt_xstrdup("");
    }

    t->add_space_prefix = spm;
    if (lt_gguf_find(g, "tokenizer.ggml.add_space_prefix") &&
        !lt_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix)) {
        st = lt_error_set(LT_ERR_MODEL, "%s: key tokenizer.ggml.add_space_prefix is not a bool",
                          path);
        goto fail;
    }
    if (!spm) t->add_space_prefix = false;

    lt_tok_build_map(t);
    control_by_text(t);
    if (spm) {
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_ids[b] = lt_tok_lookup(t, name, 6);
        }
    } else if ((st = lt_tok_bpe_init(t, g, path))) {
        goto fail;
    }

    if (spm) t->add_bos = true; /* byte-level: lt_tok_bpe_init set the pre-tokenizer's default
                                 * (llama.cpp: true for llama3 and tekken) */
    if (lt_gguf_find(g, "tokenizer.ggml.add_bos_token") &&
        !lt_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos)) {
        st = lt_error_set(LT_ERR_MODEL, "%s: key tokenizer.ggml.add_bos_token is not a bool",
                          path);
        goto fail;
    }
    if (t->bos < 0) t->add_bos = false;
    if (lt_gguf_find(g, "tokenizer.ggml.add_eos_token") &&
        !lt_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos)) {
        st = lt_error_set(LT_ERR_MODEL, "%s: key tokenizer.ggml.add_eos_token is not a bool",
                          path);
        goto fail;
    }

    lt_gguf_str tpl;
    if (lt_gguf_get_str(g, "tokenizer.chat_template", &tpl)) {
        t->chat_template = lt_xmalloc(tpl.len + 1);
        memcpy(t->chat_template, tpl.ptr, tpl.len);
        t->chat_template[tpl.len] = 0;
        t->default_system = lt_template_default_system(t->chat_template);
    }

    lt_tok_finish(t);
    *out = t;
    return LT_OK;
fail:
    lt_tokenizer_free(t);
    return st;
}

void lt_tokenizer_free(lt_tokenizer *t) {
    if (!t) return;
    lt_tok_bpe_free(t);
    free(t->pre);
    free(t->blob);
    free(t->tok_off);
    free(t->tok_len);
    free(t->scores);
    free(t->types);
    free(t->tok_map.slots);
    free(t->special_ids);
    free(t->chat_template);
    free(t->default_system);
    free(t);
}

/* ---- accessors ---------------------------------------------------------------------------- */

int32_t lt_tokenizer_vocab_size(const lt_tokenizer *t) { return t->n_vocab; }
int32_t lt_tokenizer_bos(const lt_tokenizer *t) { return t->bos; }
int32_t lt_tokenizer_eos(const lt_tokenizer *t) { return t->eos; }
int32_t lt_tokenizer_pad(const lt_tokenizer *t) { return t->pad >= 0 ? t->pad : t->eos; }
bool lt_tokenizer_add_bos(const lt_tokenizer *t) { return t->add_bos; }
const char *lt_tokenizer_sha256(const lt_tokenizer *t) { return t->sha256; }
const char *lt_tokenizer_chat_template(const lt_tokenizer *t) { return t->chat_template; }
const char *lt_tokenizer_default_system(const lt_tokenizer *t) { return t->default_system; }

void lt_tokenizer_set_default_system(lt_tokenizer *t, const char *text) {
    free(t->default_system);
    t->default_system = text ? lt_xstrdup(text) : NULL;
}

int32_t lt_tokenizer_find(const lt_tokenizer *t, const char *piece) {
    return lt_tok_lookup(t, piece, strlen(piece));
}

/* ---- encoding ----------------------------------------------------------------------------- */

/* One run without special tokens. `prefix`: the run may get SentencePiece's space prefix (the
 * caller decided by prefix_mode); Metaspace modes skip it when the run starts with a space. A
 * byte-level tokenizer with byte_prefix_space prepends ' ' to a run that does not start with one
 * (HF ByteLevel add_prefix_space, applied per run between added tokens). The normalizer (NFC)
 * comes first, on the run: HF tokenizers normalizes the text between added tokens piece by
 * piece (AddedVocabulary::extract_and_normalize). */
static void encode_run(const lt_tokenizer *t, const char *text, size_t len, bool prefix,
                       uint8_t mask, lt_tokens *out) {
    if (len == 0) return;
    char *norm = NULL;
    size_t nlen;
    if (t->nfc && lt_tok_nfc(text, len, &norm, &nlen)) text = norm, len = nlen;
    if (t->kind == TOK_KIND_SPM) {
        if (t->prefix_mode != TOK_PREFIX_EVERY_RUN && text[0] == ' ') prefix = false;
        lt_tok_spm_encode(t, text, len, prefix && t->add_space_prefix, mask, out);
    } else if (t->byte_prefix_space && text[0] != ' ') {
        char *s = lt_xmalloc(len + 1);
        s[0] = ' ';
        memcpy(s + 1, text, len);
        lt_tok_bpe_encode(t, s, len + 1, mask, out);
        free(s);
    } else {
        lt_tok_bpe_encode(t, text, len, mask, out);
    }
    free(norm);
}

/* Longest special token starting at s[0..n) (only USER_DEFINED ones when user_only), or -1. */
static int32_t match_special(const lt_tokenizer *t, const char *s, size_t n, bool user_only) {
    unsigned char c = (unsigned char)s[0];
    for (uint32_t k = t->special_start[c]; k < t->special_start[c + 1]; k++) {
        int32_t id = t->special_ids[k];
        uint32_t l = t->tok_len[id];
        if (user_only && t->types[id] != TOK_USER_DEFINED) continue;
        if (l <= n && memcmp(lt_tok_text(t, id), s, l) == 0) return id;
    }
    return -1;
}

/* The next special token in text[i, len) as the encoder splits on it: its id (-1 when none) and
 * *at, its start (len when none). Without parse_special, user-defined (non-special added) tokens
 * still split the text: llama.cpp tokenizer_st_partition, HF tokenizers' AddedVocabulary. */
static int32_t next_special(const lt_tokenizer *t, const char *text, size_t len, size_t i,
                            bool parse_special, size_t *at) {
    if (parse_special ? t->special_start[256] != 0 : t->n_user_defined != 0)
        for (; i < len; i++) {
            unsigned char c = (unsigned char)text[i];
            if (t->special_start[c] == t->special_start[c + 1]) continue;
            int32_t id = match_special(t, text + i, len - i, !parse_special);
            if (id >= 0) {
                *at = i;
                return id;
            }
        }
    *at = len;
    return -1;
}

void lt_tok_encode_ex(const lt_tokenizer *t, const char *text, size_t len, bool parse_special,
                      uint8_t mask, bool at_start, lt_tokens *out) {
    if (!text || len == 0) return;
    bool prefix = at_start;
    for (size_t run = 0, at; run < len;) {
        int32_t id = next_special(t, text, len, run, parse_special, &at);
        if (at > run) encode_run(t, text + run, at - run, prefix, mask, out);
        if (id < 0) break;
        lt_tokens_push(out, id, mask);
        /* llama.cpp: a text run after a special token gets the space prefix again; HF Metaspace
         * prepend_scheme "first" gives it to the start of the input only */
        prefix = t->prefix_mode != TOK_PREFIX_META_FIRST;
        run = at + t->tok_len[id];
    }
}

char *lt_tokenizer_normalized(const lt_tokenizer *t, const char *text, size_t len,
                              bool parse_special, size_t *out_len) {
    if (!t->nfc) return NULL;
    size_t cap = len + 16, n = 0;
    char *buf = lt_xmalloc(cap);
    for (size_t run = 0, at; run <= len;) {
        int32_t id = next_special(t, text, len, run, parse_special, &at);
        char *norm = NULL;
        const char *piece = text + run;
        size_t pn = at - run, sl = id >= 0 ? t->tok_len[id] : 0;
        if (lt_tok_nfc(piece, pn, &norm, &pn)) piece = norm;
        if (n + pn + sl + 1 > cap) buf = lt_xrealloc(buf, cap = (n + pn + sl + 1) * 2);
        memcpy(buf + n, piece, pn);
        n += pn;
        free(norm);
        if (id < 0) break;
        memcpy(buf + n, text + at, sl);
        n += sl;
        run = at + sl;
    }
    buf[n] = 0;
    *out_len = n;
    return buf;
}

void lt_tokenizer_encode(const lt_tokenizer *t, const char *text, size_t len, bool parse_special,
                         uint8_t mask, lt_tokens *out) {
    lt_tok_encode_ex(t, text, len, parse_special, mask, true, out);
}

/* ---- decoding ----------------------------------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decode a UTF-8 code point at s (n bytes left); returns its length, *cp = -1 when invalid. */
static size_t utf8_next(const unsigned char *s, size_t n, int32_t *cp) {
    unsigned char c = s[0];
    size_t l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (l == 0 || l > n) {
        *cp = -1;
        return 1;
    }
    int32_t v = l == 1 ? c : l == 2 ? (c & 0x1F) : l == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < l; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (s[k] & 0x3F);
    }
    *cp = v;
    return l;
}

static size_t emit(char *buf, size_t cap, size_t n, const char *src, size_t k) {
    if (n >= cap) return n;
    if (k > cap - n) k = cap - n;
    memcpy(buf + n, src, k);
    return n + k;
}

static size_t piece_impl(const lt_tokenizer *t, int32_t prev, int32_t id, bool special, char *buf,
                         size_t cap) {
    if (id < 0 || id >= t->n_vocab) return 0;
    const char *s = lt_tok_text(t, id);
    size_t len = t->tok_len[id];
    int32_t type = t->types[id];
    size_t n = 0;
    if (type == TOK_CONTROL) return special ? emit(buf, cap, 0, s, len) : 0;
    if (type == TOK_USER_DEFINED) return emit(buf, cap, 0, s, len);
    if (t->kind == TOK_KIND_SPM) {
        if (type == TOK_UNKNOWN) return emit(buf, cap, 0, "\xe2\x96\x85", 3); /* llama.cpp: U+2585 */
        if (type == TOK_BYTE && len == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' &&
            hexval(s[3]) >= 0 && hexval(s[4]) >= 0) {
            char b = (char)(hexval(s[3]) * 16 + hexval(s[4]));
            return emit(buf, cap, 0, &b, 1);
        }
        /* the dummy prefix the encoder put before a run of text: at the start (and after the
         * BOS lathe adds), and where every run gets one (llama.cpp, HF's Prepend normalizer)
         * after each special or user-defined token that ended the previous run */
        bool after_special = prev >= 0 && prev < t->n_vocab &&
                             (t->types[prev] == TOK_CONTROL || t->types[prev] == TOK_USER_DEFINED);
        bool strip = t->add_space_prefix &&
                     (prev < 0 || prev == t->bos ||
                      (after_special && t->prefix_mode == TOK_PREFIX_EVERY_RUN));
        for (size_t i = 0; i < len;) {
            if (i + 3 <= len && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                if (!(strip && n == 0)) n = emit(buf, cap, n, " ", 1);
                strip = false;
                i += 3;
            } else {
                n = emit(buf, cap, n, s + i, 1);
                strip = false;
                i++;
            }
        }
        return n;
    }
    /* byte-level: each code point of the token stands for one byte (GPT-2 bytes_to_unicode) */
    for (size_t i = 0; i < len;) {
        int32_t cp;
        size_t l = utf8_next((const unsigned char *)s + i, len - i, &cp);
        if (cp >= 0 && cp < 324 && t->cp_to_byte[cp] >= 0) {
            char b = (char)t->cp_to_byte[cp];
            n = emit(buf, cap, n, &b, 1);
        } else {
            n = emit(buf, cap, n, s + i, l); /* not a byte-level char: pass through */
        }
        i += l;
    }
    return n;
}

size_t lt_tokenizer_piece(const lt_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap) {
    return piece_impl(t, prev, id, false, buf, cap);
}

char *lt_tokenizer_decode_special(const lt_tokenizer *t, const int32_t *ids, size_t n,
                                  bool special) {
    size_t cap = 64, len = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < t->n_vocab) cap += t->tok_len[ids[i]] + 3;
    char *out = lt_xmalloc(cap);
    int32_t prev = -1;
    for (size_t i = 0; i < n; i++) {
        len += piece_impl(t, prev, ids[i], special, out + len, cap - 1 - len);
        prev = ids[i];
    }
    out[len] = 0;
    return out;
}

char *lt_tokenizer_decode(const lt_tokenizer *t, const int32_t *ids, size_t n) {
    return lt_tokenizer_decode_special(t, ids, n, false);
}
