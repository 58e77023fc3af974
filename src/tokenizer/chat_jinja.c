/*
 * chat_jinja.c — a conversation through the model's own Jinja chat template (src/jinja), as
 * transformers' apply_chat_template renders and tokenizes it: the template's text with the
 * tokenizer's bos_token / eos_token strings, then encoded with special tokens parsed and nothing
 * added (apply_chat_template(tokenize=True) passes add_special_tokens=False).
 *
 * Loss mask: 1 on each assistant turn's content and on the turn's closing control token (the
 * first token after the content, when it is a control token such as <|im_end|>, <|eot_id|>,
 * <end_of_turn> or </s>, possibly after one whitespace token, as Llama 2's " </s>"); 0 on
 * everything else. The content is found in the rendered text in conversation order (verbatim,
 * else stripped of surrounding whitespace, as templates that `| trim` it render it); the whole
 * text is encoded once and each token's byte range in it decides its mask, as transformers'
 * return_assistant_tokens_mask does with character offsets.
 */
#include "tok_internal.h"

#include "../jinja/jinja.h"

#include <stdlib.h>
#include <string.h>

struct lt_chat_jinja {
    const lt_tokenizer *tok;
    lt_jinja_template *tpl;
    json_t *extra; /* bos_token, eos_token */
};

static const char *const ROLE[] = {"system", "user", "assistant", "tool"};

lt_status lt_chat_jinja_open(lt_chat_jinja **out, const lt_tokenizer *t, const char *name) {
    *out = NULL;
    const char *src = lt_tokenizer_chat_template(t);
    if (!src)
        return lt_error_set(LT_ERR_DATA, "%s: the model has no chat template; hint: name one "
                            "with --template", name);
    lt_jinja_template *tpl;
    lt_status st = lt_jinja_parse(&tpl, name, src, strlen(src));
    if (st) return st;
    lt_chat_jinja *c = lt_xcalloc(1, sizeof *c);
    c->tok = t;
    c->tpl = tpl;
    c->extra = json_object();
    const int32_t ids[2] = {lt_tokenizer_bos(t), lt_tokenizer_eos(t)};
    static const char *const keys[2] = {"bos_token", "eos_token"};
    for (int i = 0; i < 2; i++) {
        if (ids[i] < 0) continue;
        char *s = lt_tokenizer_decode_special(t, &ids[i], 1, true);
        json_object_set_new(c->extra, keys[i], json_string(s));
        free(s);
    }
    *out = c;
    return LT_OK;
}

void lt_chat_jinja_free(lt_chat_jinja *c) {
    if (!c) return;
    lt_jinja_free(c->tpl);
    json_decref(c->extra);
    free(c);
}

/* Is token id a control token (one that decodes to nothing without `special`)? */
static bool is_control(const lt_tokenizer *t, int32_t id) {
    char *s = lt_tokenizer_decode_special(t, &id, 1, false);
    bool ctl = s && !*s;
    free(s);
    return ctl;
}

static bool is_space_token(const lt_tokenizer *t, int32_t id) {
    char *s = lt_tokenizer_decode_special(t, &id, 1, false);
    bool sp = s && *s;
    for (const char *p = s; sp && *p; p++) sp = *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r';
    free(s);
    return sp;
}

/* Locate `content` in text at or after *from: verbatim, else stripped. Sets [*s, *e). */
static bool find_content(const char *text, size_t len, size_t from, const char *content,
                         size_t *s, size_t *e) {
    size_t cl = strlen(content);
    const char *c0 = content;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) { /* stripped */
            while (cl && (*c0 == ' ' || *c0 == '\n' || *c0 == '\t' || *c0 == '\r')) c0++, cl--;
            while (cl && (c0[cl - 1] == ' ' || c0[cl - 1] == '\n' || c0[cl - 1] == '\t' ||
                          c0[cl - 1] == '\r'))
                cl--;
        }
        if (cl == 0) return false;
        for (size_t i = from; i + cl <= len; i++)
            if (memcmp(text + i, c0, cl) == 0) {
                *s = i;
                *e = i + cl;
                return true;
            }
    }
    return false;
}

/* Byte length of token id as it appears in the rendered text: a control token's own text (the
 * template wrote it), else its piece (lt_tokenizer_piece, which drops SentencePiece's dummy
 * prefix at the very start, so the lengths add up to the text: decode(encode(x)) == x). */
static size_t text_len(const lt_tokenizer *t, int32_t prev, int32_t id) {
    if (is_control(t, id)) {
        char *s = lt_tokenizer_decode_special(t, &id, 1, true);
        size_t n = s ? strlen(s) : 0;
        free(s);
        return n;
    }
    char buf[512];
    return lt_tokenizer_piece(t, prev, id, buf, sizeof buf);
}

lt_status lt_chat_jinja_render(const lt_chat_jinja *c, const lt_message *msgs, size_t n,
                               bool add_generation_prompt, lt_tokens *out) {
    json_t *jm = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_object();
        json_object_set_new(m, "role", json_string(ROLE[msgs[i].role]));
        json_object_set_new(m, "content", json_string(msgs[i].content ? msgs[i].content : ""));
        json_array_append_new(jm, m);
    }
    json_t *vars = lt_jinja_chat_vars(jm, NULL, NULL, add_generation_prompt, c->extra);
    json_decref(jm);
    if (!vars) return LT_ERR_DATA;
    char *text = NULL;
    size_t len = 0;
    lt_status st = lt_jinja_render(&text, &len, c->tpl, vars, NULL);
    json_decref(vars);
    if (st) return st;

    /* the assistant contents' byte spans [span[2k], span[2k+1]), in conversation order */
    size_t *span = lt_xmalloc((2 * n + 1) * sizeof *span), n_span = 0, cursor = 0;
    for (size_t i = 0; i < n && !st; i++) {
        if (msgs[i].role != LT_ROLE_ASSISTANT || !msgs[i].content || !*msgs[i].content) continue;
        size_t s, e;
        if (!find_content(text, len, cursor, msgs[i].content, &s, &e)) {
            st = lt_error_set(LT_ERR_DATA, "template %s: message %zu (assistant) does not appear "
                              "in the rendered text, so its tokens cannot be masked; hint: "
                              "--template names a built-in layout", lt_jinja_name(c->tpl), i);
            break;
        }
        span[n_span++] = s;
        span[n_span++] = e;
        cursor = e;
    }
    const size_t first = out->n;
    if (!st) {
        /* one encoding of the whole text, then each token's byte range in it: a token is
         * trained from the one holding a content's first byte to the one holding its last (as
         * transformers' char_to_token assistant masks), plus the closing control token */
        lt_tokenizer_encode(c->tok, text, len, true, 0, out);
        size_t off = 0, k = 0;
        int32_t prev = -1;
        for (size_t i = first; i < out->n; i++) {
            const size_t a = off, b = off + text_len(c->tok, prev, out->ids[i]);
            while (k < n_span && span[k + 1] <= a) k += 2; /* spans wholly before this token */
            if (k < n_span && b > span[k] && a < span[k + 1]) out->mask[i] = 1;
            if (k < n_span && b >= span[k + 1] && out->mask[i]) {
                /* the content's last token: the turn's closing control token follows */
                size_t j = i + 1;
                if (j + 1 < out->n && !is_control(c->tok, out->ids[j]) &&
                    is_space_token(c->tok, out->ids[j]) && is_control(c->tok, out->ids[j + 1]))
                    out->mask[j++] = 1;
                if (j < out->n && is_control(c->tok, out->ids[j])) out->mask[j] = 1;
            }
            off = b;
            prev = out->ids[i];
        }
        if (off != len)
            st = lt_error_set(LT_ERR_DATA, "template %s: the tokens of the rendered text do not "
                              "add up to its %zu bytes (%zu), so the assistant turns cannot be "
                              "located in them; hint: --template names a built-in layout",
                              lt_jinja_name(c->tpl), len, off);
    }
    if (st) out->n = first;
    free(span);
    free(text);
    return st;
}

int32_t lt_chat_jinja_end_of_turn(const lt_chat_jinja *c) {
    const lt_message probe[2] = {{LT_ROLE_USER, "Hi"}, {LT_ROLE_ASSISTANT, "Hello there"}};
    lt_tokens v = {0};
    int32_t eot = lt_tokenizer_eos(c->tok);
    if (lt_chat_jinja_render(c, probe, 2, false, &v) == LT_OK) {
        /* the last trained token is the closing control token when the template has one */
        for (size_t i = v.n; i-- > 0;)
            if (v.mask[i]) {
                if (is_control(c->tok, v.ids[i])) eot = v.ids[i];
                break;
            }
    }
    lt_tokens_free(&v);
    return eot;
}
