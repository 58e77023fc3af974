/*
 * CPU reshape: a view. The output shares the input's data (set by the constructor; the forward
 * only re-asserts it). Backward: when the input has no grad yet its grad becomes a view of the
 * output grad (no copy, no zeroing); otherwise the output grad is accumulated into it.
 */
#include "../kernels.h"

void lt_cpu_reshape_forward(lt_graph *g, lt_node *n) {
    (void)g;
    n->out->data = n->in[0]->data;
}

void lt_cpu_reshape_backward(lt_graph *g, lt_node *n) {
    lt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    lt_tensor *dout = n->out->grad; // F32, out's shape
    if (!x->grad) {
        lt_tensor *dx = lt_arena_calloc(g->arena, sizeof *dx);
        dx->dtype = LT_F32;
        dx->device = dout->device;
        lt_tensor_set_shape(dx, x->ndim, x->shape);
        dx->data = dout->data; /* view of the output grad */
        x->grad = dx;
        return;
    }
    float *dx = lt_f32(x->grad);       // (numel)
    const float *dy = lt_f32(dout);    // (numel)
    int64_t N = lt_tensor_numel(x);
#pragma omp parallel for simd schedule(static) if (N > 65536)
    for (int64_t i = 0; i < N; i++) dx[i] += dy[i];
}
