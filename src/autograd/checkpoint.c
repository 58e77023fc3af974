/* Gradient checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost",
 * arXiv 1604.06174): a segment's forward runs with the tape suspended and its activations are
 * dropped by rewinding the step arena; its one tape node recomputes them during backward.
 *
 * Memory layout of a segment in the (bump) step arena, forward:
 *   [segment record, node, output header] MARK [fn's intermediates ... y]   -> rewind to MARK,
 *   [segment record, node, output header] [output data = y copied down]
 * and backward:
 *   [... output grad, input grads] MARK [recomputed intermediates, sub-tape nodes, their grads]
 *   -> sub-tape backward -> rewind to MARK.
 * Everything that must survive (the record, the node, the output, the inputs' grads) is
 * allocated before the mark, so a rewind drops exactly the segment's own tensors. */
#include "autograd.h"

#include "../core/device.h"

#include <string.h>

struct lt_segment {
    lt_checkpoint_fn fn;
    void *ctx;
    int n_in;
    lt_tensor **in; /* [n_in], in the arena */
};

/* Host arena position plus, on CUDA, the device step arena's bump offset. */
typedef struct {
    lt_arena_pos host;
    size_t dev_used;
} graph_pos;

static graph_pos graph_mark(const lt_graph *g) {
    graph_pos p = {lt_arena_mark(g->arena), g->dev_arena ? g->dev_arena->used : 0};
    return p;
}

static void graph_rewind(lt_graph *g, graph_pos p) {
    lt_arena_rewind(g->arena, p.host);
    if (g->dev_arena) {
        LT_ASSERT(p.dev_used <= g->dev_arena->used);
        g->dev_arena->used = p.dev_used;
    }
}

/* Copy n bytes from src to dst where both may overlap. On CPU that is memmove. On CUDA the
 * destination is the rewound bump offset, so dst <= src (y was allocated after the mark); an
 * overlapping copy goes in forward chunks of (src - dst) bytes, each reading only bytes no
 * earlier chunk wrote (the copies are ordered on the compute stream). */
static void copy_down(lt_graph *g, void *dst, const void *src, size_t n) {
    if (dst == src || n == 0) return;
    if (g->device != LT_CUDA) {
        memmove(dst, src, n);
        return;
    }
    const char *s = src;
    char *d = dst;
    if (d + n <= s || s + n <= d) {
        lt_cuda_d2d(d, s, n);
        return;
    }
    LT_ASSERT(d < s);
    size_t step = (size_t)(s - d);
    for (size_t off = 0; off < n; off += step)
        lt_cuda_d2d(d + off, s + off, n - off < step ? n - off : step);
}

lt_tensor *lt_checkpoint(lt_graph *g, lt_checkpoint_fn fn, void *ctx, int n_in, lt_tensor **in) {
    LT_ASSERT(fn != NULL && n_in >= 0);
    if (!g->record || g->suspend > 0) return fn(g, ctx, in);

    lt_segment *s = lt_arena_calloc(g->arena, sizeof *s);
    s->fn = fn;
    s->ctx = ctx;
    s->n_in = n_in;
    s->in = lt_arena_calloc(g->arena, (size_t)(n_in ? n_in : 1) * sizeof *s->in);
    for (int i = 0; i < n_in; i++) s->in[i] = in[i];
    lt_node *n = lt_arena_calloc(g->arena, sizeof *n);
    lt_tensor *out = lt_arena_calloc(g->arena, sizeof *out);
    n->op = LT_OP_COUNT;
    n->seg = s;
    n->out = out;

    graph_pos mark = graph_mark(g);
    g->suspend++;
    lt_tensor *y = fn(g, ctx, s->in);
    g->suspend--;
    LT_ASSERT(y != NULL);
    lt_tensor yv = *y; /* y's header lies above the mark: read it before rewinding */
    graph_rewind(g, mark);

    out->dtype = yv.dtype;
    out->device = yv.device;
    lt_tensor_set_shape(out, yv.ndim, yv.shape);
    size_t nb = lt_tensor_nbytes(out);
    if (out->device == LT_CUDA) {
        LT_ASSERT(g->dev_arena != NULL);
        out->data = lt_dev_arena_alloc(g->dev_arena, nb);
    } else {
        out->data = lt_arena_alloc(g->arena, nb); /* writes nothing: y's bytes are intact */
    }
    copy_down(g, out->data, yv.data, nb);
    out->requires_grad = yv.requires_grad;
    if (out->requires_grad) lt_graph_push(g, n);
    return out;
}

/* Is tensor t produced by one of the nodes [from, to) of the tape? */
static bool produced_in(const lt_graph *g, const lt_tensor *t, int from, int to) {
    if (!t->node) return false;
    for (int i = from; i < to; i++)
        if (g->nodes[i] == t->node) return true;
    return false;
}

/* The contract's second rule: any input of a sub-tape node that will receive a gradient either
 * comes from the sub-tape itself or already owns its grad buffer (allocated below the mark). */
static void check_outside_grads(const lt_graph *g, int from, int to) {
    for (int i = from; i < to; i++) {
        const lt_node *nd = g->nodes[i];
        int k = nd->seg ? nd->seg->n_in : nd->n_in;
        lt_tensor *const *ins = nd->seg ? nd->seg->in : nd->in;
        for (int j = 0; j < k; j++) {
            const lt_tensor *t = ins[j];
            if (!t || !t->requires_grad || t->grad) continue;
            LT_ASSERT(produced_in(g, t, from, to) &&
                      "a checkpointed fn reads a tensor that needs a gradient but is neither in "
                      "`in` nor has a grad buffer");
        }
    }
}

void lt_checkpoint_backward(lt_graph *g, lt_node *n) {
    lt_segment *s = n->seg;
    LT_ASSERT(s != NULL && n->out->grad != NULL && g->suspend == 0);
    /* the inputs' grads must outlive the rewind: allocate them below the mark */
    for (int i = 0; i < s->n_in; i++)
        if (s->in[i] && s->in[i]->requires_grad) lt_graph_grad(g, s->in[i]);

    graph_pos mark = graph_mark(g);
    int from = g->n_nodes;
    bool record = g->record;
    g->record = true;
    lt_tensor *y = s->fn(g, s->ctx, s->in);
    g->record = record;
    int to = g->n_nodes;
    LT_ASSERT(y != NULL && y->requires_grad && y->dtype == n->out->dtype &&
              lt_tensor_same_shape(y, n->out) && produced_in(g, y, from, to) &&
              "a checkpointed fn must recompute its output from its own ops");
    check_outside_grads(g, from, to);
    y->grad = n->out->grad;
    lt_backward_nodes(g, from, to);
    g->n_nodes = from;
    graph_rewind(g, mark);
}
