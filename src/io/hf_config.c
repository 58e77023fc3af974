/*
 * Hugging Face config.json <-> lt_model_config, for the decoder families lathe builds:
 * LlamaForCausalLM (SmolLM too), MistralForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM.
 *
 * Keys, defaults and semantics are those of transformers 5's LlamaConfig, MistralConfig,
 * Qwen2Config and Qwen3Config (configuration_*.py) and the models built from them
 * (modeling_llama.py and modeling_qwen3.py: attention_bias puts a bias on q/k/v/o_proj;
 * modeling_qwen2.py: q/k/v always biased, o_proj never; modeling_mistral.py: no biases;
 * modeling_qwen3.py: RMSNorm over each q and k head). RoPE follows modeling_rope_utils.py
 * (RotaryEmbeddingConfigMixin): "rope_parameters", or the older "rope_theta" + "rope_scaling";
 * lathe applies "default", "linear" and "llama3" (see lt_rope_inv_freq).
 * Contracts: model.h (lt_hf_config_parse, lt_hf_config_write). The declarations live in model.h
 * because they read and write lt_model_config, which io.h cannot see without a circular include.
 */
#include "../model/model.h"
#include "hf_config_impl.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *arch;       /* architectures[0] */
    const char *model_type; /* config.json model_type */
    lt_arch id;
    int default_max_pos;    /* max_position_embeddings default of the transformers config class */
} arch_info;

static const arch_info archs[] = {
    {"LlamaForCausalLM", "llama", LT_ARCH_LLAMA, 2048},
    {"MistralForCausalLM", "mistral", LT_ARCH_MISTRAL, 4096 * 32},
    {"Qwen2ForCausalLM", "qwen2", LT_ARCH_QWEN2, 32768},
    {"Qwen3ForCausalLM", "qwen3", LT_ARCH_QWEN3, 32768},
    {"Gemma2ForCausalLM", "gemma2", LT_ARCH_GEMMA2, 8192},
    {"Gemma3ForCausalLM", "gemma3_text", LT_ARCH_GEMMA3, 131072},
    {"Phi3ForCausalLM", "phi3", LT_ARCH_PHI3, 4096},
};
#define N_ARCHS (int)(sizeof archs / sizeof archs[0])

static const arch_info *arch_of(lt_arch id) {
    for (int i = 0; i < N_ARCHS; i++)
        if (archs[i].id == id) return &archs[i];
    return &archs[0];
}

/* ---- typed getters: each names the file and key in its error -------------------------------- */
/* A key "a.b" names b inside the object o (a is only for the message: "rope_scaling.factor"). */
static json_t *lookup(json_t *o, const char *key) {
    const char *dot = strrchr(key, '.');
    return json_object_get(o, dot ? dot + 1 : key);
}

static lt_status key_err(const char *path, const char *key, const char *problem) {
    return lt_error_set(LT_ERR_MODEL, "%s: %s: %s", path, key, problem);
}

/* Integer key in [lo, hi]. Absent (or null) and !required: *out = dflt. */
static lt_status get_int(const char *path, json_t *o, const char *key, bool required, int dflt,
                         int64_t lo, int64_t hi, int *out) {
    json_t *v = lookup(o, key);
    if (!v || json_is_null(v)) {
        if (required)
            return lt_error_set(LT_ERR_MODEL, "%s: %s: required key is missing; hint: a "
                                "transformers config.json for this architecture names it", path,
                                key);
        *out = dflt;
        return LT_OK;
    }
    json_int_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        x = (json_int_t)json_real_value(v);
    } else {
        return key_err(path, key, "expected an integer");
    }
    if (x < lo || x > hi)
        return lt_error_set(LT_ERR_MODEL, "%s: %s: %lld is outside [%lld, %lld]", path, key,
                            (long long)x, (long long)lo, (long long)hi);
    *out = (int)x;
    return LT_OK;
}

/* Number key, finite and > 0 when `positive`, both as a double and as the float32 the model keeps
 * (1e-300 is positive but 0 as a float; 1e300 is finite but inf as a float). Absent (or null)
 * and !required: *out = dflt. */
static lt_status get_num(const char *path, json_t *o, const char *key, bool required,
                         double dflt, bool positive, double *out) {
    json_t *v = lookup(o, key);
    if (!v || json_is_null(v)) {
        if (required) return key_err(path, key, "required key is missing");
        *out = dflt;
        return LT_OK;
    }
    if (!json_is_number(v)) return key_err(path, key, "expected a number");
    double x = json_number_value(v);
    if (!isfinite(x) || !isfinite((float)x) || (positive && !((float)x > 0)))
        return lt_error_set(LT_ERR_MODEL, "%s: %s: %g must be a %sfinite number as a float32 "
                            "(magnitude within 1.2e-38 .. 3.4e38)", path, key, x,
                            positive ? "positive " : "");
    *out = x;
    return LT_OK;
}

static lt_status get_bool(const char *path, json_t *o, const char *key, bool dflt, bool *out) {
    json_t *v = lookup(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return LT_OK;
    }
    if (!json_is_boolean(v)) return key_err(path, key, "expected true or false");
    *out = json_is_true(v);
    return LT_OK;
}

/* Optional string; NULL when absent or null. */
static lt_status get_str(const char *path, json_t *o, const char *key, const char **out) {
    json_t *v = lookup(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return LT_OK;
    if (!json_is_string(v)) return key_err(path, key, "expected a string");
    *out = json_string_value(v);
    return LT_OK;
}

/* bos_token_id / eos_token_id: an int, a list of ints (the first is kept), or absent (-1). */
static lt_status get_token_id(const char *path, json_t *o, const char *key, int vocab, int *out) {
    json_t *v = lookup(o, key);
    *out = -1;
    if (json_is_array(v) && json_array_size(v) > 0) v = json_array_get(v, 0);
    if (!v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0)) return LT_OK;
    if (!json_is_integer(v)) return key_err(path, key, "expected an integer token id (or a list)");
    json_int_t x = json_integer_value(v);
    if (x < 0 || x >= vocab)
        return lt_error_set(LT_ERR_MODEL, "%s: %s: token id %lld is outside the vocabulary "
                            "[0, %d)", path, key, (long long)x, vocab);
    *out = (int)x;
    return LT_OK;
}

/* One RoPE dictionary: "rope_parameters" (transformers >= 5: rope_type, rope_theta and the
 * scaling's own keys) or the older "rope_scaling" (rope_type, or "type" before transformers
 * 4.45, and the scaling's keys; the base is the top-level rope_theta). `name` is the key, for
 * messages. *theta receives rope_theta when the dictionary has one, else stays NAN. Scaling
 * keys follow modeling_rope_utils.py: "linear" {factor}, "llama3" {factor, low_freq_factor,
 * high_freq_factor, original_max_position_embeddings (transformers 5: max_position_embeddings,
 * `ctx_default`, when absent)}; any other type is refused. */
static lt_status parse_rope_dict(const char *path, const char *name, json_t *rs,
                                 int ctx_default, lt_rope_scaling *s, double *theta) {
    char key[96];
#define RKEY(k) (snprintf(key, sizeof key, "%s.%s", name, k), key)
    memset(s, 0, sizeof *s);
    *theta = NAN;
    if (!json_is_object(rs)) return key_err(path, name, "expected an object or null");
    if (json_object_get(rs, "full_attention") || json_object_get(rs, "sliding_attention"))
        return lt_error_set(LT_ERR_MODEL, "%s: %s: RoPE parameters per layer type (Gemma 3 style) "
                            "are not supported by lathe's Llama, Mistral and Qwen2 decoders",
                            path, name);
    lt_status st;
    if (json_object_get(rs, "rope_theta") &&
        (st = get_num(path, rs, RKEY("rope_theta"), false, 10000.0, true, theta)))
        return st;
    double prf = 1.0;
    if ((st = get_num(path, rs, RKEY("partial_rotary_factor"), false, 1.0, true, &prf))) return st;
    if (prf != 1.0)
        return lt_error_set(LT_ERR_MODEL, "%s: %s.partial_rotary_factor: %g (RoPE on part of each "
                            "head) is not supported; lathe rotates whole heads", path, name, prf);
    const char *type = NULL;
    json_t *t = json_object_get(rs, "rope_type");
    if (!t || json_is_null(t)) t = json_object_get(rs, "type");
    if (json_is_string(t)) type = json_string_value(t);
    else if (t && !json_is_null(t)) return key_err(path, RKEY("rope_type"), "expected a string");
    static const char *const common[] = {"rope_type", "type", "rope_theta",
                                         "partial_rotary_factor", NULL};
    static const char *const linear[] = {"factor", NULL};
    static const char *const llama3[] = {"factor", "low_freq_factor", "high_freq_factor",
                                         "original_max_position_embeddings", NULL};
    const char *const *own = NULL;
    double f, lo, hi;
    int orig;
    if (!type || !strcmp(type, "default")) {
        /* transformers 5 reads a missing type as "default"; with a factor beside it the
         * config meant some scaling, and guessing which would be silently wrong */
        if (!type && json_object_get(rs, "factor"))
            return key_err(path, RKEY("rope_type"),
                           "missing beside a factor; expected \"linear\" or \"llama3\"");
    } else if (!strcmp(type, "linear")) {
        if ((st = get_num(path, rs, RKEY("factor"), true, 1, true, &f))) return st;
        *s = (lt_rope_scaling){.type = LT_ROPE_LINEAR, .factor = (float)f};
        own = linear;
    } else if (!strcmp(type, "llama3")) {
        if ((st = get_num(path, rs, RKEY("factor"), true, 1, true, &f)) ||
            (st = get_num(path, rs, RKEY("low_freq_factor"), true, 1, true, &lo)) ||
            (st = get_num(path, rs, RKEY("high_freq_factor"), true, 4, true, &hi)) ||
            (st = get_int(path, rs, RKEY("original_max_position_embeddings"), false,
                          ctx_default, 1, 1 << 30, &orig)))
            return st;
        if (!(hi > lo))
            return lt_error_set(LT_ERR_MODEL, "%s: %s.high_freq_factor: %g must be greater than "
                                "low_freq_factor %g", path, name, hi, lo);
        *s = (lt_rope_scaling){LT_ROPE_LLAMA3, (float)f, (float)lo, (float)hi, orig};
        own = llama3;
    } else {
        return lt_error_set(LT_ERR_MODEL, "%s: %s.rope_type: \"%s\" is not supported; lathe "
                            "applies \"default\", \"linear\" and \"llama3\" (a model using \"%s\" "
                            "would compute different positions)", path, name, type, type);
    }
    /* a key this type does not read could be a scaling lathe would silently drop */
    const char *k;
    json_t *v;
    json_object_foreach(rs, k, v) {
        bool known = false;
        for (int i = 0; common[i] && !known; i++) known = !strcmp(k, common[i]);
        for (int i = 0; own && own[i] && !known; i++) known = !strcmp(k, own[i]);
        if (!known && !json_is_null(v))
            lt_warn("%s: %s.%s is not read for rope_type \"%s\"; transformers ignores it too, but "
                    "check that the model does not depend on it", path, name, k,
                    type ? type : "default");
    }
#undef RKEY
    return LT_OK;
}

static bool same_scaling(const lt_rope_scaling *a, const lt_rope_scaling *b) {
    return a->type == b->type && a->factor == b->factor &&
           a->low_freq_factor == b->low_freq_factor &&
           a->high_freq_factor == b->high_freq_factor &&
           a->original_context == b->original_context;
}

/* RoPE base and scaling from either spelling. transformers 5 keeps both in "rope_parameters";
 * older configs have top-level "rope_theta" and "rope_scaling". A config carrying both
 * spellings must say the same thing in each. */
static lt_status parse_rope(const char *path, json_t *root, lt_model_config *c) {
    lt_status st;
    double top_theta;
    if ((st = get_num(path, root, "rope_theta", false, NAN, true, &top_theta))) return st;
    json_t *rp = json_object_get(root, "rope_parameters");
    json_t *rsc = json_object_get(root, "rope_scaling");
    lt_rope_scaling s_params = {0}, s_scaling = {0};
    double th_params = NAN, th_scaling = NAN;
    /* null and {} are absent (transformers: `rope_scaling or rope_parameters`) */
    bool has_params = rp && !json_is_null(rp) && !(json_is_object(rp) && !json_object_size(rp));
    bool has_scaling = rsc && !json_is_null(rsc) &&
                       !(json_is_object(rsc) && !json_object_size(rsc));
    if (has_params && (st = parse_rope_dict(path, "rope_parameters", rp, c->context_length,
                                            &s_params, &th_params)))
        return st;
    if (has_scaling && (st = parse_rope_dict(path, "rope_scaling", rsc, c->context_length,
                                             &s_scaling, &th_scaling)))
        return st;
    if (has_params && has_scaling && !same_scaling(&s_params, &s_scaling))
        return lt_error_set(LT_ERR_MODEL, "%s: rope_parameters and rope_scaling describe different "
                            "RoPE scalings; hint: keep one of the two spellings", path);
    /* the base: every spelling present must agree */
    double theta = NAN;
    const char *theta_key = NULL;
    const struct { double v; const char *key; } th[3] = {
        {th_params, "rope_parameters.rope_theta"}, {top_theta, "rope_theta"},
        {th_scaling, "rope_scaling.rope_theta"}};
    for (int i = 0; i < 3; i++) {
        if (isnan(th[i].v)) continue;
        if (!isnan(theta) && (float)th[i].v != (float)theta)
            return lt_error_set(LT_ERR_MODEL, "%s: %s = %g contradicts %s = %g; hint: keep one "
                                "spelling of the RoPE base", path, th[i].key, th[i].v, theta_key,
                                theta);
        theta = th[i].v;
        theta_key = th[i].key;
    }
    c->rope_base = isnan(theta) ? 10000.0f : (float)theta;
    c->rope_scaling = has_params ? s_params : s_scaling;
    return LT_OK;
}

/* Gemma 3: one RoPE for the full-attention layers and one for the sliding ones
 * (configuration_gemma3.py convert_rope_params_to_dict): "rope_parameters" nested by layer type
 * {"full_attention": {...}, "sliding_attention": {...}}, or the older top-level rope_theta
 * (default 1e6) + rope_scaling for the full layers and rope_local_base_freq (default 1e4) for the
 * sliding ones. The sliding layers' RoPE must be unscaled (it is in every Gemma 3). */
static lt_status parse_rope_gemma3(const char *path, json_t *root, lt_model_config *c) {
    lt_status st;
    json_t *rp = json_object_get(root, "rope_parameters");
    json_t *full = rp ? json_object_get(rp, "full_attention") : NULL;
    json_t *slide = rp ? json_object_get(rp, "sliding_attention") : NULL;
    double top_theta, local;
    if ((st = get_num(path, root, "rope_theta", false, NAN, true, &top_theta)) ||
        (st = get_num(path, root, "rope_local_base_freq", false, NAN, true, &local)))
        return st;
    lt_rope_scaling fs = {0}, ss = {0}, legacy = {0};
    double fth = NAN, sth = NAN, lth;
    if (rp && !json_is_null(rp) && !full && !slide && json_object_size(rp))
        return key_err(path, "rope_parameters", "Gemma 3 keeps one RoPE per layer type: expected "
                       "{\"full_attention\": {...}, \"sliding_attention\": {...}}");
    if (full && !json_is_null(full) &&
        (st = parse_rope_dict(path, "rope_parameters.full_attention", full, c->context_length,
                              &fs, &fth)))
        return st;
    if (slide && !json_is_null(slide) &&
        (st = parse_rope_dict(path, "rope_parameters.sliding_attention", slide,
                              c->context_length, &ss, &sth)))
        return st;
    json_t *rsc = json_object_get(root, "rope_scaling");
    if (rsc && !json_is_null(rsc) && json_object_size(rsc)) {
        if ((st = parse_rope_dict(path, "rope_scaling", rsc, c->context_length, &legacy, &lth)))
            return st;
        if (full && !same_scaling(&fs, &legacy))
            return lt_error_set(LT_ERR_MODEL, "%s: rope_scaling and "
                                "rope_parameters.full_attention describe different RoPE "
                                "scalings; hint: keep one of the two spellings", path);
        fs = legacy;
    }
    if (ss.type != LT_ROPE_DEFAULT)
        return key_err(path, "rope_parameters.sliding_attention", "a scaled RoPE on the sliding "
                       "layers is not supported; lathe applies the default one there");
    const struct { double a, b; const char *ka, *kb; } agree[2] = {
        {fth, top_theta, "rope_parameters.full_attention.rope_theta", "rope_theta"},
        {sth, local, "rope_parameters.sliding_attention.rope_theta", "rope_local_base_freq"}};
    for (int i = 0; i < 2; i++)
        if (!isnan(agree[i].a) && !isnan(agree[i].b) && (float)agree[i].a != (float)agree[i].b)
            return lt_error_set(LT_ERR_MODEL, "%s: %s = %g contradicts %s = %g; hint: keep one "
                                "spelling", path, agree[i].ka, agree[i].a, agree[i].kb,
                                agree[i].b);
    c->rope_base = (float)(!isnan(fth) ? fth : !isnan(top_theta) ? top_theta : 1e6);
    c->rope_scaling = fs;
    c->rope_local_base = (float)(!isnan(sth) ? sth : !isnan(local) ? local : 1e4);
    return LT_OK;
}

/* Gemma 2 / Gemma 3 (configuration_gemma2.py, configuration_gemma3.py; modeling_gemma2.py):
 * GeGLU with hidden_activation "gelu_pytorch_tanh", (1 + w) RMSNorms, embeddings times
 * sqrt(hidden_size), norms after attention and MLP, attention scale query_pre_attn_scalar^-0.5
 * (default 256), soft-capping of attention (Gemma 2 default 50) and final logits (Gemma 2
 * default 30), null meaning none; Gemma 3 adds q/k norms. */
static lt_status parse_gemma(const char *path, json_t *root, lt_model_config *c) {
    lt_status st;
    const bool g2 = c->arch == LT_ARCH_GEMMA2;
    const char *act;
    if ((st = get_str(path, root, "hidden_activation", &act))) return st;
    if (act && strcmp(act, "gelu_pytorch_tanh") && strcmp(act, "gelu_tanh"))
        return lt_error_set(LT_ERR_MODEL, "%s: hidden_activation: \"%s\" is not supported; lathe's "
                            "Gemma MLP is GeGLU with tanh-GELU (\"gelu_pytorch_tanh\")", path,
                            act);
    c->act = LT_ACT_GELU_TANH;
    c->norm_offset = 1.0f;
    c->embed_scale = (float)sqrt((double)c->dim);
    c->sandwich_norm = true;
    c->qk_norm = !g2;
    double q = 256, cap;
    if ((st = get_num(path, root, "query_pre_attn_scalar", false, 256, true, &q))) return st;
    c->attn_scale = (float)pow(q, -0.5);
    static const char *const caps[2] = {"attn_logit_softcapping", "final_logit_softcapping"};
    float *dst[2] = {&c->attn_softcap, &c->final_softcap};
    const double dflt[2] = {g2 ? 50.0 : 0.0, g2 ? 30.0 : 0.0};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(root, caps[i]);
        if (v && json_is_null(v)) continue; /* null: no soft-capping */
        if ((st = get_num(path, root, caps[i], false, dflt[i], false, &cap))) return st;
        if (cap < 0) return key_err(path, caps[i], "must be positive or null");
        *dst[i] = (float)cap;
    }
    bool bidir = false;
    if ((st = get_bool(path, root, "use_bidirectional_attention", false, &bidir))) return st;
    if (bidir)
        return key_err(path, "use_bidirectional_attention", "true (an embedding model) is not "
                       "supported; lathe trains causal decoders");
    return LT_OK;
}

/* Which layers use a sliding window, and its width, as transformers 5 decides it:
 * configuration_mistral.py: every layer when sliding_window is set (absent: 4096; null: none);
 * configuration_qwen2.py: sliding_window (absent: 4096) only with use_sliding_window, on layers
 * >= max_window_layers (absent: 28), unless the config lists "layer_types", which then marks
 * exactly the sliding layers. LlamaConfig has no sliding window: transformers ignores the key
 * there, and so does lathe (with the unknown-key warning). */
static lt_status parse_sliding(const char *path, json_t *root, lt_model_config *c) {
    lt_status st;
    int window = 0, from = 0;
    if (c->arch == LT_ARCH_LLAMA) return LT_OK;
    bool use = true;
    if ((c->arch == LT_ARCH_QWEN2 || c->arch == LT_ARCH_QWEN3) &&
        ((st = get_bool(path, root, "use_sliding_window", false, &use)) ||
         (st = get_int(path, root, "max_window_layers", false, 28, 0, LT_MAX_LAYERS, &from))))
        return st;
    /* Mistral, Qwen and Gemma default sliding_window to 4096 when the key is absent, Phi-3 to
     * none; null means none */
    json_t *sw = json_object_get(root, "sliding_window");
    if (use && !json_is_null(sw) &&
        (st = get_int(path, root, "sliding_window", false, c->arch == LT_ARCH_PHI3 ? 0 : 4096, 1,
                      1 << 30, &window)))
        return st;
    json_t *lt = json_object_get(root, "layer_types");
    const bool gemma = c->arch == LT_ARCH_GEMMA2 || c->arch == LT_ARCH_GEMMA3;
    if (gemma && (!lt || json_is_null(lt))) {
        /* Gemma 2: layers 0, 2, 4, ... slide; Gemma 3: all but every sliding_window_pattern-th
         * (layer l slides iff (l + 1) % pattern != 0) */
        int pattern = 2;
        if (c->arch == LT_ARCH_GEMMA3 &&
            (st = get_int(path, root, "sliding_window_pattern", false, 6, 1, LT_MAX_LAYERS,
                          &pattern)))
            return st;
        lt_model_set_swa(c, window, c->n_layer);
        for (int l = 0; l < c->n_layer && window > 0; l++)
            if ((l + 1) % pattern) c->swa_layers[l / 64] |= 1ull << (l % 64);
        return LT_OK;
    }
    const bool all = c->arch == LT_ARCH_MISTRAL || c->arch == LT_ARCH_PHI3;
    if (!lt || json_is_null(lt) || all) {
        /* MistralConfig and Phi3Config have no layer_types: every layer slides */
        if (lt && !json_is_null(lt))
            lt_warn("%s: layer_types is ignored for %s, as transformers does: every layer uses "
                    "sliding_window", path, arch_of(c->arch)->arch);
        lt_model_set_swa(c, window, all ? 0 : from);
        return LT_OK;
    }
    if (!json_is_array(lt) || (int)json_array_size(lt) != c->n_layer)
        return lt_error_set(LT_ERR_MODEL, "%s: layer_types: expected a list of %d strings (one "
                            "per layer)", path, c->n_layer);
    lt_model_set_swa(c, window, c->n_layer); /* the width; no layer marked yet */
    for (int l = 0; l < c->n_layer; l++) {
        const char *t = json_string_value(json_array_get(lt, (size_t)l));
        if (t && !strcmp(t, "full_attention")) continue;
        if (!t || strcmp(t, "sliding_attention"))
            return lt_error_set(LT_ERR_MODEL, "%s: layer_types[%d]: \"%s\" is not supported; lathe "
                                "builds \"full_attention\" and \"sliding_attention\" layers", path,
                                l, t ? t : "(not a string)");
        if (window <= 0)
            return lt_error_set(LT_ERR_MODEL, "%s: layer_types[%d] is \"sliding_attention\" but "
                                "the config has no sliding_window (or use_sliding_window is "
                                "false)", path, l);
        c->swa_layers[l / 64] |= 1ull << (l % 64);
    }
    return LT_OK;
}

lt_status lt_hf_config_parse(lt_model_config *c, const char *path) {
    memset(c, 0, sizeof *c);
    if (access(path, R_OK) != 0)
        return lt_error_set(LT_ERR_MODEL, "%s: cannot be read: %s; hint: a Hugging Face model "
                            "directory holds config.json beside its safetensors", path,
                            strerror(errno));
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return lt_error_set(LT_ERR_MODEL, "%s:%d:%d: not valid JSON: %s", path, je.line,
                            je.column, je.text);
    lt_status st = LT_OK;
    if (!json_is_object(root)) {
        st = lt_error_set(LT_ERR_MODEL, "%s: expected a JSON object", path);
        goto done;
    }

    /* architecture: architectures[0], else model_type */
    json_t *ja = json_object_get(root, "architectures");
    const char *arch = NULL, *model_type = NULL;
    if (ja && !json_is_null(ja)) {
        if (!json_is_array(ja) || json_array_size(ja) == 0 ||
            !json_is_string(json_array_get(ja, 0))) {
            st = key_err(path, "architectures", "expected a non-empty list of class names");
            goto done;
        }
        arch = json_string_value(json_array_get(ja, 0));
    }
    if ((st = get_str(path, root, "model_type", &model_type))) goto done;
    const arch_info *ai = NULL;
    for (int i = 0; i < N_ARCHS && !ai; i++)
        if (arch ? !strcmp(arch, archs[i].arch)
                 : (model_type && !strcmp(model_type, archs[i].model_type)))
            ai = &archs[i];
    if (!ai) {
        st = lt_error_set(LT_ERR_MODEL, "%s: %s: \"%s\" is not supported; lathe builds "
                          "LlamaForCausalLM (SmolLM), MistralForCausalLM and Qwen2ForCausalLM",
                          path, arch ? "architectures" : "model_type",
                          arch ? arch : model_type ? model_type : "(none)");
        goto done;
    }
    c->arch = ai->id;

    if ((st = get_int(path, root, "hidden_size", true, 0, 1, 1 << 20, &c->dim)) ||
        (st = get_int(path, root, "num_hidden_layers", true, 0, 1, 1024, &c->n_layer)) ||
        (st = get_int(path, root, "num_attention_heads", true, 0, 1, 4096, &c->n_head)) ||
        (st = get_int(path, root, "intermediate_size", true, 0, 1, 1 << 22, &c->ffn_dim)) ||
        (st = get_int(path, root, "vocab_size", true, 0, 1, 1 << 28, &c->vocab_size)) ||
        (st = get_int(path, root, "num_key_value_heads", false, c->n_head, 1, c->n_head,
                      &c->n_kv_head)) ||
        (st = get_int(path, root, "max_position_embeddings", false, ai->default_max_pos, 1,
                      1 << 30, &c->context_length)))
        goto done;
    if (c->n_head % c->n_kv_head) {
        st = lt_error_set(LT_ERR_MODEL, "%s: num_key_value_heads: %d does not divide "
                          "num_attention_heads %d", path, c->n_kv_head, c->n_head);
        goto done;
    }
    json_t *jhd = json_object_get(root, "head_dim");
    if (jhd && !json_is_null(jhd)) {
        if ((st = get_int(path, root, "head_dim", true, 0, 2, 1024, &c->head_dim))) goto done;
    } else if (c->arch == LT_ARCH_QWEN3 || c->arch == LT_ARCH_GEMMA2 ||
               c->arch == LT_ARCH_GEMMA3) {
        /* the config classes' defaults, not hidden / heads */
        c->head_dim = c->arch == LT_ARCH_QWEN3 ? 128 : 256;
    } else {
        if (c->dim % c->n_head) {
            st = lt_error_set(LT_ERR_MODEL, "%s: num_attention_heads: %d does not divide "
                              "hidden_size %d; hint: a model with another head size names it in "
                              "head_dim", path, c->n_head, c->dim);
            goto done;
        }
        c->head_dim = c->dim / c->n_head;
    }
    if (c->head_dim % 2) {
        st = lt_error_set(LT_ERR_MODEL, "%s: head_dim: %d is odd; RoPE rotates pairs", path,
                          c->head_dim);
        goto done;
    }

    double f;
    if ((st = get_num(path, root, "rms_norm_eps", false, 1e-6, true, &f))) goto done;
    c->rms_eps = (float)f;
    if ((st = get_bool(path, root, "tie_word_embeddings", false, &c->tied))) goto done;

    const char *act;
    if ((st = get_str(path, root, "hidden_act", &act))) goto done;
    /* Gemma's classes read hidden_activation instead (parse_gemma); hidden_act is left over */
    if (act && strcmp(act, "silu") && c->arch != LT_ARCH_GEMMA2 && c->arch != LT_ARCH_GEMMA3) {
        st = lt_error_set(LT_ERR_MODEL, "%s: hidden_act: \"%s\" is not supported; lathe's MLP is "
                          "SwiGLU (\"silu\")", path, act);
        goto done;
    }
    bool b;
    if ((st = get_bool(path, root, "mlp_bias", false, &b))) goto done;
    if (b) {
        st = key_err(path, "mlp_bias", "true is not supported; lathe's MLP projections have no "
                     "bias");
        goto done;
    }
    if ((st = get_bool(path, root, "attention_bias", false, &b))) goto done;
    if (c->arch == LT_ARCH_QWEN2) {
        c->qkv_bias = true; /* Qwen2Attention: q/k/v bias=True, o_proj bias=False */
    } else if (c->arch != LT_ARCH_MISTRAL && c->arch != LT_ARCH_PHI3) {
        c->qkv_bias = c->o_bias = b; /* Llama/Qwen3/Gemma: bias=attention_bias on all four */
    } else if (b) {
        st = lt_error_set(LT_ERR_MODEL, "%s: attention_bias: true is not supported for %s, whose "
                          "projections have no bias", path, ai->arch);
        goto done;
    }
    c->fused = c->arch == LT_ARCH_PHI3; /* Phi3Attention.qkv_proj, Phi3MLP.gate_up_proj */
    c->qk_norm = c->arch == LT_ARCH_QWEN3; /* Qwen3Attention q_norm / k_norm */
    if ((c->arch == LT_ARCH_GEMMA2 || c->arch == LT_ARCH_GEMMA3) &&
        (st = parse_gemma(path, root, c)))
        goto done;
    if ((st = c->arch == LT_ARCH_GEMMA3 ? parse_rope_gemma3(path, root, c)
                                        : parse_rope(path, root, c)))
        goto done;
    if ((st = parse_sliding(path, root, c))) goto done;

    if ((st = get_token_id(path, root, "bos_token_id", c->vocab_size, &c->bos_id)) ||
        (st = get_token_id(path, root, "eos_token_id", c->vocab_size, &c->eos_id)))
        goto done;
    /* pad_token_id changes no logits; transformers only warns about one outside the vocabulary
     * (some configs say -1), so such a value is dropped rather than refused */
    json_t *jp = json_object_get(root, "pad_token_id");
    c->pad_id = json_is_integer(jp) && json_integer_value(jp) >= 0 &&
                        json_integer_value(jp) < c->vocab_size
                    ? (int)json_integer_value(jp)
                    : -1;
    const char *td;
    if ((st = get_str(path, root, "torch_dtype", &td))) goto done;
    if (!td && (st = get_str(path, root, "dtype", &td))) goto done; /* newer transformers */
    c->dtype = td && !strcmp(td, "bfloat16") ? LT_BF16 : td && !strcmp(td, "float16") ? LT_F16
                                                                                       : LT_F32;
    st = lt_hf__audit_keys(path, root, c);
done:
    json_decref(root);
    return st;
}

/* A float as JSON in its shortest decimal form that reads back as the same float32 (1e-05, not
 * 9.99999975e-06); printed with JSON_REAL_PRECISION(9), which keeps those digits. */
static json_t *jreal(float v) {
    char buf[32];
    double d = v;
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)v);
        d = strtod(buf, NULL);
        if ((float)d == v) break;
    }
    return json_real(d);
}

lt_status lt_hf_config_write(const lt_model_config *c, const char *path) {
    const arch_info *ai = arch_of(c->arch);
    const char *what = NULL;
    if (c->arch == LT_ARCH_QWEN2 && (!c->qkv_bias || c->o_bias))
        what = "Qwen2 has q/k/v biases and no o_proj bias";
    else if ((c->arch == LT_ARCH_MISTRAL || c->arch == LT_ARCH_PHI3) && (c->qkv_bias || c->o_bias))
        what = "Mistral and Phi-3 have no attention biases";
    else if (c->fused != (c->arch == LT_ARCH_PHI3))
        what = "only Phi-3 (always) fuses qkv_proj and gate_up_proj";
    else if (c->arch != LT_ARCH_QWEN2 && c->qkv_bias != c->o_bias)
        what = "attention_bias covers q/k/v and o_proj together";
    else if (c->qk_norm != (c->arch == LT_ARCH_QWEN3 || c->arch == LT_ARCH_GEMMA3))
        what = "only Qwen3 and Gemma 3 (always) have q/k norms";
    const bool gemma = c->arch == LT_ARCH_GEMMA2 || c->arch == LT_ARCH_GEMMA3;
    if (!what && gemma != (c->norm_offset == 1.0f && c->sandwich_norm &&
                           c->act == LT_ACT_GELU_TANH &&
                           c->embed_scale == (float)sqrt((double)c->dim)))
        what = "(1 + w) norms, four norms per layer, GeGLU and scaled embeddings come together, "
               "in Gemma only";
    if (!what && !gemma && (c->attn_scale > 0 || c->attn_softcap > 0 || c->final_softcap > 0 ||
                            c->rope_local_base > 0))
        what = "only Gemma has a query scale, soft-capping or a local RoPE base";
    int swa_from, n_swa = lt_model_swa_layers(c, &swa_from);
    if (!what && c->arch == LT_ARCH_LLAMA && n_swa > 0)
        what = "LlamaForCausalLM has no sliding window";
    else if (!what && (c->arch == LT_ARCH_MISTRAL || c->arch == LT_ARCH_PHI3) && n_swa > 0 &&
             n_swa < c->n_layer)
        what = "MistralForCausalLM and Phi3ForCausalLM slide on every layer or none";
    if (what)
        return lt_error_set(LT_ERR_MODEL, "%s: cannot write config.json: %s, and this model "
                            "differs", path, what);
    json_t *o = json_object();
    json_t *archs_j = json_array();
    json_array_append_new(archs_j, json_string(ai->arch));
    json_object_set_new(o, "architectures", archs_j);
    json_object_set_new(o, "model_type", json_string(ai->model_type));
    json_object_set_new(o, "hidden_size", json_integer(c->dim));
    json_object_set_new(o, "intermediate_size", json_integer(c->ffn_dim));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layer));
    json_object_set_new(o, "num_attention_heads", json_integer(c->n_head));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->n_kv_head));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "max_position_embeddings",
                        json_integer(c->context_length > 0 ? c->context_length
                                                           : ai->default_max_pos));
    json_object_set_new(o, "rms_norm_eps", jreal(c->rms_eps));
    json_object_set_new(o, "rope_theta", jreal(c->rope_base));
    json_object_set_new(o, "hidden_act", json_string(gemma ? "gelu_pytorch_tanh" : "silu"));
    if (gemma) {
        json_object_set_new(o, "hidden_activation", json_string("gelu_pytorch_tanh"));
        /* attn_scale = query_pre_attn_scalar^-0.5; an integer in every Gemma */
        double q = 1.0 / ((double)c->attn_scale * c->attn_scale);
        json_object_set_new(o, "query_pre_attn_scalar",
                            fabs(q - round(q)) < 1e-4 * q ? json_integer((json_int_t)round(q))
                                                         : json_real(q));
        json_object_set_new(o, "attn_logit_softcapping",
                            c->attn_softcap > 0 ? jreal(c->attn_softcap) : json_null());
        json_object_set_new(o, "final_logit_softcapping",
                            c->final_softcap > 0 ? jreal(c->final_softcap) : json_null());
        json_object_set_new(o, "sliding_window",
                            n_swa > 0 ? json_integer(c->sliding_window) : json_null());
        if (c->arch == LT_ARCH_GEMMA3)
            json_object_set_new(o, "rope_local_base_freq",
                                jreal(c->rope_local_base > 0 ? c->rope_local_base
                                                             : c->rope_base));
    }
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tied));
    json_object_set_new(o, "attention_dropout", json_real(0.0));
    json_object_set_new(o, "initializer_range", json_real(0.02));
    json_object_set_new(o, "use_cache", json_true());
    if (c->arch != LT_ARCH_MISTRAL && c->arch != LT_ARCH_QWEN2 && c->arch != LT_ARCH_PHI3)
        json_object_set_new(o, "attention_bias", json_boolean(c->qkv_bias));
    if (c->arch == LT_ARCH_LLAMA) json_object_set_new(o, "mlp_bias", json_false());
    if (c->arch == LT_ARCH_MISTRAL || c->arch == LT_ARCH_PHI3)
        json_object_set_new(o, "sliding_window",
                            n_swa > 0 ? json_integer(c->sliding_window) : json_null());
    if (c->arch == LT_ARCH_QWEN2 || c->arch == LT_ARCH_QWEN3) {
        /* configuration_qwen2/3.py: layers >= max_window_layers slide when use_sliding_window */
        json_object_set_new(o, "use_sliding_window", json_boolean(n_swa > 0));
        json_object_set_new(o, "sliding_window", n_swa > 0 ? json_integer(c->sliding_window)
                                                           : json_null());
        json_object_set_new(o, "max_window_layers", json_integer(swa_from >= 0 ? swa_from : 0));
    }
    if ((n_swa > 0 && swa_from < 0) || gemma) { /* name every layer's kind */
        json_t *types = json_array();
        for (int l = 0; l < c->n_layer; l++)
            json_array_append_new(types, json_string(lt_model_layer_window(c, l)
                                                         ? "sliding_attention"
                                                         : "full_attention"));
        json_object_set_new(o, "layer_types", types);
    }
    const lt_rope_scaling *s = &c->rope_scaling;
    if (s->type == LT_ROPE_DEFAULT) {
        json_object_set_new(o, "rope_scaling", json_null());
    } else {
        json_t *rs = json_object();
        json_object_set_new(rs, "rope_type",
                            json_string(s->type == LT_ROPE_LINEAR ? "linear" : "llama3"));
        json_object_set_new(rs, "factor", jreal(s->factor));
        if (s->type == LT_ROPE_LLAMA3) {
            json_object_set_new(rs, "low_freq_factor", jreal(s->low_freq_factor));
            json_object_set_new(rs, "high_freq_factor", jreal(s->high_freq_factor));
            json_object_set_new(rs, "original_max_position_embeddings",
                                json_integer(s->original_context));
        }
        json_object_set_new(o, "rope_scaling", rs);
    }
    if (c->bos_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(c->bos_id));
    if (c->eos_id >= 0) json_object_set_new(o, "eos_token_id", json_integer(c->eos_id));
    /* written always: a class default (Phi3Config: 32000) could lie outside this vocabulary */
    json_object_set_new(o, "pad_token_id", c->pad_id >= 0 ? json_integer(c->pad_id) : json_null());
    json_object_set_new(o, "torch_dtype", json_string(c->dtype == LT_BF16  ? "bfloat16"
                                                      : c->dtype == LT_F16 ? "float16"
                                                                           : "float32"));
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    json_decref(o);
    size_t n = strlen(text);
    text = lt_xrealloc(text, n + 2);
    text[n++] = '\n';
    text[n] = '\0';
    lt_status st = lt_write_file_atomic(path, text, n);
    free(text);
    return st;
}
