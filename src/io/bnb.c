/*
 * bitsandbytes 4-bit (NF4) checkpoints: the per-weight tensors of a "bnb-4bit" safetensors file and
 * the quantization_config of its config.json (layout and sources: io.h).
 *
 * Facts used, all read from the public code (nothing copied):
 *   - bitsandbytes functional.py QuantState.as_dict(packed=True): tensor items absmax, quant_map,
 *     nested_absmax, nested_quant_map; the non-tensor items quant_type, blocksize, dtype
 *     (str(torch dtype) without "torch."), shape, nested_blocksize, nested_dtype, nested_offset
 *     (a Python float) packed by utils.py pack_dict_to_tensor as the UTF-8 bytes of json.dumps in
 *     a uint8 tensor stored under "quant_state.bitsandbytes__<quant_type>".
 *   - QuantState.from_dict: the packed item is found by its suffix, its keys merged with the
 *     tensor items, offset = float(nested_offset), state2 built only when nested_absmax exists.
 *   - transformers quantizers/quantizer_bnb_4bit.py serialized_names (the suffixes after
 *     "weight"), integrations/bitsandbytes.py Bnb4bitDeserialize (Params4bit.from_prequantized),
 *     and what save_pretrained writes for Params4bit with quant_storage uint8: the codes as a
 *     uint8 [n/2, 1] tensor (checked against transformers 5.23 + bitsandbytes 0.50.2, see
 *     tools/check_bnb_load.py and docs/formats.md).
 *   - transformers BitsAndBytesConfig.to_dict for the keys of quantization_config.
 *
 * Invariant: an lt_tensor this file reads back is indistinguishable from the lt_nf4_quantize
 * output that was written (codes, block size, absmax or absmax_q/absmax2/offset, bit for bit).
 */
#include "io.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../quant/quant.h"

/* Longest tensor name this file builds (the weight name plus the longest suffix). */
#define NAME_MAX_BYTES 512

static const char SUFFIX_QS_NF4[] = ".quant_state.bitsandbytes__nf4";
static const char SUFFIX_QS_FP4[] = ".quant_state.bitsandbytes__fp4";

/* ---- JSON buffers kept alive for a writer ------------------------------------------------- */

/* The safetensors writer borrows tensor data until it writes; the packed JSON of each weight has
 * no other owner, so it sits here, keyed by the writer, until lt_bnb_writer_release. */
typedef struct held_buf {
    const lt_st_writer *w;
    char *bytes;
    struct held_buf *next;
} held_buf;

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static held_buf *held_head;

static void hold(const lt_st_writer *w, char *bytes) {
    held_buf *h = lt_xmalloc(sizeof *h);
    h->w = w;
    h->bytes = bytes;
    pthread_mutex_lock(&held_lock);
    h->next = held_head;
    held_head = h;
    pthread_mutex_unlock(&held_lock);
}

void lt_bnb_writer_release(lt_st_writer *w) {
    if (!w) return;
    pthread_mutex_lock(&held_lock);
    for (held_buf **p = &held_head; *p;) {
        held_buf *h = *p;
        if (h->w == w) {
            *p = h->next;
            free(h->bytes);
            free(h);
        } else {
            p = &h->next;
        }
    }
    pthread_mutex_unlock(&held_lock);
}

/* ---- writing ------------------------------------------------------------------------------ */

/* The shortest "%.*g" that reads back as the same double: a valid JSON number (finite input)
 * that float(...) in Python turns into exactly the F32 offset widened to double, as
 * QuantState.as_dict's `self.offset.item()` produced it. */
static void fmt_double(char *buf, size_t n, double v) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* The packed dict as bitsandbytes' json.dumps spells it (", " and ": " separators, keys in
 * as_dict order). Returns a malloc'ed string. */
static char *quant_state_json(const lt_nf4_state *q, int64_t rows, int64_t cols) {
    char buf[512], off[40];
    int k = snprintf(buf, sizeof buf,
                     "{\"quant_type\": \"nf4\", \"blocksize\": %lld, \"dtype\": \"float32\", "
                     "\"shape\": [%lld, %lld]",
                     (long long)q->blocksize, (long long)rows, (long long)cols);
    if (q->double_quant) {
        fmt_double(off, sizeof off, (double)q->offset);
        k += snprintf(buf + k, sizeof buf - (size_t)k,
                      ", \"nested_blocksize\": %d, \"nested_dtype\": \"float32\", "
                      "\"nested_offset\": %s",
                      LT_NF4_DQ_BLOCK, off);
    }
    snprintf(buf + k, sizeof buf - (size_t)k, "}");
    return lt_xstrdup(buf);
}

lt_status lt_bnb_write_nf4(lt_st_writer *w, const char *name, const lt_tensor *W) {
    LT_ASSERT(w && name && W);
    const lt_nf4_state *q = W->quant;
    if (W->dtype != LT_NF4 || W->ndim != 2 || !q || !W->data)
        return lt_error_set(LT_ERR_RUNTIME, "bnb write '%s': expected a 2-D NF4 tensor with its "
                            "quantization state", name);
    const int64_t rows = W->shape[0], cols = W->shape[1], n = rows * cols;
    if (q->blocksize <= 0 || n % q->blocksize || q->n_blocks != n / q->blocksize ||
        (q->double_quant ? !q->absmax_q || !q->absmax2 : !q->absmax))
        return lt_error_set(LT_ERR_RUNTIME, "bnb write '%s': NF4 state does not match the "
                            "tensor's %lld elements", name, (long long)n);
    if (strlen(name) + sizeof SUFFIX_QS_NF4 > NAME_MAX_BYTES)
        return lt_error_set(LT_ERR_RUNTIME, "bnb write: tensor name '%s' is too long", name);

    char *js = quant_state_json(q, rows, cols);
    hold(w, js);
    char nm[NAME_MAX_BYTES];
    /* In the order transformers' save_pretrained emits them (state_dict order, then sorted by
     * the safetensors serializer: the order does not matter to any reader). */
    const int64_t codes_shape[2] = {n / 2, 1}, nb = q->n_blocks;
    const int64_t nb2 = (nb + LT_NF4_DQ_BLOCK - 1) / LT_NF4_DQ_BLOCK, n16 = 16, n256 = 256;
    const int64_t jlen = (int64_t)strlen(js);
    lt_st_writer_add(w, name, LT_U8, 2, codes_shape, W->data);
    snprintf(nm, sizeof nm, "%s.absmax", name);
    if (q->double_quant) {
        lt_st_writer_add(w, nm, LT_U8, 1, &nb, q->absmax_q);
        snprintf(nm, sizeof nm, "%s.nested_absmax", name);
        lt_st_writer_add(w, nm, LT_F32, 1, &nb2, q->absmax2);
        snprintf(nm, sizeof nm, "%s.nested_quant_map", name);
        lt_st_writer_add(w, nm, LT_F32, 1, &n256, lt_quant_dynamic_map());
    } else {
        lt_st_writer_add(w, nm, LT_F32, 1, &nb, q->absmax);
    }
    snprintf(nm, sizeof nm, "%s.quant_map", name);
    lt_st_writer_add(w, nm, LT_F32, 1, &n16, LT_NF4_CODE);
    snprintf(nm, sizeof nm, "%s%s", name, SUFFIX_QS_NF4);
    lt_st_writer_add(w, nm, LT_U8, 1, &jlen, js);
    return LT_OK;
}

/* ---- reading ------------------------------------------------------------------------------ */

bool lt_bnb_is_quantized(const lt_safetensors *st, const char *name) {
    char nm[NAME_MAX_BYTES];
    if (strlen(name) + sizeof SUFFIX_QS_NF4 > sizeof nm) return false;
    snprintf(nm, sizeof nm, "%s%s", name, SUFFIX_QS_NF4);
    if (lt_safetensors_find(st, nm)) return true;
    snprintf(nm, sizeof nm, "%s%s", name, SUFFIX_QS_FP4);
    return lt_safetensors_find(st, nm) != NULL;
}

static int64_t st_numel(const lt_st_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

/* Companion tensor `name``suffix` of dtype `dt` with `count` elements (count < 0: any). */
static lt_status companion(const lt_safetensors *st, const char *name, const char *suffix,
                           lt_dtype dt, int64_t count, const lt_st_tensor **out) {
    char nm[NAME_MAX_BYTES];
    snprintf(nm, sizeof nm, "%s%s", name, suffix);
    const lt_st_tensor *t = lt_safetensors_find(st, nm);
    if (!t)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is missing (bitsandbytes quant state "
                            "of '%s'); hint: every companion of a 4-bit weight must be in the "
                            "same file as the weight; re-save or re-quantize the checkpoint",
                            st->path, nm, name);
    if (t->dtype != dt)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has dtype %s, expected %s; hint: the "
                            "checkpoint is corrupt or not a bitsandbytes NF4 checkpoint",
                            st->path, nm, lt_dtype_name(t->dtype), lt_dtype_name(dt));
    if (count >= 0 && st_numel(t) != count)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has %lld elements, expected %lld; "
                            "hint: the checkpoint is corrupt or does not match config.json",
                            st->path, nm, (long long)st_numel(t), (long long)count);
    *out = t;
    return LT_OK;
}

/* F32 values of t (count elements, any alignment) equal `want` bit for bit? */
static bool same_f32(const lt_st_tensor *t, const float *want, int64_t count) {
    return memcmp(t->data, want, (size_t)count * sizeof(float)) == 0;
}

static bool all_finite(const lt_st_tensor *t, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        float v;
        memcpy(&v, (const char *)t->data + i * 4, 4);
        if (!isfinite(v)) return false;
    }
    return true;
}

/* The parsed packed quant state. */
typedef struct {
    int64_t blocksize;
    bool nested;
    double offset;
} qs_fields;

static lt_status qs_bad(const lt_safetensors *st, const char *qs_name, const char *what) {
    return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s': %s; hint: the checkpoint is corrupt or "
                        "was written by an incompatible tool", st->path, qs_name, what);
}

static bool known_float_dtype(const char *s) {
    return s && (!strcmp(s, "float32") || !strcmp(s, "float16") || !strcmp(s, "bfloat16"));
}

static lt_status parse_quant_state(const lt_safetensors *st, const lt_st_tensor *t,
                                   const char *qs_name, int64_t rows, int64_t cols,
                                   qs_fields *f) {
    json_error_t je;
    json_t *o = json_loadb(t->data, t->nbytes, JSON_REJECT_DUPLICATES, &je);
    char msg[256];
    lt_status rc = LT_OK;
    if (!o || !json_is_object(o)) {
        snprintf(msg, sizeof msg, "packed quant state is not a JSON object (%s)",
                 o ? "another JSON value" : je.text);
        rc = qs_bad(st, qs_name, msg);
        goto done;
    }
    const char *qt = json_string_value(json_object_get(o, "quant_type"));
    json_t *bs = json_object_get(o, "blocksize"), *shape = json_object_get(o, "shape");
    const char *dt = json_string_value(json_object_get(o, "dtype"));
    if (!qt || strcmp(qt, "nf4")) {
        snprintf(msg, sizeof msg, "quant_type is %s%s%s, lathe reads only \"nf4\"", qt ? "\"" : "",
                 qt ? qt : "missing", qt ? "\"" : "");
        rc = qs_bad(st, qs_name, msg);
        goto done;
    }
    if (!json_is_integer(bs)) {
        rc = qs_bad(st, qs_name, "blocksize is missing or not an integer");
        goto done;
    }
    f->blocksize = (int64_t)json_integer_value(bs);
    const int64_t B = f->blocksize;
    if (B < LT_NF4_BLOCK_MIN || B > LT_NF4_BLOCK_MAX || (B & (B - 1)) || cols % B) {
        snprintf(msg, sizeof msg, "blocksize %lld is not a power of two in [%d, %d] dividing the "
                 "row length %lld", (long long)B, LT_NF4_BLOCK_MIN, LT_NF4_BLOCK_MAX,
                 (long long)cols);
        rc = qs_bad(st, qs_name, msg);
        goto done;
    }
    if (!known_float_dtype(dt)) {
        rc = qs_bad(st, qs_name, "dtype is missing or not float32, float16 or bfloat16");
        goto done;
    }
    if (!json_is_array(shape) || json_array_size(shape) != 2 ||
        !json_is_integer(json_array_get(shape, 0)) || !json_is_integer(json_array_get(shape, 1)) ||
        json_integer_value(json_array_get(shape, 0)) != rows ||
        json_integer_value(json_array_get(shape, 1)) != cols) {
        char *s = shape ? json_dumps(shape, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        snprintf(msg, sizeof msg, "shape %s, expected [%lld, %lld] from config.json",
                 s ? s : "is missing", (long long)rows, (long long)cols);
        free(s);
        rc = qs_bad(st, qs_name, msg);
        goto done;
    }
    json_t *noff = json_object_get(o, "nested_offset");
    f->nested = noff != NULL;
    if (f->nested) {
        json_t *nbs = json_object_get(o, "nested_blocksize");
        const char *ndt = json_string_value(json_object_get(o, "nested_dtype"));
        if (!json_is_integer(nbs) || json_integer_value(nbs) != LT_NF4_DQ_BLOCK) {
            snprintf(msg, sizeof msg, "nested_blocksize is not %d (bitsandbytes quantize_4bit's "
                     "fixed second-level block)", LT_NF4_DQ_BLOCK);
            rc = qs_bad(st, qs_name, msg);
            goto done;
        }
        if (!known_float_dtype(ndt)) {
            rc = qs_bad(st, qs_name, "nested_dtype is missing or not float32, float16 or bfloat16");
            goto done;
        }
        if (!json_is_number(noff) || !isfinite(json_number_value(noff))) {
            rc = qs_bad(st, qs_name, "nested_offset is not a finite number");
            goto done;
        }
        f->offset = json_number_value(noff);
    }
done:
    json_decref(o);
    return rc;
}

lt_status lt_bnb_read_nf4(const lt_safetensors *st, const char *name, int64_t rows, int64_t cols,
                          lt_tensor *out) {
    LT_ASSERT(st && name && out && rows > 0 && cols > 0);
    memset(out, 0, sizeof *out);
    if (strlen(name) + sizeof SUFFIX_QS_NF4 > NAME_MAX_BYTES)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor name '%.64s...' is too long", st->path,
                            name);
    char qs_name[NAME_MAX_BYTES];
    snprintf(qs_name, sizeof qs_name, "%s%s", name, SUFFIX_QS_FP4);
    if (lt_safetensors_find(st, qs_name))
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is bitsandbytes FP4; lathe reads only "
                            "NF4; hint: quantize the base with bnb_4bit_quant_type=\"nf4\" (or "
                            "`lathe quantize --type nf4`)", st->path, name);
    snprintf(qs_name, sizeof qs_name, "%s%s", name, SUFFIX_QS_NF4);

    const int64_t n = rows * cols;
    const lt_st_tensor *codes = lt_safetensors_find(st, name), *qs, *absmax, *qmap;
    if (!codes)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is missing; hint: the checkpoint "
                            "does not match config.json", st->path, name);
    if (codes->dtype != LT_U8 || st_numel(codes) * 2 != n)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is %s with %lld elements, expected "
                            "U8 packed NF4 codes with %lld (= %lld x %lld / 2); hint: the "
                            "checkpoint is corrupt or does not match config.json", st->path, name,
                            lt_dtype_name(codes->dtype), (long long)st_numel(codes),
                            (long long)(n / 2), (long long)rows, (long long)cols);
    lt_status rc = companion(st, name, SUFFIX_QS_NF4, LT_U8, -1, &qs);
    if (rc) return rc;
    qs_fields f = {0};
    if ((rc = parse_quant_state(st, qs, qs_name, rows, cols, &f))) return rc;
    const int64_t nb = n / f.blocksize, nb2 = (nb + LT_NF4_DQ_BLOCK - 1) / LT_NF4_DQ_BLOCK;

    if ((rc = companion(st, name, ".quant_map", LT_F32, 16, &qmap))) return rc;
    if (!same_f32(qmap, LT_NF4_CODE, 16))
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s.quant_map' is not the NF4 code book "
                            "(bitsandbytes get_4bit_type(\"nf4\")); hint: the checkpoint is "
                            "corrupt or uses a custom code lathe cannot apply", st->path, name);
    const lt_st_tensor *nabs = NULL, *nmap = NULL;
    if (f.nested) {
        if ((rc = companion(st, name, ".absmax", LT_U8, nb, &absmax)) ||
            (rc = companion(st, name, ".nested_absmax", LT_F32, nb2, &nabs)) ||
            (rc = companion(st, name, ".nested_quant_map", LT_F32, 256, &nmap)))
            return rc;
        if (!same_f32(nmap, lt_quant_dynamic_map(), 256))
            return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s.nested_quant_map' is not "
                                "bitsandbytes' signed dynamic map (create_dynamic_map); hint: "
                                "the checkpoint is corrupt", st->path, name);
        if (!all_finite(nabs, nb2))
            return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s.nested_absmax' holds a non-finite "
                                "value; hint: the checkpoint is corrupt", st->path, name);
    } else {
        if ((rc = companion(st, name, ".absmax", LT_F32, nb, &absmax))) return rc;
        if (!all_finite(absmax, nb))
            return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s.absmax' holds a non-finite value; "
                                "hint: the checkpoint is corrupt", st->path, name);
    }

    out->dtype = LT_NF4;
    out->device = LT_CPU;
    out->ndim = 2;
    out->shape[0] = rows;
    out->shape[1] = cols;
    lt_nf4_state *q = lt_xcalloc(1, sizeof *q);
    out->quant = q;
    q->blocksize = f.blocksize;
    q->n_blocks = nb;
    q->double_quant = f.nested;
    out->data = lt_alloc_big((size_t)n / 2, name);
    if (!out->data) goto oom;
    memcpy(out->data, codes->data, (size_t)n / 2);
    if (f.nested) {
        q->offset = (float)f.offset;
        q->absmax_q = lt_alloc_big((size_t)nb, name);
        q->absmax2 = lt_alloc_big((size_t)nb2 * sizeof(float), name);
        if (!q->absmax_q || !q->absmax2) goto oom;
        memcpy(q->absmax_q, absmax->data, (size_t)nb);
        memcpy(q->absmax2, nabs->data, (size_t)nb2 * sizeof(float));
    } else {
        q->absmax = lt_alloc_big((size_t)nb * sizeof(float), name);
        if (!q->absmax) goto oom;
        memcpy(q->absmax, absmax->data, (size_t)nb * sizeof(float));
    }
    return LT_OK;
oom:
    lt_nf4_free(out);
    return lt_error_wrap(LT_ERR_OOM, "%s: tensor '%s'", st->path, name);
}

/* ---- config.json quantization_config ------------------------------------------------------ */

static const char *torch_dtype_name(lt_dtype t) {
    switch (t) {
    case LT_F32: return "float32";
    case LT_F16: return "float16";
    case LT_BF16: return "bfloat16";
    default: return NULL;
    }
}

lt_status lt_bnb_config_add(const char *path, const lt_bnb_config *c) {
    const char *cdt = torch_dtype_name(c->compute_dtype);
    LT_ASSERT(cdt != NULL);
    char *text = NULL;
    size_t len = 0;
    lt_status rc = lt_read_file(path, &text, &len);
    if (rc) return rc;
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    free(text);
    if (!json_is_object(root)) {
        json_decref(root);
        return lt_error_set(LT_ERR_MODEL, "%s: not a JSON object; cannot add "
                            "quantization_config", path);
    }
    /* Every key transformers' BitsAndBytesConfig.to_dict writes, at its defaults except ours. */
    json_t *q = json_pack("{s:s, s:b, s:b, s:f, s:n, s:b, s:b, s:s, s:b, s:s, s:s, s:b, s:b}",
                          "quant_method", "bitsandbytes", "_load_in_8bit", 0, "_load_in_4bit", 1,
                          "llm_int8_threshold", 6.0, "llm_int8_skip_modules",
                          "llm_int8_enable_fp32_cpu_offload", 0, "llm_int8_has_fp16_weight", 0,
                          "bnb_4bit_quant_type", "nf4", "bnb_4bit_use_double_quant",
                          (int)c->double_quant, "bnb_4bit_compute_dtype", cdt,
                          "bnb_4bit_quant_storage", "uint8", "load_in_4bit", 1, "load_in_8bit", 0);
    LT_ASSERT(q != NULL);
    json_object_set_new(root, "quantization_config", q);
    char *out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    LT_ASSERT(out != NULL);
    size_t n = strlen(out);
    out = lt_xrealloc(out, n + 2);
    out[n] = '\n';
    out[n + 1] = '\0';
    rc = lt_write_file_atomic(path, out, n + 1);
    free(out);
    return rc;
}

static lt_status cfg_bad(const char *path, const char *key, const char *what) {
    return lt_error_set(LT_ERR_MODEL, "%s: quantization_config.%s: %s; hint: lathe loads "
                        "bitsandbytes 4-bit NF4 checkpoints (load_in_4bit, "
                        "bnb_4bit_quant_type \"nf4\", quant storage uint8)", path, key, what);
}

lt_status lt_bnb_config_read(const char *path, bool *found, lt_bnb_config *out) {
    *found = false;
    out->double_quant = false;
    out->compute_dtype = LT_F32;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return lt_error_set(LT_ERR_MODEL, "%s:%d:%d: not readable JSON: %s", path, je.line,
                            je.column, je.text);
    lt_status rc = LT_OK;
    json_t *q = json_object_get(root, "quantization_config");
    if (!q || json_is_null(q)) goto done;
    if (!json_is_object(q)) {
        rc = lt_error_set(LT_ERR_MODEL, "%s: quantization_config: expected an object", path);
        goto done;
    }
    const char *method = json_string_value(json_object_get(q, "quant_method"));
    if (!method || strcmp(method, "bitsandbytes")) {
        rc = cfg_bad(path, "quant_method", "not \"bitsandbytes\" (lathe reads no other "
                     "pre-quantized Hugging Face format)");
        goto done;
    }
    json_t *l4 = json_object_get(q, "load_in_4bit"), *l8 = json_object_get(q, "load_in_8bit");
    if (!l4) l4 = json_object_get(q, "_load_in_4bit");
    if (!l8) l8 = json_object_get(q, "_load_in_8bit");
    if (json_is_true(l8)) {
        rc = cfg_bad(path, "load_in_8bit", "8-bit (LLM.int8) checkpoints are not supported");
        goto done;
    }
    if (!json_is_true(l4)) {
        rc = cfg_bad(path, "load_in_4bit", "not true");
        goto done;
    }
    json_t *qt = json_object_get(q, "bnb_4bit_quant_type");
    /* BitsAndBytesConfig's default quant type is fp4. */
    if (!json_is_string(qt) || strcmp(json_string_value(qt), "nf4")) {
        rc = cfg_bad(path, "bnb_4bit_quant_type", "not \"nf4\" (fp4 is not supported)");
        goto done;
    }
    json_t *storage = json_object_get(q, "bnb_4bit_quant_storage");
    if (storage && !json_is_null(storage) &&
        (!json_is_string(storage) || strcmp(json_string_value(storage), "uint8"))) {
        rc = cfg_bad(path, "bnb_4bit_quant_storage", "not \"uint8\"");
        goto done;
    }
    json_t *dq = json_object_get(q, "bnb_4bit_use_double_quant");
    if (dq && !json_is_null(dq) && !json_is_boolean(dq)) {
        rc = cfg_bad(path, "bnb_4bit_use_double_quant", "not a boolean");
        goto done;
    }
    out->double_quant = json_is_true(dq);
    json_t *cd = json_object_get(q, "bnb_4bit_compute_dtype");
    if (cd && !json_is_null(cd)) {
        const char *s = json_string_value(cd);
        if (s && !strncmp(s, "torch.", 6)) s += 6;
        if (s && !strcmp(s, "float32")) out->compute_dtype = LT_F32;
        else if (s && (!strcmp(s, "float16") || !strcmp(s, "half"))) out->compute_dtype = LT_F16;
        else if (s && !strcmp(s, "bfloat16")) out->compute_dtype = LT_BF16;
        else {
            rc = cfg_bad(path, "bnb_4bit_compute_dtype", "not float32, float16 or bfloat16");
            goto done;
        }
    }
    *found = true;
done:
    json_decref(root);
    return rc;
}
