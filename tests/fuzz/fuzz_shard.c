/* libFuzzer: token shards through the reader's validation (lt_shard_open_hdf5, then every token
 * read back). Byte-level damage is not fuzzed here: libhdf5's own parser is not ours to fix, and
 * lt_shard_open keeps it out of the process (checksum sidecar, or a checking child; see
 * shard_check.c and test `data/damaged_shard_*`). What is fuzzed is everything a well-formed HDF5
 * file can say to lathe's validation: the input is a small program that writes a shard —
 * optionally starting from a valid one — with attributes and datasets of any name lathe reads,
 * any HDF5 type (integers of every width and sign, floats, fixed and variable strings), any rank
 * and any values.
 * Input: byte 0 bit 0 = start from a valid shard; then items of 4 header bytes
 * [kind: even = attribute, odd = dataset][name][type][count] and their payload bytes. */
#include "fuzz.h"
#include "data/shard_impl.h"

#include <hdf5.h>

static const char *ATTRS[] = {"format", "version", "vocab_size", "bos_id",
                              "eos_id", "pad_id",  "tokenizer_sha256", "created_by"};
static const char *DSETS[] = {"tokens", "doc_offsets", "loss_mask", "other"};

typedef struct {
    const uint8_t *p;
    size_t n;
} input;

static size_t take(input *in, void *dst, size_t want) {
    size_t k = want < in->n ? want : in->n;
    memcpy(dst, in->p, k);
    memset((uint8_t *)dst + k, 0, want - k);
    in->p += k;
    in->n -= k;
    return k;
}

/* HDF5 file type of selector t (strings: fixed of `len` bytes, or variable). */
static hid_t file_type(int t, size_t len, bool *is_str, bool *is_vlen) {
    *is_str = *is_vlen = false;
    switch (t % 14) { /* H5T_* are run-time ids, not constants */
    case 0: return H5Tcopy(H5T_STD_I8LE);
    case 1: return H5Tcopy(H5T_STD_U8LE);
    case 2: return H5Tcopy(H5T_STD_I16BE);
    case 3: return H5Tcopy(H5T_STD_U16LE);
    case 4: return H5Tcopy(H5T_STD_I32LE);
    case 5: return H5Tcopy(H5T_STD_U32LE);
    case 6: return H5Tcopy(H5T_STD_U32BE);
    case 7: return H5Tcopy(H5T_STD_I64LE);
    case 8: return H5Tcopy(H5T_STD_U64LE);
    case 9: return H5Tcopy(H5T_STD_U64BE);
    case 10: return H5Tcopy(H5T_IEEE_F32LE);
    case 11: return H5Tcopy(H5T_IEEE_F64LE);
    default: break;
    }
    *is_str = true;
    hid_t s = H5Tcopy(H5T_C_S1);
    *is_vlen = t % 14 == 13;
    H5Tset_size(s, *is_vlen ? H5T_VARIABLE : (len ? len : 1));
    H5Tset_cset(s, H5T_CSET_UTF8);
    return s;
}

/* Write one attribute or dataset from the input, replacing one of the same name. */
static void write_item(hid_t f, input *in) {
    uint8_t h[4];
    if (take(in, h, 4) < 4) return;
    bool dset = h[0] & 1;
    int rank = (h[0] >> 1) % 3; /* 0 = scalar */
    const char *name = dset ? DSETS[h[1] % 4] : ATTRS[h[1] % 8];
    size_t count = dset ? (size_t)h[3] * 8 : (size_t)(h[3] % 4) + 1;
    bool is_str, is_vlen;
    size_t slen = h[3] % 80;
    hid_t t = file_type(h[2], slen, &is_str, &is_vlen);
    if (rank == 0) count = 1;
    hsize_t dims[2] = {rank == 2 ? 2 : count, rank == 2 ? (count + 1) / 2 : 1};
    size_t numel = rank == 2 ? (size_t)(dims[0] * dims[1]) : count;
    hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    size_t esz = is_vlen ? sizeof(char *) : H5Tget_size(t);
    uint8_t *buf = calloc(numel ? numel : 1, esz + 1);
    char *strs[8] = {0}, *vl[8];
    if (is_vlen) {
        for (size_t i = 0; i < numel && i < 8; i++) {
            strs[i] = calloc(1, slen + 1);
            take(in, strs[i], slen);
            vl[i] = strs[i];
        }
        for (size_t i = 8; i < numel; i++) vl[i % 8] = strs[i % 8];
    } else {
        take(in, buf, numel * esz);
    }
    const void *src = is_vlen ? (const void *)vl : buf;
    if (!is_vlen || numel <= 8) {
        if (dset) {
            if (H5Lexists(f, name, H5P_DEFAULT) > 0) H5Ldelete(f, name, H5P_DEFAULT);
            hid_t d = H5Dcreate2(f, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (d >= 0) {
                H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, src);
                H5Dclose(d);
            }
        } else {
            if (H5Aexists(f, name) > 0) H5Adelete(f, name);
            hid_t a = H5Acreate2(f, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
            if (a >= 0) {
                H5Awrite(a, t, src);
                H5Aclose(a);
            }
        }
    }
    for (int i = 0; i < 8; i++) free(strs[i]);
    free(buf);
    H5Sclose(space);
    H5Tclose(t);
}

static void write_valid(hid_t f) {
    const int64_t ints[] = {1, 512, 1, 2, 2};
    for (int i = 0; i < 5; i++) {
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, ATTRS[i + 1], H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &ints[i]);
        H5Aclose(a);
        H5Sclose(sp);
    }
    const char *strs[][2] = {{"format", LT_SHARD_FORMAT}, {"tokenizer_sha256", ""},
                             {"created_by", "fuzz"}};
    for (int i = 0; i < 3; i++) {
        hid_t sp = H5Screate(H5S_SCALAR), t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(strs[i][1]) + 1);
        hid_t a = H5Acreate2(f, strs[i][0], t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, strs[i][1]);
        H5Aclose(a);
        H5Tclose(t);
        H5Sclose(sp);
    }
    const uint32_t tok[6] = {1, 5, 9, 2, 1, 7};
    const uint64_t off[3] = {0, 4, 6};
    const uint8_t mask[6] = {0, 1, 1, 1, 0, 1};
    const void *data[3] = {tok, off, mask};
    const hid_t types[3] = {H5T_STD_U32LE, H5T_STD_U64LE, H5T_STD_U8LE};
    const hid_t mem[3] = {H5T_NATIVE_UINT32, H5T_NATIVE_UINT64, H5T_NATIVE_UINT8};
    for (int i = 0; i < 3; i++) {
        hsize_t n = i == 1 ? 3 : 6;
        hid_t sp = H5Screate_simple(1, &n, NULL);
        hid_t d = H5Dcreate2(f, DSETS[i], types[i], sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, mem[i], H5S_ALL, H5S_ALL, H5P_DEFAULT, data[i]);
        H5Dclose(d);
        H5Sclose(sp);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/in.h5", fz_dir());
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) abort();
    if (data[0] & 1) write_valid(f);
    input in = {data + 1, size - 1};
    for (int items = 0; in.n > 0 && items < 16; items++) write_item(f, &in);
    H5Fclose(f);
    lt_shard_expect ex = {.vocab_size = data[0] & 2 ? 512 : 0};
    lt_shard *s;
    if (lt_shard_open_hdf5(&s, path, &ex) != LT_OK) return 0;
    if (s->n_tokens <= (1 << 16)) {
        int32_t *ids = malloc((size_t)(s->n_tokens + 1) * sizeof *ids);
        uint8_t *mask = malloc((size_t)s->n_tokens + 1);
        if (lt_shard_read(s, 0, s->n_tokens, ids, mask) == LT_OK)
            for (int64_t i = 0; i < s->n_tokens; i++)
                if (ids[i] < 0 || ids[i] >= s->meta.vocab_size || mask[i] > 1) __builtin_trap();
        free(ids);
        free(mask);
    }
    lt_shard_close(s);
    return 0;
}
