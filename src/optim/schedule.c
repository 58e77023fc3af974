/* Learning-rate schedules: linear warmup, then cosine / linear decay to min_lr, or constant.
 * Step convention (0-based, warmup (step+1)/W) and the HF sources are in optim.h. */
#include "optim.h"

#include <math.h>
#include <string.h>

static const char *const SCHEDULE_NAMES[LT_SCHEDULE_COUNT] = {
    [LT_SCHEDULE_COSINE] = "cosine",
    [LT_SCHEDULE_LINEAR] = "linear",
    [LT_SCHEDULE_CONSTANT] = "constant",
};

const char *lt_schedule_type_name(lt_schedule_type t) {
    if ((int)t < 0 || t >= LT_SCHEDULE_COUNT) return NULL;
    return SCHEDULE_NAMES[t];
}

lt_status lt_schedule_type_parse(const char *name, lt_schedule_type *out) {
    LT_ASSERT(out);
    for (int i = 0; i < LT_SCHEDULE_COUNT; i++) {
        if (name && strcmp(name, SCHEDULE_NAMES[i]) == 0) {
            *out = (lt_schedule_type)i;
            return LT_OK;
        }
    }
    return lt_error_set(LT_ERR_RECIPE,
                        "unknown lr schedule \"%s\": expected one of cosine, linear, constant",
                        name ? name : "(null)");
}

lt_status lt_schedule_check(const lt_schedule *s) {
    LT_ASSERT(s);
    if (!lt_schedule_type_name(s->type))
        return lt_error_set(LT_ERR_RECIPE, "lr schedule type %d: expected cosine, linear or "
                            "constant", (int)s->type);
    if (!(s->lr > 0.0f && isfinite(s->lr)))
        return lt_error_set(LT_ERR_RECIPE, "learning rate %g: must be a finite number > 0 "
                            "(LoRA typically 1e-4 to 2e-4)", (double)s->lr);
    if (!(s->min_lr >= 0.0f && s->min_lr <= s->lr))
        return lt_error_set(LT_ERR_RECIPE, "min_lr %g: must be in [0, lr = %g]",
                            (double)s->min_lr, (double)s->lr);
    if (s->warmup_steps < 0)
        return lt_error_set(LT_ERR_RECIPE, "warmup_steps %lld: must be >= 0",
                            (long long)s->warmup_steps);
    return LT_OK;
}

float lt_schedule_lr(const lt_schedule *s, int64_t step, int64_t total_steps) {
    LT_ASSERT(s);
    const double lr = s->lr, min_lr = s->min_lr;
    const int64_t w = s->warmup_steps > 0 ? s->warmup_steps : 0;
    if (step < 0) step = 0;
    if (step < w) return (float)(lr * (double)(step + 1) / (double)w);
    if (s->type == LT_SCHEDULE_CONSTANT) return (float)lr;

    double q = 1.0; /* degenerate decay (total_steps <= w): already at the floor */
    if (total_steps > w) {
        q = (double)(step - w) / (double)(total_steps - w);
        if (q > 1.0) q = 1.0;
    }
    double f; /* fraction of (lr - min_lr) still left */
    switch (s->type) {
    case LT_SCHEDULE_COSINE: f = 0.5 * (1.0 + cos(M_PI * q)); break;
    case LT_SCHEDULE_LINEAR: f = 1.0 - q; break;
    default: LT_ASSERT(!"unknown schedule type"); f = 0.0; break;
    }
    return (float)(min_lr + (lr - min_lr) * f);
}
