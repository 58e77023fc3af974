/*
 * quant.cuh — per-element dequantization of the block formats the CUDA linear reads, as
 * __host__ __device__ functions so the host test checks the exact code the kernels run.
 *
 * Q8_0 (ggml src/ggml-common.h block_q8_0): blocks of 32 elements, 34 bytes: f16 d (little
 * endian), int8 q[32]; x = d · q. Blocks need no alignment (bytes are read one at a time).
 *
 * NF4 (QLoRA, arXiv 2305.14314): quant.h's lt_nf4_at and lt_nf4_state, the same definition the
 * CPU dequantizer uses, with the state's pointers and the dynamic map on the device.
 */
#ifndef LATHE_CUDA_QUANT_CUH
#define LATHE_CUDA_QUANT_CUH

#include <stdint.h>

#include "../../quant/quant.h" /* the NF4 code book, state and element function (LT_HD) */

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

#endif
