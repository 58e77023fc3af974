/*
 * CPU RMSNorm (Zhang & Sennrich, "Root Mean Square Layer Normalization", arXiv 1910.07467), as
 * in Hugging Face's LlamaRMSNorm: y = x · rstd · w' with rstd = 1 / sqrt(mean(x²) + eps) and
 * w' = p.offset + w (Gemma's (1 + w), formed in float32 as Gemma2RMSNorm does).
 * Backward, with x̂ = x · rstd and g = dy ⊙ w':
 *   dx = rstd · (g − x̂ · mean(g ⊙ x̂)),   dw = Σ_rows dy ⊙ x̂.
 * Rows run in parallel; dw is reduced through per-thread partial sums.
 */
#include "../kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lt_cpu_rmsnorm_forward(lt_graph *g, lt_node *n) {
    const lt_tensor *tx = n->in[0];
    const float *x = lt_f32(tx);        // (N, D)
    const float *w = lt_f32(n->in[1]);  // (D)
    float *y = lt_f32(n->out);          // (N, D)
    const int64_t D = tx->shape[tx->ndim - 1], N = lt_tensor_numel(tx) / D;
    const float eps = n->p.eps, off = n->p.offset;
    float *rstd = NULL; // (N)
    if (n->out->requires_grad) {
        n->saved[0] = lt_graph_tensor(g, LT_F32, 1, (int64_t[]){N});
        rstd = lt_f32(n->saved[0]);
    }
#pragma omp parallel for schedule(static) if (N * D > 32768)
    for (int64_t i = 0; i < N; i++) {
        const float *xr = x + i * D;
        float *yr = y + i * D;
        float ss = 0.0f;
        for (int64_t c = 0; c < D; c++) ss += xr[c] * xr[c];
        float rs = 1.0f / sqrtf(ss / (float)D + eps);
        for (int64_t c = 0; c < D; c++) yr[c] = xr[c] * rs * (off + w[c]);
        if (rstd) rstd[i] = rs;
    }
}

void lt_cpu_rmsnorm_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0], *tw = n->in[1];
    const float *x = lt_f32(tx);            // (N, D)
    const float *w = lt_f32(tw);            // (D)
    const float *dy = lt_f32(n->out->grad); // (N, D)
    const float *rstd = lt_f32(n->saved[0]); // (N)
    const int64_t D = tx->shape[tx->ndim - 1], N = lt_tensor_numel(tx) / D;
    float *dx = tx->requires_grad ? lt_f32(lt_graph_grad(g, tx)) : NULL; // (N, D)
    float *dw = tw->requires_grad ? lt_f32(lt_graph_grad(g, tw)) : NULL; // (D)
    const float off = n->p.offset;

#pragma omp parallel if (N * D > 32768)
    {
        float *dw_part = dw ? lt_xcalloc((size_t)D, sizeof(float)) : NULL; // (D) this thread's
#pragma omp for schedule(static)
        for (int64_t i = 0; i < N; i++) {
            const float *xr = x + i * D, *dyr = dy + i * D;
            const float rs = rstd[i];
            if (dx) {
                float dot = 0.0f; // Σ (dy ⊙ w) ⊙ x̂
                for (int64_t c = 0; c < D; c++) dot += dyr[c] * (off + w[c]) * xr[c];
                const float m = dot * rs / (float)D;
                float *dxr = dx + i * D;
                for (int64_t c = 0; c < D; c++)
                    dxr[c] += rs * (dyr[c] * (off + w[c]) - xr[c] * rs * m);
            }
            if (dw_part)
                for (int64_t c = 0; c < D; c++) dw_part[c] += dyr[c] * xr[c] * rs;
        }
        if (dw_part) {
#pragma omp critical
            for (int64_t c = 0; c < D; c++) dw[c] += dw_part[c];
            free(dw_part);
        }
    }
}
