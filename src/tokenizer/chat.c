/*
 * chat.c — chat templates: a conversation -> token ids + loss mask.
 *
 * ChatML (as in SmolLM2's and Qwen's tokenizer_config.json chat_template):
 *     <|im_start|>{role}\n{content}<|im_end|>\n        per message
 *     <|im_start|>assistant\n                          generation prompt
 *   When the model's template inserts a default system turn before a first message that is not
 *   a system message (SmolLM2: "You are a helpful AI assistant named SmolLM, trained by Hugging
 *   Face"), the tokenizer keeps that text (lt_tokenizer_default_system) and rendering inserts it.
 * Alpaca (tatsu-lab/stanford_alpaca's prompt, without its fixed preamble):
 *     {system}\n\n                                     each system message, as a preamble
 *     ### Instruction:\n{user}\n\n### Response:\n       each user (or tool) message
 *     {assistant}EOS                                   each assistant message
 *
 * Loss mask: 1 on assistant content and the assistant turn's closing token (<|im_end|>, EOS);
 * 0 on everything else, including the "\n" after <|im_end|>. Markers are emitted as their token
 * ids (never parsed out of message text, so a user cannot inject them); message text is encoded
 * with parse_special off. Boundaries between a header and the assistant content are token
 * boundaries, so the mask never splits a token.
 */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const TEMPLATE_NAMES[LT_TEMPLATE_COUNT] = {"chatml", "alpaca"};
static const char *const ROLE_NAMES[] = {"system", "user", "assistant", "tool"};

lt_status lt_template_from_name(lt_template *out, const char *name) {
    for (int i = 0; i < LT_TEMPLATE_COUNT; i++)
        if (name && strcmp(name, TEMPLATE_NAMES[i]) == 0) {
            *out = (lt_template)i;
            return LT_OK;
        }
    return lt_error_set(LT_ERR_USAGE, "unknown chat template \"%s\"; known: chatml, alpaca",
                        name ? name : "(null)");
}

const char *lt_template_name(lt_template t) {
    return (unsigned)t < LT_TEMPLATE_COUNT ? TEMPLATE_NAMES[t] : "?";
}

lt_status lt_template_detect(lt_template *out, const char *src) {
    if (!src) {
        *out = LT_TEMPLATE_ALPACA;
        return LT_OK;
    }
    if (strstr(src, "<|im_start|>")) {
        *out = LT_TEMPLATE_CHATML;
        return LT_OK;
    }
    if (strstr(src, "### Instruction:")) {
        *out = LT_TEMPLATE_ALPACA;
        return LT_OK;
    }
    return lt_error_set(LT_ERR_DATA,
                        "chat template not recognized (a Jinja template of %zu bytes starting "
                        "\"%.40s\"); pass --template chatml|alpaca",
                        strlen(src), src);
}

char *lt_template_default_system(const char *src) {
    if (!src || !strstr(src, "<|im_start|>")) return NULL;
    if (!strstr(src, "'system'") && !strstr(src, "\"system\"")) return NULL;
    static const char head[] = "<|im_start|>system";
    for (const char *p = strstr(src, head); p; p = strstr(p + 1, head)) {
        const char *q = p + sizeof head - 1;
        if (*q == '\n')
            q += 1;
        else if (q[0] == '\\' && q[1] == 'n')
            q += 2;
        else
            continue;
        const char *end = strstr(q, "<|im_end|>");
        if (!end || end == q) continue;
        /* a literal: no quote (the string would close), no Jinja expression inside */
        bool literal = true;
        for (const char *c = q; c < end; c++)
            if (*c == '\'' || *c == '"' || *c == '{' || *c == '}') literal = false;
        if (!literal) continue;
        char *s = lt_xmalloc((size_t)(end - q) + 1);
        size_t n = 0;
        for (const char *c = q; c < end; c++) {
            if (c[0] == '\\' && c + 1 < end) {
                s[n++] = c[1] == 'n' ? '\n' : c[1] == 't' ? '\t' : c[1];
                c++;
            } else {
                s[n++] = *c;
            }
        }
        s[n] = 0;
        return s;
    }
    return NULL;
}

/* Rendering state: SentencePiece prefixes a space to a text run that starts the sequence or
 * follows a special token (llama.cpp), so track whether the last thing emitted was one. */
typedef struct {
    const lt_tokenizer *t;
    lt_tokens *out;
    bool after_special;
} render;

static void text(render *r, const char *s, size_t n, uint8_t mask) {
    if (n == 0) return;
    lt_tok_encode_ex(r->t, s, n, false, mask, r->after_special, r->out);
    r->after_special = false;
}

/* A marker token by its string: its id when the vocabulary has it, else its text. */
static void marker(render *r, const char *s, uint8_t mask) {
    int32_t id = lt_tokenizer_find(r->t, s);
    if (id >= 0) {
        lt_tokens_push(r->out, id, mask);
        r->after_special = true;
    } else {
        text(r, s, strlen(s), mask);
    }
}

static void chatml_turn(render *r, lt_role role, const char *content) {
    const char *rn = (unsigned)role < 4 ? ROLE_NAMES[role] : "user";
    content = content ? content : "";
    marker(r, "<|im_start|>", 0);
    size_t rl = strlen(rn), cl = strlen(content);
    if (role == LT_ROLE_ASSISTANT) {
        char hdr[16];
        snprintf(hdr, sizeof hdr, "%s\n", rn);
        text(r, hdr, strlen(hdr), 0);
        text(r, content, cl, 1);
        marker(r, "<|im_end|>", 1);
    } else {
        /* header and content as one run, as a whole-string tokenizer would see them */
        char *s = lt_xmalloc(rl + 1 + cl + 1);
        memcpy(s, rn, rl);
        s[rl] = '\n';
        memcpy(s + rl + 1, content, cl);
        text(r, s, rl + 1 + cl, 0);
        free(s);
        marker(r, "<|im_end|>", 0);
    }
    text(r, "\n", 1, 0);
}

void lt_chat_render(const lt_tokenizer *t, lt_template tpl, const lt_message *msgs, size_t n,
                    bool add_generation_prompt, lt_tokens *out) {
    render r = {t, out, true};
    if (t->add_bos && t->bos >= 0) lt_tokens_push(out, t->bos, 0);
    if (tpl == LT_TEMPLATE_CHATML) {
        if (n > 0 && msgs[0].role != LT_ROLE_SYSTEM && t->default_system)
            chatml_turn(&r, LT_ROLE_SYSTEM, t->default_system);
        for (size_t i = 0; i < n; i++) chatml_turn(&r, msgs[i].role, msgs[i].content);
        if (add_generation_prompt) {
            marker(&r, "<|im_start|>", 0);
            text(&r, "assistant\n", 10, 0);
        }
        return;
    }
    /* alpaca: the user turn ends with the response header, so the generation prompt is already
     * in place after a final user message */
    for (size_t i = 0; i < n; i++) {
        const char *c = msgs[i].content ? msgs[i].content : "";
        size_t cl = strlen(c);
        if (msgs[i].role == LT_ROLE_SYSTEM) {
            char *s = lt_xmalloc(cl + 3);
            memcpy(s, c, cl);
            memcpy(s + cl, "\n\n", 3);
            text(&r, s, cl + 2, 0);
            free(s);
        } else if (msgs[i].role == LT_ROLE_ASSISTANT) {
            text(&r, c, cl, 1);
            if (t->eos >= 0) {
                lt_tokens_push(out, t->eos, 1);
                r.after_special = true;
            }
        } else {
            static const char pre[] = "### Instruction:\n", post[] = "\n\n### Response:\n";
            size_t n1 = sizeof pre - 1, n2 = sizeof post - 1;
            char *s = lt_xmalloc(n1 + cl + n2 + 1);
            memcpy(s, pre, n1);
            memcpy(s + n1, c, cl);
            memcpy(s + n1 + cl, post, n2);
            text(&r, s, n1 + cl + n2, 0);
            free(s);
        }
    }
    (void)add_generation_prompt;
}
