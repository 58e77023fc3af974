/*
 * CPU embedding lookup: out[i] = scale · table[ids[i]] (a row gather; scale = p.scale, Gemma's
 * sqrt(hidden_size)), and its backward, a scatter-add of scale · the output grad rows into the
 * table grad (only when the table is trainable).
 */
#include "../kernels.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void lt_cpu_embedding_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const float *table = lt_f32(n->in[0]);        // (V, D)
    const int32_t *ids = (int32_t *)n->in[1]->data; // (N)
    float *out = lt_f32(n->out);                  // (N, D)
    int64_t V = n->in[0]->shape[0], D = n->in[0]->shape[1], N = n->in[1]->shape[0];
    for (int64_t i = 0; i < N; i++) LT_ASSERT(ids[i] >= 0 && ids[i] < V);
    const float s = n->p.scale;
#pragma omp parallel for schedule(static) if (N * D > 65536)
    for (int64_t i = 0; i < N; i++) {
        if (s == 1.0f) {
            memcpy(out + i * D, table + (int64_t)ids[i] * D, (size_t)D * sizeof(float));
            continue;
        }
        const float *src = table + (int64_t)ids[i] * D;
        for (int64_t c = 0; c < D; c++) out[i * D + c] = src[c] * s;
    }
}

void lt_cpu_embedding_backward(lt_graph *g, lt_node *n) {
    lt_tensor *table = n->in[0];
    if (!table->requires_grad) return;
    const int32_t *ids = (int32_t *)n->in[1]->data; // (N)
    const float *dout = lt_f32(n->out->grad);       // (N, D)
    float *dtable = lt_f32(lt_graph_grad(g, table)); // (V, D)
    int64_t D = table->shape[1], N = n->in[1]->shape[0];
    const float s = n->p.scale;
    /* Repeated ids make a row-parallel scatter racy; split the feature dim across threads
     * instead, so every thread owns a disjoint column range of every row. */
#pragma omp parallel if (N * D > 65536)
    {
#ifdef _OPENMP
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
        int nt = 1, t = 0;
#endif
        int64_t c0 = D * t / nt, c1 = D * (t + 1) / nt;
        for (int64_t i = 0; i < N; i++) {
            float *dst = dtable + (int64_t)ids[i] * D;
            const float *src = dout + i * D;
            for (int64_t c = c0; c < c1; c++) dst[c] += s * src[c];
        }
    }
}
