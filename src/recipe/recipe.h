/*
 * recipe — the YAML recipe: one struct (lt_recipe) and one key table (recipe.c) that drive
 * defaults, parsing, `--set section.key=value` overrides, validation, the resolved copy saved in
 * each run directory, and the Markdown reference in docs/recipe.md (DESIGN.md §4).
 *
 * A recipe file is one YAML document: a mapping of sections (model, lora, quantization, data,
 * optim, schedule, train, output), each a mapping of keys; a key named a.b.c (output.gate.metric)
 * is written `b: {c: ...}` inside section a, block or flow. Every key has a default except
 * model.path, data.train and output.dir, which are required.
 *
 * Paths (model.path, data.train, data.eval, output.dir): a relative path written in a recipe file
 * is relative to the directory holding that recipe file; a relative path given with --set is
 * relative to the current directory; "~/" is the home directory. Paths are stored absolute
 * (lexically normalized: "." and ".." removed), so the resolved copy names the same files from
 * anywhere. data.* entries are glob patterns, expanded later by the data module.
 *
 * Run length: train.max_steps > 0 decides it; otherwise train.epochs does. Setting both in the
 * same place (both in the file, or both with --set) is an error; a --set of one replaces the
 * other one's value from the file.
 */
#ifndef LATHE_RECIPE_H
#define LATHE_RECIPE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"
#include "model/model.h"  /* lt_model_opts */
#include "optim/optim.h" /* lt_schedule_type */

/* The largest step count a recipe key may hold (max_steps, warmup_steps, log/eval/save_every,
 * eval_batches): a billion steps is beyond any run, and keeps step arithmetic far from overflow. */
#define LT_RECIPE_STEPS_MAX 1000000000
/* The most tokens one optimizer step may hold (grad_accum x micro_batch_size x data.seq_len):
 * 2^28 tokens is ~2.4 GiB of batch buffers before any activation, far past any sensible batch. */
#define LT_RECIPE_STEP_TOKENS_MAX (INT64_C(1) << 28)

/* output.gate.metric values (recipe_keys.c gate_metrics order). */
typedef enum { LT_GATE_NONE = 0, LT_GATE_EVAL_LOSS } lt_gate_metric;

/* Number of rows in the key table (checked by a _Static_assert in recipe.c). */
#define LT_RECIPE_NKEYS 50

/* The settings of one data.train / data.eval entry written as a mapping, {path: GLOB, weight: W,
 * format: F, template: T, max_len: N, eval_fraction: X, on_error: M}: each field not given is
 * "unset" (the value below) and the data.* key of the same name applies. */
typedef struct {
    double weight;        /* share of the training documents drawn from this entry (> 0), or 0 */
    int format;           /* raw files: lt_record_format, or -1 */
    char *template_name;  /* raw files: built-in chat layout name, or NULL */
    int64_t max_len;      /* raw files: truncation in tokens (0 = none), or -1 */
    double eval_fraction; /* raw data.train files: share held out for evaluation, or -1 */
    int on_error;         /* raw files: lt_on_error, or -1 */
} lt_data_entry;

/* An owned list of owned strings; `entries` is NULL unless some item of a data.train / data.eval
 * list was written as a mapping, and then holds one lt_data_entry per item (all unset for the
 * items written as plain globs). */
typedef struct {
    char **items;
    int n;
    lt_data_entry *entries;
} lt_recipe_list;

/* An lt_data_entry with every field unset. */
lt_data_entry lt_data_entry_unset(void);
/* True when any field of e is set. */
bool lt_data_entry_is_set(const lt_data_entry *e);

/* Append a copy of s (with an unset entry when the list has entries). Free the strings, the
 * entries and the arrays, and zero the list (NULL-safe items). */
void lt_recipe_list_add(lt_recipe_list *l, const char *s);
void lt_recipe_list_free(lt_recipe_list *l);


/* Where a key's current value came from. */
typedef enum {
    LT_RECIPE_DEFAULT = 0, /* the table's default */
    LT_RECIPE_FROM_FILE,   /* the recipe file given to lt_recipe_load */
    LT_RECIPE_FROM_SET,    /* a --set override */
} lt_recipe_origin;

typedef struct {
    struct {
        char *path; /* base model GGUF file, absolute; NULL until set (required) */
    } model;
    struct {
        int64_t r;                     /* adapter rank */
        double alpha;                  /* scale = alpha / r (alpha / sqrt(r) with rslora) */
        double dropout;                /* dropout on the adapter input, [0, 1) */
        lt_recipe_list target_modules; /* HF module names: q_proj ... down_proj */
        bool rslora;                   /* rank-stabilized scaling (arXiv 2312.03732) */
        char *init_from;               /* PEFT adapter directory to start from, or NULL */
    } lora;
    struct {
        int type;               /* 0 none, 1 nf4, 2 q8_0 (model.h lt_quant_type order) */
        bool double_quant;      /* NF4: quantize the absmax values too (QLoRA §3) */
        int64_t block_size;     /* NF4 elements per absmax block, power of two in [32, 4096] */
        lt_recipe_list modules; /* which weights: the seven projections and lm_head */
    } quantization;
    struct {
        lt_recipe_list train; /* absolute glob patterns of shards and/or raw files (required) */
        lt_recipe_list eval;  /* the same; may be empty */
        int64_t seq_len;      /* tokens per sequence */
        bool packing;         /* pack several documents into one sequence */
        int format;           /* raw files: data.h lt_record_format */
        char *template_name;  /* raw files: "chatml" | "alpaca", or NULL = the model's */
        int64_t max_len;      /* raw files: truncation in tokens, 0 = none */
        int on_error;         /* raw files: data.h lt_on_error */
        double eval_fraction; /* raw train files: share of documents held out for evaluation */
        char *cache_dir;      /* raw files' shard cache, or NULL = the default */
    } data;
    struct {
        double lr, beta1, beta2, eps, weight_decay; /* AdamW (arXiv 1711.05101) */
    } optim;
    struct {
        lt_schedule_type type;
        int64_t warmup_steps; /* linear warm-up from 0 to optim.lr */
        double min_lr;        /* floor the decay ends at */
    } schedule;
    struct {
        int64_t micro_batch_size, grad_accum;
        int64_t max_steps; /* > 0: optimizer steps to run; 0: train.epochs decides */
        double epochs;     /* passes over data.train when max_steps is 0 */
        double grad_clip;  /* global L2 norm clip; 0 = off */
        int64_t seed;
        int64_t log_every, eval_every, eval_batches, save_every; /* 0 = see the key help */
        int64_t threads;                                         /* 0 = all cores */
        int device;                  /* core/device.h lt_device_choice: auto, cpu, cuda */
        bool gradient_checkpointing; /* recompute each block's activations in backward */
    } train;
    struct {
        char *dir;              /* run directory, absolute; NULL until set (required) */
        lt_recipe_list exports; /* export formats written to dir/exports/<format>/ at the end:
                                 * peft, gguf-adapter, merged-safetensors, merged-gguf */
        char *publish;          /* serving directory (versions + `current` symlink), or NULL */
        int64_t keep;           /* published versions kept */
        struct {
            int metric;             /* lt_gate_metric: LT_GATE_NONE or LT_GATE_EVAL_LOSS */
            double max_regression;  /* allowed eval-loss increase over the baseline (absolute) */
            double min_improvement; /* required eval-loss decrease, fraction of the baseline */
        } gate;
    } output;

    char *source; /* the recipe file as given to lt_recipe_load; NULL if none */
    /* bookkeeping, one entry per key-table row: origin and (for files) 1-based line:column */
    struct {
        uint8_t origin;
        int line, col;
    } from[LT_RECIPE_NKEYS];
} lt_recipe;

/* Fill `r` with every key's default (required keys NULL / empty) and no source. Any previous
 * contents are overwritten without being freed (call lt_recipe_free first to reuse one). */
void lt_recipe_defaults(lt_recipe *r);

/* Free owned strings and lists and zero `r` (lt_recipe_defaults makes it usable again).
 * Accepts NULL and a zeroed recipe. */
void lt_recipe_free(lt_recipe *r);

/* Parse the YAML recipe at `path` over the defaults. `r` is always initialized (free it with
 * lt_recipe_free whether or not this succeeds). Does not run cross-field checks: call
 * lt_recipe_validate after any overrides.
 * Errors (LT_ERR_RECIPE, message "path:line:col: problem; hint: ..."): unreadable file, YAML
 * syntax error, more than one document, a non-mapping where a mapping is expected, unknown
 * section or key (with "did you mean"), duplicate key, wrong type, value out of range, bad enum
 * value or module name. */
lt_status lt_recipe_load(lt_recipe *r, const char *path);

/* Apply one override "section.key=value" (the text after --set). The value is taken literally
 * as one string unless it starts with '[' (a YAML flow list: [a, b]) or a quote (a YAML quoted
 * scalar); an empty value clears a list. Relative paths are relative to the current directory.
 * Errors: LT_ERR_RECIPE, message "--set <assignment>: problem; hint: ..."; `r` is unchanged on
 * error. */
lt_status lt_recipe_set(lt_recipe *r, const char *assignment);

/* The quantization section as base-model load options (lt_model_load_opts), for everything that
 * loads a recipe's base the way training did (train, export of a run). Progress lines on. */
lt_model_opts lt_recipe_model_opts(const lt_recipe *r);

/* Cross-field checks on a loaded / overridden recipe: required keys present, max_steps and epochs
 * not both set, schedule.min_lr <= optim.lr, warm-up shorter than max_steps, no repeated
 * target module, eval data present when train.eval_every asks for it, no repeated export format,
 * quantization.block_size a power of two, quantization.modules non-empty when quantizing and
 * without embed_tokens (the embedding lookup reads F32 only). LT_ERR_RECIPE naming the key and
 * where it was set. Whether the block size divides every quantized row depends on the model and
 * is checked when it loads (lt_model_load_opts). */
lt_status lt_recipe_validate(const lt_recipe *r);

/* Where the value of `key` ("section.key") came from; LT_RECIPE_DEFAULT for unknown keys. */
lt_recipe_origin lt_recipe_origin_of(const lt_recipe *r, const char *key);

/* True if every key of `a` and `b` holds the same value (origins and source are ignored). */
bool lt_recipe_equal(const lt_recipe *a, const lt_recipe *b);

/* Print the resolved recipe as YAML: every key, each preceded by its help as a comment, strings
 * double-quoted, floats in the shortest text that reads back exactly. train.epochs is written
 * commented out when train.max_steps decides the length. lt_recipe_load of the output gives a
 * recipe lt_recipe_equal to `r`. */
void lt_recipe_print(const lt_recipe *r, FILE *out);

/* lt_recipe_print into `path`, atomically (temp file, fsync, rename). LT_ERR_IO on failure. */
lt_status lt_recipe_write(const lt_recipe *r, const char *path);

/* The Markdown reference of every key (docs/recipe.md is this output, committed; a unit test
 * checks it is up to date — regenerate with LATHE_UPDATE_DOCS=1 build/lathe_tests
 * --filter 'recipe/docs_up_to_date'). */
void lt_recipe_docs(FILE *out);

#endif
