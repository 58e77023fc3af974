/*
 * CPU SwiGLU (Shazeer, "GLU Variants Improve Transformer", arXiv 2002.05202):
 * out = silu(gate) · up with silu(x) = x·σ(x) (Elfwing et al., arXiv 1702.03118).
 * Backward: dup = dout · silu(gate); dgate = dout · up · σ(gate) · (1 + gate · (1 − σ(gate))).
 */
#include "../kernels.h"

#include <math.h>

void lt_cpu_swiglu_forward(lt_graph *g, lt_node *n) {
    (void)g;
    const float *gate = lt_f32(n->in[0]); // (N, F)
    const float *up = lt_f32(n->in[1]);   // (N, F)
    float *out = lt_f32(n->out);          // (N, F)
    int64_t M = lt_tensor_numel(n->out);
#pragma omp parallel for simd schedule(static) if (M > 32768)
    for (int64_t i = 0; i < M; i++) {
        float x = gate[i];
        out[i] = x / (1.0f + expf(-x)) * up[i];
    }
}

void lt_cpu_swiglu_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tg = n->in[0], *tu = n->in[1];
    const float *gate = lt_f32(tg);           // (N, F)
    const float *up = lt_f32(tu);             // (N, F)
    const float *dout = lt_f32(n->out->grad); // (N, F)
    float *dgate = tg->requires_grad ? lt_f32(lt_graph_grad(g, tg)) : NULL; // (N, F)
    float *dup = tu->requires_grad ? lt_f32(lt_graph_grad(g, tu)) : NULL;   // (N, F)
    int64_t M = lt_tensor_numel(n->out);
#pragma omp parallel for schedule(static) if (M > 32768)
    for (int64_t i = 0; i < M; i++) {
        float x = gate[i];
        float sig = 1.0f / (1.0f + expf(-x));
        if (dgate) dgate[i] += dout[i] * up[i] * sig * (1.0f + x * (1.0f - sig));
        if (dup) dup[i] += dout[i] * x * sig;
    }
}
