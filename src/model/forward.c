/* The decoder's forward passes, written once over the op constructors: the training forward over
 * packed [B, T] micro-batches and the KV-cached incremental forward used by generation. The
 * config's switches select each family's block (model.h): q/k norms (Qwen3, Gemma 3), norms on
 * the sub-block outputs, GeGLU, soft-capping and scaled embeddings (Gemma). */
#include "model.h"

#include "../core/device.h"

#include <stdlib.h>
#include <string.h>

/* Host ids into a graph tensor on the graph's device. */
static lt_tensor *i32_tensor(lt_graph *g, const int32_t *src, int64_t n) {
    lt_tensor *t = lt_graph_tensor(g, LT_I32, 1, &n);
    lt_tensor_upload(t, src);
    return t;
}

/* One projection, with its bias when the model has one and its adapter when targeted. The
 * dropout seed is the block's + 1 + the adapter module's first projection: the members of a
 * fused module (Phi-3's qkv_proj) read the same input through one A, so they must draw the same
 * mask, as PEFT's single dropout before lora_A does. */
static lt_tensor *proj(lt_graph *g, lt_model *m, lt_layer *L, lt_module k, lt_tensor *x,
                       uint64_t block_seed) {
    bool adapted = L->lora_A[k].data != NULL;
    float p = g->record ? m->lora.dropout : 0.0f;
    int first;
    lt_model_adapter_group(&m->cfg, k, &first, NULL);
    return lt_linear_bias(g, x, &L->w[k], L->bias[k].data ? &L->bias[k] : NULL,
                          adapted ? &L->lora_A[k] : NULL, adapted ? &L->lora_B[k] : NULL,
                          m->lora.scale, p, block_seed + 1 + (uint64_t)first);
}

/* Attention sub-block through o_proj. x [N, D]; returns [N, D]. The k/v hooks let the cached
 * path substitute the cache views. */
typedef struct {
    lt_kv_cache *cache; /* NULL in training */
    int layer;
} kv_hook;

/* RMSNorm with the model's weight offset (Gemma's 1 + w). */
static lt_tensor *norm(lt_graph *g, const lt_model *m, lt_tensor *x, lt_tensor *w) {
    return lt_rmsnorm(g, x, w, m->cfg.rms_eps, m->cfg.norm_offset);
}

static lt_tensor *attn_block(lt_graph *g, lt_model *m, lt_layer *L, lt_tensor *x, int B, int T,
                             lt_tensor *pos, lt_tensor *doc, uint64_t seed, const kv_hook *hk) {
    const lt_model_config *c = &m->cfg;
    const int window = lt_model_layer_window(c, hk->layer);
    lt_tensor *h = norm(g, m, x, &L->attn_norm);
    int64_t sq[4] = {B, T, c->n_head, c->head_dim}, skv[4] = {B, T, c->n_kv_head, c->head_dim};
    lt_tensor *q = lt_reshape(g, proj(g, m, L, LT_MOD_Q, h, seed), 4, sq);
    lt_tensor *k = lt_reshape(g, proj(g, m, L, LT_MOD_K, h, seed), 4, skv);
    lt_tensor *v = lt_reshape(g, proj(g, m, L, LT_MOD_V, h, seed), 4, skv);
    if (c->qk_norm) { /* Qwen3, Gemma 3: RMSNorm over each head's Dh values, before RoPE */
        q = norm(g, m, q, &L->q_norm);
        k = norm(g, m, k, &L->k_norm);
    }
    /* Gemma 3's sliding layers rotate with their own base */
    lt_tensor *freq = window > 0 && m->rope_inv_freq_local.data ? &m->rope_inv_freq_local
                                                                 : &m->rope_inv_freq;
    q = lt_rope(g, q, pos, freq);
    k = lt_rope(g, k, pos, freq);
    if (hk->cache) {
        /* append this step's keys/values and attend over the whole cached prefix (B == 1) */
        lt_kv_cache *kc = hk->cache;
        LT_ASSERT(kc->device == g->device && k->dtype == kc->dtype);
        const size_t row = (size_t)c->n_kv_head * c->head_dim * lt_dtype_nbytes(kc->dtype, 1);
        char *kl = (char *)kc->k + (size_t)hk->layer * kc->max_len * row;
        char *vl = (char *)kc->v + (size_t)hk->layer * kc->max_len * row;
        lt_mem_copy(kc->device, kl + (size_t)kc->len * row, k->data, (size_t)T * row);
        lt_mem_copy(kc->device, vl + (size_t)kc->len * row, v->data, (size_t)T * row);
        int64_t sc[4] = {1, kc->len + T, c->n_kv_head, c->head_dim};
        /* views of the cache: headers only, data pointing into it */
        lt_tensor *kv[2] = {lt_arena_alloc(g->arena, sizeof(lt_tensor)),
                            lt_arena_alloc(g->arena, sizeof(lt_tensor))};
        for (int j = 0; j < 2; j++) {
            *kv[j] = (lt_tensor){.dtype = kc->dtype, .device = kc->device, .data = j ? vl : kl};
            lt_tensor_set_shape(kv[j], 4, sc);
        }
        k = kv[0];
        v = kv[1];
    }
    const lt_attn_opts ao = {.window = window, .scale = c->attn_scale,
                             .softcap = c->attn_softcap};
    lt_tensor *a = lt_attention(g, q, k, v, doc, &ao);
    int64_t sflat[2] = {(int64_t)B * T, (int64_t)c->n_head * c->head_dim};
    lt_tensor *o = proj(g, m, L, LT_MOD_O, lt_reshape(g, a, 2, sflat), seed);
    return c->sandwich_norm ? norm(g, m, o, &L->post_attn_norm) : o;
}

static lt_tensor *mlp_block(lt_graph *g, lt_model *m, lt_layer *L, lt_tensor *x, uint64_t seed) {
    lt_tensor *h = norm(g, m, x, &L->ffn_norm);
    lt_tensor *gate = proj(g, m, L, LT_MOD_GATE, h, seed);
    lt_tensor *up = proj(g, m, L, LT_MOD_UP, h, seed);
    lt_tensor *d = proj(g, m, L, LT_MOD_DOWN, lt_glu(g, gate, up, m->cfg.act), seed);
    return m->cfg.sandwich_norm ? norm(g, m, d, &L->post_ffn_norm) : d;
}

/* One transformer block: x + attn(x), then + mlp(.). Everything it reads besides x is in here, so
 * it can be a checkpointed segment (lt_checkpoint's fn contract: the seeds make its dropout
 * masks, hence its values, the same on every call). */
typedef struct {
    lt_model *m;
    lt_layer *L;
    int B, T;
    lt_tensor *pos, *doc;
    uint64_t seed;
    kv_hook hk;
} block_ctx;

static lt_tensor *block(lt_graph *g, void *ctx, lt_tensor **in) {
    const block_ctx *c = ctx;
    lt_tensor *x = in[0];
    x = lt_add(g, x, attn_block(g, c->m, c->L, x, c->B, c->T, c->pos, c->doc, c->seed, &c->hk));
    return lt_add(g, x, mlp_block(g, c->m, c->L, x, c->seed));
}

/* With g->checkpoint (training only) each block is one lt_checkpoint segment: its activations
 * are recomputed in backward, and only the block outputs stay in the arena. */
static lt_tensor *decoder(lt_graph *g, lt_model *m, int B, int T, lt_tensor *ids, lt_tensor *pos,
                          lt_tensor *doc, uint64_t seed, lt_kv_cache *cache) {
    lt_tensor *x = lt_embedding(g, &m->tok_embd, ids,
                                m->cfg.embed_scale > 0 ? m->cfg.embed_scale : 1.0f);
    bool ckpt = g->checkpoint && g->record && !cache;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        uint64_t ls = seed ^ ((uint64_t)(l + 1) * LT_SPLITMIX64_GOLDEN);
        block_ctx local = {m, &m->layers[l], B, T, pos, doc, ls, {cache, l}};
        if (!ckpt) {
            x = block(g, &local, &x);
            continue;
        }
        /* the context must outlive the forward: the segment's backward re-reads it */
        block_ctx *c = lt_arena_alloc(g->arena, sizeof *c);
        *c = local;
        x = lt_checkpoint(g, block, c, 1, &x);
    }
    return x;
}

/* The final-norm hidden states [B·T, D] of a packed micro-batch. */
static lt_tensor *hidden(lt_graph *g, lt_model *m, int B, int T, const int32_t *tokens,
                         const int32_t *pos, const int32_t *doc, uint64_t dropout_seed) {
    int64_t N = (int64_t)B * T, sdoc[2] = {B, T};
    lt_tensor *ids = i32_tensor(g, tokens, N), *tpos = i32_tensor(g, pos, N);
    lt_tensor *tdoc = i32_tensor(g, doc, N);
    lt_tensor_set_shape(tdoc, 2, sdoc);
    lt_tensor *x = decoder(g, m, B, T, ids, tpos, tdoc, dropout_seed, NULL);
    return norm(g, m, x, &m->out_norm);
}

/* Logits of final-norm hidden states x [N, D]: the LM head, soft-capped when the model says. */
static lt_tensor *logits_of(lt_graph *g, lt_model *m, lt_tensor *x) {
    lt_tensor *z = lt_linear(g, x, &m->lm_head, NULL, NULL, 0.0f, 0.0f, 0);
    return m->cfg.final_softcap > 0 ? lt_softcap(g, z, m->cfg.final_softcap) : z;
}

lt_tensor *lt_model_forward(lt_graph *g, lt_model *m, int B, int T, const int32_t *tokens,
                            const int32_t *pos, const int32_t *doc, uint64_t dropout_seed) {
    return logits_of(g, m, hidden(g, m, B, T, tokens, pos, doc, dropout_seed));
}

lt_tensor *lt_model_loss(lt_graph *g, lt_model *m, int B, int T, const int32_t *tokens,
                         const int32_t *pos, const int32_t *doc, const int32_t *targets,
                         float denominator, uint64_t dropout_seed) {
    int64_t N = (int64_t)B * T;
    lt_tensor *x = hidden(g, m, B, T, tokens, pos, doc, dropout_seed);
    lt_tensor *tg = i32_tensor(g, targets, N);
    /* the fused op never makes [N, V] logits; a head dtype it cannot read (a quantized head)
     * takes the linear + cross-entropy path */
    if (lt_op_supports(LT_OP_LM_HEAD_CE, m->lm_head.dtype, g->device))
        return lt_lm_head_cross_entropy(g, x, &m->lm_head, tg, NULL, denominator,
                                        m->cfg.final_softcap);
    return lt_cross_entropy(g, logits_of(g, m, x), tg, NULL, denominator);
}

lt_status lt_kv_cache_init(lt_kv_cache *c, const lt_model *m, int max_len) {
    memset(c, 0, sizeof *c);
    const lt_model_config *cfg = &m->cfg;
    c->device = m->device;
    c->dtype = lt_act_dtype(m->device);
    size_t n = (size_t)cfg->n_layer * max_len * cfg->n_kv_head * cfg->head_dim *
               lt_dtype_nbytes(c->dtype, 1);
    lt_status st = lt_buffer_alloc(c->device, n, "the KV cache", &c->k);
    if (!st) st = lt_buffer_alloc(c->device, n, "the KV cache", &c->v);
    if (st) {
        lt_kv_cache_free(c);
        return st;
    }
    c->max_len = max_len;
    return LT_OK;
}

void lt_kv_cache_free(lt_kv_cache *c) {
    lt_buffer_free(c->device, c->k);
    lt_buffer_free(c->device, c->v);
    memset(c, 0, sizeof *c);
}

lt_tensor *lt_model_forward_cached(lt_graph *g, lt_model *m, lt_kv_cache *cache,
                                   const int32_t *tokens, int n) {
    LT_ASSERT(n > 0 && cache->len + n <= cache->max_len && !g->record);
    int64_t N = n;
    lt_tensor *ids = i32_tensor(g, tokens, N);
    int32_t *p = lt_xmalloc((size_t)n * sizeof *p);
    for (int i = 0; i < n; i++) p[i] = cache->len + i;
    lt_tensor *pos = i32_tensor(g, p, N);
    free(p);
    lt_tensor *x = decoder(g, m, 1, n, ids, pos, NULL, 0, cache);
    cache->len += n;
    /* only the last position's logits are needed: a copy of the last row, [1, D] */
    int64_t D = m->cfg.dim, s1[2] = {1, D};
    lt_tensor *last = lt_graph_tensor(g, x->dtype, 2, s1);
    const size_t row = lt_tensor_nbytes(last);
    lt_mem_copy(g->device, last->data, (char *)x->data + (size_t)(N - 1) * row, row);
    return logits_of(g, m, norm(g, m, last, &m->out_norm));
}
