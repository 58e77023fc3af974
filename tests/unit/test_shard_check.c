/*
 * Shard integrity (src/data/shard_check.c, issue 9 finding 4): `lathe tokenize`'s shards carry a
 * sha256sum-format sidecar that lt_shard_open verifies before HDF5 reads a byte; a changed byte
 * or a malformed sidecar is an LT_ERR_DATA naming the shard; stale sidecars go with stale shards.
 * Shards without a sidecar are opened in a checking child first: the two damaged files in
 * tests/data/shards/ are a lathe shard with bytes mutated by libFuzzer (tools: a raw-bytes
 * harness over lt_shard_open_hdf5 under ASan, seeded with a `lathe tokenize` shard) on which
 * libhdf5 1.10.8 itself misbehaves — attr_name_oob: H5Aexists -> H5O__msg_iterate_real ->
 * H5MM_strdup reads past a heap buffer; cache_alloc_huge: H5C_protect asks malloc for 2^61
 * bytes. In a plain build the child's libhdf5 reads garbage or fails; under ASan (make test
 * SANITIZE=1) the child dies. Either way this process must get an error naming the shard.
 */
#include "../support.h"
#include "data/data.h"

#include <zlib.h>

static char dir[256];
static void setup(void) { ts_tmpdir(dir, sizeof dir, "shard_check"); }
static void teardown(void) { ts_rmtree(dir); }

static void write_shard(const char *name, int n_docs) {
    lt_shard_meta m = {.vocab_size = 1000, .bos_id = 1, .eos_id = 2, .pad_id = 0};
    lt_shard_writer *w;
    cr_assert_eq(lt_shard_writer_open(&w, dir, name, &m, 64, 0), LT_OK, "%s",
                 lt_error_message());
    for (int d = 0; d < n_docs; d++) {
        int32_t ids[40];
        for (int j = 0; j < 40; j++) ids[j] = 3 + (d * 40 + j) % 997;
        cr_assert_eq(lt_shard_writer_add(w, ids, NULL, 40), LT_OK, "%s", lt_error_message());
    }
    cr_assert_eq(lt_shard_writer_close(w, NULL), LT_OK, "%s", lt_error_message());
}

static void expect_data_error(const char *path, const char *needle) {
    lt_shard *s = NULL;
    cr_assert_eq(lt_shard_open(&s, path, NULL), LT_ERR_DATA, "%s must be refused", path);
    cr_assert_null(s);
    const char *msg = lt_error_message();
    cr_assert(strstr(msg, path), "message names the shard: %s", msg);
    if (needle) cr_assert(strstr(msg, needle), "message says '%s': %s", needle, msg);
}

Test(shard_check, sidecar_written_verified_and_removed_with_stale_shards, .init = setup,
     .fini = teardown) {
    write_shard("t", 5); /* 64-token budget, 40-token documents: one document per shard */
    char p[512], side[520];
    snprintf(p, sizeof p, "%s/t-00002.h5", dir);
    snprintf(side, sizeof side, "%s.sha256", p);
    char *text;
    size_t n;
    cr_assert_eq(lt_read_file(side, &text, &n), LT_OK, "%s", lt_error_message());
    char hex[65];
    cr_assert_eq(lt_sha256_file(p, hex), LT_OK);
    char want[128];
    snprintf(want, sizeof want, "%s  t-00002.h5\n", hex);
    cr_assert_str_eq(text, want, "sha256sum format");
    free(text);

    lt_shard *s;
    cr_assert_eq(lt_shard_open(&s, p, NULL), LT_OK, "%s", lt_error_message());
    cr_assert_str_eq(s->sha256, hex);
    cr_assert_eq(s->n_tokens, 40);
    lt_shard_close(s);

    /* a rewrite with fewer shards removes the stale shards and their sidecars */
    write_shard("t", 2);
    cr_assert(ts_exists(p) == false && ts_exists(side) == false, "t-00002 and sidecar removed");
    snprintf(p, sizeof p, "%s/t-00001.h5.sha256", dir);
    cr_assert(ts_exists(p));
}

Test(shard_check, changed_byte_or_bad_sidecar_is_named, .init = setup, .fini = teardown) {
    write_shard("t", 1);
    char p[512], side[520];
    snprintf(p, sizeof p, "%s/t-00000.h5", dir);
    snprintf(side, sizeof side, "%s.sha256", p);
    /* one byte of token data changed (the last bytes of the file are tokens' raw data) */
    FILE *fp = fopen(p, "r+b");
    cr_assert_not_null(fp);
    cr_assert_eq(fseek(fp, -3, SEEK_END), 0);
    int c = fgetc(fp);
    cr_assert_eq(fseek(fp, -3, SEEK_END), 0);
    fputc(c ^ 0x10, fp);
    fclose(fp);
    expect_data_error(p, "SHA-256");
    cr_assert(strstr(lt_error_message(), "damaged"));

    fp = fopen(side, "w");
    fputs("not a checksum\n", fp);
    fclose(fp);
    expect_data_error(p, "64 hex digits");

    /* without its sidecar the shard goes through the checking child: a changed token id is
     * valid HDF5, so the child reports the validation's own message */
    cr_assert_eq(unlink(side), 0);
    lt_shard *s;
    lt_status st = lt_shard_open(&s, p, NULL);
    if (st == LT_OK) lt_shard_close(s); /* the flipped bit may give another in-vocab id */
    else cr_assert(strstr(lt_error_message(), "dataset 'tokens'"), "%s", lt_error_message());
}

/* Decompress tests/data/shards/NAME.gz into dir/NAME. */
static void unpack(const char *name, char *out, size_t cap) {
    char src[512];
    snprintf(src, sizeof src, "tests/data/shards/%s.gz", name);
    snprintf(out, cap, "%s/%s", dir, name);
    gzFile in = gzopen(src, "rb");
    cr_assert_not_null(in, "%s", src);
    FILE *fp = fopen(out, "wb");
    char buf[8192];
    int n;
    while ((n = gzread(in, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, fp);
    gzclose(in);
    fclose(fp);
}

Test(shard_check, libhdf5_misreading_damaged_bytes_is_an_error, .init = setup, .fini = teardown) {
    const char *files[] = {"attr_name_oob.h5", "cache_alloc_huge.h5"};
    for (int i = 0; i < 2; i++) {
        char p[512];
        unpack(files[i], p, sizeof p);
        expect_data_error(p, NULL);
        /* the same file with a sidecar of the undamaged shard's checksum: refused by checksum,
         * before HDF5 opens it */
        char side[520];
        snprintf(side, sizeof side, "%s.sha256", p);
        FILE *fp = fopen(side, "w");
        fprintf(fp, "%064d  %s\n", 0, files[i]);
        fclose(fp);
        expect_data_error(p, "SHA-256");
    }
}

Test(shard_check, loader_refuses_a_damaged_shard_among_good_ones, .init = setup,
     .fini = teardown) {
    write_shard("train", 3);
    char p[512];
    snprintf(p, sizeof p, "%s/train-00001.h5", dir);
    FILE *fp = fopen(p, "r+b");
    cr_assert_eq(fseek(fp, 200, SEEK_SET), 0);
    fputc(0x5a, fp);
    fclose(fp);
    char pat[512];
    snprintf(pat, sizeof pat, "%s/train-*.h5", dir);
    const char *pats[1] = {pat};
    lt_loader *l;
    lt_loader_opts o = {.patterns = pats, .n_patterns = 1, .seq_len = 16, .batch_rows = 1};
    cr_assert_eq(lt_loader_open(&l, &o), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), p), "%s", lt_error_message());
}
