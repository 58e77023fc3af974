/*
 * `lathe tokenize` as a library function: dataset records -> token ids + loss masks -> train /
 * eval shards. One pass over the inputs; memory holds one shard per split plus one record.
 * The eval split is a pure function of (seed, record number), see lt_tokenize_run in data.h.
 */
#include "data.h"

#include <stdlib.h>
#include <string.h>

/* A well-mixed 64-bit hash of x: splitmix64's first output from state x (core.h). */
static uint64_t mix64(uint64_t x) { return lt_splitmix64_mix(x + LT_SPLITMIX64_GOLDEN); }

static bool goes_to_eval(uint64_t seed, int64_t record, double fraction) {
    if (fraction <= 0) return false;
    uint64_t h = mix64(seed ^ mix64((uint64_t)record));
    return (double)(h >> 11) * 0x1.0p-53 < fraction;
}

typedef struct {
    const lt_tokenize_opts *o;
    lt_tokenize_report *r;
    lt_tokenizer *tok;
    lt_template tpl;
    lt_chat_jinja *jinja; /* the model's own template; NULL: the tpl layout */
    bool tpl_ready;
    const char *path;     /* the input being read, for record errors */
    lt_shard_writer *train, *eval;
    lt_shard_meta meta;
    lt_tokens ids;
    int64_t record_no; /* across all inputs */
} tk_ctx;

static lt_status ensure_template(tk_ctx *c) {
    if (c->tpl_ready) return LT_OK;
    lt_status st;
    if (c->o->template_name) { /* a built-in layout, by name */
        st = lt_template_from_name(&c->tpl, c->o->template_name);
    } else if (lt_tokenizer_chat_template(c->tok)) { /* the model's own, as transformers */
        st = lt_chat_jinja_open(&c->jinja, c->tok, c->o->model, NULL);
    } else { /* a base model without a template: the Alpaca layout */
        c->tpl = LT_TEMPLATE_ALPACA;
        st = LT_OK;
    }
    if (st) return st;
    c->tpl_ready = true;
    snprintf(c->r->template_name, sizeof c->r->template_name, "%s",
             c->jinja ? "model" : lt_template_name(c->tpl));
    return LT_OK;
}

static lt_status add_record(tk_ctx *c, const lt_record *rec) {
    lt_tokens *v = &c->ids;
    v->n = 0;
    if (rec->msgs) {
        lt_status st = ensure_template(c);
        if (st) return st;
        if (!c->jinja) {
            lt_chat_render(c->tok, c->tpl, rec->msgs, rec->n_msgs, false, v);
        } else if ((st = lt_chat_jinja_render(c->jinja, rec->tmsgs, rec->n_tmsgs, rec->tools, false, v))) {
            /* the template refused this record (raise_exception, e.g. Gemma's system role) */
            bool calls = rec->tools != NULL; /* or a message with tool_calls / tool_call_id */
            for (size_t i = 0; i < rec->n_tmsgs && !calls; i++) calls = rec->tmsgs[i].fields;
            if (calls) {
                char msg[1200];
                snprintf(msg, sizeof msg, "%s", lt_error_message());
                st = lt_error_set(st, "%s; hint: the record has tools or tool calls, which this "
                                  "template may not take; --template NAME folds them into the "
                                  "text instead", msg);
            }
            st = lt_error_wrap(st, "%s:%lld: record %lld", c->path, (long long)rec->line,
                               (long long)rec->index);
            if (c->o->on_error == LT_ON_ERROR_FAIL) return st;
            lt_warn("skipping record: %s", lt_error_message());
            c->r->n_skipped++;
            c->record_no++;
            return LT_OK;
        }
    } else {
        if (lt_tokenizer_add_bos(c->tok) && lt_tokenizer_bos(c->tok) >= 0)
            lt_tokens_push(v, lt_tokenizer_bos(c->tok), 1);
        lt_tokenizer_encode(c->tok, rec->text, rec->text_len, false, 1, v);
        if (lt_tokenizer_eos(c->tok) >= 0) lt_tokens_push(v, lt_tokenizer_eos(c->tok), 1);
    }
    int64_t record = c->record_no++;
    if (c->o->max_len > 0 && (int64_t)v->n > c->o->max_len) {
        v->n = (size_t)c->o->max_len;
        c->r->n_truncated++;
    }
    int64_t trainable = 0;
    for (size_t i = 1; i < v->n; i++) trainable += v->mask[i] != 0; /* the first is never a target */
    if (trainable == 0) {
        c->r->n_dropped++;
        return LT_OK;
    }
    bool eval = goes_to_eval(c->o->seed, record, c->o->eval_fraction);
    lt_status st = lt_shard_writer_add(eval ? c->eval : c->train, v->ids,
                                       rec->msgs ? v->mask : NULL, v->n);
    if (st) return st;
    c->r->n_docs++;
    if (eval) c->r->n_eval_docs++;
    else c->r->n_train_docs++;
    c->r->n_tokens += (int64_t)v->n;
    for (size_t i = 0; i < v->n; i++) c->r->n_trainable += v->mask[i] != 0;
    return LT_OK;
}

static lt_status tokenize_file(tk_ctx *c, const char *path) {
    lt_record_reader *rd;
    c->path = path;
    lt_status st = lt_record_reader_open(&rd, path, c->o->format, c->o->on_error);
    if (st) return st;
    lt_record rec;
    bool got;
    int64_t n0 = c->r->n_records;
    while (!(st = lt_record_reader_next(rd, &rec, &got)) && got) {
        c->r->n_records++;
        if ((st = add_record(c, &rec))) break;
    }
    c->r->n_skipped += lt_record_reader_skipped(rd);
    if (!st)
        lt_info("%s: %lld records (%s), %lld skipped", path,
                (long long)(c->r->n_records - n0),
                lt_record_format_name(lt_record_reader_format(rd)),
                (long long)lt_record_reader_skipped(rd));
    lt_record_reader_free(rd);
    return st;
}

lt_status lt_tokenize_run(const lt_tokenize_opts *o, lt_tokenize_report *r) {
    memset(r, 0, sizeof *r);
    if (!o->model || !o->output_dir || o->n_inputs == 0)
        return lt_error_set(LT_ERR_USAGE, "tokenize: --model, --input and --output are required");
    if (!(o->eval_fraction >= 0 && o->eval_fraction < 1))
        return lt_error_set(LT_ERR_USAGE, "tokenize: --eval-fraction %g must be in [0, 1)",
                            o->eval_fraction);
    if (o->max_len < 0 || o->shard_tokens < 0)
        return lt_error_set(LT_ERR_USAGE, "tokenize: --max-len and --shard-tokens must be >= 0");
    const char *name = o->name && *o->name ? o->name : "train";
    if (strchr(name, '/') || strlen(name) > 40)
        return lt_error_set(LT_ERR_USAGE, "tokenize: --name '%s' must be a plain file prefix "
                            "(no '/', at most 40 characters)", name);
    snprintf(r->train_name, sizeof r->train_name, "%s", name);
    if (!strcmp(name, "train")) snprintf(r->eval_name, sizeof r->eval_name, "eval");
    else snprintf(r->eval_name, sizeof r->eval_name, "%s-eval", name);
    if (o->template_name) { /* usage errors before any work */
        lt_template t;
        lt_status st = lt_template_from_name(&t, o->template_name);
        if (st) return st;
    }

    tk_ctx c = {.o = o, .r = r};
    lt_status st = lt_tokenizer_load(&c.tok, o->model);
    if (st) return st;

    c.meta.vocab_size = lt_tokenizer_vocab_size(c.tok);
    c.meta.bos_id = lt_tokenizer_bos(c.tok);
    c.meta.eos_id = lt_tokenizer_eos(c.tok);
    c.meta.pad_id = lt_tokenizer_pad(c.tok);
    snprintf(c.meta.tokenizer_sha256, sizeof c.meta.tokenizer_sha256, "%s",
             lt_tokenizer_sha256(c.tok));
    snprintf(c.meta.created_by, sizeof c.meta.created_by, "lathe tokenize");
    st = lt_shard_writer_open(&c.train, o->output_dir, r->train_name, &c.meta, o->shard_tokens,
                              o->deflate);
    if (!st)
        st = lt_shard_writer_open(&c.eval, o->output_dir, r->eval_name, &c.meta,
                                  o->shard_tokens, o->deflate);
    for (size_t i = 0; i < o->n_inputs && !st; i++) st = tokenize_file(&c, o->inputs[i]);
    if (!st && r->n_docs == 0)
        st = lt_error_set(LT_ERR_DATA, "%s: no documents to write (%lld records, %lld skipped, "
                          "%lld without trainable tokens) (hint: check --format and the inputs)",
                          o->inputs[0], (long long)r->n_records, (long long)r->n_skipped,
                          (long long)r->n_dropped);
    if (!st) {
        lt_shard_writer *w = c.train;
        c.train = NULL;
        st = lt_shard_writer_close(w, &r->n_train_shards);
    }
    if (!st) {
        lt_shard_writer *w = c.eval;
        c.eval = NULL;
        st = lt_shard_writer_close(w, &r->n_eval_shards);
    }
    lt_shard_writer_free(c.train);
    lt_shard_writer_free(c.eval);
    lt_tokens_free(&c.ids);
    lt_chat_jinja_free(c.jinja);
    lt_tokenizer_free(c.tok);
    return st;
}
