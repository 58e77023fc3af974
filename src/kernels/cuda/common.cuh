/*
 * common.cuh — what every CUDA kernel file shares: the C headers (wrapped for C++), error checks,
 * bf16 helpers, the dropout hash, block reductions and the cuBLASLt GEMM wrapper declaration.
 *
 * Conventions (DESIGN.md §4): a static __global__ kernel, a launcher taking a cudaStream_t that
 * ends with LT_CUDA_LAUNCH_CHECK(), and an op entry `lt_cuda_<op>_<dir>(g, n)` that asserts dtype
 * and shape before launching on lt_cuda_stream(). Device dtypes are documented in core/device.h:
 * activations bf16, grads and statistics f32.
 */
#ifndef LATHE_CUDA_COMMON_CUH
#define LATHE_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cublasLt.h>
#include <stdint.h>

/* nvcc builds only happen with CUDA on; the C side gets -DLATHE_CUDA=1 from the Makefile. */
#ifndef LATHE_CUDA
#define LATHE_CUDA 1
#endif

/* core.h is C11; _Noreturn has a C++ spelling. */
#define _Noreturn [[noreturn]]
extern "C" {
#include "../kernels.h"
#include "../../core/device.h"
}
#undef _Noreturn

#define LT_CUBLAS_CHECK(call)                                                                    \
    do {                                                                                         \
        cublasStatus_t lt_s_ = (call);                                                           \
        if (lt_s_ != CUBLAS_STATUS_SUCCESS)                                                      \
            lt_device_fail(#call, cublasLtGetStatusString(lt_s_), __FILE__, __LINE__);           \
    } while (0)

/* After every launch: catches bad configurations at once (asynchronous faults surface at the
 * next synchronizing call, also checked). */
#define LT_CUDA_LAUNCH_CHECK() LT_CUDA_CHECK(cudaGetLastError())

typedef __nv_bfloat16 bf16;

static inline cudaStream_t lt_stream() { return (cudaStream_t)lt_cuda_stream(); }
static inline unsigned lt_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535 * 32 ? 65535 * 32 : b);
}

/* ---- loads that accept f32 or bf16 storage ----------------------------------------------- */
__device__ static inline float ld(const float *p, int64_t i) { return p[i]; }
__device__ static inline float ld(const bf16 *p, int64_t i) { return __bfloat162float(p[i]); }
__device__ static inline void st(float *p, int64_t i, float v) { p[i] = v; }
__device__ static inline void st(bf16 *p, int64_t i, float v) { p[i] = __float2bfloat16(v); }

/* ---- reductions ------------------------------------------------------------------------------ */
__device__ static inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ static inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
 * `sh` is >= 32 floats of shared memory; the function syncs before returning. */
__device__ static inline float block_sum(float v, float *sh) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    v = warp_sum(v);
    return v;
}
__device__ static inline float block_max(float v, float *sh) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    v = warp_max(v);
    return v;
}

/* ---- shared helpers implemented in elementwise.cu / gemm.cu -------------------------------- */

/* dst bf16 (n) = src f32 (n), on the compute stream. */
void lt_cu_f32_to_bf16(bf16 *dst, const float *src, int64_t n, cudaStream_t s);
/* dst f32 (n) (+)= src bf16 (n). */
void lt_cu_bf16_to_f32(float *dst, const bf16 *src, int64_t n, bool accumulate, cudaStream_t s);
/* Reusable temporaries: one growable device buffer per slot, valid until the next request for
 * the same slot. Safe without events because every kernel runs on the one compute stream (a later
 * user of the slot is ordered after every earlier reader). Growing synchronizes the stream once
 * (first step only); lt_cu_temp_bytes() is their total, reported with peak memory. */
enum { LT_TMP_W = 0, LT_TMP_DY, LT_TMP_A, LT_TMP_B, LT_TMP_DYB, LT_TMP_T, LT_TMP_CE, LT_TMP_CE2,
       LT_TMP_NORM, LT_TMP_COUNT };
void *lt_cu_temp(int slot, size_t n);
/* A bf16 version of an f32 or bf16 device tensor: the data itself when bf16, else converted
 * into temp `slot`. */
const bf16 *lt_cu_bf16_tmp(int slot, const lt_tensor *t);
/* A device buffer of n bytes from the graph's step arena (lives until the arena reset). */
void *lt_cu_scratch(lt_graph *g, size_t n);

/* Row-major GEMM through cuBLASLt: C (M, N) = alpha · op(A) op(B) + beta · C, where op(A) is
 * (M, K) (A stored (K, M) when ta) and op(B) is (K, N) (B stored (N, K) when tb); lda/ldb/ldc
 * are row strides in elements. A and B are bf16; C is f32 or bf16 (ctype); compute in f32
 * (CUBLAS_COMPUTE_32F). Runs on the compute stream. */
void lt_cu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16 *A,
                int64_t lda, const bf16 *B, int64_t ldb, float beta, void *C, cudaDataType_t ctype,
                int64_t ldc);

#endif
