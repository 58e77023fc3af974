/*
 * CPU gated linear unit (Shazeer, "GLU Variants Improve Transformer", arXiv 2002.05202):
 * out = act(gate) · up with act SiLU (SwiGLU) or tanh-GELU (GeGLU), kernels/act.h.
 * Backward: dup = dout · act(gate); dgate = dout · up · act'(gate).
 */
#include "../act.h"
#include "../kernels.h"

void lt_cpu_glu_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const float *gate = lt_f32(n->in[0]); // (N, F)
    const float *up = lt_f32(n->in[1]);   // (N, F)
    float *out = lt_f32(n->out);          // (N, F)
    const int64_t M = lt_tensor_numel(n->out);
    const int a = (int)n->p.act;
#pragma omp parallel for simd schedule(static) if (M > 32768)
    for (int64_t i = 0; i < M; i++) out[i] = lt_act_f(a, gate[i]) * up[i];
}

void lt_cpu_glu_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tg = n->in[0], *tu = n->in[1];
    const float *gate = lt_f32(tg);           // (N, F)
    const float *up = lt_f32(tu);             // (N, F)
    const float *dout = lt_f32(n->out->grad); // (N, F)
    float *dgate = tg->requires_grad ? lt_f32(lt_graph_grad(g, tg)) : NULL; // (N, F)
    float *dup = tu->requires_grad ? lt_f32(lt_graph_grad(g, tu)) : NULL;   // (N, F)
    const int64_t M = lt_tensor_numel(n->out);
    const int a = (int)n->p.act;
#pragma omp parallel for schedule(static) if (M > 32768)
    for (int64_t i = 0; i < M; i++) {
        if (dgate) dgate[i] += dout[i] * up[i] * lt_act_df(a, gate[i]);
        if (dup) dup[i] += dout[i] * lt_act_f(a, gate[i]);
    }
}
