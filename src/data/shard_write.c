/*
 * Token shard writer (DESIGN.md §5, docs/shards.md). Documents are buffered in memory up to the
 * shard budget, then one HDF5 file is written under a temporary name and renamed into place, so
 * NAME-NNNNN.h5 is either complete or absent. Shards hold whole documents.
 */
#include "shard_impl.h"

#include <glob.h>
#include <hdf5.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lt_shard_writer {
    char *dir, *name;
    lt_shard_meta meta;
    int64_t budget;
    int deflate;
    int shard_index;        /* index of the shard being filled */
    /* the shard in memory */
    uint32_t *tokens;       /* [n] */
    uint8_t *mask;          /* [n] once any document had a mask, else NULL */
    size_t n, cap;
    uint64_t *offsets;      /* [n_docs + 1] */
    size_t n_docs, off_cap;
};

static void reset_shard(lt_shard_writer *w) {
    w->n = 0;
    w->n_docs = 0;
    w->offsets[0] = 0;
    free(w->mask);
    w->mask = NULL;
}

lt_status lt_shard_writer_open(lt_shard_writer **out, const char *dir, const char *name,
                               const lt_shard_meta *meta, int64_t shard_tokens, int deflate) {
    *out = NULL;
    if (meta->vocab_size <= 0 || meta->vocab_size > (int64_t)INT32_MAX)
        return lt_error_set(LT_ERR_USAGE, "shard writer: vocab_size %lld out of range",
                            (long long)meta->vocab_size);
    if (deflate < 0 || deflate > 9)
        return lt_error_set(LT_ERR_USAGE, "shard writer: deflate level %d (expected 0..9)",
                            deflate);
    lt_status st = lt_mkdir_p(dir);
    if (st) return st;
    lt_shard_writer *w = lt_xcalloc(1, sizeof *w);
    w->dir = lt_xstrdup(dir);
    w->name = lt_xstrdup(name);
    w->meta = *meta;
    w->budget = shard_tokens > 0 ? shard_tokens : LT_SHARD_DEFAULT_TOKENS;
    w->deflate = deflate;
    w->off_cap = 1024;
    w->offsets = lt_xmalloc(w->off_cap * sizeof *w->offsets);
    reset_shard(w);
    *out = w;
    return LT_OK;
}

static hid_t make_dcpl(size_t n, int deflate) {
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk = n < LT_SHARD_CHUNK ? (n ? n : 1) : LT_SHARD_CHUNK;
    H5Pset_chunk(dcpl, 1, &chunk);
    if (deflate > 0 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, (unsigned)deflate);
    }
    return dcpl;
}

static herr_t write_dataset(hid_t f, const char *name, hid_t file_type, hid_t mem_type,
                            size_t n, const void *data, int deflate) {
    hsize_t dims = n;
    hid_t space = H5Screate_simple(1, &dims, NULL);
    hid_t dcpl = make_dcpl(n, deflate);
    hid_t d = H5Dcreate2(f, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : 0;
    if (d >= 0 && n) rc = H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    return rc;
}

static herr_t write_attr_i64(hid_t f, const char *name, int64_t v) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT64, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    return rc;
}

/* Fixed-length, NUL-terminated UTF-8 string attribute (readers also accept variable-length). */
static herr_t write_attr_str(hid_t f, const char *name, const char *v) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(f, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, v);
    if (a >= 0) H5Aclose(a);
    H5Tclose(t);
    H5Sclose(space);
    return rc;
}

/* Write the buffered shard as DIR/NAME-<index>.h5. HDF5 builds the file in memory (core driver,
 * no backing store) and never touches the disk: libhdf5 1.10 cannot recover from a failed write
 * or close — a full disk left a half-closed file in its ID table that crashed its exit clean-up
 * (issue 9 finding 6). The image is then written like every other lathe file: checksum sidecar
 * first, then the shard, each under a temporary name, fsynced and renamed (DESIGN.md §5). */
static lt_status flush_shard(lt_shard_writer *w) {
    if (w->n_docs == 0) return LT_OK;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s-%05d.h5", w->dir, w->name, w->shard_index);
    size_t estimate = w->n * 5 + w->n_docs * 8 + 65536;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, estimate < (64u << 20) ? estimate : (64u << 20), 0);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0)
        return lt_error_set(LT_ERR_OOM, "shard '%s': HDF5 could not create the file in memory "
                            "(%zu bytes; hint: a smaller --shard-tokens)", path, estimate);
    const lt_shard_meta *m = &w->meta;
    herr_t rc = 0;
    rc |= write_attr_str(f, "format", LT_SHARD_FORMAT);
    rc |= write_attr_i64(f, "version", LT_SHARD_VERSION);
    rc |= write_attr_i64(f, "vocab_size", m->vocab_size);
    rc |= write_attr_i64(f, "bos_id", m->bos_id);
    rc |= write_attr_i64(f, "eos_id", m->eos_id);
    rc |= write_attr_i64(f, "pad_id", m->pad_id);
    rc |= write_attr_str(f, "tokenizer_sha256", m->tokenizer_sha256);
    rc |= write_attr_str(f, "created_by", m->created_by[0] ? m->created_by : "lathe");
    if (rc >= 0)
        rc = write_dataset(f, "tokens", H5T_STD_U32LE, H5T_NATIVE_UINT32, w->n, w->tokens,
                           w->deflate);
    if (rc >= 0)
        rc = write_dataset(f, "doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, w->n_docs + 1,
                           w->offsets, w->deflate);
    if (rc >= 0 && w->mask)
        rc = write_dataset(f, "loss_mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, w->n, w->mask,
                           w->deflate);
    if (rc >= 0) rc = H5Fflush(f, H5F_SCOPE_GLOBAL);
    ssize_t size = rc >= 0 ? H5Fget_file_image(f, NULL, 0) : -1;
    void *image = size > 0 ? lt_alloc_big((size_t)size, "shard file image") : NULL;
    if (image && H5Fget_file_image(f, image, (size_t)size) != size) size = -1;
    H5Fclose(f); /* in memory: nothing left to fail */
    if (!image || size <= 0) {
        free(image);
        return lt_error_set(LT_ERR_OOM, "shard '%s': HDF5 could not build the file in memory "
                            "(hint: a smaller --shard-tokens)", path);
    }
    lt_status st = lt_shard_sidecar_write(path, image, (size_t)size);
    if (!st && (st = lt_write_file_atomic(path, image, (size_t)size))) {
        char side[PATH_MAX + 16]; /* no checksum of a shard that was not written */
        snprintf(side, sizeof side, "%s" LT_SHARD_SIDECAR_EXT, path);
        unlink(side);
    }
    free(image);
    if (st) return st;
    w->shard_index++;
    reset_shard(w);
    return LT_OK;
}

lt_status lt_shard_writer_add(lt_shard_writer *w, const int32_t *ids, const uint8_t *mask,
                              size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= w->meta.vocab_size)
            return lt_error_set(LT_ERR_DATA, "shard writer: token id %d at position %zu is "
                                "outside the vocabulary [0, %lld)", ids[i], i,
                                (long long)w->meta.vocab_size);
    if (w->n_docs > 0 && (int64_t)(w->n + n) > w->budget) {
        lt_status st = flush_shard(w);
        if (st) return st;
    }
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->n + n) cap *= 2;
        w->tokens = lt_xrealloc(w->tokens, cap * sizeof *w->tokens);
        if (w->mask) w->mask = lt_xrealloc(w->mask, cap);
        w->cap = cap;
    }
    if (mask && !w->mask) { /* first masked document: earlier ones were fully trainable */
        w->mask = lt_xmalloc(w->cap);
        memset(w->mask, 1, w->n);
    }
    for (size_t i = 0; i < n; i++) w->tokens[w->n + i] = (uint32_t)ids[i];
    if (w->mask)
        for (size_t i = 0; i < n; i++) w->mask[w->n + i] = mask ? (mask[i] != 0) : 1;
    w->n += n;
    if (w->n_docs + 2 > w->off_cap) {
        w->off_cap *= 2;
        w->offsets = lt_xrealloc(w->offsets, w->off_cap * sizeof *w->offsets);
    }
    w->n_docs++;
    w->offsets[w->n_docs] = w->n;
    return LT_OK;
}

/* Remove DIR/NAME-NNNNN.h5 files with NNNNN >= the number just written: left over from an
 * earlier, larger run into the same directory, they would otherwise match NAME-*.h5. */
static void remove_stale(const lt_shard_writer *w) {
    for (int side = 0; side < 2; side++) { /* the shards, then their .sha256 files */
        char pat[PATH_MAX];
        snprintf(pat, sizeof pat, "%s/%s-[0-9][0-9][0-9][0-9][0-9].h5%s", w->dir, w->name,
                 side ? LT_SHARD_SIDECAR_EXT : "");
        glob_t g;
        if (glob(pat, 0, NULL, &g) != 0) continue;
        size_t prefix = strlen(w->dir) + 1 + strlen(w->name) + 1;
        for (size_t i = 0; i < g.gl_pathc; i++) {
            int idx = atoi(g.gl_pathv[i] + prefix);
            if (idx >= w->shard_index && unlink(g.gl_pathv[i]) == 0 && !side)
                lt_info("removed stale shard %s", g.gl_pathv[i]);
        }
        globfree(&g);
    }
}

lt_status lt_shard_writer_close(lt_shard_writer *w, int *n_shards) {
    lt_status st = flush_shard(w);
    if (n_shards) *n_shards = w->shard_index;
    if (!st) remove_stale(w);
    lt_shard_writer_free(w);
    return st;
}

void lt_shard_writer_free(lt_shard_writer *w) {
    if (!w) return;
    free(w->dir);
    free(w->name);
    free(w->tokens);
    free(w->mask);
    free(w->offsets);
    free(w);
}
