/*
 * CPU rotary position embedding (Su et al., "RoFormer", arXiv 2104.09864) in Hugging Face's
 * rotate_half layout (transformers LlamaRotaryEmbedding / apply_rotary_pos_emb): for i < Dh/2,
 *   θ_i = pos · inv_freq[i]     (inv_freq from the model: base^(−2i/Dh), possibly rescaled)
 *   y_i        = x_i cos θ_i − x_{i+Dh/2} sin θ_i
 *   y_{i+Dh/2} = x_{i+Dh/2} cos θ_i + x_i sin θ_i
 * The rotation is orthogonal, so the backward is the inverse rotation (θ → −θ) of dy.
 * θ is computed in float32 as HF does; cos/sin are computed once per row (token) and reused
 * across its heads.
 */
#include "../kernels.h"

#include <math.h>

#define ROPE_MAX_HALF 512

/* Rotate every head of rows [0, N) by ±θ(pos[row]); sign = +1 forward, −1 backward.
 * acc: out += rotated (backward accumulation) instead of out = rotated. */
static void rope_apply(const float *x, // (N, H, Dh)
                       float *out,     // (N, H, Dh)
                       const int32_t *pos,
                       const float *inv_freq, // (Dh/2)
                       int64_t N, int64_t H, int64_t Dh, float sign, bool acc) {
    const int64_t half = Dh / 2;
#pragma omp parallel for schedule(static) if (N * H * Dh > 32768)
    for (int64_t r = 0; r < N; r++) {
        float cs[ROPE_MAX_HALF], sn[ROPE_MAX_HALF];
        const float p = (float)pos[r];
        for (int64_t i = 0; i < half; i++) {
            float th = p * inv_freq[i];
            cs[i] = cosf(th);
            sn[i] = sign * sinf(th);
        }
        for (int64_t hh = 0; hh < H; hh++) {
            const float *xr = x + (r * H + hh) * Dh;
            float *yr = out + (r * H + hh) * Dh;
            for (int64_t i = 0; i < half; i++) {
                float a = xr[i], b = xr[i + half];
                float ya = a * cs[i] - b * sn[i], yb = b * cs[i] + a * sn[i];
                if (acc) {
                    yr[i] += ya;
                    yr[i + half] += yb;
                } else {
                    yr[i] = ya;
                    yr[i + half] = yb;
                }
            }
        }
    }
}

void lt_cpu_rope_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const lt_tensor *tx = n->in[0];
    const int64_t Dh = tx->shape[tx->ndim - 1], H = tx->shape[tx->ndim - 2];
    const int64_t N = n->in[1]->shape[0];
    LT_ASSERT(Dh / 2 <= ROPE_MAX_HALF);
    rope_apply(lt_f32(tx), lt_f32(n->out), (int32_t *)n->in[1]->data, lt_f32(n->in[2]), N, H, Dh,
               1.0f, false);
}

void lt_cpu_rope_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0];
    if (!tx->requires_grad) return;
    const int64_t Dh = tx->shape[tx->ndim - 1], H = tx->shape[tx->ndim - 2];
    const int64_t N = n->in[1]->shape[0];
    rope_apply(lt_f32(n->out->grad), lt_f32(lt_graph_grad(g, tx)), (int32_t *)n->in[1]->data,
               lt_f32(n->in[2]), N, H, Dh, -1.0f, true);
}
