/* The one training step (DESIGN.md §3): forward, loss, backward over the accumulated
 * micro-batches, global gradient norm, clipping, AdamW on the flat adapter buffer. `lathe train`
 * and bench/bench_train.c both run it, so a benchmark measures the step that trains. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    memset(t, 0, sizeof *t);
}

lt_status lt_train_step(lt_trainer *t, const lt_batch *batches, int n, int64_t step, float lr,
                        lt_step_stats *out) {
    lt_model *m = t->m;
    int64_t total = 0;
    for (int a = 0; a < n; a++) total += batches[a].n_target_tokens;
    memset(m->lora_grads, 0, (size_t)m->n_lora * sizeof(float));
    double loss = 0;
    for (int a = 0; a < n; a++) {
        const lt_batch *b = &batches[a];
        if (b->n_target_tokens == 0) continue;
        /* each micro-batch's loss divides by the whole step's targets, so the grads add up to
         * the gradient of the step's mean loss; its dropout masks differ per (step, a) */
        uint64_t dseed = t->seed ^ ((uint64_t)step * 0x100000001b3ull + (uint64_t)a + 1);
        lt_tensor *l = lt_model_loss(&t->g, m, b->B, b->T, b->tokens, b->pos, b->doc, b->targets,
                                     (float)total, dseed);
        loss += lt_f32(l)[0];
        lt_backward(&t->g, l, 1.0f);
        lt_graph_clear(&t->g);
        lt_arena_reset(&t->arena);
    }
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
