/* run — the run directory of one training job (layout in train.h): creation and resume checks,
 * manifest, metrics log, checkpoints and the final export; and the progress display.
 * Private to src/train/. */
#ifndef LATHE_TRAIN_RUN_H
#define LATHE_TRAIN_RUN_H

#include <limits.h>
#include <stdio.h>

#include "../data/data.h"
#include "../model/model.h"
#include "../recipe/recipe.h"

typedef struct {
    int64_t step;
    char dir[PATH_MAX];
} lt_run_ckpt;

typedef struct {
    const lt_recipe *r;
    FILE *metrics;               /* metrics.jsonl, append mode, flushed per line */
    char started[40];            /* ISO 8601 UTC */
    int64_t resume_step;         /* newest checkpoint's step when resuming, else 0 */
    char resume_dir[PATH_MAX];   /* that checkpoint's directory */
    void *manifest;              /* json_t*, kept to rewrite at close */
    lt_run_ckpt *ckpts;          /* resuming: the complete checkpoints, newest first (owned) */
    size_t n_ckpts;
    bool writer;                 /* this process writes the run directory (rank 0): every
                                  * function below does nothing on a run that is not (data-
                                  * parallel ranks > 0 compute but never write) */
} lt_run;

/* Create (or, with resume, reopen) output.dir. A fresh run refuses a directory that already
 * holds a run (LT_ERR_USAGE with a hint); resume removes the temporary files and directories
 * (NAME.tmp.PID, NAME.old.PID) that processes which are gone left in it, checkpoints/ and
 * exports/, requires a complete checkpoint (LT_ERR_USAGE otherwise)
 * and drops metrics lines after the newest. Writes recipe.yaml and manifest.json (status
 * "running"). A data.train or data.eval file that is not a regular file is LT_ERR_DATA. */
lt_status lt_run_open(lt_run *run, const lt_recipe *r, bool resume);
/* A rank other than 0 of a data-parallel job: the run of recipe r without a directory of its own
 * (writer = false), so that logs, checkpoints, the manifest and exports are left to rank 0. */
void lt_run_attach(lt_run *run, const lt_recipe *r);
/* Stamp manifest.json with the end time and status ("completed", "interrupted", "gate_refused",
 * "failed" with the error) and close files. */
void lt_run_close(lt_run *run, lt_status st);

void lt_run_log_step(lt_run *run, int64_t step, double loss, float lr, double tokens_per_s,
                     float grad_norm);
void lt_run_log_eval(lt_run *run, int64_t step, double eval_loss);

/* checkpoints/step-NNNNNNN/: PEFT adapter files, optimizer.safetensors (AdamW m, v) and
 * trainer_state.json (step, epochs done, data cursor, world_size and grad_accum: the cursor
 * counts global micro-batches), published atomically. */
lt_status lt_run_save_checkpoint(lt_run *run, const lt_model *m, const float *opt_m,
                                 const float *opt_v, const lt_loader *train, int64_t step,
                                 int64_t epochs_done);
/* Restore the adapter, moments, cursor and step from the newest complete checkpoint, validating
 * every field of trainer_state.json (step = the directory's step, <= max_steps; epochs_done and
 * the data cursor in range; world_size = this job's, 1 when absent: else LT_ERR_USAGE, since the
 * cursor and the sums of a step belong to the global batch of that many ranks). A damaged checkpoint (LT_ERR_DATA / LT_ERR_MODEL) is skipped with a
 * warning naming it, and the previous complete one is tried; then run->resume_step/_dir, the
 * manifest and metrics.jsonl follow the one loaded. Fails with the newest one's error when none
 * loads; LT_ERR_USAGE (recipe and checkpoint disagree) stops at once. */
lt_status lt_run_load_checkpoint(lt_run *run, lt_model *m, float *opt_m, float *opt_v,
                                 lt_loader *train, int64_t max_steps, int64_t *step,
                                 int64_t *epochs_done);
/* output.dir/adapter (PEFT), replacing an older export of this run; the manifest records the
 * adapter's SHA-256 ("adapter": {path, sha256}). Then output.exports. */
lt_status lt_run_export(lt_run *run, const lt_model *m);

/* Set manifest[key] = value (ownership of value taken) and rewrite manifest.json atomically. */
lt_status lt_run_manifest_set(lt_run *run, const char *key, void *value);

/* lora.init_from (lineage.c): attach the PEFT adapter in r->lora.init_from to m in place of the
 * fresh one, after checking it against the recipe — r, lora_alpha, use_rslora and the target
 * modules must equal `want` (LT_ERR_RECIPE naming both), its tensors must fit the base
 * (lt_peft_load's LT_ERR_MODEL), and the base SHA-256 in the parent's run manifest
 * (DIR/manifest.json or DIR/../manifest.json), when there is one, must equal this run's
 * (LT_ERR_RECIPE naming both checksums; without one, a warning). The dropout stays the recipe's.
 * Records "init_from": {path, adapter_sha256, parent_manifest} in the manifest. */
lt_status lt_run_init_from(lt_run *run, lt_model *m, const lt_lora_config *want);

/* Raw dataset files in data.train / data.eval (rawdata.c): the loader's patterns, one per
 * entry in recipe order — shard globs as given, and for an entry of raw files one glob of their
 * cached shards, tokenized with the entry's format / template / max_len / on_error /
 * eval_fraction (each else data.*'s) unless a cache entry for the same input checksums,
 * tokenizer (tok_sha) and options exists; the held-out shards of raw training entries are
 * appended to eval. *train_weights: malloc'ed [train->n] entry weights when data.train's entries
 * carry them (lt_recipe_validate makes that all or none), else NULL. Records "tokenized":
 * [{role, entry, weight?, inputs: [{path, sha256}], cache, reused}] in the manifest.
 * LT_ERR_DATA for a raw pattern (lt_data_is_raw) without a match or a malformed record with
 * on_error fail (file:line); tokenize's errors otherwise. The lists are owned: free with
 * lt_recipe_list_free (and the weights with free). */
lt_status lt_run_prepare_data(lt_run *run, const char *tok_sha, lt_recipe_list *train,
                              double **train_weights, lt_recipe_list *eval);

/* output.publish (publish.c). check: create `dir` if needed and prove it writable, before any
 * training (LT_ERR_IO naming it). publish: copy (hard-link when possible) the files of
 * run_dir/adapter to the root of a new version directory dir/<started compacted>-<adapter_sha[0:12]>/, with
 * run_dir/exports/ and manifest.json, built under a hidden temporary name and renamed whole;
 * then switch the symlink dir/current to it (rename of a new link); then remove the oldest
 * versions beyond `keep` (never the current). version receives the directory name. */
lt_status lt_publish_check(const char *dir);
lt_status lt_publish(const char *run_dir, const char *dir, int64_t keep, const char *started,
                     const char *adapter_sha, char version[96]);

/* The run lock (lock.c): flock on $XDG_CACHE_HOME/lathe/locks/<sha256(key)[0:16]>.lock
 * ($HOME/.cache when unset); key is the absolute path the runs would share (output.publish, else
 * output.dir), recipe only names the file in messages. LT_ERR_USAGE naming the holder (PID,
 * start time) when another process holds it; a lock left by a dead run is taken over with an
 * info line. *fd receives the lock; release with lt_run_unlock (or by exiting). */
lt_status lt_run_lock(const char *key, const char *recipe, int *fd);
void lt_run_unlock(int fd);

/* Progress: a live line on a terminal (stderr), else one plain line every log_every steps. */
typedef struct {
    bool tty;
    int64_t start_step, total, log_every;
    double t0;
    bool line_open; /* a live line is on screen */
    bool off;       /* print nothing (data-parallel ranks other than 0); set after init */
} lt_progress;
/* init: steps count from start_step (a resumed run) to total. update: after each step; prints
 * step, loss, lr, tokens/s, ETA, peak RSS and the last eval loss (NaN = none yet). note: one
 * plain line, clearing a live one first. end: finishes the live line. */
void lt_progress_init(lt_progress *p, int64_t start_step, int64_t total, int64_t log_every);
void lt_progress_update(lt_progress *p, int64_t step, double loss, float lr, double tokens_per_s,
                        double eval_loss);
void lt_progress_note(lt_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lt_progress_end(lt_progress *p);

#endif
