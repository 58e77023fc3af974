/*
 * data — token shards (HDF5, DESIGN.md §5, schema in docs/shards.md), the training/eval loader
 * (deterministic shuffle, packing, micro-batches, resumable cursor), dataset records (alpaca,
 * ShareGPT, OpenAI messages, plain text; JSON arrays or JSONL), and `lathe tokenize` as a library
 * function.
 *
 * Invariants:
 *  - A shard always holds whole documents; a document is never split across shards.
 *  - Every shard is validated completely at open (attributes, dtypes, ranks, offsets, token range,
 *    mask length); after a successful open the loader never meets malformed data.
 *  - Everything the loader produces is a pure function of (shard files in sorted glob order,
 *    options, cursor): the same cursor gives the same batches on every machine.
 * Errors a user can cause are LT_ERR_DATA with the file and the dataset/attribute (or the record's
 * file:line) named, plus a hint. HDF5's own error printing is silenced by every entry point here.
 */
#ifndef LATHE_DATA_H
#define LATHE_DATA_H

#include "../core/core.h"
#include "../tokenizer/tokenizer.h"

/* ---- shards: metadata ---------------------------------------------------------------------- */

#define LT_SHARD_FORMAT "lathe-tokens"
#define LT_SHARD_VERSION 1
#define LT_SHARD_SIDECAR_EXT ".sha256" /* NAME-NNNNN.h5.sha256: the shard's SHA-256 (sha256sum format) */
#define LT_SHARD_DEFAULT_TOKENS (16 * 1024 * 1024) /* rollover budget: 64 MiB of uint32 ids */
#define LT_SHARD_CHUNK 65536                       /* HDF5 chunk length of tokens / loss_mask */

/* The file attributes of a shard (DESIGN.md §5). Ids are -1 when the tokenizer has none. */
typedef struct {
    int64_t vocab_size;        /* 1 .. 2^31-1 (ids are int32 in batches) */
    int64_t bos_id, eos_id, pad_id;
    char tokenizer_sha256[65]; /* 64 lowercase hex + NUL ("" allowed for hand-made shards) */
    char created_by[128];      /* producer, e.g. "lathe tokenize 0.1" */
} lt_shard_meta;

/* ---- shards: writer ------------------------------------------------------------------------ */

typedef struct lt_shard_writer lt_shard_writer;

/* Start writing shards DIR/NAME-00000.h5, DIR/NAME-00001.h5, ... (DIR is created if missing).
 * A shard is closed and a new one started when adding the next document would take it over
 * `shard_tokens` tokens (<= 0: LT_SHARD_DEFAULT_TOKENS); a single document larger than the budget
 * gets a shard of its own. `deflate` 0 = uncompressed, 1..9 = HDF5 deflate (gzip) level on the
 * chunked datasets. Each shard is built as an HDF5 image in memory, then its checksum sidecar
 * NAME-NNNNN.h5.sha256 and the shard are each written under "<path>.tmp.<pid>", fsynced and
 * renamed, so a crash or a full disk never leaves a truncated NAME-NNNNN.h5 or one without its
 * sidecar. Memory: the shard's tokens and mask, plus its file image while it is written.
 * Errors: LT_ERR_IO (cannot create DIR / a file, naming it), LT_ERR_OOM (the image),
 * LT_ERR_USAGE (meta->vocab_size <= 0). */
lt_status lt_shard_writer_open(lt_shard_writer **out, const char *dir, const char *name,
                               const lt_shard_meta *meta, int64_t shard_tokens, int deflate);
/* Append one document of n token ids (each in [0, vocab_size), else LT_ERR_DATA naming the id)
 * with an optional loss mask (NULL = every token trainable; values are stored as 0/1). A shard
 * gets a `loss_mask` dataset when any of its documents came with a mask. */
lt_status lt_shard_writer_add(lt_shard_writer *w, const int32_t *ids, const uint8_t *mask,
                              size_t n);
/* Write the last shard and finish. *n_shards (may be NULL) receives the number of files written
 * (0 when no document was added: no file is created). On success, older DIR/NAME-NNNNN.h5 files
 * numbered >= that count (from an earlier run into the same directory) are removed, so
 * NAME-*.h5 names exactly this run's shards. The writer is freed in every case. */
lt_status lt_shard_writer_close(lt_shard_writer *w, int *n_shards);
/* Abandon: remove the temporary file of the shard in progress (completed shards stay). NULL ok. */
void lt_shard_writer_free(lt_shard_writer *w);

/* ---- shards: reader ------------------------------------------------------------------------ */

/* Expectations checked at open (zero/NULL = not checked): the model's vocabulary size and its
 * tokenizer SHA-256 (lt_tokenizer_sha256). A mismatch is LT_ERR_DATA naming both values. */
typedef struct {
    int64_t vocab_size;
    const char *tokenizer_sha256;
} lt_shard_expect;

typedef struct lt_shard {
    char *path;
    lt_shard_meta meta;
    int64_t n_tokens;      /* N */
    int64_t n_docs;        /* D */
    uint64_t *doc_offsets; /* [D+1], 0 .. N, nondecreasing (owned) */
    bool has_mask;         /* a loss_mask dataset is present */
    int64_t n_trainable;   /* tokens with mask 1 (N when there is no mask) */
    int64_t n_targets;     /* next-token targets >= 0 the loader will produce (mask-1 tokens
                            * that are not the first of their document) */
    int64_t h5_file, h5_tokens, h5_mask; /* open HDF5 ids (hid_t); h5_mask < 0 without a mask */
    char sha256[65];       /* SHA-256 of the file, verified against its sidecar; "" without one */
} lt_shard;

/* Open and validate one shard completely: format == "lathe-tokens", version == 1, attribute
 * types (strings / integers), `tokens` uint32 rank 1, `doc_offsets` uint64 rank 1 length >= 1 and
 * monotone from 0 to N, every token < vocab_size (read in chunks), `loss_mask` (if present) uint8
 * rank 1 with N values of 0 or 1, bos/eos/pad in [-1, vocab_size), then `expect`. `expect` may be
 * NULL. Errors: LT_ERR_DATA "<file>: attribute|dataset '<name>': <problem> (hint: ...)". */
/* Before HDF5 touches the file: a shard with a sidecar PATH.sha256 (written by `lathe tokenize`)
 * must match it; one without is first opened and validated in a forked child, so that a libhdf5
 * crash on damaged bytes is an LT_ERR_DATA naming the shard, not a dead process (shard_check.c). */
lt_status lt_shard_open(lt_shard **out, const char *path, const lt_shard_expect *expect);
/* The SHA-256 a shard's sidecar (PATH.sha256) records, as 64 lowercase hex + NUL, without hashing
 * the shard (lt_shard_open verifies it). *found = false and LT_OK when there is no sidecar;
 * LT_ERR_DATA naming both files when it is not a small regular file starting with 64 hex. */
lt_status lt_shard_sidecar_read(const char *shard, bool *found, char hex[65]);
void lt_shard_close(lt_shard *s);
/* Read tokens [start, start+n) of the shard into ids (and the mask into mask when non-NULL: 1s
 * when the shard has none). Bounds are the caller's invariant. LT_ERR_IO if HDF5 fails. */
lt_status lt_shard_read(const lt_shard *s, int64_t start, int64_t n, int32_t *ids, uint8_t *mask);

/* Expand shell globs (glob(3), each pattern's matches sorted, then concatenated; duplicates
 * removed). A pattern with no match is LT_ERR_DATA naming the pattern. *paths is a malloc'ed
 * array of malloc'ed strings; free with lt_paths_free. */
lt_status lt_shard_glob(char ***paths, size_t *n_paths, const char *const *patterns,
                        size_t n_patterns);
void lt_paths_free(char **paths, size_t n);

/* ---- loader -------------------------------------------------------------------------------- */

/* A micro-batch. Rows never span epochs; at the end of an epoch unused rows are all padding. */
typedef struct {
    int B, T;                 /* micro-batch rows, seq_len */
    int32_t *tokens;          /* [B, T] input ids (pad_id in padding) */
    int32_t *targets;         /* [B, T] next-token target or -1 (no loss: doc end, padding, loss_mask 0 on the target) */
    int32_t *pos;             /* [B, T] position within its document piece, restarting at 0 */
    int32_t *doc;             /* [B, T] document id within the row (for attention masking); padding gets its own id */
    int64_t n_target_tokens;  /* count of targets >= 0 */
    int n_rows_used;          /* rows holding at least one document token (the rest are padding) */
} lt_batch;

/* Allocate the four [B, T] arrays (aborts on host OOM). lt_batch_free accepts NULL / zeroed. */
void lt_batch_init(lt_batch *b, int B, int T);
void lt_batch_free(lt_batch *b);

typedef struct {
    const char *const *patterns; /* shard paths or globs, e.g. "data/train-*.h5" */
    size_t n_patterns;
    const double *weights;       /* [n_patterns] mixture weights (> 0), or NULL: one dataset */
    int seq_len;                 /* T, >= 1 */
    int batch_rows;              /* B, >= 1 */
    bool shuffle;                /* per-epoch document permutation by seed; false = file order */
    bool pack;                   /* pack documents back to back; false = one document per row */
    uint64_t seed;
    lt_shard_expect expect;      /* vocab / tokenizer checks for every shard */
} lt_loader_opts;

/* The deterministic cursor: where the next row starts. Restoring it (with the same shards and
 * options) continues bit-exactly. `seed` and `n_docs` are stamps checked by lt_loader_set_state. */
typedef struct {
    int64_t epoch;      /* completed passes over the data */
    int64_t doc_index;  /* position in this epoch's (shuffled) order */
    int64_t doc_offset; /* token offset inside that document (a split document) */
    uint64_t seed;
    int64_t n_docs;
} lt_loader_state;

/* Dataset totals for planning (steps from epochs). */
typedef struct {
    int64_t n_shards;
    int64_t n_docs;            /* documents with at least one token */
    int64_t n_tokens;
    int64_t n_trainable;       /* tokens with loss_mask 1 */
    int64_t n_targets;         /* targets >= 0 per epoch (masked next-token pairs) */
    int64_t rows_per_epoch;    /* exact for pack=false; for pack=true exact for epoch 0, and later
                                * epochs differ by at most the number of documents (a document
                                * that ends exactly at a row end saves one position) */
    int64_t batches_per_epoch; /* ceil(rows_per_epoch / B) */
} lt_loader_totals;

typedef struct lt_loader lt_loader;

/* Open every shard matching the patterns (validated, see lt_shard_open; all must agree on
 * vocab_size, tokenizer_sha256 and pad_id — else LT_ERR_DATA naming both files), number the
 * documents globally in sorted-path order and position the cursor at epoch 0, document 0.
 * Shuffle: epoch e uses a Fisher–Yates permutation drawn from xoshiro256** (Blackman & Vigna,
 * https://prng.di.unimi.it/) seeded by splitmix64 from (seed, e); each epoch reshuffles.
 * Packing (T = seq_len): a row is filled from the cursor with document pieces; a piece placed at
 * a free span of r positions takes min(r, left) input tokens; if the document still has more
 * than one token after them it is split: the piece's last target is the next token and the next
 * piece starts at that token (positions restart at 0). Targets: tokens[t+1] of the same document
 * when its loss_mask is 1 (or there is no mask), else -1; the last token of a document has -1.
 * Without packing each row holds one piece and the rest is padding (pad_id, target -1, pos 0,
 * its own doc id).
 * Weights (with shuffle): each pattern is a dataset of its own and an epoch is as many documents
 * as all of them hold, each drawn from dataset i with probability weights[i] / sum(weights) (as
 * Hugging Face datasets' interleave_datasets draws examples) and taking that dataset's next
 * document in its own shuffled order — reshuffled each time it runs out, so that a small dataset
 * with a large weight repeats and a large one with a small weight is subsampled. The draws come
 * from a xoshiro256** stream seeded from (seed, e) alone, so the cursor stays (epoch, position).
 * Errors: LT_ERR_USAGE for bad options, LT_ERR_DATA for shards / no tokens (with weights: a
 * dataset without documents, or a shard two patterns match). */
lt_status lt_loader_open(lt_loader **out, const lt_loader_opts *o);
void lt_loader_free(lt_loader *l);

/* Fill b (lt_batch_init'ed with B = batch_rows, T = seq_len) from the cursor and advance it.
 * When the epoch's documents run out the remaining rows are padding, *epoch_end is set, and the
 * cursor moves to the start of the next epoch (never returns an empty batch). An eval pass:
 * shuffle=false, call until *epoch_end. Errors: LT_ERR_IO if a shard read fails. */
lt_status lt_loader_next(lt_loader *l, lt_batch *b, bool *epoch_end);
/* Advance the cursor exactly as lt_loader_next would, without reading any shard (data
 * parallelism: each rank passes over the micro-batches the other ranks train on, so every rank's
 * cursor is the global one). Never fails: the walk needs only the document lengths. */
void lt_loader_skip(lt_loader *l, bool *epoch_end);

void lt_loader_totals_get(const lt_loader *l, lt_loader_totals *t);
lt_loader_state lt_loader_get_state(const lt_loader *l);
/* Restore a cursor; LT_ERR_DATA when its seed / n_docs stamps differ from this loader's or it
 * points outside the data (a checkpoint from another dataset). */
lt_status lt_loader_set_state(lt_loader *l, const lt_loader_state *s);
/* Back to the first document of the current epoch (for repeated evaluation passes). */
void lt_loader_rewind(lt_loader *l);
/* The shards' shared metadata (pad id, vocab size, ...). */
const lt_shard_meta *lt_loader_meta(const lt_loader *l);

/* ---- dataset records (JSON / JSONL / text) ------------------------------------------------- */

typedef enum {
    LT_FORMAT_AUTO = 0, /* from the first record's keys; a .txt file is text */
    LT_FORMAT_ALPACA,   /* instruction, input?, output, system?, history? ([[q, a], ...]);
                         * also question/answer (GSM8K) */
    LT_FORMAT_SHAREGPT, /* conversations: [{from, value}], system?, tools? */
    LT_FORMAT_MESSAGES, /* messages: [{role, content}] (OpenAI) */
    LT_FORMAT_TEXT,     /* {"text": ...}, or a plain .txt file = one document */
    LT_FORMAT_COUNT
} lt_record_format;

/* By name ("auto", "alpaca", "sharegpt", "messages", "text"); LT_ERR_USAGE listing them. */
lt_status lt_record_format_from_name(lt_record_format *out, const char *name);
const char *lt_record_format_name(lt_record_format f);

typedef enum { LT_ON_ERROR_SKIP = 0, LT_ON_ERROR_FAIL } lt_on_error;

/* Does a path or glob name raw dataset files (.json, .jsonl, .txt: records for `lathe tokenize`)
 * rather than token shards? By its extension only. */
bool lt_data_is_raw(const char *pattern);

/* One record. Chat records have msgs/n_msgs and tmsgs/n_tmsgs (>= 1, at least one assistant
 * turn); text records have msgs == tmsgs == NULL and text/text_len. Strings are owned by the reader and valid until
 * the next lt_record_reader_next / _free. */
typedef struct {
    const lt_message *msgs; /* for the built-in layouts: tools folded into the system message,
                             * a tool call's JSON as the assistant's content */
    size_t n_msgs;
    const lt_message *tmsgs; /* the same conversation as the record holds it, for the model's
                              * Jinja template: system field first, tool calls in `fields` */
    size_t n_tmsgs;
    const char *tools; /* NULL or the record's tools as a JSON array, for the Jinja template */
    const char *text;
    size_t text_len;
    int64_t line;  /* 1-based line where the record starts */
    int64_t index; /* 0-based record number in the file (malformed ones included) */
} lt_record;

typedef struct lt_record_reader lt_record_reader;

/* Read `path` whole: a JSON array of objects (first non-space byte '['), JSONL (one object per
 * line, blank lines ignored), or with LT_FORMAT_TEXT / AUTO a .txt file (one text document).
 * A JSON syntax error in an array file is fatal (LT_ERR_DATA "file:line:col: ..."). AUTO detects
 * from the first record's keys (conversations → sharegpt, messages → messages, instruction or
 * question → alpaca, text → text); otherwise LT_ERR_DATA with a hint to pass --format.
 * Errors: LT_ERR_IO unreadable file, LT_ERR_DATA as above. */
lt_status lt_record_reader_open(lt_record_reader **out, const char *path, lt_record_format fmt,
                                lt_on_error on_error);
/* Next well-formed record; *got = false at the end. A malformed record (bad JSON line, wrong
 * field types, unknown role, empty conversation, no assistant turn) is "file:line: problem":
 * with SKIP it is logged as a warning, counted and skipped; with FAIL it returns LT_ERR_DATA. */
lt_status lt_record_reader_next(lt_record_reader *r, lt_record *rec, bool *got);
lt_record_format lt_record_reader_format(const lt_record_reader *r); /* resolved format */
int64_t lt_record_reader_skipped(const lt_record_reader *r);
/* The first malformed record's message ("" if none), for summaries. */
const char *lt_record_reader_first_error(const lt_record_reader *r);
void lt_record_reader_free(lt_record_reader *r);

/* ---- lathe tokenize ------------------------------------------------------------------------ */

typedef struct {
    const char *model;              /* GGUF file or HF directory: its tokenizer and template */
    const char *const *inputs;      /* dataset files (JSON, JSONL, .txt) */
    size_t n_inputs;
    const char *output_dir;         /* created if missing */
    lt_record_format format;        /* LT_FORMAT_AUTO: per file, from its first record */
    const char *template_name;      /* "chatml" | "alpaca"; NULL = detect from the GGUF */
    int64_t max_len;                /* truncate documents to this many tokens; 0 = no limit */
    int64_t shard_tokens;           /* shard rollover budget; 0 = LT_SHARD_DEFAULT_TOKENS */
    double eval_fraction;           /* [0, 1): share of documents written to the eval shards */
    lt_on_error on_error;
    uint64_t seed;                  /* eval assignment */
    const char *name;               /* train shard prefix; NULL = "train" */
    int deflate;                    /* 0..9 */
} lt_tokenize_opts;

typedef struct {
    int64_t n_records;              /* well-formed records read */
    int64_t n_skipped;              /* malformed records skipped (on_error = skip) */
    int64_t n_docs, n_train_docs, n_eval_docs;
    int64_t n_tokens, n_trainable;  /* over written documents */
    int64_t n_truncated;            /* documents cut to max_len */
    int64_t n_dropped;              /* documents left with no trainable token (after truncation) */
    int n_train_shards, n_eval_shards;
    char template_name[16];         /* chat template used ("" when only text was seen) */
    char train_name[64], eval_name[64]; /* shard prefixes: DIR/<train_name>-NNNNN.h5 */
} lt_tokenize_report;

/* Tokenize every input into shards: chat records go through lt_chat_render with the template
 * (named, or detected from the GGUF's tokenizer.chat_template: none = alpaca) and its loss mask;
 * text documents are BOS (when the tokenizer adds one) + text + EOS, all trainable. Documents
 * are assigned to eval with probability eval_fraction by a hash of (seed, record number across
 * all inputs), so the split is deterministic and independent of shard sizes. Train shards are
 * DIR/NAME-*.h5 (NAME default "train"), eval shards DIR/eval-*.h5 (NAME-eval-*.h5 for another
 * NAME). r is filled even on failure (counts so far). Errors: LT_ERR_USAGE bad options,
 * LT_ERR_MODEL / LT_ERR_IO for the model, LT_ERR_DATA for inputs (on_error = fail, an
 * unrecognized chat template, or no document at all), LT_ERR_IO writing shards. */
lt_status lt_tokenize_run(const lt_tokenize_opts *o, lt_tokenize_report *r);

#endif
