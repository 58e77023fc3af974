/*
 * train — the training loop (`lathe train`): recipe -> model + adapters -> data -> steps of
 * forward / backward / clip / AdamW -> metrics, evaluation, checkpoints, the final PEFT adapter.
 *
 * Run directory (DESIGN.md §5), every file written atomically:
 *   recipe.yaml         the resolved recipe (every default filled in)
 *   manifest.json       versions, base model + shard checksums, seed, start/end time, status,
 *                       world_size (data-parallel ranks, docs/distributed.md)
 *   metrics.jsonl       {"step", "loss", "lr", "tokens_per_s", "grad_norm"} per logged step,
 *                       {"step", "eval_loss", "eval_ppl"} per evaluation
 *   checkpoints/step-NNNNNNN/  adapter (PEFT files), optimizer.safetensors (AdamW m, v),
 *                       trainer_state.json (step, data cursor, world_size, grad_accum):
 *                       enough to resume bit-exactly (with the same world size)
 *   adapter/            the final PEFT adapter, present only when the run completed
 */
#ifndef LATHE_TRAIN_H
#define LATHE_TRAIN_H

#include "../core/core.h"
#include "../data/data.h"
#include "../model/model.h"
#include "../optim/optim.h"
#include "../recipe/recipe.h"

typedef struct {
    bool resume; /* continue from the newest checkpoint in output.dir */
} lt_train_opts;

/* Run a whole training job for a validated recipe; with several ranks (lt_dist_init first)
 * every rank calls it and rank 0 alone writes the run directory. Returns LT_OK when the adapter was exported,
 * LT_ERR_INTERRUPTED after SIGINT/SIGTERM once a checkpoint is written, LT_ERR_RECIPE /
 * LT_ERR_USAGE for settings that do not fit the model or the run directory, LT_ERR_MODEL /
 * LT_ERR_DATA for bad files, LT_ERR_RUNTIME for a non-finite loss (after checkpointing the last
 * good state). */
lt_status lt_train_run(const lt_recipe *r, const lt_train_opts *o);

/* ---- the training step (step.c): used by lt_train_run and bench/bench_train.c ------------- */

/* The optimizer state of one job: the model whose adapter trains, AdamW's moments (owned,
 * [m->n_lora] each, the flat layout of m->lora_params, on the model's device), and the step
 * arena and graph. */
typedef struct {
    lt_model *m;
    float *opt_m, *opt_v;   /* live, on m->device */
    float *host_m, *host_v; /* host copies for checkpoints: opt_m / opt_v themselves on the CPU,
                             * else filled by lt_trainer_to_host, read by lt_trainer_to_device */
    lt_adamw_hparams hp;
    float grad_clip;    /* > 0: clip the global gradient norm to this */
    uint64_t seed;      /* dropout masks derive from (seed, step, global micro-batch) */
    int mb_first;       /* data parallelism: global index of this rank's first micro-batch of a
                         * step (rank · grad_accum); 0 on one rank */
    double allreduce_s; /* wall time of the last step's gradient all-reduce (0 on one rank) */
    float *acc;         /* [m->n_lora] the step's gradient sum over micro-batches (owned, on
                         * m->device; made by the first step with more than one) */
    lt_arena arena;
    lt_graph g;
} lt_trainer;

/* init: zeroed moments for m's adapter (attached first, and the model on its device: the graph
 * runs there, lt_model_graph_init); `checkpointing` recomputes each block's activations in
 * backward (autograd.h lt_checkpoint). LT_ERR_OOM naming the moments or the step arena. free:
 * releases the moments, arena and graph (not m); a zeroed trainer is fine. */
lt_status lt_trainer_init(lt_trainer *t, lt_model *m, const lt_adamw_hparams *hp, float grad_clip,
                          uint64_t seed, bool checkpointing);
void lt_trainer_free(lt_trainer *t);
/* The adapter (m->lora_params) and moments (host_m, host_v) on the host from the device, before a
 * checkpoint or the final adapter is written; and back, after a checkpoint was loaded into them.
 * No-ops on the CPU, where they are the live buffers. */
void lt_trainer_to_host(lt_trainer *t);
void lt_trainer_to_device(lt_trainer *t);

typedef struct {
    double loss;       /* the step's mean loss (nats per target token of all its micro-batches) */
    int64_t n_targets; /* target tokens of the step */
    float grad_norm;   /* global L2 norm of the adapter gradient, before clipping */
} lt_step_stats;

/* One optimizer step (DESIGN.md §3) over micro-batches batches[0..n): forward and loss of each
 * normalized by the target tokens of all n (gradient accumulation: the grads sum to the gradient
 * of the step's mean loss), backward, global gradient norm, clipping to t->grad_clip, then
 * AdamW (arXiv 1711.05101) at learning rate lr as update number step + 1. *out is filled even
 * on error. LT_ERR_RUNTIME when the loss or gradient norm is not finite: the parameters and
 * moments are left as they were.
 * With several ranks (src/dist/, collective: every rank calls it for every step) batches are this
 * rank's share of the global batch, starting at global micro-batch t->mb_first: the target count
 * is summed over ranks before the first backward (the loss divides by the whole global batch's
 * targets), dropout seeds come from the global micro-batch index, the gradient buffer is summed
 * over ranks once (lt_dist_allreduce_grads) and the loss too, so clipping and AdamW see the same
 * data on every rank and the parameters stay identical. *out holds the global figures. */
lt_status lt_train_step(lt_trainer *t, const lt_batch *batches, int n, int64_t step, float lr,
                        lt_step_stats *out);

/* Mean next-token loss (nats per target token) over one fixed-order pass of `eval` (opened with
 * shuffle = false, batch_rows B, seq_len T), or its first max_batches micro-batches when > 0.
 * Dropout is off. *n_tokens (may be NULL) receives the number of target tokens scored. */
lt_status lt_train_eval(lt_model *m, lt_loader *eval, int B, int T, int64_t max_batches,
                        double *mean_loss, int64_t *n_tokens);

#endif
