/*
 * The model config of a GGUF file, for the decoder families lathe builds: general.architecture
 * "llama" (Llama, SmolLM, Mistral, DeepSeek-R1-Distill-Llama), "qwen2" (Qwen2/2.5,
 * DeepSeek-R1-Distill-Qwen) and "qwen3" (Qwen3 dense: per-head q/k RMSNorm tensors
 * blk.N.attn_{q,k}_norm.weight), keys under "<arch>." as llama.cpp's src/llama-arch.cpp names
 * them (LLM_KV_*) and convert_hf_to_gguf.py writes them.
 *
 * Never silently wrong: every "<arch>." key and every tensor of the file is either applied, known
 * to be inert, or refused with its name. In particular
 *  - "rope_freqs.weight" (F32 [head_dim/2]) is how convert_hf_to_gguf.py (LlamaModel
 *    generate_extra_tensors) stores Llama 3.1+ "llama3" RoPE scaling: llama.cpp divides each
 *    default frequency by it. lathe recovers the llama3 parameters that reproduce it (so HF
 *    exports carry rope_scaling) and refuses a file whose factors no llama3 scaling reproduces;
 *  - attention biases (blk.N.attn_{q,k,v,output}.bias) are loaded when present;
 *  - "<arch>.attention.sliding_window" (what lathe writes for Mistral) is a window on every
 *    layer; on a "llama" file it makes the model a Mistral, the HF class that has one;
 *  - a tensor outside the decoder (MoE routers, q/k norms, FFN biases, ...) is refused.
 */
#include "model_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "<arch>.<key>" into buf. */
static const char *akey(char *buf, size_t n, const char *arch, const char *key) {
    snprintf(buf, n, "%s.%s", arch, key);
    return buf;
}

static lt_status need_int(const lt_gguf *g, const char *key, int64_t lo, int64_t hi, int *out) {
    int64_t v;
    if (!lt_gguf_get_int(g, key, &v))
        return lt_error_set(LT_ERR_MODEL, "%s: missing or non-integer metadata key '%s'", g->path,
                            key);
    if (v < lo || v > hi)
        return lt_error_set(LT_ERR_MODEL, "%s: metadata '%s' = %lld is outside [%lld, %lld]",
                            g->path, key, (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return LT_OK;
}

/* ---- <arch>.* keys -------------------------------------------------------------------------- */

/* Keys (after "<arch>.") this file reads. */
static const char *const read_keys[] = {
    "context_length", "embedding_length", "block_count", "feed_forward_length",
    "rope.dimension_count", "rope.freq_base", "attention.head_count", "attention.head_count_kv",
    "attention.key_length", "attention.value_length", "attention.layer_norm_rms_epsilon",
    "rope.scaling.type", "rope.scaling.factor", "vocab_size", "attention.sliding_window", NULL};
/* ... and for Gemma (read_gemma) */
static const char *const gemma_keys[] = {"attn_logit_softcapping", "final_logit_softcapping",
                                         "attention.sliding_window_pattern",
                                         "rope.freq_base_swa", NULL};
/* Keys that do not change the forward pass of these decoders: the original context of a
 * scaling (used by YaRN only, which is refused), whether the model was fine-tuned with it, and
 * llama.cpp's record of the pre-GGUF tensor layout. */
static const char *const inert_keys[] = {"rope.scaling.original_context_length",
                                         "rope.scaling.finetuned", "tensor_data_layout", NULL};
/* Keys of other architectures that would change the function: refused unless 0 / false. */
static const struct {
    const char *key, *what;
} refused_keys[] = {
    {"expert_count", "a mixture of experts (Mixtral-style)"},
    {"expert_used_count", "a mixture of experts"},
    {"expert_shared_count", "shared experts"},
    {"attn_logit_softcapping", "attention logit soft-capping (Gemma 2)"},
    {"final_logit_softcapping", "final logit soft-capping (Gemma 2)"},
    {"attention.layer_norm_epsilon", "LayerNorm instead of RMSNorm"},
    {"embedding_scale", "scaled embeddings"},
    {"residual_scale", "scaled residuals"},
    {"logit_scale", "scaled logits"},
    {"attention.scale", "a custom attention scale"},
    {"attention.q_lora_rank", "low-rank attention (DeepSeek V2/V3)"},
    {"attention.kv_lora_rank", "low-rank attention (DeepSeek V2/V3)"},
};

static bool in_list(const char *const *list, const char *k) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], k)) return true;
    return false;
}

static bool kv_is_zero(const lt_gguf *g, const lt_gguf_kv *kv) {
    int64_t iv;
    double fv;
    bool bv;
    if (lt_gguf_get_bool(g, kv->key, &bv)) return !bv;
    if (lt_gguf_get_int(g, kv->key, &iv)) return iv == 0;
    if (lt_gguf_get_float(g, kv->key, &fv)) return fv == 0;
    return false;
}

static lt_status audit_keys(const lt_gguf *g, const char *arch, const lt_model_config *c) {
    const bool gemma = c->arch == LT_ARCH_GEMMA2 || c->arch == LT_ARCH_GEMMA3;
    const size_t plen = strlen(arch);
    char unknown[512] = "";
    size_t n_unknown = 0, len = 0;
    for (int64_t i = 0; i < g->n_kv; i++) {
        const lt_gguf_kv *kv = &g->kv[i];
        if (strncmp(kv->key, arch, plen) || kv->key[plen] != '.') continue;
        const char *k = kv->key + plen + 1;
        if (in_list(read_keys, k) || in_list(inert_keys, k)) continue;
        if (gemma && in_list(gemma_keys, k)) continue;
        bool refused = false;
        for (size_t r = 0; r < sizeof refused_keys / sizeof refused_keys[0]; r++)
            if (!strcmp(k, refused_keys[r].key)) {
                if (!kv_is_zero(g, kv))
                    return lt_error_set(LT_ERR_MODEL, "%s: metadata '%s' means %s, which lathe "
                                        "does not apply; the model would compute a different "
                                        "function, so it is refused", g->path, kv->key,
                                        refused_keys[r].what);
                refused = true;
            }
        if (!strcmp(k, "attention.causal")) {
            bool causal = true;
            if (lt_gguf_get_bool(g, kv->key, &causal) && !causal)
                return lt_error_set(LT_ERR_MODEL, "%s: metadata '%s' is false: a non-causal "
                                    "(embedding) model; lathe trains causal decoders", g->path,
                                    kv->key);
            continue;
        }
        if (refused) continue;
        n_unknown++;
        if (len < sizeof unknown - 64)
            len += (size_t)snprintf(unknown + len, sizeof unknown - len, "%s'%s'",
                                    n_unknown > 1 ? ", " : "", kv->key);
    }
    if (n_unknown)
        lt_warn("%s: lathe does not read %zu metadata key%s (%s); if one of them changes the "
                "model, lathe's results differ from llama.cpp's", g->path, n_unknown,
                n_unknown > 1 ? "s" : "", unknown);
    return LT_OK;
}

/* ---- tensors --------------------------------------------------------------------------------- */

/* Is `name` a tensor of the decoder c describes? A bias only where the config has one. */
static bool expected_tensor(const lt_model_config *c, const char *name) {
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "output_norm.weight") ||
        !strcmp(name, "rope_freqs.weight"))
        return true;
    if (!strcmp(name, "output.weight")) return !c->tied;
    int l, n = 0;
    char stem[32], kind[8];
    if (sscanf(name, "blk.%d.%31[a-z_].%7[a-z]%n", &l, stem, kind, &n) != 3 || name[n] != '\0' ||
        l < 0 || l >= c->n_layer)
        return false;
    bool weight = !strcmp(kind, "weight"), bias = !strcmp(kind, "bias");
    if (weight && (!strcmp(stem, "attn_norm") || !strcmp(stem, "ffn_norm"))) return true;
    if (weight && (!strcmp(stem, "attn_q_norm") || !strcmp(stem, "attn_k_norm")))
        return c->qk_norm;
    if (weight && (!strcmp(stem, "post_attention_norm") || !strcmp(stem, "post_ffw_norm")))
        return c->sandwich_norm;
    for (int k = 0; k < LT_MOD_COUNT; k++)
        if (!strcmp(stem, lt_model_gguf_stem(c, k)))
            return weight || (bias && lt_model_module_has_bias(c, (lt_module)k));
    return false;
}

/* The attention biases the file carries: all of q/k/v or none, o_proj on its own. */
static lt_status detect_biases(const lt_gguf *g, lt_model_config *c) {
    bool has[LT_MOD_COUNT];
    char name[64];
    for (int k = 0; k < LT_MOD_COUNT; k++) {
        snprintf(name, sizeof name, "blk.0.%s.bias", lt_model_gguf_stem(c, k));
        has[k] = lt_gguf_find_tensor(g, name) != NULL;
    }
    if (has[LT_MOD_Q] != has[LT_MOD_K] || has[LT_MOD_Q] != has[LT_MOD_V])
        return lt_error_set(LT_ERR_MODEL, "%s: blk.0 has biases on some of attn_q, attn_k and "
                            "attn_v but not all; lathe builds q/k/v biases together (Qwen2, "
                            "Llama attention_bias)", g->path);
    c->qkv_bias = has[LT_MOD_Q];
    c->o_bias = has[LT_MOD_O];
    return LT_OK;
}

static lt_status audit_tensors(const lt_gguf *g, const lt_model_config *c, const char *arch) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (!expected_tensor(c, g->tensors[i].name))
            return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is not part of the '%s' decoder "
                                "lathe builds (%d layers%s%s); ignoring it would compute a "
                                "different function, so the file is refused", g->path,
                                g->tensors[i].name, arch, c->n_layer,
                                c->qkv_bias ? ", q/k/v biases" : "",
                                c->o_bias ? ", o_proj bias" : "");
    return LT_OK;
}

/* ---- rope_freqs.weight -> llama3 scaling ------------------------------------------------------ */

/* Relative agreement of lathe's llama3 factors with the file's. The file's were computed by
 * convert_hf_to_gguf.py from float32 frequencies, lathe's in float32 by lt_rope_inv_freq: they
 * differ by rounding only (a few ulp, ~1e-6); a wrong parameter moves some factor by >1e-2. */
#define ROPE_FREQS_FIT_TOL 1e-5

/* Find llama3 parameters (factor, low/high_freq_factor, original context) whose per-frequency
 * divisors default_inv / llama3_inv equal ff[0..half). The factor is the largest divisor (the
 * lowest frequencies are divided by exactly it); the rest are searched over the values Meta's
 * configs use and their neighbours. */
static bool fit_llama3(lt_model_config *c, const float *ff, int half) {
    float fmax = 1.0f;
    for (int i = 0; i < half; i++) fmax = ff[i] > fmax ? ff[i] : fmax;
    static const float lows[] = {1, 0.5f, 2, 4};
    static const float highs[] = {4, 2, 8, 16, 1};
    static const int origs[] = {8192, 4096, 2048, 16384, 32768, 65536, 131072, 1024, 512, 256};
    float *base = lt_xmalloc((size_t)half * sizeof(float));
    float *scaled = lt_xmalloc((size_t)half * sizeof(float));
    lt_model_config plain = *c;
    plain.rope_scaling.type = LT_ROPE_DEFAULT;
    lt_rope_inv_freq(base, &plain);
    bool found = false;
    for (size_t a = 0; a < sizeof lows / sizeof *lows && !found; a++)
        for (size_t b = 0; b < sizeof highs / sizeof *highs && !found; b++)
            for (size_t o = 0; o < sizeof origs / sizeof *origs && !found; o++) {
                if (!(highs[b] > lows[a])) continue;
                lt_model_config t = *c;
                t.rope_scaling = (lt_rope_scaling){LT_ROPE_LLAMA3, fmax, lows[a], highs[b],
                                                   origs[o]};
                lt_rope_inv_freq(scaled, &t);
                found = true;
                for (int i = 0; i < half && found; i++)
                    found = fabs(base[i] / scaled[i] - ff[i]) <= ROPE_FREQS_FIT_TOL * ff[i];
                if (found) c->rope_scaling = t.rope_scaling;
            }
    free(base);
    free(scaled);
    return found;
}

static lt_status read_rope_freqs(const lt_gguf *g, lt_model_config *c) {
    const lt_gguf_tensor *t = lt_gguf_find_tensor(g, "rope_freqs.weight");
    if (!t) return LT_OK;
    const int half = c->head_dim / 2;
    if (t->dtype != LT_F32 || lt_gguf_tensor_numel(t) != half)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor 'rope_freqs.weight' must be F32 with %d "
                            "values (head_dim / 2)", g->path, half);
    if (c->rope_scaling.type != LT_ROPE_DEFAULT)
        return lt_error_set(LT_ERR_MODEL, "%s: both a rope scaling type and 'rope_freqs.weight' "
                            "are given; lathe cannot tell which llama.cpp applies", g->path);
    const float *ff = t->data;
    bool identity = true;
    for (int i = 0; i < half; i++) {
        if (!(isfinite(ff[i]) && ff[i] > 0))
            return lt_error_set(LT_ERR_MODEL, "%s: 'rope_freqs.weight'[%d] = %g is not a positive "
                                "frequency divisor", g->path, i, (double)ff[i]);
        identity = identity && ff[i] == 1.0f;
    }
    if (identity) return LT_OK;
    if (!fit_llama3(c, ff, half))
        return lt_error_set(LT_ERR_MODEL, "%s: 'rope_freqs.weight' holds per-frequency RoPE "
                            "divisors (%g .. %g) that no \"llama3\" rope scaling reproduces; "
                            "lathe applies llama3, linear and no scaling only", g->path,
                            (double)ff[0], (double)ff[half - 1]);
    return LT_OK;
}

/* ---- Gemma ---------------------------------------------------------------------------------- */

float lt_model_gguf_gemma_qpas(const lt_model_config *c) {
    const bool is27b = c->n_layer == (c->arch == LT_ARCH_GEMMA2 ? 46 : 62);
    return is27b ? (float)(c->dim / c->n_head) : (float)c->head_dim;
}

int lt_model_swa_pattern(const lt_model_config *c) {
    for (int p = 1; p <= c->n_layer + 1; p++) {
        bool match = true;
        for (int l = 0; l < c->n_layer && match; l++)
            match = (lt_model_layer_window(c, l) > 0) == ((l + 1) % p != 0);
        if (match) return p;
    }
    return 0;
}

/* llama.cpp's Gemma conventions (src/models/gemma2.cpp, gemma3.cpp; conversion/gemma.py): norms
 * stored as 1 + w (lathe loads w, llama.c), embeddings × sqrt(hidden), GeGLU, norms after
 * attention and MLP, the query scale derived from the model size (lt_model_gguf_gemma_qpas);
 * Gemma 2: attention and final soft-capping (defaults 50 and 30), a window (default 4096) on
 * layers 0, 2, ...; Gemma 3: q/k norms, a window only when the key says, on all but every 6th
 * layer, the sliding layers' RoPE base rope.freq_base_swa (default 10000), unscaled; a
 * sliding_window_pattern key (a count, or one bool per layer) overrides the pattern. The
 * output head is always the embedding. */
static lt_status read_gemma(const lt_gguf *g, const char *arch, lt_model_config *c, int window) {
    char k[96];
#define AK(key) akey(k, sizeof k, arch, key)
    const bool g2 = c->arch == LT_ARCH_GEMMA2;
    c->act = LT_ACT_GELU_TANH;
    c->norm_offset = 1.0f;
    c->embed_scale = (float)sqrt((double)c->dim);
    c->sandwich_norm = true;
    c->qk_norm = !g2;
    c->attn_scale = (float)pow(lt_model_gguf_gemma_qpas(c), -0.5);
    double f;
    c->attn_softcap = g2 ? (lt_gguf_get_float(g, AK("attn_logit_softcapping"), &f) ? (float)f
                                                                                   : 50.0f)
                         : 0.0f;
    c->final_softcap = lt_gguf_get_float(g, AK("final_logit_softcapping"), &f) ? (float)f
                       : g2                                                    ? 30.0f
                                                                               : 0.0f;
    if (!(c->attn_softcap >= 0) || !(c->final_softcap >= 0))
        return lt_error_set(LT_ERR_MODEL, "%s: a soft-capping value is negative", g->path);
    if (!lt_gguf_find(g, AK("attention.sliding_window")) && g2) window = 4096;
    lt_model_set_swa(c, window, c->n_layer);
    const lt_gguf_kv *pk = lt_gguf_find(g, AK("attention.sliding_window_pattern"));
    int64_t pattern = g2 ? 2 : 6;
    if (pk && pk->type == LT_GGUF_ARRAY) {
        if ((int64_t)pk->arr_n != c->n_layer)
            return lt_error_set(LT_ERR_MODEL, "%s: '%s' has %llu entries for %d layers", g->path,
                                pk->key, (unsigned long long)pk->arr_n, c->n_layer);
        for (int l = 0; l < c->n_layer && window > 0; l++)
            if (lt_gguf_arr_int(pk, (uint64_t)l)) c->swa_layers[l / 64] |= 1ull << (l % 64);
    } else {
        if (pk && (!lt_gguf_get_int(g, pk->key, &pattern) || pattern < 1))
            return lt_error_set(LT_ERR_MODEL, "%s: '%s' must be a positive count or one bool "
                                "per layer", g->path, pk->key);
        for (int l = 0; l < c->n_layer && window > 0; l++)
            if ((l + 1) % pattern) c->swa_layers[l / 64] |= 1ull << (l % 64);
    }
    if (!g2)
        c->rope_local_base = lt_gguf_get_float(g, AK("rope.freq_base_swa"), &f) ? (float)f
                                                                                : 10000.0f;
#undef AK
    return LT_OK;
}

/* ---- the config ------------------------------------------------------------------------------ */

lt_status lt_model_config_from_gguf(lt_model_config *c, const lt_gguf *g) {
    memset(c, 0, sizeof *c);
    c->dtype = LT_F32;
    lt_gguf_str as;
    if (!lt_gguf_get_str(g, "general.architecture", &as))
        return lt_error_set(LT_ERR_MODEL, "%s: no 'general.architecture' key; is this a model "
                            "GGUF?", g->path);
    const char *arch;
    if (lt_gguf_str_eq(as, "llama")) {
        arch = "llama";
        c->arch = LT_ARCH_LLAMA;
    } else if (lt_gguf_str_eq(as, "qwen2")) {
        arch = "qwen2";
        c->arch = LT_ARCH_QWEN2;
    } else if (lt_gguf_str_eq(as, "phi3")) {
        arch = "phi3";
        c->arch = LT_ARCH_PHI3;
        c->fused = true; /* blk.N.attn_qkv, blk.N.ffn_up (gate then up) */
    } else if (lt_gguf_str_eq(as, "gemma2") || lt_gguf_str_eq(as, "gemma3")) {
        const bool g2 = lt_gguf_str_eq(as, "gemma2");
        arch = g2 ? "gemma2" : "gemma3";
        c->arch = g2 ? LT_ARCH_GEMMA2 : LT_ARCH_GEMMA3;
    } else if (lt_gguf_str_eq(as, "qwen3")) {
        arch = "qwen3";
        c->arch = LT_ARCH_QWEN3;
        c->qk_norm = true; /* blk.N.attn_{q,k}_norm.weight [head_dim] */
    } else {
        return lt_error_set(LT_ERR_MODEL, "%s: architecture '%.*s' is not supported; lathe reads "
                            "'llama' (Llama, SmolLM, Mistral, DeepSeek-R1-Distill-Llama), "
                            "'qwen2' (Qwen2/2.5, DeepSeek-R1-Distill-Qwen), 'qwen3' (Qwen3 "
                            "dense), 'phi3' (Phi-3, Phi-4), 'gemma2' and 'gemma3' GGUF files",
                            g->path,
                            (int)(as.len > 64 ? 64 : as.len), as.ptr);
    }
    char k[96];
#define AK(key) akey(k, sizeof k, arch, key)
    lt_status st;
    if ((st = need_int(g, AK("block_count"), 1, LT_MAX_LAYERS, &c->n_layer)) ||
        (st = need_int(g, AK("embedding_length"), 1, 1 << 20, &c->dim)) ||
        (st = need_int(g, AK("attention.head_count"), 1, 4096, &c->n_head)) ||
        (st = need_int(g, AK("feed_forward_length"), 1, 1 << 22, &c->ffn_dim)))
        return st;
    c->n_kv_head = c->n_head;
    if (lt_gguf_find(g, AK("attention.head_count_kv")) &&
        (st = need_int(g, AK("attention.head_count_kv"), 1, c->n_head, &c->n_kv_head)))
        return st;
    if (c->n_head % c->n_kv_head)
        return lt_error_set(LT_ERR_MODEL, "%s: '%s.attention.head_count_kv' = %d does not divide "
                            "'%s.attention.head_count' = %d", g->path, arch, c->n_kv_head, arch,
                            c->n_head);
    /* llama.cpp writes key_length only when head_dim differs from dim / n_head */
    if (lt_gguf_find(g, AK("attention.key_length"))) {
        if ((st = need_int(g, AK("attention.key_length"), 2, 1024, &c->head_dim))) return st;
        int vlen = c->head_dim;
        if (lt_gguf_find(g, AK("attention.value_length")) &&
            (st = need_int(g, AK("attention.value_length"), 1, 1024, &vlen)))
            return st;
        if (vlen != c->head_dim)
            return lt_error_set(LT_ERR_MODEL, "%s: '%s.attention.value_length' = %d differs from "
                                "'%s.attention.key_length' = %d; lathe needs equal head sizes",
                                g->path, arch, vlen, arch, c->head_dim);
    } else {
        if (c->dim % c->n_head)
            return lt_error_set(LT_ERR_MODEL, "%s: '%s.attention.head_count' = %d does not divide "
                                "'%s.embedding_length' = %d and no '%s.attention.key_length' "
                                "gives the head size", g->path, arch, c->n_head, arch, c->dim,
                                arch);
        c->head_dim = c->dim / c->n_head;
    }
    if (c->head_dim % 2)
        return lt_error_set(LT_ERR_MODEL, "%s: head dimension %d is odd; RoPE needs pairs",
                            g->path, c->head_dim);
    int64_t iv = 0;
    if (lt_gguf_get_int(g, AK("rope.dimension_count"), &iv) && iv != c->head_dim)
        return lt_error_set(LT_ERR_MODEL, "%s: '%s.rope.dimension_count' = %lld rotates part of "
                            "each %d-wide head; lathe supports full-head RoPE only", g->path, arch,
                            (long long)iv, c->head_dim);
    if (lt_gguf_get_int(g, AK("context_length"), &iv)) c->context_length = (int)iv;
    double f;
    c->rope_base = lt_gguf_get_float(g, AK("rope.freq_base"), &f) ? (float)f : 10000.0f;
    if (!(c->rope_base > 0) || !isfinite(c->rope_base))
        return lt_error_set(LT_ERR_MODEL, "%s: '%s.rope.freq_base' must be a positive number",
                            g->path, arch);
    c->rms_eps = lt_gguf_get_float(g, AK("attention.layer_norm_rms_epsilon"), &f) ? (float)f
                                                                                  : 1e-5f;
    if (!(c->rms_eps > 0))
        return lt_error_set(LT_ERR_MODEL, "%s: '%s.attention.layer_norm_rms_epsilon' must be "
                            "positive as a float32", g->path, arch);
    /* llama.cpp rope scaling keys: type none/linear/yarn/longrope, factor (freq_scale = 1/factor) */
    lt_gguf_str rs;
    if (lt_gguf_get_str(g, AK("rope.scaling.type"), &rs) && !lt_gguf_str_eq(rs, "none")) {
        if (!lt_gguf_str_eq(rs, "linear"))
            return lt_error_set(LT_ERR_MODEL, "%s: '%s.rope.scaling.type' = '%.*s' is not "
                                "supported; lathe reads 'none' and 'linear' (and llama3 scaling "
                                "as 'rope_freqs.weight')", g->path, arch,
                                (int)(rs.len > 32 ? 32 : rs.len), rs.ptr);
        if (!lt_gguf_get_float(g, AK("rope.scaling.factor"), &f) || !(f > 0))
            return lt_error_set(LT_ERR_MODEL, "%s: linear rope scaling needs a positive "
                                "'%s.rope.scaling.factor'", g->path, arch);
        c->rope_scaling.type = LT_ROPE_LINEAR;
        c->rope_scaling.factor = (float)f;
    }
    int window = 0;
    if (lt_gguf_find(g, AK("attention.sliding_window")) &&
        (st = need_int(g, AK("attention.sliding_window"), 0, 1 << 30, &window)))
        return st;
    lt_model_set_swa(c, window, 0);
    if ((c->arch == LT_ARCH_GEMMA2 || c->arch == LT_ARCH_GEMMA3) &&
        (st = read_gemma(g, arch, c, window)))
        return st;
    if (window > 0 && c->arch == LT_ARCH_LLAMA) c->arch = LT_ARCH_MISTRAL;
    if (window > 0 && c->arch == LT_ARCH_PHI3)
        lt_warn("%s: '%s.attention.sliding_window' = %d is applied on every layer, as "
                "transformers does; llama.cpp 0.3.x disables Phi-3's window", g->path, arch,
                window);
#undef AK
    c->bos_id = lt_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &iv) ? (int)iv : -1;
    c->eos_id = lt_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &iv) ? (int)iv : -1;
    c->pad_id = lt_gguf_get_int(g, "tokenizer.ggml.padding_token_id", &iv) ? (int)iv : -1;
    const lt_gguf_tensor *emb = lt_gguf_find_tensor(g, "token_embd.weight");
    if (!emb)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor 'token_embd.weight' is missing", g->path);
    c->vocab_size = (int)emb->ne[1];
    /* llama.cpp's Gemma always takes the embedding as the head: an output.weight is then not
     * part of the decoder (audit_tensors refuses it) */
    c->tied = c->arch == LT_ARCH_GEMMA2 || c->arch == LT_ARCH_GEMMA3 ||
              lt_gguf_find_tensor(g, "output.weight") == NULL;
    if ((st = detect_biases(g, c)) || (st = read_rope_freqs(g, c)) ||
        (st = audit_keys(g, arch, c)) || (st = audit_tensors(g, c, arch)))
        return st;
    return LT_OK;
}
