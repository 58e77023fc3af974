/* Merged exports: W' = W + scale·B·A (Hu et al. 2021, arXiv 2106.09685, eq. 3; scale = alpha/r,
 * or alpha/sqrt(r) with rsLoRA, arXiv 2312.03732) for every adapted projection, written as
 *  - an HF directory: safetensors shards (huggingface/safetensors README) named as
 *    transformers' LlamaForCausalLM state dict, split at a byte budget with
 *    model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map": {name: file}}, the
 *    layout of transformers' save_pretrained / huggingface_hub split_torch_state_dict_into_shards),
 *    config.json and tokenizer files beside;
 *  - a llama-architecture GGUF: tensor names and Q/K row permutation of llama.cpp
 *    convert_hf_to_gguf.py (LlamaModel), norms F32, llama.* keys, tokenizer.* keys.
 * A model without an adapter is written as is (that is `lathe convert`).
 *
 * A quantized base (QLoRA, arXiv 2305.14314: NF4 with or without double quantization, or Q8_0,
 * see model.h lt_model_opts) is merged as W' = deq(W) + scale·B·A: the merged model is the
 * DEQUANTIZED base plus the adapter, written at the requested dtype. Its forward pass equals the
 * one trained (quantized base + adapter, whose linear kernel also multiplies by deq(W)) up to the
 * output dtype's rounding of W' and float summation order; it differs from the original
 * full-precision base + adapter by the base's quantization error, which training saw and the
 * adapter partly absorbed. test_qlora measures the logit distance of the F32 merge to the
 * trained model. */
#include <cblas.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "export_impl.h"
#include "../quant/quant.h"

/* One tensor of the model in both namings. */
typedef enum {
    T_EMBED, T_OUT_NORM, T_LM_HEAD, T_ATTN_NORM, T_FFN_NORM, T_Q_NORM, T_K_NORM,
    T_POST_ATTN_NORM, T_POST_FFN_NORM, T_PROJ, T_BIAS
} tkind;
typedef struct {
    tkind kind;
    int layer, mod;   /* T_ATTN_NORM, T_FFN_NORM, T_PROJ */
    int n_mods;       /* T_PROJ: projections mod .. mod + n_mods - 1 stacked by rows (a fused
                       * module such as Phi-3's qkv_proj), else 1 */
    int64_t rows, cols; /* cols 0: a 1-D tensor of `rows` */
    char hf[128], gguf[64];
} mtensor;

/* In llama.cpp's order (convert_hf_to_gguf.py walks the HF state dict: embeddings, blocks,
 * final norm, lm_head). Returns the count; *out is malloc'ed. */
static int list_tensors(const lt_model *m, mtensor **out) {
    const lt_model_config *c = &m->cfg;
    int n = 0, cap = 3 + c->n_layer * (6 + 2 * LT_MOD_COUNT);
    mtensor *t = lt_xcalloc((size_t)cap, sizeof *t);
    t[n] = (mtensor){T_EMBED, -1, -1, 1, c->vocab_size, c->dim, "model.embed_tokens.weight",
                     "token_embd.weight"};
    n++;
    for (int l = 0; l < c->n_layer; l++) {
        mtensor *x = &t[n++];
        *x = (mtensor){T_ATTN_NORM, l, -1, 1, c->dim, 0, "", ""};
        snprintf(x->hf, sizeof x->hf, "model.layers.%d.input_layernorm.weight", l);
        snprintf(x->gguf, sizeof x->gguf, "blk.%d.attn_norm.weight", l);
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            const lt_tensor *w = &m->layers[l].w[k];
            int first;
            const char *mod;
            const int nm = lt_model_adapter_group(c, k, &first, &mod);
            if (k != first) continue; /* stacked into its fused module's tensor */
            int64_t rows = 0;
            for (int j = 0; j < nm; j++) rows += m->layers[l].w[k + j].shape[0];
            x = &t[n++];
            *x = (mtensor){T_PROJ, l, k, nm, rows, w->shape[1], "", ""};
            snprintf(x->hf, sizeof x->hf, "model.layers.%d.%s.%s.weight", l,
                     lt_module_parent((lt_module)k), mod);
            snprintf(x->gguf, sizeof x->gguf, "blk.%d.%s.weight", l, lt_model_gguf_stem(c, k));
            if (m->layers[l].bias[k].data) {
                x = &t[n++];
                *x = (mtensor){T_BIAS, l, k, 1, w->shape[0], 0, "", ""};
                snprintf(x->hf, sizeof x->hf, "model.layers.%d.%s.%s.bias", l,
                         lt_module_parent((lt_module)k), lt_module_name((lt_module)k));
                snprintf(x->gguf, sizeof x->gguf, "blk.%d.%s.bias", l, lt_model_gguf_stem(c, k));
            }
            if (k == LT_MOD_K && c->qk_norm) { /* convert_hf_to_gguf.py order: after k_proj */
                for (int j = 0; j < 2; j++) {
                    x = &t[n++];
                    *x = (mtensor){j ? T_K_NORM : T_Q_NORM, l, -1, 1, c->head_dim, 0, "", ""};
                    snprintf(x->hf, sizeof x->hf, "model.layers.%d.self_attn.%c_norm.weight", l,
                             j ? 'k' : 'q');
                    snprintf(x->gguf, sizeof x->gguf, "blk.%d.attn_%c_norm.weight", l,
                             j ? 'k' : 'q');
                }
            }
            if (k == LT_MOD_O && c->sandwich_norm) { /* Gemma's four norms (hf.c) */
                static const struct {
                    tkind kind;
                    const char *hf, *gguf;
                } g4[3] = {{T_POST_ATTN_NORM, "post_attention_layernorm", "post_attention_norm"},
                           {T_FFN_NORM, "pre_feedforward_layernorm", "ffn_norm"},
                           {T_POST_FFN_NORM, "post_feedforward_layernorm", "post_ffw_norm"}};
                for (int j = 0; j < 3; j++) {
                    x = &t[n++];
                    *x = (mtensor){g4[j].kind, l, -1, 1, c->dim, 0, "", ""};
                    snprintf(x->hf, sizeof x->hf, "model.layers.%d.%s.weight", l, g4[j].hf);
                    snprintf(x->gguf, sizeof x->gguf, "blk.%d.%s.weight", l, g4[j].gguf);
                }
            } else if (k == LT_MOD_O) {
                x = &t[n++];
                *x = (mtensor){T_FFN_NORM, l, -1, 1, c->dim, 0, "", ""};
                snprintf(x->hf, sizeof x->hf, "model.layers.%d.post_attention_layernorm.weight",
                         l);
                snprintf(x->gguf, sizeof x->gguf, "blk.%d.ffn_norm.weight", l);
            }
        }
    }
    t[n++] = (mtensor){T_OUT_NORM, -1, -1, 1, c->dim, 0, "model.norm.weight",
                       "output_norm.weight"};
    if (!c->tied)
        t[n++] = (mtensor){T_LM_HEAD, -1, -1, 1, c->vocab_size, c->dim, "lm_head.weight",
                           "output.weight"};
    LT_ASSERT(n <= cap);
    *out = t;
    return n;
}

static int64_t numel(const mtensor *t) { return t->rows * (t->cols ? t->cols : 1); }

static bool is_norm(tkind k) {
    return k == T_OUT_NORM || k == T_ATTN_NORM || k == T_FFN_NORM || k == T_Q_NORM ||
           k == T_K_NORM || k == T_POST_ATTN_NORM || k == T_POST_FFN_NORM;
}

/* The tensor's values in the HF layout, adapter merged in, into dst (numel floats). */
static void fill(const lt_model *m, const mtensor *t, float *dst) {
    if (t->kind == T_PROJ && t->n_mods > 1) { /* a fused module: its members' rows in order */
        for (int j = 0; j < t->n_mods; j++) {
            const lt_tensor *w = &m->layers[t->layer].w[t->mod + j];
            mtensor part = *t;
            part.mod = t->mod + j;
            part.n_mods = 1;
            part.rows = w->shape[0];
            fill(m, &part, dst);
            dst += part.rows * part.cols;
        }
        return;
    }
    const lt_tensor *src;
    switch (t->kind) {
    case T_EMBED: src = &m->tok_embd; break;
    case T_OUT_NORM: src = &m->out_norm; break;
    case T_LM_HEAD: src = &m->lm_head; break;
    case T_ATTN_NORM: src = &m->layers[t->layer].attn_norm; break;
    case T_FFN_NORM: src = &m->layers[t->layer].ffn_norm; break;
    case T_Q_NORM: src = &m->layers[t->layer].q_norm; break;
    case T_K_NORM: src = &m->layers[t->layer].k_norm; break;
    case T_POST_ATTN_NORM: src = &m->layers[t->layer].post_attn_norm; break;
    case T_POST_FFN_NORM: src = &m->layers[t->layer].post_ffn_norm; break;
    case T_BIAS: src = &m->layers[t->layer].bias[t->mod]; break;
    default: src = &m->layers[t->layer].w[t->mod]; break;
    }
    LT_ASSERT(lt_tensor_numel(src) == numel(t));
    if (src->dtype == LT_F32) memcpy(dst, src->data, (size_t)numel(t) * sizeof(float));
    else lt_dequant_rows(src, 0, t->rows, dst); /* a quantized base: deq(W) */
    if (t->kind != T_PROJ) return;
    const lt_tensor *A = &m->layers[t->layer].lora_A[t->mod];
    const lt_tensor *B = &m->layers[t->layer].lora_B[t->mod];
    if (!m->lora_params || !A->data) return;
    int r = (int)A->shape[0];
    /* dst [out, in] += scale · B [out, r] · A [r, in] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)t->rows, (int)t->cols, r,
                m->lora.scale, B->data, r, A->data, (int)t->cols, 1.0f, dst, (int)t->cols);
}

/* ---- GGUF --------------------------------------------------------------------------------- */

/* A NUL-terminated copy of a GGUF string. */
static char *gstr(lt_gguf_str s) {
    char *c = lt_xmalloc(s.len + 1);
    memcpy(c, s.ptr, s.len);
    c[s.len] = 0;
    return c;
}

/* Carry one metadata value over. The writer holds u32/i32/u64/f32/bool/string scalars and
 * string/i32/f32 arrays: narrower integers widen to 32 bits and f64 narrows to f32 (llama.cpp
 * reads the llama.* and tokenizer.* keys with these types). */
static void copy_kv(lt_gguf_writer *w, const lt_gguf_kv *kv) {
    switch (kv->type) {
    case LT_GGUF_UINT8: case LT_GGUF_UINT16: case LT_GGUF_UINT32:
        lt_gguf_writer_set_u32(w, kv->key, (uint32_t)kv->v.u);
        break;
    case LT_GGUF_INT8: case LT_GGUF_INT16: case LT_GGUF_INT32:
        lt_gguf_writer_set_i32(w, kv->key, (int32_t)kv->v.i);
        break;
    case LT_GGUF_UINT64: lt_gguf_writer_set_u64(w, kv->key, kv->v.u); break;
    case LT_GGUF_INT64: lt_gguf_writer_set_u64(w, kv->key, (uint64_t)kv->v.i); break;
    case LT_GGUF_FLOAT32: case LT_GGUF_FLOAT64:
        lt_gguf_writer_set_f32(w, kv->key, (float)kv->v.f);
        break;
    case LT_GGUF_BOOL: lt_gguf_writer_set_bool(w, kv->key, kv->v.b); break;
    case LT_GGUF_STRING: {
        char *s = gstr(kv->v.s);
        lt_gguf_writer_set_str(w, kv->key, s);
        free(s);
        break;
    }
    case LT_GGUF_ARRAY: {
        size_t n = (size_t)kv->arr_n;
        if (kv->arr_type == LT_GGUF_STRING) {
            char **s = lt_xcalloc(n ? n : 1, sizeof *s);
            for (size_t i = 0; i < n; i++) s[i] = gstr(kv->arr_str[i]);
            lt_gguf_writer_set_str_arr(w, kv->key, (const char *const *)s, n);
            for (size_t i = 0; i < n; i++) free(s[i]);
            free(s);
        } else if (kv->arr_type == LT_GGUF_FLOAT32 || kv->arr_type == LT_GGUF_FLOAT64) {
            float *f = lt_xmalloc((n ? n : 1) * sizeof *f);
            for (size_t i = 0; i < n; i++) f[i] = (float)lt_gguf_arr_float(kv, i);
            lt_gguf_writer_set_f32_arr(w, kv->key, f, n);
            free(f);
        } else if (kv->arr_type != LT_GGUF_ARRAY && kv->arr_type != LT_GGUF_BOOL) {
            int32_t *v = lt_xmalloc((n ? n : 1) * sizeof *v);
            for (size_t i = 0; i < n; i++) v[i] = (int32_t)lt_gguf_arr_int(kv, i);
            lt_gguf_writer_set_i32_arr(w, kv->key, v, n);
            free(v);
        }
        break; /* nested and bool arrays are not carried (no llama model key uses them) */
    }
    }
}

static bool has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

const char *lt_export__gguf_arch(const lt_model_config *c) {
    /* convert_hf_to_gguf.py: LlamaForCausalLM and MistralForCausalLM -> "llama" (Q/K permuted);
     * the others keep the HF row order (NEOX RoPE in llama.cpp) */
    switch (c->arch) {
    case LT_ARCH_QWEN2: return "qwen2";
    case LT_ARCH_QWEN3: return "qwen3";
    case LT_ARCH_PHI3: return "phi3"; /* fused attn_qkv / ffn_up */
    case LT_ARCH_GEMMA2: return "gemma2";
    case LT_ARCH_GEMMA3: return "gemma3";
    default: return "llama";
    }
}

/* The keys of llama.cpp's Gemma conventions (gguf_config.c read_gemma), or LT_ERR_MODEL naming
 * what a Gemma GGUF cannot carry exactly. */
static lt_status gemma_keys(const lt_model_config *c, lt_gguf_writer *w, const char *arch,
                            const char *path, int n_swa) {
    const bool g2 = c->arch == LT_ARCH_GEMMA2;
    const float qpas = lt_model_gguf_gemma_qpas(c);
    const int pattern = lt_model_swa_pattern(c);
    const char *what = NULL;
    if (!c->tied) what = "an lm_head apart from the embedding (llama.cpp's Gemma ties them)";
    else if ((float)pow(qpas, -0.5) != c->attn_scale)
        what = "a query_pre_attn_scalar other than the one llama.cpp derives from the model's "
               "size (head_dim, or hidden / heads for the 27B layouts)";
    else if (n_swa > 0 && pattern == 0)
        what = "sliding layers that follow no 'every n-th layer is global' pattern";
    else if (g2 && (n_swa == 0 || c->attn_softcap <= 0))
        what = "a Gemma 2 without a sliding window or attention soft-capping";
    else if (!g2 && c->attn_softcap > 0)
        what = "attention soft-capping in a Gemma 3";
    if (what)
        return lt_error_set(LT_ERR_MODEL, "%s: cannot write a %s GGUF: this model has %s; hint: "
                            "export merged safetensors or peft instead", path, arch, what);
    char key[128];
#define AKEY(k) (snprintf(key, sizeof key, "%s." k, arch), key)
    if (g2) lt_gguf_writer_set_f32(w, AKEY("attn_logit_softcapping"), c->attn_softcap);
    if (g2 || c->final_softcap > 0)
        lt_gguf_writer_set_f32(w, AKEY("final_logit_softcapping"), c->final_softcap);
    if (n_swa > 0) {
        lt_gguf_writer_set_u32(w, AKEY("attention.sliding_window"), (uint32_t)c->sliding_window);
        lt_gguf_writer_set_u32(w, AKEY("attention.sliding_window_pattern"), (uint32_t)pattern);
    }
    if (!g2)
        lt_gguf_writer_set_f32(w, AKEY("rope.freq_base_swa"),
                               c->rope_local_base > 0 ? c->rope_local_base : c->rope_base);
#undef AKEY
    return LT_OK;
}

/* Permute rows of a q/k weight or bias (rows = heads · head_dim) into llama.cpp's order when the
 * GGUF architecture needs it (convert_hf_to_gguf.py LlamaModel.modify_tensors permutes
 * q_proj/k_proj weights and biases). */
void lt_export__qk_to_gguf(const lt_model_config *c, int mod, float *x, int64_t rows,
                           int64_t cols) {
    if (c->arch != LT_ARCH_LLAMA && c->arch != LT_ARCH_MISTRAL) return;
    if (mod == LT_MOD_Q) lt_qk_permute(x, rows, cols ? cols : 1, c->n_head);
    if (mod == LT_MOD_K) lt_qk_permute(x, rows, cols ? cols : 1, c->n_kv_head);
}

lt_status lt_export_merged_gguf_file(const lt_export_src *src, const char *path, lt_dtype dtype) {
    const lt_model *m = src->m;
    const lt_model_config *c = &m->cfg;
    const char *arch = lt_export__gguf_arch(c);
    const bool gemma = c->arch == LT_ARCH_GEMMA2 || c->arch == LT_ARCH_GEMMA3;
    int swa_from, n_swa = lt_model_swa_layers(c, &swa_from);
    if (!gemma && n_swa > 0 && n_swa < c->n_layer)
        return lt_error_set(LT_ERR_MODEL, "%s: cannot write a GGUF: %d of %d layers use a sliding "
                            "window, and a GGUF's '%s.attention.sliding_window' applies to every "
                            "layer; hint: export merged safetensors instead", path, n_swa,
                            c->n_layer, arch);
    char key[128], prefix[32];
    snprintf(prefix, sizeof prefix, "%s.", arch);
#define AKEY(k) (snprintf(key, sizeof key, "%s." k, arch), key)
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_gguf_writer_set_str(w, "general.architecture", arch);
    /* the base's own general.*, <arch>.* and tokenizer.* keys first (names, licences, anything
     * lathe does not model), then the values this file's tensors imply; keys describing the old
     * file's storage are dropped */
    if (src->gguf)
        for (int64_t i = 0; i < src->gguf->n_kv; i++) {
            const lt_gguf_kv *kv = &src->gguf->kv[i];
            if (!strcmp(kv->key, "general.alignment") || !strcmp(kv->key, "general.file_type") ||
                !strcmp(kv->key, "general.quantization_version") ||
                !strcmp(kv->key, "general.type") || !strcmp(kv->key, "general.architecture"))
                continue;
            if (has_prefix(kv->key, "general.") || has_prefix(kv->key, prefix) ||
                has_prefix(kv->key, "tokenizer."))
                copy_kv(w, kv);
        }
    lt_gguf_writer_set_str(w, "general.type", "model");
    lt_gguf_writer_set_u32(w, "general.file_type", lt_export__ftype(dtype));
    lt_gguf_writer_set_u32(w, "general.quantization_version", 2);
    if (c->context_length > 0)
        lt_gguf_writer_set_u32(w, AKEY("context_length"), (uint32_t)c->context_length);
    lt_gguf_writer_set_u32(w, AKEY("embedding_length"), (uint32_t)c->dim);
    lt_gguf_writer_set_u32(w, AKEY("block_count"), (uint32_t)c->n_layer);
    lt_gguf_writer_set_u32(w, AKEY("feed_forward_length"), (uint32_t)c->ffn_dim);
    lt_gguf_writer_set_u32(w, AKEY("rope.dimension_count"), (uint32_t)c->head_dim);
    lt_gguf_writer_set_u32(w, AKEY("attention.head_count"), (uint32_t)c->n_head);
    lt_gguf_writer_set_u32(w, AKEY("attention.head_count_kv"), (uint32_t)c->n_kv_head);
    if (c->head_dim * c->n_head != c->dim || gemma) { /* convert_hf_to_gguf.py: head_dim */
        lt_gguf_writer_set_u32(w, AKEY("attention.key_length"), (uint32_t)c->head_dim);
        lt_gguf_writer_set_u32(w, AKEY("attention.value_length"), (uint32_t)c->head_dim);
    }
    lt_gguf_writer_set_f32(w, AKEY("attention.layer_norm_rms_epsilon"), c->rms_eps);
    lt_gguf_writer_set_f32(w, AKEY("rope.freq_base"), c->rope_base);
    lt_gguf_writer_set_u32(w, AKEY("vocab_size"), (uint32_t)c->vocab_size);
    if (c->rope_scaling.type == LT_ROPE_LINEAR) {
        lt_gguf_writer_set_str(w, AKEY("rope.scaling.type"), "linear");
        lt_gguf_writer_set_f32(w, AKEY("rope.scaling.factor"), c->rope_scaling.factor);
    }
    /* every layer slides (gguf_config.c reads the key that way), or Gemma's pattern */
    if (n_swa > 0 && !gemma)
        lt_gguf_writer_set_u32(w, AKEY("attention.sliding_window"), (uint32_t)c->sliding_window);
#undef AKEY
    lt_status st = gemma ? gemma_keys(c, w, arch, path, n_swa) : LT_OK;
    if (st) {
        lt_gguf_writer_free(w);
        return st;
    }
    /* a GGUF base's tokenizer.* keys were carried over verbatim above; otherwise rebuild them */
    if (!src->gguf || !lt_gguf_find(src->gguf, "tokenizer.ggml.model"))
        lt_tokenizer_to_gguf(src->tok, w);

    mtensor *ts;
    int n = list_tensors(m, &ts);
    void **bufs = lt_xcalloc((size_t)n + 1, sizeof *bufs);
    int64_t max_numel = 0;
    for (int i = 0; i < n; i++)
        if (numel(&ts[i]) > max_numel) max_numel = numel(&ts[i]);
    float *scratch = lt_alloc_big((size_t)max_numel * sizeof(float), "a merged tensor");
    st = scratch ? LT_OK : LT_ERR_OOM;
    for (int i = 0; i < n && !st; i++) {
        mtensor *t = &ts[i];
        fill(m, t, scratch);
        if (is_norm(t->kind)) /* Gemma: llama.cpp stores (1 + w) (conversion/gemma.py) */
            for (int64_t j = 0; j < numel(t); j++) scratch[j] += c->norm_offset;
        if (t->kind == T_PROJ || t->kind == T_BIAS)
            lt_export__qk_to_gguf(c, t->mod, scratch, t->rows, t->cols);
        lt_dtype td = t->cols ? lt_export__gguf_dtype(dtype, t->cols) : LT_F32;
        bufs[i] = lt_export__convert(scratch, numel(t), td);
        if (t->cols)
            lt_gguf_writer_add_tensor(w, t->gguf, td, 2, (int64_t[]){t->cols, t->rows}, bufs[i]);
        else
            lt_gguf_writer_add_tensor(w, t->gguf, td, 1, (int64_t[]){t->rows}, bufs[i]);
    }
    if (!st && c->rope_scaling.type == LT_ROPE_LLAMA3) {
        /* convert_hf_to_gguf.py LlamaModel.generate_extra_tensors: llama3 scaling is stored as
         * per-frequency divisors "rope_freqs.weight" [head_dim/2] (F32) that llama.cpp applies to
         * the default frequencies: factor_i = default inv_freq_i / scaled inv_freq_i. */
        int half = c->head_dim / 2;
        float *scaled = lt_xmalloc((size_t)half * sizeof(float));
        float *f = lt_xmalloc((size_t)half * sizeof(float));
        lt_model_config plain = *c;
        plain.rope_scaling.type = LT_ROPE_DEFAULT;
        lt_rope_inv_freq(f, &plain);
        lt_rope_inv_freq(scaled, c);
        for (int i = 0; i < half; i++) f[i] = f[i] / scaled[i];
        free(scaled);
        bufs[n] = f;
        lt_gguf_writer_add_tensor(w, "rope_freqs.weight", LT_F32, 1, (int64_t[]){half}, f);
    }
    if (!st) st = lt_gguf_writer_write(w, path);
    free(scratch);
    for (int i = 0; i <= n; i++) free(bufs[i]);
    free(bufs);
    free(ts);
    lt_gguf_writer_free(w);
    return st;
}

/* ---- HF directory ------------------------------------------------------------------------- */

static lt_status write_json(const char *path, json_t *j) {
    char *text = json_dumps(j, JSON_INDENT(2));
    lt_status st = lt_write_file_atomic(path, text, strlen(text));
    free(text);
    return st;
}

lt_status lt_export_merged_hf_dir(const lt_export_src *src, const char *dir, lt_dtype dtype,
                                  int64_t max_shard_bytes) {
    const lt_model *m = src->m;
    LT_ASSERT(dtype == LT_F32 || dtype == LT_F16 || dtype == LT_BF16);
    mtensor *ts;
    int n = list_tensors(m, &ts);
    /* plan: consecutive tensors fill a shard up to max_shard_bytes; a tensor larger than the
     * budget gets a shard of its own (as transformers' sharding does) */
    int *shard_of = lt_xmalloc((size_t)n * sizeof *shard_of);
    int n_shards = 0;
    int64_t cur = 0, total = 0;
    for (int i = 0; i < n; i++) {
        int64_t b = (int64_t)lt_dtype_nbytes(dtype, numel(&ts[i]));
        if (n_shards == 0 || (cur > 0 && cur + b > max_shard_bytes)) {
            n_shards++;
            cur = 0;
        }
        cur += b;
        total += b;
        shard_of[i] = n_shards - 1;
    }
    char path[PATH_MAX + 256], file[64];
    json_t *wmap = json_object();
    lt_status st = LT_OK;
    int first = 0;
    int64_t max_numel = 0;
    for (int i = 0; i < n; i++)
        if (numel(&ts[i]) > max_numel) max_numel = numel(&ts[i]);
    float *scratch = lt_alloc_big((size_t)max_numel * sizeof(float), "a merged tensor");
    if (!scratch) st = LT_ERR_OOM;
    for (int s = 0; s < n_shards && !st; s++) {
        if (n_shards == 1) snprintf(file, sizeof file, "model.safetensors");
        else snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        int last = first;
        while (last < n && shard_of[last] == s) last++;
        lt_st_writer *w = lt_st_writer_new();
        void **bufs = lt_xcalloc((size_t)(last - first), sizeof *bufs);
        for (int i = first; i < last; i++) {
            const mtensor *t = &ts[i];
            fill(m, t, scratch);
            bufs[i - first] = lt_export__convert(scratch, numel(t), dtype);
            int64_t shape[2] = {t->rows, t->cols};
            lt_st_writer_add(w, t->hf, dtype, t->cols ? 2 : 1, shape, bufs[i - first]);
            json_object_set_new(wmap, t->hf, json_string(file));
        }
        lt_st_writer_meta(w, "format", "pt");
        snprintf(path, sizeof path, "%s/%s", dir, file);
        st = lt_st_writer_write(w, path);
        lt_st_writer_free(w);
        for (int i = first; i < last; i++) free(bufs[i - first]);
        free(bufs);
        first = last;
    }
    free(scratch);
    if (!st && n_shards > 1) {
        json_t *idx = json_object(), *meta = json_object();
        json_object_set_new(meta, "total_size", json_integer(total));
        json_object_set_new(idx, "metadata", meta);
        json_object_set(idx, "weight_map", wmap);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        st = write_json(path, idx);
        json_decref(idx);
    }
    json_decref(wmap);
    free(shard_of);
    free(ts);
    if (!st) {
        lt_model_config cfg = m->cfg;
        cfg.dtype = dtype; /* torch_dtype of the files written here */
        snprintf(path, sizeof path, "%s/config.json", dir);
        st = lt_hf_config_write(&cfg, path);
    }
    if (!st) st = lt_tokenizer_write_hf(src->tok, dir);
    return st;
}
