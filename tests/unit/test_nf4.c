/*
 * NF4 and double quantization against bitsandbytes' own output (tests/data/nf4/, written by
 * tools/gen_nf4_refs.py, which names the bitsandbytes and torch versions in refs.json): the
 * dynamic map, packed codes byte for byte, absmax, nested absmax and dequantized values exactly;
 * plus the code-book / threshold relation, nibble order, block-size validation, bits/param and
 * whole-row-range dequantization of NF4 and Q8_0 tensors.
 */
#include <criterion/criterion.h>

#include "quant/quant.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REF_DIR "tests/data/nf4/"
/* Our double-quant offset vs torch's F32 absmax.mean(): both round the same mean of a few
 * hundred positive floats, ours once from a double sum, torch's after F32 partial sums in its
 * own (vectorized, machine-dependent) order; its relative error is a few F32 ulps at most for
 * these sizes (288 terms). Measured: 0 or 1 ulp. 4 ulps still catches any wrong formula
 * (a wrong count or a missed block moves the mean by ~1e-3 relative, 10^4 ulps). */
#define OFFSET_ULPS 4

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void *read_ref(const char *name, size_t want) {
    char path[512];
    snprintf(path, sizeof path, REF_DIR "%s", name);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s (run from the repository root)", path);
    void *buf = malloc(want ? want : 1);
    size_t got = fread(buf, 1, want, f);
    int extra = fgetc(f);
    fclose(f);
    cr_assert(got == want && extra == EOF, "%s: expected %zu bytes", path, want);
    return buf;
}

static json_t *load_refs(void) {
    json_error_t err;
    json_t *root = json_load_file(REF_DIR "refs.json", 0, &err);
    cr_assert(root, "refs.json: %s (line %d)", err.text, err.line);
    return root;
}

/* Equal as floats, bit for bit except that ±0 match (an all-zero NF4 block dequantizes to -0.0
 * on CUDA and to +0.0 on bitsandbytes' CPU backend: quant.h). */
static void expect_same_floats(const float *got, const float *want, int64_t n, const char *what,
                               const char *cas) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(got[i] == want[i] && (got[i] == 0.0f || bits(got[i]) == bits(want[i])))) {
            if (bad++ < 5)
                cr_expect(0, "%s %s[%lld]: %.9g (0x%08x) != %.9g (0x%08x)", cas, what,
                          (long long)i, got[i], bits(got[i]), want[i], bits(want[i]));
        }
    cr_expect_eq(bad, 0, "%s %s: %lld of %lld differ", cas, what, (long long)bad, (long long)n);
}

Test(nf4, code_book_and_thresholds) {
    for (int k = 0; k < 15; k++) {
        cr_expect(LT_NF4_CODE[k] < LT_NF4_CODE[k + 1]);
        /* dQuantizeNF4's constants are the midpoints as decimals: read as F32 they are the F32
         * midpoint or its neighbour (k = 0, 8, 12, 14), so the tree is nearest-code */
        const float mid = (LT_NF4_CODE[k] + LT_NF4_CODE[k + 1]) / 2.0f;
        const bool off = k == 0 || k == 8 || k == 12 || k == 14;
        cr_expect_eq(bits(LT_NF4_THRESH[k]) == bits(mid), !off, "threshold %d", k);
        cr_expect(nextafterf(mid, -2.0f) <= LT_NF4_THRESH[k] &&
                  LT_NF4_THRESH[k] <= nextafterf(mid, 2.0f), "threshold %d", k);
    }
    cr_expect_eq(LT_NF4_CODE[0], -1.0f);
    cr_expect_eq(LT_NF4_CODE[7], 0.0f);
    cr_expect_eq(LT_NF4_CODE[15], 1.0f);
}

Test(nf4, nibble_order_and_ties) {
    /* absmax 1; element 2j in the high nibble. A value exactly on a threshold takes the lower
     * code (x > t goes up), one float above takes the upper. */
    float x[64] = {0};
    x[0] = 1.0f;              /* code 15 */
    x[1] = -0.5250730514526367f; /* code 2 exactly */
    x[2] = LT_NF4_THRESH[7];  /* tie between 7 and 8 -> 7 */
    x[3] = nextafterf(LT_NF4_THRESH[7], 1.0f); /* -> 8 */
    x[4] = -1.0f;             /* code 0 */
    uint8_t q[32];
    float amax;
    lt_nf4_quantize_blocks(x, 64, 64, q, &amax);
    cr_expect_eq(amax, 1.0f);
    cr_expect_eq(q[0], 0xF2);
    cr_expect_eq(q[1], 0x78);
    cr_expect_eq(q[2], 0x07); /* -1 then 0 */
    for (int j = 3; j < 32; j++) cr_expect_eq(q[j], 0x77, "zero pairs byte %d", j);
}

Test(nf4, block_size_validation) {
    cr_expect_eq(lt_nf4_check_block(64, 576, "w"), LT_OK);
    cr_expect_eq(lt_nf4_check_block(32, 32, "w"), LT_OK);
    cr_expect_eq(lt_nf4_check_block(4096, 8192, "w"), LT_OK);
    cr_expect_eq(lt_nf4_check_block(128, 576, "model.layers.0.mlp.down_proj.weight"),
                 LT_ERR_USAGE);
    cr_expect(strstr(lt_error_message(), "model.layers.0.mlp.down_proj.weight") != NULL);
    cr_expect(strstr(lt_error_message(), "576") != NULL);
    cr_expect_eq(lt_nf4_check_block(48, 96, "w"), LT_ERR_USAGE);   /* not a power of two */
    cr_expect_eq(lt_nf4_check_block(16, 64, "w"), LT_ERR_USAGE);   /* below bnb's range */
    cr_expect_eq(lt_nf4_check_block(8192, 8192, "w"), LT_ERR_USAGE); /* above */
    lt_tensor src = {0}, out;
    float data[96] = {0};
    src.dtype = LT_F32;
    lt_tensor_set_shape(&src, 2, (int64_t[]){2, 48});
    src.data = data;
    src.name = "blk.3.ffn_up";
    cr_expect_eq(lt_nf4_quantize(&out, &src, 32, false), LT_ERR_USAGE);
    cr_expect(strstr(lt_error_message(), "blk.3.ffn_up") != NULL);
}

Test(nf4, bits_per_param) {
    cr_expect_float_eq(lt_nf4_bits_per_param(64, false), 4.5, 1e-12);
    cr_expect_float_eq(lt_nf4_bits_per_param(64, true), 4.0 + 8.0 / 64 + 32.0 / (64 * 256), 1e-12);
    cr_expect(fabs(lt_nf4_bits_per_param(64, true) - 4.127) < 5e-4);
}

Test(nf4, dynamic_map_matches_bitsandbytes) {
    json_t *root = load_refs();
    float *want = read_ref(json_string_value(json_object_get(root, "dynamic_map")), 256 * 4);
    const float *map = lt_quant_dynamic_map();
    for (int i = 0; i < 256; i++)
        cr_expect_eq(bits(map[i]), bits(want[i]), "map[%d] %.9g != %.9g", i, map[i], want[i]);
    free(want);
    json_decref(root);
}

Test(nf4, matches_bitsandbytes) {
    json_t *root = load_refs();
    json_t *cases = json_object_get(root, "cases");
    cr_assert(json_array_size(cases) >= 6);
    size_t ci;
    json_t *c;
    json_array_foreach(cases, ci, c) {
        const char *cas = json_string_value(json_object_get(c, "name"));
        json_t *shape = json_object_get(c, "shape");
        const int64_t rows = json_integer_value(json_array_get(shape, 0));
        const int64_t cols = json_integer_value(json_array_get(shape, 1));
        const int64_t n = rows * cols;
        const int64_t B = json_integer_value(json_object_get(c, "blocksize"));
        const bool dq = json_is_true(json_object_get(c, "double_quant"));
        const int64_t nb = n / B;
        float *x = read_ref(json_string_value(json_object_get(c, "input")), (size_t)n * 4);
        uint8_t *want_codes = read_ref(json_string_value(json_object_get(c, "codes")), (size_t)n / 2);
        float *want_deq = read_ref(json_string_value(json_object_get(c, "deq")), (size_t)n * 4);
        /* bitsandbytes' CPU output equals the kernel-rule reference except in all-zero blocks
         * (7 vs 0) and at the listed elements between an F32 midpoint and the kernel's literal
         * threshold (quant.h) */
        uint8_t *cpu_codes =
            read_ref(json_string_value(json_object_get(c, "codes_cpu")), (size_t)n / 2);
        uint8_t *expl = calloc((size_t)n, 1);
        size_t zi;
        json_t *zv;
        json_array_foreach(json_object_get(c, "zero_blocks"), zi, zv) {
            int64_t b = json_integer_value(zv);
            memset(expl + b * B, 1, (size_t)B);
            for (int64_t j = 0; j < B / 2; j++)
                cr_expect(cpu_codes[b * B / 2 + j] == 0x77 && want_codes[b * B / 2 + j] == 0x00,
                          "%s: zero block %lld", cas, (long long)b);
        }
        json_array_foreach(json_object_get(c, "cpu_threshold_ties"), zi, zv)
            expl[json_integer_value(zv)] = 1;
        for (int64_t e = 0; e < n; e++) {
            const int sh = e % 2 ? 0 : 4;
            const int a = cpu_codes[e / 2] >> sh & 15, k = want_codes[e / 2] >> sh & 15;
            if (!expl[e]) cr_expect_eq(a, k, "%s: element %lld unexplained CPU/kernel difference",
                                       cas, (long long)e);
        }
        free(cpu_codes);
        free(expl);

        lt_tensor src = {0}, t;
        src.dtype = LT_F32;
        lt_tensor_set_shape(&src, 2, (int64_t[]){rows, cols});
        src.data = x;
        src.name = cas;
        cr_assert_eq(lt_nf4_quantize(&t, &src, B, dq), LT_OK, "%s: %s", cas, lt_error_message());
        const lt_nf4_state *st = t.quant;
        cr_expect_eq(t.dtype, LT_NF4);
        cr_expect_eq(st->n_blocks, nb);
        cr_expect(memcmp(t.data, want_codes, (size_t)n / 2) == 0, "%s: packed codes differ", cas);

        float *deq = malloc((size_t)n * 4);
        if (!dq) {
            float *want_absmax =
                read_ref(json_string_value(json_object_get(c, "absmax")), (size_t)nb * 4);
            expect_same_floats(st->absmax, want_absmax, nb, "absmax", cas);
            free(want_absmax);
        } else {
            const int64_t nb2 = (nb + 255) / 256;
            float *a0 = read_ref(json_string_value(json_object_get(c, "absmax_f32_nodq")),
                                 (size_t)nb * 4);
            uint8_t *want_q =
                read_ref(json_string_value(json_object_get(c, "absmax_q")), (size_t)nb);
            float *want_a2 =
                read_ref(json_string_value(json_object_get(c, "absmax2")), (size_t)nb2 * 4);
            uint32_t ob = (uint32_t)strtoul(
                json_string_value(json_object_get(c, "offset_bits")), NULL, 16);
            float offset;
            memcpy(&offset, &ob, 4);
            /* the offset is torch's F32 mean, summed in torch's own order; ours is the double
             * sum rounded once, so the two may differ by rounding in the last place */
            const float ulp = nextafterf(fabsf(offset), INFINITY) - fabsf(offset);
            cr_expect(fabsf(st->offset - offset) <= OFFSET_ULPS * ulp,
                      "%s: offset %.9g vs torch's %.9g", cas, st->offset, offset);
            /* second level from bitsandbytes' own absmax - offset, exactly */
            float *v = malloc((size_t)nb * 4);
            for (int64_t b = 0; b < nb; b++) v[b] = a0[b] - offset;
            uint8_t *q = malloc((size_t)nb);
            float *a2 = malloc((size_t)nb2 * 4);
            lt_quantize_blockwise_dynamic(v, nb, LT_NF4_DQ_BLOCK, q, a2);
            cr_expect(memcmp(q, want_q, (size_t)nb) == 0, "%s: absmax codes differ", cas);
            expect_same_floats(a2, want_a2, nb2, "nested absmax", cas);
            /* the full path: identical state whenever the offsets agree */
            if (bits(st->offset) == ob) {
                cr_expect(memcmp(st->absmax_q, want_q, (size_t)nb) == 0, "%s: state codes", cas);
                expect_same_floats(st->absmax2, want_a2, nb2, "state nested absmax", cas);
            }
            /* dequantization of bitsandbytes' state (its offset, the codes above): exact */
            lt_nf4_state bst = *st;
            bst.absmax_q = q;
            bst.absmax2 = a2;
            bst.offset = offset;
            lt_nf4_dequant_range(t.data, &bst, 0, n, deq);
            expect_same_floats(deq, want_deq, n, "deq", cas);
            if (getenv("TL_VERBOSE"))
                fprintf(stderr, "%s: offset ours 0x%08x torch 0x%08x\n", cas, bits(st->offset), ob);
            free(v), free(q), free(a2), free(a0), free(want_q), free(want_a2);
        }
        if (!dq) {
            lt_nf4_dequant_range(t.data, st, 0, n, deq);
            expect_same_floats(deq, want_deq, n, "deq", cas);
        }
        /* a range of whole rows dequantizes alone to the same values */
        if (rows > 2 && !dq) {
            lt_dequant_rows(&t, 1, rows - 2, deq);
            expect_same_floats(deq, want_deq + cols, (rows - 2) * cols, "row range", cas);
        }
        free(deq);
        lt_nf4_free(&t);
        cr_expect(t.data == NULL && t.quant == NULL);
        free(x), free(want_codes), free(want_deq);
    }
    json_decref(root);
}

Test(nf4, dequant_rows_q8_0) {
    enum { R = 5, C = 64 };
    float x[R * C], full[R * C], part[3 * C];
    for (int i = 0; i < R * C; i++) x[i] = sinf(0.37f * (float)i) * (1.0f + (float)(i % 7));
    uint8_t q[R * C / 32 * 34];
    lt_quantize_q8_0(x, q, R * C);
    lt_tensor W = {0};
    W.dtype = LT_Q8_0;
    lt_tensor_set_shape(&W, 2, (int64_t[]){R, C});
    W.data = q;
    lt_dequant(LT_Q8_0, q, full, R * C);
    lt_dequant_rows(&W, 2, 3, part);
    cr_expect(memcmp(part, full + 2 * C, sizeof part) == 0);
}
