/*
 * CPU elementwise add: out = a + b (same shapes). Backward: da += dout, db += dout.
 */
#include "../kernels.h"

void lt_cpu_add_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const float *a = lt_f32(n->in[0]); // (numel)
    const float *b = lt_f32(n->in[1]); // (numel)
    float *out = lt_f32(n->out);       // (numel)
    int64_t N = lt_tensor_numel(n->out);
#pragma omp parallel for simd schedule(static) if (N > 65536)
    for (int64_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}

void lt_cpu_add_backward(lt_graph *g, lt_node *n) {
    const float *dout = lt_f32(n->out->grad); // (numel)
    int64_t N = lt_tensor_numel(n->out);
    for (int k = 0; k < 2; k++) {
        if (!n->in[k]->requires_grad) continue;
        float *d = lt_f32(lt_graph_grad(g, n->in[k])); // (numel)
#pragma omp parallel for simd schedule(static) if (N > 65536)
        for (int64_t i = 0; i < N; i++) d[i] += dout[i];
    }
}
