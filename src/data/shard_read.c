/*
 * Token shard reader: opens one HDF5 shard, validates everything DESIGN.md §5 promises (see
 * docs/shards.md), keeps doc_offsets in memory and the `tokens` / `loss_mask` datasets open for
 * hyperslab reads. Also the glob expansion of shard patterns.
 */
#include "shard_impl.h"

#include <glob.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK (1 << 20) /* tokens per validation read */
#define MAX_RATIO 1032u       /* deflate's best compression ratio */
#define STORAGE_SLACK 65536u  /* bytes of values a dataset may claim beyond MAX_RATIO x stored */

static lt_status bad_attr(const char *path, const char *attr, const char *problem,
                          const char *hint) {
    return lt_error_set(LT_ERR_DATA, "%s: attribute '%s': %s (hint: %s)", path, attr, problem,
                        hint);
}

static lt_status bad_dset(const char *path, const char *dset, const char *problem,
                          const char *hint) {
    return lt_error_set(LT_ERR_DATA, "%s: dataset '%s': %s (hint: %s)", path, dset, problem,
                        hint);
}

#define REWRITE_HINT "re-create the shards with `lathe tokenize`, or see docs/shards.md"

/* A scalar (or 1-element) attribute's dataspace check. */
static bool attr_is_scalar(hid_t a) {
    hid_t sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    return n == 1;
}

static lt_status read_attr_int(hid_t f, const char *path, const char *name, int64_t *v) {
    if (H5Aexists(f, name) <= 0) return bad_attr(path, name, "missing", REWRITE_HINT);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) return bad_attr(path, name, "unreadable", REWRITE_HINT);
    hid_t t = H5Aget_type(a);
    bool ok = H5Tget_class(t) == H5T_INTEGER && attr_is_scalar(a);
    H5Tclose(t);
    if (ok) ok = H5Aread(a, H5T_NATIVE_INT64, v) >= 0;
    H5Aclose(a);
    if (!ok) return bad_attr(path, name, "not a scalar integer", REWRITE_HINT);
    return LT_OK;
}

/* Fixed-length or variable-length string attribute into buf (truncated to cap-1). */
static lt_status read_attr_str(hid_t f, const char *path, const char *name, char *buf,
                               size_t cap) {
    if (H5Aexists(f, name) <= 0) return bad_attr(path, name, "missing", REWRITE_HINT);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) return bad_attr(path, name, "unreadable", REWRITE_HINT);
    hid_t t = H5Aget_type(a);
    bool ok = H5Tget_class(t) == H5T_STRING && attr_is_scalar(a);
    if (ok && H5Tis_variable_str(t) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        char *s = NULL;
        ok = H5Aread(a, mt, &s) >= 0 && s;
        if (ok) snprintf(buf, cap, "%s", s);
        if (s) H5free_memory(s);
        H5Tclose(mt);
    } else if (ok) {
        size_t n = H5Tget_size(t);
        char *s = lt_xcalloc(1, n + 1);
        hid_t mt = H5Tcopy(t); /* same size/padding: read the raw bytes */
        ok = H5Aread(a, mt, s) >= 0;
        if (ok) snprintf(buf, cap, "%s", s);
        H5Tclose(mt);
        free(s);
    }
    H5Tclose(t);
    H5Aclose(a);
    if (!ok) return bad_attr(path, name, "not a scalar string", REWRITE_HINT);
    return LT_OK;
}

/* Open a rank-1 unsigned integer dataset of `size` bytes per element; *n receives its length. */
static lt_status open_dset(hid_t f, const char *path, const char *name, size_t size,
                           const char *dtype_name, hid_t *d, int64_t *n) {
    *d = -1;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0)
        return bad_dset(path, name, "missing", REWRITE_HINT);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return bad_dset(path, name, "not a dataset", REWRITE_HINT);
    hid_t t = H5Dget_type(ds);
    bool type_ok = H5Tget_class(t) == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_NONE &&
                   H5Tget_size(t) == size;
    H5Tclose(t);
    if (!type_ok) {
        H5Dclose(ds);
        char problem[96], hint[96];
        snprintf(problem, sizeof problem, "dtype is not %s", dtype_name);
        snprintf(hint, sizeof hint, "store it as numpy.%s", dtype_name);
        return bad_dset(path, name, problem, hint);
    }
    hid_t sp = H5Dget_space(ds);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[8] = {0};
    if (rank == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    if (rank != 1) {
        H5Dclose(ds);
        char problem[64];
        snprintf(problem, sizeof problem, "rank %d, expected 1", rank);
        return bad_dset(path, name, problem, "store a flat 1-D array");
    }
    /* External raw-data files and virtual datasets would make the shard read other files on
     * this machine (any path the file names) as tokens. */
    hid_t dcpl = H5Dget_create_plist(ds);
    H5D_layout_t layout = H5Pget_layout(dcpl);
    int n_ext = H5Pget_external_count(dcpl);
    H5Pclose(dcpl);
    if (n_ext != 0 || (layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED &&
                       layout != H5D_COMPACT)) {
        H5Dclose(ds);
        return bad_dset(path, name, n_ext ? "stores its data in external files"
                                          : "is a virtual dataset or has an unknown layout",
                        "keep the data inside the shard file (h5py's default); " REWRITE_HINT);
    }
    /* A dataset's extent is only a claim: unwritten chunks read as the fill value, so a 200-byte
     * file can declare 2^60 tokens and have the validation read (or allocate) forever. Refuse
     * more values than the stored bytes can hold under deflate, whose ratio is at most 1032:1
     * (RFC 1951 run of 258 bytes per 2-bit code); the slack covers tiny datasets. */
    hsize_t stored = H5Dget_storage_size(ds);
    if (dims[0] > (MAX_RATIO * (uint64_t)stored + STORAGE_SLACK) / size) {
        H5Dclose(ds);
        char problem[160];
        snprintf(problem, sizeof problem, "claims %llu values but stores only %llu bytes",
                 (unsigned long long)dims[0], (unsigned long long)stored);
        return bad_dset(path, name, problem, "the file is truncated or was written with its "
                        "data missing; " REWRITE_HINT);
    }
    *d = ds;
    *n = (int64_t)dims[0];
    return LT_OK;
}

static herr_t read_range(hid_t d, hid_t mem_type, int64_t start, int64_t n, void *buf) {
    if (n == 0) return 0;
    hid_t fs = H5Dget_space(d);
    hsize_t s = (hsize_t)start, c = (hsize_t)n;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &s, NULL, &c, NULL);
    hid_t ms = H5Screate_simple(1, &c, NULL);
    herr_t rc = H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return rc;
}

static lt_status check_id(const char *path, const char *name, int64_t id, int64_t vocab) {
    if (id < -1 || id >= vocab) {
        char problem[128];
        snprintf(problem, sizeof problem, "%lld is outside [-1, vocab_size=%lld)",
                 (long long)id, (long long)vocab);
        return bad_attr(path, name, problem, "use -1 for none");
    }
    return LT_OK;
}

static lt_status validate(lt_shard *s, hid_t f, const lt_shard_expect *ex) {
    const char *p = s->path;
    lt_shard_meta *m = &s->meta;
    char format[64];
    int64_t version;
    lt_status st;
    if ((st = read_attr_str(f, p, "format", format, sizeof format))) return st;
    if (strcmp(format, LT_SHARD_FORMAT)) {
        char problem[160];
        snprintf(problem, sizeof problem, "is \"%s\", expected \"" LT_SHARD_FORMAT "\"", format);
        return bad_attr(p, "format", problem, "this is not a lathe token shard");
    }
    if ((st = read_attr_int(f, p, "version", &version))) return st;
    if (version != LT_SHARD_VERSION) {
        char problem[96];
        snprintf(problem, sizeof problem, "is %lld, this lathe reads version %d",
                 (long long)version, LT_SHARD_VERSION);
        return bad_attr(p, "version", problem, REWRITE_HINT);
    }
    if ((st = read_attr_int(f, p, "vocab_size", &m->vocab_size))) return st;
    if (m->vocab_size <= 0 || m->vocab_size > (int64_t)INT32_MAX)
        return bad_attr(p, "vocab_size", "must be in [1, 2^31)", REWRITE_HINT);
    if ((st = read_attr_int(f, p, "bos_id", &m->bos_id))) return st;
    if ((st = read_attr_int(f, p, "eos_id", &m->eos_id))) return st;
    if ((st = read_attr_int(f, p, "pad_id", &m->pad_id))) return st;
    if ((st = check_id(p, "bos_id", m->bos_id, m->vocab_size))) return st;
    if ((st = check_id(p, "eos_id", m->eos_id, m->vocab_size))) return st;
    if ((st = check_id(p, "pad_id", m->pad_id, m->vocab_size))) return st;
    if ((st = read_attr_str(f, p, "tokenizer_sha256", m->tokenizer_sha256,
                            sizeof m->tokenizer_sha256)))
        return st;
    if ((st = read_attr_str(f, p, "created_by", m->created_by, sizeof m->created_by))) return st;

    if (ex && ex->vocab_size > 0 && ex->vocab_size != m->vocab_size)
        return lt_error_set(LT_ERR_DATA, "%s: attribute 'vocab_size': shard has %lld, the model "
                            "has %lld (hint: tokenize the data with this model's tokenizer)", p,
                            (long long)m->vocab_size, (long long)ex->vocab_size);
    if (ex && ex->tokenizer_sha256 && ex->tokenizer_sha256[0] &&
        strcmp(ex->tokenizer_sha256, m->tokenizer_sha256))
        return lt_error_set(LT_ERR_DATA, "%s: attribute 'tokenizer_sha256': shard has \"%s\", "
                            "the model's tokenizer is \"%s\" (hint: tokenize the data with this "
                            "model's tokenizer)", p, m->tokenizer_sha256, ex->tokenizer_sha256);

    hid_t d_tok, d_off, d_mask = -1;
    int64_t n_off;
    if ((st = open_dset(f, p, "tokens", 4, "uint32", &d_tok, &s->n_tokens))) return st;
    s->h5_tokens = d_tok;
    if ((st = open_dset(f, p, "doc_offsets", 8, "uint64", &d_off, &n_off))) return st;
    if (n_off < 1) {
        H5Dclose(d_off);
        return bad_dset(p, "doc_offsets", "is empty, expected D+1 >= 1 values starting at 0",
                        REWRITE_HINT);
    }
    s->n_docs = n_off - 1;
    s->doc_offsets = lt_alloc_big((size_t)n_off * sizeof *s->doc_offsets, "doc_offsets");
    if (!s->doc_offsets) {
        H5Dclose(d_off);
        return lt_error_wrap(LT_ERR_OOM, "%s: dataset 'doc_offsets' (%lld values)", p,
                             (long long)n_off);
    }
    herr_t rc = read_range(d_off, H5T_NATIVE_UINT64, 0, n_off, s->doc_offsets);
    H5Dclose(d_off);
    if (rc < 0) return bad_dset(p, "doc_offsets", "unreadable", REWRITE_HINT);
    if (s->doc_offsets[0] != 0)
        return bad_dset(p, "doc_offsets", "does not start at 0", REWRITE_HINT);
    for (int64_t i = 1; i < n_off; i++)
        if (s->doc_offsets[i] < s->doc_offsets[i - 1]) {
            char problem[128];
            snprintf(problem, sizeof problem, "decreases at index %lld (%llu after %llu)",
                     (long long)i, (unsigned long long)s->doc_offsets[i],
                     (unsigned long long)s->doc_offsets[i - 1]);
            return bad_dset(p, "doc_offsets", problem, REWRITE_HINT);
        }
    if (s->doc_offsets[n_off - 1] != (uint64_t)s->n_tokens) {
        char problem[128];
        snprintf(problem, sizeof problem, "ends at %llu but 'tokens' has %lld values",
                 (unsigned long long)s->doc_offsets[n_off - 1], (long long)s->n_tokens);
        return bad_dset(p, "doc_offsets", problem, REWRITE_HINT);
    }

    if (H5Lexists(f, "loss_mask", H5P_DEFAULT) > 0) {
        int64_t n_mask;
        if ((st = open_dset(f, p, "loss_mask", 1, "uint8", &d_mask, &n_mask))) return st;
        s->h5_mask = d_mask;
        s->has_mask = true;
        if (n_mask != s->n_tokens) {
            char problem[128];
            snprintf(problem, sizeof problem, "has %lld values, 'tokens' has %lld",
                     (long long)n_mask, (long long)s->n_tokens);
            return bad_dset(p, "loss_mask", problem, REWRITE_HINT);
        }
    }

    /* token range and mask values, chunk by chunk */
    uint32_t *buf = lt_xmalloc(READ_CHUNK * sizeof *buf);
    uint8_t *mbuf = s->has_mask ? lt_xmalloc(READ_CHUNK) : NULL;
    s->n_trainable = s->has_mask ? 0 : s->n_tokens;
    s->n_targets = 0;
    int64_t next_doc = 0; /* first doc whose start offset is >= the current index */
    st = LT_OK;
    for (int64_t at = 0; at < s->n_tokens && !st; at += READ_CHUNK) {
        int64_t n = s->n_tokens - at < READ_CHUNK ? s->n_tokens - at : READ_CHUNK;
        if (read_range(d_tok, H5T_NATIVE_UINT32, at, n, buf) < 0) {
            st = bad_dset(p, "tokens", "unreadable (corrupt chunk?)", REWRITE_HINT);
            break;
        }
        for (int64_t i = 0; i < n; i++)
            if (buf[i] >= (uint64_t)m->vocab_size) {
                char problem[160];
                snprintf(problem, sizeof problem, "token %u at index %lld is >= vocab_size %lld",
                         buf[i], (long long)(at + i), (long long)m->vocab_size);
                st = bad_dset(p, "tokens", problem,
                              "the shard was written for another vocabulary; " REWRITE_HINT);
                break;
            }
        if (st || !mbuf) continue;
        if (read_range(d_mask, H5T_NATIVE_UINT8, at, n, mbuf) < 0) {
            st = bad_dset(p, "loss_mask", "unreadable (corrupt chunk?)", REWRITE_HINT);
            break;
        }
        for (int64_t i = 0; i < n; i++) {
            if (mbuf[i] > 1) {
                char problem[128];
                snprintf(problem, sizeof problem, "value %u at index %lld is not 0 or 1",
                         mbuf[i], (long long)(at + i));
                st = bad_dset(p, "loss_mask", problem, REWRITE_HINT);
                break;
            }
            s->n_trainable += mbuf[i];
            /* a target is a masked token that is not the first of its document */
            int64_t at_i = at + i;
            bool doc_start = false;
            while (next_doc < s->n_docs && s->doc_offsets[next_doc] <= (uint64_t)at_i) {
                if (s->doc_offsets[next_doc] == (uint64_t)at_i) doc_start = true;
                next_doc++;
            }
            if (!doc_start) s->n_targets += mbuf[i];
        }
    }
    free(buf);
    free(mbuf);
    if (!s->has_mask) {
        s->n_targets = s->n_tokens;
        for (int64_t d = 0; d < s->n_docs; d++)
            if (s->doc_offsets[d + 1] > s->doc_offsets[d]) s->n_targets--;
    }
    return st;
}

lt_status lt_shard_open(lt_shard **out, const char *path, const lt_shard_expect *expect) {
    *out = NULL;
    lt_status st = lt_require_regular(path, LT_ERR_DATA, "shard");
    if (st) return st; /* a FIFO would block HDF5's open, a device be read without end */
    char sha256[65];
    if ((st = lt_shard_check(path, expect, sha256))) return st;
    if ((st = lt_shard_open_hdf5(out, path, expect))) return st;
    memcpy((*out)->sha256, sha256, sizeof sha256);
    return LT_OK;
}

lt_status lt_shard_open_hdf5(lt_shard **out, const char *path, const lt_shard_expect *expect) {
    *out = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
#if H5_VERSION_GE(1, 12, 0)
    htri_t is_h5 = H5Fis_accessible(path, H5P_DEFAULT);
#else
    htri_t is_h5 = H5Fis_hdf5(path);
#endif
    if (is_h5 <= 0) {
        FILE *fp = fopen(path, "rb");
        if (!fp) return lt_error_set(LT_ERR_DATA, "%s: cannot open shard (hint: check the path)",
                                     path);
        fclose(fp);
        return lt_error_set(LT_ERR_DATA, "%s: not an HDF5 file (hint: shards are written by "
                            "`lathe tokenize`)", path);
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return lt_error_set(LT_ERR_DATA, "%s: HDF5 cannot open the file (truncated or corrupt?)",
                            path);
    lt_shard *s = lt_xcalloc(1, sizeof *s);
    s->path = lt_xstrdup(path);
    s->h5_file = f;
    s->h5_tokens = s->h5_mask = -1;
    lt_status st = validate(s, f, expect);
    if (st) {
        lt_shard_close(s);
        return st;
    }
    *out = s;
    return LT_OK;
}

void lt_shard_close(lt_shard *s) {
    if (!s) return;
    if (s->h5_mask >= 0) H5Dclose(s->h5_mask);
    if (s->h5_tokens >= 0) H5Dclose(s->h5_tokens);
    if (s->h5_file >= 0) H5Fclose(s->h5_file);
    free(s->doc_offsets);
    free(s->path);
    free(s);
}

lt_status lt_shard_read(const lt_shard *s, int64_t start, int64_t n, int32_t *ids,
                        uint8_t *mask) {
    LT_ASSERT(start >= 0 && n >= 0 && start + n <= s->n_tokens);
    /* ids < vocab_size < 2^31 were validated, so uint32 -> int32 keeps them intact */
    if (read_range(s->h5_tokens, H5T_NATIVE_UINT32, start, n, ids) < 0)
        return lt_error_set(LT_ERR_IO, "%s: dataset 'tokens': read of [%lld, %lld) failed",
                            s->path, (long long)start, (long long)(start + n));
    if (mask) {
        if (!s->has_mask) {
            memset(mask, 1, (size_t)n);
        } else if (read_range(s->h5_mask, H5T_NATIVE_UINT8, start, n, mask) < 0) {
            return lt_error_set(LT_ERR_IO, "%s: dataset 'loss_mask': read of [%lld, %lld) failed",
                                s->path, (long long)start, (long long)(start + n));
        }
    }
    return LT_OK;
}

lt_status lt_shard_glob(char ***paths, size_t *n_paths, const char *const *patterns,
                        size_t n_patterns) {
    *paths = NULL;
    *n_paths = 0;
    size_t n = 0, cap = 0;
    char **out = NULL;
    for (size_t i = 0; i < n_patterns; i++) {
        glob_t g;
        int rc = glob(patterns[i], 0, NULL, &g);
        if (rc != 0) {
            if (rc != GLOB_NOMATCH) globfree(&g);
            lt_paths_free(out, n);
            return lt_error_set(LT_ERR_DATA, "no shard matches '%s' (hint: run `lathe tokenize` "
                                "first, or check the path / glob)", patterns[i]);
        }
        for (size_t k = 0; k < g.gl_pathc; k++) {
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++) dup = !strcmp(out[j], g.gl_pathv[k]);
            if (dup) continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                out = lt_xrealloc(out, cap * sizeof *out);
            }
            out[n++] = lt_xstrdup(g.gl_pathv[k]);
        }
        globfree(&g);
    }
    *paths = out;
    *n_paths = n;
    return LT_OK;
}

void lt_paths_free(char **paths, size_t n) {
    if (!paths) return;
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
}
