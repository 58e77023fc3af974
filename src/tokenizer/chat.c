/*
 * chat.c — chat templates: a conversation -> token ids + loss mask.
 *
 * Layouts, one per family (the chat_template of each family's tokenizer_config.json, as
 * transformers' apply_chat_template renders it; {c} is the message content):
 * ChatML (SmolLM2, Qwen):
 *     <|im_start|>{role}\n{c}<|im_end|>\n                per message
 *     <|im_start|>assistant\n                              generation prompt
 *   When the model's template inserts a default system turn before a first message that is not
 *   a system message (SmolLM2: "You are a helpful AI assistant named SmolLM, trained by Hugging
 *   Face"), the tokenizer keeps that text (lt_tokenizer_default_system) and rendering inserts it.
 * Alpaca (tatsu-lab/stanford_alpaca's prompt, without its fixed preamble):
 *     {system}\n\n                                       each system message, as a preamble
 *     ### Instruction:\n{user}\n\n### Response:\n         each user (or tool) message
 *     {assistant}EOS                                      each assistant message
 * Llama 3 (meta-llama Llama-3.x-Instruct; content trimmed as the template's `| trim` does):
 *     <|start_header_id|>{role}<|end_header_id|>\n\n{c}<|eot_id|>
 *     <|start_header_id|>assistant<|end_header_id|>\n\n   generation prompt
 * Llama 2 (meta-llama Llama-2-chat; BOS before every user turn, content stripped):
 *     BOS[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]   first user turn after a system
 *     BOS[INST] {user} [/INST]                            other user turns
 *      {assistant} EOS                                    (a space on each side)
 * Mistral (Mistral-7B-Instruct v0.1/v0.2; a system message is put before the first user text):
 *     [INST] {system}\n\n{user} [/INST]{assistant}EOS
 * Gemma (google gemma-2/3 -it; "assistant" is "model", content trimmed, a system message is put
 *   before the first user text as Gemma 3 does):
 *     <start_of_turn>{role}\n{c}<end_of_turn>\n
 *     <start_of_turn>model\n                               generation prompt
 * BOS comes first when the tokenizer adds one (lt_tokenizer_add_bos), except Llama 2, whose
 * template writes it before each user turn itself. With add_generation_prompt the ids end with
 * the assistant header; Alpaca, Llama 2 and Mistral user turns already end with it.
 *
 * Loss mask: 1 on assistant content and the assistant turn's closing token (<|im_end|>,
 * <|eot_id|>, <end_of_turn>, EOS); 0 on everything else, including what follows the closing token.
 * Markers are emitted as their token ids when the vocabulary has them (never parsed out of
 * message text, so a user cannot inject them); all other text is encoded with parse_special off,
 * consecutive pieces with the same mask as one run, as a whole-string tokenizer sees them. Between
 * a header and the assistant content the run changes; the layouts put a special token or a
 * newline / space there, which the tokenizers here never merge across.
 */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const TEMPLATE_NAMES[LT_TEMPLATE_COUNT] = {"chatml", "alpaca", "llama3",
                                                              "llama2", "mistral", "gemma"};
#define NAMES_HINT "chatml|alpaca|llama3|llama2|mistral|gemma"
static const char *const ROLE_NAMES[] = {"system", "user", "assistant", "tool"};

lt_status lt_template_from_name(lt_template *out, const char *name) {
    for (int i = 0; i < LT_TEMPLATE_COUNT; i++)
        if (name && strcmp(name, TEMPLATE_NAMES[i]) == 0) {
            *out = (lt_template)i;
            return LT_OK;
        }
    return lt_error_set(LT_ERR_USAGE, "unknown chat template \"%s\"; known: " NAMES_HINT,
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
    /* each family by its markers, the most specific first (a Llama 2 template also has [INST]) */
    static const struct {
        const char *marker;
        lt_template tpl;
    } FAMILY[] = {
        {"<|start_header_id|>", LT_TEMPLATE_LLAMA3}, {"<start_of_turn>", LT_TEMPLATE_GEMMA},
        {"<|im_start|>", LT_TEMPLATE_CHATML},        {"<<SYS>>", LT_TEMPLATE_LLAMA2},
        {"[INST]", LT_TEMPLATE_MISTRAL},             {"### Instruction:", LT_TEMPLATE_ALPACA},
    };
    for (size_t i = 0; i < sizeof FAMILY / sizeof FAMILY[0]; i++)
        if (strstr(src, FAMILY[i].marker)) {
            *out = FAMILY[i].tpl;
            return LT_OK;
        }
    return lt_error_set(LT_ERR_DATA,
                        "chat template not recognized (a Jinja template of %zu bytes starting "
                        "\"%.40s\"); pass --template " NAMES_HINT,
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

/* Rendering state: text waits in `pend` (one mask) until a marker token or a mask change flushes
 * it as one run. SentencePiece prefixes a space to a run that starts the input or follows a
 * special token (llama.cpp; HF Metaspace "first": the start only), so track both. */
typedef struct {
    const lt_tokenizer *t;
    lt_tokens *out;
    bool after_special, started;
    char *pend;
    size_t pn, pcap;
    uint8_t pmask;
} render;

static void flush(render *r) {
    if (r->pn == 0) return;
    bool at_start = r->t->prefix_mode == TOK_PREFIX_META_FIRST ? !r->started : r->after_special;
    lt_tok_encode_ex(r->t, r->pend, r->pn, false, r->pmask, at_start, r->out);
    r->after_special = false;
    r->started = true;
    r->pn = 0;
}

static void text(render *r, const char *s, size_t n, uint8_t mask) {
    if (n == 0) return;
    if (r->pn && r->pmask != mask) flush(r);
    if (r->pn + n > r->pcap) {
        r->pcap = (r->pn + n) * 2 + 64;
        r->pend = lt_xrealloc(r->pend, r->pcap);
    }
    memcpy(r->pend + r->pn, s, n);
    r->pn += n;
    r->pmask = mask;
}

static void textz(render *r, const char *s, uint8_t mask) { text(r, s, strlen(s), mask); }

static void push_id(render *r, int32_t id, uint8_t mask) {
    flush(r);
    lt_tokens_push(r->out, id, mask);
    r->after_special = true;
    r->started = true;
}

/* A marker token by its string: its id when the vocabulary has it, else its text. */
static void marker(render *r, const char *s, uint8_t mask) {
    int32_t id = lt_tokenizer_find(r->t, s);
    if (id >= 0)
        push_id(r, id, mask);
    else
        textz(r, s, mask);
}

/* Content with leading and trailing whitespace removed (Jinja `trim`, Python str.strip). */
static void trimmed(render *r, const char *c, uint8_t mask) {
    size_t n = strlen(c);
    while (n && strchr(" \t\n\r\f\v", c[n - 1])) n--;
    while (n && strchr(" \t\n\r\f\v", *c)) c++, n--;
    text(r, c, n, mask);
}

static const char *role_name(lt_role role) {
    return (unsigned)role < 4 ? ROLE_NAMES[role] : "user";
}

static void chatml_turn(render *r, lt_role role, const char *content) {
    uint8_t m = role == LT_ROLE_ASSISTANT;
    marker(r, "<|im_start|>", 0);
    textz(r, role_name(role), 0);
    text(r, "\n", 1, 0);
    textz(r, content ? content : "", m);
    marker(r, "<|im_end|>", m);
    text(r, "\n", 1, 0);
}

static void llama3_turn(render *r, lt_role role, const char *content) {
    uint8_t m = role == LT_ROLE_ASSISTANT;
    marker(r, "<|start_header_id|>", 0);
    textz(r, role_name(role), 0);
    marker(r, "<|end_header_id|>", 0);
    text(r, "\n\n", 2, 0);
    trimmed(r, content ? content : "", m);
    marker(r, "<|eot_id|>", m);
}

static void gemma_turn(render *r, lt_role role, const char *prefix, const char *content) {
    uint8_t m = role == LT_ROLE_ASSISTANT;
    marker(r, "<start_of_turn>", 0);
    textz(r, role == LT_ROLE_ASSISTANT ? "model" : role_name(role), 0);
    text(r, "\n", 1, 0);
    if (prefix) {
        trimmed(r, prefix, 0);
        text(r, "\n\n", 2, 0);
    }
    trimmed(r, content ? content : "", m);
    marker(r, "<end_of_turn>", m);
    text(r, "\n", 1, 0);
}

static void eos(render *r, uint8_t mask) {
    if (r->t->eos >= 0) push_id(r, r->t->eos, mask);
}

/* [INST] families: system messages are folded into the next user turn. */
static void inst_render(render *r, bool llama2, const lt_message *msgs, size_t n) {
    const char *sys = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *c = msgs[i].content ? msgs[i].content : "";
        if (msgs[i].role == LT_ROLE_SYSTEM) {
            sys = c;
        } else if (msgs[i].role == LT_ROLE_ASSISTANT) {
            if (llama2) {
                text(r, " ", 1, 1);
                trimmed(r, c, 1);
                text(r, " ", 1, 1);
            } else {
                textz(r, c, 1);
            }
            eos(r, 1);
        } else {
            if (llama2 && r->t->bos >= 0) push_id(r, r->t->bos, 0);
            marker(r, "[INST]", 0);
            text(r, " ", 1, 0);
            if (sys && llama2) {
                textz(r, "<<SYS>>\n", 0);
                textz(r, sys, 0);
                textz(r, "\n<</SYS>>\n\n", 0);
            } else if (sys) {
                textz(r, sys, 0);
                text(r, "\n\n", 2, 0);
            }
            sys = NULL;
            if (llama2)
                trimmed(r, c, 0);
            else
                textz(r, c, 0);
            text(r, " ", 1, 0);
            marker(r, "[/INST]", 0);
        }
    }
}

int32_t lt_template_end_of_turn(const lt_tokenizer *t, lt_template tpl) {
    static const char *const END[LT_TEMPLATE_COUNT] = {"<|im_end|>", NULL, "<|eot_id|>", NULL,
                                                       NULL, "<end_of_turn>"};
    int32_t id = (unsigned)tpl < LT_TEMPLATE_COUNT && END[tpl] ? lt_tokenizer_find(t, END[tpl]) : -1;
    return id >= 0 ? id : t->eos;
}

void lt_chat_render(const lt_tokenizer *t, lt_template tpl, const lt_message *msgs, size_t n,
                    bool add_generation_prompt, lt_tokens *out) {
    render r = {.t = t, .out = out, .after_special = true};
    if (tpl != LT_TEMPLATE_LLAMA2 && t->add_bos && t->bos >= 0) lt_tokens_push(out, t->bos, 0);
    switch (tpl) {
    case LT_TEMPLATE_CHATML:
        if (n > 0 && msgs[0].role != LT_ROLE_SYSTEM && t->default_system)
            chatml_turn(&r, LT_ROLE_SYSTEM, t->default_system);
        for (size_t i = 0; i < n; i++) chatml_turn(&r, msgs[i].role, msgs[i].content);
        if (add_generation_prompt) {
            marker(&r, "<|im_start|>", 0);
            text(&r, "assistant\n", 10, 0);
        }
        break;
    case LT_TEMPLATE_LLAMA3:
        for (size_t i = 0; i < n; i++) llama3_turn(&r, msgs[i].role, msgs[i].content);
        if (add_generation_prompt) {
            marker(&r, "<|start_header_id|>", 0);
            textz(&r, "assistant", 0);
            marker(&r, "<|end_header_id|>", 0);
            text(&r, "\n\n", 2, 0);
        }
        break;
    case LT_TEMPLATE_GEMMA: {
        const char *sys = NULL;
        for (size_t i = 0; i < n; i++) {
            if (msgs[i].role == LT_ROLE_SYSTEM) {
                sys = msgs[i].content ? msgs[i].content : "";
                continue;
            }
            gemma_turn(&r, msgs[i].role, msgs[i].role == LT_ROLE_ASSISTANT ? NULL : sys,
                       msgs[i].content);
            if (msgs[i].role != LT_ROLE_ASSISTANT) sys = NULL;
        }
        if (add_generation_prompt) {
            marker(&r, "<start_of_turn>", 0);
            text(&r, "model\n", 6, 0);
        }
        break;
    }
    case LT_TEMPLATE_LLAMA2:
    case LT_TEMPLATE_MISTRAL:
        inst_render(&r, tpl == LT_TEMPLATE_LLAMA2, msgs, n);
        break;
    default: /* alpaca: a user turn ends with the response header (the generation prompt) */
        for (size_t i = 0; i < n; i++) {
            const char *c = msgs[i].content ? msgs[i].content : "";
            if (msgs[i].role == LT_ROLE_SYSTEM) {
                textz(&r, c, 0);
                text(&r, "\n\n", 2, 0);
            } else if (msgs[i].role == LT_ROLE_ASSISTANT) {
                textz(&r, c, 1);
                eos(&r, 1);
            } else {
                textz(&r, "### Instruction:\n", 0);
                textz(&r, c, 0);
                textz(&r, "\n\n### Response:\n", 0);
            }
        }
        break;
    }
    flush(&r);
    free(r.pend);
}
