/*
 * rmsnorm.cu — fused RMSNorm forward/backward (semantics of src/kernels/cpu/rmsnorm.c):
 *   y = x · rstd · (off + w),  rstd = 1/sqrt(mean(x²) + eps)  (off = p.offset: Gemma's 1 + w);
 *   dx += rstd · (g − x̂ · mean(g ⊙ x̂)) with g = dy ⊙ (off + w), x̂ = x · rstd;
 *   dw += Σ_rows dy ⊙ x̂.
 * One block per row; x and y bf16, w f32 or bf16, rstd (saved) and grads f32. dw (only when the
 * norm weight is trainable, never in LoRA) is accumulated with atomicAdd per row.
 */
#include "common.cuh"

#define RMS_THREADS 256

template <typename W>
static __global__ void k_rms_fwd(bf16 *y, float *rstd, const bf16 *x, const W *w, int64_t D,
                                 float eps, float off) {
    __shared__ float sh[32];
    const int64_t r = blockIdx.x;
    const bf16 *xr = x + r * D;
    float ss = 0.0f;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
        float v = __bfloat162float(xr[c]);
        ss += v * v;
    }
    ss = block_sum(ss, sh);
    const float rs = rsqrtf(ss / (float)D + eps);
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x)
        y[r * D + c] = __float2bfloat16(__bfloat162float(xr[c]) * rs * (off + ld(w, c)));
    if (rstd && threadIdx.x == 0) rstd[r] = rs;
}

template <typename W>
static __global__ void k_rms_bwd(float *dx, float *dw, const bf16 *x, const W *w, const float *dy,
                                 const float *rstd, int64_t D, float off) {
    __shared__ float sh[32];
    const int64_t r = blockIdx.x;
    const bf16 *xr = x + r * D;
    const float *dyr = dy + r * D;
    const float rs = rstd[r];
    if (dx) {
        float dot = 0.0f;
        for (int64_t c = threadIdx.x; c < D; c += blockDim.x)
            dot += dyr[c] * (off + ld(w, c)) * __bfloat162float(xr[c]);
        dot = block_sum(dot, sh);
        const float m = dot * rs / (float)D;
        for (int64_t c = threadIdx.x; c < D; c += blockDim.x)
            dx[r * D + c] += rs * (dyr[c] * (off + ld(w, c)) - __bfloat162float(xr[c]) * rs * m);
    }
    if (dw)
        for (int64_t c = threadIdx.x; c < D; c += blockDim.x)
            atomicAdd(&dw[c], dyr[c] * __bfloat162float(xr[c]) * rs);
}

extern "C" void lt_cuda_rmsnorm_forward(lt_graph *g, lt_node *n) {
    const lt_tensor *tx = n->in[0], *tw = n->in[1];
    LT_ASSERT(tx->dtype == LT_BF16 && n->out->dtype == LT_BF16);
    LT_ASSERT(tw->dtype == LT_F32 || tw->dtype == LT_BF16);
    const int64_t D = tx->shape[tx->ndim - 1], N = lt_tensor_numel(tx) / D;
    LT_ASSERT(tw->shape[0] == D);
    float *rstd = NULL;
    if (n->out->requires_grad) {
        const int64_t shp[1] = {N};
        n->saved[0] = lt_graph_tensor(g, LT_F32, 1, shp);
        rstd = lt_f32(n->saved[0]);
    }
    if (N == 0) return;
    if (tw->dtype == LT_F32)
        k_rms_fwd<<<(unsigned)N, RMS_THREADS, 0, lt_stream()>>>(
            (bf16 *)n->out->data, rstd, (const bf16 *)tx->data, (const float *)tw->data, D,
            n->p.eps, n->p.offset);
    else
        k_rms_fwd<<<(unsigned)N, RMS_THREADS, 0, lt_stream()>>>(
            (bf16 *)n->out->data, rstd, (const bf16 *)tx->data, (const bf16 *)tw->data, D,
            n->p.eps, n->p.offset);
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_rmsnorm_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0], *tw = n->in[1];
    const int64_t D = tx->shape[tx->ndim - 1], N = lt_tensor_numel(tx) / D;
    float *dx = tx->requires_grad ? lt_f32(lt_graph_grad(g, tx)) : NULL; // (N, D)
    float *dw = tw->requires_grad ? lt_f32(lt_graph_grad(g, tw)) : NULL; // (D)
    if (N == 0 || (!dx && !dw)) return;
    LT_ASSERT(n->saved[0] != NULL);
    if (tw->dtype == LT_F32)
        k_rms_bwd<<<(unsigned)N, RMS_THREADS, 0, lt_stream()>>>(
            dx, dw, (const bf16 *)tx->data, (const float *)tw->data, lt_f32(n->out->grad),
            lt_f32(n->saved[0]), D, n->p.offset);
    else
        k_rms_bwd<<<(unsigned)N, RMS_THREADS, 0, lt_stream()>>>(
            dx, dw, (const bf16 *)tx->data, (const bf16 *)tw->data, lt_f32(n->out->grad),
            lt_f32(n->saved[0]), D, n->p.offset);
    LT_CUDA_LAUNCH_CHECK();
}
