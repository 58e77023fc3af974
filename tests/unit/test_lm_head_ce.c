/*
 * lm_head_cross_entropy: forward equals lt_linear + lt_cross_entropy (the unfused reference,
 * itself tested against float64 in test_ops.c), and the backward matches central finite
 * differences for x and a trainable W, with masked and ignored rows and both denominators.
 */
#include <criterion/criterion.h>

#include "autograd/autograd.h"
#include "gradcheck.h"

/* Same arithmetic as the unfused pair up to summation order in the GEMM rows: 1e-5 relative. */
#define TOL_LMCE_FWD 1e-5
#define FD_H 1e-2
#define TOL_GRAD 3e-3 /* as test_ops.c: FD noise ~1e-4 at h = 1e-2 on smooth ops */

typedef struct {
    lt_tensor *x, *W, *tgt, *mask;
    float den;
} lmce_ctx;

static lt_tensor *lmce_build(lt_graph *g, void *c) {
    lmce_ctx *e = c;
    return lt_lm_head_cross_entropy(g, e->x, e->W, e->tgt, e->mask, e->den);
}

Test(ops, lm_head_cross_entropy) {
    tl_rng r = {71};
    const int64_t N = 37, D = 9, V = 53; /* N > one 32-row block, odd sizes */
    lmce_ctx e = {tl_leaf(LT_F32, 2, (int64_t[]){N, D}, true),
                  tl_leaf(LT_F32, 2, (int64_t[]){V, D}, true),
                  tl_leaf(LT_I32, 1, (int64_t[]){N}, false), tl_leaf(LT_U8, 1, (int64_t[]){N}, false),
                  0};
    tl_fill(e.x, &r, -1, 1);
    tl_fill(e.W, &r, -1, 1);
    for (int64_t i = 0; i < N; i++) {
        ((int32_t *)e.tgt->data)[i] = i % 11 == 3 ? -100 : (int32_t)(tl_next(&r) % V);
        ((uint8_t *)e.mask->data)[i] = i % 7 != 5;
    }
    const float dens[2] = {0.0f, 13.0f};
    for (int k = 0; k < 2; k++) {
        e.den = dens[k];
        lt_arena arena;
        lt_arena_init(&arena, 1 << 20);
        lt_graph g;
        lt_graph_init(&g, &arena);
        g.record = false;
        double fused = lt_f32(lmce_build(&g, &e))[0];
        lt_tensor *z = lt_linear(&g, e.x, e.W, NULL, NULL, 0, 0, 0);
        double ref = lt_f32(lt_cross_entropy(&g, z, e.tgt, e.mask, e.den))[0];
        cr_expect(fabs(fused - ref) <= TOL_LMCE_FWD * fabs(ref), "den %g: %.8g vs %.8g", e.den,
                  fused, ref);
        lt_graph_free(&g);
        lt_arena_free(&arena);
        lt_tensor *leaves[2] = {e.x, e.W};
        tl_gc_result res = tl_gradcheck(lmce_build, &e, leaves, 2, NULL, 0, 72 + k, FD_H, 0);
        cr_expect(res.frozen_ok);
        for (int j = 0; j < 2; j++)
            cr_expect(res.has_grad[j] && res.rel[j] < TOL_GRAD, "leaf %d rel %.3g", j, res.rel[j]);
    }
    tl_free(e.x), tl_free(e.W), tl_free(e.tgt), tl_free(e.mask);
}
