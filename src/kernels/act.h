/*
 * act.h — elementwise functions that the CPU and CUDA kernels must compute identically, compiled
 * by both (core.h's LT_HD marks them __host__ __device__ under nvcc): the gated-MLP activations and
 * soft-capping, each with its derivative.
 *
 *   silu(x)      = x·σ(x)                                  (Elfwing et al., arXiv 1702.03118)
 *   gelu_tanh(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))    (Hendrycks & Gimpel, arXiv 1606.08415;
 *                  torch.nn.functional.gelu(approximate="tanh"), transformers "gelu_pytorch_tanh")
 *   softcap(x)   = c·tanh(x/c)                             (Gemma 2, modeling_gemma2.py)
 */
#ifndef LATHE_KERNELS_ACT_H
#define LATHE_KERNELS_ACT_H

#include <math.h>

#include "../core/core.h" /* LT_HD */

#define LT_GELU_K0 0.7978845608028654f /* √(2/π) */
#define LT_GELU_K1 0.044715f

/* act(x) for lt_act a (0 = SiLU, 1 = tanh-GELU). */
static inline LT_HD float lt_act_f(int a, float x) {
    if (a == 0) return x / (1.0f + expf(-x));
    const float t = tanhf(LT_GELU_K0 * (x + LT_GELU_K1 * x * x * x));
    return 0.5f * x * (1.0f + t);
}

/* d act(x) / dx. */
static inline LT_HD float lt_act_df(int a, float x) {
    if (a == 0) {
        const float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    const float t = tanhf(LT_GELU_K0 * (x + LT_GELU_K1 * x * x * x));
    return 0.5f * (1.0f + t) +
           0.5f * x * (1.0f - t * t) * LT_GELU_K0 * (1.0f + 3.0f * LT_GELU_K1 * x * x);
}

/* c·tanh(x/c). */
static inline LT_HD float lt_softcap_f(float c, float x) { return c * tanhf(x / c); }
/* d/dx of the above, from its output y: 1 − (y/c)². */
static inline LT_HD float lt_softcap_dy(float c, float y) {
    const float t = y / c;
    return 1.0f - t * t;
}

#endif
