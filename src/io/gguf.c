/*
 * GGUF reader: maps a file and validates it completely at open (ggml-org/ggml docs/gguf.md).
 *
 * Layout (little-endian): "GGUF", u32 version (2 or 3), u64 n_tensors, u64 n_kv, n_kv metadata
 * entries {string key, u32 type, value}, n_tensors tensor infos {string name, u32 n_dims,
 * u64 ne[n_dims], u32 ggml type, u64 offset}, padding to general.alignment (default 32), then the
 * data section; each tensor's offset is relative to it and aligned. A string is u64 length + bytes
 * (no NUL); an array is u32 element type + u64 count + elements.
 *
 * Invariant: every read goes through `need()`, which checks the bytes are inside the mapping, so
 * nothing here reads out of bounds however the file is damaged. After a successful open every
 * tensor's [data, data + nbytes) lies inside the mapping.
 */
#include "io.h"
#include "../quant/quant.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF is read as little-endian");

/* ---- ggml type names ------------------------------------------------------------------------ */

/* ggml's `enum ggml_type` (ggml include/ggml.h), ids 0..39; ids since removed from ggml (4, 5,
 * 31..33, 36..38) keep their old names so messages stay informative. */
static const char *const ggml_type_names[LT_GGML_TYPE_COUNT] = {
    "F32",      "F16",      "Q4_0",     "Q4_1",       "Q4_2",       "Q4_3",       "Q5_0",
    "Q5_1",     "Q8_0",     "Q8_1",     "Q2_K",       "Q3_K",       "Q4_K",       "Q5_K",
    "Q6_K",     "Q8_K",     "IQ2_XXS",  "IQ2_XS",     "IQ3_XXS",    "IQ1_S",      "IQ4_NL",
    "IQ3_S",    "IQ2_S",    "IQ4_XS",   "I8",         "I16",        "I32",        "I64",
    "F64",      "IQ1_M",    "BF16",     "Q4_0_4_4",   "Q4_0_4_8",   "Q4_0_8_8",   "TQ1_0",
    "TQ2_0",    "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",
};

const char *lt_ggml_type_name(uint32_t type) {
    return type < LT_GGML_TYPE_COUNT ? ggml_type_names[type] : "unknown";
}

bool lt_ggml_type_to_dtype(uint32_t type, lt_dtype *out) {
    switch (type) {
    case LT_GGML_F32: *out = LT_F32; return true;
    case LT_GGML_F16: *out = LT_F16; return true;
    case LT_GGML_Q4_0: *out = LT_Q4_0; return true;
    case LT_GGML_Q4_1: *out = LT_Q4_1; return true;
    case LT_GGML_Q8_0: *out = LT_Q8_0; return true;
    case LT_GGML_BF16: *out = LT_BF16; return true;
    default: return false;
    }
}

bool lt_dtype_to_ggml_type(lt_dtype t, uint32_t *out) {
    switch (t) {
    case LT_F32: *out = LT_GGML_F32; return true;
    case LT_F16: *out = LT_GGML_F16; return true;
    case LT_BF16: *out = LT_GGML_BF16; return true;
    case LT_Q8_0: *out = LT_GGML_Q8_0; return true;
    case LT_Q4_0: *out = LT_GGML_Q4_0; return true;
    case LT_Q4_1: *out = LT_GGML_Q4_1; return true;
    default: return false;
    }
}

/* ---- bounded cursor ------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *base;
    size_t size, pos;
    const char *path;
    char what[320]; /* what is being read, for messages */
} cursor;

/* The smallest encodings, used to reject absurd counts before allocating: a kv is at least an
 * empty key (8) + type (4) + a 1-byte value; a tensor info at least an empty name (8) + n_dims (4)
 * + one dim (8) + type (4) + offset (8). */
#define MIN_KV_BYTES 13
#define MIN_TINFO_BYTES 32

static lt_status need(cursor *c, uint64_t n) {
    if (n <= c->size - c->pos) return LT_OK;
    return lt_error_set(LT_ERR_MODEL,
                        "%s: truncated or corrupt GGUF: %s needs %llu bytes at offset %zu but the "
                        "file has %zu bytes (hint: the file is incomplete; download or copy it "
                        "again)",
                        c->path, c->what, (unsigned long long)n, c->pos, c->size);
}

static lt_status rd_u32(cursor *c, uint32_t *v) {
    lt_status st = need(c, 4);
    if (st) return st;
    memcpy(v, c->base + c->pos, 4);
    c->pos += 4;
    return LT_OK;
}

static lt_status rd_u64(cursor *c, uint64_t *v) {
    lt_status st = need(c, 8);
    if (st) return st;
    memcpy(v, c->base + c->pos, 8);
    c->pos += 8;
    return LT_OK;
}

static lt_status rd_str(cursor *c, lt_gguf_str *s) {
    uint64_t len;
    lt_status st = rd_u64(c, &len);
    if (st) return st;
    if ((st = need(c, len))) return st;
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += len;
    return LT_OK;
}

/* An owned NUL-terminated copy of a key or tensor name; rejects embedded NULs. */
static lt_status dup_name(cursor *c, lt_gguf_str s, const char *kind, char **out) {
    if (memchr(s.ptr, 0, s.len))
        return lt_error_set(LT_ERR_MODEL, "%s: %s at offset %zu contains a NUL byte (corrupt file)",
                            c->path, kind, c->pos - (size_t)s.len);
    char *p = lt_xmalloc(s.len + 1);
    memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    *out = p;
    return LT_OK;
}

/* Bytes of a fixed-size metadata type; 0 for string, array and invalid ids. */
static size_t scalar_size(uint32_t t) {
    switch (t) {
    case LT_GGUF_UINT8: case LT_GGUF_INT8: case LT_GGUF_BOOL: return 1;
    case LT_GGUF_UINT16: case LT_GGUF_INT16: return 2;
    case LT_GGUF_UINT32: case LT_GGUF_INT32: case LT_GGUF_FLOAT32: return 4;
    case LT_GGUF_UINT64: case LT_GGUF_INT64: case LT_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *gguf_type_name(uint32_t t) {
    static const char *const n[] = {"uint8", "int8",  "uint16", "int16",  "uint32",
                                    "int32", "float32", "bool", "string", "array",
                                    "uint64", "int64", "float64"};
    return t < sizeof n / sizeof n[0] ? n[t] : "invalid";
}

/* Read one fixed-size scalar of type t at p into kv->v (integers widen, floats to double). */
static void load_scalar(lt_gguf_kv *kv, uint32_t t, const uint8_t *p) {
    switch (t) {
    case LT_GGUF_UINT8: kv->v.u = p[0]; break;
    case LT_GGUF_INT8: kv->v.i = (int8_t)p[0]; break;
    case LT_GGUF_BOOL: kv->v.b = p[0] != 0; break;
    case LT_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); kv->v.u = x; break; }
    case LT_GGUF_INT16: { int16_t x; memcpy(&x, p, 2); kv->v.i = x; break; }
    case LT_GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); kv->v.u = x; break; }
    case LT_GGUF_INT32: { int32_t x; memcpy(&x, p, 4); kv->v.i = x; break; }
    case LT_GGUF_FLOAT32: { float x; memcpy(&x, p, 4); kv->v.f = x; break; }
    case LT_GGUF_UINT64: { uint64_t x; memcpy(&x, p, 8); kv->v.u = x; break; }
    case LT_GGUF_INT64: { int64_t x; memcpy(&x, p, 8); kv->v.i = x; break; }
    case LT_GGUF_FLOAT64: { double x; memcpy(&x, p, 8); kv->v.f = x; break; }
    default: LT_ASSERT(!"load_scalar: not a scalar type");
    }
}

static lt_status bad_bool(cursor *c, const char *key, uint8_t b) {
    return lt_error_set(LT_ERR_MODEL, "%s: metadata key '%s': bool value %u is not 0 or 1 (corrupt "
                        "file)", c->path, key, b);
}

static lt_status read_value(cursor *c, lt_gguf_kv *kv) {
    uint32_t t;
    lt_status st;
    snprintf(c->what, sizeof c->what, "the type of metadata key '%s'", kv->key);
    if ((st = rd_u32(c, &t))) return st;
    snprintf(c->what, sizeof c->what, "the value of metadata key '%s'", kv->key);
    if (t == LT_GGUF_STRING) {
        kv->type = LT_GGUF_STRING;
        return rd_str(c, &kv->v.s);
    }
    if (t != LT_GGUF_ARRAY) {
        size_t sz = scalar_size(t);
        if (!sz)
            return lt_error_set(LT_ERR_MODEL, "%s: metadata key '%s' has invalid value type %u "
                                "(valid: 0..12; corrupt file or newer GGUF)", c->path, kv->key, t);
        if ((st = need(c, sz))) return st;
        const uint8_t *p = c->base + c->pos;
        if (t == LT_GGUF_BOOL && p[0] > 1) return bad_bool(c, kv->key, p[0]);
        kv->type = (lt_gguf_type)t;
        load_scalar(kv, t, p);
        c->pos += sz;
        return LT_OK;
    }
    kv->type = LT_GGUF_ARRAY;
    uint32_t et;
    uint64_t n;
    if ((st = rd_u32(c, &et)) || (st = rd_u64(c, &n))) return st;
    if (et == LT_GGUF_ARRAY)
        return lt_error_set(LT_ERR_MODEL, "%s: metadata key '%s' is an array of arrays, which "
                            "lathe does not read", c->path, kv->key);
    kv->arr_type = (lt_gguf_type)et;
    kv->arr_n = n;
    if (et == LT_GGUF_STRING) {
        /* each element is at least its 8-byte length */
        if (n > (c->size - c->pos) / 8) {
            snprintf(c->what, sizeof c->what, "the %llu-string array of metadata key '%s'",
                     (unsigned long long)n, kv->key);
            return need(c, (n > UINT64_MAX / 8) ? UINT64_MAX : n * 8);
        }
        kv->arr_data = c->base + c->pos;
        kv->arr_str = lt_xmalloc((size_t)(n ? n : 1) * sizeof *kv->arr_str);
        for (uint64_t i = 0; i < n; i++) {
            snprintf(c->what, sizeof c->what, "element %llu of metadata key '%s'",
                     (unsigned long long)i, kv->key);
            if ((st = rd_str(c, &kv->arr_str[i]))) return st;
        }
        return LT_OK;
    }
    size_t sz = scalar_size(et);
    if (!sz)
        return lt_error_set(LT_ERR_MODEL, "%s: metadata key '%s' is an array of invalid element "
                            "type %u (corrupt file)", c->path, kv->key, et);
    snprintf(c->what, sizeof c->what, "the %llu-element %s array of metadata key '%s'",
             (unsigned long long)n, gguf_type_name(et), kv->key);
    if (n > (c->size - c->pos) / sz) return need(c, n > UINT64_MAX / sz ? UINT64_MAX : n * sz);
    kv->arr_data = c->base + c->pos;
    if (et == LT_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (c->base[c->pos + i] > 1) return bad_bool(c, kv->key, c->base[c->pos + i]);
    c->pos += n * sz;
    return LT_OK;
}

/* ---- open / close --------------------------------------------------------------------------- */

static int cmp_strp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first name occurring twice in names[n], or NULL. */
static const char *find_duplicate(char **names, int64_t n) {
    if (n < 2) return NULL;
    char **s = lt_xmalloc((size_t)n * sizeof *s);
    memcpy(s, names, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_strp);
    const char *dup = NULL;
    for (int64_t i = 1; i < n && !dup; i++)
        if (strcmp(s[i - 1], s[i]) == 0) dup = s[i];
    free(s);
    return dup;
}

static lt_status read_tensor_info(cursor *c, lt_gguf *g, int64_t idx) {
    lt_gguf_tensor *t = &g->tensors[idx];
    lt_gguf_str name;
    lt_status st;
    snprintf(c->what, sizeof c->what, "the name of tensor %lld", (long long)idx);
    if ((st = rd_str(c, &name)) || (st = dup_name(c, name, "a tensor name", &t->name))) return st;
    uint32_t n_dims;
    snprintf(c->what, sizeof c->what, "the info of tensor '%s'", t->name);
    if ((st = rd_u32(c, &n_dims))) return st;
    if (n_dims < 1 || n_dims > 4)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has %u dimensions (GGUF allows 1..4; "
                            "corrupt file)", c->path, t->name, n_dims);
    t->n_dims = (int)n_dims;
    int64_t numel = 1;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        if ((st = rd_u64(c, &ne))) return st;
        if (ne == 0 || ne > (uint64_t)INT64_MAX || __builtin_mul_overflow(numel, (int64_t)ne, &numel))
            return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has an invalid size %llu in "
                                "dimension %u (must be positive and the element count must fit "
                                "in 64 bits; corrupt file)", c->path, t->name,
                                (unsigned long long)ne, d);
        t->ne[d] = (int64_t)ne;
    }
    if ((st = rd_u32(c, &t->ggml_type)) || (st = rd_u64(c, &t->offset))) return st;
    if (t->ggml_type >= LT_GGML_TYPE_COUNT)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has invalid ggml type id %u (known ids "
                            "are 0..%d; corrupt file or a newer ggml)", c->path, t->name,
                            t->ggml_type, LT_GGML_TYPE_COUNT - 1);
    if (!lt_ggml_type_to_dtype(t->ggml_type, &t->dtype))
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has type %s (ggml type %u), which lathe "
                            "cannot read (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1; hint: "
                            "re-quantize the model to one of these, e.g. with llama-quantize)",
                            c->path, t->name, lt_ggml_type_name(t->ggml_type), t->ggml_type);
    int64_t be = lt_dtype_block_elems(t->dtype);
    if (t->ne[0] % be != 0)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' of type %s has rows of %lld elements, "
                            "not a multiple of the block size %lld (corrupt file)", c->path,
                            t->name, lt_ggml_type_name(t->ggml_type), (long long)t->ne[0],
                            (long long)be);
    /* numel / be blocks of block_bytes each; the product must fit size_t */
    uint64_t blocks = (uint64_t)(numel / be), nbytes;
    if (__builtin_mul_overflow(blocks, (uint64_t)lt_dtype_block_bytes(t->dtype), &nbytes) ||
        nbytes > SIZE_MAX)
        return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is too large (%lld elements; corrupt "
                            "file)", c->path, t->name, (long long)numel);
    t->nbytes = (size_t)nbytes;
    return LT_OK;
}

/* meta_only: stop after the metadata (and general.alignment): no tensor infos are read, so a
 * tensor type lathe cannot read is no error; n_tensors is then 0. */
static lt_status parse(lt_gguf *g, bool meta_only) {
    cursor c = {.base = g->map, .size = g->size, .pos = 0, .path = g->path};
    lt_status st;
    snprintf(c.what, sizeof c.what, "the GGUF magic");
    if ((st = need(&c, 4))) return st;
    if (memcmp(c.base, "GGUF", 4) != 0)
        return lt_error_set(LT_ERR_MODEL, "%s: not a GGUF file (first bytes %02x %02x %02x %02x, "
                            "expected \"GGUF\"; hint: pass a .gguf model file)", g->path,
                            c.base[0], c.base[1], c.base[2], c.base[3]);
    c.pos = 4;
    snprintf(c.what, sizeof c.what, "the GGUF header");
    uint64_t n_tensors, n_kv;
    if ((st = rd_u32(&c, &g->version))) return st;
    if (g->version != 2 && g->version != 3) {
        const char *hint = g->version == 1 ? "GGUF v1 is obsolete; convert the model again"
                           : (g->version & 0xffff) == 0 ? "this looks like a big-endian GGUF, "
                                                          "lathe reads little-endian ones"
                                                        : "corrupt file or a newer GGUF";
        return lt_error_set(LT_ERR_MODEL, "%s: unsupported GGUF version %u (lathe reads 2 and 3; "
                            "hint: %s)", g->path, g->version, hint);
    }
    if ((st = rd_u64(&c, &n_tensors)) || (st = rd_u64(&c, &n_kv))) return st;
    size_t rest = c.size - c.pos;
    if (n_kv > rest / MIN_KV_BYTES || n_tensors > rest / MIN_TINFO_BYTES ||
        n_kv * MIN_KV_BYTES + n_tensors * MIN_TINFO_BYTES > rest)
        return lt_error_set(LT_ERR_MODEL, "%s: GGUF header claims %llu metadata entries and %llu "
                            "tensors, which cannot fit in the %zu bytes that follow (corrupt or "
                            "truncated file)", g->path, (unsigned long long)n_kv,
                            (unsigned long long)n_tensors, rest);
    g->n_kv = (int64_t)n_kv;
    g->kv = lt_xcalloc(n_kv ? n_kv : 1, sizeof *g->kv);
    for (int64_t i = 0; i < g->n_kv; i++) {
        lt_gguf_kv *kv = &g->kv[i];
        lt_gguf_str key;
        snprintf(c.what, sizeof c.what, "the key of metadata entry %lld", (long long)i);
        if ((st = rd_str(&c, &key))) return st;
        if ((st = dup_name(&c, key, "a metadata key", &kv->key))) return st;
        if ((st = read_value(&c, kv))) return st;
    }
    const char *dup;
    {
        char **keys = lt_xmalloc((size_t)(g->n_kv ? g->n_kv : 1) * sizeof *keys);
        for (int64_t i = 0; i < g->n_kv; i++) keys[i] = g->kv[i].key;
        dup = find_duplicate(keys, g->n_kv);
        if (dup) st = lt_error_set(LT_ERR_MODEL, "%s: metadata key '%s' appears twice (corrupt "
                                   "file)", g->path, dup);
        free(keys);
        if (st) return st;
    }
    g->alignment = 32;
    const lt_gguf_kv *al = lt_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != LT_GGUF_UINT32 || al->v.u == 0 || (al->v.u & (al->v.u - 1)) != 0)
            return lt_error_set(LT_ERR_MODEL, "%s: general.alignment must be a uint32 power of two "
                                "(got type %s%s)", g->path, gguf_type_name(al->type),
                                al->type == LT_GGUF_UINT32 ? " with a non-power-of-two value" : "");
        g->alignment = (size_t)al->v.u;
    }
    if (meta_only) {
        g->n_tensors = 0;
        g->tensors = lt_xcalloc(1, sizeof *g->tensors);
        g->data_offset = c.pos;
        return LT_OK;
    }
    g->n_tensors = (int64_t)n_tensors;
    g->tensors = lt_xcalloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    for (int64_t i = 0; i < g->n_tensors; i++)
        if ((st = read_tensor_info(&c, g, i))) return st;
    {
        char **names = lt_xmalloc((size_t)(g->n_tensors ? g->n_tensors : 1) * sizeof *names);
        for (int64_t i = 0; i < g->n_tensors; i++) names[i] = g->tensors[i].name;
        dup = find_duplicate(names, g->n_tensors);
        if (dup) st = lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' appears twice (corrupt file)",
                                   g->path, dup);
        free(names);
        if (st) return st;
    }
    /* data section: the end of the tensor infos rounded up to the alignment */
    size_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    if (g->n_tensors == 0) {
        g->data_offset = pad <= c.size - c.pos ? c.pos + pad : c.size;
        return LT_OK;
    }
    snprintf(c.what, sizeof c.what, "the padding before the tensor data");
    if ((st = need(&c, pad))) return st;
    g->data_offset = c.pos + pad;
    size_t data_size = g->size - g->data_offset;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lt_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' data offset %llu is not a multiple "
                                "of the alignment %zu (corrupt file)", g->path, t->name,
                                (unsigned long long)t->offset, g->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' (%zu bytes at data offset %llu) "
                                "extends past the end of the file, whose data section holds %zu "
                                "bytes (hint: the file is truncated; download or copy it again)",
                                g->path, t->name, t->nbytes, (unsigned long long)t->offset,
                                data_size);
        t->data = (const uint8_t *)g->map + g->data_offset + t->offset;
    }
    return LT_OK;
}

static lt_status open_gguf(lt_gguf **out, const char *path, bool meta_only) {
    *out = NULL;
    void *map;
    size_t size;
    lt_status st0 = lt_map_file(path, LT_ERR_MODEL, "GGUF", &map, &size);
    if (st0) return st0;
    if (size == 0) return lt_error_set(LT_ERR_MODEL, "%s: empty file, not a GGUF model", path);
    lt_gguf *g = lt_xcalloc(1, sizeof *g);
    g->path = lt_xstrdup(path);
    g->map = map;
    g->size = size;
    lt_status st = parse(g, meta_only);
    if (st) {
        lt_gguf_close(g);
        return st;
    }
    *out = g;
    return LT_OK;
}

lt_status lt_gguf_open(lt_gguf **out, const char *path) { return open_gguf(out, path, false); }

lt_status lt_gguf_open_meta(lt_gguf **out, const char *path) { return open_gguf(out, path, true); }

void lt_gguf_close(lt_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].arr_str);
        }
    if (g->tensors)
        for (int64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    lt_unmap_file(g->map, g->size);
    free(g->path);
    free(g);
}

/* ---- lookups -------------------------------------------------------------------------------- */

const lt_gguf_kv *lt_gguf_find(const lt_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

static bool is_unsigned(lt_gguf_type t) {
    return t == LT_GGUF_UINT8 || t == LT_GGUF_UINT16 || t == LT_GGUF_UINT32 || t == LT_GGUF_UINT64;
}
static bool is_signed(lt_gguf_type t) {
    return t == LT_GGUF_INT8 || t == LT_GGUF_INT16 || t == LT_GGUF_INT32 || t == LT_GGUF_INT64;
}

bool lt_gguf_get_int(const lt_gguf *g, const char *key, int64_t *out) {
    const lt_gguf_kv *kv = lt_gguf_find(g, key);
    if (!kv) return false;
    if (is_signed(kv->type)) { *out = kv->v.i; return true; }
    if (is_unsigned(kv->type) && kv->v.u <= (uint64_t)INT64_MAX) { *out = (int64_t)kv->v.u; return true; }
    return false;
}

bool lt_gguf_get_float(const lt_gguf *g, const char *key, double *out) {
    const lt_gguf_kv *kv = lt_gguf_find(g, key);
    if (!kv) return false;
    if (kv->type == LT_GGUF_FLOAT32 || kv->type == LT_GGUF_FLOAT64) *out = kv->v.f;
    else if (is_signed(kv->type)) *out = (double)kv->v.i;
    else if (is_unsigned(kv->type)) *out = (double)kv->v.u;
    else return false;
    return true;
}

bool lt_gguf_get_bool(const lt_gguf *g, const char *key, bool *out) {
    const lt_gguf_kv *kv = lt_gguf_find(g, key);
    if (!kv || kv->type != LT_GGUF_BOOL) return false;
    *out = kv->v.b;
    return true;
}

bool lt_gguf_get_str(const lt_gguf *g, const char *key, lt_gguf_str *out) {
    const lt_gguf_kv *kv = lt_gguf_find(g, key);
    if (!kv || kv->type != LT_GGUF_STRING) return false;
    *out = kv->v.s;
    return true;
}

bool lt_gguf_arr_is_int(const lt_gguf_kv *kv) {
    return kv->type == LT_GGUF_ARRAY && scalar_size(kv->arr_type) &&
           kv->arr_type != LT_GGUF_FLOAT32 && kv->arr_type != LT_GGUF_FLOAT64;
}

int64_t lt_gguf_arr_int(const lt_gguf_kv *kv, uint64_t i) {
    LT_ASSERT(kv->type == LT_GGUF_ARRAY && i < kv->arr_n);
    size_t sz = scalar_size(kv->arr_type);
    LT_ASSERT(sz && kv->arr_type != LT_GGUF_FLOAT32 && kv->arr_type != LT_GGUF_FLOAT64);
    lt_gguf_kv tmp;
    load_scalar(&tmp, kv->arr_type, (const uint8_t *)kv->arr_data + i * sz);
    if (kv->arr_type == LT_GGUF_BOOL) return tmp.v.b;
    return is_signed(kv->arr_type) ? tmp.v.i : (int64_t)tmp.v.u;
}

double lt_gguf_arr_float(const lt_gguf_kv *kv, uint64_t i) {
    LT_ASSERT(kv->type == LT_GGUF_ARRAY && i < kv->arr_n);
    size_t sz = scalar_size(kv->arr_type);
    LT_ASSERT(sz);
    lt_gguf_kv tmp;
    load_scalar(&tmp, kv->arr_type, (const uint8_t *)kv->arr_data + i * sz);
    switch (kv->arr_type) {
    case LT_GGUF_FLOAT32: case LT_GGUF_FLOAT64: return tmp.v.f;
    case LT_GGUF_BOOL: return tmp.v.b;
    default: return is_signed(kv->arr_type) ? (double)tmp.v.i : (double)tmp.v.u;
    }
}

bool lt_gguf_str_eq(lt_gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

const lt_gguf_tensor *lt_gguf_find_tensor(const lt_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

int64_t lt_gguf_tensor_numel(const lt_gguf_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

void lt_gguf_tensor_to_f32(const lt_gguf_tensor *t, float *dst) {
    lt_dequant(t->dtype, t->data, dst, lt_gguf_tensor_numel(t));
}
