/* Unit tests for src/data: shard round trip and validation, loader packing / padding / shuffle /
 * cursor / eval pass (dataset records: test_records.c). Temporary files live under a mkdtemp
 * directory. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/data.h"

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lathe_test_data_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

static lt_shard_meta test_meta(int64_t vocab) {
    lt_shard_meta m = {.vocab_size = vocab, .bos_id = 1, .eos_id = 2, .pad_id = 0};
    snprintf(m.tokenizer_sha256, sizeof m.tokenizer_sha256, "%064d", 7);
    snprintf(m.created_by, sizeof m.created_by, "test_data");
    return m;
}

/* Write docs (lengths[i] tokens each, token j of doc i = base[i] + j) into DIR/NAME-*.h5. */
static int write_docs(const char *name, int n, const int *lengths, const int *base,
                      const uint8_t *const *masks, int64_t budget, int deflate) {
    lt_shard_meta m = test_meta(1000);
    lt_shard_writer *w;
    cr_assert_eq(lt_shard_writer_open(&w, tmpdir, name, &m, budget, deflate), LT_OK, "%s",
                 lt_error_message());
    for (int i = 0; i < n; i++) {
        int32_t ids[256];
        for (int j = 0; j < lengths[i]; j++) ids[j] = base[i] + j;
        cr_assert_eq(lt_shard_writer_add(w, ids, masks ? masks[i] : NULL, (size_t)lengths[i]),
                     LT_OK, "%s", lt_error_message());
    }
    int n_shards = -1;
    cr_assert_eq(lt_shard_writer_close(w, &n_shards), LT_OK, "%s", lt_error_message());
    return n_shards;
}

static void shard_path(char *buf, size_t cap, const char *name, int i) {
    snprintf(buf, cap, "%s/%s-%05d.h5", tmpdir, name, i);
}

/* ---- writer / reader round trip ------------------------------------------------------------ */

Test(data, shard_round_trip_multiple_shards, .init = make_tmpdir, .fini = remove_tmpdir) {
    int lengths[6] = {5, 7, 3, 10, 4, 6}, base[6] = {100, 200, 300, 400, 500, 600};
    uint8_t m3[10] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1};
    const uint8_t *masks[6] = {NULL, NULL, NULL, m3, NULL, NULL};
    /* budget 12: [5,7] [3] (3+10 > 12) [10] [4,6] */
    int n = write_docs("train", 6, lengths, base, masks, 12, 4);
    cr_assert_eq(n, 4);
    int expect_docs[4] = {2, 1, 1, 2};
    int doc = 0;
    for (int s = 0; s < 4; s++) {
        char p[512];
        shard_path(p, sizeof p, "train", s);
        lt_shard *sh;
        lt_shard_expect ex = {.vocab_size = 1000, .tokenizer_sha256 = test_meta(1).tokenizer_sha256};
        cr_assert_eq(lt_shard_open(&sh, p, &ex), LT_OK, "%s", lt_error_message());
        cr_assert_eq(sh->n_docs, expect_docs[s]);
        cr_assert_eq(sh->meta.vocab_size, 1000);
        cr_assert_eq(sh->meta.bos_id, 1);
        cr_assert_eq(sh->meta.eos_id, 2);
        cr_assert_eq(sh->meta.pad_id, 0);
        cr_assert_str_eq(sh->meta.created_by, "test_data");
        cr_assert_eq(sh->has_mask, s == 2, "shard %d mask", s);
        for (int64_t d = 0; d < sh->n_docs; d++, doc++) {
            int64_t len = (int64_t)(sh->doc_offsets[d + 1] - sh->doc_offsets[d]);
            cr_assert_eq(len, lengths[doc]);
            int32_t ids[16];
            uint8_t mk[16];
            cr_assert_eq(lt_shard_read(sh, (int64_t)sh->doc_offsets[d], len, ids, mk), LT_OK);
            for (int j = 0; j < len; j++) {
                cr_assert_eq(ids[j], base[doc] + j);
                cr_assert_eq(mk[j], masks[doc] ? masks[doc][j] : 1);
            }
        }
        if (s == 2) {
            cr_assert_eq(sh->n_trainable, 7);
            cr_assert_eq(sh->n_targets, 7); /* first token is masked out anyway */
        }
        lt_shard_close(sh);
    }
    cr_assert_eq(doc, 6);
    char p[512];
    shard_path(p, sizeof p, "train", 4);
    cr_assert_neq(access(p, F_OK), 0, "no fifth shard");
}

Test(data, rewrite_removes_stale_shards, .init = make_tmpdir, .fini = remove_tmpdir) {
    int lengths[6] = {5, 7, 3, 10, 4, 6}, base[6] = {100, 200, 300, 400, 500, 600};
    cr_assert_eq(write_docs("t", 6, lengths, base, NULL, 12, 0), 4);
    cr_assert_eq(write_docs("t", 6, lengths, base, NULL, 0, 0), 1);
    char p[512];
    shard_path(p, sizeof p, "t", 0);
    cr_assert_eq(access(p, F_OK), 0);
    for (int i = 1; i < 4; i++) {
        shard_path(p, sizeof p, "t", i);
        cr_assert_neq(access(p, F_OK), 0, "stale %s removed", p);
    }
}

Test(data, writer_rejects_out_of_vocab_ids, .init = make_tmpdir, .fini = remove_tmpdir) {
    lt_shard_meta m = test_meta(10);
    lt_shard_writer *w;
    cr_assert_eq(lt_shard_writer_open(&w, tmpdir, "x", &m, 0, 0), LT_OK);
    int32_t ids[3] = {1, 10, 2};
    cr_assert_eq(lt_shard_writer_add(w, ids, NULL, 3), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), "10"));
    int n = -1;
    cr_assert_eq(lt_shard_writer_close(w, &n), LT_OK);
    cr_assert_eq(n, 0);
}

/* ---- validation failures (each named) ------------------------------------------------------ */

static void make_one(char *p, size_t cap) {
    int lengths[3] = {4, 5, 6}, base[3] = {10, 20, 30};
    uint8_t m1[5] = {0, 1, 1, 1, 1};
    const uint8_t *masks[3] = {NULL, m1, NULL};
    cr_assert_eq(write_docs("v", 3, lengths, base, masks, 0, 0), 1);
    shard_path(p, cap, "v", 0);
    /* the tests edit it on purpose: without its checksum sidecar it is checked as a foreign
     * shard (test_shard_check.c covers the sidecar) */
    char side[520];
    snprintf(side, sizeof side, "%s.sha256", p);
    cr_assert_eq(unlink(side), 0);
}

static hid_t open_rw(const char *p) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    return f;
}

static void replace_dataset(const char *p, const char *name, hid_t type, hsize_t n,
                            const void *data) {
    hid_t f = open_rw(p);
    if (H5Lexists(f, name, H5P_DEFAULT) > 0) H5Ldelete(f, name, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(d, 0);
    cr_assert_geq(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
}

static void set_attr_int(const char *p, const char *name, int64_t v) {
    hid_t f = open_rw(p);
    if (H5Aexists(f, name) > 0) H5Adelete(f, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(f);
}

static void set_attr_str_vlen(const char *p, const char *name, const char *v) {
    hid_t f = open_rw(p);
    if (H5Aexists(f, name) > 0) H5Adelete(f, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &v);
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(sp);
    H5Fclose(f);
}

static void delete_attr(const char *p, const char *name) {
    hid_t f = open_rw(p);
    H5Adelete(f, name);
    H5Fclose(f);
}

/* Open must fail with LT_ERR_DATA and a message naming the file and `what`. */
static void expect_fail(const char *p, const lt_shard_expect *ex, const char *what) {
    lt_shard *sh = NULL;
    lt_status st = lt_shard_open(&sh, p, ex);
    cr_assert_eq(st, LT_ERR_DATA, "expected failure for %s", what);
    cr_assert_null(sh);
    const char *msg = lt_error_message();
    cr_assert(strstr(msg, p), "message names the file: %s", msg);
    cr_assert(strstr(msg, what), "message names %s: %s", what, msg);
    cr_assert(strstr(msg, "hint"), "message has a hint: %s", msg);
}


Test(data, validation_failures_are_named, .init = make_tmpdir, .fini = remove_tmpdir) {
    char p[512];
    make_one(p, sizeof p);
    lt_shard *sh;
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_OK, "%s", lt_error_message());
    cr_assert(sh->has_mask);
    cr_assert_eq(sh->n_tokens, 15);
    cr_assert_eq(sh->n_trainable, 14);
    cr_assert_eq(sh->n_targets, 3 + 4 + 5);
    lt_shard_close(sh);

    /* expectations from the model */
    lt_shard_expect ex = {.vocab_size = 999};
    expect_fail(p, &ex, "vocab_size");
    cr_assert(strstr(lt_error_message(), "999") && strstr(lt_error_message(), "1000"));
    ex = (lt_shard_expect){.tokenizer_sha256 = "abc"};
    expect_fail(p, &ex, "tokenizer_sha256");
    cr_assert(strstr(lt_error_message(), "abc"));

    /* a variable-length string attribute (h5py's default) is accepted */
    set_attr_str_vlen(p, "created_by", "h5py");
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_OK, "%s", lt_error_message());
    cr_assert_str_eq(sh->meta.created_by, "h5py");
    lt_shard_close(sh);

    set_attr_str_vlen(p, "format", "other-tokens");
    expect_fail(p, NULL, "attribute 'format'");
    set_attr_str_vlen(p, "format", "lathe-tokens");
    set_attr_int(p, "version", 2);
    expect_fail(p, NULL, "attribute 'version'");
    set_attr_int(p, "version", 1);
    set_attr_str_vlen(p, "vocab_size", "1000");
    expect_fail(p, NULL, "attribute 'vocab_size'");
    set_attr_int(p, "vocab_size", 1000);
    set_attr_int(p, "pad_id", 5000);
    expect_fail(p, NULL, "attribute 'pad_id'");
    set_attr_int(p, "pad_id", 0);
    delete_attr(p, "tokenizer_sha256");
    expect_fail(p, NULL, "attribute 'tokenizer_sha256'");
    set_attr_str_vlen(p, "tokenizer_sha256", "");
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_OK, "%s", lt_error_message());
    lt_shard_close(sh);

    /* token >= vocab_size */
    uint32_t toks[15];
    for (int i = 0; i < 15; i++) toks[i] = 10 + (uint32_t)i;
    toks[7] = 1000;
    replace_dataset(p, "tokens", H5T_NATIVE_UINT32, 15, toks);
    expect_fail(p, NULL, "dataset 'tokens'");
    cr_assert(strstr(lt_error_message(), "index 7"));
    toks[7] = 17;
    int32_t stoks[15];
    for (int i = 0; i < 15; i++) stoks[i] = (int32_t)toks[i];
    replace_dataset(p, "tokens", H5T_NATIVE_INT32, 15, stoks);
    expect_fail(p, NULL, "dataset 'tokens'");
    cr_assert(strstr(lt_error_message(), "uint32"));
    replace_dataset(p, "tokens", H5T_NATIVE_UINT32, 15, toks);
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_OK, "%s", lt_error_message());
    lt_shard_close(sh);

    /* broken doc_offsets: decreasing, not ending at N, not starting at 0, wrong dtype */
    uint64_t off[4] = {0, 9, 4, 15};
    replace_dataset(p, "doc_offsets", H5T_NATIVE_UINT64, 4, off);
    expect_fail(p, NULL, "dataset 'doc_offsets'");
    cr_assert(strstr(lt_error_message(), "decreases"));
    uint64_t off2[4] = {0, 4, 9, 14};
    replace_dataset(p, "doc_offsets", H5T_NATIVE_UINT64, 4, off2);
    expect_fail(p, NULL, "dataset 'doc_offsets'");
    uint64_t off3[4] = {1, 4, 9, 15};
    replace_dataset(p, "doc_offsets", H5T_NATIVE_UINT64, 4, off3);
    expect_fail(p, NULL, "dataset 'doc_offsets'");
    int64_t off4[4] = {0, 4, 9, 15};
    replace_dataset(p, "doc_offsets", H5T_NATIVE_INT64, 4, off4);
    expect_fail(p, NULL, "dataset 'doc_offsets'");
    uint64_t off5[4] = {0, 4, 9, 15};
    replace_dataset(p, "doc_offsets", H5T_NATIVE_UINT64, 4, off5);

    /* loss_mask: wrong length, bad value */
    uint8_t mk[15];
    memset(mk, 1, sizeof mk);
    replace_dataset(p, "loss_mask", H5T_NATIVE_UINT8, 14, mk);
    expect_fail(p, NULL, "dataset 'loss_mask'");
    mk[3] = 2;
    replace_dataset(p, "loss_mask", H5T_NATIVE_UINT8, 15, mk);
    expect_fail(p, NULL, "dataset 'loss_mask'");
    mk[3] = 1;
    replace_dataset(p, "loss_mask", H5T_NATIVE_UINT8, 15, mk);
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_OK, "%s", lt_error_message());
    lt_shard_close(sh);

    /* missing dataset */
    hid_t f = open_rw(p);
    H5Ldelete(f, "doc_offsets", H5P_DEFAULT);
    H5Fclose(f);
    expect_fail(p, NULL, "dataset 'doc_offsets'");
    cr_assert(strstr(lt_error_message(), "missing"));
}

Test(data, open_rejects_non_hdf5_and_missing_glob, .init = make_tmpdir, .fini = remove_tmpdir) {
    char p[512];
    snprintf(p, sizeof p, "%s/junk.h5", tmpdir);
    FILE *fp = fopen(p, "w");
    fputs("not hdf5 at all\n", fp);
    fclose(fp);
    lt_shard *sh;
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), p));

    char pat[512];
    snprintf(pat, sizeof pat, "%s/nothing-*.h5", tmpdir);
    const char *pats[1] = {pat};
    char **paths;
    size_t n;
    cr_assert_eq(lt_shard_glob(&paths, &n, pats, 1), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), pat));
    lt_loader *l;
    lt_loader_opts o = {.patterns = pats, .n_patterns = 1, .seq_len = 4, .batch_rows = 1};
    cr_assert_eq(lt_loader_open(&l, &o), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), pat));
}

/* ---- loader -------------------------------------------------------------------------------- */

static lt_loader *open_loader(const char *name, int T, int B, bool shuffle, bool pack,
                              uint64_t seed) {
    char pat[512];
    snprintf(pat, sizeof pat, "%s/%s-*.h5", tmpdir, name);
    const char *pats[1] = {pat};
    lt_loader_opts o = {.patterns = pats, .n_patterns = 1, .seq_len = T, .batch_rows = B,
                        .shuffle = shuffle, .pack = pack, .seed = seed,
                        .expect = {.vocab_size = 1000}};
    lt_loader *l;
    cr_assert_eq(lt_loader_open(&l, &o), LT_OK, "%s", lt_error_message());
    return l;
}

static void expect_row(const lt_batch *b, int row, const int *tok, const int *tgt, const int *pos,
                       const int *doc) {
    for (int t = 0; t < b->T; t++) {
        size_t i = (size_t)row * b->T + t;
        cr_assert_eq(b->tokens[i], tok[t], "row %d t %d token %d != %d", row, t, b->tokens[i],
                     tok[t]);
        cr_assert_eq(b->targets[i], tgt[t], "row %d t %d target %d != %d", row, t,
                     b->targets[i], tgt[t]);
        cr_assert_eq(b->pos[i], pos[t], "row %d t %d pos", row, t);
        cr_assert_eq(b->doc[i], doc[t], "row %d t %d doc", row, t);
    }
}

Test(data, packing_splits_and_masks, .init = make_tmpdir, .fini = remove_tmpdir) {
    int lengths[3] = {3, 12, 2}, base[3] = {10, 20, 40};
    uint8_t m1[12] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1}; /* prompt 20..22 not trained */
    const uint8_t *masks[3] = {NULL, m1, NULL};
    write_docs("p", 3, lengths, base, masks, 0, 0);
    lt_loader *l = open_loader("p", 8, 2, false, true, 0);
    lt_loader_totals tot;
    lt_loader_totals_get(l, &tot);
    cr_assert_eq(tot.n_docs, 3);
    cr_assert_eq(tot.n_tokens, 17);
    cr_assert_eq(tot.n_trainable, 3 + 9 + 2);
    cr_assert_eq(tot.n_targets, 2 + 9 + 1);
    cr_assert_eq(tot.rows_per_epoch, 2);
    cr_assert_eq(tot.batches_per_epoch, 1);
    lt_batch b;
    lt_batch_init(&b, 2, 8);
    bool end = false;
    cr_assert_eq(lt_loader_next(l, &b, &end), LT_OK);
    cr_assert(end);
    /* row 0: doc0 whole, then doc1's first 5 inputs (target of the last is token 25) */
    int tok0[8] = {10, 11, 12, 20, 21, 22, 23, 24};
    int tgt0[8] = {11, 12, -1, -1, -1, 23, 24, 25};
    int pos0[8] = {0, 1, 2, 0, 1, 2, 3, 4};
    int doc0[8] = {0, 0, 0, 1, 1, 1, 1, 1};
    expect_row(&b, 0, tok0, tgt0, pos0, doc0);
    /* row 1: doc1 continues at 25 (positions restart), then doc2 whose last token is a target */
    int tok1[8] = {25, 26, 27, 28, 29, 30, 31, 40};
    int tgt1[8] = {26, 27, 28, 29, 30, 31, -1, 41};
    int pos1[8] = {0, 1, 2, 3, 4, 5, 6, 0};
    int doc1[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    expect_row(&b, 1, tok1, tgt1, pos1, doc1);
    cr_assert_eq(b.n_target_tokens, tot.n_targets);
    cr_assert_eq(b.n_rows_used, 2);
    lt_loader_state s = lt_loader_get_state(l);
    cr_assert_eq(s.epoch, 1);
    cr_assert_eq(s.doc_index, 0);
    /* the next epoch is the same (no shuffle) */
    cr_assert_eq(lt_loader_next(l, &b, &end), LT_OK);
    expect_row(&b, 0, tok0, tgt0, pos0, doc0);
    lt_batch_free(&b);
    lt_loader_free(l);
}

Test(data, no_packing_pads_rows, .init = make_tmpdir, .fini = remove_tmpdir) {
    int lengths[3] = {3, 12, 2}, base[3] = {10, 20, 40};
    write_docs("np", 3, lengths, base, NULL, 0, 0);
    lt_loader *l = open_loader("np", 8, 3, false, false, 0);
    lt_loader_totals tot;
    lt_loader_totals_get(l, &tot);
    cr_assert_eq(tot.rows_per_epoch, 4);
    cr_assert_eq(tot.batches_per_epoch, 2);
    lt_batch b;
    lt_batch_init(&b, 3, 8);
    bool end = true;
    cr_assert_eq(lt_loader_next(l, &b, &end), LT_OK);
    cr_assert(!end);
    int tok0[8] = {10, 11, 12, 0, 0, 0, 0, 0};
    int tgt0[8] = {11, 12, -1, -1, -1, -1, -1, -1};
    int pos0[8] = {0, 1, 2, 0, 0, 0, 0, 0};
    int doc0[8] = {0, 0, 0, 1, 1, 1, 1, 1};
    expect_row(&b, 0, tok0, tgt0, pos0, doc0);
    int tok1[8] = {20, 21, 22, 23, 24, 25, 26, 27};
    int tgt1[8] = {21, 22, 23, 24, 25, 26, 27, 28};
    int pos1[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int doc1[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    expect_row(&b, 1, tok1, tgt1, pos1, doc1);
    int tok2[8] = {28, 29, 30, 31, 0, 0, 0, 0};
    int tgt2[8] = {29, 30, 31, -1, -1, -1, -1, -1};
    int pos2[8] = {0, 1, 2, 3, 0, 0, 0, 0};
    int doc2[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    expect_row(&b, 2, tok2, tgt2, pos2, doc2);
    cr_assert_eq(b.n_target_tokens, 2 + 8 + 3);
    cr_assert_eq(lt_loader_next(l, &b, &end), LT_OK);
    cr_assert(end);
    int tok3[8] = {40, 41, 0, 0, 0, 0, 0, 0};
    int tgt3[8] = {41, -1, -1, -1, -1, -1, -1, -1};
    int pos3[8] = {0, 1, 0, 0, 0, 0, 0, 0};
    int doc3[8] = {0, 0, 1, 1, 1, 1, 1, 1};
    expect_row(&b, 0, tok3, tgt3, pos3, doc3);
    /* rows after the end of the epoch are padding only */
    int padt[8] = {0, 0, 0, 0, 0, 0, 0, 0}, padg[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    expect_row(&b, 1, padt, padg, padt, padt);
    expect_row(&b, 2, padt, padg, padt, padt);
    cr_assert_eq(b.n_target_tokens, 1);
    cr_assert_eq(b.n_rows_used, 1);
    lt_batch_free(&b);
    lt_loader_free(l);
}

/* 50 two-token documents spread over shards; returns the order of documents one epoch visits. */
static void epoch_order(lt_loader *l, int *order, int n) {
    lt_batch b;
    lt_batch_init(&b, 1, 2);
    bool end = false;
    for (int i = 0; i < n; i++) {
        cr_assert_eq(lt_loader_next(l, &b, &end), LT_OK);
        order[i] = (b.tokens[0] - 100) / 2;
        cr_assert_eq(end, i == n - 1);
    }
    lt_batch_free(&b);
}

static void write_fifty(void) {
    int lengths[50], base[50];
    for (int i = 0; i < 50; i++) lengths[i] = 2, base[i] = 100 + 2 * i;
    cr_assert_eq(write_docs("s", 50, lengths, base, NULL, 30, 0), 4);
}

Test(data, shuffle_is_deterministic_by_seed, .init = make_tmpdir, .fini = remove_tmpdir) {
    write_fifty();
    int a[50], b2[50], c[50], a_ep1[50];
    lt_loader *l = open_loader("s", 2, 1, true, false, 1234);
    epoch_order(l, a, 50);
    epoch_order(l, a_ep1, 50);
    lt_loader_free(l);
    l = open_loader("s", 2, 1, true, false, 1234);
    epoch_order(l, b2, 50);
    lt_loader_free(l);
    l = open_loader("s", 2, 1, true, false, 99);
    epoch_order(l, c, 50);
    lt_loader_free(l);
    cr_assert_arr_eq(a, b2, sizeof a, "same seed, same order");
    cr_assert(memcmp(a, c, sizeof a) != 0, "different seed, different order");
    cr_assert(memcmp(a, a_ep1, sizeof a) != 0, "each epoch reshuffles");
    int seen[50] = {0};
    for (int i = 0; i < 50; i++) seen[a[i]]++;
    for (int i = 0; i < 50; i++) cr_assert_eq(seen[i], 1, "doc %d once per epoch", i);
    bool identity = true;
    for (int i = 0; i < 50; i++) identity &= a[i] == i;
    cr_assert(!identity);
    /* no shuffle: file order across shards */
    l = open_loader("s", 2, 1, false, false, 1234);
    epoch_order(l, c, 50);
    lt_loader_free(l);
    for (int i = 0; i < 50; i++) cr_assert_eq(c[i], i);
}

static void write_varied(void) {
    int lengths[40], base[40];
    for (int i = 0; i < 40; i++) lengths[i] = 1 + (i * 37) % 45, base[i] = 10 * i;
    write_docs("r", 40, lengths, base, NULL, 100, 1);
}

static bool batch_eq(const lt_batch *a, const lt_batch *b) {
    size_t n = (size_t)a->B * a->T * sizeof(int32_t);
    return !memcmp(a->tokens, b->tokens, n) && !memcmp(a->targets, b->targets, n) &&
           !memcmp(a->pos, b->pos, n) && !memcmp(a->doc, b->doc, n) &&
           a->n_target_tokens == b->n_target_tokens;
}

Test(data, cursor_save_restore_continues_identically, .init = make_tmpdir,
     .fini = remove_tmpdir) {
    write_varied();
    for (int pack = 0; pack < 2; pack++) {
        lt_loader *a = open_loader("r", 16, 3, true, pack, 7);
        lt_batch ba, bb;
        lt_batch_init(&ba, 3, 16);
        lt_batch_init(&bb, 3, 16);
        bool end;
        for (int i = 0; i < 17; i++) cr_assert_eq(lt_loader_next(a, &ba, &end), LT_OK);
        lt_loader_state s = lt_loader_get_state(a);
        lt_loader *b = open_loader("r", 16, 3, true, pack, 7);
        cr_assert_eq(lt_loader_set_state(b, &s), LT_OK, "%s", lt_error_message());
        int64_t epochs_seen = 0;
        for (int i = 0; i < 60; i++) { /* crosses several epoch boundaries */
            bool ea, eb;
            cr_assert_eq(lt_loader_next(a, &ba, &ea), LT_OK);
            cr_assert_eq(lt_loader_next(b, &bb, &eb), LT_OK);
            cr_assert(batch_eq(&ba, &bb), "pack %d batch %d differs after restore", pack, i);
            cr_assert_eq(ea, eb);
            epochs_seen += ea;
        }
        cr_assert_geq(epochs_seen, 2);
        /* a cursor from another seed is refused */
        lt_loader *c = open_loader("r", 16, 3, true, pack, 8);
        cr_assert_eq(lt_loader_set_state(c, &s), LT_ERR_DATA);
        lt_loader_free(c);
        lt_batch_free(&ba);
        lt_batch_free(&bb);
        lt_loader_free(a);
        lt_loader_free(b);
    }
}

/* lt_loader_skip (data parallelism: a rank passes over the other ranks' micro-batches) moves
 * the cursor exactly as lt_loader_next does, epoch ends included: a loader that skips every
 * second batch reads the same batches as one that reads them all. */
Test(data, skip_advances_like_next, .init = make_tmpdir, .fini = remove_tmpdir) {
    write_varied();
    for (int pack = 0; pack < 2; pack++) {
        lt_loader *a = open_loader("r", 16, 3, true, pack, 7);
        lt_loader *b = open_loader("r", 16, 3, true, pack, 7);
        lt_batch ba, bb;
        lt_batch_init(&ba, 3, 16);
        lt_batch_init(&bb, 3, 16);
        int64_t epochs_seen = 0;
        for (int i = 0; i < 120; i++) { /* crosses several epoch boundaries */
            bool ea, eb;
            cr_assert_eq(lt_loader_next(a, &ba, &ea), LT_OK);
            if (i % 2) lt_loader_skip(b, &eb);
            else cr_assert_eq(lt_loader_next(b, &bb, &eb), LT_OK);
            cr_assert_eq(ea, eb, "pack %d batch %d: epoch end differs", pack, i);
            if (i % 2 == 0) cr_assert(batch_eq(&ba, &bb), "pack %d batch %d differs", pack, i);
            lt_loader_state sa = lt_loader_get_state(a), sb = lt_loader_get_state(b);
            cr_assert(sa.epoch == sb.epoch && sa.doc_index == sb.doc_index &&
                      sa.doc_offset == sb.doc_offset, "pack %d batch %d: cursors differ", pack, i);
            epochs_seen += ea;
        }
        cr_assert_geq(epochs_seen, 2);
        lt_batch_free(&ba);
        lt_batch_free(&bb);
        lt_loader_free(a);
        lt_loader_free(b);
    }
}

Test(data, eval_pass_is_fixed_order_single_pass, .init = make_tmpdir, .fini = remove_tmpdir) {
    write_varied();
    for (int pack = 0; pack < 2; pack++) {
        lt_loader *l = open_loader("r", 16, 3, false, pack, 0);
        lt_loader_totals tot;
        lt_loader_totals_get(l, &tot);
        lt_batch b;
        lt_batch_init(&b, 3, 16);
        for (int pass = 0; pass < 2; pass++) {
            lt_loader_rewind(l);
            int64_t batches = 0, targets = 0, first_tok = -1;
            bool end = false;
            while (!end) {
                cr_assert_eq(lt_loader_next(l, &b, &end), LT_OK);
                if (batches == 0) first_tok = b.tokens[0];
                batches++;
                targets += b.n_target_tokens;
                cr_assert_leq(batches, tot.batches_per_epoch);
            }
            cr_assert_eq(batches, tot.batches_per_epoch, "pack %d", pack);
            cr_assert_eq(targets, tot.n_targets, "every target exactly once");
            cr_assert_eq(first_tok, 0, "fixed order starts at the first document");
        }
        lt_batch_free(&b);
        lt_loader_free(l);
    }
}

Test(data, packed_rows_are_full_except_the_last, .init = make_tmpdir, .fini = remove_tmpdir) {
    write_varied();
    lt_loader *l = open_loader("r", 16, 1, true, true, 3);
    lt_loader_totals tot;
    lt_loader_totals_get(l, &tot);
    lt_batch b;
    lt_batch_init(&b, 1, 16);
    bool end = false;
    int64_t rows = 0, tokens = 0;
    while (!end) {
        cr_assert_eq(lt_loader_next(l, &b, &end), LT_OK);
        rows++;
        for (int t = 1; t < 16 && !end; t++) { /* pieces back to back, no padding */
            if (b.doc[t] == b.doc[t - 1])
                cr_assert_eq(b.pos[t], b.pos[t - 1] + 1, "row %lld t %d", (long long)rows, t);
            else
                cr_assert(b.doc[t] == b.doc[t - 1] + 1 && b.pos[t] == 0);
        }
        for (int t = 0; t < 16; t++) {
            /* targets are the next input of the same piece, except at the piece's end */
            if (t + 1 < 16 && b.doc[t + 1] == b.doc[t] && b.pos[t + 1] == b.pos[t] + 1)
                cr_assert_eq(b.targets[t], b.tokens[t + 1]);
        }
        tokens += b.n_target_tokens;
    }
    cr_assert_eq(rows, tot.rows_per_epoch);
    cr_assert_eq(tokens, tot.n_targets);
    lt_batch_free(&b);
    lt_loader_free(l);
}

/* ---- weighted mixtures (data.train entries with weight:) ---------------------------------- */

/* Dataset "big": 400 two-token documents (ids 100 + 2i); "small": 20 (ids 950 + 2i). Weights
 * 1 : 3 draw a quarter of each epoch's 420 documents from big and three quarters from small,
 * which therefore repeats (each pass over it a new shuffle) while big is subsampled. */
static lt_loader *open_mix(const double *w, uint64_t seed) {
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/big-*.h5", tmpdir);
    snprintf(pb, sizeof pb, "%s/small-*.h5", tmpdir);
    const char *pats[2] = {pa, pb};
    lt_loader_opts o = {.patterns = pats, .n_patterns = 2, .weights = w, .seq_len = 2,
                        .batch_rows = 1, .shuffle = true, .pack = false, .seed = seed,
                        .expect = {.vocab_size = 1000}};
    lt_loader *l;
    cr_assert_eq(lt_loader_open(&l, &o), LT_OK, "%s", lt_error_message());
    return l;
}

static void mix_epoch(lt_loader *l, int *tokens, int n) {
    lt_batch b;
    lt_batch_init(&b, 1, 2);
    bool end = false;
    for (int i = 0; i < n; i++) {
        cr_assert_eq(lt_loader_next(l, &b, &end), LT_OK);
        tokens[i] = b.tokens[0];
        cr_assert_eq(end, i == n - 1, "an epoch is as many documents as all datasets hold");
    }
    lt_batch_free(&b);
}

Test(data, weighted_mixture_draws_in_proportion, .init = make_tmpdir, .fini = remove_tmpdir) {
    int len[400], base[400];
    for (int i = 0; i < 400; i++) len[i] = 2, base[i] = 100 + 2 * i;
    write_docs("big", 400, len, base, NULL, 300, 0);
    for (int i = 0; i < 20; i++) base[i] = 950 + 2 * i;
    write_docs("small", 20, len, base, NULL, 300, 0);
    const double w[2] = {1, 3};
    int a[420], b[420], c[420];
    lt_loader *l = open_mix(w, 7);
    mix_epoch(l, a, 420);
    lt_loader_state st = lt_loader_get_state(l);
    mix_epoch(l, b, 420);
    lt_loader_free(l);
    int from_small = 0, small_seen[20] = {0}, big_seen[400] = {0};
    for (int i = 0; i < 420; i++) {
        if (a[i] >= 950) from_small++, small_seen[(a[i] - 950) / 2]++;
        else big_seen[(a[i] - 100) / 2]++;
    }
    /* 420 draws with p = 3/4: mean 315, sd 8.9; +-45 is five sd */
    cr_assert(from_small > 270 && from_small < 360, "%d of 420 from the 3-weight dataset",
              from_small);
    /* a pass over small is a permutation: after 15 passes every document is seen 15 or 16 times
     * (the pass in progress has seen some once more) */
    for (int i = 0; i < 20; i++)
        cr_assert(abs(small_seen[i] - from_small / 20) <= 1, "small doc %d seen %d times", i,
                  small_seen[i]);
    for (int i = 0; i < 400; i++) cr_assert_leq(big_seen[i], 1, "big is subsampled: no repeats");
    cr_assert(memcmp(a, b, sizeof a) != 0, "each epoch draws anew");
    /* deterministic by seed, and the cursor restores the epoch's draws */
    l = open_mix(w, 7);
    mix_epoch(l, c, 420);
    cr_assert_arr_eq(a, c, sizeof a, "same seed, same mixture");
    lt_loader_free(l);
    l = open_mix(w, 7);
    cr_assert_eq(lt_loader_set_state(l, &st), LT_OK, "%s", lt_error_message());
    mix_epoch(l, c, 420);
    cr_assert_arr_eq(b, c, sizeof b, "restored cursor, same second epoch");
    lt_loader_free(l);
    l = open_mix(w, 8);
    mix_epoch(l, c, 420);
    cr_assert(memcmp(a, c, sizeof a) != 0, "another seed, another mixture");
    lt_loader_free(l);
    /* bad weights and an entry without documents are errors naming the entry */
    const double bad[2] = {1, 0};
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/big-*.h5", tmpdir);
    snprintf(pb, sizeof pb, "%s/big-00000.h5", tmpdir);
    const char *pats[2] = {pa, pb};
    lt_loader_opts o = {.patterns = pats, .n_patterns = 2, .weights = bad, .seq_len = 2,
                        .batch_rows = 1, .shuffle = true, .expect = {.vocab_size = 1000}};
    cr_assert_eq(lt_loader_open(&l, &o), LT_ERR_USAGE);
    cr_assert(strstr(lt_error_message(), "weight 0"), "%s", lt_error_message());
    o.weights = w;
    cr_assert_eq(lt_loader_open(&l, &o), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), "matched by two weighted data entries"), "%s",
              lt_error_message());
}
