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

/* ---- NF4 with optional double quantization (QLoRA) ------------------------------------------
 * Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs", arXiv 2305.14314, §3, as
 * bitsandbytes implements it (bitsandbytes/functional.py quantize_4bit / dequantize_4bit /
 * quantize_blockwise / create_dynamic_map; csrc/kernels.cu kQuantizeBlockwise, dQuantizeNF4,
 * dQuantize, kDequantizeBlockwise). The CUDA kernels are the definition; lathe matches them bit
 * for bit:
 *
 *   block b of `blocksize` consecutive elements (row-major flat index):
 *     absmax[b] = max |x|                                   (F32)
 *     q[i]      = #{ t in LT_NF4_THRESH : x[i] * (1/absmax[b]) > t }     (0..15)
 *               i.e. the nearest LT_NF4_CODE entry, a value exactly on a threshold taking
 *               the LOWER code (dQuantizeNF4's decision tree: `x > t` goes up). 1/absmax is
 *               the F32 reciprocal, multiplied (not divided), as the kernel does.
 *     packed    byte j = q[2j] << 4 | q[2j+1]   (first element in the HIGH nibble)
 *     deq x[i]  = LT_NF4_CODE[q[i]] * absmax[b]             (one F32 multiply)
 *   An all-zero block gets absmax 0 and, as on CUDA (0 · (1/0) = NaN fails every `>`), code 0
 *   (-1.0) for every element, which dequantizes to -0.0. bitsandbytes' CPU backend
 *   (backends/default/ops.py: torch.bucketize on F32 midpoints after clamping absmax to 1e-38)
 *   writes code 7 there instead, and differs at four thresholds by one ulp (LT_NF4_THRESH);
 *   everything else is identical in both backends.
 *
 *   double quantization (compress_statistics=True):
 *     offset     = mean(absmax)                              (F32; see lt_nf4_quantize)
 *     absmax_q   = quantize_blockwise(absmax - offset, dynamic map, block 256):
 *                  per 256-block, absmax2 = max |v|, code = dQuantize(map, v * (1/absmax2)),
 *                  the nearest map entry by bitsandbytes' binary search (ties: see nf4.c)
 *     deq absmax = map[absmax_q] * absmax2 + offset          (two F32 operations, in that order)
 *
 * Storage per parameter (bits), lt_nf4_bits_per_param():
 *   NF4            4 + 32/B                    (B = 64: 4.5)
 *   NF4 + DQ       4 + 8/B + 32/(256·B)        (B = 64: 4.127; + one F32 offset per tensor)
 *   Q8_0           8.5                         (ggml: 34 bytes per 32)
 */

#define LT_NF4_BLOCK_DEFAULT 64
#define LT_NF4_BLOCK_MIN 32
#define LT_NF4_BLOCK_MAX 4096
/* Block size of the second-level (absmax) quantization, fixed by bitsandbytes quantize_4bit. */
#define LT_NF4_DQ_BLOCK 256

/* The 16 NF4 values (bitsandbytes get_4bit_type("nf4") = create_normal_map(0.9677083), sorted)
 * and the 15 decision thresholds of dQuantizeNF4 as nvcc reads its F32 literals: each within one
 * ulp of the F32 midpoint (code[k] + code[k+1]) / 2, and equal to it except at k = 0, 8, 12, 14
 * (where bitsandbytes' CPU backend, which bucketizes on the F32 midpoints, can pick the other
 * neighbour for a value exactly between them; test_nf4 checks both facts). */
/* The NF4 code book (bitsandbytes functional.get_4bit_type("nf4"), QLoRA appendix E; the same
 * table as csrc/kernels.cu nf4_dequantization_lut), index = 4-bit code. The one definition: it
 * initializes LT_NF4_CODE here and the CUDA kernels' constant table. */
#define LT_NF4_CODE_INIT                                                                         \
    {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,                  \
     -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,                 \
     0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,    \
     0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f}
extern const float LT_NF4_CODE[16];
extern const float LT_NF4_THRESH[15];

/* bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): 256 sorted
 * F32 values in [-1, 1], built here exactly as functional.py builds them (F32 torch.linspace,
 * F32 products with 10^k). Returns a static table (built once, thread-safe). */
const float *lt_quant_dynamic_map(void);

/* Quantization state of one LT_NF4 tensor (lt_tensor.quant). Owned by whoever created the
 * tensor (lt_nf4_quantize allocates it; lt_nf4_free releases it). Exactly one of absmax /
 * (absmax_q, absmax2, offset) is in use, per `double_quant`. */
typedef struct lt_nf4_state {
    int64_t blocksize;  /* elements per absmax block: a power of two in [32, 4096] */
    int64_t n_blocks;   /* numel / blocksize */
    bool double_quant;  /* bitsandbytes compress_statistics */
    float *absmax;      /* (n_blocks) F32 per-block absmax; NULL when double_quant */
    uint8_t *absmax_q;  /* (n_blocks) dynamic-map codes of absmax - offset (double_quant) */
    float *absmax2;     /* (ceil(n_blocks / 256)) F32 nested absmax per 256 codes (double_quant) */
    float offset;       /* mean of the F32 absmax values (double_quant) */
} lt_nf4_state;

/* Absmax of block b, and element i, of NF4 storage `codes` (bitsandbytes layout: element 2k is
 * the high nibble of byte k) under state st — the one definition for the CPU dequantizer and the
 * CUDA kernels (LT_HD; st's pointers are device pointers there). code = the 16-entry code book
 * (LT_NF4_CODE_INIT), dmap = the 256-entry dynamic map (lt_quant_dynamic_map() or its device
 * copy), read only with double quantization: absmax = dmap[absmax_q[b]] · absmax2[b / 256] +
 * offset (bitsandbytes dequantize_blockwise, then `absmax += offset`). */
static inline LT_HD float lt_nf4_absmax_at(const lt_nf4_state *st, const float *dmap, int64_t b) {
    if (!st->double_quant) return st->absmax[b];
    const float a = dmap[st->absmax_q[b]] * st->absmax2[b / LT_NF4_DQ_BLOCK];
    return a + st->offset;
}
static inline LT_HD float lt_nf4_at(const uint8_t *codes, const lt_nf4_state *st,
                                    const float *code, const float *dmap, int64_t i) {
    const uint8_t byte = codes[i >> 1];
    const int nib = (i & 1) ? (byte & 15) : (byte >> 4);
    return code[nib] * lt_nf4_absmax_at(st, dmap, i / st->blocksize);
}

/* Bits of storage per parameter for NF4 with this block size, with or without double
 * quantization (formula above; the per-tensor offset is not counted). */
double lt_nf4_bits_per_param(int64_t blocksize, bool double_quant);

/* Check that `blocksize` is a power of two in [32, 4096] dividing the row length (last dim)
 * `row` of tensor `name`. LT_ERR_USAGE naming the tensor, its row length and the block size
 * otherwise. A block never straddles two rows, so any whole-row range dequantizes alone. */
lt_status lt_nf4_check_block(int64_t blocksize, int64_t row, const char *name);

/* bitsandbytes quantize_4bit(quant_type="nf4", compress_statistics=False) on n floats (n a
 * multiple of blocksize, blocksize valid): packed codes (n/2 bytes) and F32 absmax
 * (n/blocksize). Non-finite inputs are the caller's to exclude. OpenMP over blocks. */
void lt_nf4_quantize_blocks(const float *src, int64_t n, int64_t blocksize, uint8_t *codes,
                            float *absmax);

/* bitsandbytes quantize_blockwise(A, code=dynamic map, blocksize) (CUDA semantics): for each
 * block of `blocksize` values (the last may be partial), absmax[b] = max |v| and
 * codes[i] = dQuantize(map, v[i] * (1/absmax[b])). n codes, ceil(n/blocksize) absmax. */
void lt_quantize_blockwise_dynamic(const float *src, int64_t n, int64_t blocksize,
                                   uint8_t *codes, float *absmax);

/* Quantize the F32 tensor `src` (any shape; rows = last dim) to NF4 into the caller's header
 * `out` (overwritten): dtype LT_NF4, src's shape and name, data = packed codes (malloc'ed),
 * quant = a malloc'ed lt_nf4_state, requires_grad false (a quantized base is frozen).
 * With double_quant the offset is the mean of the absmax values accumulated in double and
 * rounded once to F32; bitsandbytes takes torch's F32 `absmax.mean()`, whose summation order is
 * torch's own, so the two offsets can differ in the last bit (test_nf4 measures it); every
 * other step is exact. Errors: LT_ERR_USAGE from lt_nf4_check_block (src->name in the message),
 * LT_ERR_OOM. Release with lt_nf4_free. */
lt_status lt_nf4_quantize(lt_tensor *out, const lt_tensor *src, int64_t blocksize,
                          bool double_quant);
/* Free the codes and the state of a tensor made by lt_nf4_quantize (NULL-safe; the header is
 * the caller's). */
void lt_nf4_free(lt_tensor *t);

/* Dequantized absmax of NF4 block b (exact bitsandbytes arithmetic, either layout). */
float lt_nf4_block_absmax(const lt_nf4_state *st, int64_t b);

/* Dequantize elements [first, first + n) of an NF4 tensor (codes + state) into dst. first and n
 * must be multiples of st->blocksize (caller invariant, asserted). OpenMP over blocks. */
void lt_nf4_dequant_range(const uint8_t *codes, const lt_nf4_state *st, int64_t first, int64_t n,
                          float *dst);

/* Rows [row0, row0 + nrows) of the 2-D weight W [rows, cols] as F32 into dst (nrows · cols):
 * any dtype lt_dequant reads, or LT_NF4 (W->quant set). cols must be a multiple of the dtype's
 * block (and of the NF4 block size), so a row range is a whole number of blocks. The tile
 * source for quantized matmuls (src/kernels/cpu/linear.c). */
void lt_dequant_rows(const lt_tensor *W, int64_t row0, int64_t nrows, float *dst);

#endif
