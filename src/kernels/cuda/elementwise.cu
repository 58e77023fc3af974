/*
 * elementwise.cu — CUDA add, GLU (SwiGLU / GeGLU), soft-capping, embedding, reshape, and the
 * f32<->bf16 conversions and scratch allocation the other ops share. Semantics are those of
 * src/kernels/cpu/{add,glu,softcap,embedding,reshape}.c; activations are bf16, grads f32 (core/device.h). Grid-stride loops, one
 * element per thread per iteration, computed in f32.
 */
#include "common.cuh"
#include "../act.h"

#define EW_THREADS 256

void *lt_cu_scratch(lt_graph *g, size_t n) {
    LT_ASSERT(g->device == LT_CUDA && g->dev_arena);
    return lt_dev_arena_alloc(g->dev_arena, n);
}

/* ---- conversions ---------------------------------------------------------------------------- */

static __global__ void k_f32_to_bf16(bf16 *dst, const float *src, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16(src[i]);
}
void lt_cu_f32_to_bf16(bf16 *dst, const float *src, int64_t n, cudaStream_t s) {
    if (n <= 0) return;
    k_f32_to_bf16<<<lt_blocks(n, EW_THREADS), EW_THREADS, 0, s>>>(dst, src, n);
    LT_CUDA_LAUNCH_CHECK();
}

static __global__ void k_bf16_to_f32(float *dst, const bf16 *src, int64_t n, bool acc) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = __bfloat162float(src[i]);
        dst[i] = acc ? dst[i] + v : v;
    }
}
void lt_cu_bf16_to_f32(float *dst, const bf16 *src, int64_t n, bool acc, cudaStream_t s) {
    if (n <= 0) return;
    k_bf16_to_f32<<<lt_blocks(n, EW_THREADS), EW_THREADS, 0, s>>>(dst, src, n, acc);
    LT_CUDA_LAUNCH_CHECK();
}

static struct {
    void *p;
    size_t n;
} temps[LT_TMP_COUNT];

void *lt_cu_temp(int slot, size_t n) {
    LT_ASSERT(slot >= 0 && slot < LT_TMP_COUNT);
    if (n > temps[slot].n) {
        LT_CUDA_CHECK(cudaStreamSynchronize(lt_stream()));
        if (temps[slot].p) LT_CUDA_CHECK(cudaFree(temps[slot].p));
        size_t cap = (n + 4095) & ~(size_t)4095;
        LT_CUDA_CHECK(cudaMalloc(&temps[slot].p, cap));
        temps[slot].n = cap;
    }
    return temps[slot].p;
}

extern "C" size_t lt_cuda_temp_bytes(void) {
    size_t t = 0;
    for (int i = 0; i < LT_TMP_COUNT; i++) t += temps[i].n;
    return t;
}

const bf16 *lt_cu_bf16_tmp(int slot, const lt_tensor *t) {
    LT_ASSERT(t->device == LT_CUDA);
    int64_t n = lt_tensor_numel(t);
    if (t->dtype == LT_BF16) return (const bf16 *)t->data;
    LT_ASSERT(t->dtype == LT_F32);
    bf16 *d = (bf16 *)lt_cu_temp(slot, (size_t)n * sizeof(bf16));
    lt_cu_f32_to_bf16(d, (const float *)t->data, n, lt_stream());
    return d;
}

/* ---- add ------------------------------------------------------------------------------------ */

static __global__ void k_add(bf16 *out, const bf16 *a, const bf16 *b, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16(__bfloat162float(a[i]) + __bfloat162float(b[i]));
}
static __global__ void k_acc_f32(float *d, const float *s, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        d[i] += s[i];
}
static void launch_acc_f32(float *d, const float *s, int64_t n, cudaStream_t st) {
    if (n <= 0) return;
    k_acc_f32<<<lt_blocks(n, EW_THREADS), EW_THREADS, 0, st>>>(d, s, n);
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_add_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const lt_tensor *a = n->in[0], *b = n->in[1];
    LT_ASSERT(a->dtype == LT_BF16 && b->dtype == LT_BF16 && n->out->dtype == LT_BF16);
    LT_ASSERT(lt_tensor_same_shape(a, b) && lt_tensor_same_shape(a, n->out));
    int64_t N = lt_tensor_numel(n->out);
    if (N == 0) return;
    k_add<<<lt_blocks(N, EW_THREADS), EW_THREADS, 0, lt_stream()>>>(
        (bf16 *)n->out->data, (const bf16 *)a->data, (const bf16 *)b->data, N);
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_add_backward(lt_graph *g, lt_node *n) {
    const float *dout = lt_f32(n->out->grad); // (numel)
    int64_t N = lt_tensor_numel(n->out);
    for (int k = 0; k < 2; k++)
        if (n->in[k]->requires_grad)
            launch_acc_f32(lt_f32(lt_graph_grad(g, n->in[k])), dout, N, lt_stream());
}

/* ---- glu (act from kernels/act.h, as on the CPU) -------------------------------------------- */

static __global__ void k_glu_fwd(bf16 *out, const bf16 *gate, const bf16 *up, int64_t n, int act) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16(lt_act_f(act, __bfloat162float(gate[i])) *
                                  __bfloat162float(up[i]));
}
static __global__ void k_glu_bwd(float *dgate, float *dup, const bf16 *gate, const bf16 *up,
                                 const float *dout, int64_t n, int act) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float x = __bfloat162float(gate[i]), u = __bfloat162float(up[i]), d = dout[i];
        if (dgate) dgate[i] += d * u * lt_act_df(act, x);
        if (dup) dup[i] += d * lt_act_f(act, x);
    }
}

extern "C" void lt_cuda_glu_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const lt_tensor *ga = n->in[0], *up = n->in[1];
    LT_ASSERT(ga->dtype == LT_BF16 && up->dtype == LT_BF16 && n->out->dtype == LT_BF16);
    LT_ASSERT(lt_tensor_same_shape(ga, up));
    int64_t N = lt_tensor_numel(n->out);
    if (N == 0) return;
    k_glu_fwd<<<lt_blocks(N, EW_THREADS), EW_THREADS, 0, lt_stream()>>>(
        (bf16 *)n->out->data, (const bf16 *)ga->data, (const bf16 *)up->data, N, (int)n->p.act);
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_glu_backward(lt_graph *g, lt_node *n) {
    lt_tensor *ga = n->in[0], *up = n->in[1];
    float *dg = ga->requires_grad ? lt_f32(lt_graph_grad(g, ga)) : NULL; // (N, F)
    float *du = up->requires_grad ? lt_f32(lt_graph_grad(g, up)) : NULL; // (N, F)
    int64_t N = lt_tensor_numel(n->out);
    if (N == 0 || (!dg && !du)) return;
    k_glu_bwd<<<lt_blocks(N, EW_THREADS), EW_THREADS, 0, lt_stream()>>>(
        dg, du, (const bf16 *)ga->data, (const bf16 *)up->data, lt_f32(n->out->grad), N,
        (int)n->p.act);
    LT_CUDA_LAUNCH_CHECK();
}

/* ---- softcap -------------------------------------------------------------------------------- */

static __global__ void k_softcap_fwd(bf16 *y, const bf16 *x, int64_t n, float c) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16(lt_softcap_f(c, __bfloat162float(x[i])));
}
/* the derivative from x (not from the bf16-rounded output) */
static __global__ void k_softcap_bwd(float *dx, const bf16 *x, const float *dy, int64_t n,
                                     float c) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dx[i] += dy[i] * lt_softcap_dy(c, lt_softcap_f(c, __bfloat162float(x[i])));
}

extern "C" void lt_cuda_softcap_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const lt_tensor *x = n->in[0];
    LT_ASSERT(x->dtype == LT_BF16 && n->out->dtype == LT_BF16 && n->p.softcap > 0.0f);
    int64_t N = lt_tensor_numel(n->out);
    if (N == 0) return;
    k_softcap_fwd<<<lt_blocks(N, EW_THREADS), EW_THREADS, 0, lt_stream()>>>(
        (bf16 *)n->out->data, (const bf16 *)x->data, N, n->p.softcap);
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_softcap_backward(lt_graph *g, lt_node *n) {
    lt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    int64_t N = lt_tensor_numel(n->out);
    if (N == 0) return;
    k_softcap_bwd<<<lt_blocks(N, EW_THREADS), EW_THREADS, 0, lt_stream()>>>(
        lt_f32(lt_graph_grad(g, x)), (const bf16 *)x->data, lt_f32(n->out->grad), N,
        n->p.softcap);
    LT_CUDA_LAUNCH_CHECK();
}

/* ---- embedding ------------------------------------------------------------------------------ */

template <typename T>
static __global__ void k_embed_fwd(bf16 *out, const T *table, const int32_t *ids, int64_t N,
                                   int64_t D, float scale) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * D;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / D, c = i % D;
        out[i] = __float2bfloat16(ld(table, (int64_t)ids[r] * D + c) * scale);
    }
}
/* Repeated ids scatter into one row: atomicAdd (f32) keeps it race-free. */
static __global__ void k_embed_bwd(float *dtable, const float *dout, const int32_t *ids,
                                   int64_t N, int64_t D, float scale) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * D;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / D, c = i % D;
        atomicAdd(&dtable[(int64_t)ids[r] * D + c], dout[i] * scale);
    }
}

extern "C" void lt_cuda_embedding_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const lt_tensor *table = n->in[0], *ids = n->in[1];
    LT_ASSERT(table->dtype == LT_F32 || table->dtype == LT_BF16);
    LT_ASSERT(ids->dtype == LT_I32 && n->out->dtype == LT_BF16);
    const int64_t N = ids->shape[0], D = table->shape[1];
    if (N * D == 0) return;
    /* ids are validated on the host side by the loader (range [0, V)), as on CPU */
    unsigned nb = lt_blocks(N * D, EW_THREADS);
    if (table->dtype == LT_F32)
        k_embed_fwd<<<nb, EW_THREADS, 0, lt_stream()>>>((bf16 *)n->out->data,
                                                        (const float *)table->data,
                                                        (const int32_t *)ids->data, N, D,
                                                        n->p.scale);
    else
        k_embed_fwd<<<nb, EW_THREADS, 0, lt_stream()>>>((bf16 *)n->out->data,
                                                        (const bf16 *)table->data,
                                                        (const int32_t *)ids->data, N, D,
                                                        n->p.scale);
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_embedding_backward(lt_graph *g, lt_node *n) {
    lt_tensor *table = n->in[0];
    if (!table->requires_grad) return;
    const int64_t N = n->in[1]->shape[0], D = table->shape[1];
    float *dt = lt_f32(lt_graph_grad(g, table)); // (V, D)
    if (N * D == 0) return;
    k_embed_bwd<<<lt_blocks(N * D, EW_THREADS), EW_THREADS, 0, lt_stream()>>>(
        dt, lt_f32(n->out->grad), (const int32_t *)n->in[1]->data, N, D, n->p.scale);
    LT_CUDA_LAUNCH_CHECK();
}

/* ---- reshape (a view, as on CPU) ------------------------------------------------------------ */

extern "C" void lt_cuda_reshape_forward(lt_graph *g, lt_node *n) {
    (void)g;
    n->out->data = n->in[0]->data;
}

extern "C" void lt_cuda_reshape_backward(lt_graph *g, lt_node *n) {
    lt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    lt_tensor *dout = n->out->grad;
    if (!x->grad) {
        lt_tensor *dx = (lt_tensor *)lt_arena_calloc(g->arena, sizeof *dx);
        dx->dtype = LT_F32;
        dx->device = dout->device;
        lt_tensor_set_shape(dx, x->ndim, x->shape);
        dx->data = dout->data;
        x->grad = dx;
        return;
    }
    launch_acc_f32(lt_f32(x->grad), lt_f32(dout), lt_tensor_numel(x), lt_stream());
}
