/*
 * NF4 block quantization with optional double quantization, bit-compatible with bitsandbytes
 * (definitions and sources: quant.h). Also the row-tile dequantizer every quantized matmul reads.
 *
 * Invariants: an NF4 tensor's row length is a multiple of its block size (lt_nf4_check_block),
 * so blocks never straddle rows and any range of whole rows is a whole number of blocks and of
 * bytes. All arithmetic is F32 in the order bitsandbytes' CUDA kernels use (the build is ISO C11,
 * so GCC does not contract a*b+c into an FMA: -ffp-contract=off is implied by -std=c11).
 */
#include "quant.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Below this many elements OpenMP threads cost more than they save. */
#define PAR_MIN_ELEMS (1 << 16)

/* bitsandbytes functional.get_4bit_type("nf4") (= create_normal_map(offset=0.9677083) with
 * use_extra_value, normalized to [-1, 1]): quant.h LT_NF4_CODE_INIT. */
const float LT_NF4_CODE[16] = LT_NF4_CODE_INIT;

/* The comparison constants of csrc/kernels.cu dQuantizeNF4's decision tree, sorted: the tree
 * returns the number of these that x exceeds (x > t). They are the midpoints of neighbouring
 * codes printed as decimals; read as F32 literals (as nvcc reads them), four of them (indices 0,
 * 8, 12, 14) are one ulp away from the F32 midpoint (code[k] + code[k+1]) / 2 that
 * bitsandbytes' CPU backend uses as torch.bucketize boundaries, so the backends disagree for a
 * scaled value lying exactly between the two. lathe follows the kernel (test_nf4 covers both). */
const float LT_NF4_THRESH[15] = {
    -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
    -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
    0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
    0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
};

/* dQuantizeNF4: a 4-level binary descent over the sorted thresholds, equal to the tree (every
 * comparison is `x > t`, so a NaN — the all-zero block — ends at code 0, as on CUDA). */
static inline unsigned nf4_code(float x) {
    unsigned q = 0;
    for (unsigned step = 8; step > 0; step >>= 1)
        if (x > LT_NF4_THRESH[q + step - 1]) q += step;
    return q;
}

/* ---- the signed dynamic map ------------------------------------------------------------------ */

/* torch.linspace(start, end, steps) for float32 on CPU (aten/src/ATen/native/cpu/
 * RangeFactoriesKernel.cpp linspace_kernel): step = (end - start) / (steps - 1) in F32; index i
 * below steps/2 is start + step·i, the rest end - step·(steps - 1 - i). torch builds that kernel
 * per CPU capability (AVX2, AVX-512) with FMA contraction, so each value is ONE rounding of the
 * exact start + step·i: fmaf here. test_nf4 checks the resulting map against bitsandbytes' own on
 * an AVX-512 torch, all 256 entries bit for bit. */
static void linspace_f32(float start, float end, int steps, float *out) {
    const float step = (end - start) / (float)(steps - 1);
    const int half = steps / 2;
    for (int i = 0; i < steps; i++)
        out[i] = i < half ? fmaf(step, (float)i, start) : fmaf(-step, (float)(steps - 1 - i), end);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for i = 0..6, the
 * 2^i + 1 linspace(0.1, 1) boundaries give 2^i means (b[k] + b[k+1]) / 2; each mean times
 * ±10^(i-6) (a Python float, which torch rounds to F32 before the F32 multiply) is a map entry;
 * then 0 and 1; 2·127 + 2 = 256 entries, sorted. (additional_items = 2^(7-7) - 1 = 0.) */
static void build_dynamic_map(float *map) {
    int n = 0;
    float b[65];
    for (int i = 0; i < 7; i++) {
        const int items = (1 << i) + 1;
        linspace_f32(0.1f, 1.0f, items, b);
        const float scale = (float)pow(10.0, (double)(i - 6));
        for (int k = 0; k + 1 < items; k++) {
            const float mean = (b[k] + b[k + 1]) / 2.0f;
            map[n++] = scale * mean;
            map[n++] = -scale * mean;
        }
    }
    map[n++] = 0.0f;
    map[n++] = 1.0f;
    LT_ASSERT(n == 256);
    qsort(map, 256, sizeof *map, cmp_float);
}

static float dynamic_map[256];

static void dynamic_map_init(void) { build_dynamic_map(dynamic_map); }

const float *lt_quant_dynamic_map(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, dynamic_map_init);
    return dynamic_map;
}

/* csrc/kernels.cu dQuantize<STOCHASTIC=0>: a 7-step binary search over the 256 sorted map
 * entries starting at index 127 (steps 64, 32, ..., 1), remembering the last index probed from
 * below (lower) and from above (upper), then a midpoint decision against the last probe `val`:
 * above val, go to upper only when x > (upper + val)/2; at or below val, go to lower only when
 * x < (lower + val)/2. So a value exactly on a midpoint takes the last probed entry. Index 255
 * (1.0) is reachable only as the initial upper bound, as in the kernel. */
static inline uint8_t dyn_code(const float *map, float x) {
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = -1.0f, upper = 1.0f;
    float val = map[pivot];
    for (int i = 64; i > 0; i >>= 1) {
        if (x > val) {
            lower_pivot = pivot;
            lower = val;
            pivot += i;
        } else {
            upper_pivot = pivot;
            upper = val;
            pivot -= i;
        }
        val = map[pivot];
    }
    if (upper_pivot == 255) upper = map[255];
    if (lower_pivot == 0) lower = map[0];
    if (x > val) {
        const float mid = (upper + val) * 0.5f;
        return (uint8_t)(x > mid ? upper_pivot : pivot);
    }
    const float mid = (lower + val) * 0.5f;
    return (uint8_t)(x < mid ? lower_pivot : pivot);
}

/* ---- quantize ------------------------------------------------------------------------------- */

double lt_nf4_bits_per_param(int64_t blocksize, bool double_quant) {
    LT_ASSERT(blocksize > 0);
    const double B = (double)blocksize;
    return double_quant ? 4.0 + 8.0 / B + 32.0 / (B * LT_NF4_DQ_BLOCK) : 4.0 + 32.0 / B;
}

lt_status lt_nf4_check_block(int64_t blocksize, int64_t row, const char *name) {
    const bool pow2 = blocksize > 0 && (blocksize & (blocksize - 1)) == 0;
    if (!pow2 || blocksize < LT_NF4_BLOCK_MIN || blocksize > LT_NF4_BLOCK_MAX)
        return lt_error_set(LT_ERR_USAGE,
                            "%s: NF4 block size %lld is not a power of two in [%d, %d] "
                            "(bitsandbytes' block sizes; the default is %d)",
                            name ? name : "tensor", (long long)blocksize, LT_NF4_BLOCK_MIN,
                            LT_NF4_BLOCK_MAX, LT_NF4_BLOCK_DEFAULT);
    if (row <= 0 || row % blocksize != 0)
        return lt_error_set(LT_ERR_USAGE,
                            "%s: NF4 block size %lld does not divide its row length %lld "
                            "(blocks may not straddle rows; choose a smaller power of two)",
                            name ? name : "tensor", (long long)blocksize, (long long)row);
    return LT_OK;
}

void lt_nf4_quantize_blocks(const float *src, int64_t n, int64_t blocksize, uint8_t *codes,
                            float *absmax) {
    LT_ASSERT(blocksize >= 2 && blocksize % 2 == 0 && n >= 0 && n % blocksize == 0);
    const int64_t nb = n / blocksize;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
    for (int64_t b = 0; b < nb; b++) {
        const float *x = src + b * blocksize;
        float amax = 0.0f;
        for (int64_t i = 0; i < blocksize; i++) amax = fmaxf(amax, fabsf(x[i]));
        absmax[b] = amax;
        const float inv = 1.0f / amax; /* +inf for an all-zero block: see quant.h */
        uint8_t *q = codes + b * (blocksize / 2);
        for (int64_t j = 0; j < blocksize / 2; j++)
            q[j] = (uint8_t)(nf4_code(x[2 * j] * inv) << 4 | nf4_code(x[2 * j + 1] * inv));
    }
}

void lt_quantize_blockwise_dynamic(const float *src, int64_t n, int64_t blocksize,
                                   uint8_t *codes, float *absmax) {
    LT_ASSERT(blocksize > 0 && n >= 0);
    const float *map = lt_quant_dynamic_map();
    const int64_t nb = (n + blocksize - 1) / blocksize;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
    for (int64_t b = 0; b < nb; b++) {
        const int64_t i0 = b * blocksize, i1 = i0 + blocksize < n ? i0 + blocksize : n;
        float amax = 0.0f;
        for (int64_t i = i0; i < i1; i++) amax = fmaxf(amax, fabsf(src[i]));
        absmax[b] = amax;
        const float inv = 1.0f / amax;
        for (int64_t i = i0; i < i1; i++) codes[i] = dyn_code(map, src[i] * inv);
    }
}

void lt_nf4_free(lt_tensor *t) {
    if (!t) return;
    lt_nf4_state *st = (lt_nf4_state *)t->quant;
    if (st) {
        free(st->absmax);
        free(st->absmax_q);
        free(st->absmax2);
        free(st);
    }
    free(t->data);
    t->data = NULL;
    t->quant = NULL;
}

lt_status lt_nf4_quantize(lt_tensor *out, const lt_tensor *src, int64_t blocksize,
                          bool double_quant) {
    LT_ASSERT(src && src->dtype == LT_F32 && src->ndim >= 1);
    lt_status st = lt_nf4_check_block(blocksize, src->shape[src->ndim - 1], src->name);
    if (st != LT_OK) return st;
    const int64_t n = lt_tensor_numel(src), nb = n / blocksize;
    memset(out, 0, sizeof *out);
    out->dtype = LT_NF4;
    out->device = LT_CPU;
    lt_tensor_set_shape(out, src->ndim, src->shape);
    out->name = src->name;

    lt_nf4_state *q = lt_xcalloc(1, sizeof *q);
    q->blocksize = blocksize;
    q->n_blocks = nb;
    q->double_quant = double_quant;
    out->quant = q;
    out->data = lt_alloc_big((size_t)n / 2, src->name ? src->name : "NF4 codes");
    float *absmax = lt_alloc_big((size_t)nb * sizeof(float), "NF4 absmax");
    if (!out->data || !absmax) {
        free(absmax);
        lt_nf4_free(out);
        return LT_ERR_OOM;
    }
    lt_nf4_quantize_blocks(lt_f32(src), n, blocksize, out->data, absmax);
    if (!double_quant) {
        q->absmax = absmax;
        return LT_OK;
    }

    double sum = 0.0;
    for (int64_t b = 0; b < nb; b++) sum += absmax[b];
    q->offset = (float)(sum / (double)nb);
    for (int64_t b = 0; b < nb; b++) absmax[b] -= q->offset; /* F32, as torch's `_absmax - offset` */
    const int64_t nb2 = (nb + LT_NF4_DQ_BLOCK - 1) / LT_NF4_DQ_BLOCK;
    q->absmax_q = lt_alloc_big((size_t)nb, "NF4 absmax codes");
    q->absmax2 = lt_alloc_big((size_t)nb2 * sizeof(float), "NF4 nested absmax");
    if (!q->absmax_q || !q->absmax2) {
        free(absmax);
        lt_nf4_free(out);
        return LT_ERR_OOM;
    }
    lt_quantize_blockwise_dynamic(absmax, nb, LT_NF4_DQ_BLOCK, q->absmax_q, q->absmax2);
    free(absmax);
    return LT_OK;
}

/* ---- dequantize ----------------------------------------------------------------------------- */

float lt_nf4_block_absmax(const lt_nf4_state *st, int64_t b) {
    return lt_nf4_absmax_at(st, st->double_quant ? lt_quant_dynamic_map() : NULL, b);
}

void lt_nf4_dequant_range(const uint8_t *codes, const lt_nf4_state *st, int64_t first, int64_t n,
                          float *dst) {
    const int64_t B = st->blocksize;
    LT_ASSERT(first >= 0 && n >= 0 && first % B == 0 && n % B == 0);
    LT_ASSERT((first + n) / B <= st->n_blocks);
    const int64_t b0 = first / B, nb = n / B;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
    for (int64_t k = 0; k < nb; k++) {
        const float a = lt_nf4_block_absmax(st, b0 + k);
        const uint8_t *q = codes + (b0 + k) * (B / 2);
        float *y = dst + k * B;
        for (int64_t j = 0; j < B / 2; j++) {
            y[2 * j] = LT_NF4_CODE[q[j] >> 4] * a;
            y[2 * j + 1] = LT_NF4_CODE[q[j] & 15] * a;
        }
    }
}

void lt_dequant_rows(const lt_tensor *W, int64_t row0, int64_t nrows, float *dst) {
    LT_ASSERT(W->ndim == 2 && row0 >= 0 && nrows >= 0 && row0 + nrows <= W->shape[0]);
    const int64_t cols = W->shape[1];
    const int64_t first = row0 * cols, n = nrows * cols;
    if (W->dtype == LT_NF4) {
        LT_ASSERT(W->quant != NULL);
        lt_nf4_dequant_range(W->data, W->quant, first, n, dst);
        return;
    }
    const int64_t be = lt_dtype_block_elems(W->dtype);
    LT_ASSERT(cols % be == 0);
    const uint8_t *src = (const uint8_t *)W->data + (size_t)(first / be) * lt_dtype_block_bytes(W->dtype);
    lt_dequant(W->dtype, src, dst, n);
}
