/* Raw dataset files in a recipe's data.train / data.eval (issue 11): each entry's files are
 * tokenized with the model's tokenizer into a shard cache keyed by what decides the tokens — the
 * SHA-256 of each input file in order, the tokenizer's checksum and the entry's options (format,
 * template, max_len, on_error, eval_fraction, each the entry's own or data.*'s) — so a nightly
 * run with unchanged inputs reuses last night's shards and a changed file or tokenizer is
 * tokenized again. A cache entry is built under a temporary name and renamed whole, with its
 * inputs.json last inside it; the loader then verifies each shard's checksum sidecar. */
#include "run.h"

#include <glob.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What decides the tokens of one entry's raw files: the entry's own settings, else data.*'s. */
typedef struct {
    lt_record_format format;
    const char *template_name; /* NULL: the model's template */
    int64_t max_len;
    lt_on_error on_error;
    double eval_fraction; /* raw training files only; 0 for evaluation files */
} raw_opts;

static raw_opts entry_opts(const lt_recipe *r, const lt_data_entry *e, bool train) {
    raw_opts o = {.format = (lt_record_format)(e->format >= 0 ? e->format : r->data.format),
                  .template_name = e->template_name ? e->template_name : r->data.template_name,
                  .max_len = e->max_len >= 0 ? e->max_len : r->data.max_len,
                  .on_error = (lt_on_error)(e->on_error >= 0 ? e->on_error : r->data.on_error),
                  .eval_fraction = e->eval_fraction >= 0 ? e->eval_fraction
                                                         : r->data.eval_fraction};
    if (!train) o.eval_fraction = 0;
    return o;
}

/* Tokenize (or reuse) the raw files of data.<role>[idx] into the cache; *pattern receives the
 * glob of its shards, held_out that of its held-out evaluation shards ("" when none). */
static lt_status prepare_entry(lt_run *run, const char *role, int idx, double weight,
                               const lt_recipe_list *raw, const raw_opts *o, const char *tok_sha,
                               char *pattern, size_t cap, char *held_out, size_t held_cap) {
    const lt_recipe *r = run->r;
    lt_status st = LT_OK;
    /* the eval fraction splits raw training files only; the held-out part feeds evaluation */
    const double fraction = o->eval_fraction;
    /* the key: format version, tokenizer, options, role, then each input's checksum in order */
    size_t kcap = 512 + strlen(o->template_name ? o->template_name : "") + (size_t)raw->n * 80;
    size_t kn = 0;
    char *key_text = lt_xmalloc(kcap);
    kn += (size_t)snprintf(key_text + kn, kcap - kn, "lathe-shards-1\ntokenizer %s\nformat %s\n"
                           "template %s\nmax_len %lld\non_error %d\nrole %s\n"
                           "eval_fraction %.17g seed %lld\n", tok_sha,
                           lt_record_format_name(o->format),
                           o->template_name ? o->template_name : "(model)",
                           (long long)o->max_len, (int)o->on_error, role, fraction,
                           (long long)r->train.seed);
    json_t *inputs = json_array();
    for (int i = 0; i < raw->n && !st; i++) {
        char sha[65];
        if ((st = lt_require_regular(raw->items[i], LT_ERR_DATA, "dataset")) ||
            (st = lt_sha256_file(raw->items[i], sha)))
            break;
        kn += (size_t)snprintf(key_text + kn, kcap - kn, "input %s\n", sha);
        json_t *e = json_object();
        json_object_set_new(e, "path", json_string(raw->items[i]));
        json_object_set_new(e, "sha256", json_string(sha));
        json_array_append_new(inputs, e);
    }
    char key[65];
    lt_sha256_hex(key_text, kn, key);
    free(key_text);
    if (st) {
        json_decref(inputs);
        return st;
    }
    char root[PATH_MAX], dir[PATH_MAX + 32], marker[PATH_MAX + 48];
    if (r->data.cache_dir) snprintf(root, sizeof root, "%s", r->data.cache_dir);
    else lt_cache_dir(root, sizeof root, "shards");
    snprintf(dir, sizeof dir, "%s/%.24s", root, key);
    snprintf(marker, sizeof marker, "%s/inputs.json", dir);
    snprintf(pattern, cap, "%s/train-*.h5", dir);
    if (held_out && fraction > 0) snprintf(held_out, held_cap, "%s/eval-*.h5", dir);
    else if (held_out) held_out[0] = 0;
    json_t *entry = json_object();
    json_object_set_new(entry, "role", json_string(role));
    json_object_set_new(entry, "entry", json_integer(idx + 1));
    if (weight > 0) json_object_set_new(entry, "weight", json_real(weight));
    json_object_set_new(entry, "inputs", inputs);
    json_object_set_new(entry, "cache", json_string(dir));
    if (access(marker, F_OK) == 0) {
        lt_info("data.%s[%d]: %d raw file%s unchanged since tokenized (same checksums, tokenizer "
                "and options); reusing the shards in %s", role, idx + 1, raw->n,
                raw->n == 1 ? "" : "s", dir);
        json_object_set_new(entry, "reused", json_true());
    } else {
        char tmp[PATH_MAX + 64];
        snprintf(tmp, sizeof tmp, "%s/.%.24s.tmp.%ld", root, key, (long)getpid());
        lt_remove_tree(tmp);
        lt_info("data.%s[%d]: tokenizing %d raw file%s into %s", role, idx + 1, raw->n,
                raw->n == 1 ? "" : "s", dir);
        lt_tokenize_opts to = {.model = r->model.path,
                               .inputs = (const char *const *)raw->items,
                               .n_inputs = (size_t)raw->n,
                               .output_dir = tmp,
                               .format = o->format,
                               .template_name = o->template_name,
                               .max_len = o->max_len,
                               .on_error = o->on_error,
                               .eval_fraction = fraction,
                               .seed = (uint64_t)r->train.seed};
        lt_tokenize_report rep;
        st = lt_tokenize_run(&to, &rep);
        if (!st) {
            lt_info("data.%s[%d]: %lld records, %lld documents, %lld tokens (%lld trained); %lld "
                    "malformed records skipped", role, idx + 1, (long long)rep.n_records,
                    (long long)rep.n_docs, (long long)rep.n_tokens, (long long)rep.n_trainable,
                    (long long)rep.n_skipped);
            json_t *m = json_object();
            json_object_set_new(m, "key", json_string(key));
            json_object_set_new(m, "inputs", json_deep_copy(inputs));
            json_object_set_new(m, "documents", json_integer(rep.n_docs));
            json_object_set_new(m, "tokens", json_integer(rep.n_tokens));
            json_object_set_new(m, "skipped_records", json_integer(rep.n_skipped));
            char *text = json_dumps(m, JSON_INDENT(2));
            char tm[PATH_MAX + 96];
            snprintf(tm, sizeof tm, "%s/inputs.json", tmp);
            st = lt_write_file_atomic(tm, text, strlen(text));
            free(text);
            json_decref(m);
        }
        if (!st) {
            st = lt_dir_publish(tmp, dir, false);
            if (st && access(marker, F_OK) == 0) st = LT_OK; /* another run made it meanwhile */
        }
        lt_remove_tree(tmp);
        json_object_set_new(entry, "reused", json_false());
        if (st) {
            json_decref(entry);
            return lt_error_wrap(st, "%s: data.%s[%d]", r->source ? r->source : "recipe", role,
                                 idx + 1);
        }
    }
    char first_eval[PATH_MAX + 48];
    snprintf(first_eval, sizeof first_eval, "%s/eval-00000.h5", dir);
    if (fraction > 0 && access(first_eval, F_OK) != 0) {
        json_decref(entry);
        return lt_error_set(LT_ERR_DATA, "%s: data.train[%d]: eval_fraction = %g held out no "
                            "document of the %d raw training file%s (hint: raise it, or give "
                            "data.eval)", r->source ? r->source : "recipe", idx + 1, fraction,
                            raw->n, raw->n == 1 ? "" : "s");
    }
    if (!run->manifest) {
        json_decref(entry); /* a rank other than 0: the manifest is rank 0's */
        return LT_OK;
    }
    json_t *all = json_object_get(run->manifest, "tokenized");
    if (!json_is_array(all)) {
        all = json_array();
        json_object_set_new(run->manifest, "tokenized", all);
    }
    json_array_append_new(all, entry);
    return lt_run_manifest_set(run, "tokenized", json_incref(all));
}

lt_status lt_run_prepare_data(lt_run *run, const char *tok_sha, lt_recipe_list *train,
                              double **train_weights, lt_recipe_list *eval) {
    const lt_recipe *r = run->r;
    const lt_recipe_list *in[2] = {&r->data.train, &r->data.eval};
    lt_recipe_list *out[2] = {train, eval};
    static const char *const roles[2] = {"train", "eval"};
    memset(train, 0, sizeof *train);
    memset(eval, 0, sizeof *eval);
    *train_weights = NULL;
    const lt_data_entry unset = lt_data_entry_unset();
    lt_status st = LT_OK;
    for (int k = 0; k < 2 && !st; k++) {
        for (int i = 0; i < in[k]->n && !st; i++) {
            const char *p = in[k]->items[i];
            const lt_data_entry *e = in[k]->entries ? &in[k]->entries[i] : &unset;
            if (k == 0 && e->weight > 0) { /* validation: every data.train entry has one */
                if (!*train_weights)
                    *train_weights = lt_xmalloc((size_t)in[0]->n * sizeof **train_weights);
                (*train_weights)[i] = e->weight;
            }
            if (!lt_data_is_raw(p)) { /* raw-file options here: refused by validation */
                lt_recipe_list_add(out[k], p);
                continue;
            }
            glob_t g;
            int rc = glob(p, 0, NULL, &g);
            if (rc != 0) {
                if (rc != GLOB_NOMATCH) globfree(&g);
                st = lt_error_set(LT_ERR_DATA, "data.%s[%d]: no file matches '%s' (hint: check "
                                  "the path / glob)", roles[k], i + 1, p);
                break;
            }
            lt_recipe_list raw = {0};
            for (size_t j = 0; j < g.gl_pathc; j++) lt_recipe_list_add(&raw, g.gl_pathv[j]);
            globfree(&g);
            raw_opts o = entry_opts(r, e, k == 0);
            char pattern[PATH_MAX + 64], held[PATH_MAX + 64];
            st = prepare_entry(run, roles[k], i, e->weight, &raw, &o, tok_sha, pattern,
                               sizeof pattern, held, sizeof held);
            if (!st) lt_recipe_list_add(out[k], pattern);
            if (!st && held[0]) lt_recipe_list_add(eval, held); /* train's held-out part */
            lt_recipe_list_free(&raw);
        }
    }
    if (st) {
        lt_recipe_list_free(train);
        lt_recipe_list_free(eval);
        free(*train_weights);
        *train_weights = NULL;
    }
    return st;
}
