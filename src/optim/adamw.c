/* AdamW (arXiv 1711.05101) over one flat F32 buffer; see optim.h for the contract.
 * Invariant: p, g, m, v share one layout, so the step is a single element-wise loop with no
 * cross-element dependence (hence bitwise identical for any OpenMP thread count). */
#include "optim.h"

#include <math.h>

/* Below this many elements the OpenMP fork/join costs more than the loop. */
#define ADAMW_PARALLEL_MIN 32768

lt_adamw_hparams lt_adamw_defaults(void) {
    return (lt_adamw_hparams){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
}

lt_status lt_adamw_check(const lt_adamw_hparams *h) {
    LT_ASSERT(h);
    if (!(h->beta1 >= 0.0f && h->beta1 < 1.0f))
        return lt_error_set(LT_ERR_RECIPE, "adamw beta1 = %g: must be in [0, 1) (typical 0.9)",
                            (double)h->beta1);
    if (!(h->beta2 >= 0.0f && h->beta2 < 1.0f))
        return lt_error_set(LT_ERR_RECIPE,
                            "adamw beta2 = %g: must be in [0, 1) (typical 0.999 or 0.95)",
                            (double)h->beta2);
    if (!(h->eps > 0.0f && isfinite(h->eps)))
        return lt_error_set(LT_ERR_RECIPE, "adamw eps = %g: must be a finite number > 0 "
                            "(typical 1e-8)", (double)h->eps);
    if (!(h->weight_decay >= 0.0f && isfinite(h->weight_decay)))
        return lt_error_set(LT_ERR_RECIPE, "adamw weight_decay = %g: must be a finite number "
                            ">= 0 (typical 0 to 0.1)", (double)h->weight_decay);
    return LT_OK;
}

void lt_adamw_step(float *p, const float *g, float *m, float *v, int64_t n,
                   const lt_adamw_hparams *h, int64_t t, float lr) {
    LT_ASSERT(h && n >= 0 && t >= 1);
    if (n == 0) return;
    LT_ASSERT(p && g && m && v);

    /* Per-step scalars, in double then rounded once, written as torch.optim.AdamW (single-tensor
     * path) computes them:
     *   p *= 1 - lr*wd;  p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
     * which equals lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m/bc1, v_hat = v/bc2. */
    const double bc1 = 1.0 - pow((double)h->beta1, (double)t);
    const double bc2 = 1.0 - pow((double)h->beta2, (double)t);
    const float decay = (float)(1.0 - (double)lr * (double)h->weight_decay);
    const float step_size = (float)((double)lr / bc1);
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    const float b1 = h->beta1, b2 = h->beta2, eps = h->eps;
    const float one_m_b1 = 1.0f - b1, one_m_b2 = 1.0f - b2;

#pragma omp parallel for schedule(static) if (n >= ADAMW_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i];
        const float mi = b1 * m[i] + one_m_b1 * gi;
        const float vi = b2 * v[i] + one_m_b2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) * inv_sqrt_bc2 + eps;
        p[i] = p[i] * decay - step_size * (mi / denom);
    }
}
