/*
 * train — the training loop (`lathe train`): recipe -> model + adapters -> data -> steps of
 * forward / backward / clip / AdamW -> metrics, evaluation, checkpoints, the final PEFT adapter.
 *
 * Run directory (DESIGN.md §5), every file written atomically:
 *   recipe.yaml         the resolved recipe (every default filled in)
 *   manifest.json       versions, base model + shard checksums, seed, start/end time, status
 *   metrics.jsonl       {"step", "loss", "lr", "tokens_per_s", "grad_norm"} per logged step,
 *                       {"step", "eval_loss", "eval_ppl"} per evaluation
 *   checkpoints/step-NNNNNNN/  adapter (PEFT files), optimizer.safetensors (AdamW m, v),
 *                       trainer_state.json (step, data cursor): enough to resume bit-exactly
 *   adapter/            the final PEFT adapter, present only when the run completed
 */
#ifndef LATHE_TRAIN_H
#define LATHE_TRAIN_H

#include "../core/core.h"
#include "../data/data.h"
#include "../model/model.h"
#include "../recipe/recipe.h"

typedef struct {
    bool resume; /* continue from the newest checkpoint in output.dir */
} lt_train_opts;

/* Run a whole training job for a validated recipe. Returns LT_OK when the adapter was exported,
 * LT_ERR_INTERRUPTED after SIGINT/SIGTERM once a checkpoint is written, LT_ERR_RECIPE /
 * LT_ERR_USAGE for settings that do not fit the model or the run directory, LT_ERR_MODEL /
 * LT_ERR_DATA for bad files, LT_ERR_RUNTIME for a non-finite loss (after checkpointing the last
 * good state). */
lt_status lt_train_run(const lt_recipe *r, const lt_train_opts *o);

/* Mean next-token loss (nats per target token) over one fixed-order pass of `eval` (opened with
 * shuffle = false, batch_rows B, seq_len T), or its first max_batches micro-batches when > 0.
 * Dropout is off. *n_tokens (may be NULL) receives the number of target tokens scored. */
lt_status lt_train_eval(lt_model *m, lt_loader *eval, int B, int T, int64_t max_batches,
                        double *mean_loss, int64_t *n_tokens);

#endif
