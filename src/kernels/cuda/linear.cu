/*
 * linear.cu — CUDA linear with optional LoRA adapter, optional frozen bias and a bf16 / f32 /
 * Q8_0 (NF4 pending) base weight. Semantics of src/kernels/cpu/linear.c:
 *   y  = x Wᵀ (+ bias) + s · drop(x) Aᵀ Bᵀ,   drop(x) = m ⊙ x / (1 − p),   h = drop(x) Aᵀ
 *   dx += dy W + s · m ⊙ ((dy B) A) / (1 − p);  dW += dyᵀ x;  dA += s (dy B)ᵀ drop(x);
 *   dB += s dyᵀ h;  dbias += Σ_rows dy (only if the bias were trainable).
 * The dropout mask m is lt_dropout_keep(seed, j, p) over the flat index j of x — the same bits
 * as the CPU (kernels.h, one __host__ __device__ definition).
 *
 * Device dtypes: x, y, saved drop(x) and h are bf16; A and B are f32 masters, copied to bf16 per
 * call; grads f32. Every product is one cuBLASLt GEMM, bf16 operands, f32 accumulation; dy is
 * rounded to a bf16 copy once per backward to be a GEMM operand, and the f32 grads accumulate
 * with beta = 1. Quantized weights are dequantized into one reusable bf16 temp [out, in] per
 * call (forward, and again in backward), so a QLoRA step holds one expanded weight at a time.
 */
#include "common.cuh"

extern "C" void lt_cuda_dequant_q8_0_bf16(void *dst, const void *src, int64_t n, void *stream);
extern "C" void lt_cuda_dequant_nf4_bf16(void *dst, const void *codes, const lt_nf4_state *q,
                                         const float *dmap, int64_t n, void *stream);
extern "C" const float *lt_cuda_dynamic_map(void);

#define LIN_THREADS 256

/* The base weight as bf16 [out, in] (a view when already bf16). */
static const bf16 *weight_bf16(const lt_tensor *W) {
    const int64_t n = lt_tensor_numel(W);
    switch (W->dtype) {
    case LT_BF16: return (const bf16 *)W->data;
    case LT_F32: return lt_cu_bf16_tmp(LT_TMP_W, W);
    case LT_Q8_0: {
        bf16 *d = (bf16 *)lt_cu_temp(LT_TMP_W, (size_t)n * sizeof(bf16));
        lt_cuda_dequant_q8_0_bf16(d, W->data, n, lt_stream());
        return d;
    }
    case LT_NF4: {
        /* W->quant: a host lt_nf4_state whose arrays are device pointers (lt_model_to_device) */
        bf16 *d = (bf16 *)lt_cu_temp(LT_TMP_W, (size_t)n * sizeof(bf16));
        lt_cuda_dequant_nf4_bf16(d, W->data, (const lt_nf4_state *)W->quant,
                                 lt_cuda_dynamic_map(), n, lt_stream());
        return d;
    }
    default: lt_assert_fail("linear: unsupported weight dtype on CUDA", __FILE__, __LINE__);
    }
}

static __global__ void k_dropout(bf16 *xd, const bf16 *x, int64_t n, uint64_t seed, float p) {
    const float inv_keep = 1.0f / (1.0f - p);
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < n;
         j += (int64_t)gridDim.x * blockDim.x)
        xd[j] = lt_dropout_keep(seed, (uint64_t)j, p)
                    ? __float2bfloat16(__bfloat162float(x[j]) * inv_keep)
                    : __float2bfloat16(0.0f);
}

static __global__ void k_dropout_acc(float *dx, const float *t, int64_t n, uint64_t seed, float p,
                                     float c) {
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < n;
         j += (int64_t)gridDim.x * blockDim.x)
        if (lt_dropout_keep(seed, (uint64_t)j, p)) dx[j] += c * t[j];
}

template <typename T>
static __global__ void k_add_bias(bf16 *y, const T *bias, int64_t N, int64_t out) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * out;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16(__bfloat162float(y[i]) + ld(bias, i % out));
}

/* dbias[c] += Σ_r dy[r, c]: one thread per column (bias grads are rare: frozen by default). */
static __global__ void k_bias_grad(float *db, const float *dy, int64_t N, int64_t out) {
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < out;
         c += (int64_t)gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (int64_t r = 0; r < N; r++) s += dy[r * out + c];
        db[c] += s;
    }
}

static const lt_tensor *bias_of(const lt_node *n) { return n->n_in > 4 ? n->in[4] : NULL; }

extern "C" void lt_cuda_linear_forward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0], *tW = n->in[1], *tA = n->in[2], *tB = n->in[3];
    const lt_tensor *tb = bias_of(n);
    LT_ASSERT(tx->dtype == LT_BF16 && n->out->dtype == LT_BF16 && tW->ndim == 2);
    const int64_t in_f = tW->shape[1], out_f = tW->shape[0];
    const int64_t N = lt_tensor_numel(tx) / in_f;
    LT_ASSERT(tx->shape[tx->ndim - 1] == in_f);
    cudaStream_t s = lt_stream();
    bf16 *y = (bf16 *)n->out->data;                 // (N, out)
    const bf16 *x = (const bf16 *)tx->data;         // (N, in)
    const bf16 *W = weight_bf16(tW);             // (out, in)
    lt_cu_gemm(false, true, N, out_f, in_f, 1.0f, x, in_f, W, in_f, 0.0f, y, CUDA_R_16BF, out_f);
    if (tb && N * out_f > 0) {
        LT_ASSERT(lt_tensor_numel(tb) == out_f);
        if (tb->dtype == LT_F32)
            k_add_bias<<<lt_blocks(N * out_f, LIN_THREADS), LIN_THREADS, 0, s>>>(
                y, (const float *)tb->data, N, out_f);
        else
            k_add_bias<<<lt_blocks(N * out_f, LIN_THREADS), LIN_THREADS, 0, s>>>(
                y, (const bf16 *)tb->data, N, out_f);
        LT_CUDA_LAUNCH_CHECK();
    }
    if (!tA) return;

    LT_ASSERT(tA->dtype == LT_F32 && tB->dtype == LT_F32);
    const int64_t r = tA->shape[0];
    const float sc = n->p.lora_scale, p = n->p.dropout;
    const bf16 *A = lt_cu_bf16_tmp(LT_TMP_A, tA); // (r, in)
    const bf16 *B = lt_cu_bf16_tmp(LT_TMP_B, tB); // (out, r)
    const bf16 *xd = x;                     // (N, in) adapter input
    if (p > 0.0f) {
        const int64_t shp[2] = {N, in_f};
        lt_tensor *txd = lt_graph_tensor(g, LT_BF16, 2, shp);
        if (N * in_f > 0) {
            k_dropout<<<lt_blocks(N * in_f, LIN_THREADS), LIN_THREADS, 0, s>>>(
                (bf16 *)txd->data, x, N * in_f, n->p.seed, p);
            LT_CUDA_LAUNCH_CHECK();
        }
        xd = (const bf16 *)txd->data;
        n->saved[0] = txd;
    }
    const int64_t shh[2] = {N, r};
    lt_tensor *th = lt_graph_tensor(g, LT_BF16, 2, shh);
    bf16 *h = (bf16 *)th->data; // (N, r)
    lt_cu_gemm(false, true, N, r, in_f, 1.0f, xd, in_f, A, in_f, 0.0f, h, CUDA_R_16BF, r);
    lt_cu_gemm(false, true, N, out_f, r, sc, h, r, B, r, 1.0f, y, CUDA_R_16BF, out_f);
    n->saved[1] = th;
}

extern "C" void lt_cuda_linear_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0], *tW = n->in[1], *tA = n->in[2], *tB = n->in[3];
    lt_tensor *tb = (lt_tensor *)bias_of(n);
    const int64_t in_f = tW->shape[1], out_f = tW->shape[0];
    const int64_t N = lt_tensor_numel(tx) / in_f;
    cudaStream_t s = lt_stream();
    const bf16 *x = (const bf16 *)tx->data;                  // (N, in)
    const bf16 *dy = lt_cu_bf16_tmp(LT_TMP_DY, n->out->grad);       // (N, out)
    float *dx = tx->requires_grad ? lt_f32(lt_graph_grad(g, tx)) : NULL; // (N, in)
    if (dx) {
        const bf16 *W = weight_bf16(tW);
        lt_cu_gemm(false, false, N, in_f, out_f, 1.0f, dy, out_f, W, in_f, 1.0f, dx, CUDA_R_32F,
                   in_f);
    }
    if (tW->requires_grad) {
        LT_ASSERT(tW->dtype == LT_F32 || tW->dtype == LT_BF16);
        float *dW = lt_f32(lt_graph_grad(g, tW)); // (out, in)
        lt_cu_gemm(true, false, out_f, in_f, N, 1.0f, dy, out_f, x, in_f, 1.0f, dW, CUDA_R_32F,
                   in_f);
    }
    if (tb && tb->requires_grad && out_f > 0) {
        k_bias_grad<<<lt_blocks(out_f, LIN_THREADS), LIN_THREADS, 0, s>>>(
            lt_f32(lt_graph_grad(g, tb)), lt_f32(n->out->grad), N, out_f);
        LT_CUDA_LAUNCH_CHECK();
    }
    if (!tA) return;

    const int64_t r = tA->shape[0];
    const float sc = n->p.lora_scale, p = n->p.dropout;
    const bf16 *A = lt_cu_bf16_tmp(LT_TMP_A, tA);                                     // (r, in)
    const bf16 *B = lt_cu_bf16_tmp(LT_TMP_B, tB);                                     // (out, r)
    const bf16 *xd = p > 0.0f ? (const bf16 *)n->saved[0]->data : x;           // (N, in)
    LT_ASSERT(n->saved[1] != NULL);
    const bf16 *h = (const bf16 *)n->saved[1]->data;                           // (N, r)
    const bool need_dyB = dx || tA->requires_grad;
    bf16 *dyB = need_dyB ? (bf16 *)lt_cu_temp(LT_TMP_DYB, (size_t)N * r * sizeof(bf16)) : NULL; // (N, r)
    if (dyB) lt_cu_gemm(false, false, N, r, out_f, 1.0f, dy, out_f, B, r, 0.0f, dyB, CUDA_R_16BF, r);
    if (dx) {
        if (p == 0.0f) {
            lt_cu_gemm(false, false, N, in_f, r, sc, dyB, r, A, in_f, 1.0f, dx, CUDA_R_32F, in_f);
        } else if (N * in_f > 0) {
            float *t = (float *)lt_cu_temp(LT_TMP_T, (size_t)N * in_f * sizeof(float)); // (N, in)
            lt_cu_gemm(false, false, N, in_f, r, 1.0f, dyB, r, A, in_f, 0.0f, t, CUDA_R_32F, in_f);
            k_dropout_acc<<<lt_blocks(N * in_f, LIN_THREADS), LIN_THREADS, 0, s>>>(
                dx, t, N * in_f, n->p.seed, p, sc / (1.0f - p));
            LT_CUDA_LAUNCH_CHECK();
        }
    }
    if (tA->requires_grad)
        lt_cu_gemm(true, false, r, in_f, N, sc, dyB, r, xd, in_f, 1.0f, lt_f32(lt_graph_grad(g, tA)),
                   CUDA_R_32F, in_f);
    if (tB->requires_grad)
        lt_cu_gemm(true, false, out_f, r, N, sc, dy, out_f, h, r, 1.0f, lt_f32(lt_graph_grad(g, tB)),
                   CUDA_R_32F, r);
}
