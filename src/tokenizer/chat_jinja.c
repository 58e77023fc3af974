/*
 * chat_jinja.c — a conversation through the model's own Jinja chat template (src/jinja), as
 * transformers' apply_chat_template renders and tokenizes it: the template's text with the
 * tokenizer's bos_token / eos_token strings, then encoded with special tokens parsed and nothing
 * added (apply_chat_template(tokenize=True) passes add_special_tokens=False).
 *
 * Loss mask: 1 on each assistant turn's content and on the turn's closing control token (the
 * first token after the content, when it is a control token such as <|im_end|>, <|eot_id|>,
 * <end_of_turn> or </s>, possibly after one whitespace token, as Llama 2's " </s>"); 0 on
 * everything else. The content is found in the rendered text turn by turn: the conversation up
 * to an assistant turn, rendered with add_generation_prompt, ends where that turn's content may
 * start (when the template renders earlier turns the same way, i.e. it is a prefix of the whole
 * text; Qwen3 drops earlier turns' <think> blocks, so it need not be), and the content is the
 * first match after that point and after the previous turn's content (verbatim, else stripped
 * of surrounding whitespace, as templates that `| trim` it render it). A turn with tool_calls is
 * trained whole: from that start to where the conversation rendered through it ends (both must
 * be prefixes of the text, else the record is an error), trailing whitespace excepted, closing
 * token included. The whole text
 * is encoded
 * once and each token's byte range in it decides its mask, as transformers'
 * return_assistant_tokens_mask does with character offsets; the ranges come from matching each
 * token's piece against the text (match_len). With a normalizer (NFC) every offset is one in
 * the text the encoder's engines see (lt_tokenizer_normalized): the rendered text, each prefix it is
 * compared with and each content it is searched for are normalized alike.
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

lt_status lt_chat_jinja_open(lt_chat_jinja **out, const lt_tokenizer *t, const char *name,
                             const char *src) {
    *out = NULL;
    if (!src) src = lt_tokenizer_chat_template(t);
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

/* Is token id a control token (<|im_end|>, </s>: its text is the template's, not content)? */
static bool is_control(const lt_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->types[id] == TOK_CONTROL;
}

/* Is token id, following prev, only whitespace (Llama 2's " " before " </s>")? */
static bool is_space_token(const lt_tokenizer *t, int32_t prev, int32_t id) {
    char buf[512];
    size_t n = lt_tokenizer_piece(t, prev, id, buf, sizeof buf);
    bool sp = n > 0 && n < sizeof buf;
    for (size_t i = 0; sp && i < n; i++)
        sp = buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r';
    return sp;
}

/* Locate `content` (normalized as the encoder sees it) in text at or after *from: verbatim, else
 * stripped. Sets [*s, *e). */
static bool find_content(const lt_chat_jinja *c, const char *text, size_t len, size_t from,
                         const char *content, size_t *s, size_t *e) {
    size_t cl = strlen(content);
    char *norm = lt_tokenizer_normalized(c->tok, content, cl, true, &cl);
    const char *c0 = norm ? norm : content;
    bool found = false;
    for (int pass = 0; pass < 2 && !found; pass++) {
        if (pass == 1) { /* stripped */
            while (cl && (*c0 == ' ' || *c0 == '\n' || *c0 == '\t' || *c0 == '\r')) c0++, cl--;
            while (cl && (c0[cl - 1] == ' ' || c0[cl - 1] == '\n' || c0[cl - 1] == '\t' ||
                          c0[cl - 1] == '\r'))
                cl--;
        }
        if (cl == 0) break;
        for (size_t i = from; i + cl <= len && !found; i++)
            if (memcmp(text + i, c0, cl) == 0) {
                *s = i;
                *e = i + cl;
                found = true;
            }
    }
    free(norm);
    return found;
}

/* How many bytes of text[at, len) token id stands for, or SIZE_MAX when its piece is not what
 * the text holds there. A control token is its own text (the template wrote it). A
 * SentencePiece piece is matched character by character, since its U+2581 can stand for a space,
 * for a U+2581 of the text itself, or for nothing (the dummy prefix the encoder puts before a run
 * of text, at the start or after a special token). Anything else is its decoded piece. */
static size_t match_len(const lt_tokenizer *t, int32_t prev, int32_t id, const char *text,
                        size_t at, size_t len) {
    static const char META[] = "\xe2\x96\x81";
    if (id < 0 || id >= t->n_vocab) return SIZE_MAX;
    if (is_control(t, id)) {
        size_t n = t->tok_len[id];
        return n <= len - at && memcmp(text + at, lt_tok_text(t, id), n) == 0 ? n : SIZE_MAX;
    }
    if (t->kind == TOK_KIND_SPM && t->types[id] != TOK_BYTE && t->types[id] != TOK_UNKNOWN) {
        const char *s = lt_tok_text(t, id);
        size_t sl = t->tok_len[id], n = 0;
        for (size_t i = 0; i < sl;) {
            if (i + 3 <= sl && memcmp(s + i, META, 3) == 0) {
                if (at + n < len && text[at + n] == ' ') n += 1;
                else if (at + n + 3 <= len && memcmp(text + at + n, META, 3) == 0) n += 3;
                else if (i != 0) return SIZE_MAX; /* only a piece's first U+2581 may be dummy */
                i += 3;
            } else {
                if (at + n >= len || text[at + n] != s[i]) return SIZE_MAX;
                n++, i++;
            }
        }
        return n;
    }
    char buf[512];
    size_t n = lt_tokenizer_piece(t, prev, id, buf, sizeof buf);
    return n < sizeof buf && n <= len - at && memcmp(text + at, buf, n) == 0 ? n : SIZE_MAX;
}

/* JSON text of a message's fields or of the tools, parsed; LT_ERR_DATA naming what when it is not
 * JSON of the expected kind (an object, an array). */
static lt_status parse_json(const char *s, bool array, const char *what, json_t **out) {
    json_error_t e;
    *out = json_loads(s, 0, &e);
    if (*out && (array ? json_is_array(*out) : json_is_object(*out))) return LT_OK;
    json_decref(*out);
    *out = NULL;
    return lt_error_set(LT_ERR_DATA, "%s is not a JSON %s", what, array ? "array" : "object");
}

/* The template's text for msgs[0, n) with `tools` (NULL or a JSON array). */
static lt_status render_text(const lt_chat_jinja *c, const lt_message *msgs, size_t n,
                             const char *tools, bool gen, char **text, size_t *len) {
    lt_status st = LT_OK;
    json_t *jm = json_array(), *jt = NULL;
    for (size_t i = 0; i < n && !st; i++) {
        json_t *m = json_object(), *f = NULL;
        json_object_set_new(m, "role", json_string(ROLE[msgs[i].role]));
        json_object_set_new(m, "content", msgs[i].content ? json_string(msgs[i].content)
                                                          : json_null());
        if (msgs[i].fields && !(st = parse_json(msgs[i].fields, false, "a message's fields", &f)))
            json_object_update(m, f);
        json_decref(f);
        json_array_append_new(jm, m);
    }
    if (!st && tools) st = parse_json(tools, true, "tools", &jt);
    json_t *vars = st ? NULL : lt_jinja_chat_vars(jm, jt, NULL, gen, c->extra);
    json_decref(jm);
    json_decref(jt);
    if (st) return st;
    if (!vars) return LT_ERR_DATA;
    st = lt_jinja_render(text, len, c->tpl, vars, NULL);
    json_decref(vars);
    return st;
}

/* *text (malloc'ed, *len bytes) replaced by what the encoder's engines see of it. */
static void normalize(const lt_chat_jinja *c, char **text, size_t *len) {
    size_t n;
    char *norm = lt_tokenizer_normalized(c->tok, *text, *len, true, &n);
    if (!norm) return;
    free(*text);
    *text = norm;
    *len = n;
}

/* render_text, normalized. */
static lt_status render_view(const lt_chat_jinja *c, const lt_message *msgs, size_t n,
                             const char *tools, bool gen, char **text, size_t *len) {
    lt_status st = render_text(c, msgs, n, tools, gen, text, len);
    if (!st) normalize(c, text, len);
    return st;
}

/* Does the message carry a non-empty tool_calls list? */
static bool has_tool_calls(const lt_message *m) {
    json_t *f = m->fields ? json_loads(m->fields, 0, NULL) : NULL;
    json_t *tc = json_object_get(f, "tool_calls");
    bool yes = json_is_array(tc) && json_array_size(tc) > 0;
    json_decref(f);
    return yes;
}

/* Where assistant message i's content can start in text: the length of the conversation before
 * it rendered with the generation prompt, when that is a prefix of text; else 0. A template
 * that refuses the shorter conversation (some insist on ending with an assistant turn) gives 0
 * too (its message is left for the next error to overwrite). */
static size_t turn_start(const lt_chat_jinja *c, const lt_message *msgs, size_t i,
                         const char *tools, const char *text, size_t len) {
    char *pre = NULL;
    size_t pn = 0, at = 0;
    if (render_view(c, msgs, i, tools, true, &pre, &pn) == LT_OK && pn <= len &&
        memcmp(pre, text, pn) == 0)
        at = pn;
    free(pre);
    return at;
}

/* Where the conversation through message i ends in text, trailing whitespace excepted, when it
 * is a prefix of text ending after `from`; else 0. */
static size_t turn_end(const lt_chat_jinja *c, const lt_message *msgs, size_t i,
                       const char *tools, const char *text, size_t len, size_t from) {
    char *pre = NULL;
    size_t pn = 0, at = 0;
    if (render_view(c, msgs, i + 1, tools, false, &pre, &pn) == LT_OK && pn <= len &&
        memcmp(pre, text, pn) == 0) {
        while (pn > from && (text[pn - 1] == ' ' || text[pn - 1] == '\n' ||
                             text[pn - 1] == '\t' || text[pn - 1] == '\r'))
            pn--;
        if (pn > from) at = pn;
    }
    free(pre);
    return at;
}

lt_status lt_chat_jinja_render(const lt_chat_jinja *c, const lt_message *msgs, size_t n,
                               const char *tools, bool add_generation_prompt, lt_tokens *out) {
    char *raw = NULL, *text;
    size_t raw_len = 0, len;
    lt_status st = render_text(c, msgs, n, tools, add_generation_prompt, &raw, &raw_len);
    if (st) return st;
    /* the spans and the tokens' byte ranges are offsets in `text`, what the encoder sees */
    text = lt_tokenizer_normalized(c->tok, raw, raw_len, true, &len);
    if (!text) text = raw, len = raw_len;

    /* the assistant contents' byte spans [span[2k], span[2k+1]), in conversation order */
    size_t *span = lt_xmalloc((2 * n + 1) * sizeof *span), n_span = 0, cursor = 0;
    for (size_t i = 0; i < n && !st; i++) {
        if (msgs[i].role != LT_ROLE_ASSISTANT) continue;
        size_t s, e, at = turn_start(c, msgs, i, tools, text, len), from = at;
        if (from < cursor) from = cursor;
        if (has_tool_calls(&msgs[i])) {
            /* both ends from renders of the conversation: where it stands before and after */
            s = from;
            if (!at || !(e = turn_end(c, msgs, i, tools, text, len, from))) {
                st = lt_error_set(LT_ERR_DATA, "template %s: message %zu (assistant, tool_calls) "
                                  "cannot be located: the conversation through it does not "
                                  "render as the start of the whole; hint: --template names a "
                                  "built-in layout", lt_jinja_name(c->tpl), i);
                break;
            }
        } else if (!msgs[i].content || !*msgs[i].content) {
            continue;
        } else if (!find_content(c, text, len, from, msgs[i].content, &s, &e)) {
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
        lt_tokenizer_encode(c->tok, raw, raw_len, true, 0, out);
        size_t off = 0, k = 0;
        int32_t prev = -1;
        for (size_t i = first; i < out->n; i++) {
            const size_t m = match_len(c->tok, prev, out->ids[i], text, off, len);
            if (m == SIZE_MAX) break;
            const size_t a = off, b = off + m;
            while (k < n_span && span[k + 1] <= a) k += 2; /* spans wholly before this token */
            if (k < n_span && b > span[k] && a < span[k + 1]) out->mask[i] = 1;
            if (k < n_span && b >= span[k + 1] && out->mask[i]) {
                /* the content's last token: the turn's closing control token follows */
                size_t j = i + 1;
                if (j + 1 < out->n && !is_control(c->tok, out->ids[j]) &&
                    is_space_token(c->tok, out->ids[i], out->ids[j]) &&
                    is_control(c->tok, out->ids[j + 1]))
                    out->mask[j++] = 1;
                if (j < out->n && is_control(c->tok, out->ids[j])) out->mask[j] = 1;
            }
            off = b;
            prev = out->ids[i];
        }
        if (off != len)
            st = lt_error_set(LT_ERR_DATA, "template %s: the tokens of the rendered text spell "
                              "only its first %zu of %zu bytes (an unknown token?), so the "
                              "assistant turns cannot be located in them; hint: --template names "
                              "a built-in layout", lt_jinja_name(c->tpl), off, len);
    }
    if (st) out->n = first;
    free(span);
    if (text != raw) free(text);
    free(raw);
    return st;
}

int32_t lt_chat_jinja_end_of_turn(const lt_chat_jinja *c) {
    const lt_message probe[2] = {{LT_ROLE_USER, "Hi", NULL}, {LT_ROLE_ASSISTANT, "Hello there", NULL}};
    lt_tokens v = {0};
    int32_t eot = lt_tokenizer_eos(c->tok);
    if (lt_chat_jinja_render(c, probe, 2, NULL, false, &v) == LT_OK) {
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
