/*
 * hf_json.c — a tokenizer from a Hugging Face directory: tokenizer.json (the `tokenizers`
 * serialization) plus tokenizer_config.json, mapped onto lathe's two engines.
 *
 * Schema: huggingface/tokenizers tokenizers/src/tokenizer/serialization.rs (top level:
 * added_tokens, normalizer, pre_tokenizer, post_processor, decoder, model),
 * models/bpe/serialization.rs (vocab {token: id}, merges as "a b" strings or [a, b] pairs,
 * byte_fallback, ignore_merges, unk_token), normalizers/ pre_tokenizers/ decoders/ (each an object
 * with "type"). tokenizer_config.json: transformers tokenization_utils_base.py (bos_token etc.
 * as a string or an AddedToken object {"content": ...}, add_bos_token, add_eos_token,
 * chat_template as a string or a list of {"name", "template"}; chat_template.jinja overrides it).
 *
 * Mapping:
 *  - A ByteLevel pre-tokenizer makes a byte-level BPE (bpe.c): each Split(Regex|String, Isolated
 *    or Removed) before it adds a regex, Digits(individual_digits) adds \p{N} or \p{N}+,
 *    ByteLevel(use_regex) adds GPT-2's regex, add_prefix_space is kept per run.
 *  - A Metaspace pre-tokenizer, or a normalizer that replaces ' ' by U+2581 (Llama 2's legacy
 *    Sequence[Prepend("▁"), Replace(" ", "▁")]), makes a SentencePiece-style BPE (spm.c) with
 *    byte fallback. HF BPE merges by rank; spm.c merges by score, so each token gets the score
 *    -(rank of the first merge producing it), and -inf when no merge produces it (never formed).
 *    The two agree except where one token is produced by several merges whose pairs compete.
 *  - An NFC normalizer (Qwen2's) sets the tokenizer's nfc: each run of text between added tokens
 *    is NFC-normalized before pre-tokenization (nfc.c), as `tokenizers` does.
 *  - Added tokens: special -> CONTROL (matched only with parse_special), others -> USER_DEFINED.
 *    All are matched in the text as given, which is what `tokenizers` does for "normalized":
 *    false; a "normalized": true token is matched in the normalized text, its content normalized
 *    too, so where the normalizer could change its matches (NFC, Prepend, or Replace when the
 *    content holds a space or U+2581) it is refused.
 * Anything else (other model types, normalizers, pre-tokenizers, decoders, added-token flags
 * lstrip/rstrip/single_word) is LT_ERR_MODEL naming the file, the JSON path and a hint.
 */
#include "tok_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define META "\xe2\x96\x81" /* U+2581, SentencePiece's space */
#define HF_STR_(x) #x
#define HF_STR(x) HF_STR_(x)

/* Llama 3, Qwen2 and Qwen3.5 patterns as tokenizer.json writes them start with the contractions
 * case-insensitively, (?i:'s|...); llama.cpp (and lathe's table, bpe.c) spell the cases out.
 * Read as lathe's spelling so that the pattern list keeps its llama.cpp name ("llama3", "qwen2",
 * "qwen35") when written as GGUF. The only text this changes is an apostrophe before U+017F
 * (long s, which case-folds to 's'), which `tokenizers` would keep with the apostrophe. */
static const char *const HF_CONTRACTIONS = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
static const char *const LATHE_CONTRACTIONS =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

typedef struct {
    const char *file; /* for messages */
    /* normalizer */
    bool prepend_meta, replace_space, nfc;
    /* pre-tokenizer */
    bool byte_level, metaspace, byte_prefix_space;
    tok_prefix meta_mode;
    bool meta_prepend;
    int n_re;
    char *re[TOK_MAX_REGEX];
    tok_split how[TOK_MAX_REGEX];
} hf_pipe;

static lt_status bad(const char *file, const char *jpath, const char *what, const char *hint) {
    return lt_error_set(LT_ERR_MODEL, "%s: %s: %s; %s", file, jpath, what, hint);
}

static const char *jstr(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool jbool(json_t *o, const char *key, bool dflt) {
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* ---- normalizer ---------------------------------------------------------------------------- */

static lt_status read_normalizer(hf_pipe *p, json_t *n, const char *jpath) {
    if (!n || json_is_null(n)) return LT_OK;
    const char *type = jstr(n, "type");
    char sub[256];
    if (!type) return bad(p->file, jpath, "normalizer without a \"type\"", "the file is malformed");
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(n, "normalizers");
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) {
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", jpath, i);
            lt_status st = read_normalizer(p, e, sub);
            if (st) return st;
        }
        return LT_OK;
    }
    if (strcmp(type, "NFC") == 0) {
        p->nfc = true;
        return LT_OK;
    }
    if (strcmp(type, "Prepend") == 0) {
        const char *c = jstr(n, "prepend");
        if (!c || strcmp(c, META) != 0)
            return bad(p->file, jpath, "Prepend of anything but \"\xe2\x96\x81\" is not supported",
                       "lathe supports SentencePiece-style prefixes only");
        p->prepend_meta = true;
        return LT_OK;
    }
    if (strcmp(type, "Replace") == 0) {
        json_t *pat = json_object_get(n, "pattern");
        const char *ps = json_is_object(pat) ? jstr(pat, "String") : NULL;
        const char *c = jstr(n, "content");
        if (!ps || strcmp(ps, " ") != 0 || !c || strcmp(c, META) != 0)
            return bad(p->file, jpath,
                       "Replace other than {\"String\": \" \"} -> \"\xe2\x96\x81\" is not supported",
                       "lathe supports SentencePiece-style space replacement only");
        p->replace_space = true;
        return LT_OK;
    }
    snprintf(sub, sizeof sub, "normalizer type \"%s\" is not supported", type);
    return bad(p->file, jpath, sub, "supported: Sequence, Prepend, Replace, NFC");
}

/* ---- pre-tokenizer ------------------------------------------------------------------------- */

static lt_status add_re(hf_pipe *p, const char *jpath, const char *re, tok_split how) {
    if (p->byte_level)
        return bad(p->file, jpath, "a split after ByteLevel is not supported",
                   "put Split/Digits before ByteLevel");
    if (p->n_re == TOK_MAX_REGEX)
        return bad(p->file, jpath, "too many regex pre-tokenizers",
                   "lathe supports at most " HF_STR(TOK_MAX_REGEX));
    size_t hl = strlen(HF_CONTRACTIONS);
    if (strncmp(re, HF_CONTRACTIONS, hl) == 0) {
        size_t ll = strlen(LATHE_CONTRACTIONS), rl = strlen(re + hl);
        char *r = lt_xmalloc(ll + rl + 1);
        memcpy(r, LATHE_CONTRACTIONS, ll);
        memcpy(r + ll, re + hl, rl + 1);
        p->re[p->n_re] = r;
    } else {
        p->re[p->n_re] = lt_xstrdup(re);
    }
    p->how[p->n_re++] = how;
    return LT_OK;
}

/* A String pattern as a regex matching it literally (PCRE2: a backslash before any
 * non-alphanumeric ASCII character makes it literal). */
static char *escape_literal(const char *s) {
    char *o = lt_xmalloc(strlen(s) * 2 + 1), *q = o;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                          (c >= 'A' && c <= 'Z') || c == ' '))
            *q++ = '\\';
        *q++ = *s;
    }
    *q = 0;
    return o;
}

static lt_status read_pre(hf_pipe *p, json_t *n, const char *jpath) {
    if (!n || json_is_null(n)) return LT_OK;
    const char *type = jstr(n, "type");
    char sub[256];
    if (!type) return bad(p->file, jpath, "pre_tokenizer without a \"type\"", "the file is malformed");
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(n, "pretokenizers");
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", jpath, i);
            lt_status st = read_pre(p, e, sub);
            if (st) return st;
        }
        return LT_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const char *beh = jstr(n, "behavior");
        tok_split how;
        if (beh && strcmp(beh, "Isolated") == 0)
            how = TOK_SPLIT_ISOLATED;
        else if (beh && strcmp(beh, "Removed") == 0)
            how = TOK_SPLIT_REMOVED;
        else
            return bad(p->file, jpath, "Split behavior other than Isolated or Removed",
                       "Contiguous / MergedWithPrevious / MergedWithNext are not supported");
        if (jbool(n, "invert", false))
            return bad(p->file, jpath, "Split with invert: true is not supported",
                       "rewrite the pattern to match the pieces");
        json_t *pat = json_object_get(n, "pattern");
        const char *re = json_is_object(pat) ? jstr(pat, "Regex") : NULL;
        const char *lit = json_is_object(pat) ? jstr(pat, "String") : NULL;
        if (re) return add_re(p, jpath, re, how);
        if (lit) {
            char *e = escape_literal(lit);
            lt_status st = add_re(p, jpath, e, how);
            free(e);
            return st;
        }
        return bad(p->file, jpath, "Split pattern is neither {\"Regex\"} nor {\"String\"}",
                   "the file is malformed");
    }
    if (strcmp(type, "Digits") == 0)
        return add_re(p, jpath, jbool(n, "individual_digits", false) ? "\\p{N}" : "\\p{N}+",
                      TOK_SPLIT_ISOLATED);
    if (strcmp(type, "ByteLevel") == 0) {
        if (jbool(n, "use_regex", true)) {
            lt_status st = add_re(p, jpath, LT_TOK_RE_GPT2, TOK_SPLIT_ISOLATED);
            if (st) return st;
        }
        p->byte_level = true;
        p->byte_prefix_space = jbool(n, "add_prefix_space", false);
        return LT_OK;
    }
    if (strcmp(type, "Metaspace") == 0) {
        const char *r = jstr(n, "replacement");
        if (r && strcmp(r, META) != 0)
            return bad(p->file, jpath, "Metaspace replacement other than \"\xe2\x96\x81\"",
                       "lathe supports SentencePiece's U+2581 only");
        if (jbool(n, "split", true))
            return bad(p->file, jpath, "Metaspace with split: true is not supported",
                       "SentencePiece-style models use split: false");
        const char *ps = jstr(n, "prepend_scheme");
        bool legacy = jbool(n, "add_prefix_space", true);
        p->metaspace = true;
        if (ps ? strcmp(ps, "always") == 0 : legacy) {
            p->meta_prepend = true;
            p->meta_mode = TOK_PREFIX_META_ALWAYS;
        } else if (ps && strcmp(ps, "first") == 0) {
            p->meta_prepend = true;
            p->meta_mode = TOK_PREFIX_META_FIRST;
        } else if (!ps || strcmp(ps, "never") == 0) {
            p->meta_prepend = false;
        } else {
            return bad(p->file, jpath, "unknown Metaspace prepend_scheme",
                       "expected always, first or never");
        }
        return LT_OK;
    }
    snprintf(sub, sizeof sub, "pre_tokenizer type \"%s\" is not supported", type);
    return bad(p->file, jpath, sub, "supported: Sequence, Split, Digits, ByteLevel, Metaspace");
}

static lt_status check_decoder(const char *file, json_t *n, const char *jpath) {
    if (!n || json_is_null(n)) return LT_OK;
    static const char *const ok[] = {"ByteLevel", "Metaspace", "Replace", "ByteFallback", "Fuse",
                                     "Strip"};
    const char *type = jstr(n, "type");
    char sub[256];
    if (!type) return bad(file, jpath, "decoder without a \"type\"", "the file is malformed");
    if (strcmp(type, "Sequence") == 0) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(n, "decoders"), i, e) {
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", jpath, i);
            lt_status st = check_decoder(file, e, sub);
            if (st) return st;
        }
        return LT_OK;
    }
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(type, ok[i]) == 0) return LT_OK;
    snprintf(sub, sizeof sub, "decoder type \"%s\" is not supported", type);
    return bad(file, jpath, sub,
               "supported: Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip");
}

/* ---- tokenizer_config.json ----------------------------------------------------------------- */

/* A special-token entry: a string, an AddedToken object ({"content": ...}) or null. */
static const char *token_content(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return jstr(v, "content");
    return NULL;
}

static lt_status config_token(lt_tokenizer *t, json_t *cfg, const char *key, const char *file,
                              int32_t *out) {
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) return LT_OK;
    const char *c = token_content(v);
    if (!c)
        return lt_error_set(LT_ERR_MODEL,
                            "%s: %s is neither a string nor an AddedToken object; expected "
                            "\"<s>\" or {\"content\": \"<s>\", ...}",
                            file, key);
    int32_t id = lt_tokenizer_find(t, c);
    if (id < 0)
        return lt_error_set(LT_ERR_MODEL,
                            "%s: %s = \"%.60s\" is not a token of tokenizer.json; the two files "
                            "do not belong together",
                            file, key, c);
    *out = id;
    return LT_OK;
}

/* The "single" template of the post-processor: a TemplateProcessing's own, or that of the first
 * TemplateProcessing in a Sequence's "processors" (Llama 3: Sequence[ByteLevel,
 * TemplateProcessing]); NULL when there is none. */
static json_t *template_single(json_t *post) {
    if (!json_is_object(post)) return NULL;
    json_t *single = json_object_get(post, "single");
    if (single) return single;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(post, "processors"), i, e) {
        if ((single = template_single(e))) return single;
    }
    return NULL;
}

static lt_status read_config(lt_tokenizer *t, const char *dir, json_t *post) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_error_t je;
    /* numbers as doubles: transformers writes model_max_length = int(1e30) as the integer
     * 1000000000000000019884624838656 (Llama 3, and every directory its save_pretrained writes
     * without a limit), which jansson refuses as an integer; no integer is read here */
    json_t *cfg = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!cfg) {
        if (access(path, F_OK) == 0)
            return lt_error_set(LT_ERR_MODEL, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        cfg = json_object(); /* optional: bos/eos then stay unset */
    }
    lt_status st;
    if ((st = config_token(t, cfg, "bos_token", path, &t->bos)) ||
        (st = config_token(t, cfg, "eos_token", path, &t->eos)) ||
        (st = config_token(t, cfg, "pad_token", path, &t->pad)))
        goto done;
    /* add_bos_token: explicit, else whether the post-processor's single template starts with
     * the BOS token (Llama 3's TemplateProcessing, inside a Sequence) */
    json_t *ab = json_object_get(cfg, "add_bos_token");
    if (json_is_boolean(ab)) {
        t->add_bos = json_is_true(ab);
    } else if (t->bos >= 0) {
        json_t *first = json_array_get(template_single(post), 0);
        json_t *sp = json_object_get(first, "SpecialToken");
        const char *id = sp ? jstr(sp, "id") : NULL;
        t->add_bos = id && strcmp(id, lt_tok_text(t, t->bos)) == 0;
    }
    if (t->bos < 0) t->add_bos = false;
    t->add_eos = jbool(cfg, "add_eos_token", false);

    json_t *ct = json_object_get(cfg, "chat_template");
    const char *tpl = NULL;
    if (json_is_string(ct)) {
        tpl = json_string_value(ct);
    } else if (json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            const char *name = jstr(e, "name");
            if (name && strcmp(name, "default") == 0) tpl = jstr(e, "template");
        }
        if (!tpl) {
            st = lt_error_set(LT_ERR_MODEL,
                              "%s: chat_template is a list without a template named \"default\"; "
                              "pass --template NAME to choose a layout",
                              path);
            goto done;
        }
    } else if (ct && !json_is_null(ct)) {
        st = lt_error_set(LT_ERR_MODEL, "%s: chat_template is neither a string nor a list", path);
        goto done;
    }
    /* chat_template.jinja beside the config takes priority over the config's entry, as in
     * transformers' from_pretrained (v5 saves templates only there) */
    char *file_tpl = NULL;
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    if (access(path, F_OK) == 0) {
        size_t n;
        if ((st = lt_read_file(path, &file_tpl, &n))) goto done;
        if (strlen(file_tpl) != n) {
            free(file_tpl);
            st = lt_error_set(LT_ERR_MODEL, "%s: contains a NUL byte; a chat template is text", path);
            goto done;
        }
        tpl = file_tpl;
    }
    if (tpl) {
        t->chat_template = lt_xstrdup(tpl);
        t->default_system = lt_template_default_system(tpl);
    }
    free(file_tpl);
    st = LT_OK;
done:
    json_decref(cfg);
    return st;
}

/* ---- the whole file ------------------------------------------------------------------------ */

static lt_status merge_pair(json_t *m, const char *file, size_t i, const char **l, size_t *ll,
                            const char **r, size_t *rl) {
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *l = json_string_value(json_array_get(m, 0));
        *ll = json_string_length(json_array_get(m, 0));
        *r = json_string_value(json_array_get(m, 1));
        *rl = json_string_length(json_array_get(m, 1));
        return LT_OK;
    }
    if (json_is_string(m)) {
        /* tokenizers' legacy form: exactly one space separates the parts */
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (sp && !strchr(sp + 1, ' ')) {
            *l = s;
            *ll = (size_t)(sp - s);
            *r = sp + 1;
            *rl = strlen(sp + 1);
            return LT_OK;
        }
    }
    return lt_error_set(LT_ERR_MODEL,
                        "%s: model.merges[%zu] is neither \"left right\" nor [\"left\", \"right\"]",
                        file, i);
}

lt_status lt_tokenizer_from_hf_dir(lt_tokenizer **out, const char *dir) {
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        if (access(path, R_OK) != 0)
            return lt_error_set(LT_ERR_MODEL,
                                "%s: cannot read (%s); a Hugging Face model directory needs its "
                                "tokenizer.json",
                                path, je.text);
        return lt_error_set(LT_ERR_MODEL, "%s:%d:%d: not valid JSON: %s", path, je.line,
                            je.column, je.text);
    }
    lt_status st = LT_OK;
    lt_tokenizer *t = NULL;
    hf_pipe p = {.file = path};
    json_t *model = json_object_get(root, "model");
    const char *mtype = model ? jstr(model, "type") : NULL;
    if (!json_is_object(model)) {
        st = bad(path, "model", "missing", "the file is not a tokenizers tokenizer.json");
        goto done;
    }
    if (mtype ? strcmp(mtype, "BPE") != 0 : !json_object_get(model, "merges")) {
        st = lt_error_set(LT_ERR_MODEL,
                          "%s: model.type = \"%s\" is not supported; lathe reads BPE models only "
                          "(byte-level as in Llama 3 / Qwen2 / SmolLM, or SentencePiece-style "
                          "with byte fallback as in Llama 2 / Mistral)",
                          path, mtype ? mtype : "(none)");
        goto done;
    }
    json_t *v;
    if (((v = json_object_get(model, "dropout")) && !json_is_null(v) && json_number_value(v) != 0) ||
        ((v = json_object_get(model, "continuing_subword_prefix")) && json_is_string(v) &&
         json_string_length(v) > 0) ||
        ((v = json_object_get(model, "end_of_word_suffix")) && json_is_string(v) &&
         json_string_length(v) > 0)) {
        st = bad(path, "model", "dropout / continuing_subword_prefix / end_of_word_suffix are set",
                 "lathe supports plain BPE (these must be null)");
        goto done;
    }
    bool byte_fallback = jbool(model, "byte_fallback", false);

    if ((st = read_normalizer(&p, json_object_get(root, "normalizer"), "normalizer")) ||
        (st = read_pre(&p, json_object_get(root, "pre_tokenizer"), "pre_tokenizer")) ||
        (st = check_decoder(path, json_object_get(root, "decoder"), "decoder")))
        goto done;
    tok_kind kind;
    if (p.byte_level) {
        if (byte_fallback || p.metaspace || p.replace_space || p.prepend_meta) {
            st = bad(path, "pre_tokenizer", "ByteLevel mixed with byte_fallback or \xe2\x96\x81 handling",
                     "a byte-level model needs neither");
            goto done;
        }
        kind = TOK_KIND_BPE;
    } else if (p.metaspace || p.replace_space) {
        if (p.n_re) {
            st = bad(path, "pre_tokenizer", "Split/Digits with a SentencePiece-style model",
                     "lathe's SentencePiece-style engine does not pre-split");
            goto done;
        }
        kind = TOK_KIND_SPM;
    } else {
        st = bad(path, "pre_tokenizer",
                 "neither ByteLevel nor Metaspace (or a \" \" -> \"\xe2\x96\x81\" normalizer)",
                 "lathe supports byte-level BPE and SentencePiece-style BPE");
        goto done;
    }

    /* vocabulary: model.vocab plus added_tokens (ids may lie beyond the model's vocab) */
    json_t *vocab = json_object_get(model, "vocab"), *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab)) {
        st = bad(path, "model.vocab", "missing or not an object", "the file is malformed");
        goto done;
    }
    int64_t n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= INT32_MAX / 2) {
            st = lt_error_set(LT_ERR_MODEL, "%s: model.vocab[\"%.40s\"] is not a valid id", path,
                              key);
            goto done;
        }
        if (json_integer_value(val) + 1 > n) n = json_integer_value(val) + 1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(added, i, e) {
        json_t *id = json_object_get(e, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || !jstr(e, "content") ||
            json_integer_value(id) >= INT32_MAX / 2) {
            st = lt_error_set(LT_ERR_MODEL, "%s: added_tokens[%zu] lacks a valid id or content",
                              path, i);
            goto done;
        }
        if (jbool(e, "lstrip", false) || jbool(e, "rstrip", false) ||
            jbool(e, "single_word", false)) {
            st = lt_error_set(LT_ERR_MODEL,
                              "%s: added_tokens[%zu] (\"%.40s\") sets lstrip, rstrip or "
                              "single_word; lathe matches added tokens exactly only",
                              path, i, jstr(e, "content"));
            goto done;
        }
        /* tokenizers' default for "normalized" is !special (AddedToken::from) */
        const char *content = jstr(e, "content");
        bool normalized = jbool(e, "normalized", !jbool(e, "special", false));
        if (normalized && (p.nfc || p.prepend_meta ||
                           (p.replace_space && (strchr(content, ' ') || strstr(content, META))))) {
            st = lt_error_set(LT_ERR_MODEL,
                              "%s: added_tokens[%zu] (\"%.40s\") has \"normalized\": true, so "
                              "tokenizers matches it in the text its normalizer (%s) wrote; lathe "
                              "matches "
                              "added tokens in the text as given (hint: \"normalized\": false, "
                              "as the model's own files have it)",
                              path, i, content, p.nfc ? "NFC" : "Prepend/Replace");
            goto done;
        }
        if (json_integer_value(id) + 1 > n) n = json_integer_value(id) + 1;
    }
    /* contiguous ids 0..n-1 (checked below, naming the first missing id) need n tokens: refuse
     * an id far beyond the token count before allocating tables for it (fuzz finding: a lone id
     * 10^9 asked for 8 GB) */
    size_t n_entries = json_object_size(vocab) + json_array_size(added);
    if ((uint64_t)n > 2 * (uint64_t)n_entries + 1024) {
        st = lt_error_set(LT_ERR_MODEL, "%s: the largest token id is %lld but model.vocab and "
                          "added_tokens hold only %zu tokens; lathe needs contiguous ids 0..N-1 "
                          "(hint: the file is damaged or not a tokenizer.json)", path,
                          (long long)n - 1, n_entries);
        goto done;
    }
    const char **str = lt_xcalloc((size_t)n + 1, sizeof *str);
    size_t *len = lt_xcalloc((size_t)n + 1, sizeof *len);
    int32_t *type = lt_xcalloc((size_t)n + 1, sizeof *type);
    json_object_foreach(vocab, key, val) {
        int64_t id = json_integer_value(val);
        str[id] = key;
        len[id] = strlen(key); /* jansson object keys end at the first NUL */
        type[id] = TOK_NORMAL;
    }
    json_array_foreach(added, i, e) {
        int64_t id = json_integer_value(json_object_get(e, "id"));
        json_t *c = json_object_get(e, "content");
        str[id] = json_string_value(c);
        len[id] = json_string_length(c);
        type[id] = jbool(e, "special", false) ? TOK_CONTROL : TOK_USER_DEFINED;
    }
    size_t total = 0;
    for (int64_t k = 0; k < n; k++) {
        if (!str[k]) {
            st = lt_error_set(LT_ERR_MODEL,
                              "%s: id %lld is in neither model.vocab nor added_tokens; lathe needs "
                              "contiguous ids 0..%lld",
                              path, (long long)k, (long long)n - 1);
            break;
        }
        if (len[k] > 0xFFFF) {
            st = lt_error_set(LT_ERR_MODEL, "%s: token %lld is %zu bytes", path, (long long)k,
                              len[k]);
            break;
        }
        total += len[k] + 1;
    }
    if (st) {
        free(str), free(len), free(type);
        goto done;
    }
    t = lt_xcalloc(1, sizeof *t);
    t->kind = kind;
    t->nfc = p.nfc;
    lt_tok_alloc_vocab(t, (int32_t)n, total);
    size_t off = 0;
    for (int32_t k = 0; k < (int32_t)n; k++) {
        memcpy(t->blob + off, str[k], len[k]);
        t->blob[off + len[k]] = 0;
        t->tok_off[k] = off;
        t->tok_len[k] = (uint32_t)len[k];
        t->types[k] = type[k];
        off += len[k] + 1;
    }
    free(str), free(len), free(type);
    lt_tok_build_map(t);
    t->bos = t->eos = t->pad = t->unk = -1;
    const char *unk = jstr(model, "unk_token");
    if (unk && (t->unk = lt_tokenizer_find(t, unk)) < 0) {
        st = lt_error_set(LT_ERR_MODEL, "%s: model.unk_token \"%.40s\" is not in the vocabulary",
                          path, unk);
        goto done;
    }
    if (t->unk >= 0) t->types[t->unk] = TOK_UNKNOWN;

    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges)) {
        st = bad(path, "model.merges", "missing or not an array", "a BPE model needs its merges");
        goto done;
    }
    size_t nm = json_array_size(merges);
    if (kind == TOK_KIND_BPE) {
        t->pre = lt_xstrdup("");
        t->byte_prefix_space = p.byte_prefix_space;
        t->ignore_merges = jbool(model, "ignore_merges", false);
        lt_tok_bpe_bytes(t);
        for (int k = 0; k < p.n_re; k++) {
            char where[4200];
            snprintf(where, sizeof where, "%s: pre_tokenizer", path);
            if ((st = lt_tok_bpe_add_regex(t, p.re[k], p.how[k], where))) goto done;
        }
        const char *known = lt_tok_bpe_known_pre(t);
        free(t->pre);
        /* a regex list llama.cpp has no name for: "hf" (lt_tokenizer_to_gguf then writes a
         * pre-tokenizer name that lathe's GGUF loader refuses, rather than a wrong one) */
        t->pre = lt_xstrdup(known && !t->byte_prefix_space ? known : "hf");
        lt_tok_bpe_merges_alloc(t, nm);
        json_array_foreach(merges, i, e) {
            const char *l, *r;
            size_t ll, rl;
            if ((st = merge_pair(e, path, i, &l, &ll, &r, &rl))) goto done;
            lt_tok_bpe_add_merge(t, (int32_t)i, l, ll, r, rl);
        }
    } else {
        t->pre = lt_xstrdup("");
        t->add_space_prefix = p.metaspace ? p.meta_prepend : p.prepend_meta;
        t->prefix_mode = p.metaspace ? p.meta_mode : TOK_PREFIX_EVERY_RUN;
        for (int32_t k = 0; k < t->n_vocab; k++) t->scores[k] = -INFINITY;
        char *cat = NULL;
        size_t catcap = 0;
        json_array_foreach(merges, i, e) {
            const char *l, *r;
            size_t ll, rl;
            if ((st = merge_pair(e, path, i, &l, &ll, &r, &rl))) break;
            if (ll + rl > catcap) cat = lt_xrealloc(cat, catcap = (ll + rl) * 2);
            memcpy(cat, l, ll);
            memcpy(cat + ll, r, rl);
            int32_t res = lt_tok_lookup(t, cat, ll + rl);
            if (res >= 0 && isinf(t->scores[res])) t->scores[res] = -(float)i;
        }
        free(cat);
        if (st) goto done;
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_ids[b] = byte_fallback ? lt_tok_lookup(t, name, 6) : -1;
            if (t->byte_ids[b] >= 0 && t->types[t->byte_ids[b]] == TOK_NORMAL)
                t->types[t->byte_ids[b]] = TOK_BYTE;
        }
    }
    if ((st = read_config(t, dir, json_object_get(root, "post_processor")))) goto done;
    lt_tok_finish(t);
    *out = t;
    t = NULL;
done:
    for (int k = 0; k < p.n_re; k++) free(p.re[k]);
    lt_tokenizer_free(t);
    json_decref(root);
    return st;
}
