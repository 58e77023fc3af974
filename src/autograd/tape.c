/* The tape: node recording and the reverse pass. Invariant: nodes appear in the order their
 * forwards ran, so walking the array backwards visits every consumer before its producers.
 * A checkpointed segment (checkpoint.c) is one node whose backward is not an op-table row: it
 * runs other ops, so it has no kernel of its own and works on every device. */
#include "autograd.h"

#include "../core/device.h"

#include <stdlib.h>
#include <string.h>

void lt_graph_init(lt_graph *g, lt_arena *arena) {
    memset(g, 0, sizeof *g);
    g->arena = arena;
    g->record = true;
    g->device = LT_CPU;
}

void lt_graph_free(lt_graph *g) {
    if (!g) return;
    free(g->nodes);
    g->nodes = NULL;
    g->n_nodes = g->cap = 0;
}

void lt_graph_clear(lt_graph *g) { g->n_nodes = 0; }

void lt_graph_reset(lt_graph *g) {
    g->n_nodes = 0;
    lt_arena_reset(g->arena);
    if (g->dev_arena) lt_dev_arena_reset(g->dev_arena);
}

/* On CUDA the header comes from the host arena and the data from the device step arena. */
static lt_tensor *graph_new(lt_graph *g, lt_dtype dt, int ndim, const int64_t *shape, bool zero) {
    if (g->device == LT_CUDA) {
        LT_ASSERT(g->dev_arena != NULL);
        return lt_dev_tensor(g->arena, g->dev_arena, dt, ndim, shape, zero);
    }
    return lt_arena_tensor(g->arena, dt, ndim, shape, zero);
}

lt_tensor *lt_graph_tensor(lt_graph *g, lt_dtype dt, int ndim, const int64_t *shape) {
    return graph_new(g, dt, ndim, shape, false);
}

lt_tensor *lt_graph_grad(lt_graph *g, lt_tensor *t) {
    if (!t->grad) t->grad = graph_new(g, LT_F32, t->ndim, t->shape, true);
    return t->grad;
}

lt_node *lt_graph_apply(lt_graph *g, lt_op op, int n_in, lt_tensor **in, lt_tensor *out,
                        const lt_op_params *p) {
    LT_ASSERT(op >= 0 && op < LT_OP_COUNT && n_in <= LT_NODE_MAX_IN);
    lt_node *n = lt_arena_calloc(g->arena, sizeof *n);
    n->op = op;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->out = out;
    if (p) n->p = *p;

    bool needs_grad = false;
    for (int i = 0; i < n_in; i++) needs_grad |= in[i] && in[i]->requires_grad;
    out->requires_grad = needs_grad && g->record;

    const lt_op_def *def = &lt_op_table[op];
    lt_op_fn fwd = g->device == LT_CUDA ? def->forward_cuda : def->forward_cpu;
    LT_ASSERT(fwd != NULL);
    fwd(g, n);

    if (out->requires_grad && g->suspend == 0) {
        lt_graph_push(g, n);
    }
    return n;
}

void lt_graph_push(lt_graph *g, lt_node *n) {
    if (g->n_nodes == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 1024;
        g->nodes = lt_xrealloc(g->nodes, (size_t)g->cap * sizeof *g->nodes);
    }
    g->nodes[g->n_nodes++] = n;
    n->out->node = n;
}

void lt_backward(lt_graph *g, lt_tensor *loss, float scale) {
    LT_ASSERT(lt_tensor_numel(loss) == 1 && loss->dtype == LT_F32);
    if (!loss->requires_grad) return;
    lt_tensor *dl = lt_graph_grad(g, loss);
    if (g->device == LT_CUDA)
        lt_cuda_add_scalar_f32(lt_f32(dl), scale);
    else
        lt_f32(dl)[0] += scale;
    lt_backward_nodes(g, 0, g->n_nodes);
}

void lt_backward_nodes(lt_graph *g, int from, int to) {
    LT_ASSERT(0 <= from && from <= to && to <= g->n_nodes);
    for (int i = to - 1; i >= from; i--) {
        lt_node *n = g->nodes[i]; /* re-read: a segment's recomputation may grow g->nodes */
        if (!n->out->grad) continue;
        if (n->seg) {
            lt_checkpoint_backward(g, n);
            continue;
        }
        const lt_op_def *def = &lt_op_table[n->op];
        lt_op_fn bwd = g->device == LT_CUDA ? def->backward_cuda : def->backward_cpu;
        LT_ASSERT(bwd != NULL);
        bwd(g, n);
    }
}
