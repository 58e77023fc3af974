/*
 * safetensors reader and writer (huggingface/safetensors README).
 *
 * File: u64 little-endian N, N bytes of UTF-8 JSON (an object; trailing spaces allowed), then the
 * data section. Each JSON entry but "__metadata__" is {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]} with offsets relative to the data section. "__metadata__" maps
 * strings to strings.
 *
 * Invariant after a successful open: every tensor's [data, data + nbytes) lies inside the mapping,
 * nbytes = element size · product(shape), and no two tensors' byte ranges overlap. Tensor data may
 * be unaligned when a producer wrote odd offsets; read it through memcpy or lt_st_tensor_to_f32.
 */
#include "io.h"
#include "../quant/quant.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors is little-endian");

/* The reference implementation's limit on the header size (safetensors MAX_HEADER_SIZE). */
#define ST_MAX_HEADER (100u * 1000u * 1000u)

static const struct {
    const char *name;
    lt_dtype dtype;
} st_dtypes[] = {
    {"F32", LT_F32}, {"F16", LT_F16}, {"BF16", LT_BF16}, {"I32", LT_I32}, {"U8", LT_U8},
};

static bool st_dtype_parse(const char *s, lt_dtype *out) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(s, st_dtypes[i].name) == 0) {
            *out = st_dtypes[i].dtype;
            return true;
        }
    return false;
}

static const char *st_dtype_name(lt_dtype t) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dtype == t) return st_dtypes[i].name;
    return NULL;
}

/* ---- reader --------------------------------------------------------------------------------- */

typedef struct {
    uint64_t begin, end;
    int idx;
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static lt_status parse_tensor(lt_safetensors *st, lt_st_tensor *t, json_t *v, uint64_t data_size,
                              range *r) {
    const char *p = st->path, *n = t->name;
    if (!json_is_object(v))
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s': header entry is not a JSON object",
                            p, n);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo))
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s': header entry needs \"dtype\" (string), "
                            "\"shape\" (array) and \"data_offsets\" (array)", p, n);
    if (!st_dtype_parse(json_string_value(jd), &t->dtype))
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has unsupported dtype '%s' (lathe reads "
                            "F32, F16, BF16, I32, U8; hint: convert the checkpoint to F32, F16 or "
                            "BF16)", p, n, json_string_value(jd));
    size_t nd = json_array_size(js);
    if (nd > LT_MAX_DIMS)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has %zu dimensions; lathe supports up "
                            "to %d", p, n, nd, LT_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (size_t d = 0; d < nd; d++) {
        json_t *e = json_array_get(js, d);
        json_int_t x = json_is_integer(e) ? json_integer_value(e) : -1;
        if (x < 0 || __builtin_mul_overflow(numel, (uint64_t)x, &numel) || numel > INT64_MAX)
            return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s': shape[%zu] is not a non-negative "
                                "integer (or the element count overflows)", p, n, d);
        t->shape[d] = (int64_t)x;
    }
    for (size_t d = nd; d < LT_MAX_DIMS; d++) t->shape[d] = 1;
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)lt_dtype_block_bytes(t->dtype), &nbytes))
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is too large", p, n);
    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    if (json_array_size(jo) != 2 || !json_is_integer(jb) || !json_is_integer(je) ||
        json_integer_value(jb) < 0 || json_integer_value(je) < json_integer_value(jb))
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s': data_offsets must be [begin, end] "
                            "with 0 <= begin <= end", p, n);
    r->begin = (uint64_t)json_integer_value(jb);
    r->end = (uint64_t)json_integer_value(je);
    if (r->end > data_size)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s': data_offsets [%llu, %llu] run past the "
                            "end of the data section (%llu bytes; hint: the file is truncated)",
                            p, n, (unsigned long long)r->begin, (unsigned long long)r->end,
                            (unsigned long long)data_size);
    if (r->end - r->begin != nbytes)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s': data_offsets span %llu bytes but dtype "
                            "%s and its shape need %llu", p, n,
                            (unsigned long long)(r->end - r->begin), json_string_value(jd),
                            (unsigned long long)nbytes);
    t->nbytes = (size_t)nbytes;
    return LT_OK;
}

static lt_status parse_meta(lt_safetensors *st, json_t *m) {
    if (!json_is_object(m))
        return lt_error_set(LT_ERR_MODEL, "%s: \"__metadata__\" is not a JSON object", st->path);
    size_t n = json_object_size(m);
    st->meta_keys = lt_xcalloc(n ? n : 1, sizeof(char *));
    st->meta_values = lt_xcalloc(n ? n : 1, sizeof(char *));
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
        if (!json_is_string(v))
            return lt_error_set(LT_ERR_MODEL, "%s: __metadata__ key '%s' is not a string (the "
                                "format allows string values only)", st->path, k);
        st->meta_keys[st->n_meta] = lt_xstrdup(k);
        st->meta_values[st->n_meta] = lt_xstrdup(json_string_value(v));
        st->n_meta++;
    }
    return LT_OK;
}

static lt_status st_parse(lt_safetensors *st) {
    const uint8_t *base = st->map;
    if (st->size < 8)
        return lt_error_set(LT_ERR_MODEL, "%s: truncated safetensors file: %zu bytes, shorter than "
                            "the 8-byte header length", st->path, st->size);
    uint64_t hlen;
    memcpy(&hlen, base, 8);
    if (hlen > ST_MAX_HEADER)
        return lt_error_set(LT_ERR_MODEL, "%s: safetensors header length %llu exceeds the %u-byte "
                            "limit (corrupt file, or not safetensors)", st->path,
                            (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > st->size - 8)
        return lt_error_set(LT_ERR_MODEL, "%s: safetensors header length %llu runs past the end of "
                            "the %zu-byte file (hint: the file is truncated)", st->path,
                            (unsigned long long)hlen, st->size);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return lt_error_set(LT_ERR_MODEL, "%s: safetensors header is not valid JSON: %s (at byte "
                            "%d of the header)", st->path, jerr.text, jerr.position);
    lt_status rc = LT_OK;
    range *rs = NULL;
    if (!json_is_object(root)) {
        rc = lt_error_set(LT_ERR_MODEL, "%s: safetensors header is not a JSON object", st->path);
        goto done;
    }
    uint64_t data_off = 8 + hlen, data_size = st->size - data_off;
    size_t n = json_object_size(root);
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta) {
        if ((rc = parse_meta(st, meta))) goto done;
        n--;
    }
    if (n > INT_MAX) {
        rc = lt_error_set(LT_ERR_MODEL, "%s: too many tensors (%zu)", st->path, n);
        goto done;
    }
    st->tensors = lt_xcalloc(n ? n : 1, sizeof *st->tensors);
    rs = lt_xcalloc(n ? n : 1, sizeof *rs);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        int i = st->n_tensors++;
        lt_st_tensor *t = &st->tensors[i];
        t->name = lt_xstrdup(key);
        if ((rc = parse_tensor(st, t, v, data_size, &rs[i]))) goto done;
        rs[i].idx = i;
        t->data = base + data_off + rs[i].begin;
    }
    qsort(rs, (size_t)st->n_tensors, sizeof *rs, cmp_range);
    for (int i = 1; i < st->n_tensors; i++)
        if (rs[i].begin < rs[i - 1].end) {
            rc = lt_error_set(LT_ERR_MODEL, "%s: tensors '%s' and '%s' overlap in the data section "
                              "(bytes [%llu, %llu) and [%llu, %llu); corrupt file)", st->path,
                              st->tensors[rs[i - 1].idx].name, st->tensors[rs[i].idx].name,
                              (unsigned long long)rs[i - 1].begin,
                              (unsigned long long)rs[i - 1].end, (unsigned long long)rs[i].begin,
                              (unsigned long long)rs[i].end);
            goto done;
        }
done:
    free(rs);
    json_decref(root);
    return rc;
}

lt_status lt_safetensors_open(lt_safetensors **out, const char *path) {
    *out = NULL;
    void *map;
    size_t size;
    lt_status st0 = lt_map_file(path, LT_ERR_MODEL, "safetensors", &map, &size);
    if (st0) return st0;
    lt_safetensors *st = lt_xcalloc(1, sizeof *st);
    st->path = lt_xstrdup(path);
    st->map = map;
    st->size = size;
    lt_status rc = st_parse(st);
    if (rc) {
        lt_safetensors_close(st);
        return rc;
    }
    *out = st;
    return LT_OK;
}

void lt_safetensors_close(lt_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    lt_unmap_file(st->map, st->size);
    free(st->path);
    free(st);
}

const lt_st_tensor *lt_safetensors_find(const lt_safetensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *lt_safetensors_meta(const lt_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

void lt_st_tensor_to_f32(const lt_st_tensor *t, float *dst) {
    int64_t n = (int64_t)(t->nbytes / lt_dtype_block_bytes(t->dtype));
    const uint8_t *s = t->data;
    switch (t->dtype) {
    case LT_I32:
        for (int64_t i = 0; i < n; i++) {
            int32_t x;
            memcpy(&x, s + 4 * i, 4);
            dst[i] = (float)x;
        }
        break;
    case LT_U8:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        break;
    default: lt_dequant(t->dtype, s, dst, n);
    }
}

/* ---- writer --------------------------------------------------------------------------------- */

typedef struct {
    char *name;
    lt_dtype dtype;
    int ndim;
    int64_t shape[LT_MAX_DIMS];
    const void *data;
    size_t nbytes;
} wtensor;

struct lt_st_writer {
    wtensor *t;
    int n_t, cap_t;
    char **mk, **mv;
    int n_meta, cap_meta;
};

lt_st_writer *lt_st_writer_new(void) { return lt_xcalloc(1, sizeof(lt_st_writer)); }

void lt_st_writer_free(lt_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->mk[i]);
        free(w->mv[i]);
    }
    free(w->t);
    free(w->mk);
    free(w->mv);
    free(w);
}

void lt_st_writer_add(lt_st_writer *w, const char *name, lt_dtype dtype, int ndim,
                      const int64_t *shape, const void *data) {
    LT_ASSERT(name != NULL && st_dtype_name(dtype) != NULL && ndim >= 0 && ndim <= LT_MAX_DIMS);
    if (w->n_t == w->cap_t) {
        w->cap_t = w->cap_t * 2 + 8;
        w->t = lt_xrealloc(w->t, (size_t)w->cap_t * sizeof *w->t);
    }
    wtensor *t = &w->t[w->n_t++];
    *t = (wtensor){.name = lt_xstrdup(name), .dtype = dtype, .ndim = ndim, .data = data};
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        LT_ASSERT(shape[d] >= 0);
        t->shape[d] = shape[d];
        numel *= shape[d];
    }
    t->nbytes = lt_dtype_nbytes(dtype, numel);
    LT_ASSERT(data != NULL || t->nbytes == 0);
}

void lt_st_writer_meta(lt_st_writer *w, const char *key, const char *value) {
    LT_ASSERT(key != NULL && value != NULL);
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->mk[i], key) == 0) {
            free(w->mv[i]);
            w->mv[i] = lt_xstrdup(value);
            return;
        }
    if (w->n_meta == w->cap_meta) {
        w->cap_meta = w->cap_meta * 2 + 8;
        w->mk = lt_xrealloc(w->mk, (size_t)w->cap_meta * sizeof *w->mk);
        w->mv = lt_xrealloc(w->mv, (size_t)w->cap_meta * sizeof *w->mv);
    }
    w->mk[w->n_meta] = lt_xstrdup(key);
    w->mv[w->n_meta] = lt_xstrdup(value);
    w->n_meta++;
}

/* The JSON header text (malloc'ed, NUL-terminated), or NULL with an error set. */
static char *st_header(lt_st_writer *w, const char *path) {
    json_t *root = json_object();
    if (w->n_meta) {
        json_t *m = json_object();
        for (int i = 0; i < w->n_meta; i++)
            if (json_object_set_new(m, w->mk[i], json_string(w->mv[i])) != 0) {
                lt_error_set(LT_ERR_RUNTIME, "%s: metadata key '%s' or its value is not valid "
                             "UTF-8", path, w->mk[i]);
                json_decref(m);
                json_decref(root);
                return NULL;
            }
        json_object_set_new(root, "__metadata__", m);
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        if (strcmp(t->name, "__metadata__") == 0 || json_object_get(root, t->name)) {
            lt_error_set(LT_ERR_RUNTIME, "%s: cannot write tensor '%s': the name is %s", path,
                         t->name, json_object_get(root, t->name) ? "used twice" : "reserved");
            json_decref(root);
            return NULL;
        }
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(st_dtype_name(t->dtype)));
        json_object_set_new(e, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + t->nbytes)));
        json_object_set_new(e, "data_offsets", offs);
        if (json_object_set_new(root, t->name, e) != 0) {
            lt_error_set(LT_ERR_RUNTIME, "%s: tensor name '%s' is not valid UTF-8", path, t->name);
            json_decref(root);
            return NULL;
        }
        off += t->nbytes;
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!s) lt_error_set(LT_ERR_RUNTIME, "%s: cannot encode the safetensors header", path);
    return s;
}

lt_status lt_st_writer_write(lt_st_writer *w, const char *path) {
    char *hdr = st_header(w, path);
    if (!hdr) return LT_ERR_RUNTIME;
    size_t hl = strlen(hdr);
    size_t padded = (hl + 7) / 8 * 8;
    char tmp[PATH_MAX];
    FILE *fp;
    lt_status rc = lt_atomic_open(path, tmp, &fp);
    if (rc) {
        free(hdr);
        return rc;
    }
    uint64_t n = padded;
    bool ok = fwrite(&n, 8, 1, fp) == 1 && fwrite(hdr, 1, hl, fp) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', fp) != EOF;
    free(hdr);
    for (int i = 0; ok && i < w->n_t; i++)
        ok = w->t[i].nbytes == 0 || fwrite(w->t[i].data, 1, w->t[i].nbytes, fp) == w->t[i].nbytes;
    if (!ok) {
        int e = errno;
        lt_atomic_abort(fp, tmp);
        return lt_error_set(LT_ERR_IO, "cannot write safetensors file '%s': %s", path,
                            strerror(e));
    }
    return lt_atomic_commit(fp, tmp, path);
}
