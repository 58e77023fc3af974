/*
 * hf_write.c — any lt_tokenizer as a Hugging Face tokenizer directory: tokenizer.json (the
 * `tokenizers` serialization: huggingface/tokenizers tokenizers/src/tokenizer/serialization.rs,
 * models/bpe/serialization.rs), tokenizer_config.json and special_tokens_map.json (transformers
 * tokenization_utils_base.py), each written atomically.
 *
 * Byte-level vocabularies: each pre-tokenizer regex becomes a Split(Regex, Isolated|Removed),
 * "\p{N}" / "\p{N}+" become Digits(individual_digits true / false), GPT-2's regex in last place
 * becomes ByteLevel(use_regex: true) (SmolLM2: Sequence[Digits(true), ByteLevel(true)], as its own
 * tokenizer.json has it); a ByteLevel decoder; merges from the merge table in rank order.
 *
 * SentencePiece-style vocabularies (merge by score): HF BPE merges by rank, so the merges are
 * derived from the scored vocabulary as transformers' GGUF loader does it (transformers 5.x
 * tokenization_utils_base.generate_merges, called from integrations/gguf/
 * gguf_tokenizer_mapping.py): for each token in id order, every split into two tokens at a
 * code-point boundary, ordered by (left id, right id); then all of them stably sorted by the
 * token's score, then the left part's length, then the right part's (code points), all
 * descending. Tokens scored -inf (never formed, see hf_json.c) give no merges. The prefix rule
 * follows the tokenizer: llama.cpp's (a U+2581 before every run, even one starting with a space)
 * is the legacy normalizer Sequence[Prepend("▁"), Replace(" ", "▁")], Metaspace modes are
 * written as Metaspace. Decoder: Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0).
 *
 * Added tokens: every CONTROL, UNKNOWN and USER_DEFINED token and BOS/EOS/pad, exact-match
 * (no strip flags, normalized false); special unless USER_DEFINED.
 */
#include "tok_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define META "\xe2\x96\x81"

static json_t *jtok(const lt_tokenizer *t, int32_t id) {
    return json_stringn(lt_tok_text(t, id), t->tok_len[id]);
}

static json_t *jtok_or_null(const lt_tokenizer *t, int32_t id) {
    return id >= 0 ? jtok(t, id) : json_null();
}

static json_t *replace_obj(const char *from, const char *to) {
    return json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", from,
                     "content", to);
}

/* ---- byte-level pre-tokenizer -------------------------------------------------------------- */

static json_t *byte_level_pre(const lt_tokenizer *t) {
    json_t *seq = json_array();
    bool use_regex = false;
    for (int k = 0; k < t->n_regex; k++) {
        const char *re = t->regex_src[k];
        bool iso = t->regex_split[k] == TOK_SPLIT_ISOLATED;
        if (iso && k == t->n_regex - 1 && strcmp(re, LT_TOK_RE_GPT2) == 0)
            use_regex = true;
        else if (iso && (strcmp(re, "\\p{N}") == 0 || strcmp(re, "\\p{N}+") == 0))
            json_array_append_new(seq, json_pack("{s:s, s:b}", "type", "Digits",
                                                 "individual_digits", strcmp(re, "\\p{N}") == 0));
        else
            json_array_append_new(seq, json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split",
                                                 "pattern", "Regex", re, "behavior",
                                                 iso ? "Isolated" : "Removed", "invert", 0));
    }
    json_array_append_new(seq, json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel",
                                         "add_prefix_space", t->byte_prefix_space, "trim_offsets",
                                         1, "use_regex", use_regex));
    if (json_array_size(seq) == 1) {
        json_t *one = json_incref(json_array_get(seq, 0));
        json_decref(seq);
        return one;
    }
    return json_pack("{s:s, s:o}", "type", "Sequence", "pretokenizers", seq);
}

/* ---- merges derived from scores (SentencePiece-style) -------------------------------------- */

typedef struct {
    float score;
    uint32_t lcp, rcp; /* code points of the parts */
    uint64_t seq;      /* order before the sort (token id, then left id, right id) */
    int32_t l, r;
} derived;

static int cmp_derived(const void *a, const void *b) {
    const derived *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->lcp != y->lcp) return x->lcp > y->lcp ? -1 : 1;
    if (x->rcp != y->rcp) return x->rcp > y->rcp ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static int cmp_local(const void *a, const void *b) {
    const derived *x = a, *y = b;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return x->r < y->r ? -1 : (x->r > y->r);
}

static uint32_t count_cp(const char *s, size_t n) {
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* Merges as [2 * count] ids (left, right) in rank order; returns count. */
static size_t derive_merges(const lt_tokenizer *t, int32_t **pairs) {
    size_t cap = 1024, n = 0;
    derived *d = lt_xmalloc(cap * sizeof *d);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        float sc = t->scores[id];
        if (isinf(sc) && sc < 0) continue;
        const char *s = lt_tok_text(t, id);
        uint32_t len = t->tok_len[id];
        size_t first = n;
        for (uint32_t k = 1; k < len; k++) {
            if (((unsigned char)s[k] & 0xC0) == 0x80) continue; /* code-point boundaries only */
            int32_t l = lt_tok_lookup(t, s, k), r = lt_tok_lookup(t, s + k, len - k);
            if (l < 0 || r < 0) continue;
            if (n == cap) d = lt_xrealloc(d, (cap *= 2) * sizeof *d);
            d[n++] = (derived){sc, count_cp(s, k), count_cp(s + k, len - k), 0, l, r};
        }
        qsort(d + first, n - first, sizeof *d, cmp_local);
    }
    for (size_t i = 0; i < n; i++) d[i].seq = i;
    qsort(d, n, sizeof *d, cmp_derived);
    int32_t *p = lt_xmalloc((2 * n + 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[2 * i] = d[i].l;
        p[2 * i + 1] = d[i].r;
    }
    free(d);
    *pairs = p;
    return n;
}

/* ---- the files ----------------------------------------------------------------------------- */

static bool is_added(const lt_tokenizer *t, int32_t id) {
    int32_t ty = t->types[id];
    return ty == TOK_CONTROL || ty == TOK_UNKNOWN || ty == TOK_USER_DEFINED || id == t->bos ||
           id == t->eos || id == t->pad;
}

static json_t *post_processor(const lt_tokenizer *t) {
    bool bos = t->add_bos && t->bos >= 0, eos = t->add_eos && t->eos >= 0;
    if (!bos && !eos) return json_null();
    json_t *single = json_array(), *pair = json_array(), *sp = json_object();
    for (int pass = 0; pass < 2; pass++) {
        json_t *arr = pass ? pair : single;
        for (int seg = 0; seg <= pass; seg++) {
            if (bos)
                json_array_append_new(arr, json_pack("{s:{s:o, s:i}}", "SpecialToken", "id",
                                                     jtok(t, t->bos), "type_id", seg));
            json_array_append_new(arr, json_pack("{s:{s:s, s:i}}", "Sequence", "id",
                                                 seg ? "B" : "A", "type_id", seg));
            if (eos)
                json_array_append_new(arr, json_pack("{s:{s:o, s:i}}", "SpecialToken", "id",
                                                     jtok(t, t->eos), "type_id", seg));
        }
    }
    int32_t ids[2] = {bos ? t->bos : -1, eos ? t->eos : -1};
    for (int k = 0; k < 2; k++) {
        if (ids[k] < 0) continue;
        json_t *name = jtok(t, ids[k]);
        json_object_set_new(sp, json_string_value(name),
                            json_pack("{s:O, s:[i], s:[O]}", "id", name, "ids", ids[k], "tokens",
                                      name));
        json_decref(name);
    }
    return json_pack("{s:s, s:o, s:o, s:o}", "type", "TemplateProcessing", "single", single,
                     "pair", pair, "special_tokens", sp);
}

static lt_status dump(json_t *j, const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    if (!s) return lt_error_set(LT_ERR_RUNTIME, "%s: JSON serialization failed", path);
    size_t n = strlen(s);
    s[n] = 0;
    char *withnl = lt_xmalloc(n + 2);
    memcpy(withnl, s, n);
    withnl[n] = '\n';
    free(s);
    lt_status st = lt_write_file_atomic(path, withnl, n + 1);
    free(withnl);
    return st;
}

lt_status lt_tokenizer_write_hf(const lt_tokenizer *t, const char *dir) {
    lt_status st = lt_mkdir_p(dir);
    if (st) return st;
    bool spm = t->kind == TOK_KIND_SPM;

    /* vocab (every id) and added tokens; JSON needs valid UTF-8 and distinct keys */
    json_t *vocab = json_object(), *added = json_array();
    for (int32_t id = 0; id < t->n_vocab; id++) {
        json_t *s = jtok(t, id);
        if (!s || lt_tok_lookup(t, lt_tok_text(t, id), t->tok_len[id]) != id) {
            json_decref(s);
            json_decref(vocab);
            json_decref(added);
            return lt_error_set(LT_ERR_MODEL,
                                "%s/tokenizer.json: token %d (\"%.40s\") is %s; tokenizer.json "
                                "cannot hold it (vocabulary keys are distinct UTF-8 strings)",
                                dir, id, lt_tok_text(t, id),
                                s ? "a duplicate of an earlier token" : "not valid UTF-8");
        }
        json_object_setn_new(vocab, lt_tok_text(t, id), t->tok_len[id], json_integer(id));
        if (is_added(t, id))
            json_array_append_new(
                added, json_pack("{s:i, s:o, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", s,
                                 "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                                 "special", t->types[id] != TOK_USER_DEFINED));
        else
            json_decref(s);
    }

    int32_t *pairs;
    size_t np = spm ? derive_merges(t, &pairs) : lt_tok_bpe_merge_pairs(t, &pairs);
    /* "a b" strings (tokenizers' legacy form, read by every version) unless a part holds a
     * space; then [a, b] pairs (tokenizers >= 0.20) */
    bool tuples = false;
    for (size_t i = 0; i < 2 * np && !tuples; i++)
        tuples = memchr(lt_tok_text(t, pairs[i]), ' ', t->tok_len[pairs[i]]) != NULL;
    json_t *merges = json_array();
    for (size_t i = 0; i < np; i++) {
        int32_t l = pairs[2 * i], r = pairs[2 * i + 1];
        if (tuples) {
            json_array_append_new(merges, json_pack("[o, o]", jtok(t, l), jtok(t, r)));
        } else {
            size_t ll = t->tok_len[l], rl = t->tok_len[r];
            char *s = lt_xmalloc(ll + rl + 2);
            memcpy(s, lt_tok_text(t, l), ll);
            s[ll] = ' ';
            memcpy(s + ll + 1, lt_tok_text(t, r), rl);
            json_array_append_new(merges, json_stringn(s, ll + rl + 1));
            free(s);
        }
    }
    free(pairs);

    bool byte_fallback = false;
    for (int b = 0; b < 256 && spm; b++) byte_fallback |= t->byte_ids[b] >= 0;
    json_t *model = json_pack(
        "{s:s, s:n, s:o, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
        "unk_token", spm ? jtok_or_null(t, t->unk) : json_null(), "continuing_subword_prefix",
        "end_of_word_suffix", "fuse_unk", spm, "byte_fallback", byte_fallback, "ignore_merges",
        !spm && t->ignore_merges, "vocab", vocab, "merges", merges);

    json_t *normalizer, *pre, *decoder;
    if (spm) {
        if (t->prefix_mode == TOK_PREFIX_EVERY_RUN) {
            pre = json_null();
            normalizer = t->add_space_prefix
                             ? json_pack("{s:s, s:[{s:s, s:s}, o]}", "type", "Sequence",
                                         "normalizers", "type", "Prepend", "prepend", META,
                                         replace_obj(" ", META))
                             : replace_obj(" ", META);
        } else {
            normalizer = json_null();
            const char *scheme = !t->add_space_prefix                         ? "never"
                                 : t->prefix_mode == TOK_PREFIX_META_FIRST ? "first"
                                                                            : "always";
            pre = json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement", META,
                            "prepend_scheme", scheme, "split", 0);
        }
        json_t *dec = json_array();
        json_array_append_new(dec, replace_obj(META, " "));
        json_array_append_new(dec, json_pack("{s:s}", "type", "ByteFallback"));
        json_array_append_new(dec, json_pack("{s:s}", "type", "Fuse"));
        if (t->add_space_prefix)
            json_array_append_new(dec, json_pack("{s:s, s:s, s:i, s:i}", "type", "Strip",
                                                 "content", " ", "start", 1, "stop", 0));
        decoder = json_pack("{s:s, s:o}", "type", "Sequence", "decoders", dec);
    } else {
        normalizer = json_null();
        pre = byte_level_pre(t);
        decoder = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1,
                            "trim_offsets", 1, "use_regex", 1);
    }
    if (t->nfc) { /* first; it commutes with Prepend/Replace, as U+2581 composes with nothing */
        json_t *nfc = json_pack("{s:s}", "type", "NFC");
        if (json_is_null(normalizer)) {
            normalizer = nfc;
        } else {
            normalizer = json_pack("{s:s, s:[o, o]}", "type", "Sequence", "normalizers", nfc,
                                   normalizer);
        }
    }
    json_t *root = json_pack("{s:s, s:n, s:n, s:o, s:o, s:o, s:o, s:o, s:o}", "version", "1.0",
                             "truncation", "padding", "added_tokens", added, "normalizer",
                             normalizer, "pre_tokenizer", pre, "post_processor",
                             post_processor(t), "decoder", decoder, "model", model);
    if ((st = dump(root, dir, "tokenizer.json"))) return st;

    int32_t pad = t->pad;
    json_t *map = json_pack("{s:o, s:o, s:o, s:o}", "bos_token", jtok_or_null(t, t->bos),
                            "eos_token", jtok_or_null(t, t->eos), "pad_token",
                            jtok_or_null(t, pad), "unk_token", jtok_or_null(t, t->unk));
    json_t *cfg = json_pack("{s:b, s:b, s:O, s:O, s:O, s:O, s:b, s:s}", "add_bos_token",
                            t->add_bos, "add_eos_token", t->add_eos, "bos_token",
                            json_object_get(map, "bos_token"), "eos_token",
                            json_object_get(map, "eos_token"), "pad_token",
                            json_object_get(map, "pad_token"), "unk_token",
                            json_object_get(map, "unk_token"), "clean_up_tokenization_spaces", 0,
                            "tokenizer_class", "PreTrainedTokenizerFast");
    if (t->chat_template) json_object_set_new(cfg, "chat_template", json_string(t->chat_template));
    if ((st = dump(cfg, dir, "tokenizer_config.json"))) {
        json_decref(map);
        return st;
    }
    return dump(map, dir, "special_tokens_map.json");
}
