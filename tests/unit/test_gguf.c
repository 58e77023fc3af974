/* GGUF reader/writer and Q/K permutation tests.
 * Fixtures: $LATHE_FIXTURES/stories260K/stories260K.gguf (default ../shared/fixtures), and the
 * optional SmolLM2-135M-Instruct Q4_1 GGUF ($LATHE_SMOLLM2_GGUF, default
 * ~/.cache/lathe/models/SmolLM2-135M-Instruct.Q4_1.gguf). Crafted bad files go to a temp dir. */
#include <criterion/criterion.h>

#include "../support.h"

#include "io/io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *stories_path(char *buf, size_t n) {
    const char *fx = getenv("LATHE_FIXTURES");
    snprintf(buf, n, "%s/stories260K/stories260K.gguf", fx ? fx : "../shared/fixtures");
    return buf;
}

/* Open stories260K or skip the test when the fixture is absent. */
static lt_gguf *open_stories(void) {
    char p[4096];
    stories_path(p, sizeof p);
    if (access(p, R_OK) != 0)
        cr_skip("fixture missing: %s (set LATHE_FIXTURES to the shared fixtures directory)", p);
    lt_gguf *g = NULL;
    lt_status st = lt_gguf_open(&g, p);
    cr_assert_eq(st, LT_OK, "open %s: %s", p, lt_error_message());
    return g;
}

static lt_gguf *open_smollm2(void) {
    char p[4096];
    ts_smollm2(p, sizeof p);
    lt_gguf *g = NULL;
    cr_assert_eq(lt_gguf_open(&g, p), LT_OK, "open %s: %s", p, lt_error_message());
    return g;
}

static char tmpdir[256];
static void mk_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lathe-test-gguf-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}
static void rm_tmpdir(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (tmpdir[0]) cr_assert_eq(system(cmd), 0);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n ? *n : 1);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* Expect open(path) to fail with st, the message containing the path and each extra needle. */
static void expect_fail(const char *path, lt_status want, const char *n1, const char *n2) {
    lt_gguf *g = (lt_gguf *)0x1;
    lt_status st = lt_gguf_open(&g, path);
    const char *m = lt_error_message();
    cr_assert_eq(st, want, "open %s: status %d, want %d (%s)", path, st, want, m);
    cr_assert_null(g);
    cr_assert(strstr(m, path), "message lacks the path: %s", m);
    if (n1) cr_assert(strstr(m, n1), "message lacks '%s': %s", n1, m);
    if (n2) cr_assert(strstr(m, n2), "message lacks '%s': %s", n2, m);
}

/* ---- stories260K ---------------------------------------------------------------------------- */

Test(gguf, stories_metadata) {
    lt_gguf *g = open_stories();
    cr_expect_eq(g->version, 3);
    lt_gguf_str s;
    cr_assert(lt_gguf_get_str(g, "general.architecture", &s));
    cr_expect(lt_gguf_str_eq(s, "llama"));
    int64_t v;
    cr_assert(lt_gguf_get_int(g, "llama.block_count", &v));
    cr_expect_eq(v, 5);
    cr_assert(lt_gguf_get_int(g, "llama.embedding_length", &v));
    cr_expect_eq(v, 64);
    cr_assert(lt_gguf_get_int(g, "llama.attention.head_count", &v));
    cr_expect_eq(v, 8);
    cr_assert(lt_gguf_get_int(g, "llama.attention.head_count_kv", &v));
    cr_expect_eq(v, 4);
    cr_assert(lt_gguf_get_int(g, "llama.feed_forward_length", &v));
    cr_expect_eq(v, 172);
    cr_assert(lt_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &v));
    cr_expect_eq(v, 1);
    double eps;
    cr_assert(lt_gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &eps));
    cr_expect_float_eq(eps, 1e-5, 1e-9);
    cr_expect(!lt_gguf_get_str(g, "llama.block_count", &s), "an int is not a string");
    cr_expect(!lt_gguf_get_int(g, "no.such.key", &v));
    const lt_gguf_kv *tok = lt_gguf_find(g, "tokenizer.ggml.tokens");
    cr_assert_not_null(tok);
    cr_assert_eq(tok->type, LT_GGUF_ARRAY);
    cr_assert_eq(tok->arr_type, LT_GGUF_STRING);
    cr_assert_eq(tok->arr_n, 512);
    cr_assert_not_null(tok->arr_str);
    cr_expect(lt_gguf_str_eq(tok->arr_str[0], "<unk>"), "token 0 is '%.*s'",
              (int)tok->arr_str[0].len, tok->arr_str[0].ptr);
    cr_expect(lt_gguf_str_eq(tok->arr_str[1], "<s>"));
    const lt_gguf_kv *sc = lt_gguf_find(g, "tokenizer.ggml.scores");
    cr_assert(sc && sc->arr_type == LT_GGUF_FLOAT32 && sc->arr_n == 512);
    for (uint64_t i = 0; i < sc->arr_n; i++) cr_assert(isfinite(lt_gguf_arr_float(sc, i)));
    const lt_gguf_kv *tt = lt_gguf_find(g, "tokenizer.ggml.token_type");
    cr_assert(tt && tt->arr_type == LT_GGUF_INT32 && tt->arr_n == 512);
    cr_expect_eq(lt_gguf_arr_int(tt, 1), 3, "<s> is a control token (type 3)");
    lt_gguf_close(g);
}

Test(gguf, stories_tensors) {
    lt_gguf *g = open_stories();
    cr_expect_eq(g->n_tensors, 48);
    cr_expect_eq(g->alignment, 32);
    const lt_gguf_tensor *e = lt_gguf_find_tensor(g, "token_embd.weight");
    cr_assert_not_null(e);
    cr_expect_eq(e->n_dims, 2);
    cr_expect_eq(e->ne[0], 64);
    cr_expect_eq(e->ne[1], 512);
    cr_expect_eq(e->dtype, LT_F32);
    cr_expect_eq(e->nbytes, 64 * 512 * 4);
    cr_expect_null(lt_gguf_find_tensor(g, "blk.5.attn_q.weight"));
    const lt_gguf_tensor *k = lt_gguf_find_tensor(g, "blk.0.attn_k.weight");
    cr_assert(k && k->ne[0] == 64 && k->ne[1] == 32, "k_proj is [32 rows of 64] (4 kv heads)");
    /* this file stores the tied output head explicitly (fixtures README: equals token_embd) */
    const lt_gguf_tensor *o = lt_gguf_find_tensor(g, "output.weight");
    cr_assert_not_null(o);
    cr_expect_eq(memcmp(o->data, e->data, e->nbytes), 0);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lt_gguf_tensor *t = &g->tensors[i];
        cr_assert_eq(t->dtype, LT_F32, "%s", t->name);
        cr_assert_eq((uintptr_t)t->data % 32, 0, "%s data not aligned", t->name);
        int64_t n = lt_gguf_tensor_numel(t);
        float *x = malloc((size_t)n * sizeof *x);
        lt_gguf_tensor_to_f32(t, x);
        double sum = 0;
        for (int64_t j = 0; j < n; j++) {
            cr_assert(isfinite(x[j]), "%s[%lld] = %g", t->name, (long long)j, x[j]);
            sum += fabs(x[j]);
        }
        cr_expect_gt(sum, 0.0, "%s is all zeros", t->name);
        free(x);
    }
    lt_gguf_close(g);
}

/* ---- SmolLM2 (optional) --------------------------------------------------------------------- */

Test(gguf, smollm2_types) {
    lt_gguf *g = open_smollm2();
    int64_t v;
    cr_assert(lt_gguf_get_int(g, "llama.block_count", &v));
    cr_expect_eq(v, 30);
    cr_assert(lt_gguf_get_int(g, "llama.embedding_length", &v));
    cr_expect_eq(v, 576);
    cr_assert(lt_gguf_get_int(g, "llama.attention.head_count", &v));
    cr_expect_eq(v, 9);
    cr_assert(lt_gguf_get_int(g, "llama.attention.head_count_kv", &v));
    cr_expect_eq(v, 3);
    const lt_gguf_kv *tok = lt_gguf_find(g, "tokenizer.ggml.tokens");
    cr_assert(tok && tok->arr_type == LT_GGUF_STRING && tok->arr_n == 49152);
    const lt_gguf_tensor *e = lt_gguf_find_tensor(g, "token_embd.weight");
    cr_assert_not_null(e);
    cr_expect_eq(e->dtype, LT_Q8_0);
    cr_expect_eq(e->ne[0], 576);
    cr_expect_eq(e->ne[1], 49152);
    cr_expect_null(lt_gguf_find_tensor(g, "output.weight"), "SmolLM2 ties the output head");
    int n_q41 = 0, n_f32 = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lt_gguf_tensor *t = &g->tensors[i];
        if (t == e) continue;
        if (t->n_dims == 2 && t->ne[1] > 1) {
            cr_expect_eq(t->dtype, LT_Q4_1, "%s is %s", t->name, lt_ggml_type_name(t->ggml_type));
            n_q41++;
        } else {
            cr_expect_eq(t->dtype, LT_F32, "%s is %s", t->name, lt_ggml_type_name(t->ggml_type));
            n_f32++;
        }
    }
    cr_expect_eq(n_q41, 30 * 7);
    cr_expect_eq(n_f32, 30 * 2 + 1);
    lt_gguf_close(g);
}

Test(gguf, smollm2_dequant) {
    lt_gguf *g = open_smollm2();
    const char *names[] = {"token_embd.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight"};
    for (int k = 0; k < 3; k++) {
        const lt_gguf_tensor *t = lt_gguf_find_tensor(g, names[k]);
        cr_assert_not_null(t, "%s", names[k]);
        int64_t n = lt_gguf_tensor_numel(t);
        float *x = malloc((size_t)n * sizeof *x);
        lt_gguf_tensor_to_f32(t, x);
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            cr_assert(isfinite(x[i]), "%s[%lld] = %g", names[k], (long long)i, x[i]);
            s += fabs(x[i]);
        }
        double mean = s / (double)n;
        /* trained weights of a 576-wide model: mean |w| ~ 1e-2; anything outside [1e-3, 1] means
         * a wrong block layout (garbage scales) */
        cr_expect(mean > 1e-3 && mean < 1.0, "%s mean |x| = %g", names[k], mean);
        free(x);
    }
    lt_gguf_close(g);
}

/* ---- writer round trip ---------------------------------------------------------------------- */

Test(gguf, writer_round_trip, .init = mk_tmpdir, .fini = rm_tmpdir) {
    char path[512];
    snprintf(path, sizeof path, "%s/rt.gguf", tmpdir);
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_gguf_writer_set_str(w, "general.architecture", "llama");
    lt_gguf_writer_set_u32(w, "t.u32", 4000000000u);
    lt_gguf_writer_set_i32(w, "t.i32", -7);
    lt_gguf_writer_set_u64(w, "t.u64", 1ull << 40);
    lt_gguf_writer_set_f32(w, "t.f32", 0.25f);
    lt_gguf_writer_set_bool(w, "t.bool", true);
    lt_gguf_writer_set_str(w, "t.replaced", "old");
    lt_gguf_writer_set_str(w, "t.replaced", "new");
    const char *strs[] = {"a", "", "hello world"};
    lt_gguf_writer_set_str_arr(w, "t.strs", strs, 3);
    const int32_t ints[] = {1, -2, 2147483647};
    lt_gguf_writer_set_i32_arr(w, "t.ints", ints, 3);
    const float fl[] = {1.5f, -0.0f, 3e38f, 1e-40f};
    lt_gguf_writer_set_f32_arr(w, "t.floats", fl, 4);
    lt_gguf_writer_set_str_arr(w, "t.empty", NULL, 0);

    float a[3 * 5];
    for (int i = 0; i < 15; i++) a[i] = (float)i * 0.5f - 3.0f;
    uint16_t h[64];
    for (int i = 0; i < 64; i++) h[i] = lt_f32_to_f16((float)i / 8.0f);
    float q[64];
    for (int i = 0; i < 64; i++) q[i] = sinf((float)i);
    uint8_t q8[2 * 34];
    memset(q8, 0, sizeof q8);
    for (int b = 0; b < 2; b++) {
        uint16_t d = lt_f32_to_f16(0.01f * (float)(b + 1));
        memcpy(q8 + b * 34, &d, 2);
        for (int i = 0; i < 32; i++) q8[b * 34 + 2 + i] = (uint8_t)(int8_t)(i - 16);
    }
    int64_t ne_a[] = {5, 3}, ne_h[] = {64}, ne_q8[] = {32, 2, 1};
    lt_gguf_writer_add_tensor(w, "a", LT_F32, 2, ne_a, a);
    lt_gguf_writer_add_tensor(w, "h", LT_F16, 1, ne_h, h);
    lt_gguf_writer_add_tensor(w, "q8", LT_Q8_0, 3, ne_q8, q8);
    cr_assert_eq(lt_gguf_writer_write(w, path), LT_OK, "%s", lt_error_message());
    lt_gguf_writer_free(w);

    lt_gguf *g = NULL;
    cr_assert_eq(lt_gguf_open(&g, path), LT_OK, "%s", lt_error_message());
    cr_expect_eq(g->version, 3);
    cr_expect_eq(g->n_kv, 11, "the replaced key is not duplicated");
    cr_expect_eq(strcmp(g->kv[6].key, "t.replaced"), 0, "a replaced key keeps its position");
    lt_gguf_str s;
    int64_t v;
    double f;
    bool b;
    cr_assert(lt_gguf_get_str(g, "general.architecture", &s) && lt_gguf_str_eq(s, "llama"));
    cr_assert(lt_gguf_get_str(g, "t.replaced", &s) && lt_gguf_str_eq(s, "new"));
    cr_assert(lt_gguf_get_int(g, "t.u32", &v));
    cr_expect_eq(v, 4000000000ll);
    cr_expect_eq(lt_gguf_find(g, "t.u32")->type, LT_GGUF_UINT32);
    cr_assert(lt_gguf_get_int(g, "t.i32", &v));
    cr_expect_eq(v, -7);
    cr_expect_eq(lt_gguf_find(g, "t.i32")->type, LT_GGUF_INT32);
    cr_assert(lt_gguf_get_int(g, "t.u64", &v));
    cr_expect_eq(v, 1ll << 40);
    cr_expect_eq(lt_gguf_find(g, "t.u64")->type, LT_GGUF_UINT64);
    cr_assert(lt_gguf_get_float(g, "t.f32", &f));
    cr_expect_eq(f, 0.25);
    cr_assert(lt_gguf_get_float(g, "t.i32", &f), "ints convert to float");
    cr_expect_eq(f, -7.0);
    cr_expect(!lt_gguf_get_int(g, "t.f32", &v), "floats do not convert to int");
    cr_assert(lt_gguf_get_bool(g, "t.bool", &b));
    cr_expect(b);
    const lt_gguf_kv *kv = lt_gguf_find(g, "t.strs");
    cr_assert(kv && kv->type == LT_GGUF_ARRAY && kv->arr_type == LT_GGUF_STRING && kv->arr_n == 3);
    for (int i = 0; i < 3; i++) cr_expect(lt_gguf_str_eq(kv->arr_str[i], strs[i]), "strs[%d]", i);
    kv = lt_gguf_find(g, "t.ints");
    cr_assert(kv && kv->arr_type == LT_GGUF_INT32 && kv->arr_n == 3);
    for (int i = 0; i < 3; i++) cr_expect_eq(lt_gguf_arr_int(kv, (uint64_t)i), ints[i]);
    kv = lt_gguf_find(g, "t.floats");
    cr_assert(kv && kv->arr_type == LT_GGUF_FLOAT32 && kv->arr_n == 4);
    for (int i = 0; i < 4; i++) {
        double x = lt_gguf_arr_float(kv, (uint64_t)i);
        cr_expect(memcmp(&(float){(float)x}, &fl[i], 4) == 0, "floats[%d] = %g", i, x);
    }
    kv = lt_gguf_find(g, "t.empty");
    cr_assert(kv && kv->arr_n == 0);

    cr_assert_eq(g->n_tensors, 3);
    const lt_gguf_tensor *ta = lt_gguf_find_tensor(g, "a"), *th = lt_gguf_find_tensor(g, "h"),
                         *tq = lt_gguf_find_tensor(g, "q8");
    cr_assert(ta && th && tq);
    cr_expect(ta->dtype == LT_F32 && ta->n_dims == 2 && ta->ne[0] == 5 && ta->ne[1] == 3);
    cr_expect(th->dtype == LT_F16 && th->ggml_type == LT_GGML_F16 && th->ne[0] == 64);
    cr_expect(tq->dtype == LT_Q8_0 && tq->n_dims == 3 && tq->ne[1] == 2 && tq->ne[2] == 1);
    cr_expect_eq(tq->nbytes, sizeof q8);
    cr_expect_eq(memcmp(ta->data, a, sizeof a), 0);
    cr_expect_eq(memcmp(th->data, h, sizeof h), 0);
    cr_expect_eq(memcmp(tq->data, q8, sizeof q8), 0);
    float out[64];
    lt_gguf_tensor_to_f32(th, out);
    for (int i = 0; i < 64; i++) cr_expect_eq(out[i], (float)i / 8.0f);
    lt_gguf_tensor_to_f32(tq, out);
    for (int i = 0; i < 64; i++)
        cr_expect_eq(out[i], lt_f16_to_f32(lt_f32_to_f16(0.01f * (float)(i / 32 + 1))) *
                                 (float)(i % 32 - 16));
    lt_gguf_close(g);
    (void)q;
}

/* GGUF v2 has the same little-endian layout as v3: patching the version must still open. */
Test(gguf, version2_accepted, .init = mk_tmpdir, .fini = rm_tmpdir) {
    char path[512];
    snprintf(path, sizeof path, "%s/v2.gguf", tmpdir);
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_gguf_writer_set_u32(w, "x", 1);
    float a[4] = {1, 2, 3, 4};
    lt_gguf_writer_add_tensor(w, "a", LT_F32, 1, (int64_t[]){4}, a);
    cr_assert_eq(lt_gguf_writer_write(w, path), LT_OK);
    lt_gguf_writer_free(w);
    size_t n;
    uint8_t *b = read_bytes(path, &n);
    b[4] = 2;
    write_bytes(path, b, n);
    lt_gguf *g = NULL;
    cr_assert_eq(lt_gguf_open(&g, path), LT_OK, "%s", lt_error_message());
    cr_expect_eq(g->version, 2);
    cr_expect_eq(((const float *)lt_gguf_find_tensor(g, "a")->data)[3], 4.0f);
    lt_gguf_close(g);
    b[4] = 1;
    write_bytes(path, b, n);
    expect_fail(path, LT_ERR_MODEL, "version 1", NULL);
    free(b);
}

/* ---- bad input ------------------------------------------------------------------------------ */

Test(gguf, missing_file) {
    const char *p = "/nonexistent/dir/model.gguf";
    expect_fail(p, LT_ERR_MODEL, "No such file", NULL);
}

Test(gguf, truncated, .fini = rm_tmpdir) {
    lt_gguf *g = open_stories(); /* may skip: make the temp dir only after it */
    mk_tmpdir();
    size_t header_end = g->data_offset, size = g->size;
    size_t mid = header_end + (size - header_end) / 2;
    lt_gguf_close(g);
    char src[4096];
    size_t n;
    uint8_t *b = read_bytes(stories_path(src, sizeof src), &n);
    size_t cuts[] = {1, 4, 10, 24, 100, 1000, header_end - 1, header_end, mid, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/cut-%zu.gguf", tmpdir, cuts[i]);
        write_bytes(path, b, cuts[i]);
        expect_fail(path, LT_ERR_MODEL, cuts[i] >= header_end ? "extends past the end" : "truncated",
                    NULL);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/empty.gguf", tmpdir);
    write_bytes(path, b, 0);
    expect_fail(path, LT_ERR_MODEL, "empty", NULL);
    free(b);
}

Test(gguf, unsupported_type_names_tensor, .init = mk_tmpdir, .fini = rm_tmpdir) {
    char path[512];
    snprintf(path, sizeof path, "%s/q2k.gguf", tmpdir);
    lt_gguf_writer *w = lt_gguf_writer_new();
    float a[32] = {0};
    uint8_t raw[84] = {0}; /* one Q2_K super-block of 256 */
    lt_gguf_writer_add_tensor(w, "fine.weight", LT_F32, 1, (int64_t[]){32}, a);
    lt_gguf_writer_add_raw(w, "blk.3.ffn_up.weight", 10, 1, (int64_t[]){256}, raw, sizeof raw);
    cr_assert_eq(lt_gguf_writer_write(w, path), LT_OK);
    lt_gguf_writer_free(w);
    expect_fail(path, LT_ERR_MODEL, "blk.3.ffn_up.weight", "Q2_K");
    /* metadata only (what a tokenizer load reads): the tensor types do not matter */
    lt_gguf *g = NULL;
    cr_assert_eq(lt_gguf_open_meta(&g, path), LT_OK, "%s", lt_error_message());
    cr_expect_eq(g->n_tensors, 0);
    cr_expect_null(lt_gguf_find_tensor(g, "fine.weight"));
    lt_gguf_close(g);

    w = lt_gguf_writer_new();
    lt_gguf_writer_add_raw(w, "weird", 99, 1, (int64_t[]){32}, raw, 32);
    cr_assert_eq(lt_gguf_writer_write(w, path), LT_OK);
    lt_gguf_writer_free(w);
    expect_fail(path, LT_ERR_MODEL, "weird", "invalid ggml type id 99");
    cr_expect_str_eq(lt_ggml_type_name(10), "Q2_K");
    cr_expect_str_eq(lt_ggml_type_name(30), "BF16");
    cr_expect_str_eq(lt_ggml_type_name(39), "MXFP4");
    cr_expect_str_eq(lt_ggml_type_name(40), "unknown");
}

Test(gguf, bad_magic_and_absurd_counts, .init = mk_tmpdir, .fini = rm_tmpdir) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.gguf", tmpdir);
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_gguf_writer_set_str(w, "general.architecture", "llama");
    float a[8] = {0};
    lt_gguf_writer_add_tensor(w, "a", LT_F32, 1, (int64_t[]){8}, a);
    cr_assert_eq(lt_gguf_writer_write(w, path), LT_OK);
    lt_gguf_writer_free(w);
    size_t n;
    uint8_t *orig = read_bytes(path, &n), *b = malloc(n);

    memcpy(b, orig, n);
    memcpy(b, "GGML", 4);
    write_bytes(path, b, n);
    expect_fail(path, LT_ERR_MODEL, "not a GGUF file", NULL);

    memcpy(b, orig, n);
    uint64_t absurd = 1ull << 60;
    memcpy(b + 16, &absurd, 8); /* n_kv */
    write_bytes(path, b, n);
    expect_fail(path, LT_ERR_MODEL, "metadata entries", NULL);

    memcpy(b, orig, n);
    memcpy(b + 8, &absurd, 8); /* n_tensors */
    write_bytes(path, b, n);
    expect_fail(path, LT_ERR_MODEL, "tensors", NULL);

    memcpy(b, orig, n);
    uint64_t big = UINT64_MAX - 3;
    memcpy(b + 24, &big, 8); /* length of the first key */
    write_bytes(path, b, n);
    expect_fail(path, LT_ERR_MODEL, "truncated", "metadata entry 0");

    memcpy(b, orig, n);
    uint32_t badtype = 13;
    memcpy(b + 24 + 8 + strlen("general.architecture"), &badtype, 4);
    write_bytes(path, b, n);
    expect_fail(path, LT_ERR_MODEL, "general.architecture", "invalid value type 13");

    memcpy(b, orig, n);
    b[7] = 0;
    b[4] = 0;
    b[5] = 0;
    b[6] = 0;
    b[7] = 3; /* big-endian version 3 */
    write_bytes(path, b, n);
    expect_fail(path, LT_ERR_MODEL, "big-endian", NULL);
    free(orig);
    free(b);
}

/* Hand-built files for cases the writer cannot produce. */
typedef struct {
    uint8_t b[512];
    size_t n;
} raw;
static void raw_put(raw *r, const void *p, size_t n) {
    cr_assert(r->n + n <= sizeof r->b);
    memcpy(r->b + r->n, p, n);
    r->n += n;
}
static void raw_u32(raw *r, uint32_t v) { raw_put(r, &v, 4); }
static void raw_u64(raw *r, uint64_t v) { raw_put(r, &v, 8); }
static void raw_str(raw *r, const char *s) {
    raw_u64(r, strlen(s));
    raw_put(r, s, strlen(s));
}
static void raw_header(raw *r, uint64_t n_tensors, uint64_t n_kv) {
    r->n = 0;
    raw_put(r, "GGUF", 4);
    raw_u32(r, 3);
    raw_u64(r, n_tensors);
    raw_u64(r, n_kv);
}
/* One F32 tensor info "t" with the given dims and offset, padding to 32 and 64 bytes of data. */
static void raw_tensor(raw *r, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    raw_str(r, "t");
    raw_u32(r, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) raw_u64(r, ne[d]);
    raw_u32(r, type);
    raw_u64(r, off);
    while (r->n % 32) raw_put(r, "", 1);
    static const uint8_t zeros[64];
    raw_put(r, zeros, sizeof zeros);
}

Test(gguf, crafted_bad_files, .init = mk_tmpdir, .fini = rm_tmpdir) {
    char path[512];
    snprintf(path, sizeof path, "%s/crafted.gguf", tmpdir);
    raw r;

    raw_header(&r, 0, 1); /* array of arrays */
    raw_str(&r, "nested");
    raw_u32(&r, LT_GGUF_ARRAY);
    raw_u32(&r, LT_GGUF_ARRAY);
    raw_u64(&r, 1);
    raw_u32(&r, LT_GGUF_INT32);
    raw_u64(&r, 0);
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "nested", "array of arrays");

    raw_header(&r, 0, 1); /* string array claiming 2^40 elements */
    raw_str(&r, "toks");
    raw_u32(&r, LT_GGUF_ARRAY);
    raw_u32(&r, LT_GGUF_STRING);
    raw_u64(&r, 1ull << 40);
    raw_str(&r, "x");
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "toks", "truncated");

    raw_header(&r, 0, 1); /* bool that is neither 0 nor 1 */
    raw_str(&r, "flag");
    raw_u32(&r, LT_GGUF_BOOL);
    raw_put(&r, "\x07", 1);
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "flag", "bool");

    raw_header(&r, 0, 2); /* duplicate key */
    for (int i = 0; i < 2; i++) {
        raw_str(&r, "dup.key");
        raw_u32(&r, LT_GGUF_UINT32);
        raw_u32(&r, 1);
    }
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "dup.key", "twice");

    raw_header(&r, 0, 1); /* alignment not a power of two */
    raw_str(&r, "general.alignment");
    raw_u32(&r, LT_GGUF_UINT32);
    raw_u32(&r, 24);
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "general.alignment", NULL);

    raw_header(&r, 1, 0);
    raw_tensor(&r, 5, (uint64_t[]){1, 1, 1, 1, 1}, 0, 0);
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "'t'", "5 dimensions");

    raw_header(&r, 1, 0);
    raw_tensor(&r, 2, (uint64_t[]){4, 0}, 0, 0);
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "'t'", "invalid size 0");

    raw_header(&r, 1, 0); /* element count overflows int64 */
    raw_tensor(&r, 2, (uint64_t[]){1ull << 32, 1ull << 32}, 0, 0);
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "'t'", "invalid size");

    raw_header(&r, 1, 0);
    raw_tensor(&r, 1, (uint64_t[]){4}, 0, 4); /* misaligned offset */
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "'t'", "not a multiple of the alignment");

    raw_header(&r, 1, 0);
    raw_tensor(&r, 1, (uint64_t[]){32}, 0, 0); /* 128 bytes needed, 64 present */
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "'t'", "extends past the end");

    raw_header(&r, 1, 0);
    raw_tensor(&r, 1, (uint64_t[]){16}, 8, 0); /* Q8_0 with a 16-element row */
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "'t'", "block size");

    raw_header(&r, 2, 0); /* duplicate tensor name */
    raw_str(&r, "t");
    raw_u32(&r, 1);
    raw_u64(&r, 4);
    raw_u32(&r, 0);
    raw_u64(&r, 0);
    raw_tensor(&r, 1, (uint64_t[]){4}, 0, 32);
    write_bytes(path, r.b, r.n);
    expect_fail(path, LT_ERR_MODEL, "'t'", "twice");

    raw_header(&r, 1, 0); /* a valid minimal file, to show the crafting itself is right */
    raw_tensor(&r, 1, (uint64_t[]){16}, 0, 0);
    write_bytes(path, r.b, r.n);
    lt_gguf *g = NULL;
    cr_assert_eq(lt_gguf_open(&g, path), LT_OK, "%s", lt_error_message());
    cr_expect_eq(g->data_offset, 64);
    lt_gguf_close(g);
}

/* ---- Q/K permutation ------------------------------------------------------------------------ */

Test(gguf, qk_permute_hand_example) {
    /* 2 heads, head_dim 4, 1 column. HF rows per head: [r0 r1 | r2 r3] (two rotary halves).
     * llama.cpp's permute interleaves the halves: [r0 r2 r1 r3]. */
    float w[8] = {0, 1, 2, 3, 10, 11, 12, 13};
    const float want[8] = {0, 2, 1, 3, 10, 12, 11, 13};
    lt_qk_permute(w, 8, 1, 2);
    for (int i = 0; i < 8; i++) cr_expect_eq(w[i], want[i], "row %d: %g", i, w[i]);
    lt_qk_unpermute(w, 8, 1, 2);
    for (int i = 0; i < 8; i++) cr_expect_eq(w[i], i < 4 ? i : 6 + i, "row %d", i);

    /* 1 head, head_dim 6 (half 3), 2 columns: GGUF row 2i+j = HF row 3j+i -> HF order
     * 0 1 2 3 4 5 becomes 0 3 1 4 2 5. */
    float v[12];
    for (int r = 0; r < 6; r++) v[2 * r] = (float)r, v[2 * r + 1] = (float)(100 + r);
    lt_qk_permute(v, 6, 2, 1);
    const int order[6] = {0, 3, 1, 4, 2, 5};
    for (int r = 0; r < 6; r++) {
        cr_expect_eq(v[2 * r], (float)order[r]);
        cr_expect_eq(v[2 * r + 1], (float)(100 + order[r]));
    }
}

Test(gguf, qk_permute_inverse_odd_cols) {
    const int64_t rows = 3 * 10, cols = 7; /* 3 heads of head_dim 10, odd column count */
    float *w = malloc(rows * cols * sizeof *w), *orig = malloc(rows * cols * sizeof *w);
    for (int64_t i = 0; i < rows * cols; i++) orig[i] = w[i] = (float)i;
    lt_qk_unpermute(w, rows, cols, 3);
    int moved = 0;
    for (int64_t i = 0; i < rows * cols; i++) moved += w[i] != orig[i];
    cr_expect_gt(moved, 0, "unpermute must move rows");
    lt_qk_permute(w, rows, cols, 3);
    for (int64_t i = 0; i < rows * cols; i++) cr_assert_eq(w[i], orig[i], "element %lld", (long long)i);
    lt_qk_permute(w, rows, cols, 3);
    lt_qk_unpermute(w, rows, cols, 3);
    for (int64_t i = 0; i < rows * cols; i++) cr_assert_eq(w[i], orig[i], "element %lld", (long long)i);
    free(w);
    free(orig);
}
