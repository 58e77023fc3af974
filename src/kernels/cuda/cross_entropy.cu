/*
 * cross_entropy.cu — token cross-entropy on bf16 logits (op cross_entropy) and fused with the LM
 * head (op lm_head_cross_entropy), semantics of src/kernels/cpu/cross_entropy.c and
 * lm_head_ce.c: row i counts iff target ≥ 0 and (no mask or mask ≠ 0);
 *   loss = Σ_counted (lse_i − z_i,t_i) / den,  den = p.ce_denominator if > 0 else #counted;
 *   dz_i += dloss · (softmax(z_i) − onehot(t_i)) / den for counted rows.
 *
 * The fused op never materializes [N, V] logits: the vocabulary is processed in chunks of
 * LMCE_CHUNK columns; each chunk's f32 logits (x W_chunkᵀ, one cuBLASLt GEMM) update a running
 * max and sum per row (online log-sum-exp, Milakov & Gimelshein arXiv 1805.02867) and pick up
 * the target logit. Backward recomputes each chunk, turns it into bf16 dlogits in place of the
 * logits and feeds two GEMMs (dx += g W_chunk; dW_chunk += gᵀ x when W is trainable).
 * Memory: N·LMCE_CHUNK·(4+2) bytes of temps instead of N·V·(2+4). With p.softcap > 0 each
 * chunk of logits is soft-capped in place after its GEMM and the gradient carries the cap's
 * derivative (kernels/act.h), as lm_head_ce.c.
 *
 * Device results: out F32 [1] (loss), saved[0] lse F32 [N] (0 for ignored rows), saved[1]
 * F32 [2] = {Σ nll, den}. Reductions use a fixed order (deterministic).
 */
#include "common.cuh"
#include "../act.h"

#define CE_THREADS 256
#define LMCE_CHUNK 8192

__device__ static inline bool counted(const int32_t *tgt, const uint8_t *mask, int64_t i) {
    return tgt[i] >= 0 && (!mask || mask[i] != 0);
}

/* Per-row lse and nll on materialized logits (op cross_entropy). */
template <typename T>
static __global__ void k_ce_rows(float *lse, float *nll, const T *z, const int32_t *tgt,
                                 const uint8_t *mask, int64_t V) {
    __shared__ float sh[32];
    const int64_t i = blockIdx.x;
    if (!counted(tgt, mask, i)) {
        if (threadIdx.x == 0) lse[i] = nll[i] = 0.0f;
        return;
    }
    const T *row = z + i * V;
    float m = -INFINITY;
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) m = fmaxf(m, ld(row, c));
    m = block_max(m, sh);
    float s = 0.0f;
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) s += expf(ld(row, c) - m);
    s = block_sum(s, sh);
    if (threadIdx.x == 0) {
        const float l = m + logf(s);
        lse[i] = l;
        nll[i] = l - ld(row, tgt[i]);
    }
}

/* One block: Σ nll and #counted in a fixed order; out = sum / den. */
static __global__ void k_ce_finish(float *out, float *stats, const float *nll, const int32_t *tgt,
                                   const uint8_t *mask, int64_t N, float den_param) {
    __shared__ float sh[32];
    float s = 0.0f, c = 0.0f;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
        s += nll[i];
        c += counted(tgt, mask, i) ? 1.0f : 0.0f;
    }
    s = block_sum(s, sh);
    c = block_sum(c, sh);
    if (threadIdx.x == 0) {
        const float den = den_param > 0.0f ? den_param : c;
        stats[0] = s;
        stats[1] = den;
        out[0] = den > 0.0f ? s / den : 0.0f;
    }
}

template <typename T>
static __global__ void k_ce_bwd(float *dz, const T *z, const float *lse, const int32_t *tgt,
                                const uint8_t *mask, const float *dloss, const float *stats,
                                int64_t V) {
    const int64_t i = blockIdx.x;
    if (!counted(tgt, mask, i) || !(stats[1] > 0.0f)) return;
    const float c = dloss[0] / stats[1], l = lse[i];
    const T *row = z + i * V;
    float *drow = dz + i * V;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x)
        drow[j] += c * (expf(ld(row, j) - l) - (j == tgt[i] ? 1.0f : 0.0f));
}

static void ce_inputs(const lt_node *n, int64_t N, const int32_t **tgt, const uint8_t **mask) {
    LT_ASSERT(n->in[1]->dtype == LT_I32 && n->in[1]->shape[0] == N);
    LT_ASSERT(!n->in[2] || (n->in[2]->dtype == LT_U8 && n->in[2]->shape[0] == N));
    *tgt = (const int32_t *)n->in[1]->data;
    *mask = n->in[2] ? (const uint8_t *)n->in[2]->data : NULL;
}

static void ce_saved(lt_graph *g, lt_node *n, int64_t N, float **lse, float **stats) {
    const int64_t shn[1] = {N}, sh2[1] = {2};
    lt_tensor *tl = lt_graph_tensor(g, LT_F32, 1, shn);
    lt_tensor *ts = lt_graph_tensor(g, LT_F32, 1, sh2);
    if (n->out->requires_grad) n->saved[0] = tl, n->saved[1] = ts;
    *lse = lt_f32(tl);
    *stats = lt_f32(ts);
}

extern "C" void lt_cuda_cross_entropy_forward(lt_graph *g, lt_node *n) {
    const lt_tensor *tz = n->in[0];
    LT_ASSERT(tz->ndim == 2 && (tz->dtype == LT_BF16 || tz->dtype == LT_F32));
    LT_ASSERT(n->out->dtype == LT_F32);
    const int64_t N = tz->shape[0], V = tz->shape[1];
    const int32_t *tgt;
    const uint8_t *mask;
    ce_inputs(n, N, &tgt, &mask);
    float *lse, *stats;
    ce_saved(g, n, N, &lse, &stats);
    float *nll = (float *)lt_cu_temp(LT_TMP_CE2, (size_t)(N > 0 ? N : 1) * sizeof(float));
    cudaStream_t s = lt_stream();
    if (N > 0) {
        if (tz->dtype == LT_BF16)
            k_ce_rows<<<(unsigned)N, CE_THREADS, 0, s>>>(lse, nll, (const bf16 *)tz->data, tgt,
                                                          mask, V);
        else
            k_ce_rows<<<(unsigned)N, CE_THREADS, 0, s>>>(lse, nll, (const float *)tz->data, tgt,
                                                          mask, V);
        LT_CUDA_LAUNCH_CHECK();
    }
    k_ce_finish<<<1, 1024, 0, s>>>(lt_f32(n->out), stats, nll, tgt, mask, N, n->p.ce_denominator);
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_cross_entropy_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tz = n->in[0];
    if (!tz->requires_grad) return;
    const int64_t N = tz->shape[0], V = tz->shape[1];
    if (N == 0) return;
    const int32_t *tgt;
    const uint8_t *mask;
    ce_inputs(n, N, &tgt, &mask);
    float *dz = lt_f32(lt_graph_grad(g, tz));
    if (tz->dtype == LT_BF16)
        k_ce_bwd<<<(unsigned)N, CE_THREADS, 0, lt_stream()>>>(
            dz, (const bf16 *)tz->data, lt_f32(n->saved[0]), tgt, mask, lt_f32(n->out->grad),
            lt_f32(n->saved[1]), V);
    else
        k_ce_bwd<<<(unsigned)N, CE_THREADS, 0, lt_stream()>>>(
            dz, (const float *)tz->data, lt_f32(n->saved[0]), tgt, mask, lt_f32(n->out->grad),
            lt_f32(n->saved[1]), V);
    LT_CUDA_LAUNCH_CHECK();
}

/* ---- fused LM head + cross-entropy ------------------------------------------------------- */

static __global__ void k_lmce_init(float *m, float *s, float *tl, int64_t N) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N;
         i += (int64_t)gridDim.x * blockDim.x)
        m[i] = -INFINITY, s[i] = 0.0f, tl[i] = 0.0f;
}

/* Fold chunk columns [v0, v0 + vc) of row i into the running (m, s) and pick up the target. */
static __global__ void k_lmce_update(float *m, float *s, float *tl, const float *z,
                                     const int32_t *tgt, const uint8_t *mask, int64_t v0,
                                     int64_t vc) {
    __shared__ float sh[32];
    const int64_t i = blockIdx.x;
    if (!counted(tgt, mask, i)) return;
    const float *row = z + i * vc;
    float cm = -INFINITY;
    for (int64_t c = threadIdx.x; c < vc; c += blockDim.x) cm = fmaxf(cm, row[c]);
    cm = block_max(cm, sh);
    const float m_new = fmaxf(m[i], cm);
    float cs = 0.0f;
    for (int64_t c = threadIdx.x; c < vc; c += blockDim.x) cs += expf(row[c] - m_new);
    cs = block_sum(cs, sh);
    if (threadIdx.x == 0) {
        s[i] = s[i] * expf(m[i] - m_new) + cs;
        m[i] = m_new;
        const int64_t t = tgt[i];
        if (t >= v0 && t < v0 + vc) tl[i] = row[t - v0];
    }
}

static __global__ void k_lmce_final(float *lse, float *nll, const float *m, const float *s,
                                    const float *tl, const int32_t *tgt, const uint8_t *mask,
                                    int64_t N) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N;
         i += (int64_t)gridDim.x * blockDim.x) {
        if (!counted(tgt, mask, i)) {
            lse[i] = nll[i] = 0.0f;
            continue;
        }
        const float l = m[i] + logf(s[i]);
        lse[i] = l;
        nll[i] = l - tl[i];
    }
}

/* z (n) ← cap·tanh(z/cap) in place. */
static __global__ void k_lmce_cap(float *z, int64_t n, float cap) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        z[i] = lt_softcap_f(cap, z[i]);
}

/* gb (N, vc) bf16 = c · (softmax − onehot) · cap'(z) for counted rows, 0 elsewhere (z capped). */
static __global__ void k_lmce_grad(bf16 *gb, const float *z, const float *lse, const int32_t *tgt,
                                   const uint8_t *mask, const float *dloss, const float *stats,
                                   int64_t N, int64_t v0, int64_t vc, float cap) {
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < N * vc;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = idx / vc, j = idx % vc;
        float gv = 0.0f;
        if (counted(tgt, mask, i) && stats[1] > 0.0f) {
            const float c = dloss[0] / stats[1];
            gv = c * (expf(z[idx] - lse[i]) - (v0 + j == tgt[i] ? 1.0f : 0.0f));
            if (cap > 0.0f) gv *= lt_softcap_dy(cap, z[idx]);
        }
        gb[idx] = __float2bfloat16(gv);
    }
}

static int64_t lmce_chunk(int64_t V) { return V < LMCE_CHUNK ? V : LMCE_CHUNK; }

extern "C" void lt_cuda_lm_head_ce_forward(lt_graph *g, lt_node *n) {
    const lt_tensor *tx = n->in[0], *tW = n->in[1];
    LT_ASSERT(tx->dtype == LT_BF16 && tx->ndim == 2 && tW->ndim == 2);
    LT_ASSERT(tW->dtype == LT_BF16 || tW->dtype == LT_F32);
    const int64_t N = tx->shape[0], D = tx->shape[1], V = tW->shape[0];
    LT_ASSERT(tW->shape[1] == D);
    const int32_t *tgt;
    const uint8_t *mask;
    LT_ASSERT(n->in[2]->dtype == LT_I32 && n->in[2]->shape[0] == N);
    tgt = (const int32_t *)n->in[2]->data;
    mask = n->in[3] ? (const uint8_t *)n->in[3]->data : NULL;
    float *lse, *stats;
    ce_saved(g, n, N, &lse, &stats);
    cudaStream_t s = lt_stream();
    const int64_t Nn = N > 0 ? N : 1, vc = lmce_chunk(V);
    float *run = (float *)lt_cu_temp(LT_TMP_CE2, (size_t)Nn * 4 * sizeof(float));
    float *m = run, *sm = run + Nn, *tl = run + 2 * Nn, *nll = run + 3 * Nn;
    if (N > 0 && V > 0) {
        const bf16 *x = (const bf16 *)tx->data, *W = lt_cu_bf16_tmp(LT_TMP_W, tW);
        float *z = (float *)lt_cu_temp(LT_TMP_CE, (size_t)N * vc * sizeof(float));
        k_lmce_init<<<lt_blocks(N, CE_THREADS), CE_THREADS, 0, s>>>(m, sm, tl, N);
        LT_CUDA_LAUNCH_CHECK();
        for (int64_t v0 = 0; v0 < V; v0 += vc) {
            const int64_t w = V - v0 < vc ? V - v0 : vc;
            lt_cu_gemm(false, true, N, w, D, 1.0f, x, D, W + v0 * D, D, 0.0f, z, CUDA_R_32F, w);
            if (n->p.softcap > 0.0f)
                k_lmce_cap<<<lt_blocks(N * w, CE_THREADS), CE_THREADS, 0, s>>>(z, N * w,
                                                                               n->p.softcap);
            k_lmce_update<<<(unsigned)N, CE_THREADS, 0, s>>>(m, sm, tl, z, tgt, mask, v0, w);
            LT_CUDA_LAUNCH_CHECK();
        }
        k_lmce_final<<<lt_blocks(N, CE_THREADS), CE_THREADS, 0, s>>>(lse, nll, m, sm, tl, tgt,
                                                                     mask, N);
        LT_CUDA_LAUNCH_CHECK();
    }
    k_ce_finish<<<1, 1024, 0, s>>>(lt_f32(n->out), stats, nll, tgt, mask, N, n->p.ce_denominator);
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_lm_head_ce_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0], *tW = n->in[1];
    if (!tx->requires_grad && !tW->requires_grad) return;
    const int64_t N = tx->shape[0], D = tx->shape[1], V = tW->shape[0];
    if (N == 0 || V == 0) return;
    const int32_t *tgt = (const int32_t *)n->in[2]->data;
    const uint8_t *mask = n->in[3] ? (const uint8_t *)n->in[3]->data : NULL;
    cudaStream_t s = lt_stream();
    const int64_t vc = lmce_chunk(V);
    const bf16 *x = (const bf16 *)tx->data, *W = lt_cu_bf16_tmp(LT_TMP_W, tW);
    float *z = (float *)lt_cu_temp(LT_TMP_CE, (size_t)N * vc * sizeof(float));
    bf16 *gb = (bf16 *)lt_cu_temp(LT_TMP_DY, (size_t)N * vc * sizeof(bf16));
    float *dx = tx->requires_grad ? lt_f32(lt_graph_grad(g, tx)) : NULL;
    float *dW = tW->requires_grad ? lt_f32(lt_graph_grad(g, tW)) : NULL;
    for (int64_t v0 = 0; v0 < V; v0 += vc) {
        const int64_t w = V - v0 < vc ? V - v0 : vc;
        lt_cu_gemm(false, true, N, w, D, 1.0f, x, D, W + v0 * D, D, 0.0f, z, CUDA_R_32F, w);
        if (n->p.softcap > 0.0f)
            k_lmce_cap<<<lt_blocks(N * w, CE_THREADS), CE_THREADS, 0, s>>>(z, N * w, n->p.softcap);
        k_lmce_grad<<<lt_blocks(N * w, CE_THREADS), CE_THREADS, 0, s>>>(
            gb, z, lt_f32(n->saved[0]), tgt, mask, lt_f32(n->out->grad), lt_f32(n->saved[1]), N,
            v0, w, n->p.softcap);
        LT_CUDA_LAUNCH_CHECK();
        if (dx) lt_cu_gemm(false, false, N, D, w, 1.0f, gb, w, W + v0 * D, D, 1.0f, dx, CUDA_R_32F, D);
        if (dW)
            lt_cu_gemm(true, false, w, D, N, 1.0f, gb, w, x, D, 1.0f, dW + v0 * D, CUDA_R_32F, D);
    }
}
