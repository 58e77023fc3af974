/*
 * optim — AdamW over one flat F32 parameter buffer, global-norm gradient clipping, and
 * learning-rate schedules (linear warmup, then cosine / linear decay to a floor, or constant).
 *
 * Layout invariant (DESIGN.md §3): every trainable adapter parameter lives in one flat F32 buffer
 * `p` of n floats; the gradients `g` and the two AdamW moments `m`, `v` are separate flat buffers
 * with exactly the same layout, so one optimizer step is one loop over n elements. The caller
 * owns all four buffers; nothing here allocates. `m` and `v` start zeroed (lt_alloc_big does
 * that) and are saved with each checkpoint so a resumed run continues bit-exactly.
 *
 * Determinism: every function here gives the same bits for the same inputs whatever the number
 * of OpenMP threads (each element of the AdamW loop is independent; the norm reduction uses a
 * fixed partition summed in a fixed order).
 */
#ifndef LATHE_OPTIM_H
#define LATHE_OPTIM_H

#include "../core/core.h"

/* ---- AdamW -------------------------------------------------------------------------------- */

/* AdamW hyper-parameters other than the learning rate (which comes from the schedule each step).
 * Defaults (lt_adamw_defaults) are PyTorch's torch.optim.AdamW ones except weight_decay, which
 * is 0.0 as in Hugging Face TrainingArguments (recipes usually set it). */
typedef struct {
    float beta1;        /* first-moment decay, in [0, 1); default 0.9 */
    float beta2;        /* second-moment decay, in [0, 1); default 0.999 */
    float eps;          /* added to sqrt(v_hat), > 0; default 1e-8 */
    float weight_decay; /* decoupled decay coefficient lambda, >= 0; default 0.0 */
} lt_adamw_hparams;

lt_adamw_hparams lt_adamw_defaults(void);

/* Validate user-supplied hyper-parameters: LT_ERR_RECIPE with a message naming the field, its
 * value and the allowed range, or LT_OK. */
lt_status lt_adamw_check(const lt_adamw_hparams *h);

/* One AdamW step, in place, over n elements (Loshchilov & Hutter, "Decoupled Weight Decay
 * Regularization", arXiv 1711.05101, Algorithm 2; bias correction from Kingma & Ba, "Adam",
 * arXiv 1412.6980, Algorithm 1). For each i, in this order (as torch.optim.AdamW, which scales
 * the decay by lr, i.e. the paper's eta_t * lambda with eta_t = lr):
 *
 *     p[i] -= lr * weight_decay * p[i]                     (decoupled decay, uses p before step)
 *     m[i]  = beta1 * m[i] + (1 - beta1) * g[i]
 *     v[i]  = beta2 * v[i] + (1 - beta2) * g[i]^2
 *     p[i] -= lr * (m[i] / (1 - beta1^t)) / (sqrt(v[i] / (1 - beta2^t)) + eps)
 *
 * p, m, v: (n,) F32, updated in place. g: (n,) F32, read only (already clipped / averaged by the
 * caller). t: the 1-based step number (t = 1 on the first update, same t in m and v), > 0.
 * lr: learning rate for this step, >= 0. Bias corrections are computed once per call in double.
 * n == 0 is a no-op. Invalid t or n < 0 is a bug (LT_ASSERT). Non-finite g propagates into
 * p, m, v: check the gradient norm first (lt_grad_global_norm) and skip the step.
 * Parallel over elements with OpenMP; bitwise identical for any thread count. */
void lt_adamw_step(float *p, const float *g, float *m, float *v, int64_t n,
                   const lt_adamw_hparams *h, int64_t t, float lr);

/* ---- gradient clipping -------------------------------------------------------------------- */

/* L2 norm of g over n elements: sqrt(sum g[i]^2), accumulated in double (so 1e8 elements of
 * similar size lose no precision), returned as float. A NaN or Inf anywhere in g gives a
 * non-finite result, returned as is so the caller can detect it (isfinite) and skip the step.
 * n == 0 gives 0. Deterministic: n is cut into a fixed number of contiguous chunks summed in
 * parallel and then added in chunk order, independent of the thread count. */
float lt_grad_global_norm(const float *g, int64_t n);

/* Scale g in place so its global norm is at most max_norm, as torch.nn.utils.clip_grad_norm_:
 * when norm > max_norm, g *= max_norm / (norm + 1e-6). `norm` is the value that
 * lt_grad_global_norm returned for this g (passed in so the caller can log it). Does nothing
 * when max_norm <= 0 (clipping disabled), when norm <= max_norm, or when norm is not finite
 * (the caller must check and skip the step; unlike torch we do not multiply the grads by NaN).
 * Returns the scale applied (1.0f when nothing was done). */
float lt_grad_clip(float *g, int64_t n, float max_norm, float norm);

/* ---- per device ---------------------------------------------------------------------------- */

/* The three functions above, and y += x, for buffers on one device (backend.c): the CPU row is them, the
 * CUDA row optim.cu's kernels with the same contracts over device pointers (the norm returns a
 * host float after synchronizing). */
typedef struct {
    void (*adamw_step)(float *p, const float *g, float *m, float *v, int64_t n,
                       const lt_adamw_hparams *h, int64_t t, float lr);
    float (*grad_global_norm)(const float *g, int64_t n);
    float (*grad_clip)(float *g, int64_t n, float max_norm, float norm);
    void (*vec_add)(float *y, const float *x, int64_t n); /* y += x, one rounding per element */
} lt_optim_backend;
/* The row of `dev`; asserts when the build has no such device (lt_device_init refuses first). */
const lt_optim_backend *lt_optim_on(lt_device dev);

/* ---- learning-rate schedules -------------------------------------------------------------- */

typedef enum {
    LT_SCHEDULE_COSINE = 0, /* warmup, then half a cosine from lr down to min_lr */
    LT_SCHEDULE_LINEAR,     /* warmup, then a straight line from lr down to min_lr */
    LT_SCHEDULE_CONSTANT,   /* warmup, then lr */
    LT_SCHEDULE_COUNT
} lt_schedule_type;

typedef struct {
    lt_schedule_type type;
    float lr;             /* peak learning rate, > 0 */
    float min_lr;         /* floor reached at the end of decay, in [0, lr]; unused by constant */
    int64_t warmup_steps; /* >= 0; 0 = no warmup */
} lt_schedule;

/* "cosine", "linear", "constant"; NULL for an out-of-range value. */
const char *lt_schedule_type_name(lt_schedule_type t);
/* Parse a name as above (exact, lower case). LT_ERR_RECIPE listing the accepted names if not. */
lt_status lt_schedule_type_parse(const char *name, lt_schedule_type *out);
/* Validate user-supplied values: LT_ERR_RECIPE naming the field, value and allowed range. */
lt_status lt_schedule_check(const lt_schedule *s);

/* Learning rate for optimizer step `step`, counted from 0 (the first update uses step 0), in a
 * run of total_steps updates. Conventions:
 *
 *   warmup (step < W, W = warmup_steps > 0):  lr * (step + 1) / W
 *       so the first update already moves (lr / W) and step W - 1 reaches the full lr.
 *       (HF's get_*_schedule_with_warmup uses step / W, whose first update is a no-op.)
 *   after warmup, with progress q = (step - W) / (total_steps - W) clamped to [0, 1]:
 *       cosine:   min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi * q))
 *                 (HF get_cosine_schedule_with_warmup with num_cycles = 0.5, plus a floor)
 *       linear:   min_lr + (lr - min_lr) * (1 - q)
 *                 (HF get_linear_schedule_with_warmup, plus a floor)
 *       constant: lr
 *   so step W gives lr and step total_steps (one past the last update) gives exactly min_lr,
 *   matching HF, where the schedule reaches its end value after the final update.
 *   If total_steps <= W the decay is degenerate and every step >= W gives min_lr
 *   (cosine/linear) or lr (constant).
 *
 * step < 0 is treated as 0. Computed in double, returned as float. */
float lt_schedule_lr(const lt_schedule *s, int64_t step, int64_t total_steps);

#endif
