/*
 * CPU causal grouped-query attention with packed-document masking (GQA: Ainslie et al.,
 * arXiv 2305.13245; scaled dot-product attention: Vaswani et al., arXiv 1706.03762).
 *
 * For batch b, query head h (kv head h / (Hq/Hkv)), query row i at absolute position
 * t = Tk − Tq + i, key j is visible iff j ≤ t, t − j < window (the node's sliding window;
 * 0 = unbounded) and (no doc ids, or doc[b][j] == doc[b][t]):
 *   S = cap(scale · Q Kᵀ) (scale = p.scale, 1/sqrt(Dh) unless the model says otherwise; cap =
 *   c·tanh(·/c) when p.softcap = c > 0, else the identity),  P = softmax over visible keys
 *   (masked entries are exactly 0),  O = P V,  lse_i = log Σ_j exp(S_ij) over visible j.
 * Backward (the FlashAttention recurrences, Dao et al., arXiv 2205.14135, Alg. 2), with P
 * recomputed from Q, K and lse:
 *   dV = Pᵀ dO,  dP = dO Vᵀ,  D_i = Σ_d dO_id O_id,  dS = P ⊙ (dP − D),
 *   dQ = scale · dS' K,  dK = scale · dS'ᵀ Q   with dS' = dS ⊙ cap'(S) (1 − (S/c)² with a cap)
 *   (dK, dV summed over the query heads of a group).
 *
 * Layout: q/out are (B, Tq, Hq, Dh) and k/v (B, Tk, Hkv, Dh) row-major, so the rows of one head
 * form a strided matrix with leading dimension H·Dh, which cblas_sgemm reads directly (no
 * gathering copies). Query rows are processed in blocks of ATT_BQ; a block only multiplies
 * against keys [j_first, t_last] — the work above the causal diagonal beyond the block, and with a
 * sliding window the keys before the block's first query's window, is skipped.
 *
 * Threading: the per-block GEMMs are small (ATT_BQ × Tk × Dh), which OpenBLAS runs poorly in
 * parallel, so independent (batch, head, block) tasks run across OpenMP threads instead and
 * OpenBLAS is held at one thread for the duration (no nested oversubscription; restored after).
 */
#include "../act.h"
#include "../kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ATT_BQ 64
/* Below this many multiply-adds (B·Hq·Tq·Tk·Dh) one thread is faster than starting a team. */
#define ATT_PARALLEL_MIN_WORK (1 << 18)

typedef struct {
    const float *q;   // (B, Tq, Hq, Dh)
    const float *k;   // (B, Tk, Hkv, Dh)
    const float *v;   // (B, Tk, Hkv, Dh)
    const int32_t *doc; // (B, Tk) or NULL
    int64_t B, Tq, Tk, Hq, Hkv, Dh;
    int64_t window;   /* sliding window (> 0), INT64_MAX when the node has none */
    float scale;      /* score scale */
    float softcap;    /* 0 = none */
} att_dims;

static att_dims att_get(const lt_node *n) {
    att_dims a;
    a.q = lt_f32(n->in[0]);
    a.k = lt_f32(n->in[1]);
    a.v = lt_f32(n->in[2]);
    a.doc = n->in[3] ? (const int32_t *)n->in[3]->data : NULL;
    a.B = n->in[0]->shape[0];
    a.Tq = n->in[0]->shape[1];
    a.Hq = n->in[0]->shape[2];
    a.Dh = n->in[0]->shape[3];
    a.Tk = n->in[1]->shape[1];
    a.Hkv = n->in[1]->shape[2];
    a.window = n->p.window > 0 ? n->p.window : INT64_MAX;
    a.scale = n->p.scale;
    a.softcap = n->p.softcap;
    LT_ASSERT(a.scale > 0.0f);
    return a;
}

/* The first key any query of the block starting at absolute position t0 can see. */
static int64_t att_first_key(const att_dims *a, int64_t t0) {
    return t0 - a->window + 1 > 0 ? t0 - a->window + 1 : 0;
}

/* The OpenBLAS thread count, pinned to 1 while OpenMP tasks call sgemm concurrently. */
static int blas_single_begin(bool parallel) {
    int nt = openblas_get_num_threads();
    if (parallel && nt != 1) openblas_set_num_threads(1);
    return nt;
}
static void blas_single_end(bool parallel, int nt) {
    if (parallel && nt != 1) openblas_set_num_threads(nt);
}

static bool att_parallel(const att_dims *a) {
    return a->B * a->Hq * a->Tq * a->Tk * a->Dh >= ATT_PARALLEL_MIN_WORK;
}

/* S (bq, jmax) = scale · Q[i0 : i0+bq] K[j0 : j0+jmax]ᵀ for head h of batch b. */
static void att_scores(const att_dims *a, int64_t b, int64_t h, int64_t i0, int bq, int64_t j0,
                       int jmax, float *S) {
    const int64_t kvh = h / (a->Hq / a->Hkv);
    const float *Q = a->q + ((b * a->Tq + i0) * a->Hq + h) * a->Dh;
    const float *K = a->k + ((b * a->Tk + j0) * a->Hkv + kvh) * a->Dh;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bq, jmax, (int)a->Dh, a->scale, Q,
                (int)(a->Hq * a->Dh), K, (int)(a->Hkv * a->Dh), 0.0f, S, jmax);
    if (a->softcap > 0.0f)
        for (int64_t e = 0; e < (int64_t)bq * jmax; e++) S[e] = lt_softcap_f(a->softcap, S[e]);
}

/* Is key j visible from the query at absolute position t (batch b)? */
static inline bool att_visible(const att_dims *a, int64_t b, int64_t t, int64_t j) {
    return j <= t && t - j < a->window &&
           (!a->doc || a->doc[b * a->Tk + j] == a->doc[b * a->Tk + t]);
}

void lt_cpu_attention_forward(lt_graph *g, lt_node *n) {
    const att_dims a = att_get(n);
    float *out = lt_f32(n->out); // (B, Tq, Hq, Dh)
    float *lse = NULL;           // (B, Hq, Tq)
    if (n->out->requires_grad) {
        n->saved[0] = lt_graph_tensor(g, LT_F32, 3, (int64_t[]){a.B, a.Hq, a.Tq});
        lse = lt_f32(n->saved[0]);
    }
    const int64_t off = a.Tk - a.Tq, nblk = (a.Tq + ATT_BQ - 1) / ATT_BQ;
    const int64_t ntask = a.B * a.Hq * nblk;
    const bool par = att_parallel(&a);
    const int nt = blas_single_begin(par);
#pragma omp parallel if (par)
    {
        float *S = lt_xmalloc((size_t)ATT_BQ * a.Tk * sizeof(float)); // (ATT_BQ, Tk) scores/probs
        /* later blocks are larger: hand them out first */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < ntask; task++) {
            const int64_t blk = nblk - 1 - task % nblk, bh = task / nblk;
            const int64_t b = bh / a.Hq, h = bh % a.Hq, kvh = h / (a.Hq / a.Hkv);
            const int64_t i0 = blk * ATT_BQ;
            const int bq = (int)(a.Tq - i0 < ATT_BQ ? a.Tq - i0 : ATT_BQ);
            /* keys [j0, j0 + jmax): from the first query's window start to the last query */
            const int64_t j0 = att_first_key(&a, off + i0);
            const int jmax = (int)(off + i0 + bq - j0);
            att_scores(&a, b, h, i0, bq, j0, jmax, S);
            for (int r = 0; r < bq; r++) {
                const int64_t t = off + i0 + r;
                float *Sr = S + (int64_t)r * jmax;
                float m = -INFINITY;
                for (int64_t j = 0; j < jmax; j++)
                    if (att_visible(&a, b, t, j0 + j) && Sr[j] > m) m = Sr[j];
                float sum = 0.0f;
                for (int64_t j = 0; j < jmax; j++) {
                    float p = att_visible(&a, b, t, j0 + j) ? expf(Sr[j] - m) : 0.0f;
                    Sr[j] = p;
                    sum += p;
                }
                const float inv = 1.0f / sum;
                for (int64_t j = 0; j < jmax; j++) Sr[j] *= inv;
                if (lse) lse[(b * a.Hq + h) * a.Tq + i0 + r] = m + logf(sum);
            }
            const float *V = a.v + ((b * a.Tk + j0) * a.Hkv + kvh) * a.Dh;
            float *O = out + ((b * a.Tq + i0) * a.Hq + h) * a.Dh;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bq, (int)a.Dh, jmax, 1.0f, S,
                        jmax, V, (int)(a.Hkv * a.Dh), 0.0f, O, (int)(a.Hq * a.Dh));
        }
        free(S);
    }
    blas_single_end(par, nt);
}

void lt_cpu_attention_backward(lt_graph *g, lt_node *n) {
    const att_dims a = att_get(n);
    lt_tensor *tq = n->in[0], *tk = n->in[1], *tv = n->in[2];
    const float *O = lt_f32(n->out);         // (B, Tq, Hq, Dh)
    const float *dO = lt_f32(n->out->grad);  // (B, Tq, Hq, Dh)
    const float *lse = lt_f32(n->saved[0]);  // (B, Hq, Tq)
    LT_ASSERT(lse != NULL);
    float *dq = tq->requires_grad ? lt_f32(lt_graph_grad(g, tq)) : NULL; // (B, Tq, Hq, Dh)
    const bool want_dk = tk->requires_grad, want_dv = tv->requires_grad;
    if (!dq && !want_dk && !want_dv) return;

    const int64_t off = a.Tk - a.Tq, nblk = (a.Tq + ATT_BQ - 1) / ATT_BQ;
    const int64_t BH = a.B * a.Hq, TD = a.Tk * a.Dh;
    /* per-(b, query head) partial dK / dV, summed over each group's heads afterwards so the
     * (b, h) tasks never write the same memory */
    float *dk_part = want_dk ? lt_xcalloc((size_t)(BH * TD), sizeof(float)) : NULL; // (B, Hq, Tk, Dh)
    float *dv_part = want_dv ? lt_xcalloc((size_t)(BH * TD), sizeof(float)) : NULL; // (B, Hq, Tk, Dh)
    const int ldq = (int)(a.Hq * a.Dh), ldk = (int)(a.Hkv * a.Dh), Dh = (int)a.Dh;

    const bool par = att_parallel(&a);
    const int nt = blas_single_begin(par);
#pragma omp parallel if (par)
    {
        float *P = lt_xmalloc((size_t)ATT_BQ * a.Tk * sizeof(float));  // (ATT_BQ, Tk)
        float *dP = lt_xmalloc((size_t)ATT_BQ * a.Tk * sizeof(float)); // (ATT_BQ, Tk) → dS
        /* with a cap: cap'(S) (ATT_BQ, Tk), kept from the scores before P overwrites them */
        float *dcap = a.softcap > 0.0f ? lt_xmalloc((size_t)ATT_BQ * a.Tk * sizeof(float)) : NULL;
        float Drow[ATT_BQ];
#pragma omp for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < BH; bh++) {
            const int64_t b = bh / a.Hq, h = bh % a.Hq, kvh = h / (a.Hq / a.Hkv);
            for (int64_t blk = 0; blk < nblk; blk++) {
                const int64_t i0 = blk * ATT_BQ;
                const int bq = (int)(a.Tq - i0 < ATT_BQ ? a.Tq - i0 : ATT_BQ);
                const int64_t j0 = att_first_key(&a, off + i0); /* keys [j0, j0 + jmax) */
                const int jmax = (int)(off + i0 + bq - j0);
                const float *K = a.k + ((b * a.Tk + j0) * a.Hkv + kvh) * a.Dh;
                const float *V = a.v + ((b * a.Tk + j0) * a.Hkv + kvh) * a.Dh;
                const int64_t row0 = ((b * a.Tq + i0) * a.Hq + h) * a.Dh;
                const float *Qb = a.q + row0, *dOb = dO + row0, *Ob = O + row0;
                att_scores(&a, b, h, i0, bq, j0, jmax, P);
                for (int r = 0; r < bq; r++) {
                    const int64_t t = off + i0 + r;
                    const float l = lse[(b * a.Hq + h) * a.Tq + i0 + r];
                    float *Pr = P + (int64_t)r * jmax;
                    if (dcap)
                        for (int64_t j = 0; j < jmax; j++)
                            dcap[(int64_t)r * jmax + j] = lt_softcap_dy(a.softcap, Pr[j]);
                    for (int64_t j = 0; j < jmax; j++)
                        Pr[j] = att_visible(&a, b, t, j0 + j) ? expf(Pr[j] - l) : 0.0f;
                    float d = 0.0f;
                    for (int c = 0; c < Dh; c++) d += dOb[(int64_t)r * ldq + c] * Ob[(int64_t)r * ldq + c];
                    Drow[r] = d;
                }
                if (dv_part) /* dV[j0 : j0+jmax] += Pᵀ dO */
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, jmax, Dh, bq, 1.0f, P,
                                jmax, dOb, ldq, 1.0f, dv_part + bh * TD + j0 * Dh, Dh);
                if (!dq && !dk_part) continue;
                /* dP = dO V[j0 : j0+jmax]ᵀ, then dS = P ⊙ (dP − D) in place */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bq, jmax, Dh, 1.0f, dOb, ldq,
                            V, ldk, 0.0f, dP, jmax);
                for (int r = 0; r < bq; r++) {
                    float *dSr = dP + (int64_t)r * jmax;
                    const float *Pr = P + (int64_t)r * jmax;
                    for (int64_t j = 0; j < jmax; j++) dSr[j] = Pr[j] * (dSr[j] - Drow[r]);
                    if (dcap)
                        for (int64_t j = 0; j < jmax; j++) dSr[j] *= dcap[(int64_t)r * jmax + j];
                }
                if (dq) /* dQ += scale · dS K */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bq, Dh, jmax, a.scale,
                                dP, jmax, K, ldk, 1.0f, dq + row0, ldq);
                if (dk_part) /* dK[j0 : j0+jmax] += scale · dSᵀ Q */
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, jmax, Dh, bq, a.scale,
                                dP, jmax, Qb, ldq, 1.0f, dk_part + bh * TD + j0 * Dh, Dh);
            }
        }
        free(P);
        free(dP);
        free(dcap);
    }
    blas_single_end(par, nt);

    /* reduce the per-head partials into the (B, Tk, Hkv, Dh) grads */
    const int64_t group = a.Hq / a.Hkv;
    for (int w = 0; w < 2; w++) {
        float *part = w ? dv_part : dk_part;
        if (!part) continue;
        float *dst = lt_f32(lt_graph_grad(g, w ? tv : tk)); // (B, Tk, Hkv, Dh)
#pragma omp parallel for collapse(2) schedule(static) if (par)
        for (int64_t b = 0; b < a.B; b++)
            for (int64_t j = 0; j < a.Tk; j++)
                for (int64_t kvh = 0; kvh < a.Hkv; kvh++) {
                    float *d = dst + ((b * a.Tk + j) * a.Hkv + kvh) * a.Dh;
                    for (int64_t hh = 0; hh < group; hh++) {
                        const float *s = part + ((b * a.Hq + kvh * group + hh) * a.Tk + j) * a.Dh;
                        for (int64_t c = 0; c < a.Dh; c++) d[c] += s[c];
                    }
                }
        free(part);
    }
}
