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
    const lt_recipe *r;
    FILE *metrics;               /* metrics.jsonl, append mode, flushed per line */
    char started[40];            /* ISO 8601 UTC */
    int64_t resume_step;         /* newest checkpoint's step when resuming, else 0 */
    char resume_dir[PATH_MAX];   /* that checkpoint's directory */
    void *manifest;              /* json_t*, kept to rewrite at close */
} lt_run;

/* Create (or, with resume, reopen) output.dir. A fresh run refuses a directory that already
 * holds a run (LT_ERR_USAGE with a hint); resume requires a checkpoint (LT_ERR_USAGE otherwise)
 * and drops metrics lines after it. Writes recipe.yaml and manifest.json (status "running"). */
lt_status lt_run_open(lt_run *run, const lt_recipe *r, bool resume);
/* Stamp manifest.json with the end time and status ("completed", "interrupted", "failed") and
 * close files. */
void lt_run_close(lt_run *run, lt_status st);

void lt_run_log_step(lt_run *run, int64_t step, double loss, float lr, double tokens_per_s,
                     float grad_norm);
void lt_run_log_eval(lt_run *run, int64_t step, double eval_loss);

/* checkpoints/step-NNNNNNN/: PEFT adapter files, optimizer.safetensors (AdamW m, v) and
 * trainer_state.json (step, epochs done, data cursor), published atomically. */
lt_status lt_run_save_checkpoint(lt_run *run, const lt_model *m, const float *opt_m,
                                 const float *opt_v, const lt_loader *train, int64_t step,
                                 int64_t epochs_done);
/* Restore the adapter, moments, cursor and step from run->resume_dir. */
lt_status lt_run_load_checkpoint(lt_run *run, lt_model *m, float *opt_m, float *opt_v,
                                 lt_loader *train, int64_t *step, int64_t *epochs_done);
/* output.dir/adapter (PEFT), replacing an older export of this run. */
lt_status lt_run_export(lt_run *run, const lt_model *m);

/* Progress: a live line on a terminal (stderr), else one plain line every log_every steps. */
typedef struct {
    bool tty;
    int64_t start_step, total, log_every;
    double t0;
    bool line_open; /* a live line is on screen */
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
