/*
 * Hugging Face model directories: config.json + model.safetensors, or shards listed by
 * model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor: shard file}}, the index
 * transformers' save_pretrained writes for sharded checkpoints), and lt_model_load, which picks the
 * GGUF or HF path by what `path` is.
 *
 * HF weights are already in lathe's canonical layout (DESIGN.md §3): linear weights [out, in],
 * q/k rows in rotate_half order, so tensors are copied (converted to F32) with no permutation.
 * Tensor names: transformers modeling_llama.py / modeling_qwen2.py module paths
 * (model.layers.N.self_attn.q_proj.weight, ...). Every user-caused problem is an LT_ERR_MODEL
 * naming the file and the tensor or key.
 */
#include "model_impl.h"

#include "../quant/quant.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The open weight files of one directory and, when sharded, the index's weight_map. */
typedef struct {
    char index_path[PATH_MAX]; /* "" when unsharded */
    json_t *weight_map;        /* borrowed from index (NULL when unsharded) */
    json_t *index;
    int n_files;
    char **names;              /* [n_files] shard file names as the index spells them */
    lt_safetensors **files;    /* [n_files] */
} hf_weights;

static void weights_close(hf_weights *w) {
    for (int i = 0; i < w->n_files; i++) {
        lt_safetensors_close(w->files[i]);
        free(w->names[i]);
    }
    free(w->files);
    free(w->names);
    json_decref(w->index);
    memset(w, 0, sizeof *w);
}

static lt_status add_file(hf_weights *w, const char *dir, const char *name) {
    for (int i = 0; i < w->n_files; i++)
        if (!strcmp(w->names[i], name)) return LT_OK;
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    lt_safetensors *st = NULL;
    if (w->index && (access(path, R_OK) != 0))
        return lt_error_set(LT_ERR_MODEL, "%s: weight_map names shard '%s', but %s cannot be "
                            "read; hint: download every shard the index lists", w->index_path,
                            name, path);
    lt_status s = lt_safetensors_open(&st, path);
    if (s) return s;
    w->files = lt_xrealloc(w->files, (size_t)(w->n_files + 1) * sizeof *w->files);
    w->names = lt_xrealloc(w->names, (size_t)(w->n_files + 1) * sizeof *w->names);
    w->files[w->n_files] = st;
    w->names[w->n_files++] = lt_xstrdup(name);
    return LT_OK;
}

static lt_status weights_open(hf_weights *w, const char *dir) {
    memset(w, 0, sizeof *w);
    snprintf(w->index_path, sizeof w->index_path, "%s/model.safetensors.index.json", dir);
    if (access(w->index_path, F_OK) != 0) {
        w->index_path[0] = '\0';
        char single[PATH_MAX];
        snprintf(single, sizeof single, "%s/model.safetensors", dir);
        if (access(single, F_OK) != 0)
            return lt_error_set(LT_ERR_MODEL, "%s: neither model.safetensors nor "
                                "model.safetensors.index.json is here; hint: a Hugging Face model "
                                "directory holds its weights in safetensors files", dir);
        return add_file(w, dir, "model.safetensors");
    }
    json_error_t je;
    w->index = json_load_file(w->index_path, 0, &je);
    if (!w->index)
        return lt_error_set(LT_ERR_MODEL, "%s:%d:%d: not readable JSON: %s", w->index_path,
                            je.line, je.column, je.text);
    w->weight_map = json_object_get(w->index, "weight_map");
    if (!json_is_object(w->weight_map))
        return lt_error_set(LT_ERR_MODEL, "%s: weight_map: missing or not an object of "
                            "tensor name -> shard file", w->index_path);
    const char *key;
    json_t *v;
    json_object_foreach(w->weight_map, key, v) {
        const char *f = json_string_value(v);
        if (!f || !*f || strchr(f, '/'))
            return lt_error_set(LT_ERR_MODEL, "%s: weight_map.%s: expected a shard file name in "
                                "this directory", w->index_path, key);
        lt_status st = add_file(w, dir, f);
        if (st) return st;
    }
    return LT_OK;
}

/* Find tensor `name`; *file receives the path of the file that should hold it. NULL when absent
 * (the caller reports it with *file). */
static const lt_st_tensor *weights_find(const hf_weights *w, const char *name, const char **file) {
    if (!w->index) {
        *file = w->files[0]->path;
        return lt_safetensors_find(w->files[0], name);
    }
    const char *shard = json_string_value(json_object_get(w->weight_map, name));
    *file = w->index_path;
    if (!shard) return NULL;
    for (int i = 0; i < w->n_files; i++)
        if (!strcmp(w->names[i], shard)) {
            *file = w->files[i]->path;
            return lt_safetensors_find(w->files[i], name);
        }
    return NULL;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Copy tensor `name` into dst (whose shape the config fixed), converting to F32; when dst is a
 * quantization target, through q's scratch into dst's quantized storage. */
/* The open file whose path is `file` (weights_find's answer). */
static const lt_safetensors *weights_file(const hf_weights *w, const char *file) {
    for (int i = 0; i < w->n_files; i++)
        if (w->files[i]->path == file) return w->files[i];
    return NULL;
}

/* A bitsandbytes 4-bit weight (src/io/bnb.c: a packed U8 tensor beside its
 * "<name>.quant_state.bitsandbytes__nf4" entry, what `lathe quantize` and transformers'
 * save_pretrained of a load_in_4bit model write) into dst. An NF4 target keeps the file's codes
 * and state as they are (no requantization); any other target gets deq(W): the F32 weight, or
 * the scratch that then goes to Q8_0. */
static lt_status load_bnb(const lt_safetensors *sf, const char *name, lt_tensor *dst,
                          lt_qload *q, lt_model *m) {
    if (dst->ndim != 2)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is stored 4-bit, but lathe reads only "
                            "linear weights that way; hint: keep norms and biases unquantized",
                            sf->path, name);
    lt_tensor nf4;
    lt_status st = lt_bnb_read_nf4(sf, name, dst->shape[0], dst->shape[1], &nf4);
    if (st) return st;
    nf4.name = dst->name;
    if (lt_qload_target(dst) && q->o.type == LT_QUANT_NF4) return lt_qload_adopt(q, m, dst, &nf4);
    float *f = lt_qload_target(dst) ? q->scratch : dst->data;
    lt_dequant_rows(&nf4, 0, dst->shape[0], f);
    lt_nf4_free(&nf4);
    return lt_qload_target(dst) ? lt_qload_weight(q, m, dst, LT_NF4) : LT_OK;
}

static lt_status load_tensor(const hf_weights *w, const char *name, lt_tensor *dst, lt_qload *q,
                             lt_model *m) {
    const char *file;
    const lt_st_tensor *t = weights_find(w, name, &file);
    const lt_safetensors *sf = t ? weights_file(w, file) : NULL;
    if (sf && t->dtype == LT_U8 && lt_bnb_is_quantized(sf, name))
        return load_bnb(sf, name, dst, q, m);
    if (!t) {
        if (w->index && file == w->index_path)
            return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is not in weight_map; hint: the "
                                "checkpoint does not match config.json", file, name);
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is missing; hint: the checkpoint "
                            "does not match config.json", file, name);
    }
    if (t->dtype != LT_F32 && t->dtype != LT_F16 && t->dtype != LT_BF16)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has dtype %s; model weights must be "
                            "F32, F16 or BF16", file, name, lt_dtype_name(t->dtype));
    bool same = t->ndim == dst->ndim;
    for (int d = 0; same && d < dst->ndim; d++) same = t->shape[d] == dst->shape[d];
    if (!same) {
        char got[96], want[96];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(want, sizeof want, dst->ndim, dst->shape);
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has shape %s, expected %s from "
                            "config.json", file, name, got, want);
    }
    if (!lt_qload_target(dst)) {
        lt_st_tensor_to_f32(t, dst->data);
        return LT_OK;
    }
    lt_st_tensor_to_f32(t, q->scratch);
    lt_release_pages(t->data, t->nbytes); /* streaming: the source need not stay resident */
    return lt_qload_weight(q, m, dst, t->dtype);
}

/* A fused weight (Phi-3's qkv_proj, gate_up_proj: the members' rows one after another) split
 * into the n member projections dst[0..n), each F32 or a quantization target. */
static lt_status load_fused(const hf_weights *w, const char *name, lt_tensor **dst, int n,
                            lt_qload *q, lt_model *m) {
    const char *file;
    const lt_st_tensor *t = weights_find(w, name, &file);
    if (!t)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is missing; hint: the checkpoint does "
                            "not match config.json", file, name);
    if (t->dtype != LT_F32 && t->dtype != LT_F16 && t->dtype != LT_BF16)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has dtype %s; a fused projection "
                            "must be F32, F16 or BF16 (lathe does not split a 4-bit one)", file,
                            name, lt_dtype_name(t->dtype));
    int64_t rows = 0, cols = dst[0]->shape[1];
    for (int i = 0; i < n; i++) rows += dst[i]->shape[0];
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has the wrong shape, expected [%lld, "
                            "%lld] from config.json", file, name, (long long)rows,
                            (long long)cols);
    float *all = lt_alloc_big((size_t)(rows * cols) * sizeof(float), name);
    if (!all) return LT_ERR_OOM;
    lt_st_tensor_to_f32(t, all);
    lt_release_pages(t->data, t->nbytes);
    lt_status st = lt_qload_split(q, m, all, dst, n, t->dtype);
    free(all);
    return st;
}

/* HF tensor names for error messages (mod LT_MOD_COUNT: the output head). */
static void hf_tensor_name(char *buf, size_t n, int layer, int mod) {
    if (mod == LT_MOD_COUNT)
        snprintf(buf, n, layer < 0 ? "model.embed_tokens.weight" : "lm_head.weight");
    else
        snprintf(buf, n, "model.layers.%d.%s.%s.weight", layer, lt_module_parent((lt_module)mod),
                 lt_module_name((lt_module)mod));
}

lt_status lt_model_load_hf(lt_model **out, const char *dir) {
    return lt_model_load_hf_opts(out, dir, NULL);
}

lt_status lt_model_load_hf_opts(lt_model **out, const char *dir, const lt_model_opts *o) {
    *out = NULL;
    lt_qload q = {0};
    char cfg_path[PATH_MAX];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    lt_model *m = lt_xcalloc(1, sizeof *m);
    hf_weights w = {0};
    lt_status st = lt_hf_config_parse(&m->cfg, cfg_path);
    if (st) goto fail;
    const lt_model_config *c = &m->cfg;
    m->path = lt_xstrdup(dir);
    if ((st = lt_qload_init(&q, m, o, dir, hf_tensor_name))) goto fail;
    if ((st = weights_open(&w, dir)) || (st = lt_model_alloc_base(m, q.mask)) ||
        (st = lt_qload_begin(&q, m)))
        goto fail;
    if ((st = load_tensor(&w, "model.embed_tokens.weight", &m->tok_embd, &q, m)) ||
        (st = load_tensor(&w, "model.norm.weight", &m->out_norm, &q, m)) ||
        (!c->tied && (st = load_tensor(&w, "lm_head.weight", &m->lm_head, &q, m))))
        goto fail;
    char name[128];
    for (int l = 0; l < c->n_layer; l++) {
        lt_layer *L = &m->layers[l];
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        if ((st = load_tensor(&w, name, &L->attn_norm, &q, m))) goto fail;
        /* Gemma names its pre-MLP norm pre_feedforward_layernorm; post_attention_layernorm is
         * then the norm on the attention output (modeling_gemma2.py Gemma2DecoderLayer) */
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        if ((st = load_tensor(&w, name, c->sandwich_norm ? &L->post_attn_norm : &L->ffn_norm, &q,
                              m)))
            goto fail;
        if (c->sandwich_norm) {
            snprintf(name, sizeof name, "model.layers.%d.pre_feedforward_layernorm.weight", l);
            if ((st = load_tensor(&w, name, &L->ffn_norm, &q, m))) goto fail;
            snprintf(name, sizeof name, "model.layers.%d.post_feedforward_layernorm.weight", l);
            if ((st = load_tensor(&w, name, &L->post_ffn_norm, &q, m))) goto fail;
        }
        if (c->qk_norm) {
            snprintf(name, sizeof name, "model.layers.%d.self_attn.q_norm.weight", l);
            if ((st = load_tensor(&w, name, &L->q_norm, &q, m))) goto fail;
            snprintf(name, sizeof name, "model.layers.%d.self_attn.k_norm.weight", l);
            if ((st = load_tensor(&w, name, &L->k_norm, &q, m))) goto fail;
        }
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            int first;
            const char *mod;
            const int nm = lt_model_adapter_group(c, k, &first, &mod);
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l,
                     lt_module_parent((lt_module)k), mod);
            if (nm > 1) { /* Phi-3: one tensor for the group, split at its first member */
                lt_tensor *dst[3] = {&L->w[first], &L->w[first + 1], &L->w[first + 2]};
                if (k == first && (st = load_fused(&w, name, dst, nm, &q, m))) goto fail;
                continue; /* fused projections carry no bias */
            }
            if ((st = load_tensor(&w, name, &L->w[k], &q, m))) goto fail;
            if (!L->bias[k].data) continue;
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", l,
                     lt_module_parent((lt_module)k), lt_module_name((lt_module)k));
            if ((st = load_tensor(&w, name, &L->bias[k], &q, m))) goto fail;
        }
    }
    lt_qload_end(&q, m, LT_OK);
    weights_close(&w);
    *out = m;
    return LT_OK;
fail:
    lt_qload_end(&q, m, st);
    weights_close(&w);
    lt_model_free(m);
    return st;
}

lt_status lt_model_load(lt_model **out, lt_tokenizer **tok, const char *path) {
    return lt_model_load_opts(out, tok, path, NULL);
}

lt_status lt_model_load_opts(lt_model **out, lt_tokenizer **tok, const char *path,
                             const lt_model_opts *o) {
    *out = NULL;
    if (tok) *tok = NULL;
    struct stat sb;
    lt_status st;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if ((st = lt_model_load_hf_opts(out, path, o))) return st;
        if (tok && (st = lt_tokenizer_from_hf_dir(tok, path))) goto fail;
        return LT_OK;
    }
    lt_gguf *g = NULL;
    if ((st = lt_gguf_open(&g, path))) return st;
    st = lt_model_load_gguf_opts(out, g, o);
    if (!st && tok) st = lt_tokenizer_from_gguf(tok, g);
    lt_gguf_close(g);
    if (!st) return LT_OK;
fail:
    lt_model_free(*out);
    *out = NULL;
    if (tok) {
        lt_tokenizer_free(*tok);
        *tok = NULL;
    }
    return st;
}
