/*
 * attention.cu — causal grouped-query attention with packed-document masking, forward and
 * backward, in the FlashAttention-2 scheme (Dao, arXiv 2307.08691): K/V (resp. Q/dO) tiles staged
 * in shared memory, online softmax with running max and sum, the [T, T] score matrix never
 * stored; the forward saves lse (f32 [B, Hq, Tq]) and the backward recomputes P from it.
 * Semantics are those of src/kernels/cpu/attention.c (visibility j ≤ t = Tk − Tq + i,
 * t − j < window when the node has a sliding window, and equal doc ids; scale 1/sqrt(Dh); dK, dV
 * summed over each group's query heads; scores scale · q·k, soft-capped by p.softcap as on the
 * CPU). Tiles wholly before a block's first window start are skipped.
 *
 * Work split (this is the straightforward f32-FMA version; a tensor-core mma/wgmma version or
 * cuDNN SDPA is the next step, see bench/gpu/NOTES.md): one warp per query row (forward, dQ) or
 * per key row (dK/dV, so the group sum needs no atomics and is deterministic). Within a 32-wide
 * tile lane l owns key (or query) l for the dot products and then column c = lane + 32k of the
 * accumulators (NC = ceil(Dh/32) registers, unrolled so they stay in registers). Shared rows are
 * padded to Dh+1 floats so lane-per-row reads hit distinct banks. q/k/v/out bf16; dO, dQ, dK,
 * dV f32. Dh ≤ 256.
 */
#include "common.cuh"
#include "../act.h"

#define ATT_TILE 32
#define ATT_WARPS 8

typedef struct {
    int64_t B, Tq, Tk, Hq, Hkv, Dh;
    int64_t window; /* sliding window (> 0), INT64_MAX when the node has none */
    float scale;    /* score scale (p.scale) */
    float softcap;  /* p.softcap, 0 = none */
} att_shape;

static att_shape shape_of(const lt_node *n) {
    att_shape a;
    a.B = n->in[0]->shape[0];
    a.Tq = n->in[0]->shape[1];
    a.Hq = n->in[0]->shape[2];
    a.Dh = n->in[0]->shape[3];
    a.Tk = n->in[1]->shape[1];
    a.Hkv = n->in[1]->shape[2];
    a.window = n->p.window > 0 ? n->p.window : INT64_MAX;
    a.scale = n->p.scale;
    a.softcap = n->p.softcap;
    LT_ASSERT(a.scale > 0.0f);
    return a;
}

/* The score of a visible pair: scale · q·k, soft-capped when the node says so (kernels/act.h). */
__device__ static inline float score(const att_shape &a, float dot) {
    const float s = a.scale * dot;
    return a.softcap > 0.0f ? lt_softcap_f(a.softcap, s) : s;
}
/* d(score)/d(scale · q·k) from the score itself. */
__device__ static inline float dscore(const att_shape &a, float s) {
    return a.softcap > 0.0f ? lt_softcap_dy(a.softcap, s) : 1.0f;
}

/* Is key j inside the window of the query at absolute position t (causality checked apart)? */
__device__ static inline bool in_window(const att_shape &a, int64_t t, int64_t j) {
    return t - j < a.window;
}

/* The first key tile any query at absolute position >= t0 can see. */
__device__ static inline int64_t first_tile(const att_shape &a, int64_t t0) {
    const int64_t j = t0 - a.window + 1 > 0 ? t0 - a.window + 1 : 0;
    return j - j % ATT_TILE;
}

/* Stage rows [r0, r0 + ATT_TILE) of a (rows, H, Dh) tensor's head `h` into sm (ATT_TILE, Dh+1),
 * zero past `rows`. All threads of the block take part. */
template <typename T>
__device__ static void stage(float *sm, const T *src, int64_t r0, int64_t rows, int64_t H,
                             int64_t h, int64_t Dh) {
    for (int64_t idx = threadIdx.x; idx < ATT_TILE * Dh; idx += blockDim.x) {
        const int64_t r = idx / Dh, c = idx % Dh, row = r0 + r;
        sm[r * (Dh + 1) + c] = row < rows ? ld(src, (row * H + h) * Dh + c) : 0.0f;
    }
}

/* dot(a[0:Dh], b[0:Dh]) for one lane (serial over Dh). */
__device__ static inline float dotp(const float *a, const float *b, int64_t Dh) {
    float s = 0.0f;
    for (int64_t c = 0; c < Dh; c++) s += a[c] * b[c];
    return s;
}

/* ---- forward -------------------------------------------------------------------------------- */

template <int NC>
static __global__ void k_att_fwd(bf16 *out, float *lse, const bf16 *q, const bf16 *k,
                                 const bf16 *v, const int32_t *doc, att_shape a) {
    extern __shared__ float sm[];
    const int64_t Dh = a.Dh, P = Dh + 1;
    float *Ks = sm, *Vs = Ks + ATT_TILE * P, *Qs = Vs + ATT_TILE * P; // Qs (ATT_WARPS, Dh)
    int *docs = (int *)(Qs + ATT_WARPS * Dh);                          // (ATT_TILE)
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t bh = blockIdx.y, b = bh / a.Hq, h = bh % a.Hq, kvh = h / (a.Hq / a.Hkv);
    const int64_t i0 = (int64_t)blockIdx.x * ATT_WARPS, i = i0 + warp, off = a.Tk - a.Tq;
    const bool valid = i < a.Tq;
    const int64_t t = off + i;
    const int64_t t_last = off + (i0 + ATT_WARPS < a.Tq ? i0 + ATT_WARPS : a.Tq) - 1;
    const bf16 *qb = q + b * a.Tq * a.Hq * Dh, *kb = k + b * a.Tk * a.Hkv * Dh,
               *vb = v + b * a.Tk * a.Hkv * Dh;
    if (valid)
        for (int64_t c = lane; c < Dh; c += 32) Qs[warp * Dh + c] = ld(qb, (i * a.Hq + h) * Dh + c);
    const int my_doc = (valid && doc) ? doc[b * a.Tk + t] : 0;
    float m = -INFINITY, l = 0.0f, acc[NC];
#pragma unroll
    for (int kk = 0; kk < NC; kk++) acc[kk] = 0.0f;
    for (int64_t j0 = first_tile(a, off + i0); j0 <= t_last; j0 += ATT_TILE) {
        __syncthreads();
        stage(Ks, kb, j0, a.Tk, a.Hkv, kvh, Dh);
        stage(Vs, vb, j0, a.Tk, a.Hkv, kvh, Dh);
        if (threadIdx.x < ATT_TILE)
            docs[threadIdx.x] = (doc && j0 + threadIdx.x < a.Tk) ? doc[b * a.Tk + j0 + threadIdx.x] : 0;
        __syncthreads();
        if (!valid || j0 > t) continue;
        const int64_t j = j0 + lane;
        float s = -INFINITY;
        if (j <= t && in_window(a, t, j) && (!doc || docs[lane] == my_doc))
            s = score(a, dotp(Qs + warp * Dh, Ks + lane * P, Dh));
        const float m_new = fmaxf(m, warp_max(s));
        if (m_new == -INFINITY) continue; /* nothing visible yet (earlier documents) */
        const float p = s == -INFINITY ? 0.0f : expf(s - m_new);
        const float alpha = expf(m - m_new);
        l = l * alpha + warp_sum(p);
#pragma unroll
        for (int kk = 0; kk < NC; kk++) acc[kk] *= alpha;
        for (int jj = 0; jj < ATT_TILE; jj++) {
            const float pj = __shfl_sync(0xffffffffu, p, jj);
            if (pj == 0.0f) continue; /* warp-uniform */
#pragma unroll
            for (int kk = 0; kk < NC; kk++) {
                const int64_t c = lane + 32 * kk;
                if (c < Dh) acc[kk] += pj * Vs[jj * P + c];
            }
        }
        m = m_new;
    }
    if (!valid) return;
    const float inv = 1.0f / l;
#pragma unroll
    for (int kk = 0; kk < NC; kk++) {
        const int64_t c = lane + 32 * kk;
        if (c < Dh) out[((b * a.Tq + i) * a.Hq + h) * Dh + c] = __float2bfloat16(acc[kk] * inv);
    }
    if (lse && lane == 0) lse[(b * a.Hq + h) * a.Tq + i] = m + logf(l);
}

/* ---- backward: D_i = Σ_c dO·O ------------------------------------------------------------- */

static __global__ void k_att_D(float *D, const float *dO, const bf16 *O, att_shape a) {
    const int64_t row = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= a.B * a.Tq * a.Hq) return;
    /* row enumerates (b, i, h) in memory order */
    float s = 0.0f;
    for (int64_t c = lane; c < a.Dh; c += 32)
        s += dO[row * a.Dh + c] * __bfloat162float(O[row * a.Dh + c]);
    s = warp_sum(s);
    if (lane == 0) {
        const int64_t h = row % a.Hq, bi = row / a.Hq, i = bi % a.Tq, b = bi / a.Tq;
        D[(b * a.Hq + h) * a.Tq + i] = s;
    }
}

/* ---- backward: dQ (warp per query row) ---------------------------------------------------- */

template <int NC>
static __global__ void k_att_dq(float *dq, const bf16 *q, const bf16 *k, const bf16 *v,
                                const int32_t *doc, const float *dO, const float *lse,
                                const float *Dv, att_shape a) {
    extern __shared__ float sm[];
    const int64_t Dh = a.Dh, P = Dh + 1;
    float *Ks = sm, *Vs = Ks + ATT_TILE * P, *Qs = Vs + ATT_TILE * P, *Gs = Qs + ATT_WARPS * Dh;
    int *docs = (int *)(Gs + ATT_WARPS * Dh);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t bh = blockIdx.y, b = bh / a.Hq, h = bh % a.Hq, kvh = h / (a.Hq / a.Hkv);
    const int64_t i0 = (int64_t)blockIdx.x * ATT_WARPS, i = i0 + warp, off = a.Tk - a.Tq;
    const bool valid = i < a.Tq;
    const int64_t t = off + i;
    const int64_t t_last = off + (i0 + ATT_WARPS < a.Tq ? i0 + ATT_WARPS : a.Tq) - 1;
    const int64_t qrow = ((b * a.Tq + i) * a.Hq + h) * Dh;
    const bf16 *kb = k + b * a.Tk * a.Hkv * Dh, *vb = v + b * a.Tk * a.Hkv * Dh;
    float L = 0.0f, Di = 0.0f;
    int my_doc = 0;
    if (valid) {
        for (int64_t c = lane; c < Dh; c += 32) {
            Qs[warp * Dh + c] = __bfloat162float(q[qrow + c]);
            Gs[warp * Dh + c] = dO[qrow + c];
        }
        L = lse[(b * a.Hq + h) * a.Tq + i];
        Di = Dv[(b * a.Hq + h) * a.Tq + i];
        my_doc = doc ? doc[b * a.Tk + t] : 0;
    }
    float acc[NC];
#pragma unroll
    for (int kk = 0; kk < NC; kk++) acc[kk] = 0.0f;
    for (int64_t j0 = first_tile(a, off + i0); j0 <= t_last; j0 += ATT_TILE) {
        __syncthreads();
        stage(Ks, kb, j0, a.Tk, a.Hkv, kvh, Dh);
        stage(Vs, vb, j0, a.Tk, a.Hkv, kvh, Dh);
        if (threadIdx.x < ATT_TILE)
            docs[threadIdx.x] = (doc && j0 + threadIdx.x < a.Tk) ? doc[b * a.Tk + j0 + threadIdx.x] : 0;
        __syncthreads();
        if (!valid || j0 > t) continue;
        const int64_t j = j0 + lane;
        float ds = 0.0f;
        if (j <= t && in_window(a, t, j) && (!doc || docs[lane] == my_doc)) {
            const float sc = score(a, dotp(Qs + warp * Dh, Ks + lane * P, Dh));
            const float p = expf(sc - L);
            const float dp = dotp(Gs + warp * Dh, Vs + lane * P, Dh);
            ds = p * (dp - Di) * dscore(a, sc);
        }
        for (int jj = 0; jj < ATT_TILE; jj++) {
            const float dj = __shfl_sync(0xffffffffu, ds, jj);
            if (dj == 0.0f) continue;
#pragma unroll
            for (int kk = 0; kk < NC; kk++) {
                const int64_t c = lane + 32 * kk;
                if (c < Dh) acc[kk] += dj * Ks[jj * P + c];
            }
        }
    }
    if (!valid) return;
#pragma unroll
    for (int kk = 0; kk < NC; kk++) {
        const int64_t c = lane + 32 * kk;
        if (c < Dh) dq[qrow + c] += a.scale * acc[kk];
    }
}

/* ---- backward: dK, dV (warp per key row, summed over the group's query heads) -------------- */

template <int NC>
static __global__ void k_att_dkv(float *dk, float *dv, const bf16 *q, const bf16 *k,
                                 const bf16 *v, const int32_t *doc, const float *dO,
                                 const float *lse, const float *Dv, att_shape a) {
    extern __shared__ float sm[];
    const int64_t Dh = a.Dh, P = Dh + 1;
    float *Qs = sm, *Gs = Qs + ATT_TILE * P, *Kr = Gs + ATT_TILE * P, *Vr = Kr + ATT_WARPS * Dh;
    float *Ls = Vr + ATT_WARPS * Dh, *Ds = Ls + ATT_TILE;
    int *docs = (int *)(Ds + ATT_TILE);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t bk = blockIdx.y, b = bk / a.Hkv, kvh = bk % a.Hkv, group = a.Hq / a.Hkv;
    const int64_t j0b = (int64_t)blockIdx.x * ATT_WARPS, j = j0b + warp, off = a.Tk - a.Tq;
    const bool valid = j < a.Tk;
    const int64_t krow = ((b * a.Tk + j) * a.Hkv + kvh) * Dh;
    int my_doc = 0;
    if (valid) {
        for (int64_t c = lane; c < Dh; c += 32) {
            Kr[warp * Dh + c] = __bfloat162float(k[krow + c]);
            Vr[warp * Dh + c] = __bfloat162float(v[krow + c]);
        }
        my_doc = doc ? doc[b * a.Tk + j] : 0;
    }
    float adk[NC], adv[NC];
#pragma unroll
    for (int kk = 0; kk < NC; kk++) adk[kk] = adv[kk] = 0.0f;
    /* the first query that can see key j0b is i = j0b − off */
    int64_t ifirst = j0b - off;
    if (ifirst < 0) ifirst = 0;
    ifirst -= ifirst % ATT_TILE;
    const bf16 *qb = q + b * a.Tq * a.Hq * Dh;
    const float *gb = dO + b * a.Tq * a.Hq * Dh;
    /* with a window, the last query that can see key j_last = j0b + ATT_WARPS − 1 sits at
     * t = j_last + window − 1, i.e. i = t − off */
    int64_t iend = a.Tq;
    if (a.window <= a.Tk && j0b + ATT_WARPS - 1 + a.window - off < iend)
        iend = j0b + ATT_WARPS - 1 + a.window - off;
    for (int64_t hh = 0; hh < group; hh++) {
        const int64_t h = kvh * group + hh;
        for (int64_t i0 = ifirst; i0 < iend; i0 += ATT_TILE) {
            __syncthreads();
            stage(Qs, qb, i0, a.Tq, a.Hq, h, Dh);
            stage(Gs, gb, i0, a.Tq, a.Hq, h, Dh);
            if (threadIdx.x < ATT_TILE) {
                const int64_t ii = i0 + threadIdx.x;
                const bool in = ii < a.Tq;
                Ls[threadIdx.x] = in ? lse[(b * a.Hq + h) * a.Tq + ii] : 0.0f;
                Ds[threadIdx.x] = in ? Dv[(b * a.Hq + h) * a.Tq + ii] : 0.0f;
                docs[threadIdx.x] = (in && doc) ? doc[b * a.Tk + off + ii] : 0;
            }
            __syncthreads();
            if (!valid) continue;
            const int64_t i = i0 + lane;
            float p = 0.0f, ds = 0.0f;
            if (i < a.Tq && j <= off + i && in_window(a, off + i, j) &&
                (!doc || docs[lane] == my_doc)) {
                const float sc = score(a, dotp(Qs + lane * P, Kr + warp * Dh, Dh));
                p = expf(sc - Ls[lane]);
                const float dp = dotp(Gs + lane * P, Vr + warp * Dh, Dh);
                ds = p * (dp - Ds[lane]) * dscore(a, sc);
            }
            for (int ii = 0; ii < ATT_TILE; ii++) {
                const float pi = __shfl_sync(0xffffffffu, p, ii);
                const float di = __shfl_sync(0xffffffffu, ds, ii);
                if (pi == 0.0f && di == 0.0f) continue;
#pragma unroll
                for (int kk = 0; kk < NC; kk++) {
                    const int64_t c = lane + 32 * kk;
                    if (c < Dh) {
                        adv[kk] += pi * Gs[ii * P + c];
                        adk[kk] += di * Qs[ii * P + c];
                    }
                }
            }
        }
    }
    if (!valid) return;
#pragma unroll
    for (int kk = 0; kk < NC; kk++) {
        const int64_t c = lane + 32 * kk;
        if (c < Dh) {
            if (dk) dk[krow + c] += a.scale * adk[kk];
            if (dv) dv[krow + c] += adv[kk];
        }
    }
}

/* ---- launchers ------------------------------------------------------------------------------ */

template <typename K>
static void set_smem(K kern, size_t bytes) {
    if (bytes > 48 * 1024)
        LT_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)bytes));
}

#define ATT_DISPATCH(Dh, ...)                                                                   \
    do {                                                                                         \
        if ((Dh) <= 32) { constexpr int NC = 1; __VA_ARGS__; }                                          \
        else if ((Dh) <= 64) { constexpr int NC = 2; __VA_ARGS__; }                                     \
        else if ((Dh) <= 128) { constexpr int NC = 4; __VA_ARGS__; }                                    \
        else { constexpr int NC = 8; __VA_ARGS__; }                                                     \
    } while (0)

static void check_inputs(const lt_node *n) {
    for (int i = 0; i < 3; i++)
        LT_ASSERT(n->in[i]->dtype == LT_BF16 && n->in[i]->device == LT_CUDA && n->in[i]->ndim == 4);
    LT_ASSERT(!n->in[3] || n->in[3]->dtype == LT_I32);
    LT_ASSERT(n->in[0]->shape[3] <= 256);
}

extern "C" void lt_cuda_attention_forward(lt_graph *g, lt_node *n) {
    check_inputs(n);
    LT_ASSERT(n->out->dtype == LT_BF16);
    const att_shape a = shape_of(n);
    float *lse = NULL;
    if (n->out->requires_grad) {
        const int64_t shp[3] = {a.B, a.Hq, a.Tq};
        n->saved[0] = lt_graph_tensor(g, LT_F32, 3, shp);
        lse = lt_f32(n->saved[0]);
    }
    if (a.B * a.Tq * a.Hq == 0) return;
    const size_t smem = (size_t)(2 * ATT_TILE * (a.Dh + 1) + ATT_WARPS * a.Dh + ATT_TILE) * 4;
    dim3 grid((unsigned)((a.Tq + ATT_WARPS - 1) / ATT_WARPS), (unsigned)(a.B * a.Hq));
    const int32_t *doc = n->in[3] ? (const int32_t *)n->in[3]->data : NULL;
    ATT_DISPATCH(a.Dh, {
        set_smem(k_att_fwd<NC>, smem);
        k_att_fwd<NC><<<grid, ATT_WARPS * 32, smem, lt_stream()>>>(
            (bf16 *)n->out->data, lse, (const bf16 *)n->in[0]->data,
            (const bf16 *)n->in[1]->data, (const bf16 *)n->in[2]->data, doc, a);
    });
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_attention_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tq = n->in[0], *tk = n->in[1], *tv = n->in[2];
    float *dq = tq->requires_grad ? lt_f32(lt_graph_grad(g, tq)) : NULL;
    float *dk = tk->requires_grad ? lt_f32(lt_graph_grad(g, tk)) : NULL;
    float *dv = tv->requires_grad ? lt_f32(lt_graph_grad(g, tv)) : NULL;
    if (!dq && !dk && !dv) return;
    const att_shape a = shape_of(n);
    if (a.B * a.Tq * a.Hq == 0) return;
    LT_ASSERT(n->saved[0] != NULL);
    const float *lse = lt_f32(n->saved[0]), *dO = lt_f32(n->out->grad);
    const bf16 *q = (const bf16 *)tq->data, *k = (const bf16 *)tk->data,
               *v = (const bf16 *)tv->data;
    const int32_t *doc = n->in[3] ? (const int32_t *)n->in[3]->data : NULL;
    cudaStream_t s = lt_stream();
    float *D = (float *)lt_cu_temp(LT_TMP_T, (size_t)(a.B * a.Hq * a.Tq) * sizeof(float));
    const int64_t rows = a.B * a.Tq * a.Hq;
    k_att_D<<<(unsigned)((rows + 7) / 8), 256, 0, s>>>(D, dO, (const bf16 *)n->out->data, a);
    LT_CUDA_LAUNCH_CHECK();
    if (dq) {
        const size_t smem = (size_t)(2 * ATT_TILE * (a.Dh + 1) + 2 * ATT_WARPS * a.Dh + ATT_TILE) * 4;
        dim3 grid((unsigned)((a.Tq + ATT_WARPS - 1) / ATT_WARPS), (unsigned)(a.B * a.Hq));
        ATT_DISPATCH(a.Dh, {
            set_smem(k_att_dq<NC>, smem);
            k_att_dq<NC><<<grid, ATT_WARPS * 32, smem, s>>>(dq, q, k, v, doc, dO, lse, D, a);
        });
        LT_CUDA_LAUNCH_CHECK();
    }
    if (dk || dv) {
        const size_t smem =
            (size_t)(2 * ATT_TILE * (a.Dh + 1) + 2 * ATT_WARPS * a.Dh + 3 * ATT_TILE) * 4;
        dim3 grid((unsigned)((a.Tk + ATT_WARPS - 1) / ATT_WARPS), (unsigned)(a.B * a.Hkv));
        ATT_DISPATCH(a.Dh, {
            set_smem(k_att_dkv<NC>, smem);
            k_att_dkv<NC><<<grid, ATT_WARPS * 32, smem, s>>>(dk, dv, q, k, v, doc, dO, lse, D, a);
        });
        LT_CUDA_LAUNCH_CHECK();
    }
}
