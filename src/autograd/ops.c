/*
 * ops — the op table (one row per lt_op, enum-indexed) and the op constructors of autograd.h.
 *
 * A constructor checks shapes and dtypes (LT_ASSERT: a mismatch is a bug in the model code),
 * allocates its output from the graph arena and hands the node to lt_graph_apply(), which runs the
 * device kernel and records the node when an input requires a gradient. Kernels live in
 * src/kernels/; what each kernel reads from the node is documented in src/kernels/kernels.h.
 */
#include "autograd.h"

#include "../kernels/kernels.h"
#include "../quant/quant.h"

/* CUDA entry points fill the device columns when the build has CUDA (kernels.h). */
#ifdef LATHE_CUDA
#define CUDA_FB(name) lt_cuda_##name##_forward, lt_cuda_##name##_backward
#else
#define CUDA_FB(name) NULL, NULL
#endif

#include <string.h>
#include <math.h>

#define DT(t) (1u << (t))
/* weight dtypes: the CPU dequantizes every block format tile by tile (kernels/cpu/linear.c); the
 * CUDA linear converts F32 and dequantizes Q8_0 / NF4 to bf16 per GEMM (kernels/cuda/linear.cu) */
#define CPU_LINEAR_WT (DT(LT_F32) | DT(LT_Q8_0) | DT(LT_Q4_0) | DT(LT_Q4_1) | DT(LT_NF4))
#define CUDA_LINEAR_WT (DT(LT_F32) | DT(LT_BF16) | DT(LT_Q8_0) | DT(LT_NF4))
#define F32_BF16 (DT(LT_F32) | DT(LT_BF16))

const lt_op_def lt_op_table[LT_OP_COUNT] = {
    [LT_OP_EMBEDDING] = {"embedding", lt_cpu_embedding_forward, lt_cpu_embedding_backward,
                         CUDA_FB(embedding), {DT(LT_F32), F32_BF16}},
    [LT_OP_LINEAR] = {"linear", lt_cpu_linear_forward, lt_cpu_linear_backward, CUDA_FB(linear),
                      {CPU_LINEAR_WT, CUDA_LINEAR_WT}},
    [LT_OP_RMSNORM] = {"rmsnorm", lt_cpu_rmsnorm_forward, lt_cpu_rmsnorm_backward,
                       CUDA_FB(rmsnorm), {DT(LT_F32), F32_BF16}},
    [LT_OP_ROPE] = {"rope", lt_cpu_rope_forward, lt_cpu_rope_backward, CUDA_FB(rope), {0, 0}},
    [LT_OP_ATTENTION] = {"attention", lt_cpu_attention_forward, lt_cpu_attention_backward,
                         CUDA_FB(attention), {0, 0}},
    [LT_OP_GLU] = {"glu", lt_cpu_glu_forward, lt_cpu_glu_backward, CUDA_FB(glu), {0, 0}},
    [LT_OP_ADD] = {"add", lt_cpu_add_forward, lt_cpu_add_backward, CUDA_FB(add), {0, 0}},
    [LT_OP_CROSS_ENTROPY] = {"cross_entropy", lt_cpu_cross_entropy_forward,
                             lt_cpu_cross_entropy_backward, CUDA_FB(cross_entropy), {0, 0}},
    [LT_OP_RESHAPE] = {"reshape", lt_cpu_reshape_forward, lt_cpu_reshape_backward,
                       CUDA_FB(reshape), {0, 0}},
    [LT_OP_LM_HEAD_CE] = {"lm_head_cross_entropy", lt_cpu_lm_head_ce_forward,
                          lt_cpu_lm_head_ce_backward, CUDA_FB(lm_head_ce),
                          {DT(LT_F32), F32_BF16}},
    [LT_OP_SOFTCAP] = {"softcap", lt_cpu_softcap_forward, lt_cpu_softcap_backward,
                       CUDA_FB(softcap), {0, 0}},
};
_Static_assert(sizeof lt_op_table / sizeof lt_op_table[0] == LT_OP_COUNT,
               "lt_op_table needs exactly one row per lt_op");
_Static_assert(LT_OP_COUNT == 11, "a new op needs a row in lt_op_table, a kernel and a test");

bool lt_op_supports(lt_op op, lt_dtype weight, lt_device dev) {
    const lt_op_def *d = &lt_op_table[op];
    if (!(dev == LT_CUDA ? d->forward_cuda && d->backward_cuda : d->forward_cpu != NULL))
        return false;
    unsigned mask = d->weight_dtypes[dev == LT_CUDA];
    return mask == 0 || (mask >> weight & 1u);
}

static bool is_f32(const lt_tensor *t) { return t && t->dtype == LT_F32; }

/* Activation dtype per device (core/device.h): F32 on CPU, BF16 on CUDA. */
lt_dtype lt_act_dtype(lt_device dev) { return dev == LT_CUDA ? LT_BF16 : LT_F32; }
static lt_dtype act_dt(const lt_graph *g) { return lt_act_dtype(g->device); }
static bool is_act(const lt_graph *g, const lt_tensor *t) {
    return t && t->dtype == act_dt(g) && t->device == g->device;
}
/* A frozen weight: F32 anywhere, or BF16 on CUDA. */
static bool is_wt(const lt_graph *g, const lt_tensor *t) {
    return t && (t->dtype == LT_F32 || (g->device == LT_CUDA && t->dtype == LT_BF16));
}

/* Rows of t when its last dim is the feature dim. */
static int64_t rows_of(const lt_tensor *t) { return lt_tensor_numel(t) / t->shape[t->ndim - 1]; }

lt_tensor *lt_embedding(lt_graph *g, lt_tensor *table, lt_tensor *ids, float scale) {
    LT_ASSERT(is_wt(g, table) && table->ndim == 2 && scale > 0.0f);
    LT_ASSERT(ids && ids->dtype == LT_I32 && ids->ndim == 1);
    int64_t shape[2] = {ids->shape[0], table->shape[1]};
    lt_tensor *out = lt_graph_tensor(g, act_dt(g), 2, shape);
    lt_tensor *in[2] = {table, ids};
    lt_op_params p = {.scale = scale};
    lt_graph_apply(g, LT_OP_EMBEDDING, 2, in, out, &p);
    return out;
}

lt_tensor *lt_linear(lt_graph *g, lt_tensor *x, lt_tensor *W, lt_tensor *A, lt_tensor *B,
                     float scale, float dropout, uint64_t seed) {
    return lt_linear_bias(g, x, W, NULL, A, B, scale, dropout, seed);
}

lt_tensor *lt_linear_bias(lt_graph *g, lt_tensor *x, lt_tensor *W, lt_tensor *b, lt_tensor *A,
                          lt_tensor *B, float scale, float dropout, uint64_t seed) {
    LT_ASSERT(is_act(g, x) && W && W->ndim == 2);
    int64_t in_f = W->shape[1], out_f = W->shape[0];
    LT_ASSERT(x->shape[x->ndim - 1] == in_f);
    bool quantized = W->dtype == LT_NF4 || W->dtype == LT_Q8_0 || W->dtype == LT_Q4_0 ||
                     W->dtype == LT_Q4_1;
    LT_ASSERT(quantized || is_wt(g, W));
    if (quantized) { /* a frozen quantized base: whole blocks per row, no grad, NF4 state */
        LT_ASSERT(!W->requires_grad && in_f % lt_dtype_block_elems(W->dtype) == 0);
        LT_ASSERT(W->dtype != LT_NF4 ||
                  (W->quant && in_f % ((const lt_nf4_state *)W->quant)->blocksize == 0));
    }
    LT_ASSERT((A == NULL) == (B == NULL));
    if (b) LT_ASSERT(is_wt(g, b) && b->ndim == 1 && b->shape[0] == out_f && !b->requires_grad);
    if (A) {
        LT_ASSERT(is_f32(A) && is_f32(B) && A->ndim == 2 && B->ndim == 2);
        LT_ASSERT(A->shape[1] == in_f && B->shape[0] == out_f && B->shape[1] == A->shape[0]);
        LT_ASSERT(dropout >= 0.0f && dropout < 1.0f);
    }
    int64_t shape[LT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = out_f;
    lt_tensor *out = lt_graph_tensor(g, act_dt(g), x->ndim, shape);
    lt_op_params p = {0};
    p.lora_scale = A ? scale : 0.0f;
    p.dropout = A ? dropout : 0.0f;
    p.seed = seed;
    lt_tensor *in[5] = {x, W, A, B, b};
    lt_graph_apply(g, LT_OP_LINEAR, 5, in, out, &p);
    return out;
}

lt_tensor *lt_rmsnorm(lt_graph *g, lt_tensor *x, lt_tensor *w, float eps, float offset) {
    LT_ASSERT(is_act(g, x) && is_wt(g, w) && w->ndim == 1);
    LT_ASSERT(x->shape[x->ndim - 1] == w->shape[0]);
    LT_ASSERT(eps > 0.0f);
    lt_tensor *out = lt_graph_tensor(g, act_dt(g), x->ndim, x->shape);
    lt_op_params p = {0};
    p.eps = eps;
    p.offset = offset;
    lt_tensor *in[2] = {x, w};
    lt_graph_apply(g, LT_OP_RMSNORM, 2, in, out, &p);
    return out;
}

lt_tensor *lt_rope(lt_graph *g, lt_tensor *x, lt_tensor *pos, lt_tensor *inv_freq) {
    LT_ASSERT(is_act(g, x) && (x->ndim == 3 || x->ndim == 4));
    LT_ASSERT(pos && pos->dtype == LT_I32 && pos->ndim == 1);
    int64_t dh = x->shape[x->ndim - 1], h = x->shape[x->ndim - 2];
    LT_ASSERT(dh % 2 == 0 && dh <= 1024);
    LT_ASSERT(pos->shape[0] * h * dh == lt_tensor_numel(x));
    LT_ASSERT(is_f32(inv_freq) && inv_freq->ndim == 1 && inv_freq->shape[0] * 2 == dh);
    LT_ASSERT(!inv_freq->requires_grad);
    lt_tensor *out = lt_graph_tensor(g, act_dt(g), x->ndim, x->shape);
    lt_tensor *in[3] = {x, pos, inv_freq};
    lt_graph_apply(g, LT_OP_ROPE, 3, in, out, NULL);
    return out;
}

lt_tensor *lt_attention(lt_graph *g, lt_tensor *q, lt_tensor *k, lt_tensor *v, lt_tensor *doc,
                        const lt_attn_opts *o) {
    LT_ASSERT(is_act(g, q) && is_act(g, k) && is_act(g, v));
    LT_ASSERT(q->ndim == 4 && k->ndim == 4 && lt_tensor_same_shape(k, v));
    LT_ASSERT(q->shape[0] == k->shape[0] && q->shape[3] == k->shape[3]);
    LT_ASSERT(k->shape[1] >= q->shape[1] && q->shape[1] >= 1);
    LT_ASSERT(k->shape[2] >= 1 && q->shape[2] % k->shape[2] == 0);
    if (doc) {
        LT_ASSERT(doc->dtype == LT_I32 && doc->ndim == 2);
        LT_ASSERT(doc->shape[0] == k->shape[0] && doc->shape[1] == k->shape[1]);
    }
    const lt_attn_opts none = {0};
    if (!o) o = &none;
    LT_ASSERT(o->window >= 0 && o->scale >= 0.0f && o->softcap >= 0.0f);
    lt_tensor *out = lt_graph_tensor(g, act_dt(g), 4, q->shape);
    lt_tensor *in[4] = {q, k, v, doc};
    lt_op_params p = {.window = o->window,
                      .scale = o->scale > 0.0f ? o->scale : 1.0f / sqrtf((float)q->shape[3]),
                      .softcap = o->softcap};
    lt_graph_apply(g, LT_OP_ATTENTION, 4, in, out, &p);
    return out;
}

lt_tensor *lt_glu(lt_graph *g, lt_tensor *gate, lt_tensor *up, lt_act act) {
    LT_ASSERT(is_act(g, gate) && is_act(g, up) && lt_tensor_same_shape(gate, up));
    LT_ASSERT(act == LT_ACT_SILU || act == LT_ACT_GELU_TANH);
    lt_tensor *out = lt_graph_tensor(g, act_dt(g), gate->ndim, gate->shape);
    lt_tensor *in[2] = {gate, up};
    lt_op_params p = {.act = act};
    lt_graph_apply(g, LT_OP_GLU, 2, in, out, &p);
    return out;
}

lt_tensor *lt_softcap(lt_graph *g, lt_tensor *x, float cap) {
    LT_ASSERT(is_act(g, x) && cap > 0.0f);
    lt_tensor *out = lt_graph_tensor(g, act_dt(g), x->ndim, x->shape);
    lt_tensor *in[1] = {x};
    lt_op_params p = {.softcap = cap};
    lt_graph_apply(g, LT_OP_SOFTCAP, 1, in, out, &p);
    return out;
}

lt_tensor *lt_add(lt_graph *g, lt_tensor *a, lt_tensor *b) {
    LT_ASSERT(is_act(g, a) && is_act(g, b) && lt_tensor_same_shape(a, b));
    lt_tensor *out = lt_graph_tensor(g, act_dt(g), a->ndim, a->shape);
    lt_tensor *in[2] = {a, b};
    lt_graph_apply(g, LT_OP_ADD, 2, in, out, NULL);
    return out;
}

lt_tensor *lt_cross_entropy(lt_graph *g, lt_tensor *logits, lt_tensor *targets, lt_tensor *mask,
                            float denominator) {
    LT_ASSERT((is_f32(logits) || is_act(g, logits)) && logits->ndim == 2);
    LT_ASSERT(targets && targets->dtype == LT_I32 && targets->ndim == 1);
    LT_ASSERT(targets->shape[0] == logits->shape[0]);
    if (mask) LT_ASSERT(mask->dtype == LT_U8 && mask->ndim == 1 && mask->shape[0] == rows_of(logits));
    int64_t one = 1;
    lt_tensor *out = lt_graph_tensor(g, LT_F32, 1, &one);
    lt_op_params p = {0};
    p.ce_denominator = denominator;
    lt_tensor *in[3] = {logits, targets, mask};
    lt_graph_apply(g, LT_OP_CROSS_ENTROPY, 3, in, out, &p);
    return out;
}

lt_tensor *lt_lm_head_cross_entropy(lt_graph *g, lt_tensor *x, lt_tensor *W, lt_tensor *targets,
                                    lt_tensor *mask, float denominator, float softcap) {
    LT_ASSERT(is_act(g, x) && x->ndim == 2 && is_wt(g, W) && W->ndim == 2);
    LT_ASSERT(W->shape[1] == x->shape[1]);
    LT_ASSERT(targets && targets->dtype == LT_I32 && targets->ndim == 1);
    LT_ASSERT(targets->shape[0] == x->shape[0]);
    if (mask) LT_ASSERT(mask->dtype == LT_U8 && mask->ndim == 1 && mask->shape[0] == x->shape[0]);
    int64_t one = 1;
    lt_tensor *out = lt_graph_tensor(g, LT_F32, 1, &one);
    lt_op_params p = {0};
    p.ce_denominator = denominator;
    p.softcap = softcap;
    LT_ASSERT(softcap >= 0.0f);
    lt_tensor *in[4] = {x, W, targets, mask};
    lt_graph_apply(g, LT_OP_LM_HEAD_CE, 4, in, out, &p);
    return out;
}

lt_tensor *lt_reshape(lt_graph *g, lt_tensor *x, int ndim, const int64_t *shape) {
    LT_ASSERT(x && ndim >= 1 && ndim <= LT_MAX_DIMS);
    lt_tensor *out = lt_arena_calloc(g->arena, sizeof *out);
    out->dtype = x->dtype;
    out->device = x->device;
    out->name = x->name;
    lt_tensor_set_shape(out, ndim, shape);
    LT_ASSERT(lt_tensor_numel(out) == lt_tensor_numel(x));
    out->data = x->data; /* a view: no copy */
    lt_tensor *in[1] = {x};
    lt_graph_apply(g, LT_OP_RESHAPE, 1, in, out, NULL);
    return out;
}
