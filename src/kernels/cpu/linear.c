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
 */
#include "../kernels.h"

#include <cblas.h>
#include <stdlib.h>

/* y[i, :] += b for every row i. y (N, out), b (out). */
static void add_bias_rows(float *y, const float *b, int N, int out_f) {
#pragma omp parallel for schedule(static) if ((int64_t)N * out_f > 32768)
    for (int i = 0; i < N; i++)
        for (int j = 0; j < out_f; j++) y[(int64_t)i * out_f + j] += b[j];
}

void lt_cpu_linear_forward(lt_graph *g, lt_node *n) {
    lt_tensor *tx = n->in[0], *tW = n->in[1], *tA = n->in[2], *tB = n->in[3];
    const float *x = lt_f32(tx);  // (N, in)
    const float *W = lt_f32(tW);  // (out, in)
    float *y = lt_f32(n->out);    // (N, out)
    const int in_f = (int)tW->shape[1], out_f = (int)tW->shape[0];
    const int N = (int)(lt_tensor_numel(tx) / in_f);

    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out_f, in_f, 1.0f, x, in_f, W, in_f,
                0.0f, y, out_f);
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
    const float *W = lt_f32(tW);           // (out, in)
    const float *dy = lt_f32(n->out->grad); // (N, out)
    const int in_f = (int)tW->shape[1], out_f = (int)tW->shape[0];
    const int N = (int)(lt_tensor_numel(tx) / in_f);

    float *dx = tx->requires_grad ? lt_f32(lt_graph_grad(g, tx)) : NULL; // (N, in)
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in_f, out_f, 1.0f, dy, out_f, W,
                    in_f, 1.0f, dx, in_f);
    if (tW->requires_grad) {
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
