/* quant: ggml block dequantization against hand-computed values, Q8_0 quantization error bound,
 * and the core F16/BF16 scalar conversions on their edge cases. */
#include <criterion/criterion.h>

#include "quant/quant.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

Test(quant, q8_0_hand) {
    uint8_t blk[2 * 34];
    put16(blk, 0x3800); /* d = 0.5 */
    for (int i = 0; i < 32; i++) blk[2 + i] = (uint8_t)(int8_t)(i - 16);
    blk[2 + 0] = (uint8_t)(int8_t)-128;
    blk[2 + 31] = 127;
    put16(blk + 34, 0xC000); /* d = -2 */
    for (int i = 0; i < 32; i++) blk[36 + i] = (uint8_t)(int8_t)(3 * (i % 5) - 6);
    float y[64];
    lt_dequant(LT_Q8_0, blk, y, 64);
    cr_expect_eq(y[0], -64.0f);
    cr_expect_eq(y[1], -7.5f);  /* 0.5 * -15 */
    cr_expect_eq(y[16], 0.0f);
    cr_expect_eq(y[17], 0.5f);
    cr_expect_eq(y[31], 63.5f);
    for (int i = 1; i < 31; i++) cr_expect_eq(y[i], 0.5f * (float)(i - 16), "y[%d]", i);
    cr_expect_eq(y[32], 12.0f);  /* -2 * (0 - 6) */
    cr_expect_eq(y[33], 6.0f);   /* -2 * (3 - 6) */
    cr_expect_eq(y[36], -12.0f); /* -2 * (12 - 6) */
    for (int i = 0; i < 32; i++) cr_expect_eq(y[32 + i], -2.0f * (float)(3 * (i % 5) - 6));
}

Test(quant, q4_0_hand) {
    uint8_t blk[18];
    put16(blk, 0x4000); /* d = 2 */
    for (int i = 0; i < 16; i++) blk[2 + i] = (uint8_t)(i | ((15 - i) << 4));
    blk[2 + 3] = 0x9F; /* element 3 = nibble 15 -> 2*(15-8) = 14; element 19 = nibble 9 -> 2 */
    float y[32];
    lt_dequant(LT_Q4_0, blk, y, 32);
    cr_expect_eq(y[0], -16.0f); /* nibble 0 -> 2 * -8 */
    cr_expect_eq(y[1], -14.0f);
    cr_expect_eq(y[3], 14.0f);
    cr_expect_eq(y[15], 14.0f);
    cr_expect_eq(y[16], 14.0f); /* high nibble of byte 0 = 15 */
    cr_expect_eq(y[19], 2.0f);
    cr_expect_eq(y[31], -16.0f); /* high nibble of byte 15 = 0 */
    for (int i = 0; i < 16; i++) {
        if (i == 3) continue;
        cr_expect_eq(y[i], 2.0f * (float)(i - 8), "low %d", i);
        cr_expect_eq(y[16 + i], 2.0f * (float)(15 - i - 8), "high %d", i);
    }
}

Test(quant, q4_1_hand) {
    uint8_t blk[2 * 20];
    put16(blk, 0x3400);     /* d = 0.25 */
    put16(blk + 2, 0xBC00); /* m = -1 */
    for (int i = 0; i < 16; i++) blk[4 + i] = (uint8_t)(i | ((15 - i) << 4));
    put16(blk + 20, 0x3C00); /* d = 1 */
    put16(blk + 22, 0x4900); /* m = 10 */
    memset(blk + 24, 0x5A, 16);
    float y[64];
    lt_dequant(LT_Q4_1, blk, y, 64);
    cr_expect_eq(y[0], -1.0f);
    cr_expect_eq(y[15], 2.75f);  /* 0.25 * 15 - 1 */
    cr_expect_eq(y[16], 2.75f);  /* high nibble of byte 0 = 15 */
    cr_expect_eq(y[31], -1.0f);
    cr_expect_eq(y[5], 0.25f);   /* 0.25 * 5 - 1 */
    for (int i = 0; i < 16; i++) {
        cr_expect_eq(y[i], 0.25f * (float)i - 1.0f);
        cr_expect_eq(y[16 + i], 0.25f * (float)(15 - i) - 1.0f);
    }
    for (int i = 0; i < 16; i++) {
        cr_expect_eq(y[32 + i], 20.0f, "low nibble 0xA = 10 -> 1*10 + 10"); /* 0x5A low = 10 */
        cr_expect_eq(y[48 + i], 15.0f, "high nibble 5 -> 5 + 10");
    }
}

Test(quant, dequant_f16_bf16_f32) {
    uint16_t h[4] = {0x3C00, 0xC000, 0x0001, 0x7C00};
    float y[4];
    lt_dequant(LT_F16, h, y, 4);
    cr_expect_eq(y[0], 1.0f);
    cr_expect_eq(y[1], -2.0f);
    cr_expect_eq(y[2], ldexpf(1.0f, -24));
    cr_expect(isinf(y[3]) && y[3] > 0);
    uint16_t b[3] = {0x3F80, 0xC040, 0x0001};
    lt_dequant(LT_BF16, b, y, 3);
    cr_expect_eq(y[0], 1.0f);
    cr_expect_eq(y[1], -3.0f);
    cr_expect_eq(y[2], from_bits(0x00010000u));
    const float f[3] = {1.5f, -0.0f, 7e-42f};
    lt_dequant(LT_F32, f, y, 3);
    cr_expect(memcmp(f, y, sizeof f) == 0);
}

/* Large inputs take the OpenMP path: it must equal block-by-block dequantization. */
Test(quant, parallel_equals_serial) {
    const int64_t nb = 8192, n = nb * 32;
    const lt_dtype types[3] = {LT_Q8_0, LT_Q4_0, LT_Q4_1};
    for (int k = 0; k < 3; k++) {
        size_t bb = lt_dtype_block_bytes(types[k]);
        uint8_t *src = malloc((size_t)nb * bb);
        uint32_t s = 12345;
        for (size_t i = 0; i < (size_t)nb * bb; i++) src[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 16);
        for (int64_t b = 0; b < nb; b++) {
            put16(src + b * bb, lt_f32_to_f16(0.001f * (float)(b % 97 + 1)));
            if (types[k] == LT_Q4_1) put16(src + b * bb + 2, lt_f32_to_f16(-0.01f * (float)(b % 13)));
        }
        float *all = malloc((size_t)n * 4), one[32];
        lt_dequant(types[k], src, all, n);
        for (int64_t b = 0; b < nb; b++) {
            lt_dequant(types[k], src + b * bb, one, 32);
            cr_assert(memcmp(one, all + b * 32, sizeof one) == 0, "%s block %lld",
                      lt_dtype_name(types[k]), (long long)b);
        }
        free(src);
        free(all);
    }
}

Test(quant, q8_0_quantize_reference) {
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = (float)i - 16.0f; /* amax 16 at i = 0 */
    uint8_t blk[34];
    lt_quantize_q8_0(x, blk, 32);
    uint16_t dh;
    memcpy(&dh, blk, 2);
    cr_expect_eq(dh, lt_f32_to_f16(16.0f / 127.0f), "d = amax / 127 stored as F16");
    const int8_t *q = (const int8_t *)(blk + 2);
    cr_expect_eq(q[0], -127);
    cr_expect_eq(q[16], 0);
    for (int i = 0; i < 32; i++)
        cr_expect_eq(q[i], (int8_t)roundf(x[i] * (127.0f / 16.0f)), "q[%d]", i);
    float zero[32] = {0};
    lt_quantize_q8_0(zero, blk, 32);
    float y[32];
    lt_dequant(LT_Q8_0, blk, y, 32);
    for (int i = 0; i < 32; i++) cr_expect_eq(y[i], 0.0f);
}

/* |x - dequant(quant(x))| <= d/2 + 127·|d - f16(d)| per element: half a step from rounding q,
 * plus the scale's own F16 rounding magnified by at most |q| = 127 (quant.h). */
Test(quant, q8_0_round_trip_error) {
    const int64_t n = 32 * 4096;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    uint8_t *q = malloc((size_t)(n / 32) * 34);
    uint32_t s = 7;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        float u = (float)(s >> 8) / 16777216.0f - 0.5f;
        x[i] = u * powf(10.0f, (float)((i / 32) % 9) - 4.0f); /* scales 1e-4 .. 1e4 by block */
    }
    for (int i = 0; i < 32; i++) x[64 + i] = 0.0f; /* an all-zero block */
    lt_quantize_q8_0(x, q, n);
    lt_dequant(LT_Q8_0, q, y, n);
    for (int64_t b = 0; b < n / 32; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        float d = amax / 127.0f, d16 = lt_f16_to_f32(lt_f32_to_f16(d));
        float bound = d / 2.0f + 127.0f * fabsf(d - d16) + 1e-6f * amax;
        for (int i = 0; i < 32; i++) {
            float err = fabsf(x[b * 32 + i] - y[b * 32 + i]);
            cr_assert(err <= bound, "block %lld elem %d: x=%g y=%g err=%g bound=%g", (long long)b,
                      i, x[b * 32 + i], y[b * 32 + i], err, bound);
        }
    }
    free(x);
    free(y);
    free(q);
}

Test(quant, f16_edge_cases) {
    cr_expect_eq(lt_f32_to_f16(0.0f), 0x0000);
    cr_expect_eq(lt_f32_to_f16(-0.0f), 0x8000);
    cr_expect_eq(bits(lt_f16_to_f32(0x8000)), 0x80000000u, "-0 keeps its sign");
    cr_expect_eq(lt_f32_to_f16(ldexpf(1.0f, -24)), 0x0001, "smallest subnormal");
    cr_expect_eq(lt_f16_to_f32(0x0001), ldexpf(1.0f, -24));
    cr_expect_eq(lt_f16_to_f32(0x03FF), ldexpf(1023.0f, -24), "largest subnormal");
    cr_expect_eq(lt_f32_to_f16(ldexpf(1.0f, -14)), 0x0400, "smallest normal");
    cr_expect_eq(lt_f32_to_f16(ldexpf(1.0f, -26)), 0x0000, "below half the smallest subnormal");
    cr_expect_eq(lt_f32_to_f16(ldexpf(1.0f, -25)), 0x0000, "tie to even: 0");
    cr_expect_eq(lt_f32_to_f16(ldexpf(3.0f, -25)), 0x0002, "tie to even: 2");
    cr_expect_eq(lt_f32_to_f16(65504.0f), 0x7BFF, "max");
    cr_expect_eq(lt_f16_to_f32(0x7BFF), 65504.0f);
    cr_expect_eq(lt_f32_to_f16(65519.0f), 0x7BFF, "rounds down to max");
    cr_expect_eq(lt_f32_to_f16(65520.0f), 0x7C00, "rounds up to inf");
    cr_expect_eq(lt_f32_to_f16(INFINITY), 0x7C00);
    cr_expect_eq(lt_f32_to_f16(-INFINITY), 0xFC00);
    cr_expect_eq(lt_f32_to_f16(FLT_MAX), 0x7C00);
    cr_expect_eq(lt_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3C00, "tie to even: 1.0");
    cr_expect_eq(lt_f32_to_f16(1.0f + ldexpf(3.0f, -11)), 0x3C02, "tie to even: up");
    uint16_t hn = lt_f32_to_f16(NAN);
    cr_expect((hn & 0x7C00) == 0x7C00 && (hn & 0x03FF) != 0, "nan stays nan: %04x", hn);
    cr_expect(isnan(lt_f16_to_f32(0x7E00)));
    /* every F16 value survives F16 -> F32 -> F16 (NaNs as some NaN) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lt_f16_to_f32((uint16_t)h);
        uint16_t back = lt_f32_to_f16(f);
        if ((h & 0x7C00) == 0x7C00 && (h & 0x03FF))
            cr_assert(isnan(f) && (back & 0x7C00) == 0x7C00 && (back & 0x3FF), "nan %04x", h);
        else
            cr_assert_eq(back, h, "%04x -> %g -> %04x", h, f, back);
    }
}

Test(quant, bf16_edge_cases) {
    cr_expect_eq(lt_f32_to_bf16(0.0f), 0x0000);
    cr_expect_eq(lt_f32_to_bf16(-0.0f), 0x8000);
    cr_expect_eq(bits(lt_bf16_to_f32(0x8000)), 0x80000000u);
    cr_expect_eq(lt_f32_to_bf16(from_bits(0x00010000u)), 0x0001, "smallest subnormal");
    cr_expect_eq(lt_f32_to_bf16(from_bits(0x00008000u)), 0x0000, "tie to even: 0");
    cr_expect_eq(lt_f32_to_bf16(from_bits(0x00018000u)), 0x0002, "tie to even: 2");
    cr_expect_eq(lt_f32_to_bf16(1.0f + ldexpf(1.0f, -8)), 0x3F80, "tie to even: 1.0");
    cr_expect_eq(lt_f32_to_bf16(1.0f + ldexpf(3.0f, -8)), 0x3F82);
    cr_expect_eq(lt_f32_to_bf16(from_bits(0x7F7F0000u)), 0x7F7F, "max finite");
    cr_expect_eq(lt_f32_to_bf16(FLT_MAX), 0x7F80, "FLT_MAX rounds to inf");
    cr_expect_eq(lt_f32_to_bf16(INFINITY), 0x7F80);
    cr_expect_eq(lt_f32_to_bf16(-INFINITY), 0xFF80);
    uint16_t bn = lt_f32_to_bf16(from_bits(0x7F800001u)); /* nan with only low payload bits */
    cr_expect((bn & 0x7F80) == 0x7F80 && (bn & 0x7F) != 0, "nan stays nan: %04x", bn);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lt_bf16_to_f32((uint16_t)h);
        cr_assert_eq(bits(f), h << 16);
        uint16_t back = lt_f32_to_bf16(f);
        if ((h & 0x7F80) == 0x7F80 && (h & 0x7F))
            cr_assert(isnan(f) && (back & 0x7F80) == 0x7F80 && (back & 0x7F), "nan %04x", h);
        else
            cr_assert_eq(back, h, "%04x -> %g -> %04x", h, f, back);
    }
}
