/* The one training step (DESIGN.md §3): forward, loss, backward over the accumulated
 * micro-batches, global gradient norm, clipping, AdamW on the flat adapter buffer. `lathe train`
 * and bench/bench_train.c both run it, so a benchmark measures the step that trains. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/device.h"
#include "../dist/dist.h"

lt_status lt_trainer_init(lt_trainer *t, lt_model *m, const lt_adamw_hparams *hp, float grad_clip,
                          uint64_t seed, bool checkpointing) {
    memset(t, 0, sizeof *t);
    LT_ASSERT(m->lora_params != NULL);
    const size_t nb = (size_t)m->n_lora * sizeof(float);
    const lt_device dev = m->device;
    t->m = m;
    t->hp = *hp;
    t->grad_clip = grad_clip;
    t->seed = seed;
    lt_arena_init(&t->arena, 0);
    /* the moments live where the adapter does; host mirrors carry them to and from checkpoints */
    lt_status st;
    if ((st = lt_buffer_alloc(dev, nb, "AdamW first moments", (void **)&t->opt_m)) ||
        (st = lt_buffer_alloc(dev, nb, "AdamW second moments", (void **)&t->opt_v)) ||
        (st = lt_model_graph_init(&t->g, &t->arena, m)))
        goto fail;
    if (lt_device_host_visible(dev)) {
        t->host_m = t->opt_m;
        t->host_v = t->opt_v;
    } else if (!(t->host_m = lt_alloc_big(nb, "AdamW moments (host copy)")) ||
               !(t->host_v = lt_alloc_big(nb, "AdamW moments (host copy)"))) {
        st = LT_ERR_OOM;
        goto fail;
    }
    t->g.checkpoint = checkpointing;
    return LT_OK;
fail:
    lt_trainer_free(t);
    return st;
}

void lt_trainer_free(lt_trainer *t) {
    if (!t->m) return;
    const lt_device dev = t->m->device;
    lt_graph_free(&t->g);
    lt_arena_free(&t->arena);
    if (t->host_m != t->opt_m) free(t->host_m);
    if (t->host_v != t->opt_v) free(t->host_v);
    lt_buffer_free(dev, t->opt_m);
    lt_buffer_free(dev, t->opt_v);
    lt_buffer_free(dev, t->acc);
    memset(t, 0, sizeof *t);
}

void lt_trainer_to_host(lt_trainer *t) {
    const lt_device dev = t->m->device;
    if (lt_device_host_visible(dev)) return;
    const size_t nb = (size_t)t->m->n_lora * sizeof(float);
    lt_model_adapter_to_host(t->m);
    lt_mem_download(dev, t->host_m, t->opt_m, nb);
    lt_mem_download(dev, t->host_v, t->opt_v, nb);
}

void lt_trainer_to_device(lt_trainer *t) {
    const lt_device dev = t->m->device;
    if (lt_device_host_visible(dev)) return;
    const size_t nb = (size_t)t->m->n_lora * sizeof(float);
    lt_model_adapter_to_device(t->m);
    lt_mem_upload(dev, t->opt_m, t->host_m, nb);
    lt_mem_upload(dev, t->opt_v, t->host_v, nb);
}

lt_status lt_train_step(lt_trainer *t, const lt_batch *batches, int n, int64_t step, float lr,
                        lt_step_stats *out) {
    lt_model *m = t->m;
    const lt_device dev = m->device;
    const lt_optim_backend *ob = lt_optim_on(dev);
    float *grads = m->train_grads, *params = m->train_params;
    int64_t total = 0;
    for (int a = 0; a < n; a++) total += batches[a].n_target_tokens;
    memset(out, 0, sizeof *out);
    t->allreduce_s = 0;
    /* before any backward: every micro-batch's loss divides by the global batch's targets */
    lt_status st = lt_dist_sum_i64(&total, 1);
    if (st) return st;
    const size_t nb = (size_t)m->n_lora * sizeof(float);
    if (n > 1 && !t->acc &&
        (st = lt_buffer_alloc(dev, nb, "the gradient accumulator", (void **)&t->acc)))
        return st;
    lt_mem_zero(dev, grads, nb);
    double loss = 0;
    int done = 0; /* micro-batches with targets so far */
    for (int a = 0; a < n; a++) {
        const lt_batch *b = &batches[a];
        if (b->n_target_tokens == 0) continue;
        /* each micro-batch's gradient is made whole in a zeroed buffer, then added to the sum
         * in one addition per element: the backward's GEMMs add their K-blocks into the buffer
         * one by one, so accumulating into a non-zero buffer would round differently from a rank
         * that computed the same micro-batch alone, and N ranks x k would not equal 1 x N·k */
        if (done > 0) lt_mem_zero(dev, grads, nb);
        /* each micro-batch's loss divides by the whole step's targets, so the grads add up to
         * the gradient of the step's mean loss; its dropout masks differ per (step, a) */
        uint64_t g = (uint64_t)t->mb_first + (uint64_t)a; /* global: N x k equals 1 x N·k */
        uint64_t dseed = t->seed ^ ((uint64_t)step * 0x100000001b3ull + g + 1);
        lt_tensor *l = lt_model_loss(&t->g, m, b->B, b->T, b->tokens, b->pos, b->doc, b->targets,
                                     (float)total, dseed);
        float lv;
        LT_ASSERT(lt_tensor_numel(l) == 1);
        lt_tensor_download(l, &lv);
        loss += lv;
        lt_backward(&t->g, l, 1.0f);
        lt_graph_reset(&t->g);
        if (n > 1) {
            if (done == 0) lt_mem_copy(dev, t->acc, grads, nb);
            else ob->vec_add(t->acc, grads, m->n_lora);
        }
        done++;
    }
    if (n > 1) {
        if (done > 0) lt_mem_copy(dev, grads, t->acc, nb);
        else lt_mem_zero(dev, grads, nb);
    }
    if ((st = lt_dist_allreduce_grads(grads, m->n_lora, &t->allreduce_s)) ||
        (st = lt_dist_sum_f64(&loss, 1)))
        return st;
    const float gn = ob->grad_global_norm(grads, m->n_lora);
    out->loss = loss;
    out->n_targets = total;
    out->grad_norm = gn;
    if (!isfinite(loss) || !isfinite(gn))
        return lt_error_set(LT_ERR_RUNTIME, "step %lld: the loss or gradient is not finite "
                            "(loss %g, grad norm %g); the last checkpoint holds the last good "
                            "state; hint: lower optim.lr or set train.grad_clip",
                            (long long)step + 1, loss, gn);
    if (t->grad_clip > 0) ob->grad_clip(grads, m->n_lora, t->grad_clip, gn);
    ob->adamw_step(params, grads, t->opt_m, t->opt_v, m->n_lora, &t->hp, step + 1, lr);
    return LT_OK;
}
