/* Sampling loop over the KV-cached forward. */
#include "generate.h"

#include "../core/device.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lt_generate_opts lt_generate_defaults(void) {
    lt_generate_opts o = {0};
    o.prompt = "";
    o.max_tokens = 256;
    o.temperature = 0.8f;
    o.top_p = 0.9f;
    o.seed = 42;
    return o;
}

typedef struct {
    float p;
    int32_t id;
} prob_id;

static int by_prob_desc(const void *a, const void *b) {
    float pa = ((const prob_id *)a)->p, pb = ((const prob_id *)b)->p;
    return pa < pb ? 1 : pa > pb ? -1 : 0;
}

int32_t lt_sample(const float *logits, int V, float temperature, float top_p, lt_rng *rng,
                  void *scratch) {
    int32_t best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (temperature <= 0) return best;
    prob_id *pi = scratch;
    double sum = 0;
    for (int i = 0; i < V; i++) {
        pi[i].p = expf((logits[i] - logits[best]) / temperature);
        pi[i].id = i;
        sum += pi[i].p;
    }
    float r = lt_rng_uniform(rng);
    int n = V;
    if (top_p < 1.0f) {
        /* keep the smallest prefix of the sorted distribution whose mass reaches top_p */
        qsort(pi, (size_t)V, sizeof *pi, by_prob_desc);
        double cum = 0;
        for (n = 0; n < V; n++) {
            cum += pi[n].p / sum;
            if (cum >= top_p) {
                n++;
                break;
            }
        }
        if (n > V) n = V;
        sum = 0;
        for (int i = 0; i < n; i++) sum += pi[i].p;
    }
    double target = r * sum, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += pi[i].p;
        if (cum > target) return pi[i].id;
    }
    return pi[n - 1].id;
}

lt_status lt_generate_text(lt_model *m, const lt_tokenizer *tok, const lt_generate_opts *o,
                           FILE *out, char **text) {
    lt_tokens prompt = {0};
    int32_t end_of_turn = -1;
    if (o->chat) {
        lt_message msgs[2];
        size_t n = 0;
        if (o->system) msgs[n++] = (lt_message){LT_ROLE_SYSTEM, o->system, NULL};
        msgs[n++] = (lt_message){LT_ROLE_USER, o->prompt, NULL};
        if (!o->tpl_set && lt_tokenizer_chat_template(tok)) {
            /* the model's own template, as the model was tuned and is served */
            lt_chat_jinja *cj;
            lt_status st = lt_chat_jinja_open(&cj, tok, "the model's chat template", NULL);
            if (!st) st = lt_chat_jinja_render(cj, msgs, n, NULL, true, &prompt);
            if (!st) end_of_turn = lt_chat_jinja_end_of_turn(cj);
            lt_chat_jinja_free(cj);
            if (st) return st;
        } else {
            lt_template tpl = o->tpl_set ? o->tpl : LT_TEMPLATE_ALPACA;
            lt_chat_render(tok, tpl, msgs, n, true, &prompt);
            end_of_turn = lt_template_end_of_turn(tok, tpl);
        }
    } else {
        int32_t bos = lt_tokenizer_bos(tok);
        /* an empty prompt needs some first token: BOS even for tokenizers that add none */
        if (bos >= 0 && (lt_tokenizer_add_bos(tok) || !o->prompt[0])) lt_tokens_push(&prompt, bos, 0);
        lt_tokenizer_encode(tok, o->prompt, strlen(o->prompt), false, 0, &prompt);
    }
    if (prompt.n == 0) {
        lt_tokens_free(&prompt);
        return lt_error_set(LT_ERR_USAGE, "empty prompt and the tokenizer has no BOS token; "
                            "hint: pass --prompt TEXT");
    }
    int total = (int)prompt.n + o->max_tokens;
    int ctx = m->cfg.context_length;
    if (ctx > 0 && total > ctx) {
        lt_tokens_free(&prompt);
        return lt_error_set(LT_ERR_USAGE, "prompt (%zu tokens) + --max-tokens %d exceeds the "
                            "model's context length %d", prompt.n, o->max_tokens, ctx);
    }
    lt_kv_cache cache;
    lt_status st = lt_kv_cache_init(&cache, m, total);
    if (st) {
        lt_tokens_free(&prompt);
        return st;
    }
    lt_arena arena;
    lt_arena_init(&arena, 0);
    lt_graph g;
    if ((st = lt_model_graph_init(&g, &arena, m))) { /* on the model's device */
        lt_arena_free(&arena);
        lt_kv_cache_free(&cache);
        lt_tokens_free(&prompt);
        return st;
    }
    g.record = false;
    lt_rng rng = {o->seed};
    int V = m->cfg.vocab_size;
    void *scratch = lt_xmalloc((size_t)V * 2 * sizeof(float));
    float *host_logits = lt_xmalloc((size_t)V * sizeof(float));
    size_t tcap = 256, tlen = 0;
    char *acc = text ? lt_xmalloc(tcap) : NULL;

    const int32_t *feed = prompt.ids;
    int n_feed = (int)prompt.n;
    int32_t prev = prompt.ids[prompt.n - 1];
    int32_t bos = lt_tokenizer_bos(tok), eos = lt_tokenizer_eos(tok);
    for (int step = 0; step < o->max_tokens; step++) {
        lt_tensor *logits = lt_model_forward_cached(&g, m, &cache, feed, n_feed);
        lt_tensor_download_f32(logits, host_logits);
        int32_t next = lt_sample(host_logits, V, o->temperature, o->top_p, &rng, scratch);
        lt_graph_reset(&g);
        if (next == eos || next == bos || next == end_of_turn) break;
        char piece[256];
        size_t n = lt_tokenizer_piece(tok, prev, next, piece, sizeof piece);
        fwrite(piece, 1, n, out);
        fflush(out);
        if (acc) {
            while (tlen + n + 1 > tcap) acc = lt_xrealloc(acc, tcap *= 2);
            memcpy(acc + tlen, piece, n);
            tlen += n;
        }
        prev = next;
        feed = &prev;
        n_feed = 1;
    }
    fputc('\n', out);
    fflush(out);
    if (acc) {
        acc[tlen] = 0;
        *text = acc;
    }
    free(scratch);
    free(host_logits);
    lt_graph_free(&g);
    lt_arena_free(&arena);
    lt_kv_cache_free(&cache);
    lt_tokens_free(&prompt);
    return LT_OK;
}
