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
    float den, softcap;
} lmce_ctx;

static lt_tensor *lmce_build(lt_graph *g, void *c) {
    lmce_ctx *e = c;
    return lt_lm_head_cross_entropy(g, e->x, e->W, e->tgt, e->mask, e->den, e->softcap);
}

Test(ops, lm_head_cross_entropy) {
    tl_rng r = {71};
    const int64_t N = 37, D = 9, V = 53; /* odd sizes; multi-block rows: the test below */
    lmce_ctx e = {tl_leaf(LT_F32, 2, (int64_t[]){N, D}, true),
                  tl_leaf(LT_F32, 2, (int64_t[]){V, D}, true),
                  tl_leaf(LT_I32, 1, (int64_t[]){N}, false), tl_leaf(LT_U8, 1, (int64_t[]){N}, false),
                  0, 0};
    tl_fill(e.x, &r, -1, 1);
    tl_fill(e.W, &r, -1, 1);
    for (int64_t i = 0; i < N; i++) {
        ((int32_t *)e.tgt->data)[i] = i % 11 == 3 ? -100 : (int32_t)(tl_next(&r) % V);
        ((uint8_t *)e.mask->data)[i] = i % 7 != 5;
    }
    /* den 0 / 13; soft-capped logits (Gemma 2's final_logit_softcapping) with a cap of 2,
     * which binds: the logits here reach about ±4 */
    const float dens[4] = {0.0f, 13.0f, 0.0f, 13.0f}, caps[4] = {0, 0, 2.0f, 2.0f};
    for (int k = 0; k < 4; k++) {
        e.den = dens[k];
        e.softcap = caps[k];
        lt_arena arena;
        lt_arena_init(&arena, 1 << 20);
        lt_graph g;
        lt_graph_init(&g, &arena);
        g.record = false;
        double fused = lt_f32(lmce_build(&g, &e))[0];
        lt_tensor *z = lt_linear(&g, e.x, e.W, NULL, NULL, 0, 0, 0);
        if (e.softcap > 0) z = lt_softcap(&g, z, e.softcap);
        double ref = lt_f32(lt_cross_entropy(&g, z, e.tgt, e.mask, e.den))[0];
        cr_expect(fabs(fused - ref) <= TOL_LMCE_FWD * fabs(ref), "den %g cap %g: %.8g vs %.8g",
                  e.den, e.softcap, fused, ref);
        lt_graph_free(&g);
        lt_arena_free(&arena);
        lt_tensor *leaves[2] = {e.x, e.W};
        tl_gc_result res = tl_gradcheck(lmce_build, &e, leaves, 2, NULL, 0, 72 + k, FD_H, 0);
        cr_expect(res.frozen_ok);
        for (int j = 0; j < 2; j++)
            cr_expect(res.has_grad[j] && res.rel[j] < TOL_GRAD, "leaf %d cap %g rel %.3g", j,
                      e.softcap, res.rel[j]);
    }
    tl_free(e.x), tl_free(e.W), tl_free(e.tgt), tl_free(e.mask);
}

/* Several 256-row blocks (LMCE_BR), the last one partial: loss and both gradients equal the
 * unfused linear + cross_entropy path's. Both compute the same float32 logits per row with
 * sgemm (different row blocking: summation order differs only inside the GEMM) and sum NLL in
 * double, so agreement to TOL_LMCE_FWD relative is expected; FD is not used here because at
 * this many rows its float32 noise (~4e-3) would swamp the comparison. */
#define TOL_LMCE_GRAD 1e-4
Test(ops, lm_head_cross_entropy_many_blocks) {
    tl_rng r = {91};
    const int64_t N = 600, D = 17, V = 131;
    lt_tensor *x = tl_leaf(LT_F32, 2, (int64_t[]){N, D}, true);
    lt_tensor *W = tl_leaf(LT_F32, 2, (int64_t[]){V, D}, true);
    lt_tensor *tgt = tl_leaf(LT_I32, 1, (int64_t[]){N}, false);
    tl_fill(x, &r, -1, 1);
    tl_fill(W, &r, -1, 1);
    for (int64_t i = 0; i < N; i++)
        ((int32_t *)tgt->data)[i] = i % 13 == 4 ? -1 : (int32_t)(tl_next(&r) % V);
    float *gx[2], *gW[2], loss[2];
    for (int fused = 0; fused < 2; fused++) {
        lt_arena arena;
        lt_arena_init(&arena, 1 << 20);
        lt_graph g;
        lt_graph_init(&g, &arena);
        x->grad = W->grad = NULL;
        lt_tensor *l = fused ? lt_lm_head_cross_entropy(&g, x, W, tgt, NULL, 0.0f, 0.0f)
                             : lt_cross_entropy(&g, lt_linear(&g, x, W, NULL, NULL, 0, 0, 0), tgt,
                                                NULL, 0.0f);
        lt_backward(&g, l, 1.0f);
        loss[fused] = lt_f32(l)[0];
        gx[fused] = malloc(sizeof(float) * N * D);
        gW[fused] = malloc(sizeof(float) * V * D);
        memcpy(gx[fused], x->grad->data, sizeof(float) * N * D);
        memcpy(gW[fused], W->grad->data, sizeof(float) * V * D);
        x->grad = W->grad = NULL;
        lt_graph_free(&g);
        lt_arena_free(&arena);
    }
    cr_expect(fabs(loss[1] - loss[0]) <= TOL_LMCE_FWD * fabs(loss[0]), "%.8g vs %.8g", loss[1],
              loss[0]);
    double ex = 0, nx = 0, eW = 0, nW = 0;
    for (int64_t i = 0; i < N * D; i++) ex += pow(gx[1][i] - gx[0][i], 2), nx += pow(gx[0][i], 2);
    for (int64_t i = 0; i < V * D; i++) eW += pow(gW[1][i] - gW[0][i], 2), nW += pow(gW[0][i], 2);
    cr_expect(nx > 0 && sqrt(ex / nx) < TOL_LMCE_GRAD, "dx rel %.3g", sqrt(ex / nx));
    cr_expect(nW > 0 && sqrt(eW / nW) < TOL_LMCE_GRAD, "dW rel %.3g", sqrt(eW / nW));
    for (int k = 0; k < 2; k++) free(gx[k]), free(gW[k]);
    tl_free(x), tl_free(W), tl_free(tgt);
}
