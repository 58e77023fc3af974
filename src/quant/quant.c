/* Dequantization of F32/F16/BF16 and the ggml block formats Q8_0/Q4_0/Q4_1, and Q8_0
 * quantization. Layouts and formulas: quant.h (from ggml src/ggml-common.h, ggml-quants.c).
 * Invariant: n is a multiple of the block size of the dtype (asserted). */
#include "quant.h"

#include <math.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "lathe reads little-endian blocks");

/* Blocks per OpenMP chunk decision: below this many elements threads cost more than they save. */
#define PAR_MIN_ELEMS (1 << 16)

static inline uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static void deq_q8_0(const uint8_t *src, float *dst, int64_t nb) {
#pragma omp parallel for schedule(static) if (nb * LT_QK >= PAR_MIN_ELEMS)
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 34;
        float d = lt_f16_to_f32(rd16(blk));
        const int8_t *q = (const int8_t *)(blk + 2);
        float *y = dst + b * LT_QK;
        for (int i = 0; i < LT_QK; i++) y[i] = d * (float)q[i];
    }
}

static void deq_q4_0(const uint8_t *src, float *dst, int64_t nb) {
#pragma omp parallel for schedule(static) if (nb * LT_QK >= PAR_MIN_ELEMS)
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 18;
        float d = lt_f16_to_f32(rd16(blk));
        const uint8_t *qs = blk + 2;
        float *y = dst + b * LT_QK;
        for (int i = 0; i < LT_QK / 2; i++) {
            y[i] = d * (float)((int)(qs[i] & 15) - 8);
            y[i + LT_QK / 2] = d * (float)((int)(qs[i] >> 4) - 8);
        }
    }
}

static void deq_q4_1(const uint8_t *src, float *dst, int64_t nb) {
#pragma omp parallel for schedule(static) if (nb * LT_QK >= PAR_MIN_ELEMS)
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 20;
        float d = lt_f16_to_f32(rd16(blk));
        float m = lt_f16_to_f32(rd16(blk + 2));
        const uint8_t *qs = blk + 4;
        float *y = dst + b * LT_QK;
        for (int i = 0; i < LT_QK / 2; i++) {
            y[i] = d * (float)(qs[i] & 15) + m;
            y[i + LT_QK / 2] = d * (float)(qs[i] >> 4) + m;
        }
    }
}

static void deq_half(const uint8_t *src, float *dst, int64_t n, bool bf16) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = rd16(src + 2 * i);
        dst[i] = bf16 ? lt_bf16_to_f32(h) : lt_f16_to_f32(h);
    }
}

void lt_dequant(lt_dtype t, const void *src, float *dst, int64_t n) {
    LT_ASSERT(n >= 0);
    LT_ASSERT((unsigned)t < LT_DTYPE_COUNT && n % lt_dtype_block_elems(t) == 0);
    const uint8_t *s = src;
    switch (t) {
    case LT_F32: memcpy(dst, s, (size_t)n * sizeof(float)); break;
    case LT_F16: deq_half(s, dst, n, false); break;
    case LT_BF16: deq_half(s, dst, n, true); break;
    case LT_Q8_0: deq_q8_0(s, dst, n / LT_QK); break;
    case LT_Q4_0: deq_q4_0(s, dst, n / LT_QK); break;
    case LT_Q4_1: deq_q4_1(s, dst, n / LT_QK); break;
    default: LT_ASSERT(!"lt_dequant: dtype has no dequantizer");
    }
}

void lt_quantize_q8_0(const float *src, void *dst, int64_t n) {
    LT_ASSERT(n >= 0 && n % LT_QK == 0);
    int64_t nb = n / LT_QK;
    uint8_t *out = dst;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
    for (int64_t b = 0; b < nb; b++) {
        const float *x = src + b * LT_QK;
        float amax = 0.0f;
        for (int i = 0; i < LT_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t *blk = out + b * 34;
        uint16_t dh = lt_f32_to_f16(d);
        memcpy(blk, &dh, 2);
        int8_t *q = (int8_t *)(blk + 2);
        for (int i = 0; i < LT_QK; i++) q[i] = (int8_t)roundf(x[i] * id);
    }
}
