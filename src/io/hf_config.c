/*
 * Hugging Face config.json <-> lt_model_config, for the decoder families lathe builds:
 * LlamaForCausalLM (SmolLM too), MistralForCausalLM and Qwen2ForCausalLM.
 *
 * Keys, defaults and semantics are those of transformers' LlamaConfig, MistralConfig and
 * Qwen2Config (configuration_llama.py, configuration_mistral.py, configuration_qwen2.py) and the
 * models built from them (modeling_llama.py: attention_bias puts a bias on q/k/v/o_proj;
 * modeling_qwen2.py: q/k/v always biased, o_proj never; modeling_mistral.py: no biases).
 * rope_scaling follows modeling_rope_utils.py: the type is under "rope_type" (or the older
 * "type"); lathe applies "default", "linear" and "llama3" (see lt_rope_inv_freq).
 * Contracts: model.h (lt_hf_config_parse, lt_hf_config_write). The declarations live in model.h
 * because they read and write lt_model_config, which io.h cannot see without a circular include.
 */
#include "../model/model.h"

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

/* Number key, finite and > 0 when `positive`. Absent (or null) and !required: *out = dflt. */
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
    if (!isfinite(x) || (positive && !(x > 0)))
        return lt_error_set(LT_ERR_MODEL, "%s: %s: %g must be a positive finite number", path,
                            key, x);
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

static lt_status parse_rope_scaling(const char *path, json_t *root, lt_model_config *c) {
    json_t *rs = json_object_get(root, "rope_scaling");
    c->rope_scaling.type = LT_ROPE_DEFAULT;
    if (!rs || json_is_null(rs)) return LT_OK;
    if (!json_is_object(rs)) return key_err(path, "rope_scaling", "expected an object or null");
    const char *type = NULL;
    json_t *t = json_object_get(rs, "rope_type");
    if (!t || json_is_null(t)) t = json_object_get(rs, "type");
    if (json_is_string(t)) type = json_string_value(t);
    if (!type)
        return key_err(path, "rope_scaling.rope_type",
                       "missing; expected \"default\", \"linear\" or \"llama3\"");
    lt_rope_scaling *s = &c->rope_scaling;
    double f;
    lt_status st;
    if (!strcmp(type, "default")) return LT_OK;
    if (!strcmp(type, "linear")) {
        if ((st = get_num(path, rs, "rope_scaling.factor", true, 1, true, &f))) return st;
        s->type = LT_ROPE_LINEAR;
        s->factor = (float)f;
        return LT_OK;
    }
    if (!strcmp(type, "llama3")) {
        double lo, hi;
        int orig;
        if ((st = get_num(path, rs, "rope_scaling.factor", true, 1, true, &f)) ||
            (st = get_num(path, rs, "rope_scaling.low_freq_factor", true, 1, true, &lo)) ||
            (st = get_num(path, rs, "rope_scaling.high_freq_factor", true, 4, true, &hi)) ||
            (st = get_int(path, rs, "rope_scaling.original_max_position_embeddings", true, 0, 1,
                          1 << 30, &orig)))
            return st;
        if (!(hi > lo))
            return lt_error_set(LT_ERR_MODEL, "%s: rope_scaling.high_freq_factor: %g must be "
                                "greater than low_freq_factor %g", path, hi, lo);
        s->type = LT_ROPE_LLAMA3;
        s->factor = (float)f;
        s->low_freq_factor = (float)lo;
        s->high_freq_factor = (float)hi;
        s->original_context = orig;
        return LT_OK;
    }
    return lt_error_set(LT_ERR_MODEL, "%s: rope_scaling.rope_type: \"%s\" is not supported; "
                        "lathe applies \"default\", \"linear\" and \"llama3\"", path, type);
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
    if ((st = get_num(path, root, "rope_theta", false, 10000.0, true, &f))) goto done;
    c->rope_base = (float)f;
    if ((st = get_bool(path, root, "tie_word_embeddings", false, &c->tied))) goto done;

    const char *act;
    if ((st = get_str(path, root, "hidden_act", &act))) goto done;
    if (act && strcmp(act, "silu")) {
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
    } else if (c->arch == LT_ARCH_LLAMA) {
        c->qkv_bias = c->o_bias = b; /* LlamaAttention: bias=config.attention_bias on all four */
    } else if (b) {
        st = key_err(path, "attention_bias", "true is not supported for MistralForCausalLM");
        goto done;
    }
    if ((st = parse_rope_scaling(path, root, c))) goto done;

    /* sliding windows: recorded, not applied (model.h explains why this warns) */
    bool use_sw = c->arch == LT_ARCH_MISTRAL;
    if (c->arch == LT_ARCH_QWEN2 &&
        (st = get_bool(path, root, "use_sliding_window", false, &use_sw)))
        goto done;
    if (use_sw) {
        if ((st = get_int(path, root, "sliding_window", false, 0, 1, 1 << 30,
                          &c->sliding_window)))
            goto done;
        if (c->sliding_window > 0 && c->sliding_window < c->context_length)
            lt_warn("%s: sliding_window: %d is shorter than max_position_embeddings %d; lathe "
                    "attends over the whole causal prefix, so sequences longer than %d tokens "
                    "differ from the reference", path, c->sliding_window, c->context_length,
                    c->sliding_window);
    }

    if ((st = get_token_id(path, root, "bos_token_id", c->vocab_size, &c->bos_id)) ||
        (st = get_token_id(path, root, "eos_token_id", c->vocab_size, &c->eos_id)))
        goto done;
    const char *td;
    if ((st = get_str(path, root, "torch_dtype", &td))) goto done;
    if (!td && (st = get_str(path, root, "dtype", &td))) goto done; /* newer transformers */
    c->dtype = td && !strcmp(td, "bfloat16") ? LT_BF16 : td && !strcmp(td, "float16") ? LT_F16
                                                                                       : LT_F32;
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
    else if (c->arch == LT_ARCH_MISTRAL && (c->qkv_bias || c->o_bias))
        what = "Mistral has no attention biases";
    else if (c->arch == LT_ARCH_LLAMA && c->qkv_bias != c->o_bias)
        what = "Llama's attention_bias covers q/k/v and o_proj together";
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
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tied));
    json_object_set_new(o, "attention_dropout", json_real(0.0));
    json_object_set_new(o, "initializer_range", json_real(0.02));
    json_object_set_new(o, "use_cache", json_true());
    if (c->arch == LT_ARCH_LLAMA) {
        json_object_set_new(o, "attention_bias", json_boolean(c->qkv_bias));
        json_object_set_new(o, "mlp_bias", json_false());
    }
    if (c->arch == LT_ARCH_MISTRAL)
        json_object_set_new(o, "sliding_window",
                            c->sliding_window > 0 ? json_integer(c->sliding_window) : json_null());
    if (c->arch == LT_ARCH_QWEN2) {
        json_object_set_new(o, "use_sliding_window", json_boolean(c->sliding_window > 0));
        json_object_set_new(o, "sliding_window", c->sliding_window > 0
                                                     ? json_integer(c->sliding_window)
                                                     : json_null());
        json_object_set_new(o, "max_window_layers", json_integer(c->n_layer));
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
