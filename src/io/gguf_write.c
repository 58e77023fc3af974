/*
 * GGUF writer (ggml-org/ggml docs/gguf.md, version 3, little-endian, alignment 32).
 *
 * Metadata values are serialized when set (type id + encoded value), so writing is a copy. The
 * file is: header, kvs, tensor infos, zero padding to 32, then each tensor's bytes padded to 32;
 * tensor offsets are relative to the data section. Written through core's atomic temp + rename.
 */
#include "io.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF is written as little-endian");

#define WRITE_ALIGN 32

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void buf_put(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = lt_xrealloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { buf_put(b, &v, 8); }
static void put_str(buf *b, const char *s) {
    size_t n = strlen(s);
    put_u64(b, n);
    buf_put(b, s, n);
}

typedef struct {
    char *key;
    buf val; /* u32 type followed by the encoded value */
} wkv;

typedef struct {
    char *name;
    uint32_t ggml_type;
    int n_dims;
    int64_t ne[4];
    const void *data;
    size_t nbytes;
} wtensor;

struct lt_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

lt_gguf_writer *lt_gguf_writer_new(void) { return lt_xcalloc(1, sizeof(lt_gguf_writer)); }

void lt_gguf_writer_free(lt_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* The value buffer for key, emptied: an existing entry is reused, otherwise one is appended. */
static buf *slot(lt_gguf_writer *w, const char *key, uint32_t type) {
    LT_ASSERT(key != NULL);
    wkv *e = NULL;
    for (size_t i = 0; i < w->n_kv && !e; i++)
        if (strcmp(w->kv[i].key, key) == 0) e = &w->kv[i];
    if (!e) {
        if (w->n_kv == w->cap_kv) {
            w->cap_kv = w->cap_kv * 2 + 8;
            w->kv = lt_xrealloc(w->kv, w->cap_kv * sizeof *w->kv);
        }
        e = &w->kv[w->n_kv++];
        *e = (wkv){.key = lt_xstrdup(key)};
    }
    e->val.n = 0;
    put_u32(&e->val, type);
    return &e->val;
}

void lt_gguf_writer_set_u32(lt_gguf_writer *w, const char *key, uint32_t v) {
    put_u32(slot(w, key, LT_GGUF_UINT32), v);
}
void lt_gguf_writer_set_i32(lt_gguf_writer *w, const char *key, int32_t v) {
    buf_put(slot(w, key, LT_GGUF_INT32), &v, 4);
}
void lt_gguf_writer_set_u64(lt_gguf_writer *w, const char *key, uint64_t v) {
    put_u64(slot(w, key, LT_GGUF_UINT64), v);
}
void lt_gguf_writer_set_f32(lt_gguf_writer *w, const char *key, float v) {
    buf_put(slot(w, key, LT_GGUF_FLOAT32), &v, 4);
}
void lt_gguf_writer_set_bool(lt_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    buf_put(slot(w, key, LT_GGUF_BOOL), &b, 1);
}
void lt_gguf_writer_set_str(lt_gguf_writer *w, const char *key, const char *v) {
    LT_ASSERT(v != NULL);
    put_str(slot(w, key, LT_GGUF_STRING), v);
}
void lt_gguf_writer_set_str_arr(lt_gguf_writer *w, const char *key, const char *const *v,
                                size_t n) {
    buf *b = slot(w, key, LT_GGUF_ARRAY);
    put_u32(b, LT_GGUF_STRING);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++) put_str(b, v[i]);
}
void lt_gguf_writer_set_i32_arr(lt_gguf_writer *w, const char *key, const int32_t *v, size_t n) {
    buf *b = slot(w, key, LT_GGUF_ARRAY);
    put_u32(b, LT_GGUF_INT32);
    put_u64(b, n);
    buf_put(b, v, n * 4);
}
void lt_gguf_writer_set_f32_arr(lt_gguf_writer *w, const char *key, const float *v, size_t n) {
    buf *b = slot(w, key, LT_GGUF_ARRAY);
    put_u32(b, LT_GGUF_FLOAT32);
    put_u64(b, n);
    buf_put(b, v, n * 4);
}

void lt_gguf_writer_add_raw(lt_gguf_writer *w, const char *name, uint32_t ggml_type, int n_dims,
                            const int64_t *ne, const void *data, size_t nbytes) {
    LT_ASSERT(name != NULL && n_dims >= 1 && n_dims <= 4 && (data != NULL || nbytes == 0));
    if (w->n_t == w->cap_t) {
        w->cap_t = w->cap_t * 2 + 8;
        w->t = lt_xrealloc(w->t, w->cap_t * sizeof *w->t);
    }
    wtensor *t = &w->t[w->n_t++];
    *t = (wtensor){.name = lt_xstrdup(name), .ggml_type = ggml_type, .n_dims = n_dims,
                   .data = data, .nbytes = nbytes};
    for (int d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
}

void lt_gguf_writer_add_tensor(lt_gguf_writer *w, const char *name, lt_dtype dt, int n_dims,
                               const int64_t *ne, const void *data) {
    uint32_t gt;
    LT_ASSERT(lt_dtype_to_ggml_type(dt, &gt));
    LT_ASSERT(n_dims >= 1 && n_dims <= 4);
    int64_t numel = 1;
    for (int d = 0; d < n_dims; d++) {
        LT_ASSERT(ne[d] > 0);
        numel *= ne[d];
    }
    LT_ASSERT(ne[0] % lt_dtype_block_elems(dt) == 0);
    lt_gguf_writer_add_raw(w, name, gt, n_dims, ne, data, lt_dtype_nbytes(dt, numel));
}

static size_t pad_to(size_t n) { return (WRITE_ALIGN - n % WRITE_ALIGN) % WRITE_ALIGN; }

lt_status lt_gguf_writer_write(lt_gguf_writer *w, const char *path) {
    buf h = {0};
    buf_put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, w->n_t);
    put_u64(&h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&h, w->kv[i].key);
        buf_put(&h, w->kv[i].val.p, w->kv[i].val.n);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(&h, t->name);
        put_u32(&h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(&h, (uint64_t)t->ne[d]);
        put_u32(&h, t->ggml_type);
        put_u64(&h, off);
        off += t->nbytes + pad_to(t->nbytes);
    }
    static const uint8_t zeros[WRITE_ALIGN];
    buf_put(&h, zeros, pad_to(h.n));

    char tmp[PATH_MAX];
    FILE *fp;
    lt_status st = lt_atomic_open(path, tmp, &fp);
    if (st) {
        free(h.p);
        return st;
    }
    bool ok = fwrite(h.p, 1, h.n, fp) == h.n;
    free(h.p);
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        size_t pad = pad_to(t->nbytes);
        ok = (t->nbytes == 0 || fwrite(t->data, 1, t->nbytes, fp) == t->nbytes) &&
             (pad == 0 || fwrite(zeros, 1, pad, fp) == pad);
    }
    if (!ok) {
        int e = errno;
        lt_atomic_abort(fp, tmp);
        return lt_error_set(LT_ERR_IO, "cannot write GGUF file '%s': %s", path, strerror(e));
    }
    return lt_atomic_commit(fp, tmp, path);
}
