/*
 * optim.cu — the optimizer's device half: fused AdamW over the flat f32 adapter buffers and a
 * deterministic global L2 norm + scale for clipping. Formulas and constants are exactly those of
 * src/optim/adamw.c and clip.c (bias corrections computed once per call in double on the host;
 * per element in f32, same operation order), so a CUDA step matches the CPU step to rounding of
 * fused multiply-adds.
 */
#include "common.cuh"


#define OPT_THREADS 256
#define NORM_BLOCKS 1024 /* fixed partition: the sum order never depends on the launch */

static __global__ void k_adamw(float *p, const float *g, float *m, float *v, int64_t n, float b1,
                               float b2, float one_m_b1, float one_m_b2, float eps, float decay,
                               float step_size, float inv_sqrt_bc2) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float gi = g[i];
        const float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(one_m_b1, gi));
        const float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(one_m_b2, __fmul_rn(gi, gi)));
        m[i] = mi;
        v[i] = vi;
        const float denom = __fadd_rn(__fmul_rn(sqrtf(vi), inv_sqrt_bc2), eps);
        p[i] = __fsub_rn(__fmul_rn(p[i], decay), __fmul_rn(step_size, __fdiv_rn(mi, denom)));
    }
}

extern "C" void lt_cuda_adamw_step(float *p, const float *g, float *m, float *v, int64_t n,
                                   const lt_adamw_hparams *h, int64_t t, float lr) {
    LT_ASSERT(h && n >= 0 && t >= 1);
    if (n == 0) return;
    const double bc1 = 1.0 - pow((double)h->beta1, (double)t);
    const double bc2 = 1.0 - pow((double)h->beta2, (double)t);
    const float decay = (float)(1.0 - (double)lr * (double)h->weight_decay);
    const float step_size = (float)((double)lr / bc1);
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    k_adamw<<<lt_blocks(n, OPT_THREADS), OPT_THREADS, 0, lt_stream()>>>(
        p, g, m, v, n, h->beta1, h->beta2, 1.0f - h->beta1, 1.0f - h->beta2, h->eps, decay,
        step_size, inv_sqrt_bc2);
    LT_CUDA_LAUNCH_CHECK();
}

/* Block b sums the contiguous chunk [b·n/NB, (b+1)·n/NB) in double (fixed order per thread,
 * then a fixed tree). */
static __global__ void k_sumsq(double *part, const float *g, int64_t n) {
    __shared__ double sh[OPT_THREADS];
    const int64_t lo = n * blockIdx.x / gridDim.x, hi = n * (blockIdx.x + 1) / gridDim.x;
    double s = 0.0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)g[i] * (double)g[i];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int w = OPT_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

extern "C" float lt_cuda_grad_global_norm(const float *g, int64_t n) {
    if (n == 0) return 0.0f;
    double *part = (double *)lt_cu_temp(LT_TMP_NORM, NORM_BLOCKS * sizeof(double));
    k_sumsq<<<NORM_BLOCKS, OPT_THREADS, 0, lt_stream()>>>(part, g, n);
    LT_CUDA_LAUNCH_CHECK();
    double h[NORM_BLOCKS];
    lt_cuda_d2h(h, part, sizeof h);
    double s = 0.0;
    for (int i = 0; i < NORM_BLOCKS; i++) s += h[i];
    return (float)sqrt(s);
}

static __global__ void k_scale(float *g, int64_t n, float c) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        g[i] *= c;
}

/* As lt_grad_clip: scale by max_norm / (norm + 1e-6) when clipping applies; returns the scale. */
extern "C" float lt_cuda_grad_clip(float *g, int64_t n, float max_norm, float norm) {
    if (!(max_norm > 0.0f) || !isfinite(norm) || !(norm > max_norm) || n == 0) return 1.0f;
    const float c = (float)((double)max_norm / ((double)norm + 1e-6));
    k_scale<<<lt_blocks(n, OPT_THREADS), OPT_THREADS, 0, lt_stream()>>>(g, n, c);
    LT_CUDA_LAUNCH_CHECK();
    return c;
}

static __global__ void k_add(float *y, const float *x, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

/* y += x elementwise (the step's gradient sum over micro-batches: one rounding per element). */
extern "C" void lt_cuda_vec_add(float *y, const float *x, int64_t n) {
    if (n == 0) return;
    k_add<<<lt_blocks(n, OPT_THREADS), OPT_THREADS, 0, lt_stream()>>>(y, x, n);
    LT_CUDA_LAUNCH_CHECK();
}
