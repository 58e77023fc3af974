/*
 * CPU linear with an optional LoRA adapter (Hu et al., "LoRA: Low-Rank Adaptation of Large
 * Language Models", arXiv 2106.09685):
 *
 *   y  = x Wᵀ + b + s · drop(x) Aᵀ Bᵀ,    drop(x) = m ⊙ x / (1 − p),   h = drop(x) Aᵀ
 *   dx = dy W + s · m ⊙ ((dy B) A) / (1 − p)
 *   dW = dyᵀ x            (only when W is trainable; a frozen base never gets a grad)
 *   dA = s · (dy B)ᵀ drop(x)
 *   dB = s · dyᵀ h
 *
 * Dropout is inverted dropout (Srivastava et al., JMLR 2014) on the adapter branch only, as in
 * PEFT's lora_dropout; the mask m is lt_dropout_keep(seed, j, p) over the flat index j of x.
 * The optional bias b (in[4], torch.nn.Linear's bias) is frozen base weight: it adds to every row
 * and has no gradient, and dx does not depend on it.
 * Every product is one cblas_sgemm on row-major matrices (OpenBLAS threads them itself).
 *
 * A block-quantized frozen base (W dtype NF4, Q8_0, Q4_0 or Q4_1: QLoRA, arXiv 2305.14314) takes
 * the same formulas with deq(W) in place of W and no dW; the full F32 weight is never built.
 * Tiles of whole rows of W, at most QLINEAR_TILE_BYTES of F32, are dequantized into one scratch
 * buffer and multiplied one at a time:
 *   y[:, o0:o1]  = x · deq(W[o0:o1])ᵀ           (disjoint output columns per tile)
 *   dx          += dy[:, o0:o1] · deq(W[o0:o1])  (accumulated over tiles)
 * Each output element sums over the same `in` terms as the F32 path; only the GEMM's internal
 * blocking may differ, so results match linear on deq(W) up to float summation order.
 */
#include "../kernels.h"
#include "../../quant/quant.h"

#include <cblas.h>
#include <stdlib.h>

/* Scratch per quantized-base tile: 2 MiB of F32 rows (SmolLM2-135M, in = 576: 910 rows; in =
 * 8192: 64 rows), small enough to stay in L2/L3 between dequantization and the GEMM and large
 * enough that each tile's sgemm still runs at full speed. */
#define QLINEAR_TILE_BYTES ((size_t)2 << 20)

static int qlinear_tile_rows(int in_f, int out_f) {
    size_t rows = QLINEAR_TILE_BYTES / ((size_t)in_f * sizeof(float));
    if (rows < 1) rows = 1;
    return rows < (size_t)out_f ? (int)rows : out_f;
}

/* The base product over W (out, in) of any dtype lt_dequant_rows reads, tile by tile over W's
 * rows (one tile, W itself, when it is F32):
 *   forward:  y (N, out)  = x (N, in) · Wᵀ      (a = x, c = y)
 *   backward: dx (N, in) += dy (N, out) · W     (a = dy, c = dx) */
static void base_gemm(const lt_tensor *tW, int N, int in_f, int out_f, bool backward,
                      const float *a, float *c) {
    const bool f32 = tW->dtype == LT_F32;
    const int tile = f32 ? out_f : qlinear_tile_rows(in_f, out_f);
    float *w = f32 ? lt_f32(tW) : lt_xmalloc((size_t)tile * in_f * sizeof(float)); // (tile, in)
    for (int o0 = 0; o0 < out_f; o0 += tile) {
        const int rows = out_f - o0 < tile ? out_f - o0 : tile;
        if (!f32) lt_dequant_rows(tW, o0, rows, w);
        if (backward)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in_f, rows, 1.0f, a + o0,
                        out_f, w, in_f, 1.0f, c, in_f);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, rows, in_f, 1.0f, a, in_f, w,
                        in_f, 0.0f, c + o0, out_f);
    }
    if (!f32) free(w);
}

/* y[i, :] += b for every row i. y (N, out), b (out). */
static void add_bias_rows(float *y, const float *b, int N, int out_f) {
#pragma omp parallel for schedule(static) if ((int64_t)N * out_f > 32768)
    for (int i = 0; i < N; i++)
        for (int j = 0; j < out_f; j++) y[(int64_t)i * out_f + j] += b[j];
}

void lt_cpu_linear_forward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0], *tW = n->in[1], *tA = n->in[2], *tB = n->in[3];
    const float *x = lt_f32(tx);  // (N, in)
    float *y = lt_f32(n->out);    // (N, out); W (out, in) F32 or block-quantized
    const int in_f = (int)tW->shape[1], out_f = (int)tW->shape[0];
    const int N = (int)(lt_tensor_numel(tx) / in_f);

    base_gemm(tW, N, in_f, out_f, false, x, y);
    if (n->n_in > 4 && n->in[4]) add_bias_rows(y, lt_f32(n->in[4]), N, out_f);
    if (!tA) return;

    const float *A = lt_f32(tA); // (r, in)
    const float *B = lt_f32(tB); // (out, r)
    const int r = (int)tA->shape[0];
    const float s = n->p.lora_scale, p = n->p.dropout;
    const uint64_t seed = n->p.seed;

    const float *xd = x; // (N, in): the adapter input drop(x)
    if (p > 0.0f) {
        lt_tensor *txd = lt_graph_tensor(g, LT_F32, 2, (int64_t[]){N, in_f});
        float *d = lt_f32(txd);
        const float inv_keep = 1.0f / (1.0f - p);
        const int64_t M = (int64_t)N * in_f;
#pragma omp parallel for schedule(static) if (M > 32768)
        for (int64_t j = 0; j < M; j++)
            d[j] = lt_dropout_keep(seed, (uint64_t)j, p) ? x[j] * inv_keep : 0.0f;
        xd = d;
        n->saved[0] = txd;
    }
    lt_tensor *th = lt_graph_tensor(g, LT_F32, 2, (int64_t[]){N, r});
    float *h = lt_f32(th); // (N, r)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r, in_f, 1.0f, xd, in_f, A, in_f, 0.0f,
                h, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out_f, r, s, h, r, B, r, 1.0f, y,
                out_f);
    n->saved[1] = th;
}

void lt_cpu_linear_backward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0], *tW = n->in[1], *tA = n->in[2], *tB = n->in[3];
    const float *x = lt_f32(tx);           // (N, in)
    const float *dy = lt_f32(n->out->grad); // (N, out); W (out, in) F32 or block-quantized
    const int in_f = (int)tW->shape[1], out_f = (int)tW->shape[0];
    const int N = (int)(lt_tensor_numel(tx) / in_f);

    float *dx = tx->requires_grad ? lt_f32(lt_graph_grad(g, tx)) : NULL; // (N, in)
    if (dx) base_gemm(tW, N, in_f, out_f, true, dy, dx);
    if (tW->requires_grad) {
        LT_ASSERT(tW->dtype == LT_F32); /* a quantized base is frozen (lt_linear checks it) */
        float *dW = lt_f32(lt_graph_grad(g, tW)); // (out, in)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_f, in_f, N, 1.0f, dy, out_f, x,
                    in_f, 1.0f, dW, in_f);
    }
    if (!tA) return;

    const float *A = lt_f32(tA); // (r, in)
    const float *B = lt_f32(tB); // (out, r)
    const int r = (int)tA->shape[0];
    const float s = n->p.lora_scale, p = n->p.dropout;
    const uint64_t seed = n->p.seed;
    const float *xd = p > 0.0f ? lt_f32(n->saved[0]) : x; // (N, in)
    const float *h = lt_f32(n->saved[1]);                  // (N, r)
    LT_ASSERT(h != NULL && xd != NULL);

    bool need_dyB = dx || tA->requires_grad;
    float *dyB = need_dyB ? lt_xmalloc((size_t)N * r * sizeof(float)) : NULL; // (N, r) = dy B
    if (dyB)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, r, out_f, 1.0f, dy, out_f, B, r,
                    0.0f, dyB, r);
    if (dx) {
        if (p == 0.0f) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in_f, r, s, dyB, r, A, in_f,
                        1.0f, dx, in_f);
        } else {
            const int64_t M = (int64_t)N * in_f;
            float *t = lt_xmalloc((size_t)M * sizeof(float)); // (N, in) = (dy B) A
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in_f, r, 1.0f, dyB, r, A,
                        in_f, 0.0f, t, in_f);
            const float c = s / (1.0f - p);
#pragma omp parallel for schedule(static) if (M > 32768)
            for (int64_t j = 0; j < M; j++)
                if (lt_dropout_keep(seed, (uint64_t)j, p)) dx[j] += c * t[j];
            free(t);
        }
    }
    if (tA->requires_grad) {
        float *dA = lt_f32(lt_graph_grad(g, tA)); // (r, in)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, in_f, N, s, dyB, r, xd, in_f, 1.0f,
                    dA, in_f);
    }
    if (tB->requires_grad) {
        float *dB = lt_f32(lt_graph_grad(g, tB)); // (out, r)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_f, r, N, s, dy, out_f, h, r, 1.0f,
                    dB, r);
    }
    free(dyB);
}
