/*
 * quant.cuh — per-element dequantization of the block formats the CUDA linear reads, as
 * __host__ __device__ functions so the host test checks the exact code the kernels run.
 *
 * Q8_0 (ggml src/ggml-common.h block_q8_0): blocks of 32 elements, 34 bytes: f16 d (little
 * endian), int8 q[32]; x = d · q. Blocks need no alignment (bytes are read one at a time).
 *
 * NF4 (QLoRA, arXiv 2305.14314; bitsandbytes functional.py quantize_4bit / dequantize_4bit and
 * csrc/kernels.cu kDequantizeBlockwise): packed uint8 [n/2]; element 2k is the HIGH nibble of
 * byte k, element 2k+1 the low nibble; x = NF4[nibble] · absmax[i / blocksize] (blocksize 64).
 * With double quantization (compress_statistics) absmax itself is stored as uint8 codes
 * [n/blocksize] into a 256-entry code map (bitsandbytes create_dynamic_map), blockwise over
 * nested_blocksize (256) absmax values with f32 nested_absmax [ceil(n/blocksize/256)] and an f32
 * offset (the mean subtracted before nested quantization):
 *   absmax[b] = code[absmax_q[b]] · nested_absmax[b / nested_blocksize] + offset.
 */
#ifndef LATHE_CUDA_QUANT_CUH
#define LATHE_CUDA_QUANT_CUH

#include <stdint.h>

/* The NF4 code book (bitsandbytes functional.py get_4bit_type("nf4"), QLoRA appendix E). */
#define LT_NF4_CODE_INIT                                                                         \
    {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,                  \
     -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,                 \
     0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,    \
     0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f}

__host__ __device__ static inline float lt_half_bits_to_float(uint16_t h) {
    const uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
    uint32_t bits;
    if (e == 0) {
        if (m == 0) {
            bits = s;
        } else { /* subnormal: renormalize */
            int ee = -1;
            uint32_t mm = m;
            do {
                ee++;
                mm <<= 1;
            } while (!(mm & 1024));
            bits = s | (uint32_t)(127 - 15 - ee) << 23 | (mm & 1023) << 13;
        }
    } else if (e == 31) {
        bits = s | 0x7f800000u | m << 13;
    } else {
        bits = s | (e + 112) << 23 | m << 13;
    }
    union {
        uint32_t u;
        float f;
    } c;
    c.u = bits;
    return c.f;
}

/* Element i of Q8_0 storage. */
__host__ __device__ static inline float lt_q8_0_at(const uint8_t *blocks, int64_t i) {
    const uint8_t *b = blocks + (i / 32) * 34;
    const float d = lt_half_bits_to_float((uint16_t)(b[0] | b[1] << 8));
    return d * (float)(int8_t)b[2 + i % 32];
}

/* Quant state of one NF4 weight (device pointers when used by kernels). */
typedef struct {
    const float *absmax;         /* [n/blocksize] f32, or NULL with double quant */
    const uint8_t *absmax_q;     /* [n/blocksize] codes (double quant) */
    const float *code;           /* [256] code map (double quant) */
    const float *nested_absmax;  /* [ceil(n/blocksize/nested_blocksize)] (double quant) */
    float offset;                /* added after nested dequant (double quant) */
    int blocksize;               /* 64 */
    int nested_blocksize;        /* 256 */
} lt_cu_nf4_state;

__host__ __device__ static inline float lt_cu_nf4_absmax(const lt_cu_nf4_state *q, int64_t b) {
    if (q->absmax) return q->absmax[b];
    return q->code[q->absmax_q[b]] * q->nested_absmax[b / q->nested_blocksize] + q->offset;
}

/* Element i of NF4 storage; `nf4` is the 16-entry code book. */
__host__ __device__ static inline float lt_cu_nf4_at(const uint8_t *packed, const lt_cu_nf4_state *q,
                                                  const float *nf4, int64_t i) {
    const uint8_t byte = packed[i >> 1];
    const int nib = (i & 1) ? (byte & 15) : (byte >> 4);
    return nf4[nib] * lt_cu_nf4_absmax(q, i / q->blocksize);
}

#endif
