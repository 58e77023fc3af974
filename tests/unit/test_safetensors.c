/* safetensors reader/writer: round trip and hand-crafted bad files (huggingface/safetensors
 * README format). Files go to a per-test temp dir. */
#include <criterion/criterion.h>

#include "io/io.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];
static void mk_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lathe-test-st-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}
static void rm_tmpdir(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (tmpdir[0]) cr_assert_eq(system(cmd), 0);
}

/* A file with header length `hlen` (as claimed), the JSON text, and `data` zero bytes. */
static void write_st(const char *path, uint64_t hlen, const char *json, size_t data) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(&hlen, 8, 1, f), 1);
    fputs(json, f);
    for (size_t i = 0; i < data; i++) fputc(0, f);
    fclose(f);
}

static void expect_bad(const char *path, const char *json, size_t data, const char *n1,
                       const char *n2) {
    write_st(path, strlen(json), json, data);
    lt_safetensors *st = (lt_safetensors *)0x1;
    lt_status rc = lt_safetensors_open(&st, path);
    const char *m = lt_error_message();
    cr_assert_eq(rc, LT_ERR_MODEL, "%s: status %d (%s)", json, rc, m);
    cr_assert_null(st);
    cr_assert(strstr(m, path), "message lacks the path: %s", m);
    if (n1) cr_assert(strstr(m, n1), "message lacks '%s': %s", n1, m);
    if (n2) cr_assert(strstr(m, n2), "message lacks '%s': %s", n2, m);
}

Test(safetensors, round_trip, .init = mk_tmpdir, .fini = rm_tmpdir) {
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", tmpdir);
    float a[6] = {1, -2, 3.5f, 0, 1e-30f, -7};
    uint16_t h[4], b[4];
    for (int i = 0; i < 4; i++) {
        h[i] = lt_f32_to_f16(0.5f * (float)i - 1.0f);
        b[i] = lt_f32_to_bf16(100.0f * (float)i + 0.25f);
    }
    int32_t ids[3] = {-1, 0, 123456};
    uint8_t u[5] = {0, 1, 2, 254, 255};
    float scalar = 42.0f;
    lt_st_writer *w = lt_st_writer_new();
    lt_st_writer_add(w, "model.layers.0.self_attn.q_proj.weight", LT_F32, 2, (int64_t[]){2, 3}, a);
    lt_st_writer_add(w, "half", LT_F16, 1, (int64_t[]){4}, h);
    lt_st_writer_add(w, "brain", LT_BF16, 2, (int64_t[]){2, 2}, b);
    lt_st_writer_add(w, "ids", LT_I32, 1, (int64_t[]){3}, ids);
    lt_st_writer_add(w, "bytes", LT_U8, 1, (int64_t[]){5}, u);
    lt_st_writer_add(w, "empty", LT_F32, 2, (int64_t[]){0, 3}, NULL);
    lt_st_writer_add(w, "scalar", LT_F32, 0, NULL, &scalar);
    lt_st_writer_meta(w, "format", "pt");
    lt_st_writer_meta(w, "note", "first");
    lt_st_writer_meta(w, "note", "quote \" and ünïcode");
    cr_assert_eq(lt_st_writer_write(w, path), LT_OK, "%s", lt_error_message());
    lt_st_writer_free(w);

    /* raw layout: 8-byte length, a multiple of 8, padded with spaces, metadata first */
    FILE *f = fopen(path, "rb");
    uint64_t hl;
    cr_assert_eq(fread(&hl, 8, 1, f), 1);
    cr_expect_eq(hl % 8, 0, "header length %llu", (unsigned long long)hl);
    char *hdr = calloc(1, hl + 1);
    cr_assert_eq(fread(hdr, 1, hl, f), hl);
    fclose(f);
    cr_expect_eq(strncmp(hdr, "{\"__metadata__\"", 15), 0, "%s", hdr);
    size_t tl = strlen(hdr);
    while (tl > 0 && hdr[tl - 1] == ' ') tl--;
    cr_expect_eq(hdr[tl - 1], '}', "header ends in '}' then spaces: %s", hdr);
    free(hdr);

    lt_safetensors *st = NULL;
    cr_assert_eq(lt_safetensors_open(&st, path), LT_OK, "%s", lt_error_message());
    cr_assert_eq(st->n_tensors, 7);
    cr_expect_str_eq(st->tensors[0].name, "model.layers.0.self_attn.q_proj.weight",
                     "insertion order is kept");
    cr_expect_str_eq(st->tensors[6].name, "scalar");
    cr_assert_eq(st->n_meta, 2);
    cr_expect_str_eq(lt_safetensors_meta(st, "format"), "pt");
    cr_expect_str_eq(lt_safetensors_meta(st, "note"), "quote \" and ünïcode");
    cr_expect_null(lt_safetensors_meta(st, "absent"));

    const lt_st_tensor *t = lt_safetensors_find(st, "model.layers.0.self_attn.q_proj.weight");
    cr_assert(t && t->dtype == LT_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    cr_expect_eq(memcmp(t->data, a, sizeof a), 0);
    cr_expect_eq((uintptr_t)t->data % 8, 0, "data section starts 8-aligned");
    float y[6];
    t = lt_safetensors_find(st, "half");
    cr_assert(t && t->dtype == LT_F16 && t->nbytes == 8);
    lt_st_tensor_to_f32(t, y);
    for (int i = 0; i < 4; i++) cr_expect_eq(y[i], 0.5f * (float)i - 1.0f);
    t = lt_safetensors_find(st, "brain");
    cr_assert(t && t->dtype == LT_BF16 && t->ndim == 2);
    cr_expect_eq(memcmp(t->data, b, sizeof b), 0);
    lt_st_tensor_to_f32(t, y);
    for (int i = 0; i < 4; i++) cr_expect_eq(y[i], lt_bf16_to_f32(b[i]));
    t = lt_safetensors_find(st, "ids");
    cr_assert(t && t->dtype == LT_I32);
    lt_st_tensor_to_f32(t, y);
    cr_expect(y[0] == -1.0f && y[2] == 123456.0f);
    t = lt_safetensors_find(st, "bytes");
    cr_assert(t && t->dtype == LT_U8 && t->nbytes == 5);
    cr_expect_eq(memcmp(t->data, u, 5), 0);
    t = lt_safetensors_find(st, "empty");
    cr_assert(t && t->nbytes == 0 && t->shape[0] == 0 && t->shape[1] == 3);
    t = lt_safetensors_find(st, "scalar");
    cr_assert(t && t->ndim == 0 && t->nbytes == 4);
    float sv; /* packed after the 5 U8 bytes: unaligned, so read through memcpy */
    memcpy(&sv, t->data, 4);
    cr_expect_eq(sv, 42.0f);
    cr_expect_null(lt_safetensors_find(st, "__metadata__"));
    lt_safetensors_close(st);
}

Test(safetensors, writer_no_metadata_and_duplicates, .init = mk_tmpdir, .fini = rm_tmpdir) {
    char path[512];
    snprintf(path, sizeof path, "%s/plain.safetensors", tmpdir);
    float a[2] = {1, 2};
    lt_st_writer *w = lt_st_writer_new();
    lt_st_writer_add(w, "a", LT_F32, 1, (int64_t[]){2}, a);
    cr_assert_eq(lt_st_writer_write(w, path), LT_OK);
    lt_safetensors *st = NULL;
    cr_assert_eq(lt_safetensors_open(&st, path), LT_OK, "%s", lt_error_message());
    cr_expect_eq(st->n_meta, 0);
    cr_expect_eq(st->n_tensors, 1);
    lt_safetensors_close(st);

    char path2[512];
    snprintf(path2, sizeof path2, "%s/dup.safetensors", tmpdir);
    lt_st_writer_add(w, "a", LT_F32, 1, (int64_t[]){2}, a);
    cr_expect_eq(lt_st_writer_write(w, path2), LT_ERR_RUNTIME);
    cr_expect(strstr(lt_error_message(), "'a'"), "%s", lt_error_message());
    struct stat sb;
    cr_expect_neq(stat(path2, &sb), 0, "nothing is written on error");
    lt_st_writer_free(w);
}

Test(safetensors, missing_file) {
    lt_safetensors *st = NULL;
    cr_expect_eq(lt_safetensors_open(&st, "/nonexistent/x.safetensors"), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "/nonexistent/x.safetensors"));
    cr_expect_null(st);
}

Test(safetensors, bad_files, .init = mk_tmpdir, .fini = rm_tmpdir) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);
    lt_safetensors *st = (lt_safetensors *)0x1;

    FILE *f = fopen(path, "wb"); /* shorter than the length field */
    fputs("abc", f);
    fclose(f);
    cr_expect_eq(lt_safetensors_open(&st, path), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), path) && strstr(lt_error_message(), "truncated"));

    write_st(path, 1000, "{}", 0); /* header length past the end of the file */
    cr_expect_eq(lt_safetensors_open(&st, path), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), path) && strstr(lt_error_message(), "past the end"),
              "%s", lt_error_message());

    write_st(path, 200000000ull, "{}", 0); /* header claims 200 MB */
    cr_expect_eq(lt_safetensors_open(&st, path), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), path) && strstr(lt_error_message(), "limit"),
              "%s", lt_error_message());
    write_st(path, UINT64_MAX, "{}", 0);
    cr_expect_eq(lt_safetensors_open(&st, path), LT_ERR_MODEL);

    expect_bad(path, "{\"a\": {\"dtype\": \"F32\", shape: [2]}", 8, "not valid JSON", NULL);
    expect_bad(path, "[1, 2]", 0, "not a JSON object", NULL);
    expect_bad(path, "{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
               "'a'", "past the end");
    expect_bad(path, "{\"a\": {\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16,
               "'a'", "need 12");
    expect_bad(path, "{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     " \"b\": {\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[4,12]}}", 12,
               "'a' and 'b'", "overlap");
    expect_bad(path, "{\"b\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                     " \"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12,
               "overlap", "'b'");
    expect_bad(path, "{\"w\": {\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
               "'w'", "unsupported dtype 'F64'");
    expect_bad(path, "{\"w\": {\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 8,
               "'w'", "shape[0]");
    expect_bad(path, "{\"w\": {\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}",
               8, "'w'", "5 dimensions");
    expect_bad(path, "{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 8,
               "'w'", "data_offsets");
    expect_bad(path, "{\"w\": {\"dtype\":\"F32\",\"shape\":[1]}}", 8, "'w'", "data_offsets");
    expect_bad(path, "{\"w\": 3}", 0, "'w'", "not a JSON object");
    expect_bad(path, "{\"__metadata__\": {\"k\": 1}}", 0, "'k'", "not a string");
    expect_bad(path, "{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     " \"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
               "duplicate", NULL);
    expect_bad(path, "{\"w\": {\"dtype\":\"F32\",\"shape\":[4611686018427387904, 4],"
                     "\"data_offsets\":[0,4]}}", 8, "'w'", NULL);

    /* sanity: the same crafting with consistent values opens */
    const char *ok = "{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     " \"b\": {\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]}}   ";
    write_st(path, strlen(ok), ok, 12);
    cr_assert_eq(lt_safetensors_open(&st, path), LT_OK, "%s", lt_error_message());
    cr_expect_eq(st->n_tensors, 2);
    lt_safetensors_close(st);
}
