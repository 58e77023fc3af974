/*
 * quant.cu — dequantize-to-bf16 kernels that feed the linear GEMM (the base weight is expanded
 * into a reusable bf16 temp (common.cuh LT_TMP_W), then one cuBLASLt GEMM; as bitsandbytes does for
 * its training path). Element formulas live in quant.cuh; host wrappers of the same functions
 * let tests/cuda check them without a GPU.
 */
#include "common.cuh"
#include "quant.cuh"

#define DQ_THREADS 256

__constant__ float c_nf4[16] = LT_NF4_CODE_INIT;

static __global__ void k_dq_q8_0(bf16 *dst, const uint8_t *blocks, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16(lt_q8_0_at(blocks, i));
}

static __global__ void k_dq_nf4(bf16 *dst, const uint8_t *codes, lt_nf4_state q,
                                const float *dmap, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16(lt_nf4_at(codes, &q, c_nf4, dmap, i));
}

extern "C" void lt_cuda_dequant_q8_0_bf16(void *dst, const void *src, int64_t n, void *stream) {
    LT_ASSERT(n % 32 == 0);
    if (n == 0) return;
    k_dq_q8_0<<<lt_blocks(n, DQ_THREADS), DQ_THREADS, 0, (cudaStream_t)stream>>>(
        (bf16 *)dst, (const uint8_t *)src, n);
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_dequant_nf4_bf16(void *dst, const void *codes, const lt_nf4_state *q,
                                         const float *dmap, int64_t n, void *stream) {
    LT_ASSERT(n % 2 == 0 && q->blocksize > 0 && (!q->double_quant || dmap));
    if (n == 0) return;
    k_dq_nf4<<<lt_blocks(n, DQ_THREADS), DQ_THREADS, 0, (cudaStream_t)stream>>>(
        (bf16 *)dst, (const uint8_t *)codes, *q, dmap, n);
    LT_CUDA_LAUNCH_CHECK();
}

/* ---- host wrappers for tests (same element functions, no GPU) ------------------------------- */

/* bitsandbytes' 256-entry dynamic map on the device, uploaded on first use and kept for the
 * process (1 KiB); NF4 with double quantization reads it for every absmax. */
extern "C" const float *lt_cuda_dynamic_map(void) {
    static float *dmap;
    if (!dmap) {
        LT_CUDA_CHECK(cudaMalloc((void **)&dmap, 256 * sizeof(float)));
        LT_CUDA_CHECK(cudaMemcpy(dmap, lt_quant_dynamic_map(), 256 * sizeof(float),
                                 cudaMemcpyHostToDevice));
    }
    return dmap;
}

extern "C" void lt_cuda_host_dequant_q8_0(float *dst, const void *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = lt_q8_0_at((const uint8_t *)src, i);
}

extern "C" void lt_cuda_host_dequant_nf4(float *dst, const void *codes, const lt_nf4_state *q,
                                         const float *dmap, int64_t n) {
    static const float nf4[16] = LT_NF4_CODE_INIT;
    for (int64_t i = 0; i < n; i++) dst[i] = lt_nf4_at((const uint8_t *)codes, q, nf4, dmap, i);
}
