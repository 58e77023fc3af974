/*
 * Op tests: every op's forward against a plain float64 reference written here, and its backward
 * against central finite differences of the float32 forward (tests/unit/gradcheck.h), on odd
 * random shapes; plus the semantic properties each op promises (packed-document isolation,
 * KV-cache offset, LoRA B = 0, reproducible dropout, CE masking and denominators, RoPE position
 * restarts, frozen inputs without grads, accumulation, reshape views).
 */
#include <criterion/criterion.h>

#include "autograd/autograd.h"
#include "gradcheck.h"
#include "kernels/kernels.h"
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Forward vs the float64 reference, as max |err| / max |ref|: float32 arithmetic over at most a
 * few hundred terms (plus expf/logf/cosf, each within a few ulp) measures <= 1.4e-7 here
 * (TL_VERBOSE=1 prints it); 2e-6 leaves >10x margin while any wrong term shows up at 1e-2. */
#define TOL_FWD 2e-6
/* Finite-difference step. The forward is float32, so L = Σ out ⊙ R carries rounding noise of
 * about 1e-7 · Σ|out ⊙ R|; with h = 1e-2 that noise contributes ~1e-5 relative to O(1) grads,
 * and the O(h²) truncation error of central differences on these smooth ops is ~1e-4. */
#define FD_H 1e-2
/* Normwise relative error ||analytic − FD|| / ||FD||: the two effects above give at most a few
 * 1e-4 (measured: <= 2.5e-4 over these tests, TL_VERBOSE=1 prints them); 3e-3 is >10x above
 * that and far below the O(1e-2..1) error of any missing or wrong backward term. */
#define TOL_GRAD 3e-3

#define ARENA_BLOCK (4 << 20)

typedef struct {
    lt_arena arena;
    lt_graph g;
} fixture;

static void fx_init(fixture *f) {
    lt_arena_init(&f->arena, ARENA_BLOCK);
    lt_graph_init(&f->g, &f->arena);
}
static void fx_free(fixture *f) {
    lt_graph_free(&f->g);
    lt_arena_free(&f->arena);
}

static lt_tensor *leaf_f32(tl_rng *r, int ndim, const int64_t *shape, bool rg) {
    lt_tensor *t = tl_leaf(LT_F32, ndim, shape, rg);
    tl_fill(t, r, -1, 1);
    return t;
}

static void check_grads(const tl_gc_result *res, lt_tensor **leaves, const char **names, int n) {
    cr_expect(res->frozen_ok, "a frozen input got a grad buffer");
    for (int k = 0; k < n; k++) {
        cr_expect(res->has_grad[k], "%s: no grad", names[k]);
        cr_expect(res->rel[k] < TOL_GRAD, "%s: grad rel err %.3g >= %g", names[k], res->rel[k],
                  TOL_GRAD);
        if (res->n_nodes == 1)
            cr_expect(res->doubled[k], "%s: second backward did not double the grad", names[k]);
    }
    (void)leaves;
    if (getenv("TL_VERBOSE"))
        for (int k = 0; k < n; k++) fprintf(stderr, "grad %s rel err %.3g\n", names[k], res->rel[k]);
}

/* ---- op table ----------------------------------------------------------------------------- */

Test(ops, table_complete) {
    for (int i = 0; i < LT_OP_COUNT; i++) {
        cr_assert(lt_op_table[i].name != NULL, "op %d has no row", i);
        cr_expect(lt_op_table[i].forward_cpu && lt_op_table[i].backward_cpu, "%s: no CPU kernel",
                  lt_op_table[i].name);
        for (int j = 0; j < i; j++)
            cr_expect(strcmp(lt_op_table[i].name, lt_op_table[j].name) != 0, "duplicate name");
    }
    cr_expect_str_eq(lt_op_table[LT_OP_ATTENTION].name, "attention");
}

/* lt_op_supports answers from the table: the device's kernels and weight dtypes. */
Test(ops, supports_from_the_table) {
    cr_assert(lt_op_supports(LT_OP_LINEAR, LT_F32, LT_CPU));
    cr_assert(lt_op_supports(LT_OP_LINEAR, LT_NF4, LT_CPU));
    cr_assert(lt_op_supports(LT_OP_LINEAR, LT_Q4_1, LT_CPU));
    cr_assert(!lt_op_supports(LT_OP_LINEAR, LT_BF16, LT_CPU), "the CPU GEMMs read F32");
    cr_assert(!lt_op_supports(LT_OP_LM_HEAD_CE, LT_Q8_0, LT_CPU), "fused head: F32 only");
    cr_assert(lt_op_supports(LT_OP_ATTENTION, LT_Q8_0, LT_CPU), "no weight operand: any");
    bool cuda = lt_op_table[LT_OP_LINEAR].forward_cuda != NULL; /* a build with CUDA */
    cr_assert_eq(lt_op_supports(LT_OP_LINEAR, LT_NF4, LT_CUDA), cuda);
    cr_assert_eq(lt_op_supports(LT_OP_LM_HEAD_CE, LT_BF16, LT_CUDA), cuda);
    cr_assert(!lt_op_supports(LT_OP_LINEAR, LT_Q4_0, LT_CUDA), "no CUDA Q4_0 dequant");
}

/* ---- embedding ---------------------------------------------------------------------------- */

typedef struct {
    lt_tensor *table, *ids;
    float scale; /* 0 = 1 */
} emb_ctx;
static lt_tensor *emb_build(lt_graph *g, void *c) {
    emb_ctx *e = c;
    return lt_embedding(g, e->table, e->ids, e->scale > 0 ? e->scale : 1.0f);
}

Test(ops, embedding) {
    tl_rng r = {1};
    const int64_t V = 11, D = 5, N = 7;
    lt_tensor *table = leaf_f32(&r, 2, (int64_t[]){V, D}, true);
    lt_tensor *ids = tl_leaf(LT_I32, 1, (int64_t[]){N}, false);
    const int32_t idv[7] = {3, 0, 10, 3, 7, 3, 1}; /* repeats: the backward must sum them */
    memcpy(ids->data, idv, sizeof idv);
    fixture f;
    fx_init(&f);
    lt_tensor *out = lt_embedding(&f.g, table, ids, 1.0f);
    cr_assert_eq(out->shape[0], N);
    cr_assert_eq(out->shape[1], D);
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < D; c++)
            cr_expect_eq(lt_f32(out)[i * D + c], lt_f32(table)[idv[i] * D + c]);
    fx_free(&f);

    emb_ctx e = {table, ids, 0};
    lt_tensor *leaves[1] = {table};
    tl_gc_result res = tl_gradcheck(emb_build, &e, leaves, 1, NULL, 0, 11, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"table"}, 1);

    /* Gemma's scaled embeddings: scale · row, and the grad carries the scale */
    e.scale = 8.0f;
    fx_init(&f);
    out = emb_build(&f.g, &e);
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < D; c++)
            cr_expect_eq(lt_f32(out)[i * D + c], 8.0f * lt_f32(table)[idv[i] * D + c]);
    fx_free(&f);
    res = tl_gradcheck(emb_build, &e, leaves, 1, NULL, 0, 12, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"table (scaled)"}, 1);

    /* frozen table: nothing recorded, no grad */
    table->requires_grad = false;
    fx_init(&f);
    out = lt_embedding(&f.g, table, ids, 1.0f);
    cr_expect(!out->requires_grad && f.g.n_nodes == 0);
    fx_free(&f);
    tl_free(table);
    tl_free(ids);
}

/* ---- linear ------------------------------------------------------------------------------- */

typedef struct {
    lt_tensor *x, *W, *A, *B;
    float s, p;
    uint64_t seed;
    lt_tensor *bias; /* frozen [out] or NULL */
} lin_ctx;
static lt_tensor *lin_build(lt_graph *g, void *c) {
    lin_ctx *l = c;
    if (l->bias) return lt_linear_bias(g, l->x, l->W, l->bias, l->A, l->B, l->s, l->p, l->seed);
    return lt_linear(g, l->x, l->W, l->A, l->B, l->s, l->p, l->seed);
}

/* y = x Wᵀ + b + s · (m ⊙ x / (1 − p)) Aᵀ Bᵀ in float64; the mask from lt_dropout_keep. */
static void ref_linear(const lin_ctx *l, double *y) {
    const int64_t in = l->W->shape[1], out = l->W->shape[0];
    const int64_t N = lt_tensor_numel(l->x) / in;
    const int64_t r = l->A ? l->A->shape[0] : 0;
    const float *x = lt_f32(l->x), *W = lt_f32(l->W);
    for (int64_t i = 0; i < N; i++)
        for (int64_t o = 0; o < out; o++) {
            double acc = l->bias ? (double)lt_f32(l->bias)[o] : 0.0;
            for (int64_t c = 0; c < in; c++) acc += (double)x[i * in + c] * W[o * in + c];
            if (l->A) {
                for (int64_t k = 0; k < r; k++) {
                    double hk = 0;
                    for (int64_t c = 0; c < in; c++) {
                        int64_t j = i * in + c;
                        double xd = l->p > 0 ? (lt_dropout_keep(l->seed, (uint64_t)j, l->p)
                                                    ? x[j] / (1.0 - l->p)
                                                    : 0.0)
                                             : x[j];
                        hk += xd * lt_f32(l->A)[k * in + c];
                    }
                    acc += l->s * hk * lt_f32(l->B)[o * r + k];
                }
            }
            y[i * out + o] = acc;
        }
}

static void linear_case_b(bool lora, bool W_trainable, float p, bool bias, int ndim,
                          const int64_t *xshape, int64_t out_f, int64_t r) {
    tl_rng rng = {42 + (uint64_t)lora * 7 + (uint64_t)W_trainable * 13 + (uint64_t)(p * 100) +
                  (uint64_t)bias * 29};
    const int64_t in_f = xshape[ndim - 1];
    lin_ctx l = {0};
    l.x = leaf_f32(&rng, ndim, xshape, true);
    l.W = leaf_f32(&rng, 2, (int64_t[]){out_f, in_f}, W_trainable);
    if (bias) l.bias = leaf_f32(&rng, 1, (int64_t[]){out_f}, false);
    if (lora) {
        l.A = leaf_f32(&rng, 2, (int64_t[]){r, in_f}, true);
        l.B = leaf_f32(&rng, 2, (int64_t[]){out_f, r}, true);
        l.s = 2.0f / (float)r;
        l.p = p;
        l.seed = 1234;
    }
    fixture f;
    fx_init(&f);
    lt_tensor *y = lin_build(&f.g, &l);
    cr_assert_eq(y->ndim, ndim);
    cr_assert_eq(y->shape[ndim - 1], out_f);
    int64_t ny = lt_tensor_numel(y);
    double *ref = malloc((size_t)ny * sizeof(double));
    ref_linear(&l, ref);
    double e = tl_rel_err(lt_f32(y), ref, ny);
    cr_expect(e < TOL_FWD, "linear forward rel err %.3g (lora %d p %.2f bias %d)", e, lora, p, bias);
    free(ref);
    fx_free(&f);

    lt_tensor *leaves[4];
    const char *names[4];
    int nl = 0;
    lt_tensor *frozen[2];
    int nf = 0;
    leaves[nl] = l.x, names[nl++] = "x";
    if (W_trainable) leaves[nl] = l.W, names[nl++] = "W";
    else frozen[nf++] = l.W;
    if (bias) frozen[nf++] = l.bias; /* the bias is frozen base weight: never a grad */
    if (lora) {
        leaves[nl] = l.A, names[nl++] = "A";
        leaves[nl] = l.B, names[nl++] = "B";
    }
    tl_gc_result res = tl_gradcheck(lin_build, &l, leaves, nl, frozen, nf, 99, FD_H, 0);
    check_grads(&res, leaves, names, nl);
    tl_free(l.x);
    tl_free(l.W);
    tl_free(l.A);
    tl_free(l.B);
    tl_free(l.bias);
}

static void linear_case(bool lora, bool W_trainable, float p, int ndim, const int64_t *xshape,
                        int64_t out_f, int64_t r) {
    linear_case_b(lora, W_trainable, p, false, ndim, xshape, out_f, r);
}

Test(ops, linear_plain) {
    linear_case(false, true, 0.0f, 2, (int64_t[]){7, 13}, 11, 0);
    linear_case(false, true, 0.0f, 3, (int64_t[]){2, 3, 13}, 5, 0); /* leading dims flatten */
}

Test(ops, linear_lora_frozen_base) { linear_case(true, false, 0.0f, 2, (int64_t[]){7, 13}, 11, 3); }

Test(ops, linear_lora_trainable_base) { linear_case(true, true, 0.0f, 3, (int64_t[]){1, 7, 13}, 11, 3); }

Test(ops, linear_lora_dropout_grad) { linear_case(true, false, 0.3f, 2, (int64_t[]){7, 13}, 11, 3); }

/* Frozen bias (Qwen2's q/k/v): forward against the reference, FD grads of x (and W, A, B)
 * unchanged by it, and no grad buffer for the bias itself. */
Test(ops, linear_bias) {
    linear_case_b(false, true, 0.0f, true, 2, (int64_t[]){7, 13}, 11, 0);
    linear_case_b(true, false, 0.0f, true, 3, (int64_t[]){2, 3, 13}, 5, 3);
    linear_case_b(true, false, 0.3f, true, 2, (int64_t[]){7, 13}, 11, 3);
}

/* With a bias, y equals the bias-free output plus b on every row, exactly (one float add). */
Test(ops, linear_bias_adds_rows) {
    tl_rng rng = {6};
    lt_tensor *x = leaf_f32(&rng, 2, (int64_t[]){5, 9}, true);
    lt_tensor *W = leaf_f32(&rng, 2, (int64_t[]){4, 9}, false);
    lt_tensor *b = leaf_f32(&rng, 1, (int64_t[]){4}, false);
    fixture f;
    fx_init(&f);
    lt_tensor *y0 = lt_linear(&f.g, x, W, NULL, NULL, 0, 0, 0);
    lt_tensor *y1 = lt_linear_bias(&f.g, x, W, b, NULL, NULL, 0, 0, 0);
    for (int64_t i = 0; i < 5; i++)
        for (int64_t o = 0; o < 4; o++)
            cr_expect_eq(lt_f32(y1)[i * 4 + o], lt_f32(y0)[i * 4 + o] + lt_f32(b)[o]);
    fx_free(&f);
    tl_free(x), tl_free(W), tl_free(b);
}

Test(ops, linear_lora_b_zero_equals_plain) {
    tl_rng rng = {5};
    lt_tensor *x = leaf_f32(&rng, 2, (int64_t[]){7, 13}, false);
    lt_tensor *W = leaf_f32(&rng, 2, (int64_t[]){11, 13}, false);
    lt_tensor *A = leaf_f32(&rng, 2, (int64_t[]){3, 13}, true);
    lt_tensor *B = tl_leaf(LT_F32, 2, (int64_t[]){11, 3}, true); /* zero, as PEFT initializes */
    fixture f;
    fx_init(&f);
    lt_tensor *y0 = lt_linear(&f.g, x, W, NULL, NULL, 0, 0, 0);
    lt_tensor *y1 = lt_linear(&f.g, x, W, A, B, 16.0f / 3, 0.1f, 7);
    for (int64_t i = 0; i < 77; i++) cr_expect_eq(lt_f32(y0)[i], lt_f32(y1)[i]);
    cr_expect(!y0->requires_grad && y1->requires_grad);
    fx_free(&f);
    tl_free(x), tl_free(W), tl_free(A), tl_free(B);
}

Test(ops, linear_dropout_mask) {
    /* W = 0, A = B = I, s = 1: y = drop(x) exactly, so the mask and scaling are visible. */
    const int64_t N = 64, D = 16;
    const float p = 0.25f;
    tl_rng rng = {9};
    lt_tensor *x = leaf_f32(&rng, 2, (int64_t[]){N, D}, false);
    for (int64_t i = 0; i < N * D; i++) lt_f32(x)[i] += 2.0f; /* nonzero everywhere */
    lt_tensor *W = tl_leaf(LT_F32, 2, (int64_t[]){D, D}, false);
    lt_tensor *A = tl_leaf(LT_F32, 2, (int64_t[]){D, D}, true);
    lt_tensor *B = tl_leaf(LT_F32, 2, (int64_t[]){D, D}, true);
    for (int64_t i = 0; i < D; i++) lt_f32(A)[i * D + i] = lt_f32(B)[i * D + i] = 1.0f;
    fixture f;
    fx_init(&f);
    lt_tensor *y1 = lt_linear(&f.g, x, W, A, B, 1.0f, p, 77);
    lt_tensor *y2 = lt_linear(&f.g, x, W, A, B, 1.0f, p, 77);
    lt_tensor *y3 = lt_linear(&f.g, x, W, A, B, 1.0f, p, 78);
    int64_t dropped = 0, differ = 0;
    for (int64_t j = 0; j < N * D; j++) {
        float xj = lt_f32(x)[j], a = lt_f32(y1)[j];
        bool keep = lt_dropout_keep(77, (uint64_t)j, p);
        if (keep) cr_expect(fabsf(a - xj / (1 - p)) <= 1e-6f * fabsf(a), "kept not scaled at %ld", (long)j);
        else cr_expect_eq(a, 0.0f, "dropped element %ld is %g", (long)j, a);
        dropped += !keep;
        cr_expect_eq(lt_f32(y2)[j], a, "same seed, different mask");
        differ += (lt_f32(y3)[j] == 0.0f) != (a == 0.0f);
    }
    /* 1024 Bernoulli(0.25) draws: mean 256, sd ~14; ±70 is a 5-sigma band */
    cr_expect(dropped > 256 - 70 && dropped < 256 + 70, "dropped %ld of 1024 at p=0.25", (long)dropped);
    cr_expect(differ > 100, "another seed should give another mask (%ld differ)", (long)differ);
    fx_free(&f);
    tl_free(x), tl_free(W), tl_free(A), tl_free(B);
}

/* ---- linear on a quantized frozen base (NF4, NF4 + double quant, Q8_0) -------------------- */

/* Quantized base vs the F32 linear on the same dequantized weights, as max |err| / max |ref|.
 * Both multiply identical F32 operands; only the GEMM's summation order differs (tiles of rows
 * vs one call), so each output differs by float32 reassociation over `in` (or `out`) terms:
 * ~sqrt(terms)·6e-8 relative to the sum of |terms|; measured 0 for y and <= 6.1e-7 for dx with
 * 300 rows in 3 tiles at in = 4096 (TL_VERBOSE=1). 6e-6 is 10x that, while a wrong tile offset
 * or a skipped tile is an O(1e-1) error. */
#define TOL_QLINEAR 6e-6

enum { QB_NF4, QB_NF4_DQ, QB_Q8_0 };

/* Quantize a fresh random F32 [out, in] weight into *Wq (kind above) and return deq(Wq) as a
 * frozen F32 leaf. Wq's buffers are freed by qbase_free. */
static lt_tensor *qbase_make(tl_rng *rng, int kind, int64_t out_f, int64_t in_f, lt_tensor *Wq) {
    lt_tensor *W = leaf_f32(rng, 2, (int64_t[]){out_f, in_f}, false);
    W->name = "test.weight";
    if (kind == QB_Q8_0) {
        memset(Wq, 0, sizeof *Wq);
        Wq->dtype = LT_Q8_0;
        lt_tensor_set_shape(Wq, 2, W->shape);
        Wq->data = malloc(lt_tensor_nbytes(Wq));
        lt_quantize_q8_0(lt_f32(W), Wq->data, out_f * in_f);
    } else {
        cr_assert_eq(lt_nf4_quantize(Wq, W, 32, kind == QB_NF4_DQ), LT_OK, "%s",
                     lt_error_message());
    }
    lt_dequant_rows(Wq, 0, out_f, lt_f32(W));
    return W;
}
static void qbase_free(lt_tensor *Wq) {
    if (Wq->dtype == LT_NF4) lt_nf4_free(Wq);
    else free(Wq->data);
}

static void qlinear_case(int kind, bool lora, float p) {
    tl_rng rng = {700 + (uint64_t)kind * 31 + (uint64_t)lora * 7};
    const int64_t N = 5, in_f = 64, out_f = 37, r = 3;
    lt_tensor Wq;
    lin_ctx lq = {0}, lf = {0};
    lf.W = qbase_make(&rng, kind, out_f, in_f, &Wq);
    lq.x = lf.x = leaf_f32(&rng, 2, (int64_t[]){N, in_f}, true);
    lq.W = &Wq;
    if (lora) {
        lq.A = lf.A = leaf_f32(&rng, 2, (int64_t[]){r, in_f}, true);
        lq.B = lf.B = leaf_f32(&rng, 2, (int64_t[]){out_f, r}, true);
        lq.s = lf.s = 2.0f / (float)r;
        lq.p = lf.p = p;
        lq.seed = lf.seed = 77;
    }
    /* forward equals the F32 linear on deq(W), and the float64 reference on deq(W) */
    fixture f;
    fx_init(&f);
    lt_tensor *yq = lin_build(&f.g, &lq), *yf = lin_build(&f.g, &lf);
    double *ref = malloc((size_t)(N * out_f) * sizeof(double));
    for (int64_t i = 0; i < N * out_f; i++) ref[i] = lt_f32(yf)[i];
    double e = tl_rel_err(lt_f32(yq), ref, N * out_f);
    cr_expect(e < TOL_QLINEAR, "kind %d: quantized vs F32-on-deq rel err %.3g", kind, e);
    ref_linear(&lf, ref);
    e = tl_rel_err(lt_f32(yq), ref, N * out_f);
    cr_expect(e < TOL_FWD, "kind %d: forward vs float64 rel err %.3g", kind, e);
    free(ref);
    fx_free(&f);

    /* gradients of x (and A, B) by finite differences; the quantized base gets none */
    lt_tensor *leaves[3] = {lq.x, lq.A, lq.B};
    const char *names[3] = {"x", "A", "B"};
    lt_tensor *frozen[1] = {&Wq};
    tl_gc_result res = tl_gradcheck(lin_build, &lq, leaves, lora ? 3 : 1, frozen, 1, 5, FD_H, 0);
    check_grads(&res, leaves, names, lora ? 3 : 1);
    qbase_free(&Wq);
    tl_free(lf.W), tl_free(lq.x), tl_free(lq.A), tl_free(lq.B);
}

Test(ops, linear_nf4_base) {
    qlinear_case(QB_NF4, false, 0.0f);
    qlinear_case(QB_NF4, true, 0.0f);
}
Test(ops, linear_nf4_dq_base_lora_dropout) { qlinear_case(QB_NF4_DQ, true, 0.2f); }
Test(ops, linear_q8_0_base) {
    qlinear_case(QB_Q8_0, false, 0.0f);
    qlinear_case(QB_Q8_0, true, 0.0f);
}

/* Wide rows: several dequantization tiles (2 MiB of F32 rows = 128 rows at in = 4096). y and dx
 * through the tiled path equal the F32 linear on deq(W) within TOL_QLINEAR. */
Test(ops, linear_quantized_multi_tile) {
    for (int kind = QB_NF4; kind <= QB_Q8_0; kind++) {
        tl_rng rng = {900 + (uint64_t)kind};
        const int64_t N = 3, in_f = 4096, out_f = 300;
        lt_tensor Wq;
        lt_tensor *Wd = qbase_make(&rng, kind, out_f, in_f, &Wq);
        lt_tensor *x = leaf_f32(&rng, 2, (int64_t[]){N, in_f}, true);
        float *R = malloc((size_t)(N * out_f) * sizeof(float));
        for (int64_t i = 0; i < N * out_f; i++) R[i] = (float)tl_unif(&rng, -1, 1);
        float *y[2], *dx[2];
        for (int k = 0; k < 2; k++) {
            fixture f;
            fx_init(&f);
            x->grad = NULL;
            lt_tensor *out = lt_linear(&f.g, x, k ? Wd : &Wq, NULL, NULL, 0, 0, 0);
            tl_backward_from(&f.g, out, R);
            y[k] = malloc((size_t)(N * out_f) * sizeof(float));
            dx[k] = malloc((size_t)(N * in_f) * sizeof(float));
            memcpy(y[k], out->data, (size_t)(N * out_f) * sizeof(float));
            memcpy(dx[k], x->grad->data, (size_t)(N * in_f) * sizeof(float));
            cr_expect(Wq.grad == NULL && Wd->grad == NULL);
            x->grad = NULL;
            fx_free(&f);
        }
        double *ref = malloc((size_t)(N * in_f) * sizeof(double));
        for (int64_t i = 0; i < N * out_f; i++) ref[i] = y[1][i];
        double e = tl_rel_err(y[0], ref, N * out_f);
        cr_expect(e < TOL_QLINEAR, "kind %d: y rel err %.3g", kind, e);
        for (int64_t i = 0; i < N * in_f; i++) ref[i] = dx[1][i];
        e = tl_rel_err(dx[0], ref, N * in_f);
        cr_expect(e < TOL_QLINEAR, "kind %d: dx rel err %.3g", kind, e);
        free(ref), free(R), free(y[0]), free(y[1]), free(dx[0]), free(dx[1]);
        qbase_free(&Wq);
        tl_free(Wd), tl_free(x);
    }
}

/* ---- rmsnorm ------------------------------------------------------------------------------ */

typedef struct {
    lt_tensor *x, *w;
    float eps, offset;
} rms_ctx;
static lt_tensor *rms_build(lt_graph *g, void *c) {
    rms_ctx *r = c;
    return lt_rmsnorm(g, r->x, r->w, r->eps, r->offset);
}

/* Forward of c against float64 (weight applied as offset + w) and grads of x and w. */
static void check_rmsnorm(rms_ctx *c, uint64_t seed, const char *what) {
    const int64_t D = c->w->shape[0], N = lt_tensor_numel(c->x) / D;
    fixture f;
    fx_init(&f);
    lt_tensor *y = rms_build(&f.g, c);
    double *ref = malloc((size_t)(N * D) * sizeof(double));
    for (int64_t i = 0; i < N; i++) {
        double ss = 0;
        for (int64_t d = 0; d < D; d++) ss += (double)lt_f32(c->x)[i * D + d] * lt_f32(c->x)[i * D + d];
        double rs = 1.0 / sqrt(ss / D + c->eps);
        for (int64_t d = 0; d < D; d++)
            ref[i * D + d] = lt_f32(c->x)[i * D + d] * rs * (c->offset + lt_f32(c->w)[d]);
    }
    double e = tl_rel_err(lt_f32(y), ref, N * D);
    cr_expect(e < TOL_FWD, "rmsnorm (%s) forward rel err %.3g", what, e);
    free(ref);
    fx_free(&f);
    lt_tensor *leaves[2] = {c->x, c->w};
    tl_gc_result res = tl_gradcheck(rms_build, c, leaves, 2, NULL, 0, seed, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"x", "w"}, 2);
}

Test(ops, rmsnorm) {
    tl_rng rng = {3};
    rms_ctx c = {leaf_f32(&rng, 3, (int64_t[]){7, 1, 13}, true),
                 leaf_f32(&rng, 1, (int64_t[]){13}, true), 1e-5f, 0.0f};
    check_rmsnorm(&c, 4, "w");
    /* Gemma's (1 + w) RMSNorm */
    c.offset = 1.0f;
    c.eps = 1e-6f;
    check_rmsnorm(&c, 6, "1 + w");
    /* frozen weight (the LoRA case): only x gets a grad */
    c.offset = 0.0f;
    c.eps = 1e-5f;
    c.w->requires_grad = false;
    lt_tensor *leaves[1] = {c.x}, *frozen[1] = {c.w};
    tl_gc_result res = tl_gradcheck(rms_build, &c, leaves, 1, frozen, 1, 4, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"x"}, 1);
    tl_free(c.x), tl_free(c.w);
}

/* ---- rope --------------------------------------------------------------------------------- */

typedef struct {
    lt_tensor *x, *pos;
    lt_tensor *inv_freq; /* [Dh/2], frozen */
} rope_ctx;
static lt_tensor *rope_build(lt_graph *g, void *c) {
    rope_ctx *r = c;
    return lt_rope(g, r->x, r->pos, r->inv_freq);
}

/* Unscaled RoPE frequencies base^(−2i/Dh), rounded once from float64. */
static lt_tensor *rope_freqs(int64_t Dh, double base) {
    lt_tensor *t = tl_leaf(LT_F32, 1, (int64_t[]){Dh / 2}, false);
    for (int64_t i = 0; i < Dh / 2; i++) lt_f32(t)[i] = (float)pow(base, -2.0 * (double)i / (double)Dh);
    return t;
}

static void ref_rope(const rope_ctx *c, int64_t N, int64_t H, int64_t Dh, double *y) {
    const int64_t half = Dh / 2;
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < half; i++) {
                double th = ((int32_t *)c->pos->data)[n] * (double)lt_f32(c->inv_freq)[i];
                const float *x = lt_f32(c->x) + (n * H + h) * Dh;
                y[(n * H + h) * Dh + i] = x[i] * cos(th) - x[i + half] * sin(th);
                y[(n * H + h) * Dh + i + half] = x[i + half] * cos(th) + x[i] * sin(th);
            }
}

Test(ops, rope) {
    tl_rng rng = {17};
    const int64_t B = 2, T = 5, H = 3, Dh = 8, N = B * T;
    rope_ctx c = {leaf_f32(&rng, 4, (int64_t[]){B, T, H, Dh}, true),
                  tl_leaf(LT_I32, 1, (int64_t[]){N}, false), rope_freqs(Dh, 10000.0)};
    /* positions restart per packed document: row 0 is [0..4], row 1 is [0, 1, 0, 1, 2] */
    const int32_t pv[10] = {0, 1, 2, 3, 4, 0, 1, 0, 1, 2};
    memcpy(c.pos->data, pv, sizeof pv);
    fixture f;
    fx_init(&f);
    lt_tensor *y = rope_build(&f.g, &c);
    double ref[10 * 3 * 8];
    ref_rope(&c, N, H, Dh, ref);
    /* float32 angles and cosf/sinf vs float64: |θ| <= 4 here, so ~5e-7 absolute at most */
    double e = tl_rel_err(lt_f32(y), ref, N * H * Dh);
    cr_expect(e < TOL_FWD, "rope forward rel err %.3g", e);
    /* pos 0 is the identity */
    for (int64_t j = 0; j < H * Dh; j++) cr_expect_eq(lt_f32(y)[j], lt_f32(c.x)[j]);
    fx_free(&f);

    /* a restarted position rotates exactly like the same position at the start of a row */
    rope_ctx c2 = c;
    c2.x = tl_leaf(LT_F32, 3, (int64_t[]){1, H, Dh}, false);
    c2.pos = tl_leaf(LT_I32, 1, (int64_t[]){1}, false);
    ((int32_t *)c2.pos->data)[0] = 2;
    memcpy(c2.x->data, lt_f32(c.x) + 9 * H * Dh, (size_t)(H * Dh) * sizeof(float));
    fx_init(&f);
    lt_tensor *y2 = rope_build(&f.g, &c2);
    lt_tensor *y1 = rope_build(&f.g, &c);
    for (int64_t j = 0; j < H * Dh; j++) cr_expect_eq(lt_f32(y2)[j], lt_f32(y1)[9 * H * Dh + j]);
    fx_free(&f);
    tl_free(c2.x), tl_free(c2.pos);

    lt_tensor *leaves[1] = {c.x};
    tl_gc_result res = tl_gradcheck(rope_build, &c, leaves, 1, NULL, 0, 8, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"x"}, 1);
    tl_free(c.x), tl_free(c.pos);

    /* rescaled frequencies (what llama3 / linear rope_scaling hand the op): the angle is
     * pos · inv_freq[i] whatever the values, forward and backward */
    rope_ctx c3 = {leaf_f32(&rng, 3, (int64_t[]){N, H, Dh}, true),
                   tl_leaf(LT_I32, 1, (int64_t[]){N}, false), rope_freqs(Dh, 500000.0)};
    for (int64_t i = 0; i < Dh / 2; i++) lt_f32(c3.inv_freq)[i] /= (float)(1 + 3 * i);
    for (int64_t i = 0; i < N; i++) ((int32_t *)c3.pos->data)[i] = (int32_t)(7 * i + 3);
    fx_init(&f);
    y = rope_build(&f.g, &c3);
    ref_rope(&c3, N, H, Dh, ref);
    /* angles up to 66 rad: float32 θ is off by ~4e-6 rad, as in the 1e-5 case below */
    e = tl_rel_err(lt_f32(y), ref, N * H * Dh);
    cr_expect(e < 1e-5, "scaled rope forward rel err %.3g", e);
    fx_free(&f);
    lt_tensor *l3[1] = {c3.x}, *fz3[1] = {c3.inv_freq};
    res = tl_gradcheck(rope_build, &c3, l3, 1, fz3, 1, 9, FD_H, 0);
    check_grads(&res, l3, (const char *[]){"x (scaled)"}, 1);
    tl_free(c3.x), tl_free(c3.pos), tl_free(c3.inv_freq), tl_free(c.inv_freq);
}

/* ---- attention ---------------------------------------------------------------------------- */

typedef struct {
    lt_tensor *q, *k, *v, *doc;
    int64_t window; /* sliding window, 0 = none */
    float scale, softcap; /* 0 = 1/sqrt(Dh), 0 = none */
} att_ctx;
static lt_tensor *att_build(lt_graph *g, void *c) {
    att_ctx *a = c;
    lt_attn_opts o = {.window = a->window, .scale = a->scale, .softcap = a->softcap};
    return lt_attention(g, a->q, a->k, a->v, a->doc, &o);
}

/* Plain softmax attention in float64 with the causal, KV-offset, sliding-window and document
 * masks (a window w keeps keys j with t - j < w: transformers' sliding_window_overlay). */
static void ref_attention(const att_ctx *a, double *o) {
    const int64_t B = a->q->shape[0], Tq = a->q->shape[1], Hq = a->q->shape[2], Dh = a->q->shape[3];
    const int64_t Tk = a->k->shape[1], Hkv = a->k->shape[2], off = Tk - Tq;
    const float *q = lt_f32(a->q), *k = lt_f32(a->k), *v = lt_f32(a->v);
    const int32_t *doc = a->doc ? (int32_t *)a->doc->data : NULL;
    double *s = malloc((size_t)Tk * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++) {
            int64_t kh = h / (Hq / Hkv);
            for (int64_t i = 0; i < Tq; i++) {
                int64_t t = off + i;
                double m = -INFINITY;
                for (int64_t j = 0; j < Tk; j++) {
                    bool vis = j <= t && (!a->window || t - j < a->window) &&
                               (!doc || doc[b * Tk + j] == doc[b * Tk + t]);
                    if (!vis) {
                        s[j] = -INFINITY;
                        continue;
                    }
                    double acc = 0;
                    for (int64_t d = 0; d < Dh; d++)
                        acc += (double)q[((b * Tq + i) * Hq + h) * Dh + d] *
                               k[((b * Tk + j) * Hkv + kh) * Dh + d];
                    s[j] = acc * (a->scale > 0 ? a->scale : 1 / sqrt((double)Dh));
                    if (a->softcap > 0) s[j] = a->softcap * tanh(s[j] / a->softcap);
                    if (s[j] > m) m = s[j];
                }
                double z = 0;
                for (int64_t j = 0; j < Tk; j++) z += s[j] == -INFINITY ? 0 : exp(s[j] - m);
                for (int64_t d = 0; d < Dh; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < Tk; j++)
                        if (s[j] != -INFINITY)
                            acc += exp(s[j] - m) / z * v[((b * Tk + j) * Hkv + kh) * Dh + d];
                    o[((b * Tq + i) * Hq + h) * Dh + d] = acc;
                }
            }
        }
    free(s);
}

static att_ctx att_make(tl_rng *r, int64_t B, int64_t Tq, int64_t Tk, int64_t Hq, int64_t Hkv,
                        int64_t Dh, bool with_doc) {
    att_ctx a;
    a.q = leaf_f32(r, 4, (int64_t[]){B, Tq, Hq, Dh}, true);
    a.k = leaf_f32(r, 4, (int64_t[]){B, Tk, Hkv, Dh}, true);
    a.v = leaf_f32(r, 4, (int64_t[]){B, Tk, Hkv, Dh}, true);
    a.doc = NULL;
    a.window = 0;
    a.scale = a.softcap = 0.0f;
    if (with_doc) {
        a.doc = tl_leaf(LT_I32, 2, (int64_t[]){B, Tk}, false);
        for (int64_t b = 0; b < B; b++) /* row b: documents of lengths 3 + b, then 4, then rest */
            for (int64_t j = 0; j < Tk; j++)
                ((int32_t *)a.doc->data)[b * Tk + j] = j < 3 + b ? 5 : j < 7 + b ? 9 : 2;
    }
    return a;
}
static void att_free(att_ctx *a) { tl_free(a->q), tl_free(a->k), tl_free(a->v), tl_free(a->doc); }

/* Forward of a against the float64 reference and q/k/v grads against finite differences
 * (`samples` as tl_gradcheck's; 0 = every element); `what` names the case in messages. */
static void check_attention(att_ctx *a, uint64_t seed, int samples, const char *what) {
    fixture f;
    fx_init(&f);
    lt_tensor *o = att_build(&f.g, a);
    int64_t no = lt_tensor_numel(o);
    double *ref = malloc((size_t)no * sizeof(double));
    ref_attention(a, ref);
    double e = tl_rel_err(lt_f32(o), ref, no);
    cr_expect(e < TOL_FWD, "attention (%s) forward rel err %.3g", what, e);
    free(ref);
    fx_free(&f);
    lt_tensor *leaves[3] = {a->q, a->k, a->v};
    tl_gc_result res = tl_gradcheck(att_build, a, leaves, 3, NULL, 0, seed, FD_H, samples);
    check_grads(&res, leaves, (const char *[]){"q", "k", "v"}, 3);
}

static void attention_case_w(int64_t B, int64_t Tq, int64_t Tk, int64_t Hq, int64_t Hkv,
                             int64_t Dh, bool with_doc, int64_t window, uint64_t seed) {
    tl_rng r = {seed};
    att_ctx a = att_make(&r, B, Tq, Tk, Hq, Hkv, Dh, with_doc);
    a.window = window;
    char what[128];
    snprintf(what, sizeof what, "Tq %ld Tk %ld Hkv %ld doc %d window %ld", (long)Tq, (long)Tk,
             (long)Hkv, with_doc, (long)window);
    check_attention(&a, seed + 1, 0, what);
    att_free(&a);
}

static void attention_case(int64_t B, int64_t Tq, int64_t Tk, int64_t Hq, int64_t Hkv, int64_t Dh,
                           bool with_doc, uint64_t seed) {
    attention_case_w(B, Tq, Tk, Hq, Hkv, Dh, with_doc, 0, seed);
}

Test(ops, attention_gqa) {
    attention_case(2, 9, 9, 6, 2, 8, false, 21);
    attention_case(2, 9, 9, 6, 3, 8, false, 22);
    attention_case(1, 5, 5, 2, 2, 4, false, 23); /* plain multi-head */
}

Test(ops, attention_doc_mask) { attention_case(2, 9, 9, 6, 3, 8, true, 24); }

Test(ops, attention_kv_offset) { attention_case(2, 4, 9, 6, 2, 8, true, 25); }

Test(ops, attention_multi_block) {
    /* more query rows than one block of the CPU kernel (64), with a KV offset and documents */
    attention_case(1, 70, 75, 2, 1, 4, true, 26);
}

Test(ops, attention_sliding_window) {
    attention_case_w(2, 9, 9, 6, 2, 8, false, 3, 61);  /* window shorter than the row */
    attention_case_w(2, 9, 9, 6, 3, 8, true, 2, 62);   /* window and documents together */
    attention_case_w(2, 4, 9, 6, 2, 8, true, 3, 63);   /* KV offset (cached generation) */
    attention_case_w(1, 9, 9, 2, 1, 4, false, 1, 64);  /* window 1: each query sees itself */
    attention_case_w(1, 9, 9, 2, 1, 4, false, 9, 65);  /* window = row: no key is cut */
    /* several 64-row CPU blocks: later blocks start at a key j0 > 0 */
    attention_case_w(1, 150, 150, 2, 1, 4, true, 20, 66);
}

/* Gemma 2: query_pre_attn_scalar's scale and attention soft-capping (modeling_gemma2.py), with a
 * window, documents and a KV offset; the cap must bind (scores well past it). */
static void attention_gemma_case(int64_t Tq, int64_t Tk, int64_t window, uint64_t seed) {
    tl_rng r = {seed};
    att_ctx a = att_make(&r, 2, Tq, Tk, 4, 2, 8, true);
    a.window = window;
    a.scale = 0.9f; /* large: scores reach several units, past the cap of 1.5 */
    a.softcap = 1.5f;
    for (int64_t i = 0; i < lt_tensor_numel(a.q); i++) lt_f32(a.q)[i] *= 2;
    check_attention(&a, seed + 1, 0, "scale 0.9, soft-cap 1.5");
    att_free(&a);
}
Test(ops, attention_scale_softcap) {
    attention_gemma_case(9, 9, 0, 151);
    attention_gemma_case(9, 9, 3, 152);
    attention_gemma_case(4, 9, 3, 153);
}

Test(ops, attention_window_covering_row_equals_none) {
    /* a window at least as long as the row changes nothing: bit-identical outputs */
    tl_rng r = {67};
    att_ctx a = att_make(&r, 2, 9, 9, 4, 2, 8, true);
    fixture f;
    fx_init(&f);
    lt_tensor *o0 = att_build(&f.g, &a);
    a.window = 9;
    lt_tensor *o1 = att_build(&f.g, &a);
    a.window = 3;
    lt_tensor *o3 = att_build(&f.g, &a);
    int64_t no = lt_tensor_numel(o0), differ = 0;
    for (int64_t i = 0; i < no; i++) {
        cr_expect(lt_f32(o0)[i] == lt_f32(o1)[i], "elem %ld: %g vs %g", (long)i, lt_f32(o0)[i],
                  lt_f32(o1)[i]);
        differ += lt_f32(o0)[i] != lt_f32(o3)[i];
    }
    cr_expect(differ > 0, "a window of 3 over 9-token rows must change some outputs");
    fx_free(&f);
    att_free(&a);
}

Test(ops, attention_frozen_kv) {
    tl_rng r = {27};
    att_ctx a = att_make(&r, 1, 6, 6, 4, 2, 4, false);
    a.k->requires_grad = a.v->requires_grad = false;
    lt_tensor *leaves[1] = {a.q}, *frozen[2] = {a.k, a.v};
    tl_gc_result res = tl_gradcheck(att_build, &a, leaves, 1, frozen, 2, 28, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"q"}, 1);
    att_free(&a);
}

/* Copy rows [t0, t0+n) of every batch of x (B, T, H, Dh) into a new leaf (B, n, H, Dh). */
static lt_tensor *slice_rows(const lt_tensor *x, int64_t t0, int64_t n) {
    const int64_t B = x->shape[0], T = x->shape[1], row = x->shape[2] * x->shape[3];
    lt_tensor *s = tl_leaf(LT_F32, 4, (int64_t[]){B, n, x->shape[2], x->shape[3]}, false);
    for (int64_t b = 0; b < B; b++)
        memcpy(lt_f32(s) + b * n * row, lt_f32(x) + (b * T + t0) * row, (size_t)(n * row) * sizeof(float));
    return s;
}

Test(ops, attention_packed_equals_separate) {
    /* one row holding two documents (lengths 4 and 5) == each document on its own */
    tl_rng r = {31};
    const int64_t T = 9, Hq = 6, Hkv = 3, Dh = 8, L0 = 4;
    att_ctx a = att_make(&r, 1, T, T, Hq, Hkv, Dh, false);
    a.doc = tl_leaf(LT_I32, 2, (int64_t[]){1, T}, false);
    for (int64_t j = 0; j < T; j++) ((int32_t *)a.doc->data)[j] = j < L0 ? 0 : 1;
    fixture f;
    fx_init(&f);
    lt_tensor *o = att_build(&f.g, &a);
    const int64_t row = Hq * Dh;
    for (int part = 0; part < 2; part++) {
        int64_t t0 = part ? L0 : 0, n = part ? T - L0 : L0;
        att_ctx s = {slice_rows(a.q, t0, n), slice_rows(a.k, t0, n), slice_rows(a.v, t0, n), NULL,
                     0, 0.0f, 0.0f};
        lt_tensor *os = att_build(&f.g, &s);
        for (int64_t i = 0; i < n * row; i++) {
            float x = lt_f32(os)[i], y = lt_f32(o)[t0 * row + i];
            /* same math on the same keys; only the GEMM summation order may differ */
            cr_expect(fabsf(x - y) <= 1e-6f, "doc %d elem %ld: %g vs %g", part, (long)i, x, y);
        }
        tl_free(s.q), tl_free(s.k), tl_free(s.v);
    }
    fx_free(&f);
    att_free(&a);
}

Test(ops, attention_kv_cache_equals_full) {
    /* queries for the last Tq positions against all Tk keys == the last Tq rows of the full run */
    tl_rng r = {33};
    const int64_t B = 2, T = 9, Tq = 3, Hq = 6, Hkv = 2, Dh = 8;
    att_ctx a = att_make(&r, B, T, T, Hq, Hkv, Dh, true);
    fixture f;
    fx_init(&f);
    lt_tensor *o = att_build(&f.g, &a);
    att_ctx c = a;
    c.q = slice_rows(a.q, T - Tq, Tq);
    lt_tensor *oc = att_build(&f.g, &c);
    lt_tensor *otail = slice_rows(o, T - Tq, Tq);
    for (int64_t i = 0; i < lt_tensor_numel(oc); i++)
        cr_expect(fabsf(lt_f32(oc)[i] - lt_f32(otail)[i]) <= 1e-6f, "elem %ld", (long)i);
    tl_free(otail), tl_free(c.q);
    fx_free(&f);
    att_free(&a);
}

/* ---- swiglu, add -------------------------------------------------------------------------- */

typedef struct {
    lt_tensor *a, *b;
} bin_ctx;
static lt_tensor *swiglu_build(lt_graph *g, void *c) {
    bin_ctx *s = c;
    return lt_glu(g, s->a, s->b, LT_ACT_SILU);
}
static lt_tensor *add_build(lt_graph *g, void *c) {
    bin_ctx *s = c;
    return lt_add(g, s->a, s->b);
}

Test(ops, swiglu) {
    tl_rng r = {41};
    bin_ctx c = {leaf_f32(&r, 2, (int64_t[]){7, 11}, true), leaf_f32(&r, 2, (int64_t[]){7, 11}, true)};
    for (int64_t i = 0; i < 77; i++) lt_f32(c.a)[i] *= 4; /* gate over [-4, 4): both tails of σ */
    fixture f;
    fx_init(&f);
    lt_tensor *y = swiglu_build(&f.g, &c);
    double ref[77];
    for (int64_t i = 0; i < 77; i++) {
        double gt = lt_f32(c.a)[i];
        ref[i] = gt / (1 + exp(-gt)) * lt_f32(c.b)[i];
    }
    double e = tl_rel_err(lt_f32(y), ref, 77);
    cr_expect(e < TOL_FWD, "swiglu forward rel err %.3g", e);
    fx_free(&f);
    lt_tensor *leaves[2] = {c.a, c.b};
    tl_gc_result res = tl_gradcheck(swiglu_build, &c, leaves, 2, NULL, 0, 42, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"gate", "up"}, 2);
    tl_free(c.a), tl_free(c.b);
}

/* GeGLU with the tanh GELU (torch gelu(approximate="tanh")) against float64, and its grads. */
static lt_tensor *geglu_build(lt_graph *g, void *c) {
    bin_ctx *s = c;
    return lt_glu(g, s->a, s->b, LT_ACT_GELU_TANH);
}
Test(ops, geglu) {
    tl_rng r = {141};
    bin_ctx c = {leaf_f32(&r, 2, (int64_t[]){7, 11}, true), leaf_f32(&r, 2, (int64_t[]){7, 11}, true)};
    for (int64_t i = 0; i < 77; i++) lt_f32(c.a)[i] *= 4; /* gate over [-4, 4): both tails */
    fixture f;
    fx_init(&f);
    lt_tensor *y = geglu_build(&f.g, &c);
    double ref[77];
    for (int64_t i = 0; i < 77; i++) {
        double x = lt_f32(c.a)[i];
        ref[i] = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) *
                 lt_f32(c.b)[i];
    }
    double e = tl_rel_err(lt_f32(y), ref, 77);
    cr_expect(e < TOL_FWD, "geglu forward rel err %.3g", e);
    fx_free(&f);
    lt_tensor *leaves[2] = {c.a, c.b};
    tl_gc_result res = tl_gradcheck(geglu_build, &c, leaves, 2, NULL, 0, 142, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"gate (gelu)", "up (gelu)"}, 2);
    tl_free(c.a), tl_free(c.b);
}

/* Soft-capping c·tanh(x/c) against float64, inputs well past the cap, and its grad. */
typedef struct {
    lt_tensor *x;
    float cap;
} cap_ctx;
static lt_tensor *softcap_build(lt_graph *g, void *c) {
    cap_ctx *s = c;
    return lt_softcap(g, s->x, s->cap);
}
Test(ops, softcap) {
    tl_rng r = {143};
    cap_ctx c = {leaf_f32(&r, 2, (int64_t[]){5, 13}, true), 1.5f};
    for (int64_t i = 0; i < 65; i++) lt_f32(c.x)[i] *= 5;
    fixture f;
    fx_init(&f);
    lt_tensor *y = softcap_build(&f.g, &c);
    double ref[65];
    for (int64_t i = 0; i < 65; i++) ref[i] = 1.5 * tanh(lt_f32(c.x)[i] / 1.5);
    double e = tl_rel_err(lt_f32(y), ref, 65);
    cr_expect(e < TOL_FWD, "softcap forward rel err %.3g", e);
    fx_free(&f);
    lt_tensor *leaves[1] = {c.x};
    tl_gc_result res = tl_gradcheck(softcap_build, &c, leaves, 1, NULL, 0, 144, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"x (softcap)"}, 1);
    tl_free(c.x);
}

Test(ops, add) {
    tl_rng r = {43};
    bin_ctx c = {leaf_f32(&r, 3, (int64_t[]){3, 5, 7}, true), leaf_f32(&r, 3, (int64_t[]){3, 5, 7}, true)};
    fixture f;
    fx_init(&f);
    lt_tensor *y = add_build(&f.g, &c);
    for (int64_t i = 0; i < 105; i++) cr_expect_eq(lt_f32(y)[i], lt_f32(c.a)[i] + lt_f32(c.b)[i]);
    fx_free(&f);
    lt_tensor *leaves[2] = {c.a, c.b};
    tl_gc_result res = tl_gradcheck(add_build, &c, leaves, 2, NULL, 0, 44, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"a", "b"}, 2);
    c.b->requires_grad = false; /* a frozen summand gets no grad */
    lt_tensor *frozen[1] = {c.b};
    res = tl_gradcheck(add_build, &c, leaves, 1, frozen, 1, 44, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"a"}, 1);
    tl_free(c.a), tl_free(c.b);
}

/* ---- cross entropy ------------------------------------------------------------------------ */

typedef struct {
    lt_tensor *logits, *tgt, *mask;
    float den;
} ce_ctx;
static lt_tensor *ce_build(lt_graph *g, void *c) {
    ce_ctx *e = c;
    return lt_cross_entropy(g, e->logits, e->tgt, e->mask, e->den);
}

static double ref_ce(const ce_ctx *e) {
    const int64_t N = e->logits->shape[0], V = e->logits->shape[1];
    double sum = 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < N; i++) {
        int32_t t = ((int32_t *)e->tgt->data)[i];
        if (t < 0 || (e->mask && !((uint8_t *)e->mask->data)[i])) continue;
        const float *row = lt_f32(e->logits) + i * V;
        double z = 0;
        for (int64_t c = 0; c < V; c++) z += exp((double)row[c]);
        sum += log(z) - row[t];
        cnt++;
    }
    double den = e->den > 0 ? e->den : (double)cnt;
    return den > 0 ? sum / den : 0.0;
}

Test(ops, cross_entropy) {
    tl_rng r = {51};
    const int64_t N = 7, V = 37;
    ce_ctx e = {leaf_f32(&r, 2, (int64_t[]){N, V}, true), tl_leaf(LT_I32, 1, (int64_t[]){N}, false),
                tl_leaf(LT_U8, 1, (int64_t[]){N}, false), 0};
    for (int64_t i = 0; i < N * V; i++) lt_f32(e.logits)[i] *= 3;
    const int32_t tv[7] = {4, -100, 36, 0, 17, 17, -1}; /* two ignored targets */
    const uint8_t mv[7] = {1, 1, 1, 0, 1, 1, 1};         /* and one masked row */
    memcpy(e.tgt->data, tv, sizeof tv);
    memcpy(e.mask->data, mv, sizeof mv);
    const float dens[3] = {0.0f, 10.0f, 2.5f}; /* mean over counted (4), then explicit */
    for (int k = 0; k < 3; k++) {
        e.den = dens[k];
        fixture f;
        fx_init(&f);
        lt_tensor *loss = ce_build(&f.g, &e);
        cr_assert_eq(loss->ndim, 1);
        cr_assert_eq(loss->shape[0], 1);
        double ref = ref_ce(&e), got = lt_f32(loss)[0];
        cr_expect(fabs(got - ref) <= TOL_FWD * fabs(ref), "CE den %g: %.8g vs %.8g", dens[k], got, ref);
        /* the scalar loss through the real lt_backward: masked / ignored rows get exactly 0 */
        lt_backward(&f.g, loss, 1.0f);
        cr_assert(e.logits->grad != NULL);
        for (int64_t i = 0; i < N; i++) {
            double rs = 0;
            for (int64_t c = 0; c < V; c++) rs += lt_f32(e.logits->grad)[i * V + c];
            bool counted = tv[i] >= 0 && mv[i];
            cr_expect(fabs(rs) < 1e-6, "row %ld: softmax − onehot should sum to 0", (long)i);
            if (!counted)
                for (int64_t c = 0; c < V; c++) cr_expect_eq(lt_f32(e.logits->grad)[i * V + c], 0.0f);
        }
        e.logits->grad = NULL;
        fx_free(&f);
        lt_tensor *leaves[1] = {e.logits};
        tl_gc_result res = tl_gradcheck(ce_build, &e, leaves, 1, NULL, 0, 52, FD_H, 0);
        check_grads(&res, leaves, (const char *[]){"logits"}, 1);
    }
    /* without a mask the masked row counts again */
    e.den = 0;
    lt_tensor *m = e.mask;
    e.mask = NULL;
    fixture f;
    fx_init(&f);
    double got = lt_f32(ce_build(&f.g, &e))[0], ref = ref_ce(&e);
    cr_expect(fabs(got - ref) <= TOL_FWD * fabs(ref), "CE no mask: %.8g vs %.8g", got, ref);
    fx_free(&f);
    e.mask = m;
    tl_free(e.logits), tl_free(e.tgt), tl_free(e.mask);
}

Test(ops, cross_entropy_stable_and_empty) {
    const int64_t N = 3, V = 37;
    tl_rng r = {53};
    ce_ctx e = {leaf_f32(&r, 2, (int64_t[]){N, V}, true), tl_leaf(LT_I32, 1, (int64_t[]){N}, false),
                NULL, 0};
    const int32_t tv[3] = {1, 2, 3};
    memcpy(e.tgt->data, tv, sizeof tv);
    fixture f;
    fx_init(&f);
    double base = lt_f32(ce_build(&f.g, &e))[0];
    for (int64_t i = 0; i < N * V; i++) lt_f32(e.logits)[i] += 1000.0f; /* exp would overflow */
    double shifted = lt_f32(ce_build(&f.g, &e))[0];
    cr_expect(isfinite(shifted) && fabs(shifted - base) < 1e-3, "shift-invariance: %g vs %g", shifted, base);
    /* nothing counted: loss 0 and no gradient */
    const int32_t none[3] = {-1, -1, -100};
    memcpy(e.tgt->data, none, sizeof none);
    lt_tensor *loss = ce_build(&f.g, &e);
    cr_expect_eq(lt_f32(loss)[0], 0.0f);
    lt_backward(&f.g, loss, 1.0f);
    if (e.logits->grad)
        for (int64_t i = 0; i < N * V; i++) cr_expect_eq(lt_f32(e.logits->grad)[i], 0.0f);
    e.logits->grad = NULL;
    fx_free(&f);
    tl_free(e.logits), tl_free(e.tgt);
}

/* ---- reshape ------------------------------------------------------------------------------ */

typedef struct {
    lt_tensor *x, *W;
} rs_ctx;
/* x (7, 12) -> (7, 3, 4) -> rope-free chain: reshape to (21, 4), linear to (21, 5) */
static lt_tensor *rs_build(lt_graph *g, void *c) {
    rs_ctx *r = c;
    lt_tensor *v = lt_reshape(g, r->x, 2, (int64_t[]){21, 4});
    return lt_linear(g, v, r->W, NULL, NULL, 0, 0, 0);
}
static lt_tensor *rs_only_build(lt_graph *g, void *c) {
    rs_ctx *r = c;
    return lt_reshape(g, r->x, 3, (int64_t[]){7, 3, 4});
}

Test(ops, reshape) {
    tl_rng rng = {61};
    rs_ctx c = {leaf_f32(&rng, 2, (int64_t[]){7, 12}, true), leaf_f32(&rng, 2, (int64_t[]){5, 4}, true)};
    fixture f;
    fx_init(&f);
    lt_tensor *v = rs_only_build(&f.g, &c);
    cr_expect(v->data == c.x->data, "reshape must not copy");
    cr_expect(v->ndim == 3 && v->shape[0] == 7 && v->shape[1] == 3 && v->shape[2] == 4);
    /* backward into an input without a grad: its grad is a view of the output grad */
    lt_tensor *dv = lt_graph_grad(&f.g, v);
    for (int64_t i = 0; i < 84; i++) lt_f32(dv)[i] = (float)i;
    lt_op_table[LT_OP_RESHAPE].backward_cpu(&f.g, v->node);
    cr_assert(c.x->grad != NULL);
    cr_expect(c.x->grad->data == dv->data, "first grad should be a view");
    cr_expect(c.x->grad->ndim == 2 && c.x->grad->shape[1] == 12);
    c.x->grad = NULL;
    /* an input with a grad already accumulates */
    lt_tensor *gx = lt_graph_grad(&f.g, c.x);
    for (int64_t i = 0; i < 84; i++) lt_f32(gx)[i] = 1.0f;
    lt_op_table[LT_OP_RESHAPE].backward_cpu(&f.g, v->node);
    cr_expect(c.x->grad == gx && gx->data != dv->data);
    for (int64_t i = 0; i < 84; i++) cr_expect_eq(lt_f32(gx)[i], 1.0f + (float)i);
    c.x->grad = NULL;
    fx_free(&f);

    lt_tensor *leaves[2] = {c.x, c.W};
    tl_gc_result res = tl_gradcheck(rs_build, &c, leaves, 2, NULL, 0, 62, FD_H, 0);
    cr_expect_eq(res.n_nodes, 2);
    check_grads(&res, leaves, (const char *[]){"x", "W"}, 2);
    res = tl_gradcheck(rs_only_build, &c, leaves, 1, NULL, 0, 63, FD_H, 0);
    check_grads(&res, leaves, (const char *[]){"x"}, 1);
    tl_free(c.x), tl_free(c.W);
}

/* ---- a small model through the real tape --------------------------------------------------- */

typedef struct {
    lt_tensor *table, *ids, *w, *W, *A, *B, *tgt;
} chain_ctx;
/* embed -> rmsnorm -> LoRA linear -> add residual -> CE: exercises lt_backward end to end */
static lt_tensor *chain_build(lt_graph *g, void *c) {
    chain_ctx *m = c;
    lt_tensor *x = lt_embedding(g, m->table, m->ids, 1.0f);
    lt_tensor *h = lt_rmsnorm(g, x, m->w, 1e-5f, 0.0f);
    lt_tensor *y = lt_linear(g, h, m->W, m->A, m->B, 2.0f, 0.0f, 0);
    lt_tensor *logits = lt_add(g, y, lt_linear(g, x, m->W, NULL, NULL, 0, 0, 0));
    return lt_cross_entropy(g, logits, m->tgt, NULL, 0);
}

Test(ops, chain_through_tape) {
    tl_rng r = {71};
    const int64_t V = 13, D = 13, N = 7, rk = 3;
    chain_ctx m;
    m.table = leaf_f32(&r, 2, (int64_t[]){V, D}, false);
    m.ids = tl_leaf(LT_I32, 1, (int64_t[]){N}, false);
    m.tgt = tl_leaf(LT_I32, 1, (int64_t[]){N}, false);
    for (int64_t i = 0; i < N; i++) {
        ((int32_t *)m.ids->data)[i] = (int32_t)((i * 5) % V);
        ((int32_t *)m.tgt->data)[i] = (int32_t)((i * 3 + 1) % V);
    }
    m.w = leaf_f32(&r, 1, (int64_t[]){D}, false);
    m.W = leaf_f32(&r, 2, (int64_t[]){V, D}, false);
    m.A = leaf_f32(&r, 2, (int64_t[]){rk, D}, true);
    m.B = leaf_f32(&r, 2, (int64_t[]){V, rk}, true);
    lt_tensor *leaves[2] = {m.A, m.B}, *frozen[4] = {m.table, m.w, m.W, m.ids};
    tl_gc_result res = tl_gradcheck(chain_build, &m, leaves, 2, frozen, 4, 72, FD_H, 0);
    cr_expect(res.n_nodes == 3, "only nodes downstream of the adapter are recorded (%d)", res.n_nodes);
    check_grads(&res, leaves, (const char *[]){"A", "B"}, 2);
    tl_free(m.table), tl_free(m.ids), tl_free(m.tgt), tl_free(m.w), tl_free(m.W), tl_free(m.A),
        tl_free(m.B);
}

/* ---- sizes that take the kernels' multi-threaded paths --------------------------------------
 * The shapes above are small enough that every kernel runs single-threaded; these repeat the
 * checks on shapes over the kernels' OpenMP thresholds (row splits, the rmsnorm dw reduction, the
 * embedding column split, dropout masks, attention tasks with per-head dK/dV partials), with the
 * finite differences sampled at GC_SAMPLES evenly spaced elements per input. */
#define GC_SAMPLES 48

Test(ops, parallel_paths_elementwise) {
    tl_rng r = {81};
    const int64_t N = 67, D = 1029;
    rms_ctx rc = {leaf_f32(&r, 2, (int64_t[]){N, D}, true), leaf_f32(&r, 1, (int64_t[]){D}, true), 1e-6f, 0.0f};
    lt_tensor *rl[2] = {rc.x, rc.w};
    tl_gc_result res = tl_gradcheck(rms_build, &rc, rl, 2, NULL, 0, 82, FD_H, GC_SAMPLES);
    check_grads(&res, rl, (const char *[]){"rmsnorm x", "rmsnorm w"}, 2);

    bin_ctx bc = {rc.x, leaf_f32(&r, 2, (int64_t[]){N, D}, true)};
    lt_tensor *bl[2] = {bc.a, bc.b};
    res = tl_gradcheck(swiglu_build, &bc, bl, 2, NULL, 0, 83, FD_H, GC_SAMPLES);
    check_grads(&res, bl, (const char *[]){"swiglu gate", "swiglu up"}, 2);
    res = tl_gradcheck(add_build, &bc, bl, 2, NULL, 0, 84, FD_H, GC_SAMPLES);
    check_grads(&res, bl, (const char *[]){"add a", "add b"}, 2);

    rope_ctx pc = {leaf_f32(&r, 3, (int64_t[]){N, 9, 64}, true), tl_leaf(LT_I32, 1, (int64_t[]){N}, false),
                   rope_freqs(64, 10000.0)};
    for (int64_t i = 0; i < N; i++) ((int32_t *)pc.pos->data)[i] = (int32_t)(i % 40);
    fixture f;
    fx_init(&f);
    lt_tensor *y = rope_build(&f.g, &pc);
    double *ref = malloc((size_t)(N * 9 * 64) * sizeof(double));
    ref_rope(&pc, N, 9, 64, ref);
    /* angles up to 39 rad: float32 θ = pos · inv_freq is off by up to ~2e-6 rad (as in HF) */
    double e = tl_rel_err(lt_f32(y), ref, N * 9 * 64);
    cr_expect(e < 1e-5, "rope forward rel err %.3g", e);
    free(ref);
    fx_free(&f);
    lt_tensor *pl[1] = {pc.x};
    res = tl_gradcheck(rope_build, &pc, pl, 1, NULL, 0, 85, FD_H, GC_SAMPLES);
    check_grads(&res, pl, (const char *[]){"rope x"}, 1);

    emb_ctx ec = {leaf_f32(&r, 2, (int64_t[]){100, D}, true), tl_leaf(LT_I32, 1, (int64_t[]){N}, false), 0};
    for (int64_t i = 0; i < N; i++) ((int32_t *)ec.ids->data)[i] = (int32_t)((i * 7) % 23); /* repeats */
    lt_tensor *el[1] = {ec.table};
    res = tl_gradcheck(emb_build, &ec, el, 1, NULL, 0, 86, FD_H, GC_SAMPLES);
    check_grads(&res, el, (const char *[]){"embedding table"}, 1);

    tl_free(rc.x), tl_free(rc.w), tl_free(bc.b), tl_free(pc.x), tl_free(pc.pos), tl_free(ec.table),
        tl_free(ec.ids), tl_free(pc.inv_freq);
}

Test(ops, parallel_paths_linear_dropout) {
    tl_rng r = {87};
    lin_ctx l = {leaf_f32(&r, 2, (int64_t[]){67, 601}, true), leaf_f32(&r, 2, (int64_t[]){19, 601}, false),
                 leaf_f32(&r, 2, (int64_t[]){5, 601}, true), leaf_f32(&r, 2, (int64_t[]){19, 5}, true),
                 0.5f, 0.1f, 4242, NULL};
    fixture f;
    fx_init(&f);
    lt_tensor *y = lin_build(&f.g, &l);
    double *ref = malloc((size_t)(67 * 19) * sizeof(double));
    ref_linear(&l, ref);
    /* dot products of length 601 in float32 (BLAS order) vs float64 */
    double e = tl_rel_err(lt_f32(y), ref, 67 * 19);
    cr_expect(e < 1e-5, "linear forward rel err %.3g", e);
    free(ref);
    fx_free(&f);
    lt_tensor *ll[3] = {l.x, l.A, l.B}, *fr[1] = {l.W};
    tl_gc_result res = tl_gradcheck(lin_build, &l, ll, 3, fr, 1, 88, FD_H, GC_SAMPLES);
    check_grads(&res, ll, (const char *[]){"x", "A", "B"}, 3);
    tl_free(l.x), tl_free(l.W), tl_free(l.A), tl_free(l.B);
}

Test(ops, parallel_paths_attention) {
    tl_rng r = {89};
    att_ctx a = att_make(&r, 2, 70, 75, 4, 2, 16, true); /* 2 query blocks, offset 5, docs */
    check_attention(&a, 90, GC_SAMPLES, "parallel paths");
    att_free(&a);
}

Test(ops, parallel_paths_cross_entropy) {
    /* a real vocabulary: rows of 49152 logits; grads vs softmax − onehot in float64 */
    tl_rng r = {91};
    const int64_t N = 5, V = 49152;
    ce_ctx e = {leaf_f32(&r, 2, (int64_t[]){N, V}, true), tl_leaf(LT_I32, 1, (int64_t[]){N}, false),
                NULL, 0};
    for (int64_t i = 0; i < N * V; i++) lt_f32(e.logits)[i] *= 8;
    const int32_t tv[5] = {0, 49151, -100, 12345, 7};
    memcpy(e.tgt->data, tv, sizeof tv);
    fixture f;
    fx_init(&f);
    lt_tensor *loss = ce_build(&f.g, &e);
    double ref = ref_ce(&e);
    /* float32 sums of 49152 exponentials: relative error ~1e-6 of the log-sum */
    cr_expect(fabs(lt_f32(loss)[0] - ref) <= 1e-5 * fabs(ref), "CE %.8g vs %.8g", lt_f32(loss)[0], ref);
    lt_backward(&f.g, loss, 2.0f);
    double *dref = calloc((size_t)(N * V), sizeof(double));
    for (int64_t i = 0; i < N; i++) {
        if (tv[i] < 0) continue;
        const float *row = lt_f32(e.logits) + i * V;
        double z = 0;
        for (int64_t c = 0; c < V; c++) z += exp((double)row[c]);
        for (int64_t c = 0; c < V; c++) dref[i * V + c] = 2.0 / 4 * (exp((double)row[c]) / z - (c == tv[i]));
    }
    double ge = tl_rel_err(lt_f32(e.logits->grad), dref, N * V);
    cr_expect(ge < 1e-5, "CE grad rel err %.3g", ge);
    free(dref);
    e.logits->grad = NULL;
    fx_free(&f);
    tl_free(e.logits), tl_free(e.tgt);
}
