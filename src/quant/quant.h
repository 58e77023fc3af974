/*
 * quant — block-quantized storage formats: dequantize to F32 and quantize from F32.
 *
 * Block layouts follow ggml (ggml-org/ggml src/ggml-common.h; reference routines in
 * src/ggml-quants.c). Every block holds 32 elements and starts with its F16 scale:
 *   Q8_0  34 bytes: f16 d, int8 q[32];                 x[i] = d * q[i]
 *   Q4_0  18 bytes: f16 d, uint8 qs[16];               x[i] = d * (nib[i] - 8)
 *   Q4_1  20 bytes: f16 d, f16 m, uint8 qs[16];        x[i] = d * nib[i] + m
 * where for the 4-bit types nib[i] = qs[i] & 15 for i < 16 and qs[i - 16] >> 4 for i >= 16
 * (low nibbles hold the first half of the block, high nibbles the second half).
 * All multi-byte fields are little-endian; blocks need no alignment.
 */
#ifndef LATHE_QUANT_H
#define LATHE_QUANT_H

#include "../core/core.h"

/* Elements per block of the ggml block formats above. */
#define LT_QK 32

/* Convert n elements of type t at src (raw storage bytes, any alignment) into n floats at dst.
 * t is F32, F16, BF16, Q8_0, Q4_0 or Q4_1; n must be a multiple of lt_dtype_block_elems(t).
 * Both are caller invariants (LT_ASSERT): callers validate file types and shapes first, as the
 * GGUF and safetensors readers do. src holds lt_dtype_nbytes(t, n) bytes. Large inputs are
 * split across OpenMP threads by block. */
void lt_dequant(lt_dtype t, const void *src, float *dst, int64_t n);

/* Quantize n floats (n a multiple of 32) into n/32 Q8_0 blocks at dst (34 bytes each) with
 * ggml's reference rounding (quantize_row_q8_0_ref): per block, d = max|x| / 127, stored as
 * F16, and q[i] = roundf(x[i] / d) (0 for an all-zero block). Non-finite inputs are the
 * caller's to exclude. Dequantized error per element is at most d/2 plus the effect of storing
 * d as F16 (|d - f16(d)| * 127). */
void lt_quantize_q8_0(const float *src, void *dst, int64_t n);

#endif
