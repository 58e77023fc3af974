/*
 * CPU soft-capping (Gemma 2's final_logit_softcapping, modeling_gemma2.py): y = c·tanh(x/c),
 * dx = dy · (1 − (y/c)²) (kernels/act.h). saved: none (the output is the op's own).
 */
#include "../act.h"
#include "../kernels.h"

void lt_cpu_softcap_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const float *x = lt_f32(n->in[0]); // (N)
    float *y = lt_f32(n->out);         // (N)
    const int64_t M = lt_tensor_numel(n->out);
    const float c = n->p.softcap;
#pragma omp parallel for schedule(static) if (M > 32768)
    for (int64_t i = 0; i < M; i++) y[i] = lt_softcap_f(c, x[i]);
}

void lt_cpu_softcap_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0];
    if (!tx->requires_grad) return;
    const float *y = lt_f32(n->out), *dy = lt_f32(n->out->grad); // (N)
    float *dx = lt_f32(lt_graph_grad(g, tx));                     // (N)
    const int64_t M = lt_tensor_numel(n->out);
    const float c = n->p.softcap;
#pragma omp parallel for schedule(static) if (M > 32768)
    for (int64_t i = 0; i < M; i++) dx[i] += dy[i] * lt_softcap_dy(c, y[i]);
}
