/* Llama-family decoder: weights from GGUF (the config: gguf_config.c), the base-weight layout
 * both loaders share (model_impl.h), RoPE frequencies, LoRA attachment. Block structure (Touvron et al. 2023, arXiv
 * 2302.13971): pre-RMSNorm attention with RoPE and GQA, residual, pre-RMSNorm SwiGLU MLP,
 * residual; final RMSNorm and LM head. */
#include "model_impl.h"

#include "../quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const module_names[LT_MOD_COUNT] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
/* llama.cpp's per-block tensor names for the same modules */
static const char *const gguf_names[LT_MOD_COUNT] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

const char *lt_module_name(lt_module m) { return module_names[m]; }
const char *lt_model_gguf_stem(const lt_model_config *c, int k) {
    int first, n = lt_model_adapter_group(c, k, &first, NULL);
    if (n > 1) return first == LT_MOD_Q ? "attn_qkv" : "ffn_up";
    return gguf_names[k];
}
const char *lt_module_parent(lt_module m) { return m <= LT_MOD_O ? "self_attn" : "mlp"; }
int lt_module_from_name(const char *name) {
    for (int i = 0; i < LT_MOD_COUNT; i++)
        if (!strcmp(name, module_names[i])) return i;
    return -1;
}

/* An F32 header of `rows x cols` (cols == 0: a vector) with no data. */
static void header(lt_tensor *t, int64_t rows, int64_t cols, const char *name) {
    memset(t, 0, sizeof *t);
    t->dtype = LT_F32;
    t->name = name;
    int64_t shape[2] = {rows, cols};
    lt_tensor_set_shape(t, cols ? 2 : 1, cols ? shape : &shape[0]);
}

/* Point t at the next `rows x cols` floats of the base buffer (cols == 0: a vector). */
static void carve(lt_tensor *t, float **cursor, int64_t rows, int64_t cols, const char *name) {
    header(t, rows, cols, name);
    t->data = *cursor;
    *cursor += rows * (cols ? cols : 1);
}

int64_t lt_model_module_rows(const lt_model_config *c, lt_module k) {
    const int64_t Dq = (int64_t)c->n_head * c->head_dim, Dkv = (int64_t)c->n_kv_head * c->head_dim;
    const int64_t rows[LT_MOD_COUNT] = {Dq, Dkv, Dkv, c->dim, c->ffn_dim, c->ffn_dim, c->dim};
    return rows[k];
}

int64_t lt_model_module_cols(const lt_model_config *c, lt_module k) {
    const int64_t Dq = (int64_t)c->n_head * c->head_dim;
    const int64_t cols[LT_MOD_COUNT] = {c->dim, c->dim, c->dim, Dq, c->dim, c->dim, c->ffn_dim};
    return cols[k];
}

int lt_model_adapter_group(const lt_model_config *c, int k, int *first, const char **name) {
    int f = k, n = 1;
    const char *nm = module_names[k];
    if (c->fused && k <= LT_MOD_V && k != LT_MOD_O) f = LT_MOD_Q, n = 3, nm = "qkv_proj";
    if (c->fused && (k == LT_MOD_GATE || k == LT_MOD_UP)) f = LT_MOD_GATE, n = 2, nm = "gate_up_proj";
    if (first) *first = f;
    if (name) *name = nm;
    return n;
}

unsigned lt_model_adapter_bits(const lt_model_config *c, const char *name) {
    for (int k = 0; k < LT_MOD_COUNT; k++) {
        int f;
        const char *gn;
        int n = lt_model_adapter_group(c, k, &f, &gn);
        if (!strcmp(name, module_names[k])) return 1u << k;
        if (n > 1 && k == f && !strcmp(name, gn)) return ((1u << n) - 1u) << f;
    }
    return 0;
}

lt_status lt_model_check_targets(const lt_model_config *c, unsigned bits, const char *what) {
    for (int k = 0; k < LT_MOD_COUNT; k++) {
        int f;
        const char *gn;
        int n = lt_model_adapter_group(c, k, &f, &gn);
        unsigned grp = ((1u << n) - 1u) << f;
        if (n > 1 && (bits & grp) && (bits & grp) != grp)
            return lt_error_set(LT_ERR_RECIPE, "%s: this model fuses %s into one module, %s, "
                                "whose adapter covers all of them; hint: list %s (or all of "
                                "its projections)", what,
                                f == LT_MOD_Q ? "q_proj, k_proj and v_proj"
                                              : "gate_proj and up_proj", gn, gn);
    }
    return LT_OK;
}

int lt_model_layer_window(const lt_model_config *c, int l) {
    return c->sliding_window > 0 && (c->swa_layers[l / 64] >> (l % 64) & 1) ? c->sliding_window
                                                                            : 0;
}

void lt_model_set_swa(lt_model_config *c, int window, int from) {
    memset(c->swa_layers, 0, sizeof c->swa_layers);
    c->sliding_window = window;
    if (window <= 0) {
        c->sliding_window = 0;
        return;
    }
    for (int l = from < 0 ? 0 : from; l < c->n_layer; l++)
        c->swa_layers[l / 64] |= 1ull << (l % 64);
}

int lt_model_swa_layers(const lt_model_config *c, int *from) {
    int n = 0, first = -1;
    bool suffix = true;
    for (int l = 0; l < c->n_layer; l++) {
        bool on = lt_model_layer_window(c, l) > 0;
        if (on && first < 0) first = l;
        if (!on && first >= 0) suffix = false;
        n += on;
    }
    *from = n == 0 ? c->n_layer : suffix ? first : -1;
    return n;
}

bool lt_model_module_has_bias(const lt_model_config *c, lt_module k) {
    return k <= LT_MOD_V ? c->qkv_bias : k == LT_MOD_O ? c->o_bias : false;
}

void lt_rope_inv_freq(float *out, const lt_model_config *c) {
    const int half = c->head_dim / 2;
    const lt_rope_scaling *s = &c->rope_scaling;
    for (int i = 0; i < half; i++) {
        /* _compute_default_rope_parameters: 1 / base^(arange(0, dim, 2).float() / dim), float32 */
        float inv = 1.0f / powf(c->rope_base, (float)(2 * i) / (float)c->head_dim);
        if (s->type == LT_ROPE_LINEAR) {
            inv /= s->factor;
        } else if (s->type == LT_ROPE_LLAMA3) {
            const float old_ctx = (float)s->original_context;
            const float low_wavelen = old_ctx / s->low_freq_factor;
            const float high_wavelen = old_ctx / s->high_freq_factor;
            const float wavelen = 2.0f * (float)M_PI / inv;
            if (wavelen > low_wavelen) {
                inv /= s->factor; /* low frequencies: interpolated by factor */
            } else if (!(wavelen < high_wavelen)) {
                /* medium: blend between scaled and unscaled */
                float sm = (old_ctx / wavelen - s->low_freq_factor) /
                           (s->high_freq_factor - s->low_freq_factor);
                inv = (1.0f - sm) * inv / s->factor + sm * inv;
            } /* high frequencies: unchanged */
        }
        out[i] = inv;
    }
}

lt_status lt_model_alloc_base(lt_model *m, unsigned quant_mask) {
    const lt_model_config *c = &m->cfg;
    const int64_t D = c->dim, V = c->vocab_size, half = c->head_dim / 2;
    bool q_head = (quant_mask & LT_QUANT_LM_HEAD) && !c->tied;
    int64_t per_layer = 2 * D + (c->qk_norm ? 2 * c->head_dim : 0) + (c->sandwich_norm ? 2 * D : 0),
            per_layer_q = 0;
    const int64_t n_freq = c->rope_local_base > 0 ? 2 * half : half;
    for (int k = 0; k < LT_MOD_COUNT; k++) {
        int64_t w = lt_model_module_rows(c, k) * lt_model_module_cols(c, k);
        if (quant_mask & (1u << k)) per_layer_q += w;
        else per_layer += w;
        if (lt_model_module_has_bias(c, k)) per_layer += lt_model_module_rows(c, k);
    }
    const int64_t total = V * D + D + (c->tied || q_head ? 0 : V * D) + c->n_layer * per_layer +
                          n_freq;
    m->n_params = total - n_freq + c->n_layer * per_layer_q + (q_head ? V * D : 0);
    m->base_bytes = (size_t)total * sizeof(float);
    m->base = lt_alloc_big(m->base_bytes, "the base model weights");
    if (!m->base) return LT_ERR_OOM;
    m->layers = lt_xcalloc((size_t)c->n_layer, sizeof *m->layers);

    float *cur = m->base;
    carve(&m->tok_embd, &cur, V, D, "embed_tokens");
    carve(&m->out_norm, &cur, D, 0, "norm");
    if (c->tied) {
        m->lm_head = m->tok_embd;
        m->lm_head.name = "lm_head (tied to embed_tokens)";
    } else if (q_head) {
        header(&m->lm_head, V, D, "lm_head"); /* quantized storage comes from the loader */
    } else {
        carve(&m->lm_head, &cur, V, D, "lm_head");
    }
    for (int l = 0; l < c->n_layer; l++) {
        lt_layer *L = &m->layers[l];
        carve(&L->attn_norm, &cur, D, 0, "input_layernorm");
        carve(&L->ffn_norm, &cur, D, 0, "post_attention_layernorm");
        if (c->qk_norm) {
            carve(&L->q_norm, &cur, c->head_dim, 0, "q_norm");
            carve(&L->k_norm, &cur, c->head_dim, 0, "k_norm");
        }
        if (c->sandwich_norm) {
            carve(&L->post_attn_norm, &cur, D, 0, "post_attention_layernorm");
            carve(&L->post_ffn_norm, &cur, D, 0, "post_feedforward_layernorm");
        }
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            if (quant_mask & (1u << k)) { /* header only: quantized storage from the loader */
                header(&L->w[k], lt_model_module_rows(c, k), lt_model_module_cols(c, k),
                       module_names[k]);
            } else {
                carve(&L->w[k], &cur, lt_model_module_rows(c, k), lt_model_module_cols(c, k),
                      module_names[k]);
            }
            if (lt_model_module_has_bias(c, k))
                carve(&L->bias[k], &cur, lt_model_module_rows(c, k), 0, module_names[k]);
        }
    }
    carve(&m->rope_inv_freq, &cur, half, 0, "rope_inv_freq");
    lt_rope_inv_freq(m->rope_inv_freq.data, c);
    if (c->rope_local_base > 0) { /* Gemma 3 sliding layers: their own base, no scaling */
        lt_model_config local = *c;
        local.rope_base = c->rope_local_base;
        local.rope_scaling = (lt_rope_scaling){0};
        carve(&m->rope_inv_freq_local, &cur, half, 0, "rope_inv_freq_local");
        lt_rope_inv_freq(m->rope_inv_freq_local.data, &local);
    }
    LT_ASSERT(cur == m->base + total);
    return LT_OK;
}

/* Uniform in ±bound, by 1 MiB chunks seeded from (seed, first index): the same values for any
 * thread count. */
static void random_fill(float *x, int64_t n, float bound, uint64_t seed) {
    const int64_t chunk = 1 << 18;
#pragma omp parallel for schedule(static)
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        uint64_t r = seed ^ ((uint64_t)(c0 / chunk + 1) * LT_SPLITMIX64_GOLDEN);
        for (int64_t i = c0; i < n && i < c0 + chunk; i++)
            x[i] = (float)((double)(lt_splitmix64(&r) >> 11) * 0x1p-53 * 2.0 - 1.0) * bound;
    }
}

static void random_names(char *buf, size_t n, int layer, int mod) {
    snprintf(buf, n, "layers.%d.%s", layer, mod < LT_MOD_COUNT ? module_names[mod] : "lm_head");
}

lt_status lt_model_random(lt_model **out, const lt_model_config *cfg, const lt_model_opts *o,
                          uint64_t seed) {
    *out = NULL;
    lt_model *m = lt_xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    m->path = lt_xstrdup("(random weights)");
    lt_qload q;
    lt_status st = lt_qload_init(&q, m, o, "random weights", random_names);
    if (!st) st = lt_model_alloc_base(m, q.mask);
    if (!st) st = lt_qload_begin(&q, m);
    if (st) {
        lt_model_free(m);
        return st;
    }
    /* everything F32 but the RoPE tables (the last values of the base): matrices uniform in
     * ±1/sqrt(dim), vectors (norm weights, biases) then moved to 1 ± 0.1 */
    const int64_t n_freq = (cfg->rope_local_base > 0 ? 2 : 1) * (cfg->head_dim / 2);
    const float bound = 1.0f / sqrtf((float)cfg->dim);
    random_fill(m->base, (int64_t)(m->base_bytes / sizeof(float)) - n_freq, bound, seed);
    lt_tensor *vec[1 + 6 * LT_MAX_LAYERS];
    int nv = 0;
    vec[nv++] = &m->out_norm;
    for (int l = 0; l < cfg->n_layer; l++) {
        lt_layer *L = &m->layers[l];
        lt_tensor *v[6] = {&L->attn_norm, &L->ffn_norm, &L->q_norm, &L->k_norm,
                           &L->post_attn_norm, &L->post_ffn_norm};
        for (int k = 0; k < 6; k++)
            if (v[k]->data) vec[nv++] = v[k];
    }
    for (int i = 0; i < nv; i++) {
        float *w = vec[i]->data;
        for (int64_t j = 0; j < lt_tensor_numel(vec[i]); j++)
            w[j] = (cfg->norm_offset > 0 ? 0.0f : 1.0f) + w[j] / bound * 0.1f; /* 1 ± 0.1 */
    }
    /* the quantization targets: random F32 through the scratch, quantized as a load would */
    for (int l = 0; l < cfg->n_layer && !st; l++)
        for (int k = 0; k < LT_MOD_COUNT && !st; k++) {
            lt_tensor *w = &m->layers[l].w[k];
            if (!lt_qload_target(w)) continue;
            random_fill(q.scratch, lt_tensor_numel(w), bound, seed ^ (uint64_t)(l * 8 + k + 1));
            st = lt_qload_weight(&q, m, w, LT_F32);
        }
    if (!st && !cfg->tied && lt_qload_target(&m->lm_head)) {
        random_fill(q.scratch, lt_tensor_numel(&m->lm_head), bound, seed ^ 0xfeedull);
        st = lt_qload_weight(&q, m, &m->lm_head, LT_F32);
    }
    lt_qload_end(&q, m, st);
    if (st) {
        lt_model_free(m);
        return st;
    }
    *out = m;
    return LT_OK;
}

/* Find tensor `name` and check its shape against dst's (which the config fixed). */
static lt_status find_tensor(const lt_gguf *g, const char *name, const lt_tensor *dst,
                             const lt_gguf_tensor **out) {
    const lt_gguf_tensor *t = lt_gguf_find_tensor(g, name);
    if (!t) return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is missing", g->path, name);
    /* GGUF ne is innermost-first: ne = {cols, rows} for a [rows, cols] matrix */
    int64_t want_cols = dst->ndim == 2 ? dst->shape[1] : dst->shape[0];
    int64_t want_rows = dst->ndim == 2 ? dst->shape[0] : 1;
    int64_t rows = 1;
    for (int i = 1; i < t->n_dims; i++) rows *= t->ne[i];
    if (t->ne[0] != want_cols || rows != want_rows)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has shape [%lld, %lld], expected "
                            "[%lld, %lld] from the model's metadata", g->path, name,
                            (long long)rows, (long long)t->ne[0], (long long)want_rows,
                            (long long)want_cols);
    *out = t;
    return LT_OK;
}

/* Read tensor `name` into dst as F32 (Q/K rows un-permuted over `qk_heads` heads when > 0), or,
 * when dst is a quantization target, through q's scratch into dst's quantized storage. */
static lt_status load_tensor(const lt_gguf *g, const char *name, lt_tensor *dst, lt_qload *q,
                             lt_model *m, int qk_heads) {
    const lt_gguf_tensor *t = NULL;
    lt_status st = find_tensor(g, name, dst, &t);
    if (st) return st;
    bool quant = lt_qload_target(dst);
    float *f = quant ? q->scratch : dst->data;
    lt_gguf_tensor_to_f32(t, f);
    if (qk_heads > 0) lt_qk_unpermute(f, dst->shape[0], dst->shape[1], qk_heads);
    if (!quant) return LT_OK;
    lt_release_pages(t->data, t->nbytes); /* streaming: the source need not stay resident */
    return lt_qload_weight(q, m, dst, t->dtype);
}

/* A fused tensor (Phi-3's attn_qkv, ffn_up: the members' rows one after another) split into the
 * n member projections dst[0..n), each F32 or a quantization target. */
static lt_status load_fused(const lt_gguf *g, const char *name, lt_tensor **dst, int n,
                            lt_qload *q, lt_model *m) {
    const lt_gguf_tensor *t = lt_gguf_find_tensor(g, name);
    if (!t) return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is missing", g->path, name);
    int64_t rows = 0, cols = dst[0]->shape[1], trows = 1;
    for (int i = 0; i < n; i++) rows += dst[i]->shape[0];
    for (int i = 1; i < t->n_dims; i++) trows *= t->ne[i];
    if (t->ne[0] != cols || trows != rows)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has shape [%lld, %lld], expected "
                            "[%lld, %lld] from the model's metadata", g->path, name,
                            (long long)trows, (long long)t->ne[0], (long long)rows,
                            (long long)cols);
    float *all = lt_alloc_big((size_t)(rows * cols) * sizeof(float), name);
    if (!all) return LT_ERR_OOM;
    lt_gguf_tensor_to_f32(t, all);
    lt_release_pages(t->data, t->nbytes);
    lt_status st = lt_qload_split(q, m, all, dst, n, t->dtype);
    free(all);
    return st;
}

/* Release a quantized weight's own storage (NF4 codes + state, or Q8_0 blocks). */
static void free_quantized(lt_tensor *t) {
    if (t->dtype == LT_NF4) lt_nf4_free(t);
    else if (t->dtype != LT_F32) free(t->data);
    t->data = NULL;
}

void lt_model_free(lt_model *m) {
    if (!m) return;
    if (m->dev) { /* the weights live in the device arenas (device_model.c) */
        lt_model_dev_free(m);
    } else {
        if (m->layers)
            for (int l = 0; l < m->cfg.n_layer; l++)
                for (int k = 0; k < LT_MOD_COUNT; k++) free_quantized(&m->layers[l].w[k]);
        if (!m->cfg.tied) free_quantized(&m->lm_head);
    }
    free(m->base);
    free(m->lora_params);
    free(m->lora_grads);
    free(m->lora_grad_hdrs);
    free(m->layers);
    free(m->path);
    free(m);
}

/* GGUF tensor names for error messages (layer -1 with mod LT_MOD_COUNT: the output head). */
static void gguf_tensor_name(char *buf, size_t n, int layer, int mod) {
    if (mod == LT_MOD_COUNT) snprintf(buf, n, layer < 0 ? "token_embd.weight" : "output.weight");
    else snprintf(buf, n, "blk.%d.%s.weight", layer, gguf_names[mod]); /* layer 0's, unfused */
}

/* Heads to un-permute over for module k: llama.cpp permutes the q/k rows (weights and biases) of
 * "llama" files for its interleaved RoPE (convert_hf_to_gguf.py LlamaModel.modify_tensors);
 * the other architectures' files keep HF's rotate_half order (NEOX RoPE). 0 = none. */
static int qk_heads(const lt_model_config *c, int k) {
    if (c->arch != LT_ARCH_LLAMA && c->arch != LT_ARCH_MISTRAL) return 0;
    return k == LT_MOD_Q ? c->n_head : k == LT_MOD_K ? c->n_kv_head : 0;
}

/* Gemma GGUFs store every RMSNorm weight as 1 + w (llama.cpp conversion/gemma.py norm_shift);
 * lathe holds w and applies (1 + w) in the op, as transformers does. Subtracting 1 is exact for
 * stored values >= 0.5 (Sterbenz) and rounds below that by at most half an ulp of w. */
static void unshift_norms(lt_model *m) {
    const float off = m->cfg.norm_offset;
    for (int l = -1; l < m->cfg.n_layer; l++) {
        lt_layer *L = l >= 0 ? &m->layers[l] : NULL;
        lt_tensor *ln[6] = {l < 0 ? &m->out_norm : &L->attn_norm, l < 0 ? NULL : &L->ffn_norm,
                            l < 0 ? NULL : &L->post_attn_norm, l < 0 ? NULL : &L->post_ffn_norm,
                            l < 0 ? NULL : &L->q_norm, l < 0 ? NULL : &L->k_norm};
        for (int i = 0; i < 6; i++) {
            if (!ln[i] || !ln[i]->data) continue;
            float *w = ln[i]->data;
            for (int64_t j = 0; j < lt_tensor_numel(ln[i]); j++) w[j] -= off;
        }
    }
}

lt_status lt_model_load_gguf(lt_model **out, const lt_gguf *g) {
    return lt_model_load_gguf_opts(out, g, NULL);
}

lt_status lt_model_load_gguf_opts(lt_model **out, const lt_gguf *g, const lt_model_opts *o) {
    *out = NULL;
    lt_model *m = lt_xcalloc(1, sizeof *m);
    lt_status st = lt_model_config_from_gguf(&m->cfg, g);
    if (st) {
        free(m);
        return st;
    }
    const lt_model_config *c = &m->cfg;
    m->path = lt_xstrdup(g->path);
    lt_qload q;
    if ((st = lt_qload_init(&q, m, o, g->path, gguf_tensor_name))) goto fail;
    if ((st = lt_model_alloc_base(m, q.mask)) || (st = lt_qload_begin(&q, m))) goto fail;
    if ((st = load_tensor(g, "token_embd.weight", &m->tok_embd, &q, m, 0)) ||
        (st = load_tensor(g, "output_norm.weight", &m->out_norm, &q, m, 0)) ||
        (!c->tied && (st = load_tensor(g, "output.weight", &m->lm_head, &q, m, 0))))
        goto fail;
    char name[96];
    for (int l = 0; l < c->n_layer; l++) {
        lt_layer *L = &m->layers[l];
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        if ((st = load_tensor(g, name, &L->attn_norm, &q, m, 0))) goto fail;
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        if ((st = load_tensor(g, name, &L->ffn_norm, &q, m, 0))) goto fail;
        if (c->qk_norm) {
            snprintf(name, sizeof name, "blk.%d.attn_q_norm.weight", l);
            if ((st = load_tensor(g, name, &L->q_norm, &q, m, 0))) goto fail;
            snprintf(name, sizeof name, "blk.%d.attn_k_norm.weight", l);
            if ((st = load_tensor(g, name, &L->k_norm, &q, m, 0))) goto fail;
        }
        if (c->sandwich_norm) { /* Gemma: llama.cpp's names for the output norms */
            snprintf(name, sizeof name, "blk.%d.post_attention_norm.weight", l);
            if ((st = load_tensor(g, name, &L->post_attn_norm, &q, m, 0))) goto fail;
            snprintf(name, sizeof name, "blk.%d.post_ffw_norm.weight", l);
            if ((st = load_tensor(g, name, &L->post_ffn_norm, &q, m, 0))) goto fail;
        }
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, lt_model_gguf_stem(c, k));
            int first, nm = lt_model_adapter_group(c, k, &first, NULL);
            if (nm > 1) { /* Phi-3: attn_qkv / ffn_up, split at the group's first member */
                lt_tensor *dst[3] = {&L->w[first], &L->w[first + 1], &L->w[first + 2]};
                if (k == first && (st = load_fused(g, name, dst, nm, &q, m))) goto fail;
                continue;
            }
            if ((st = load_tensor(g, name, &L->w[k], &q, m, qk_heads(c, k)))) goto fail;
            if (!L->bias[k].data) continue;
            snprintf(name, sizeof name, "blk.%d.%s.bias", l, gguf_names[k]);
            if ((st = load_tensor(g, name, &L->bias[k], &q, m, qk_heads(c, k)))) goto fail;
        }
    }
    if (c->norm_offset != 0.0f) unshift_norms(m);
    lt_qload_end(&q, m, LT_OK);
    *out = m;
    return LT_OK;
fail:
    lt_qload_end(&q, m, st);
    lt_model_free(m);
    return st;
}

/* A LoRA header [rows, cols] at data with a persistent grad header `gh` at gdata, so backward
 * accumulates into the flat grad buffer. */
static void lora_header(lt_tensor *t, lt_tensor *gh, const char *name, int64_t rows, int64_t cols,
                        float *data, float *gdata) {
    memset(t, 0, sizeof *t);
    lt_tensor_set_shape(t, 2, (int64_t[]){rows, cols});
    t->dtype = LT_F32;
    t->name = name;
    t->requires_grad = true;
    t->data = data;
    t->grad = gh;
    *gh = *t;
    gh->requires_grad = false;
    gh->grad = NULL;
    gh->data = gdata;
}

float lt_lora_scale(const lt_lora_config *lc) {
    return lc->rslora ? lc->alpha / sqrtf((float)lc->r) : lc->alpha / (float)lc->r;
}

void lt_model_add_lora(lt_model *m, const lt_lora_config *lc, uint64_t seed) {
    const lt_model_config *c = &m->cfg;
    m->lora = *lc;
    m->lora.scale = lt_lora_scale(lc);
    /* one A and one B per adapter module (a fused group shares them: lt_model_adapter_group) */
    int64_t n = 0;
    for (int l = 0; l < c->n_layer; l++)
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            int f;
            lt_model_adapter_group(c, k, &f, NULL);
            if (!(lc->targets & (1u << k))) continue;
            if (k == f) n += (int64_t)lc->r * m->layers[l].w[k].shape[1];
            n += (int64_t)lc->r * m->layers[l].w[k].shape[0];
        }
    m->n_lora = n;
    free(m->lora_params);
    free(m->lora_grads);
    free(m->lora_grad_hdrs);
    m->lora_grad_hdrs = lt_xcalloc((size_t)c->n_layer * LT_MOD_COUNT * 2, sizeof(lt_tensor));
    m->lora_params = lt_xcalloc((size_t)n, sizeof(float));
    m->lora_grads = lt_xcalloc((size_t)n, sizeof(float));
    LT_ASSERT(m->device == LT_CPU); /* lt_model_to_device comes after the adapter */
    m->train_params = m->lora_params;
    m->train_grads = m->lora_grads;
    lt_rng rng = {seed};
    float *p = m->lora_params, *gp = m->lora_grads;
    for (int l = 0; l < c->n_layer; l++) {
        lt_layer *L = &m->layers[l];
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            lt_tensor *A = &L->lora_A[k], *B = &L->lora_B[k];
            memset(A, 0, sizeof *A);
            memset(B, 0, sizeof *B);
            if (!(lc->targets & (1u << k))) continue;
            int f;
            lt_model_adapter_group(c, k, &f, NULL);
            lt_tensor *gh = &m->lora_grad_hdrs[2 * (l * LT_MOD_COUNT + k)];
            const int64_t in = L->w[k].shape[1], outd = L->w[k].shape[0];
            if (k != f) {
                /* a later member of a fused module: the same A (same grad header, so its
                 * gradient sums over the members) and the next row block of the module's B */
                *A = L->lora_A[f];
                const lt_tensor *prev = &L->lora_B[k - 1];
                lora_header(B, gh + 1, "lora_B", outd, lc->r,
                            (float *)prev->data + prev->shape[0] * lc->r,
                            (float *)prev->grad->data + prev->shape[0] * lc->r);
                p += lc->r * outd;
                gp += lc->r * outd;
                continue;
            }
            /* A [r, in], then B of every member, [Σ rows, r]; this member's B is the first rows */
            lora_header(A, gh, "lora_A", lc->r, in, p, gp);
            lora_header(B, gh + 1, "lora_B", outd, lc->r, p + lc->r * in, gp + lc->r * in);
            /* kaiming_uniform_(a=√5) as in PEFT: bound = 1/√fan_in; B starts at zero */
            float bound = 1.0f / sqrtf((float)in);
            for (int64_t i = 0; i < lc->r * in; i++)
                p[i] = (2.0f * lt_rng_uniform(&rng) - 1.0f) * bound;
            p += lc->r * (in + outd);
            gp += lc->r * (in + outd);
        }
    }
    LT_ASSERT(p == m->lora_params + n);
}
