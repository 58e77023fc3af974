/*
 * gradcheck — test helpers for ops: leaf tensors outside any arena, a deterministic RNG, and a
 * central finite-difference gradient check of analytic (tape) gradients.
 *
 * The check uses the scalar projection loss L = Σ out ⊙ R (R random, fixed), so dL/dout = R and
 * every output element contributes. The op's forward runs in float32 (it is the code under
 * test); L is summed in float64 and each derivative is (L(x+h) − L(x−h)) / (actual 2h), where
 * "actual" is the float32 perturbation really applied. Header-only: included by test files.
 */
#ifndef LATHE_TESTS_GRADCHECK_H
#define LATHE_TESTS_GRADCHECK_H

#include "autograd/autograd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- RNG ---------------------------------------------------------------------------------- */

typedef struct {
    uint64_t s;
} tl_rng;

static inline uint64_t tl_next(tl_rng *r) { return lt_splitmix64(&r->s); }
/* Uniform in [lo, hi). */
static inline double tl_unif(tl_rng *r, double lo, double hi) {
    return lo + (hi - lo) * (double)(tl_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- leaves ------------------------------------------------------------------------------- */

/* A malloc'ed (zeroed) leaf tensor; free with tl_free. Grads the tape gives it live in the
 * graph's arena and are not freed here. */
static inline lt_tensor *tl_leaf(lt_dtype dt, int ndim, const int64_t *shape, bool requires_grad) {
    lt_tensor *t = calloc(1, sizeof *t);
    t->dtype = dt;
    t->device = LT_CPU;
    lt_tensor_set_shape(t, ndim, shape);
    t->data = calloc(1, lt_tensor_nbytes(t) + 64);
    t->requires_grad = requires_grad;
    return t;
}
static inline void tl_free(lt_tensor *t) {
    if (!t) return;
    free(t->data);
    free(t);
}
static inline void tl_fill(lt_tensor *t, tl_rng *r, double lo, double hi) {
    int64_t n = lt_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) lt_f32(t)[i] = (float)tl_unif(r, lo, hi);
}

/* max |a − ref| / max |ref| (normalized max error; 0 when both are 0). */
static inline double tl_rel_err_(const float *a, const double *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (d > num) num = d;
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return den > 0 ? num / den : num;
}

/* The same, printed to stderr when TL_VERBOSE is set (to recalibrate tolerances). */
static inline double tl_rel_err(const float *a, const double *ref, int64_t n) {
    double e = tl_rel_err_(a, ref, n);
    if (getenv("TL_VERBOSE")) fprintf(stderr, "forward rel err %.3g\n", e);
    return e;
}

/* ---- tape helpers ------------------------------------------------------------------------- */

/* Reverse pass from a non-scalar output: out->grad += R, then every recorded node's backward in
 * reverse order (what lt_backward does after seeding a scalar loss). */
static inline void tl_backward_from(lt_graph *g, lt_tensor *out, const float *R) {
    lt_tensor *d = lt_graph_grad(g, out);
    int64_t n = lt_tensor_numel(out);
    for (int64_t i = 0; i < n; i++) lt_f32(d)[i] += R[i];
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        lt_node *nd = g->nodes[i];
        if (nd->out->grad) lt_op_table[nd->op].backward_cpu(g, nd);
    }
}

/* Builds the op (or a small graph) under test from leaves held in ctx; returns its output. */
typedef lt_tensor *(*tl_build_fn)(lt_graph *g, void *ctx);

static inline double tl_project(const lt_tensor *out, const float *R) {
    double L = 0;
    int64_t n = lt_tensor_numel(out);
    for (int64_t i = 0; i < n; i++) L += (double)lt_f32(out)[i] * (double)R[i];
    return L;
}

/* Normwise relative error ||a − f|| / ||f|| of analytic vs finite-difference gradient. */
typedef struct {
    double rel[8];  /* per checked leaf */
    bool has_grad[8];
    bool doubled[8]; /* a second backward exactly doubled the grad (single-node graphs) */
    bool frozen_ok;  /* no frozen leaf got a grad buffer */
    int n_nodes;
} tl_gc_result;

/* Run build forward with recording, backprop R, then central differences for each leaf in
 * `leaves` (which must be F32 and requires_grad); `frozen` leaves (requires_grad false) must
 * come out without a grad buffer. max_elems > 0 checks only about that many evenly spaced
 * elements per leaf (for shapes large enough to take the kernels' multi-threaded paths).
 * Leaves' ->grad is reset to NULL first. `h` is the perturbation. When the recorded graph has a
 * single node, a second backward is run and the grads are checked to have exactly doubled. */
static inline tl_gc_result tl_gradcheck(tl_build_fn build, void *ctx, lt_tensor **leaves,
                                        int n_leaves, lt_tensor **frozen, int n_frozen,
                                        uint64_t seed, double h, int64_t max_elems) {
    tl_gc_result res;
    memset(&res, 0, sizeof res);
    lt_arena arena;
    lt_arena_init(&arena, 1 << 20);
    lt_graph g;
    lt_graph_init(&g, &arena);
    for (int k = 0; k < n_leaves; k++) leaves[k]->grad = NULL;

    lt_tensor *out = build(&g, ctx);
    int64_t n_out = lt_tensor_numel(out);
    float *R = malloc((size_t)n_out * sizeof(float));
    tl_rng rng = {seed};
    for (int64_t i = 0; i < n_out; i++) R[i] = (float)tl_unif(&rng, -1, 1);
    tl_backward_from(&g, out, R);
    res.n_nodes = g.n_nodes;
    res.frozen_ok = true;
    for (int k = 0; k < n_frozen; k++) res.frozen_ok &= frozen[k]->grad == NULL;

    /* snapshot the analytic grads */
    float *an[8] = {0};
    for (int k = 0; k < n_leaves; k++) {
        res.has_grad[k] = leaves[k]->grad != NULL;
        int64_t n = lt_tensor_numel(leaves[k]);
        an[k] = calloc((size_t)n, sizeof(float));
        if (leaves[k]->grad) memcpy(an[k], leaves[k]->grad->data, (size_t)n * sizeof(float));
    }
    if (g.n_nodes == 1) {
        /* backward again with the same output grad: every kernel accumulates, so grads double */
        lt_node *nd = g.nodes[0];
        lt_op_table[nd->op].backward_cpu(&g, nd);
        for (int k = 0; k < n_leaves; k++) {
            if (!leaves[k]->grad) continue;
            int64_t n = lt_tensor_numel(leaves[k]);
            bool ok = true;
            for (int64_t i = 0; i < n; i++)
                ok &= fabsf(lt_f32(leaves[k]->grad)[i] - 2.0f * an[k][i]) <=
                      1e-6f * (1.0f + fabsf(an[k][i]));
            res.doubled[k] = ok;
        }
    }

    /* finite differences, forward only, in a scratch arena reset after each evaluation */
    lt_arena fa;
    lt_arena_init(&fa, 1 << 20);
    lt_graph fg;
    lt_graph_init(&fg, &fa);
    fg.record = false;
    for (int k = 0; k < n_leaves; k++) {
        float *x = lt_f32(leaves[k]);
        int64_t n = lt_tensor_numel(leaves[k]);
        double num = 0, den = 0;
        const int64_t step = max_elems > 0 && n > max_elems ? (n + max_elems - 1) / max_elems : 1;
        for (int64_t i = 0; i < n; i += step) {
            const float x0 = x[i];
            const float xp = (float)(x0 + h), xm = (float)(x0 - h);
            x[i] = xp;
            double Lp = tl_project(build(&fg, ctx), R);
            lt_arena_reset(&fa);
            x[i] = xm;
            double Lm = tl_project(build(&fg, ctx), R);
            lt_arena_reset(&fa);
            x[i] = x0;
            double fd = (Lp - Lm) / ((double)xp - (double)xm);
            double d = (double)an[k][i] - fd;
            num += d * d;
            den += fd * fd;
        }
        res.rel[k] = den > 0 ? sqrt(num / den) : sqrt(num);
        free(an[k]);
    }
    lt_graph_free(&fg);
    lt_arena_free(&fa);
    free(R);
    /* leaves' grads live in `arena`: copy them out before it goes */
    for (int k = 0; k < n_leaves; k++) leaves[k]->grad = NULL;
    lt_graph_free(&g);
    lt_arena_free(&arena);
    return res;
}

#endif
