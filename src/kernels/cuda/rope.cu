/*
 * rope.cu — rotary position embedding, Hugging Face rotate_half layout (semantics of
 * src/kernels/cpu/rope.c): for i < Dh/2, θ = pos · inv_freq[i],
 *   y_i = x_i cos θ − x_{i+Dh/2} sin θ,   y_{i+Dh/2} = x_{i+Dh/2} cos θ + x_i sin θ.
 * Backward rotates dy by −θ and accumulates into dx (f32).
 *
 * inv_freq is the node's third input (in[2], F32 [Dh/2] on the device): the model's precomputed,
 * possibly scaled frequencies (lt_rope_inv_freq). θ and its sin/cos are f32 (sincosf, full
 * precision: positions reach 10⁴–10⁵ radians).
 * One thread per (row, head, pair).
 */
#include "common.cuh"

#define ROPE_THREADS 256

template <typename TI, typename TO>
static __global__ void k_rope(TO *out, const TI *x, const int32_t *pos, const float *inv_freq,
                              int64_t N, int64_t H, int64_t Dh, float sign, bool acc) {
    const int64_t half = Dh / 2, total = N * H * half;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = t % half, rh = t / half, r = rh / H;
        const float f = inv_freq[i];
        float sn, cs;
        sincosf((float)pos[r] * f, &sn, &cs);
        sn *= sign;
        const int64_t o = rh * Dh + i;
        const float a = ld(x, o), b = ld(x, o + half);
        const float ya = a * cs - b * sn, yb = b * cs + a * sn;
        if (acc) {
            st(out, o, ld(out, o) + ya);
            st(out, o + half, ld(out, o + half) + yb);
        } else {
            st(out, o, ya);
            st(out, o + half, yb);
        }
    }
}

static const float *rope_inv_freq(const lt_node *n, int64_t Dh) {
    LT_ASSERT(n->n_in > 2 && n->in[2] && n->in[2]->dtype == LT_F32 &&
              n->in[2]->device == LT_CUDA && lt_tensor_numel(n->in[2]) == Dh / 2);
    return (const float *)n->in[2]->data;
}

extern "C" void lt_cuda_rope_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const lt_tensor *tx = n->in[0];
    LT_ASSERT(tx->dtype == LT_BF16 && n->out->dtype == LT_BF16 && n->in[1]->dtype == LT_I32);
    const int64_t Dh = tx->shape[tx->ndim - 1], H = tx->shape[tx->ndim - 2];
    const int64_t N = n->in[1]->shape[0];
    LT_ASSERT(Dh % 2 == 0 && N * H * Dh == lt_tensor_numel(tx));
    const int64_t total = N * H * Dh / 2;
    if (total == 0) return;
    k_rope<bf16, bf16><<<lt_blocks(total, ROPE_THREADS), ROPE_THREADS, 0, lt_stream()>>>(
        (bf16 *)n->out->data, (const bf16 *)tx->data, (const int32_t *)n->in[1]->data,
        rope_inv_freq(n, Dh), N, H, Dh, 1.0f, false);
    LT_CUDA_LAUNCH_CHECK();
}

extern "C" void lt_cuda_rope_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0];
    if (!tx->requires_grad) return;
    const int64_t Dh = tx->shape[tx->ndim - 1], H = tx->shape[tx->ndim - 2];
    const int64_t N = n->in[1]->shape[0];
    const int64_t total = N * H * Dh / 2;
    float *dx = lt_f32(lt_graph_grad(g, tx));
    if (total == 0) return;
    k_rope<float, float><<<lt_blocks(total, ROPE_THREADS), ROPE_THREADS, 0, lt_stream()>>>(
        dx, lt_f32(n->out->grad), (const int32_t *)n->in[1]->data, rope_inv_freq(n, Dh), N, H, Dh,
        -1.0f, true);
    LT_CUDA_LAUNCH_CHECK();
}
