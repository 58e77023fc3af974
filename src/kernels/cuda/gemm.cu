/*
 * gemm.cu — the one GEMM entry every CUDA op uses: row-major C = alpha·op(A)·op(B) + beta·C via
 * cuBLASLt with bf16 operands, f32 compute (CUBLAS_COMPUTE_32F) and an f32 or bf16 C.
 *
 * Row-major to cuBLAS's column-major: a row-major (R, C) matrix with row stride ld is a
 * column-major (C, R) matrix with leading dimension ld, so row-major C = op(A) op(B) is computed as
 * column-major Cᵀ = op(B)ᵀ op(A)ᵀ, i.e. cuBLASLt's "A" is our B and its "B" our A, with the
 * same transpose flags. Plans (descriptors + the heuristic's algorithm) are cached per shape.
 */
#include "common.cuh"

#include <string.h>

typedef struct {
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    cudaDataType_t ctype;
    bool beta0;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    bool has_algo;
} gemm_plan;

#define PLAN_CAP 256
static gemm_plan plans[PLAN_CAP];
static int n_plans;

static gemm_plan *plan_get(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda,
                           int64_t ldb, int64_t ldc, cudaDataType_t ctype, bool beta0) {
    for (int i = 0; i < n_plans; i++) {
        gemm_plan *p = &plans[i];
        if (p->ta == ta && p->tb == tb && p->M == M && p->N == N && p->K == K && p->lda == lda &&
            p->ldb == ldb && p->ldc == ldc && p->ctype == ctype && p->beta0 == beta0)
            return p;
    }
    gemm_plan *p = &plans[n_plans < PLAN_CAP ? n_plans++ : (n_plans - 1)];
    if (n_plans == PLAN_CAP && p->op) { /* full: recycle the last slot */
        cublasLtMatmulDescDestroy(p->op);
        cublasLtMatrixLayoutDestroy(p->la);
        cublasLtMatrixLayoutDestroy(p->lb);
        cublasLtMatrixLayoutDestroy(p->lc);
    }
    memset(p, 0, sizeof *p);
    p->ta = ta, p->tb = tb, p->M = M, p->N = N, p->K = K;
    p->lda = lda, p->ldb = ldb, p->ldc = ldc, p->ctype = ctype, p->beta0 = beta0;
    /* column-major view: D (N, M) = opa(Bmem) (N, K) · opb(Amem) (K, M) */
    cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    LT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa,
                                                   sizeof opa));
    LT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb,
                                                   sizeof opb));
    /* stored shapes (rows, cols) column-major */
    LT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16BF, tb ? K : N, tb ? N : K, ldb));
    LT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16BF, ta ? M : K, ta ? K : M, lda));
    LT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc, ctype, N, M, ldc));
    size_t ws_bytes = 0;
    (void)lt_cublaslt_workspace(&ws_bytes);
    cublasLtMatmulPreference_t pref;
    LT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    LT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)lt_cublaslt(), p->op,
                                                       p->la, p->lb, p->lc, p->lc, pref, 1, &res,
                                                       &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
        p->algo = res.algo;
        p->has_algo = true;
    }
    return p;
}

void lt_cu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16 *A,
                int64_t lda, const bf16 *B, int64_t ldb, float beta, void *C, cudaDataType_t ctype,
                int64_t ldc) {
    LT_ASSERT(M >= 0 && N >= 0 && K >= 0);
    LT_ASSERT(ctype == CUDA_R_32F || ctype == CUDA_R_16BF);
    if (M == 0 || N == 0) return;
    if (K == 0) { /* cuBLASLt rejects k = 0: C = beta·C */
        LT_ASSERT(beta == 1.0f || beta == 0.0f);
        if (beta == 0.0f)
            LT_CUDA_CHECK(cudaMemset2DAsync(C, (size_t)ldc * (ctype == CUDA_R_32F ? 4 : 2), 0,
                                            (size_t)N * (ctype == CUDA_R_32F ? 4 : 2), (size_t)M,
                                            lt_stream()));
        return;
    }
    gemm_plan *p = plan_get(ta, tb, M, N, K, lda, ldb, ldc, ctype, beta == 0.0f);
    size_t ws_bytes = 0;
    void *ws = lt_cublaslt_workspace(&ws_bytes);
    LT_CUBLAS_CHECK(cublasLtMatmul((cublasLtHandle_t)lt_cublaslt(), p->op, &alpha, B, p->la, A,
                                   p->lb, &beta, C, p->lc, C, p->lc,
                                   p->has_algo ? &p->algo : NULL, ws, ws_bytes, lt_stream()));
}

/* Measured dense bf16 GEMM rate (TFLOP/s): median of `reps` timed M×N×K products after one
 * warm-up, inputs filled with a non-zero pattern (zeros run faster than real data). The MFU
 * denominator of bench/gpu. */
static __global__ void k_fill_pattern(bf16 *p, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        p[i] = __float2bfloat16((float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f);
}

extern "C" double lt_cuda_gemm_tflops(int64_t M, int64_t N, int64_t K, int reps) {
    bf16 *A, *B, *C;
    LT_CUDA_CHECK(cudaMalloc(&A, (size_t)M * K * 2));
    LT_CUDA_CHECK(cudaMalloc(&B, (size_t)N * K * 2));
    LT_CUDA_CHECK(cudaMalloc(&C, (size_t)M * N * 2));
    k_fill_pattern<<<1024, 256, 0, lt_stream()>>>(A, M * K);
    k_fill_pattern<<<1024, 256, 0, lt_stream()>>>(B, N * K);
    LT_CUDA_LAUNCH_CHECK();
    cudaEvent_t e0, e1;
    LT_CUDA_CHECK(cudaEventCreate(&e0));
    LT_CUDA_CHECK(cudaEventCreate(&e1));
    lt_cu_gemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, CUDA_R_16BF, N);
    float ms[64];
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++) {
        LT_CUDA_CHECK(cudaEventRecord(e0, lt_stream()));
        lt_cu_gemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, CUDA_R_16BF, N);
        LT_CUDA_CHECK(cudaEventRecord(e1, lt_stream()));
        LT_CUDA_CHECK(cudaEventSynchronize(e1));
        LT_CUDA_CHECK(cudaEventElapsedTime(&ms[r], e0, e1));
    }
    for (int i = 1; i < reps; i++) /* insertion sort for the median */
        for (int j = i; j > 0 && ms[j] < ms[j - 1]; j--) {
            float t = ms[j];
            ms[j] = ms[j - 1];
            ms[j - 1] = t;
        }
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    cudaFree(A), cudaFree(B), cudaFree(C);
    return 2.0 * (double)M * N * K / (ms[reps / 2] * 1e-3) / 1e12;
}
