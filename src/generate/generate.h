/*
 * generate — autoregressive sampling with the KV-cached forward: greedy, temperature and top-p
 * (nucleus, Holtzman et al. 2019, arXiv 1904.09751) sampling, plain or chat-templated prompts.
 */
#ifndef LATHE_GENERATE_H
#define LATHE_GENERATE_H

#include <stdio.h>

#include "../model/model.h"
#include "../tokenizer/tokenizer.h"

typedef struct {
    const char *prompt;  /* UTF-8; "" starts from BOS alone */
    const char *system;  /* optional system message (chat only) */
    bool chat;           /* render the prompt as a user turn + generation prompt */
    lt_template tpl;     /* a built-in layout when tpl_set; else the model's own Jinja chat template
                          * (alpaca when it has none) */
    bool tpl_set;
    int max_tokens;      /* tokens to generate */
    float temperature;   /* 0 = greedy argmax (first maximum on ties) */
    float top_p;         /* nucleus mass in (0, 1]; 1 disables */
    uint64_t seed;
} lt_generate_opts;

/* Empty prompt, 256 tokens, temperature 0.8, top-p 0.9, seed 42, no chat. */
lt_generate_opts lt_generate_defaults(void);

/* Generate into `out` as tokens are produced (flushed per token), then write one '\n'.
 * Stops after max_tokens, or at EOS / BOS / the chat template's end-of-turn token. When `text`
 * is not NULL it also receives the generated text (malloc'ed, caller frees). Errors: LT_ERR_USAGE
 * when prompt + max_tokens exceed the model's context, LT_ERR_DATA when the model's chat template
 * does not parse or refuses the conversation (its message quoted), LT_ERR_OOM for the KV
 * cache. */
lt_status lt_generate_text(lt_model *m, const lt_tokenizer *tok, const lt_generate_opts *o,
                           FILE *out, char **text);
#define lt_generate(m, tok, o, out) lt_generate_text((m), (tok), (o), (out), NULL)

/* Pick the next token from logits [V]. temperature 0 -> argmax. Uses and advances rng.
 * `scratch` holds 2·V floats' worth of workspace (indices and probabilities). */
int32_t lt_sample(const float *logits, int V, float temperature, float top_p, lt_rng *rng,
                  void *scratch);

#endif
