/* The one training step (DESIGN.md §3): forward, loss, backward over the accumulated
 * micro-batches, global gradient norm, clipping, AdamW on the flat adapter buffer. `lathe train`
 * and bench/bench_train.c both run it, so a benchmark measures the step that trains. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../dist/dist.h"

lt_status lt_trainer_init(lt_trainer *t, lt_model *m, const lt_adamw_hparams *hp, float grad_clip,
                          uint64_t seed, bool checkpointing) {
    memset(t, 0, sizeof *t);
    LT_ASSERT(m->lora_params != NULL);
    const size_t nb = (size_t)m->n_lora * sizeof(float);
    t->opt_m = lt_alloc_big(nb, "AdamW first moments");
    t->opt_v = t->opt_m ? lt_alloc_big(nb, "AdamW second moments") : NULL;
    if (!t->opt_v) {
        free(t->opt_m);
        t->opt_m = NULL;
        return LT_ERR_OOM;
    }
    t->m = m;
    t->hp = *hp;
    t->grad_clip = grad_clip;
    t->seed = seed;
    lt_arena_init(&t->arena, 0);
    lt_graph_init(&t->g, &t->arena);
    t->g.checkpoint = checkpointing;
    return LT_OK;
}

void lt_trainer_free(lt_trainer *t) {
    if (!t->m) return;
    lt_graph_free(&t->g);
    lt_arena_free(&t->arena);
    free(t->opt_m);
    free(t->opt_v);
    free(t->acc);
    memset(t, 0, sizeof *t);
}

lt_status lt_train_step(lt_trainer *t, const lt_batch *batches, int n, int64_t step, float lr,
                        lt_step_stats *out) {
    lt_model *m = t->m;
    int64_t total = 0;
    for (int a = 0; a < n; a++) total += batches[a].n_target_tokens;
    memset(out, 0, sizeof *out);
    t->allreduce_s = 0;
    /* before any backward: every micro-batch's loss divides by the global batch's targets */
    lt_status st = lt_dist_sum_i64(&total, 1);
    if (st) return st;
    const size_t nb = (size_t)m->n_lora * sizeof(float);
    if (n > 1 && !t->acc && !(t->acc = lt_alloc_big(nb, "the gradient accumulator")))
        return LT_ERR_OOM;
    memset(m->lora_grads, 0, nb);
    double loss = 0;
    int done = 0; /* micro-batches with targets so far */
    for (int a = 0; a < n; a++) {
        const lt_batch *b = &batches[a];
        if (b->n_target_tokens == 0) continue;
        /* each micro-batch's gradient is made whole in a zeroed buffer, then added to the sum
         * in one addition per element: the backward's GEMMs add their K-blocks into the buffer
         * one by one, so accumulating into a non-zero buffer would round differently from a rank
         * that computed the same micro-batch alone, and N ranks x k would not equal 1 x N·k */
        if (done > 0) memset(m->lora_grads, 0, nb);
        /* each micro-batch's loss divides by the whole step's targets, so the grads add up to
         * the gradient of the step's mean loss; its dropout masks differ per (step, a) */
        uint64_t g = (uint64_t)t->mb_first + (uint64_t)a; /* global: N x k equals 1 x N·k */
        uint64_t dseed = t->seed ^ ((uint64_t)step * 0x100000001b3ull + g + 1);
        lt_tensor *l = lt_model_loss(&t->g, m, b->B, b->T, b->tokens, b->pos, b->doc, b->targets,
                                     (float)total, dseed);
        loss += lt_f32(l)[0];
        lt_backward(&t->g, l, 1.0f);
        lt_graph_clear(&t->g);
        lt_arena_reset(&t->arena);
        if (n > 1) {
            float *acc = t->acc;
            const float *gr = m->lora_grads;
            if (done == 0) memcpy(acc, gr, nb);
            else
                for (int64_t i = 0; i < m->n_lora; i++) acc[i] += gr[i];
        }
        done++;
    }
    if (n > 1) {
        if (done > 0) memcpy(m->lora_grads, t->acc, nb);
        else memset(m->lora_grads, 0, nb);
    }
    if ((st = lt_dist_allreduce_grads(m->lora_grads, m->n_lora, &t->allreduce_s)) ||
        (st = lt_dist_sum_f64(&loss, 1)))
        return st;
    const float gn = lt_grad_global_norm(m->lora_grads, m->n_lora);
    out->loss = loss;
    out->n_targets = total;
    out->grad_norm = gn;
    if (!isfinite(loss) || !isfinite(gn))
        return lt_error_set(LT_ERR_RUNTIME, "step %lld: the loss or gradient is not finite "
                            "(loss %g, grad norm %g); the last checkpoint holds the last good "
                            "state; hint: lower optim.lr or set train.grad_clip",
                            (long long)step + 1, loss, gn);
    if (t->grad_clip > 0) lt_grad_clip(m->lora_grads, m->n_lora, t->grad_clip, gn);
    lt_adamw_step(m->lora_params, m->lora_grads, t->opt_m, t->opt_v, m->n_lora, &t->hp, step + 1,
                  lr);
    return LT_OK;
}
