/*
 * bitsandbytes 4-bit checkpoints (io.h lt_bnb_*): an NF4 tensor written with lt_bnb_write_nf4 and
 * read back with lt_bnb_read_nf4 is identical (codes, block size, absmax or absmax_q / absmax2 /
 * offset, bit for bit), with and without double quantization; the written tensors have
 * bitsandbytes' names, dtypes and shapes and the packed JSON is byte-equal to what bitsandbytes
 * 0.50.2 wrote for the same state (transformers 5.23 save_pretrained, quoted below); every kind of
 * corruption is an LT_ERR_MODEL naming the file and the tensor; quantization_config round-trips
 * and foreign quantization configs are rejected.
 */
#include "../support.h"
#include "io/io.h"
#include "quant/quant.h"

#include <jansson.h>
#include <math.h>

static char dir[256];
static void setup(void) { ts_tmpdir(dir, sizeof dir, "bnb"); }
static void teardown(void) { ts_rmtree(dir); }

#define W_NAME "model.layers.3.mlp.down_proj.weight"

/* A random F32 [rows, cols] tensor (N(0,1)-ish: sum of uniforms) quantized to NF4. */
static void make_nf4(lt_tensor *q, float **src, int64_t rows, int64_t cols, int64_t block,
                     bool dq, uint64_t seed) {
    lt_rng r = {seed};
    float *x = malloc((size_t)(rows * cols) * sizeof *x);
    for (int64_t i = 0; i < rows * cols; i++)
        x[i] = (lt_rng_uniform(&r) + lt_rng_uniform(&r) + lt_rng_uniform(&r) - 1.5f) * 0.05f;
    lt_tensor t = {.dtype = LT_F32, .ndim = 2, .shape = {rows, cols}, .data = x, .name = W_NAME};
    cr_assert_eq(lt_nf4_quantize(q, &t, block, dq), LT_OK);
    if (src) *src = x;
    else free(x);
}

static void write_one(const char *path, const lt_tensor *q) {
    lt_st_writer *w = lt_st_writer_new();
    cr_assert_eq(lt_bnb_write_nf4(w, W_NAME, q), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_st_writer_write(w, path), LT_OK, "%s", lt_error_message());
    lt_bnb_writer_release(w);
    lt_st_writer_free(w);
}

static void expect_same_nf4(const lt_tensor *a, const lt_tensor *b) {
    const lt_nf4_state *x = a->quant, *y = b->quant;
    cr_assert_eq(b->dtype, LT_NF4);
    cr_assert_eq(b->ndim, 2);
    cr_assert(b->shape[0] == a->shape[0] && b->shape[1] == a->shape[1]);
    const int64_t n = lt_tensor_numel(a);
    cr_assert(memcmp(a->data, b->data, (size_t)n / 2) == 0, "codes differ");
    cr_assert_eq(x->blocksize, y->blocksize);
    cr_assert_eq(x->n_blocks, y->n_blocks);
    cr_assert_eq(x->double_quant, y->double_quant);
    if (!x->double_quant) {
        cr_assert(memcmp(x->absmax, y->absmax, (size_t)x->n_blocks * 4) == 0, "absmax differs");
        cr_assert_null(y->absmax_q);
        return;
    }
    const int64_t nb2 = (x->n_blocks + 255) / 256;
    cr_assert(memcmp(x->absmax_q, y->absmax_q, (size_t)x->n_blocks) == 0, "absmax codes differ");
    cr_assert(memcmp(x->absmax2, y->absmax2, (size_t)nb2 * 4) == 0, "nested absmax differs");
    cr_assert(memcmp(&x->offset, &y->offset, 4) == 0, "offset %.9g != %.9g", x->offset, y->offset);
    cr_assert_null(y->absmax);
}

static const lt_st_tensor *find(const lt_safetensors *st, const char *suffix) {
    char nm[256];
    snprintf(nm, sizeof nm, W_NAME "%s", suffix);
    return lt_safetensors_find(st, nm);
}

static void roundtrip(int64_t rows, int64_t cols, int64_t block, bool dq) {
    lt_tensor q, back;
    float *x;
    make_nf4(&q, &x, rows, cols, block, dq, 7 + (uint64_t)rows);
    char path[512];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    write_one(path, &q);
    lt_safetensors *st;
    cr_assert_eq(lt_safetensors_open(&st, path), LT_OK, "%s", lt_error_message());
    cr_assert(lt_bnb_is_quantized(st, W_NAME));

    /* bitsandbytes' layout: exactly these tensors, with these dtypes and shapes */
    const int64_t n = rows * cols, nb = n / block, nb2 = (nb + 255) / 256;
    cr_assert_eq(st->n_tensors, dq ? 6 : 4);
    const lt_st_tensor *t = find(st, "");
    cr_assert(t && t->dtype == LT_U8 && t->ndim == 2 && t->shape[0] == n / 2 && t->shape[1] == 1);
    t = find(st, ".absmax");
    cr_assert(t && t->dtype == (dq ? LT_U8 : LT_F32) && t->ndim == 1 && t->shape[0] == nb);
    t = find(st, ".quant_map");
    cr_assert(t && t->dtype == LT_F32 && t->shape[0] == 16);
    cr_assert(memcmp(t->data, LT_NF4_CODE, sizeof LT_NF4_CODE) == 0);
    if (dq) {
        t = find(st, ".nested_absmax");
        cr_assert(t && t->dtype == LT_F32 && t->ndim == 1 && t->shape[0] == nb2);
        t = find(st, ".nested_quant_map");
        cr_assert(t && t->dtype == LT_F32 && t->shape[0] == 256);
    } else {
        cr_assert_null(find(st, ".nested_absmax"));
    }
    t = find(st, ".quant_state.bitsandbytes__nf4");
    cr_assert(t && t->dtype == LT_U8 && t->ndim == 1);
    json_error_t je;
    json_t *o = json_loadb(t->data, t->nbytes, 0, &je);
    cr_assert(o, "packed JSON: %s", je.text);
    cr_assert_str_eq(json_string_value(json_object_get(o, "quant_type")), "nf4");
    cr_assert_eq(json_integer_value(json_object_get(o, "blocksize")), block);
    cr_assert_str_eq(json_string_value(json_object_get(o, "dtype")), "float32");
    json_t *shape = json_object_get(o, "shape");
    cr_assert_eq(json_integer_value(json_array_get(shape, 0)), rows);
    cr_assert_eq(json_integer_value(json_array_get(shape, 1)), cols);
    cr_assert_eq(json_object_size(o), dq ? 7u : 4u);
    if (dq) {
        cr_assert_eq(json_integer_value(json_object_get(o, "nested_blocksize")), 256);
        cr_assert_str_eq(json_string_value(json_object_get(o, "nested_dtype")), "float32");
        /* float(nested_offset) in Python (a double) is the F32 offset exactly */
        const lt_nf4_state *qs = q.quant;
        cr_assert_eq(json_real_value(json_object_get(o, "nested_offset")), (double)qs->offset);
    }
    json_decref(o);

    cr_assert_eq(lt_bnb_read_nf4(st, W_NAME, rows, cols, &back), LT_OK, "%s",
                 lt_error_message());
    expect_same_nf4(&q, &back);
    /* and so the dequantized weights are the same numbers */
    float *d0 = malloc((size_t)n * 4), *d1 = malloc((size_t)n * 4);
    lt_dequant_rows(&q, 0, rows, d0);
    lt_dequant_rows(&back, 0, rows, d1);
    cr_assert(memcmp(d0, d1, (size_t)n * 4) == 0);
    free(d0);
    free(d1);
    lt_nf4_free(&back);
    lt_safetensors_close(st);
    lt_nf4_free(&q);
    free(x);
}

Test(bnb, roundtrip_plain, .init = setup, .fini = teardown) { roundtrip(48, 128, 64, false); }
Test(bnb, roundtrip_double_quant, .init = setup, .fini = teardown) {
    /* 600 x 128 / 32 = 2400 blocks: ten nested blocks, the last one partial */
    roundtrip(600, 128, 32, true);
}
Test(bnb, roundtrip_large_block, .init = setup, .fini = teardown) { roundtrip(8, 4096, 4096, true); }

/* What bitsandbytes 0.50.2 packed for a 64 x 64 float32 weight quantized with blocksize 64 and
 * double quantization (transformers 5.23 save_pretrained on CPU; tools/check_bnb_load.py prints
 * the same for lathe's files). The offset's F32 bits are 0x3d4e74f7. */
static const char BNB_JSON_DQ[] =
    "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [64, 64], "
    "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", "
    "\"nested_offset\": 0.050404515117406845}";

Test(bnb, packed_json_spelled_as_bitsandbytes, .init = setup, .fini = teardown) {
    lt_tensor q;
    make_nf4(&q, NULL, 64, 64, 64, true, 3);
    lt_nf4_state *qs = (lt_nf4_state *)q.quant;
    qs->offset = 0.050404515117406845f;
    uint32_t u;
    memcpy(&u, &qs->offset, 4);
    cr_assert_eq(u, 0x3d4e74f7u);
    char path[512];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    write_one(path, &q);
    lt_safetensors *st;
    cr_assert_eq(lt_safetensors_open(&st, path), LT_OK);
    const lt_st_tensor *t = find(st, ".quant_state.bitsandbytes__nf4");
    cr_assert_eq(t->nbytes, strlen(BNB_JSON_DQ));
    cr_assert(memcmp(t->data, BNB_JSON_DQ, t->nbytes) == 0, "%.*s", (int)t->nbytes,
              (const char *)t->data);
    lt_safetensors_close(st);
    lt_nf4_free(&q);
}

/* ---- corruption ----------------------------------------------------------------------------- */

/* Rewrite src into dst with tensor `victim` (full name) replaced by (dtype, n elements, data), or
 * dropped when data is NULL. */
static void rewrite(const char *src, const char *dst, const char *victim, lt_dtype dtype,
                    int64_t n, const void *data) {
    lt_safetensors *st;
    cr_assert_eq(lt_safetensors_open(&st, src), LT_OK);
    lt_st_writer *w = lt_st_writer_new();
    for (int i = 0; i < st->n_tensors; i++) {
        const lt_st_tensor *t = &st->tensors[i];
        if (strcmp(t->name, victim)) {
            lt_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
        } else if (data) {
            lt_st_writer_add(w, t->name, dtype, 1, &n, data);
        }
    }
    cr_assert_eq(lt_st_writer_write(w, dst), LT_OK);
    lt_st_writer_free(w);
    lt_safetensors_close(st);
}

/* Write a good file for a [64, 128] tensor (block 64), corrupt one tensor, and expect the reader
 * to fail with LT_ERR_MODEL naming the file and `want_tensor` and containing `want_text`. */
static void expect_corrupt(bool dq, const char *suffix, lt_dtype dtype, int64_t n,
                           const void *data, const char *want_tensor, const char *want_text) {
    lt_tensor q, back;
    make_nf4(&q, NULL, 64, 128, 64, dq, 11);
    char good[512], bad[512], victim[256];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    write_one(good, &q);
    snprintf(victim, sizeof victim, W_NAME "%s", suffix);
    rewrite(good, bad, victim, dtype, n, data);
    lt_safetensors *st;
    cr_assert_eq(lt_safetensors_open(&st, bad), LT_OK);
    lt_status rc = lt_bnb_read_nf4(st, W_NAME, 64, 128, &back);
    const char *msg = lt_error_message();
    cr_assert_eq(rc, LT_ERR_MODEL, "corrupt %s: status %d (%s)", victim, rc, msg);
    cr_assert_eq(lt_status_exit_code(rc), 3);
    cr_assert(strstr(msg, bad), "file not named: %s", msg);
    cr_assert(strstr(msg, want_tensor), "tensor '%s' not named: %s", want_tensor, msg);
    cr_assert(strstr(msg, want_text), "'%s' not in: %s", want_text, msg);
    cr_assert_null(back.data);
    cr_assert_null(back.quant);
    lt_safetensors_close(st);
    lt_nf4_free(&q);
}

static void expect_bad_json(const char *json, const char *want_text) {
    expect_corrupt(true, ".quant_state.bitsandbytes__nf4", LT_U8, (int64_t)strlen(json), json,
                   W_NAME ".quant_state.bitsandbytes__nf4", want_text);
}

#define QS_HEAD "{\"quant_type\": \"nf4\", "
#define QS_TAIL ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.01}"

Test(bnb, corrupt_absmax_count, .init = setup, .fini = teardown) {
    float a[100] = {0};
    expect_corrupt(false, ".absmax", LT_F32, 100, a, W_NAME ".absmax", "has 100 elements, "
                   "expected 128");
    uint8_t c[127] = {0};
    expect_corrupt(true, ".absmax", LT_U8, 127, c, W_NAME ".absmax", "expected 128");
}

Test(bnb, corrupt_absmax_dtype_and_values, .init = setup, .fini = teardown) {
    float a[128];
    for (int i = 0; i < 128; i++) a[i] = 1.0f;
    expect_corrupt(true, ".absmax", LT_F32, 128, a, W_NAME ".absmax", "dtype F32, expected U8");
    a[5] = NAN;
    expect_corrupt(false, ".absmax", LT_F32, 128, a, W_NAME ".absmax", "non-finite");
    float n2 = INFINITY;
    expect_corrupt(true, ".nested_absmax", LT_F32, 1, &n2, W_NAME ".nested_absmax",
                   "non-finite");
}

Test(bnb, corrupt_quant_maps, .init = setup, .fini = teardown) {
    float m[16];
    memcpy(m, LT_NF4_CODE, sizeof m);
    m[3] += 1e-6f;
    expect_corrupt(false, ".quant_map", LT_F32, 16, m, W_NAME ".quant_map", "NF4 code book");
    expect_corrupt(false, ".quant_map", LT_F32, 15, m, W_NAME ".quant_map", "expected 16");
    float d[256];
    memcpy(d, lt_quant_dynamic_map(), sizeof d);
    d[200] = 0.5f;
    expect_corrupt(true, ".nested_quant_map", LT_F32, 256, d, W_NAME ".nested_quant_map",
                   "dynamic map");
}

Test(bnb, corrupt_missing_companion, .init = setup, .fini = teardown) {
    expect_corrupt(true, ".nested_absmax", LT_F32, 0, NULL, W_NAME ".nested_absmax",
                   "is missing");
    expect_corrupt(false, ".quant_map", LT_F32, 0, NULL, W_NAME ".quant_map", "is missing");
}

Test(bnb, corrupt_codes, .init = setup, .fini = teardown) {
    uint8_t c[100] = {0};
    expect_corrupt(false, "", LT_U8, 100, c, W_NAME, "expected U8 packed NF4 codes with 4096");
    float f[4096] = {0};
    expect_corrupt(false, "", LT_F32, 4096, f, W_NAME, "is F32");
}

Test(bnb, corrupt_packed_json, .init = setup, .fini = teardown) {
    expect_bad_json("{\"quant_type\": \"nf4\", \"blocksize\": 6", "not a JSON object");
    expect_bad_json("[1, 2]", "not a JSON object");
    expect_bad_json(QS_HEAD "\"blocksize\": 48, \"dtype\": \"float32\", \"shape\": [64, 128]"
                    QS_TAIL, "blocksize 48 is not a power of two");
    /* 256 divides nothing wrong here, but 4096 does not divide the row length 128 */
    expect_bad_json(QS_HEAD "\"blocksize\": 4096, \"dtype\": \"float32\", \"shape\": [64, 128]"
                    QS_TAIL, "dividing the row length 128");
    expect_bad_json(QS_HEAD "\"blocksize\": \"64\", \"dtype\": \"float32\", \"shape\": [64, 128]"
                    QS_TAIL, "blocksize is missing or not an integer");
    expect_bad_json(QS_HEAD "\"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [128, 64]"
                    QS_TAIL, "shape [128,64], expected [64, 128]");
    expect_bad_json(QS_HEAD "\"blocksize\": 64, \"dtype\": \"int8\", \"shape\": [64, 128]"
                    QS_TAIL, "dtype is missing");
    expect_bad_json("{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float32\", "
                    "\"shape\": [64, 128]" QS_TAIL, "quant_type is \"fp4\"");
    expect_bad_json(QS_HEAD "\"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [64, 128], "
                    "\"nested_blocksize\": 128, \"nested_dtype\": \"float32\", "
                    "\"nested_offset\": 0.01}", "nested_blocksize is not 256");
    expect_bad_json(QS_HEAD "\"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [64, 128], "
                    "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", "
                    "\"nested_offset\": \"x\"}", "nested_offset is not a finite number");
}

Test(bnb, shape_mismatch_with_config, .init = setup, .fini = teardown) {
    lt_tensor q, back;
    make_nf4(&q, NULL, 64, 128, 64, false, 5);
    char path[512];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    write_one(path, &q);
    lt_safetensors *st;
    cr_assert_eq(lt_safetensors_open(&st, path), LT_OK);
    /* same element count, different shape: only the packed shape can tell */
    lt_status rc = lt_bnb_read_nf4(st, W_NAME, 128, 64, &back);
    cr_assert_eq(rc, LT_ERR_MODEL);
    cr_assert(strstr(lt_error_message(), "shape [64,128], expected [128, 64] from config.json"),
              "%s", lt_error_message());
    cr_assert(strstr(lt_error_message(), path));
    /* a different element count fails on the codes first */
    rc = lt_bnb_read_nf4(st, W_NAME, 64, 64, &back);
    cr_assert_eq(rc, LT_ERR_MODEL);
    cr_assert(strstr(lt_error_message(), W_NAME), "%s", lt_error_message());
    rc = lt_bnb_read_nf4(st, "model.layers.0.mlp.up_proj.weight", 64, 128, &back);
    cr_assert_eq(rc, LT_ERR_MODEL);
    cr_assert(strstr(lt_error_message(), "'model.layers.0.mlp.up_proj.weight' is missing"));
    cr_assert(!lt_bnb_is_quantized(st, "model.layers.0.mlp.up_proj.weight"));
    lt_safetensors_close(st);
    lt_nf4_free(&q);
}

Test(bnb, fp4_weight_rejected, .init = setup, .fini = teardown) {
    lt_tensor q, back;
    make_nf4(&q, NULL, 64, 128, 64, false, 5);
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    write_one(good, &q);
    /* the same tensors with the packed state renamed as an fp4 one */
    lt_safetensors *st;
    cr_assert_eq(lt_safetensors_open(&st, good), LT_OK);
    lt_st_writer *w = lt_st_writer_new();
    for (int i = 0; i < st->n_tensors; i++) {
        const lt_st_tensor *t = &st->tensors[i];
        char nm[256];
        snprintf(nm, sizeof nm, "%s", t->name);
        char *p = strstr(nm, "__nf4");
        if (p) memcpy(p, "__fp4", 5);
        lt_st_writer_add(w, nm, t->dtype, t->ndim, t->shape, t->data);
    }
    cr_assert_eq(lt_st_writer_write(w, bad), LT_OK);
    lt_st_writer_free(w);
    lt_safetensors_close(st);
    cr_assert_eq(lt_safetensors_open(&st, bad), LT_OK);
    cr_assert(lt_bnb_is_quantized(st, W_NAME));
    cr_assert_eq(lt_bnb_read_nf4(st, W_NAME, 64, 128, &back), LT_ERR_MODEL);
    cr_assert(strstr(lt_error_message(), "FP4"), "%s", lt_error_message());
    lt_safetensors_close(st);
    lt_nf4_free(&q);
}

Test(bnb, write_rejects_non_nf4) {
    float x[64] = {0};
    lt_tensor t = {.dtype = LT_F32, .ndim = 2, .shape = {1, 64}, .data = x};
    lt_st_writer *w = lt_st_writer_new();
    cr_assert_eq(lt_bnb_write_nf4(w, W_NAME, &t), LT_ERR_RUNTIME);
    cr_assert(strstr(lt_error_message(), W_NAME));
    lt_bnb_writer_release(w);
    lt_bnb_writer_release(w); /* idempotent */
    lt_bnb_writer_release(NULL);
    lt_st_writer_free(w);
}

/* ---- config.json ---------------------------------------------------------------------------- */

static void write_json(const char *path, const char *text) {
    cr_assert_eq(lt_write_file_atomic(path, text, strlen(text)), LT_OK);
}

Test(bnb, config_roundtrip, .init = setup, .fini = teardown) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_json(path, "{\"model_type\": \"llama\", \"hidden_size\": 64}");
    bool found = true;
    lt_bnb_config c;
    cr_assert_eq(lt_bnb_config_read(path, &found, &c), LT_OK);
    cr_assert(!found);
    for (int dq = 0; dq < 2; dq++) {
        const lt_dtype dts[] = {LT_F32, LT_BF16, LT_F16};
        for (int k = 0; k < 3; k++) {
            lt_bnb_config in = {.double_quant = dq, .compute_dtype = dts[k]};
            cr_assert_eq(lt_bnb_config_add(path, &in), LT_OK, "%s", lt_error_message());
            cr_assert_eq(lt_bnb_config_read(path, &found, &c), LT_OK, "%s", lt_error_message());
            cr_assert(found);
            cr_assert_eq(c.double_quant, (bool)dq);
            cr_assert_eq(c.compute_dtype, dts[k]);
        }
    }
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    cr_assert(root);
    cr_assert_eq(json_integer_value(json_object_get(root, "hidden_size")), 64);
    json_t *q = json_object_get(root, "quantization_config");
    cr_assert_str_eq(json_string_value(json_object_get(q, "quant_method")), "bitsandbytes");
    cr_assert_str_eq(json_string_value(json_object_get(q, "bnb_4bit_quant_type")), "nf4");
    cr_assert_str_eq(json_string_value(json_object_get(q, "bnb_4bit_quant_storage")), "uint8");
    cr_assert(json_is_true(json_object_get(q, "load_in_4bit")));
    cr_assert(json_is_false(json_object_get(q, "load_in_8bit")));
    json_decref(root);
}

Test(bnb, config_foreign_rejected, .init = setup, .fini = teardown) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    const char *bad[][2] = {
        {"{\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4}}", "quant_method"},
        {"{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_8bit\": true}}",
         "load_in_8bit"},
        {"{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true}}",
         "bnb_4bit_quant_type"}, /* BitsAndBytesConfig's default quant type is fp4 */
        {"{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true, "
         "\"bnb_4bit_quant_type\": \"nf4\", \"bnb_4bit_quant_storage\": \"bfloat16\"}}",
         "bnb_4bit_quant_storage"},
        {"{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true, "
         "\"bnb_4bit_quant_type\": \"nf4\", \"bnb_4bit_compute_dtype\": \"int8\"}}",
         "bnb_4bit_compute_dtype"},
        {"{\"quantization_config\": 3}", "quantization_config"},
        {"{\"quantization_config\": ", "not readable JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_json(path, bad[i][0]);
        bool found;
        lt_bnb_config c;
        lt_status rc = lt_bnb_config_read(path, &found, &c);
        cr_assert_eq(rc, LT_ERR_MODEL, "case %zu", i);
        cr_assert(strstr(lt_error_message(), bad[i][1]), "case %zu: %s", i, lt_error_message());
        cr_assert(strstr(lt_error_message(), path), "case %zu: %s", i, lt_error_message());
    }
    /* what transformers writes with defaults filled in: accepted */
    write_json(path, "{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", "
               "\"_load_in_4bit\": true, \"bnb_4bit_quant_type\": \"nf4\", "
               "\"bnb_4bit_compute_dtype\": \"bfloat16\"}}");
    bool found;
    lt_bnb_config c;
    cr_assert_eq(lt_bnb_config_read(path, &found, &c), LT_OK, "%s", lt_error_message());
    cr_assert(found && !c.double_quant && c.compute_dtype == LT_BF16);
}
