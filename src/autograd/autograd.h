/*
 * autograd — define-by-run tape, the op table and the op constructors.
 *
 * Every op call during a forward pass computes its output immediately and, when the graph is
 * recording and any input requires a gradient, appends a node to the tape. lt_backward() walks the
 * tape in reverse; each backward ACCUMULATES (+=) into the grads of inputs that require one.
 * Frozen tensors (requires_grad == false) never get a grad buffer. All per-step tensors, nodes
 * and grads live in the graph's arena, which the caller resets after each optimizer step.
 *
 * Adding an op = one enum value + one row in lt_op_table (ops.c) + one CPU kernel file in
 * src/kernels/cpu/ (+ CUDA in src/kernels/cuda/) + one test row. Nothing else names an op.
 */
#ifndef LATHE_AUTOGRAD_H
#define LATHE_AUTOGRAD_H

#include "../core/core.h"

typedef enum {
    LT_OP_EMBEDDING = 0,
    LT_OP_LINEAR,
    LT_OP_RMSNORM,
    LT_OP_ROPE,
    LT_OP_ATTENTION,
    LT_OP_GLU,
    LT_OP_ADD,
    LT_OP_CROSS_ENTROPY,
    LT_OP_RESHAPE,
    LT_OP_LM_HEAD_CE,
    LT_OP_SOFTCAP,
    LT_OP_COUNT
} lt_op;

/* The activation of a gated MLP (lt_glu): SiLU (SwiGLU: Llama, Mistral, Qwen) or the tanh
 * approximation of GELU (GeGLU: Gemma's "gelu_pytorch_tanh"). Formulas: kernels/act.h. */
typedef enum { LT_ACT_SILU = 0, LT_ACT_GELU_TANH } lt_act;

/* Scalar parameters of a node; each op reads the fields its row documents. */
typedef struct {
    float eps;            /* rmsnorm */
    float lora_scale;     /* linear: alpha/r, or alpha/sqrt(r) with rsLoRA */
    float dropout;        /* linear: LoRA dropout probability on the adapter input, in [0, 1) */
    uint64_t seed;        /* linear: dropout mask seed (mask is a pure function of seed, index) */
    float ce_denominator; /* cross_entropy: > 0 divides the summed NLL by this instead of the
                           * unmasked count (grad accumulation over a whole batch) */
    int64_t window;       /* attention: sliding window in tokens (> 0), 0 = the whole prefix */
    float scale;          /* embedding: output multiplier; attention: score scale (> 0) */
    float softcap;        /* attention, softcap, lm_head_ce: c·tanh(s/c) on scores or logits,
                           * 0 = none */
    float offset;         /* rmsnorm: the weight is applied as (offset + w) (Gemma: 1) */
    lt_act act;           /* glu */
} lt_op_params;

#define LT_NODE_MAX_IN 5
#define LT_NODE_MAX_SAVED 3

typedef struct lt_segment lt_segment;

typedef struct lt_node {
    lt_op op;              /* LT_OP_COUNT for a checkpointed segment (seg != NULL) */
    int n_in;
    lt_tensor *in[LT_NODE_MAX_IN];       /* NULL entries allowed for optional inputs */
    lt_tensor *out;
    lt_tensor *saved[LT_NODE_MAX_SAVED]; /* op-private forward results kept for backward */
    lt_op_params p;
    lt_segment *seg;       /* non-NULL: a checkpointed segment (lt_checkpoint); in[] unused */
} lt_node;

typedef struct lt_graph lt_graph;

typedef void (*lt_op_fn)(lt_graph *g, lt_node *n);

typedef struct {
    const char *name;
    lt_op_fn forward_cpu;
    lt_op_fn backward_cpu;
    lt_op_fn forward_cuda;  /* NULL: not available on CUDA */
    lt_op_fn backward_cuda;
    /* dtypes the op's frozen weight operand may have, per device (bit 1u << lt_dtype): the
     * embedding table, linear's and lm_head_cross_entropy's W, rmsnorm's w; 0 for ops without one */
    unsigned weight_dtypes[2]; /* [LT_CPU], [LT_CUDA] */
} lt_op_def;

extern const lt_op_def lt_op_table[LT_OP_COUNT];

/* Can op run on `dev` with a weight operand of dtype `weight` (ignored for ops without one)? From
 * the op table: the device has the op's kernels and lists the dtype. Model code asks before
 * choosing a path (the fused LM head) and lt_model_to_device before moving weights, so an
 * unsupported combination is an error at load, never an assertion inside a kernel. */
bool lt_op_supports(lt_op op, lt_dtype weight, lt_device dev);
/* The dtype of activations (op outputs) on `dev`: F32 on the CPU, BF16 on CUDA (core/device.h). */
lt_dtype lt_act_dtype(lt_device dev);

/* The per-step graph: arena + tape. Not thread-safe; one per training process. */
struct lt_graph {
    lt_arena *arena;   /* borrowed: activations, nodes, grads of non-leaf tensors */
    lt_node **nodes;   /* tape, in execution order (array owned, nodes in the arena) */
    int n_nodes, cap;
    bool record;       /* false: ops compute only (eval, generation) */
    int suspend;       /* > 0: inside a checkpointed segment's forward (lt_checkpoint): ops compute
                        * and set requires_grad as when recording, but append no node */
    bool checkpoint;   /* model forwards wrap each transformer block in lt_checkpoint (read by
                        * src/model/forward.c; only while recording) */
    lt_device device;
    struct lt_dev_arena *dev_arena; /* LT_CUDA: where per-step tensor data lives (core/device.h);
                                     * headers and nodes stay in `arena` */
};

/* A CPU graph recording into `arena` (borrowed; record = true). lt_graph_free releases the tape
 * array only; NULL is fine. */
void lt_graph_init(lt_graph *g, lt_arena *arena);
void lt_graph_free(lt_graph *g);
/* Forget the tape (does not touch the arena: reset it yourself, after the optimizer step). */
void lt_graph_clear(lt_graph *g);
/* Forget the tape and make the host arena and, when there is one, the device step arena reusable
 * (after a micro-batch's backward or an evaluation batch). */
void lt_graph_reset(lt_graph *g);

/* Make sure t->grad exists: a zeroed F32 tensor of t's shape in the arena. Returns it. */
lt_tensor *lt_graph_grad(lt_graph *g, lt_tensor *t);
/* A fresh uninitialized tensor in the graph's arena. */
lt_tensor *lt_graph_tensor(lt_graph *g, lt_dtype dt, int ndim, const int64_t *shape);

/* Run op `op` forward on CPU or CUDA per g->device, recording a node when g->record is set and
 * any input requires a gradient. `out` must already be allocated (shape checked by the caller).
 * Returns the node (in the arena) so the constructor can fill saved tensors. Constructors below
 * are the only callers. */
lt_node *lt_graph_apply(lt_graph *g, lt_op op, int n_in, lt_tensor **in, lt_tensor *out,
                        const lt_op_params *p);

/* Append node n to the tape and make it n->out's producer (lt_graph_apply, lt_checkpoint). */
void lt_graph_push(lt_graph *g, lt_node *n);

/* Reverse pass from a scalar `loss` (shape [1]): seeds d loss = 1 (times `scale`) and runs every
 * recorded node's backward in reverse order, skipping nodes whose output got no gradient. */
void lt_backward(lt_graph *g, lt_tensor *loss, float scale);
/* Run the backward of tape nodes [from, to) in reverse (lt_backward's walk; checkpoint.c runs a
 * recomputed segment's sub-tape with it). */
void lt_backward_nodes(lt_graph *g, int from, int to);

/* ---- gradient checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory
 * Cost", arXiv 1604.06174) ------------------------------------------------------------------
 *
 * y = lt_checkpoint(g, fn, ctx, n_in, in) returns fn(g, ctx, in) but keeps only y: fn runs with
 * the tape suspended, its intermediate tensors are dropped (the arena is rewound to where it was
 * before fn and y is copied down), and ONE node is recorded. That node's backward re-runs fn
 * with recording on (into the arena), seeds the recomputed output's grad with y's, walks the
 * recomputed sub-tape in reverse — accumulating into the grads of `in` and of any persistent
 * parameter fn reads (LoRA A/B) — and rewinds the arena again. Peak activation memory for L
 * checkpointed blocks is then L outputs + one block's activations instead of L blocks'.
 *
 * Contract for fn:
 *  - A pure function of (ctx, in, the tensors ctx points to): called twice, it must run the same
 *    ops in the same order on the same values. Randomness must be a function of ctx (LoRA dropout
 *    masks are functions of per-op seeds), so the recomputation repeats the forward bit for bit
 *    and the grads equal the uncheckpointed ones exactly.
 *  - Every tensor fn reads that requires a gradient is either in `in` or already has its grad
 *    buffer (persistent parameters: the model's LoRA grads); a grad allocated during the
 *    recomputation would be dropped with it (checked by LT_ASSERT).
 *  - Returns a tensor that fn's own ops produced (not an input).
 *  - `ctx` and the tensors it points to outlive the backward (allocate them in the graph's arena
 *    before the call, or keep them on the caller's side until lt_backward returns).
 * `in` is copied (n_in >= 0 entries, NULL allowed). Outside recording (g->record false), and
 * inside another segment's forward, it simply returns fn(g, ctx, in). Device-agnostic: fn's ops
 * go through lt_graph_apply on g->device; on CUDA the device step arena is rewound too. */
typedef lt_tensor *(*lt_checkpoint_fn)(lt_graph *g, void *ctx, lt_tensor **in);
lt_tensor *lt_checkpoint(lt_graph *g, lt_checkpoint_fn fn, void *ctx, int n_in, lt_tensor **in);
/* The backward of a segment node (called by the tape's reverse walk). */
void lt_checkpoint_backward(lt_graph *g, lt_node *n);

/* ---- op constructors (shapes row-major; N = product of leading dims) ----------------------
 * Each returns a new arena tensor. Shape and dtype mismatches are bugs in the caller
 * (model code builds these from validated configs) and fail LT_ASSERT. */

/* table (F32 [V, D]), ids (I32 [N]) -> scale · table[ids], [N, D]. Ids must be in [0, V).
 * scale 1 for most models; Gemma multiplies by sqrt(hidden_size) (modeling_gemma2.py
 * Gemma2TextScaledWordEmbedding). */
lt_tensor *lt_embedding(lt_graph *g, lt_tensor *table, lt_tensor *ids, float scale);

/* y = x Wᵀ + scale · dropout(x) Aᵀ Bᵀ (LoRA, arXiv 2106.09685).
 * x F32 [..., in]; W F32 [out, in]; A F32 [r, in] and B F32 [out, r], or both NULL for a plain
 * linear. scale = alpha/r (alpha/sqrt(r) for rsLoRA, arXiv 2312.03732); dropout p applies to
 * the adapter branch only, inverted scaling 1/(1-p), mask drawn from `seed`. -> [..., out]. */
lt_tensor *lt_linear(lt_graph *g, lt_tensor *x, lt_tensor *W, lt_tensor *A, lt_tensor *B,
                     float scale, float dropout, uint64_t seed);
/* The same plus a frozen bias: y = x Wᵀ + b + LoRA term, as torch.nn.Linear(bias=True) (the q/k/v
 * projections of Qwen2, transformers modeling_qwen2.py). b F32 [out] with requires_grad false
 * (the base is frozen; its gradient flows to x, W, A, B only), or NULL = lt_linear. */
lt_tensor *lt_linear_bias(lt_graph *g, lt_tensor *x, lt_tensor *W, lt_tensor *b, lt_tensor *A,
                          lt_tensor *B, float scale, float dropout, uint64_t seed);

/* RMSNorm (arXiv 1910.07467): y = x / sqrt(mean(x²) + eps) · (offset + w). x [..., D], w [D].
 * offset 0: LlamaRMSNorm; 1: Gemma's (1 + w) (modeling_gemma2.py Gemma2RMSNorm), with the sum
 * formed in float32 as transformers does. */
lt_tensor *lt_rmsnorm(lt_graph *g, lt_tensor *x, lt_tensor *w, float eps, float offset);

/* Rotary embedding (arXiv 2104.09864), Hugging Face rotate_half layout: pairs (i, i + Dh/2),
 * angle pos · inv_freq[i] (float32, as transformers' LlamaRotaryEmbedding). x [N, H, Dh] or
 * [B, T, H, Dh]; pos I32 [N] (= B·T); inv_freq F32 [Dh/2], frozen: the model builds it from
 * rope_theta and rope_scaling (lt_rope_inv_freq in model.h), so every scaling is the same op. */
lt_tensor *lt_rope(lt_graph *g, lt_tensor *x, lt_tensor *pos, lt_tensor *inv_freq);

/* Options of lt_attention; a zeroed struct (or NULL) is plain causal attention. */
typedef struct {
    int64_t window; /* > 0: sliding window (see below); 0: the whole causal prefix */
    float scale;    /* score scale; 0 = 1/sqrt(Dh). Gemma: query_pre_attn_scalar^-0.5 */
    float softcap;  /* > 0: scores become softcap·tanh(scores/softcap) before the mask and
                     * softmax (Gemma 2 attn_logit_softcapping); 0 = none */
} lt_attn_opts;

/* Causal grouped-query attention with packed-document masking: softmax(cap(scale · q kᵀ)) v.
 * q [B, Tq, Hq, Dh]; k, v [B, Tk, Hkv, Dh] with Tk >= Tq and Hq % Hkv == 0; query i sits at
 * absolute position t = Tk - Tq + i (Tq < Tk is the KV-cached generation case). doc I32 [B, Tk]
 * or NULL: a query attends only to keys at or before it with the same doc id. A window > 0 is
 * sliding-window attention (Mistral, Qwen2, Gemma 2/3 local layers): key j is visible only when
 * t - j < window, i.e. the query and the window - 1 keys before it, as transformers'
 * masking_utils.sliding_window_overlay (kv_idx > q_idx - sliding_window). Scale and soft-capping
 * as modeling_gemma2.py eager_attention_forward. o NULL = defaults. -> [B, Tq, Hq, Dh]. */
lt_tensor *lt_attention(lt_graph *g, lt_tensor *q, lt_tensor *k, lt_tensor *v, lt_tensor *doc,
                        const lt_attn_opts *o);

/* Gated linear unit (Shazeer, arXiv 2002.05202): act(gate) · up, elementwise. gate, up
 * [..., F]; act SiLU (SwiGLU) or tanh-GELU (GeGLU). */
lt_tensor *lt_glu(lt_graph *g, lt_tensor *gate, lt_tensor *up, lt_act act);

/* Soft-capping (Gemma 2 final_logit_softcapping): cap · tanh(x / cap), elementwise, cap > 0. */
lt_tensor *lt_softcap(lt_graph *g, lt_tensor *x, float cap);

/* a + b, same shapes. */
lt_tensor *lt_add(lt_graph *g, lt_tensor *a, lt_tensor *b);

/* Mean token cross-entropy. logits F32 [N, V]; targets I32 [N] (negative = ignored); mask U8 [N]
 * or NULL (0 = ignored). Returns [1]: sum of -log softmax(logits)[target] over counted tokens,
 * divided by `denominator` when > 0, else by the number of counted tokens (0 tokens -> 0). */
lt_tensor *lt_cross_entropy(lt_graph *g, lt_tensor *logits, lt_tensor *targets, lt_tensor *mask,
                            float denominator);

/* lt_cross_entropy(z, targets, mask, denominator) with z = lt_linear(x, W), soft-capped as
 * lt_softcap(z, softcap) when softcap > 0, without the [N, V] logits:
 * x [N, D]; W [V, D] (the LM head, usually frozen); targets I32 [N]; mask U8 [N] or NULL.
 * Returns [1] with cross_entropy's counting and denominator rules. */
lt_tensor *lt_lm_head_cross_entropy(lt_graph *g, lt_tensor *x, lt_tensor *W, lt_tensor *targets,
                                    lt_tensor *mask, float denominator, float softcap);

/* A view of x with a new shape of the same element count (shares data; grads flow back). */
lt_tensor *lt_reshape(lt_graph *g, lt_tensor *x, int ndim, const int64_t *shape);

#endif
