/*
 * CPU token cross-entropy with a numerically stable log-softmax (log Σ exp computed after
 * subtracting the row max; e.g. Goodfellow, Bengio, Courville, "Deep Learning", §4.1):
 *   loss = Σ_{counted i} (lse_i − logits[i, t_i]) / den,
 * where row i is counted iff t_i >= 0 and (no mask or mask_i != 0), and den = p.ce_denominator
 * when > 0, else the number of counted rows (loss = 0 when none is counted).
 * Backward: dlogits[i, :] += dloss · (softmax(logits_i) − onehot(t_i)) / den for counted rows.
 */
#include "../kernels.h"

#include <math.h>

void lt_cpu_cross_entropy_forward(lt_graph *g, lt_node *n) {
    const lt_tensor *tl = n->in[0];
    const float *logits = lt_f32(tl);                                        // (N, V)
    const int32_t *tgt = (const int32_t *)n->in[1]->data;                   // (N)
    const uint8_t *mask = n->in[2] ? (const uint8_t *)n->in[2]->data : NULL; // (N) or NULL
    const int64_t N = tl->shape[0], V = tl->shape[1];
    float *lse = NULL; // (N)
    if (n->out->requires_grad) {
        n->saved[0] = lt_graph_tensor(g, LT_F32, 1, (int64_t[]){N});
        lse = lt_f32(n->saved[0]);
    }
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (N * V > 32768)
    for (int64_t i = 0; i < N; i++) {
        if (!lt_ce_counted(tgt, mask, i)) {
            if (lse) lse[i] = 0.0f;
            continue;
        }
        LT_ASSERT(tgt[i] < V);
        const float *row = logits + i * V;
        float m = -INFINITY;
        for (int64_t c = 0; c < V; c++) m = row[c] > m ? row[c] : m;
        float s = 0.0f;
        for (int64_t c = 0; c < V; c++) s += expf(row[c] - m);
        const float l = m + logf(s);
        if (lse) lse[i] = l;
        total += (double)l - (double)row[tgt[i]];
    }
    const float den = lt_ce_denominator(n, N, tgt, mask);
    lt_f32(n->out)[0] = den > 0.0f ? (float)(total / den) : 0.0f;
}

void lt_cpu_cross_entropy_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tl = n->in[0];
    if (!tl->requires_grad) return;
    const float *logits = lt_f32(tl);                                        // (N, V)
    const int32_t *tgt = (const int32_t *)n->in[1]->data;                   // (N)
    const uint8_t *mask = n->in[2] ? (const uint8_t *)n->in[2]->data : NULL; // (N) or NULL
    const float *lse = lt_f32(n->saved[0]);                                  // (N)
    const int64_t N = tl->shape[0], V = tl->shape[1];
    const float den = lt_ce_denominator(n, N, tgt, mask);
    if (den <= 0.0f) return; /* nothing counted: the loss is the constant 0 */
    const float c = lt_f32(n->out->grad)[0] / den;
    float *dl = lt_f32(lt_graph_grad(g, tl)); // (N, V)
#pragma omp parallel for schedule(static) if (N * V > 32768)
    for (int64_t i = 0; i < N; i++) {
        if (!lt_ce_counted(tgt, mask, i)) continue;
        const float *row = logits + i * V;
        float *drow = dl + i * V;
        const float l = lse[i];
        for (int64_t j = 0; j < V; j++) drow[j] += c * expf(row[j] - l);
        drow[tgt[i]] -= c;
    }
}
