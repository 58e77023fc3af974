/*
 * recipe_keys — the one key table (DESIGN.md §4): name, type, field, default, range, choices and
 * help of every recipe key. Parsing, validation, --set, the resolved copy and docs/recipe.md are
 * all driven by it (recipe.c, recipe_load.c, recipe_print.c). Table order is document order.
 */
#include "recipe/recipe_impl.h"

#include "core/device.h" /* lt_device_choice_names */

#include <stddef.h>

#include "export/export.h" /* lt_export_format_names: the output.exports choices */

#define OFF(field) offsetof(lt_recipe, field)

static const char *const schedule_types[] = {"cosine", "linear", "constant", NULL};
/* data.h lt_record_format and lt_on_error orders */
static const char *const record_formats[] = {"auto", "alpaca", "sharegpt", "messages", "text",
                                             NULL};
static const char *const on_error_modes[] = {"skip", "fail", NULL};
/* lt_gate_metric order */
static const char *const gate_metrics[] = {"none", "eval_loss", NULL};
/* the seven projections, and Phi-3's fused modules (model.h lt_model_adapter_group) */
static const char *const lora_modules[] = {"q_proj",    "k_proj",   "v_proj",
                                           "o_proj",    "gate_proj", "up_proj",
                                           "down_proj", "qkv_proj",  "gate_up_proj", NULL};

/* model.h lt_quant_type order (LT_QUANT_NONE, LT_QUANT_NF4, LT_QUANT_Q8_0) */
const char *const lt_recipe_quant_types[] = {"none", "nf4", "q8_0", NULL};
/* the seven projections plus the two vocabulary matrices; validation refuses embed_tokens (the
 * embedding lookup reads F32 only) and the model loader a tied lm_head */
static const char *const quant_modules[] = {"q_proj",    "k_proj",       "v_proj",
                                            "o_proj",    "gate_proj",    "up_proj",
                                            "down_proj", "qkv_proj",     "gate_up_proj",
                                            "embed_tokens", "lm_head",   NULL};

_Static_assert(sizeof(lt_schedule_type) == sizeof(int), "RK_ENUM fields are stored as int");

#define PATH_HELP " A relative path is relative to the recipe file's directory (to the current " \
                  "directory with --set); ~/ is the home directory."

/* clang-format off */
const rk_key lt_recipe_keys[LT_RECIPE_NKEYS] = {
    {"model.path", RK_PATH, OFF(model.path), NULL, RF_REQUIRED, 0, 0, NULL,
     "Base model GGUF file (required)." PATH_HELP, {0}},

    {"lora.r", RK_INT, OFF(lora.r), "16", RF_MIN | RF_MAX, 1, 4096, NULL,
     "Adapter rank: A is [r, in], B is [out, r].", {0}},
    {"lora.alpha", RK_FLOAT, OFF(lora.alpha), "32", RF_MIN | RF_MIN_EXCL, 0, 0, NULL,
     "Adapter scale numerator: the update is scaled by alpha / r (alpha / sqrt(r) with "
     "lora.rslora).", {0}},
    {"lora.dropout", RK_FLOAT, OFF(lora.dropout), "0.05", RF_MIN | RF_MAX | RF_MAX_EXCL, 0, 1,
     NULL, "Dropout probability on the adapter input during training.", {0}},
    {"lora.target_modules", RK_LIST, OFF(lora.target_modules),
     "[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]", 0, 0, 0, lora_modules,
     "Linear layers that get an adapter, by Hugging Face module name. Phi-3 / Phi-4 fuse q/k/v "
     "into qkv_proj and gate/up into gate_up_proj, each with one adapter (as PEFT): name the "
     "fused module, or all of its projections (the default list does).", {0}},
    {"lora.rslora", RK_BOOL, OFF(lora.rslora), "false", 0, 0, 0, NULL,
     "Rank-stabilized LoRA scaling alpha / sqrt(r) (arXiv 2312.03732).", {0}},
    {"lora.init_from", RK_PATH, OFF(lora.init_from), NULL, 0, 0, 0, NULL,
     "A PEFT adapter directory to continue from (e.g. last night's run's adapter/) instead of "
     "a fresh adapter: its r, lora_alpha, use_rslora and target modules must equal this "
     "recipe's, and its base model this one (checked by SHA-256 against the parent run's "
     "manifest.json when there is one). The optimizer and schedule start afresh; the manifest "
     "records the parent adapter's checksum." PATH_HELP, {0}},

    {"quantization.type", RK_ENUM, OFF(quantization.type), "none", 0, 0, 0, lt_recipe_quant_types,
     "Storage of the frozen base's quantization.modules: none (F32, plain LoRA), nf4 (QLoRA's "
     "4-bit NormalFloat, arXiv 2305.14314, bitsandbytes layout) or q8_0 (ggml 8-bit blocks of "
     "32). Quantized on load, tensor by tensor (a quantized GGUF is dequantized first).", {0}},
    {"quantization.double_quant", RK_BOOL, OFF(quantization.double_quant), "true", 0, 0, 0, NULL,
     "nf4: also quantize the per-block absmax to 8 bits in blocks of 256 (QLoRA double "
     "quantization: 4.127 instead of 4.5 bits per parameter at block_size 64).", {0}},
    {"quantization.block_size", RK_INT, OFF(quantization.block_size), "64", RF_MIN | RF_MAX, 32,
     4096, NULL,
     "nf4: elements per absmax block, a power of two dividing every quantized row (checked when "
     "the model loads). q8_0 blocks are always 32.", {0}},
    {"quantization.modules", RK_LIST, OFF(quantization.modules),
     "[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]", 0, 0, 0, quant_modules,
     "Weights stored quantized, by Hugging Face module name; lm_head only when not tied to "
     "embed_tokens. Norms, biases and embed_tokens stay F32.", {0}},

    {"data.train", RK_PATHLIST, OFF(data.train), NULL, RF_REQUIRED, 0, 0, NULL,
     "Training data (required): a list of glob patterns of token shards (HDF5, made by `lathe "
     "tokenize`) and/or raw dataset files (.json, .jsonl, .txt — as `lathe tokenize` reads "
     "them, with data.format, data.template, data.max_len and data.on_error). Raw files are "
     "tokenized with the model's tokenizer into data.cache_dir, keyed by the files' SHA-256, "
     "the tokenizer's and the options: a run with unchanged inputs reuses the shards. An entry "
     "may be a mapping {path: GLOB, weight: W, format: F, template: T, max_len: N, "
     "eval_fraction: X, on_error: M}: the raw-file options override data.*'s for its files, "
     "and weights (all entries or none) mix the entries in proportion: each document of an "
     "epoch is drawn from entry i with probability W_i / sum(W), deterministically by "
     "train.seed, a small entry repeating and a large one subsampled (as Hugging Face "
     "datasets' interleave_datasets)." PATH_HELP,
     {0}},
    {"data.eval", RK_PATHLIST, OFF(data.eval), "[]", 0, 0, 0, NULL,
     "Evaluation data, as data.train (shards and/or raw files, entries without weight and "
     "eval_fraction); empty = no evaluation." PATH_HELP, {0}},
    {"data.seq_len", RK_INT, OFF(data.seq_len), "512", RF_MIN | RF_MAX, 8, 1048576, NULL,
     "Tokens per training sequence.", {0}},
    {"data.packing", RK_BOOL, OFF(data.packing), "true", 0, 0, 0, NULL,
     "Pack several documents into each sequence (attention does not cross documents) "
     "instead of padding one document per sequence.", {0}},
    {"data.format", RK_ENUM, OFF(data.format), "auto", 0, 0, 0, record_formats,
     "Raw files: record format, auto (from each file's first record; .txt = one text "
     "document), alpaca, sharegpt, messages or text.", {0}},
    {"data.template", RK_STRING, OFF(data.template_name), NULL, 0, 0, 0, NULL,
     "Raw files: a built-in chat layout (chatml or alpaca) instead of the model's own chat "
     "template; not set = the model's template (alpaca when it has none).", {0}},
    {"data.max_len", RK_INT, OFF(data.max_len), "0", RF_MIN | RF_MAX, 0, 1048576, NULL,
     "Raw files: truncate documents to this many tokens; 0 = no limit.", {0}},
    {"data.on_error", RK_ENUM, OFF(data.on_error), "skip", 0, 0, 0, on_error_modes,
     "Raw files: a malformed record is skipped with a warning naming file:line (skip), or "
     "stops the run (fail).", {0}},
    {"data.eval_fraction", RK_FLOAT, OFF(data.eval_fraction), "0", RF_MIN | RF_MAX |
     RF_MAX_EXCL, 0, 1, NULL,
     "Raw files in data.train: this share of their documents (chosen by a hash of train.seed "
     "and the record number, as `lathe tokenize --eval-fraction`) is held out and evaluated "
     "with data.eval instead of trained on; 0 = none.", {0}},
    {"data.cache_dir", RK_PATH, OFF(data.cache_dir), NULL, 0, 0, 0, NULL,
     "Where raw files' shards are kept; not set = $XDG_CACHE_HOME/lathe/shards "
     "(~/.cache/lathe/shards)." PATH_HELP, {0}},

    {"optim.lr", RK_FLOAT, OFF(optim.lr), "0.0002", RF_MIN | RF_MIN_EXCL, 0, 0, NULL,
     "Peak learning rate of AdamW (reached after schedule.warmup_steps).", {0}},
    {"optim.beta1", RK_FLOAT, OFF(optim.beta1), "0.9", RF_MIN | RF_MAX | RF_MAX_EXCL, 0, 1, NULL,
     "AdamW first-moment decay.", {0}},
    {"optim.beta2", RK_FLOAT, OFF(optim.beta2), "0.999", RF_MIN | RF_MAX | RF_MAX_EXCL, 0, 1,
     NULL, "AdamW second-moment decay.", {0}},
    {"optim.betas", RK_FLOATPAIR, OFF(optim.beta1), NULL, RF_ALIAS | RF_MIN | RF_MAX | RF_MAX_EXCL,
     0, 1, NULL, "Synonym: [beta1, beta2] in one list, e.g. [0.9, 0.999].",
     {"optim.beta1", "optim.beta2"}},
    {"optim.eps", RK_FLOAT, OFF(optim.eps), "1e-08", RF_MIN | RF_MIN_EXCL, 0, 0, NULL,
     "AdamW denominator epsilon.", {0}},
    {"optim.weight_decay", RK_FLOAT, OFF(optim.weight_decay), "0", RF_MIN, 0, 0, NULL,
     "AdamW decoupled weight decay on the adapter weights.", {0}},

    {"schedule.type", RK_ENUM, OFF(schedule.type), "cosine", 0, 0, 0, schedule_types,
     "Learning-rate decay after warm-up: cosine or linear down to schedule.min_lr, or constant.",
     {0}},
    {"schedule.warmup_steps", RK_INT, OFF(schedule.warmup_steps), "0", RF_MIN | RF_MAX, 0,
     LT_RECIPE_STEPS_MAX, NULL,
     "Optimizer steps of linear warm-up from 0 to optim.lr.", {0}},
    {"schedule.min_lr", RK_FLOAT, OFF(schedule.min_lr), "0", RF_MIN, 0, 0, NULL,
     "Learning rate at the end of the decay (at most optim.lr).", {0}},

    {"train.micro_batch_size", RK_INT, OFF(train.micro_batch_size), "4", RF_MIN | RF_MAX, 1,
     65536, NULL, "Sequences per forward/backward pass.", {0}},
    {"train.grad_accum", RK_INT, OFF(train.grad_accum), "1", RF_MIN | RF_MAX, 1, 1048576, NULL,
     "Micro-batches accumulated per optimizer step (batch = micro_batch_size x grad_accum; "
     "grad_accum x micro_batch_size x data.seq_len is at most 268435456 tokens). Per rank when "
     "data-parallel: the global batch is ranks x grad_accum x micro_batch_size "
     "(docs/distributed.md).", {0}},
    {"train.max_steps", RK_INT, OFF(train.max_steps), "0", RF_MIN | RF_MAX, 0,
     LT_RECIPE_STEPS_MAX, NULL,
     "Optimizer steps to run; 0 = train.epochs decides. Do not set both (a --set of one "
     "replaces the other from the file).", {0}},
    {"train.epochs", RK_FLOAT, OFF(train.epochs), "1", RF_MIN | RF_MIN_EXCL | RF_MAX, 0, 1000000,
     NULL,
     "Passes over data.train when train.max_steps is 0; fractions allowed.", {0}},
    {"train.grad_clip", RK_FLOAT, OFF(train.grad_clip), "1", RF_MIN, 0, 0, NULL,
     "Clip the global L2 norm of the adapter gradients to this; 0 = off.", {0}},
    {"train.seed", RK_INT, OFF(train.seed), "42", RF_MIN, 0, 0, NULL,
     "Seed for adapter initialization, dropout and data shuffling.", {0}},
    {"train.log_every", RK_INT, OFF(train.log_every), "1", RF_MIN | RF_MAX, 1,
     LT_RECIPE_STEPS_MAX, NULL,
     "Optimizer steps between progress lines and metrics.jsonl records.", {0}},
    {"train.eval_every", RK_INT, OFF(train.eval_every), "0", RF_MIN | RF_MAX, 0,
     LT_RECIPE_STEPS_MAX, NULL,
     "Optimizer steps between evaluations on data.eval; 0 = only at the end.", {0}},
    {"train.eval_batches", RK_INT, OFF(train.eval_batches), "0", RF_MIN | RF_MAX, 0,
     LT_RECIPE_STEPS_MAX, NULL,
     "Micro-batches per evaluation; 0 = the whole eval set.", {0}},
    {"train.save_every", RK_INT, OFF(train.save_every), "0", RF_MIN | RF_MAX, 0,
     LT_RECIPE_STEPS_MAX, NULL,
     "Optimizer steps between checkpoints; 0 = only at the end.", {0}},
    {"train.threads", RK_INT, OFF(train.threads), "0", RF_MIN | RF_MAX, 0, 1024, NULL,
     "CPU threads; 0 = all cores. Per rank when data-parallel: give each of N ranks on a "
     "machine cores / N.", {0}},
    {"train.device", RK_ENUM, OFF(train.device), "cpu", 0, 0, 0, lt_device_choice_names,
     "Where training runs: cpu, cuda (the GPU of this rank's local rank; exit 2 with the "
     "driver's reason when none is usable) or auto (cuda when a GPU is visible, else cpu). The "
     "default stays cpu until the CUDA path has passed tools/gpu_check.sh on a GPU. "
     "Data-parallel ranks (src/dist) train on the CPU: their CUDA collectives (NCCL) are not "
     "built yet.", {0}},
    {"train.gradient_checkpointing", RK_BOOL, OFF(train.gradient_checkpointing), "false", 0, 0,
     0, NULL,
     "Keep only each transformer block's output during the forward pass and recompute the "
     "block's activations during backward (Chen et al. 2016, arXiv 1604.06174): activation "
     "memory drops from all blocks' activations to their outputs plus one block's, for about "
     "one more forward pass of compute per step. Gradients are unchanged. On CUDA it is on "
     "unless the recipe sets it.", {0}},

    {"output.dir", RK_PATH, OFF(output.dir), NULL, RF_REQUIRED, 0, 0, NULL,
     "Run directory: resolved recipe.yaml, manifest.json, metrics.jsonl, checkpoints/, "
     "adapter/ (required)." PATH_HELP, {0}},
    {"output.exports", RK_LIST, OFF(output.exports), "[]", 0, 0, 0, lt_export_format_names,
     "Serving formats written after training into output.dir/exports/<format>/ (each as "
     "`lathe export` with its defaults): peft, gguf-adapter (llama.cpp), merged-safetensors, "
     "merged-gguf. docs/exports.md says which server loads which.", {0}},
    {"output.publish", RK_PATH, OFF(output.publish), NULL, 0, 0, 0, NULL,
     "Directory that serves the adapter: after training (and output.gate) the adapter, "
     "output.exports and manifest.json are copied into a new version directory "
     "publish/<UTC time>-<adapter SHA-256 prefix>/ and the symlink publish/current is switched "
     "to it atomically (rename(2)); a server reading publish/current never sees a half-written "
     "adapter. Checked for writability before training. Unset = nothing published."
     PATH_HELP, {0}},
    {"output.keep", RK_INT, OFF(output.keep), "3", RF_MIN | RF_MAX, 1, 1000, NULL,
     "Published versions kept (the current one included); older ones are removed after a "
     "switch, so earlier adapters stay for rollback.", {0}},
    {"output.gate.metric", RK_ENUM, OFF(output.gate.metric), "none", 0, 0, 0, gate_metrics,
     "Before publishing, compare the new adapter with a baseline on data.eval: none (no gate) "
     "or eval_loss. The baseline is the adapter training started from: lora.init_from's "
     "(last night's), else the bare base (a fresh adapter's B is zero). Both figures and the "
     "decision go in the manifest and the log; a refused adapter is kept in the run directory, "
     "not published, and `lathe train` exits 4.", {0}},
    {"output.gate.max_regression", RK_FLOAT, OFF(output.gate.max_regression), "0", RF_MIN, 0,
     0, NULL,
     "eval_loss: refuse when the new eval loss exceeds the baseline's by more than this "
     "(absolute, nats per token).", {0}},
    {"output.gate.min_improvement", RK_FLOAT, OFF(output.gate.min_improvement), "0", RF_MIN |
     RF_MAX | RF_MAX_EXCL, 0, 1, NULL,
     "eval_loss: also refuse unless the eval loss fell by at least this fraction of the "
     "baseline's (0.01 = 1%).", {0}},
};
/* clang-format on */
