/*
 * CPU LM head fused with token cross-entropy (op lm_head_cross_entropy): the same loss as
 * lt_linear(x, W) followed by lt_cross_entropy, without keeping [N, V] logits. Rows are processed
 * in blocks of LMCE_BR: logits of a block (LMCE_BR × V, one cblas_sgemm) give its lse and NLL;
 * backward recomputes them and applies g = dloss · (softmax − onehot) / den through two GEMMs:
 *   dx += g W,   dW += gᵀ x   (W only when trainable, e.g. an untied, unfrozen head).
 * With p.softcap > 0 the logits are soft-capped first, z ← c·tanh(z/c), and g is multiplied by
 * the cap's derivative 1 − (z/c)² (kernels/act.h).
 * Counting and denominator rules are those of cross_entropy.c.
 */
#include "../act.h"
#include "../kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

/* Rows per block: 256 rows × a 49152 vocabulary is a 48 MiB logits tile, large enough that the
 * block's sgemm runs at full rate (32-row blocks ran it at a fraction), small next to the
 * [N, V] logits the fused op exists to avoid. The tile comes from the step arena. */
#define LMCE_BR 256

void lt_cpu_lm_head_ce_forward(lt_graph *g, lt_node *n) {
    const float *x = lt_f32(n->in[0]);                                       // (N, D)
    const float *W = lt_f32(n->in[1]);                                       // (V, D)
    const int32_t *tgt = (const int32_t *)n->in[2]->data;                   // (N)
    const uint8_t *mask = n->in[3] ? (const uint8_t *)n->in[3]->data : NULL; // (N) or NULL
    const int64_t N = n->in[0]->shape[0], D = n->in[0]->shape[1], V = n->in[1]->shape[0];
    const float cap = n->p.softcap;
    float *lse = NULL; // (N)
    if (n->out->requires_grad) {
        n->saved[0] = lt_graph_tensor(g, LT_F32, 1, (int64_t[]){N});
        lse = lt_f32(n->saved[0]);
    }
    float *z = lt_f32(lt_graph_tensor(g, LT_F32, 2, (int64_t[]){LMCE_BR, V > 0 ? V : 1})); // (BR, V)
    double nll[LMCE_BR]; // per-row NLL of a block, summed in row order (deterministic)
    double total = 0.0;
    for (int64_t r0 = 0; r0 < N; r0 += LMCE_BR) {
        const int br = (int)(N - r0 < LMCE_BR ? N - r0 : LMCE_BR);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, br, (int)V, (int)D, 1.0f, x + r0 * D,
                    (int)D, W, (int)D, 0.0f, z, (int)V);
#pragma omp parallel for schedule(static)
        for (int r = 0; r < br; r++) {
            const int64_t i = r0 + r;
            nll[r] = 0.0;
            if (cap > 0.0f)
                for (int64_t c = 0; c < V; c++) z[(int64_t)r * V + c] = lt_softcap_f(cap, z[(int64_t)r * V + c]);
            if (!lt_ce_counted(tgt, mask, i)) {
                if (lse) lse[i] = 0.0f;
                continue;
            }
            LT_ASSERT(tgt[i] < V);
            const float *row = z + (int64_t)r * V;
            float m = -INFINITY;
            for (int64_t c = 0; c < V; c++) m = row[c] > m ? row[c] : m;
            float s = 0.0f;
            for (int64_t c = 0; c < V; c++) s += expf(row[c] - m);
            const float l = m + logf(s);
            if (lse) lse[i] = l;
            nll[r] = (double)l - (double)row[tgt[i]];
        }
        for (int r = 0; r < br; r++) total += nll[r];
    }
    const float den = lt_ce_denominator(n, N, tgt, mask);
    lt_f32(n->out)[0] = den > 0.0f ? (float)(total / den) : 0.0f;
}

void lt_cpu_lm_head_ce_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0], *tW = n->in[1];
    if (!tx->requires_grad && !tW->requires_grad) return;
    const float *x = lt_f32(tx), *W = lt_f32(tW);
    const int32_t *tgt = (const int32_t *)n->in[2]->data;
    const uint8_t *mask = n->in[3] ? (const uint8_t *)n->in[3]->data : NULL;
    const float *lse = lt_f32(n->saved[0]);
    const int64_t N = tx->shape[0], D = tx->shape[1], V = tW->shape[0];
    const float den = lt_ce_denominator(n, N, tgt, mask);
    if (den <= 0.0f || V == 0) return;
    const float c = lt_f32(n->out->grad)[0] / den, cap = n->p.softcap;
    float *dx = tx->requires_grad ? lt_f32(lt_graph_grad(g, tx)) : NULL; // (N, D)
    float *dW = tW->requires_grad ? lt_f32(lt_graph_grad(g, tW)) : NULL; // (V, D)
    float *z = lt_f32(lt_graph_tensor(g, LT_F32, 2, (int64_t[]){LMCE_BR, V})); // (BR, V) → g
    for (int64_t r0 = 0; r0 < N; r0 += LMCE_BR) {
        const int br = (int)(N - r0 < LMCE_BR ? N - r0 : LMCE_BR);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, br, (int)V, (int)D, 1.0f, x + r0 * D,
                    (int)D, W, (int)D, 0.0f, z, (int)V);
#pragma omp parallel for schedule(static)
        for (int r = 0; r < br; r++) {
            const int64_t i = r0 + r;
            float *row = z + (int64_t)r * V;
            if (!lt_ce_counted(tgt, mask, i)) {
                for (int64_t j = 0; j < V; j++) row[j] = 0.0f;
                continue;
            }
            if (cap > 0.0f) {
                for (int64_t j = 0; j < V; j++) {
                    const float zc = lt_softcap_f(cap, row[j]);
                    row[j] = (c * expf(zc - lse[i]) - (j == tgt[i] ? c : 0.0f)) *
                             lt_softcap_dy(cap, zc);
                }
                continue;
            }
            for (int64_t j = 0; j < V; j++) row[j] = c * expf(row[j] - lse[i]);
            row[tgt[i]] -= c;
        }
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, br, (int)D, (int)V, 1.0f, z,
                        (int)V, W, (int)D, 1.0f, dx + r0 * D, (int)D);
        if (dW)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)V, (int)D, br, 1.0f, z,
                        (int)V, x + r0 * D, (int)D, 1.0f, dW, (int)D);
    }
}
