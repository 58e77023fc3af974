/* Unit tests for src/optim: AdamW against a double-precision reference written out here,
 * decoupled weight decay, bias correction at t = 1, global-norm clipping, and the schedules. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim/optim.h"

/* AdamW in float vs the double reference over 3 steps: the float path rounds each of ~10
 * operations per step at ~6e-8 relative, so 1e-6 relative (plus 1e-9 absolute for values
 * near 0) is a comfortable bound that still catches any formula error (those are >= 1e-3). */
#define ADAMW_RTOL 1e-6
#define ADAMW_ATOL 1e-9
/* Schedule values are computed in double and rounded once to float. */
#define LR_RTOL 1e-6

static void close_rel(double got, double want, double rtol, double atol, const char *what, int i) {
    cr_assert(fabs(got - want) <= atol + rtol * fabs(want), "%s[%d]: got %.9g want %.9g", what, i,
              got, want);
}

/* The reference, element by element in double, straight from arXiv 1711.05101 Algorithm 2
 * (with eta_t * lambda = lr * wd, as torch) and Adam's bias correction (arXiv 1412.6980). */
static void ref_adamw(double *p, const double *g, double *m, double *v, int n, double lr,
                      double b1, double b2, double eps, double wd, int t) {
    for (int i = 0; i < n; i++) {
        p[i] -= lr * wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        double mh = m[i] / (1 - pow(b1, t));
        double vh = v[i] / (1 - pow(b2, t));
        p[i] -= lr * mh / (sqrt(vh) + eps);
    }
}

Test(optim, adamw_matches_reference_three_steps) {
    enum { N = 7 };
    const float p0[N] = {0.5f, -1.25f, 2.0f, 0.0f, 1e-3f, -0.75f, 3.0f};
    /* a different gradient each step, including a zero and sign changes */
    const float gs[3][N] = {
        {0.1f, -0.2f, 0.3f, 0.0f, 5.0f, -1e-4f, 0.02f},
        {-0.05f, -0.1f, 0.6f, 0.2f, -5.0f, 2e-4f, 0.0f},
        {0.3f, 0.0f, -0.1f, -0.2f, 1.0f, -3e-4f, 0.5f},
    };
    lt_adamw_hparams h = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    const float lrs[3] = {1e-2f, 5e-3f, 2e-2f};

    float p[N], m[N] = {0}, v[N] = {0};
    double rp[N], rm[N] = {0}, rv[N] = {0}, rg[N];
    memcpy(p, p0, sizeof p);
    for (int i = 0; i < N; i++) rp[i] = p0[i];
    for (int t = 1; t <= 3; t++) {
        lt_adamw_step(p, gs[t - 1], m, v, N, &h, t, lrs[t - 1]);
        for (int i = 0; i < N; i++) rg[i] = gs[t - 1][i];
        ref_adamw(rp, rg, rm, rv, N, lrs[t - 1], h.beta1, h.beta2, h.eps, h.weight_decay, t);
        for (int i = 0; i < N; i++) {
            close_rel(p[i], rp[i], ADAMW_RTOL, ADAMW_ATOL, "p", i);
            close_rel(m[i], rm[i], ADAMW_RTOL, ADAMW_ATOL, "m", i);
            close_rel(v[i], rv[i], ADAMW_RTOL, ADAMW_ATOL, "v", i);
        }
    }
    /* and it moved: element 2 has a consistently large gradient */
    cr_assert(fabs(p[2] - p0[2]) > 1e-2);
}

Test(optim, adamw_weight_decay_is_decoupled) {
    /* zero gradient: m = v = 0, the Adam term is exactly 0, only the decay acts:
     * p_t = p_0 * (1 - lr*wd)^t. L2-in-the-gradient Adam would not move p at all. */
    enum { N = 4 };
    float p[N] = {1.0f, -2.0f, 0.5f, 0.0f}, g[N] = {0}, m[N] = {0}, v[N] = {0};
    const float p0[N] = {1.0f, -2.0f, 0.5f, 0.0f};
    lt_adamw_hparams h = lt_adamw_defaults();
    h.weight_decay = 0.1f;
    const float lr = 1e-2f;
    for (int t = 1; t <= 5; t++) lt_adamw_step(p, g, m, v, N, &h, t, lr);
    for (int i = 0; i < N; i++) {
        double want = p0[i] * pow(1.0 - 1e-3, 5);
        close_rel(p[i], want, 1e-6, 0, "p", i);
        cr_assert_eq(m[i], 0.0f);
        cr_assert_eq(v[i], 0.0f);
    }
    cr_assert(fabsf(p[0]) < 1.0f); /* it shrank */

    /* and with wd = 0 and zero grad nothing moves at all */
    float q[N] = {1.0f, -2.0f, 0.5f, 0.0f};
    h.weight_decay = 0.0f;
    lt_adamw_step(q, g, m, v, N, &h, 1, lr);
    for (int i = 0; i < N; i++) cr_assert_eq(q[i], p0[i]);
}

Test(optim, adamw_bias_correction_first_step_is_lr_sign_g) {
    /* At t = 1: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps) ~ lr * sign(g)
     * whatever the magnitude of g (this is what bias correction buys). */
    enum { N = 6 };
    const float g[N] = {1e-3f, -1e-3f, 10.0f, -250.0f, 0.37f, -0.01f};
    float p[N] = {0}, m[N] = {0}, v[N] = {0};
    lt_adamw_hparams h = lt_adamw_defaults();
    const float lr = 1e-3f;
    lt_adamw_step(p, g, m, v, N, &h, 1, lr);
    for (int i = 0; i < N; i++) {
        double want = -lr * (g[i] > 0 ? 1.0 : -1.0);
        /* eps / |g| <= 1e-8 / 1e-3 = 1e-5 relative, plus float rounding */
        close_rel(p[i], want, 2e-5, 0, "p", i);
    }
}

Test(optim, adamw_large_buffer_parallel_matches_serial_math) {
    /* big enough to take the OpenMP path; every element must match a scalar recomputation */
    const int64_t n = 100003;
    float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
    float *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    cr_assert(p && g && m && v);
    for (int64_t i = 0; i < n; i++) {
        p[i] = (float)((i % 97) - 48) * 0.01f;
        g[i] = (float)((i * 31 % 101) - 50) * 0.001f;
    }
    lt_adamw_hparams h = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    lt_adamw_step(p, g, m, v, n, &h, 1, 1e-3f);
    for (int64_t i = 0; i < n; i += 997) {
        double rp = (float)((i % 97) - 48) * 0.01f, rg = g[i], rm = 0, rv = 0;
        ref_adamw(&rp, &rg, &rm, &rv, 1, 1e-3, h.beta1, h.beta2, h.eps, h.weight_decay, 1);
        close_rel(p[i], rp, ADAMW_RTOL, ADAMW_ATOL, "p", (int)i);
    }
    free(p); free(g); free(m); free(v);
}

Test(optim, adamw_check_rejects_bad_hparams) {
    lt_adamw_hparams h = lt_adamw_defaults();
    cr_assert_eq(lt_adamw_check(&h), LT_OK);
    h.beta1 = 1.0f;
    cr_assert_eq(lt_adamw_check(&h), LT_ERR_RECIPE);
    cr_assert(strstr(lt_error_message(), "beta1"));
    h = lt_adamw_defaults();
    h.eps = 0.0f;
    cr_assert_eq(lt_adamw_check(&h), LT_ERR_RECIPE);
    h = lt_adamw_defaults();
    h.weight_decay = -0.1f;
    cr_assert_eq(lt_adamw_check(&h), LT_ERR_RECIPE);
    h = lt_adamw_defaults();
    h.beta2 = NAN;
    cr_assert_eq(lt_adamw_check(&h), LT_ERR_RECIPE);
}

/* ---- clipping ----------------------------------------------------------------------------- */

Test(optim, grad_norm_and_clip) {
    float g[4] = {3.0f, 4.0f, 0.0f, 0.0f};
    float norm = lt_grad_global_norm(g, 4);
    cr_assert_float_eq(norm, 5.0f, 1e-6f);
    cr_assert_eq(lt_grad_global_norm(g, 0), 0.0f);

    /* below the threshold: untouched */
    cr_assert_eq(lt_grad_clip(g, 4, 10.0f, norm), 1.0f);
    cr_assert_eq(g[0], 3.0f);
    /* disabled */
    cr_assert_eq(lt_grad_clip(g, 4, 0.0f, norm), 1.0f);
    cr_assert_eq(g[1], 4.0f);

    /* above: scaled by max_norm / (norm + 1e-6), new norm ~ max_norm */
    float s = lt_grad_clip(g, 4, 1.0f, norm);
    cr_assert_float_eq(s, 1.0 / (5.0 + 1e-6), 1e-7);
    cr_assert_float_eq(g[0], 3.0f * s, 1e-7f);
    cr_assert_float_eq(g[1], 4.0f * s, 1e-7f);
    cr_assert_float_eq(lt_grad_global_norm(g, 4), 1.0f, 1e-5f);
}

Test(optim, grad_norm_large_and_deterministic) {
    /* 1e6 elements of 1e-3: norm = sqrt(1e6 * 1e-6) = 1 exactly in double; a float accumulator
     * would drift. Same bits on a second call (fixed reduction order). */
    const int64_t n = 1000000;
    float *g = malloc(n * sizeof *g);
    cr_assert(g);
    for (int64_t i = 0; i < n; i++) g[i] = (i & 1) ? 1e-3f : -1e-3f;
    float a = lt_grad_global_norm(g, n), b = lt_grad_global_norm(g, n);
    cr_assert_float_eq(a, 1.0f, 1e-6f);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
    free(g);
}

Test(optim, grad_norm_nonfinite_is_reported_and_clip_leaves_grads) {
    float g[3] = {1.0f, NAN, 2.0f};
    float norm = lt_grad_global_norm(g, 3);
    cr_assert(!isfinite(norm));
    cr_assert_eq(lt_grad_clip(g, 3, 1.0f, norm), 1.0f);
    cr_assert_eq(g[0], 1.0f);
    cr_assert_eq(g[2], 2.0f);

    float h[2] = {INFINITY, 1.0f};
    cr_assert(!isfinite(lt_grad_global_norm(h, 2)));
}

/* ---- schedules ---------------------------------------------------------------------------- */

static void lr_eq(float got, double want) {
    cr_assert(fabs(got - want) <= LR_RTOL * fabs(want) + 1e-12, "lr: got %.9g want %.9g",
              (double)got, want);
}

Test(optim, schedule_warmup) {
    lt_schedule s = {.type = LT_SCHEDULE_COSINE, .lr = 1e-3f, .min_lr = 1e-5f, .warmup_steps = 10};
    lr_eq(lt_schedule_lr(&s, 0, 100), 1e-4);  /* first update: lr * 1/10 */
    lr_eq(lt_schedule_lr(&s, 4, 100), 5e-4);
    lr_eq(lt_schedule_lr(&s, 9, 100), 1e-3);  /* last warmup step reaches lr */
    lr_eq(lt_schedule_lr(&s, 10, 100), 1e-3); /* decay starts from lr */
    lr_eq(lt_schedule_lr(&s, -3, 100), 1e-4); /* negative treated as 0 */
}

Test(optim, schedule_cosine) {
    lt_schedule s = {.type = LT_SCHEDULE_COSINE, .lr = 1e-3f, .min_lr = 1e-5f, .warmup_steps = 10};
    const double lr = 1e-3f, mn = 1e-5f;
    /* midpoint of the decay: q = 0.5, cos = 0 => halfway between lr and min_lr */
    lr_eq(lt_schedule_lr(&s, 55, 100), mn + (lr - mn) * 0.5);
    lr_eq(lt_schedule_lr(&s, 10, 100), lr); /* q = 0 */
    /* a quarter of the way: 0.5 * (1 + cos(pi/4)) of the span above the floor */
    lt_schedule s2 = {.type = LT_SCHEDULE_COSINE, .lr = 1.0f, .min_lr = 0.0f, .warmup_steps = 0};
    lr_eq(lt_schedule_lr(&s2, 25, 100), 0.5 * (1 + cos(M_PI * 0.25)));
    lr_eq(lt_schedule_lr(&s2, 0, 100), 1.0); /* no warmup: starts at lr */
    /* end: step total_steps gives min_lr exactly; past it stays there */
    cr_assert_eq(lt_schedule_lr(&s, 100, 100), 1e-5f);
    cr_assert_eq(lt_schedule_lr(&s, 1000, 100), 1e-5f);
    /* last update (step 99) is just above the floor, and the curve never goes below it */
    float prev = 1.0f;
    for (int64_t st = 10; st <= 100; st++) {
        float x = lt_schedule_lr(&s, st, 100);
        cr_assert(x <= prev && x >= 1e-5f, "step %lld: %g", (long long)st, (double)x);
        prev = x;
    }
}

Test(optim, schedule_linear_and_constant) {
    lt_schedule s = {.type = LT_SCHEDULE_LINEAR, .lr = 2e-4f, .min_lr = 0.0f, .warmup_steps = 20};
    lr_eq(lt_schedule_lr(&s, 0, 220), 1e-5);       /* 2e-4 / 20 */
    lr_eq(lt_schedule_lr(&s, 19, 220), 2e-4);
    lr_eq(lt_schedule_lr(&s, 120, 220), 1e-4);     /* q = 0.5 */
    lr_eq(lt_schedule_lr(&s, 170, 220), 0.5e-4);   /* q = 0.75 */
    cr_assert_eq(lt_schedule_lr(&s, 220, 220), 0.0f);

    s.min_lr = 2e-5f;
    lr_eq(lt_schedule_lr(&s, 120, 220), (double)2e-5f + ((double)2e-4f - (double)2e-5f) * 0.5);
    cr_assert_eq(lt_schedule_lr(&s, 220, 220), 2e-5f);

    lt_schedule c = {.type = LT_SCHEDULE_CONSTANT, .lr = 3e-4f, .min_lr = 0.0f, .warmup_steps = 3};
    lr_eq(lt_schedule_lr(&c, 0, 50), 1e-4);
    lr_eq(lt_schedule_lr(&c, 2, 50), 3e-4);
    cr_assert_eq(lt_schedule_lr(&c, 3, 50), 3e-4f);
    cr_assert_eq(lt_schedule_lr(&c, 49, 50), 3e-4f);
    cr_assert_eq(lt_schedule_lr(&c, 500, 50), 3e-4f);
}

Test(optim, schedule_degenerate_total_and_names) {
    lt_schedule s = {.type = LT_SCHEDULE_COSINE, .lr = 1e-3f, .min_lr = 1e-4f, .warmup_steps = 10};
    /* total <= warmup: warmup still ramps, then straight to the floor */
    lr_eq(lt_schedule_lr(&s, 4, 5), 5e-4);
    cr_assert_eq(lt_schedule_lr(&s, 10, 5), 1e-4f);

    lt_schedule_type t;
    cr_assert_eq(lt_schedule_type_parse("linear", &t), LT_OK);
    cr_assert_eq(t, LT_SCHEDULE_LINEAR);
    cr_assert_str_eq(lt_schedule_type_name(LT_SCHEDULE_COSINE), "cosine");
    cr_assert_eq(lt_schedule_type_parse("Cosine!", &t), LT_ERR_RECIPE);
    cr_assert(strstr(lt_error_message(), "Cosine!"));
    cr_assert_null(lt_schedule_type_name(LT_SCHEDULE_COUNT));

    cr_assert_eq(lt_schedule_check(&s), LT_OK);
    s.min_lr = 2e-3f;
    cr_assert_eq(lt_schedule_check(&s), LT_ERR_RECIPE);
    s.min_lr = 0.0f;
    s.warmup_steps = -1;
    cr_assert_eq(lt_schedule_check(&s), LT_ERR_RECIPE);
    s.warmup_steps = 0;
    s.lr = 0.0f;
    cr_assert_eq(lt_schedule_check(&s), LT_ERR_RECIPE);
}
