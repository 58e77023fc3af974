/* Integration tests for `lathe tokenize`: real datasets through real tokenizers (stories260K,
 * and SmolLM2 when present) into shards, read back with the loader; malformed inputs and corrupt
 * shards fail with the file and line / dataset named. Needs the fixtures ($LATHE_FIXTURES) and
 * the CLI binary ($LATHE_BIN, default bin/lathe) for the command-line cases. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support.h"
#include "data/data.h"
#include "io/io.h"
#include "export/export.h"
#include "tokenizer/tokenizer.h"

static char tmpdir[256];
static char fx[1024];

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lathe_test_tokenize_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    const char *f = getenv("LATHE_FIXTURES");
    snprintf(fx, sizeof fx, "%s", f ? f : "../shared/fixtures");
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

static void fixture(char *buf, size_t cap, const char *rel) {
    if (snprintf(buf, cap, "%s/%s", fx, rel) >= (int)cap) cr_skip_test("fixture path too long");
    if (access(buf, R_OK) != 0) cr_skip_test("fixture %s not found (set LATHE_FIXTURES)", buf);
}

static const char *lathe_bin(void) {
    const char *b = getenv("LATHE_BIN");
    if (!b) b = "bin/lathe";
    if (access(b, X_OK) != 0) cr_skip_test("lathe binary %s not found (set LATHE_BIN)", b);
    return b;
}

/* Run `lathe <args>` with stdout+stderr into DIR/out.txt; returns the exit code, *out the text. */
static int run_cli(const char *args, char **out) {
    char cmd[4096], log[512];
    snprintf(log, sizeof log, "%s/out.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "%s %s > '%s' 2>&1", lathe_bin(), args, log);
    int rc = system(cmd);
    size_t n;
    cr_assert_eq(lt_read_file(log, out, &n), LT_OK);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static lt_tokenizer *load_tokenizer(const char *gguf) {
    lt_gguf *g;
    cr_assert_eq(lt_gguf_open(&g, gguf), LT_OK, "%s", lt_error_message());
    lt_tokenizer *t;
    cr_assert_eq(lt_tokenizer_from_gguf(&t, g), LT_OK, "%s", lt_error_message());
    lt_gguf_close(g);
    return t;
}

static lt_loader *open_split(const char *name, const lt_tokenizer *t, int T, int B, bool shuffle) {
    char pat[512];
    snprintf(pat, sizeof pat, "%s/%s-*.h5", tmpdir, name);
    const char *pats[1] = {pat};
    lt_loader_opts o = {.patterns = pats, .n_patterns = 1, .seq_len = T, .batch_rows = B,
                        .shuffle = shuffle, .pack = true, .seed = 5,
                        .expect = {.vocab_size = lt_tokenizer_vocab_size(t),
                                   .tokenizer_sha256 = lt_tokenizer_sha256(t)}};
    lt_loader *l;
    cr_assert_eq(lt_loader_open(&l, &o), LT_OK, "%s", lt_error_message());
    return l;
}

/* One full pass: every target counted once, every id in range. */
static void check_pass(lt_loader *l, int64_t vocab, int B, int T) {
    lt_loader_totals tot;
    lt_loader_totals_get(l, &tot);
    lt_loader_rewind(l);
    lt_batch b;
    lt_batch_init(&b, B, T);
    bool end = false;
    int64_t targets = 0, batches = 0;
    while (!end) {
        cr_assert_eq(lt_loader_next(l, &b, &end), LT_OK, "%s", lt_error_message());
        targets += b.n_target_tokens;
        batches++;
        for (int i = 0; i < b.B * b.T; i++) {
            cr_assert(b.tokens[i] >= 0 && b.tokens[i] < vocab);
            cr_assert(b.targets[i] >= -1 && b.targets[i] < vocab);
        }
    }
    cr_assert_eq(targets, tot.n_targets);
    cr_assert_eq(batches, tot.batches_per_epoch);
    lt_batch_free(&b);
}

Test(tokenize, stories260K_alpaca_and_text, .init = setup, .fini = teardown) {
    char model[1100], ident[1100], c4[1100];
    fixture(model, sizeof model, "stories260K/stories260K.gguf");
    fixture(ident, sizeof ident, "data/identity.json");
    fixture(c4, sizeof c4, "data/c4_demo.jsonl");
    const char *inputs[2] = {ident, c4};
    lt_tokenize_opts o = {.model = model, .inputs = inputs, .n_inputs = 2, .output_dir = tmpdir,
                          .shard_tokens = 50000, .eval_fraction = 0.2, .seed = 11};
    lt_tokenize_report r;
    cr_assert_eq(lt_tokenize_run(&o, &r), LT_OK, "%s", lt_error_message());
    cr_assert_eq(r.n_records, 391);
    cr_assert_eq(r.n_skipped, 0);
    cr_assert_eq(r.n_docs + r.n_dropped, 391);
    cr_assert_eq(r.n_train_docs + r.n_eval_docs, r.n_docs);
    cr_assert(r.n_eval_docs > 40 && r.n_eval_docs < 120, "eval docs %lld", (long long)r.n_eval_docs);
    cr_assert_str_eq(r.template_name, "alpaca"); /* stories260K has no chat template */
    cr_assert_gt(r.n_train_shards, 1);
    cr_assert_geq(r.n_eval_shards, 1);
    cr_assert(r.n_trainable < r.n_tokens); /* the alpaca prompts are masked out */

    lt_tokenizer *t = load_tokenizer(model);
    int64_t V = lt_tokenizer_vocab_size(t);
    lt_loader *l = open_split("train", t, 64, 4, true);
    lt_loader_totals tot;
    lt_loader_totals_get(l, &tot);
    cr_assert_eq(tot.n_docs, r.n_train_docs);
    cr_assert_eq(tot.n_shards, r.n_train_shards);
    check_pass(l, V, 4, 64);
    lt_loader_free(l);
    l = open_split("eval", t, 64, 4, false);
    lt_loader_totals_get(l, &tot);
    cr_assert_eq(tot.n_docs, r.n_eval_docs);
    check_pass(l, V, 4, 64);
    lt_loader_free(l);

    /* the first identity record: BOS, prompt masked, response trained, EOS last and trained */
    char p[512];
    snprintf(p, sizeof p, "%s/train-00000.h5", tmpdir);
    lt_shard *sh;
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_OK, "%s", lt_error_message());
    cr_assert(sh->has_mask);
    int64_t n = (int64_t)(sh->doc_offsets[1] - sh->doc_offsets[0]);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    uint8_t *mk = malloc((size_t)n);
    cr_assert_eq(lt_shard_read(sh, 0, n, ids, mk), LT_OK);
    cr_assert_eq(ids[0], lt_tokenizer_bos(t));
    cr_assert_eq(mk[0], 0);
    cr_assert_eq(ids[n - 1], lt_tokenizer_eos(t));
    cr_assert_eq(mk[n - 1], 1);
    char *text = lt_tokenizer_decode(t, ids, (size_t)n);
    cr_assert(strstr(text, "hi") && strstr(text, "Hello! I am {{name}}"), "%s", text);
    free(text);
    free(ids);
    free(mk);
    cr_assert_str_eq(sh->meta.tokenizer_sha256, lt_tokenizer_sha256(t));
    cr_assert_eq(sh->meta.vocab_size, V);
    lt_shard_close(sh);

    /* same seed -> same split; another seed -> another split */
    char dir2[600];
    snprintf(dir2, sizeof dir2, "%s/again", tmpdir);
    o.output_dir = dir2;
    lt_tokenize_report r2;
    cr_assert_eq(lt_tokenize_run(&o, &r2), LT_OK);
    cr_assert_eq(r2.n_eval_docs, r.n_eval_docs);
    cr_assert_eq(r2.n_tokens, r.n_tokens);
    o.seed = 12;
    cr_assert_eq(lt_tokenize_run(&o, &r2), LT_OK);
    cr_assert_neq(r2.n_eval_docs, r.n_eval_docs);
    lt_tokenizer_free(t);
}

Test(tokenize, text_documents_and_max_len, .init = setup, .fini = teardown) {
    char model[1100], c4[1100];
    fixture(model, sizeof model, "stories260K/stories260K.gguf");
    fixture(c4, sizeof c4, "data/c4_demo.jsonl");
    const char *inputs[1] = {c4};
    lt_tokenize_opts o = {.model = model, .inputs = inputs, .n_inputs = 1, .output_dir = tmpdir,
                          .max_len = 100, .name = "c4", .deflate = 3};
    lt_tokenize_report r;
    cr_assert_eq(lt_tokenize_run(&o, &r), LT_OK, "%s", lt_error_message());
    cr_assert_eq(r.n_docs, 300);
    cr_assert_gt(r.n_truncated, 200);
    cr_assert_eq(r.n_trainable, r.n_tokens);
    cr_assert_str_eq(r.template_name, "");
    lt_tokenizer *t = load_tokenizer(model);
    char p[512];
    snprintf(p, sizeof p, "%s/c4-00000.h5", tmpdir);
    lt_shard *sh;
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_OK, "%s", lt_error_message());
    cr_assert(!sh->has_mask);
    for (int64_t d = 0; d < sh->n_docs; d++)
        cr_assert_leq(sh->doc_offsets[d + 1] - sh->doc_offsets[d], 100);
    int32_t first;
    cr_assert_eq(lt_shard_read(sh, 0, 1, &first, NULL), LT_OK);
    cr_assert_eq(first, lt_tokenizer_bos(t)); /* the llama vocabulary adds BOS */
    lt_shard_close(sh);
    lt_tokenizer_free(t);
}

Test(tokenize, smollm2_chatml, .init = setup, .fini = teardown) {
    char model[4096];
    ts_smollm2(model, sizeof model);
    char ident[1100], glaive[1100], c4[1100];
    fixture(ident, sizeof ident, "data/identity.json");
    fixture(glaive, sizeof glaive, "data/glaive_toolcall_en_demo.json");
    fixture(c4, sizeof c4, "data/c4_demo.jsonl");
    const char *inputs[3] = {ident, glaive, c4};
    lt_tokenize_opts o = {.model = model, .inputs = inputs, .n_inputs = 3, .output_dir = tmpdir,
                          .eval_fraction = 0.1};
    lt_tokenize_report r;
    cr_assert_eq(lt_tokenize_run(&o, &r), LT_OK, "%s", lt_error_message());
    cr_assert_str_eq(r.template_name, "model"); /* SmolLM2's own Jinja template */
    /* SmolLM2's template concatenates message['content'], which a tool call's null content
     * fails, as it does in transformers: glaive's 153 records with a function_call are record
     * errors (skipped), its other 147 records, identity's 91 and c4's 300 are documents */
    cr_expect_eq(r.n_skipped, 153);
    cr_assert_eq(r.n_docs, 91 + 147 + 300);
    lt_tokenizer *t = load_tokenizer(model);
    /* SmolLM2's template is ChatML with a default system turn: rendered by the interpreter it
     * gives the built-in layout's ids and loss mask exactly (a system-less and a system
     * conversation, two assistant turns each; in the third the user quotes the assistant, and
     * only the assistant's own turns are trained: the turn-by-turn prefix, not the first match) */
    lt_chat_jinja *cj;
    cr_assert_eq(lt_chat_jinja_open(&cj, t, model, NULL), LT_OK, "%s", lt_error_message());
    const lt_message conv[3][5] = {
        {{LT_ROLE_USER, "What is a kluge?", NULL}, {LT_ROLE_ASSISTANT, "A clever, ugly fix.", NULL},
         {LT_ROLE_USER, "Thanks!", NULL}, {LT_ROLE_ASSISTANT, " You're welcome.\n", NULL}},
        {{LT_ROLE_SYSTEM, "Be brief.", NULL}, {LT_ROLE_USER, "Hi", NULL}, {LT_ROLE_ASSISTANT, "Hello.", NULL},
         {LT_ROLE_USER, "Bye", NULL}, {LT_ROLE_ASSISTANT, "Goodbye!", NULL}},
        {{LT_ROLE_USER, "Say Paris.", NULL}, {LT_ROLE_ASSISTANT, "Paris.", NULL},
         {LT_ROLE_USER, "Paris.", NULL}, {LT_ROLE_ASSISTANT, "Paris.", NULL}}};
    const size_t nconv[3] = {4, 5, 4};
    for (int k = 0; k < 3; k++) {
        lt_tokens a = {0}, j = {0};
        lt_chat_render(t, LT_TEMPLATE_CHATML, conv[k], nconv[k], false, &a);
        cr_assert_eq(lt_chat_jinja_render(cj, conv[k], nconv[k], NULL, false, &j), LT_OK, "%s",
                     lt_error_message());
        cr_expect_eq(j.n, a.n, "conversation %d: %zu ids from the template, %zu from the layout",
                     k, j.n, a.n);
        for (size_t i = 0; i < a.n && i < j.n; i++) {
            cr_expect_eq(j.ids[i], a.ids[i], "conversation %d: id %zu", k, i);
            cr_expect_eq(j.mask[i], a.mask[i], "conversation %d: mask %zu", k, i);
        }
        lt_tokens_free(&a), lt_tokens_free(&j);
    }
    lt_chat_jinja_free(cj);
    int32_t im_start = lt_tokenizer_find(t, "<|im_start|>");
    cr_assert_geq(im_start, 0);
    lt_loader *l = open_split("train", t, 256, 2, false);
    lt_batch b;
    lt_batch_init(&b, 2, 256);
    bool end;
    cr_assert_eq(lt_loader_next(l, &b, &end), LT_OK);
    cr_assert_eq(b.tokens[0], im_start, "a ChatML document starts with <|im_start|>");
    lt_batch_free(&b);
    check_pass(l, lt_tokenizer_vocab_size(t), 2, 256);
    lt_loader_free(l);
    l = open_split("eval", t, 256, 2, false);
    check_pass(l, lt_tokenizer_vocab_size(t), 2, 256);
    lt_loader_free(l);
    lt_tokenizer_free(t);
}

Test(tokenize, cli_malformed_records, .init = setup, .fini = teardown) {
    char model[1100];
    fixture(model, sizeof model, "stories260K/stories260K.gguf");
    char in[512];
    snprintf(in, sizeof in, "%s/bad.jsonl", tmpdir);
    FILE *fp = fopen(in, "w");
    fputs("{\"instruction\": \"say hi\", \"input\": \"\", \"output\": \"hi\"}\n"
          "{\"instruction\": \"broken\", \n"
          "\n"
          "{\"instruction\": [1], \"output\": \"x\"}\n"
          "{\"instruction\": \"say bye\", \"output\": \"bye\"}\n",
          fp);
    fclose(fp);
    char args[2048], *out;
    snprintf(args, sizeof args, "tokenize --model %s --input %s --output %s/skip", model, in,
             tmpdir);
    cr_assert_eq(run_cli(args, &out), 0, "%s", out);
    char want[600];
    snprintf(want, sizeof want, "%s:2:", in);
    cr_assert(strstr(out, want), "%s", out);
    snprintf(want, sizeof want, "%s:4:", in);
    cr_assert(strstr(out, want), "%s", out);
    cr_assert(strstr(out, "skipped     2 malformed"), "%s", out);
    cr_assert(strstr(out, "documents   2"), "%s", out);
    free(out);

    snprintf(args, sizeof args, "tokenize --model %s --input %s --output %s/fail --on-error fail",
             model, in, tmpdir);
    cr_assert_eq(run_cli(args, &out), 3, "%s", out);
    snprintf(want, sizeof want, "%s:2:", in);
    cr_assert(strstr(out, want), "%s", out);
    free(out);

    snprintf(args, sizeof args, "tokenize --model %s --input %s", model, in);
    cr_assert_eq(run_cli(args, &out), 2, "%s", out);
    free(out);
    snprintf(args, sizeof args, "tokenize --model %s/nope.gguf --input %s --output %s/x", tmpdir,
             in, tmpdir);
    int rc = run_cli(args, &out);
    cr_assert(rc == 3 || rc == 1, "rc %d: %s", rc, out);
    free(out);
    cr_assert_eq(run_cli("tokenize --help", &out), 0);
    cr_assert(strstr(out, "--eval-fraction"));
    free(out);
}

/* Tokenize a little data, then corrupt the shard with HDF5 directly. */
static void make_shard(char *path, size_t cap, const char **model_out, char *model, size_t mcap) {
    fixture(model, mcap, "stories260K/stories260K.gguf");
    char ident[1100];
    fixture(ident, sizeof ident, "data/identity.json");
    const char *inputs[1] = {ident};
    lt_tokenize_opts o = {.model = model, .inputs = inputs, .n_inputs = 1, .output_dir = tmpdir};
    lt_tokenize_report r;
    cr_assert_eq(lt_tokenize_run(&o, &r), LT_OK, "%s", lt_error_message());
    snprintf(path, cap, "%s/train-00000.h5", tmpdir);
    *model_out = model;
}

/* The shard at `path` was edited on purpose: its checksum sidecar refuses it first (SHA-256),
 * then, with the sidecar gone, the validation names `what`. */
static void expect_loader_fails(const char *path, const char *what) {
    char side[600];
    snprintf(side, sizeof side, "%s.sha256", path);
    if (strcmp(what, "SHA-256") && ts_exists(side)) {
        expect_loader_fails(path, "SHA-256");
        cr_assert_eq(unlink(side), 0);
    }
    char pat[512];
    snprintf(pat, sizeof pat, "%s/train-*.h5", tmpdir);
    const char *pats[1] = {pat};
    lt_loader_opts o = {.patterns = pats, .n_patterns = 1, .seq_len = 32, .batch_rows = 2};
    lt_loader *l = NULL;
    cr_assert_eq(lt_loader_open(&l, &o), LT_ERR_DATA);
    cr_assert_null(l);
    cr_assert(strstr(lt_error_message(), path), "%s", lt_error_message());
    cr_assert(strstr(lt_error_message(), what), "%s", lt_error_message());
}

Test(tokenize, shard_token_out_of_vocab_fails, .init = setup, .fini = teardown) {
    char path[512], model[1100];
    const char *m;
    make_shard(path, sizeof path, &m, model, sizeof model);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t a = H5Aopen(f, "vocab_size", H5P_DEFAULT);
    int64_t v = 3; /* lie: ids 0..2 only (bos 1, eos/pad 2 stay valid) */
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Fclose(f);
    expect_loader_fails(path, "dataset 'tokens'");
    cr_assert(strstr(lt_error_message(), ">= vocab_size 3"), "%s", lt_error_message());
}

Test(tokenize, shard_broken_doc_offsets_fails, .init = setup, .fini = teardown) {
    char path[512], model[1100];
    const char *m;
    make_shard(path, sizeof path, &m, model, sizeof model);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "doc_offsets", H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t start = 5, count = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
    hid_t ms = H5Screate_simple(1, &count, NULL);
    uint64_t big = 1ull << 40;
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_UINT64, ms, fs, H5P_DEFAULT, &big), 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
    expect_loader_fails(path, "dataset 'doc_offsets'");
    cr_assert(strstr(lt_error_message(), "decreases at index 6"), "%s", lt_error_message());
}

/* `--model` takes a Hugging Face directory as well as a GGUF: stories260K converted to HF gives
 * the same documents, token for token, with the same masks. */
Test(tokenize, hf_directory_model_equals_gguf, .init = setup, .fini = teardown) {
    char model[1100], ident[1100], hf[600], out_g[600], out_h[600], p[700];
    fixture(model, sizeof model, "stories260K/stories260K.gguf");
    fixture(ident, sizeof ident, "data/identity.json");
    snprintf(hf, sizeof hf, "%s/hf", tmpdir);
    cr_assert_eq(lt_convert(model, LT_CONVERT_TO_HF, hf, LT_F32, 0, false), LT_OK, "%s",
                 lt_error_message());
    snprintf(out_g, sizeof out_g, "%s/g", tmpdir);
    snprintf(out_h, sizeof out_h, "%s/h", tmpdir);
    const char *inputs[1] = {ident};
    lt_tokenize_opts o = {.model = model, .inputs = inputs, .n_inputs = 1, .output_dir = out_g,
                          .shard_tokens = 1 << 20, .seed = 3};
    lt_tokenize_report rg, rh;
    cr_assert_eq(lt_tokenize_run(&o, &rg), LT_OK, "%s", lt_error_message());
    o.model = hf;
    o.output_dir = out_h;
    cr_assert_eq(lt_tokenize_run(&o, &rh), LT_OK, "HF directory: %s", lt_error_message());
    cr_assert_eq(rh.n_docs, rg.n_docs);
    cr_assert_eq(rh.n_tokens, rg.n_tokens);
    cr_assert_eq(rh.n_trainable, rg.n_trainable);
    lt_shard *sg, *sh;
    snprintf(p, sizeof p, "%s/train-00000.h5", out_g);
    cr_assert_eq(lt_shard_open(&sg, p, NULL), LT_OK, "%s", lt_error_message());
    snprintf(p, sizeof p, "%s/train-00000.h5", out_h);
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_OK, "%s", lt_error_message());
    int64_t n = (int64_t)sg->doc_offsets[sg->n_docs];
    cr_assert_eq((int64_t)sh->doc_offsets[sh->n_docs], n);
    int32_t *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
    uint8_t *ma = malloc((size_t)n), *mb = malloc((size_t)n);
    cr_assert_eq(lt_shard_read(sg, 0, n, a, ma), LT_OK);
    cr_assert_eq(lt_shard_read(sh, 0, n, b, mb), LT_OK);
    cr_expect(!memcmp(a, b, (size_t)n * 4), "token ids differ");
    cr_expect(!memcmp(ma, mb, (size_t)n), "loss masks differ");
    free(a), free(b), free(ma), free(mb);
    lt_shard_close(sg);
    lt_shard_close(sh);
}

/* stories260K converted to an HF directory under tmpdir/hf with `tpl` as its
 * chat_template.jinja; model gets the GGUF's path (for its tokenizer). */
static void stories_hf_with_template(char *model, size_t mcap, char *hf, size_t hcap,
                                     const char *tpl) {
    fixture(model, mcap, "stories260K/stories260K.gguf");
    snprintf(hf, hcap, "%s/hf", tmpdir);
    cr_assert_eq(lt_convert(model, LT_CONVERT_TO_HF, hf, LT_F32, 0, false), LT_OK, "%s",
                 lt_error_message());
    char p[700];
    snprintf(p, sizeof p, "%s/chat_template.jinja", hf);
    cr_assert_eq(lt_write_file_atomic(p, tpl, strlen(tpl)), LT_OK);
}

/* A glaive-style record (ShareGPT function_call / observation, tools as a JSON string) through
 * a template that takes tools and tool calls: the template sees OpenAI's form, and the call's
 * whole turn is trained (the span between the renders before and through it), as is the answer. */
Test(tokenize, tool_calls_reach_the_template, .init = setup, .fini = teardown) {
    char model[1100], hf[600], data[600];
    const char *tpl =
        "{% if tools %}<tools>{{ tools | tojson }}</tools>{% endif %}{% for m in messages %}"
        "<{{ m.role }}>{% if m.tool_calls %}{% for c in m.tool_calls %}<call>{{ c.function.name }}"
        "{{ c.function.arguments | tojson }}</call>{% endfor %}{% else %}{{ m.content }}{% endif %}"
        "{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}";
    stories_hf_with_template(model, sizeof model, hf, sizeof hf, tpl);
    snprintf(data, sizeof data, "%s/calls.json", tmpdir);
    FILE *f = fopen(data, "w");
    fputs("[{\"conversations\": [{\"from\": \"human\", \"value\": \"Weather?\"}, {\"from\": "
          "\"function_call\", \"value\": \"{\\\"name\\\": \\\"w\\\", \\\"arguments\\\": {\\\"c\\\": "
          "\\\"Oslo\\\"}}\"}, {\"from\": \"observation\", \"value\": \"cold\"}, {\"from\": \"gpt\", "
          "\"value\": \"It is cold.\"}], \"tools\": \"[{\\\"name\\\": \\\"w\\\"}]\"}]\n", f);
    fclose(f);
    char out[700];
    snprintf(out, sizeof out, "%s/out", tmpdir);
    const char *inputs[1] = {data};
    lt_tokenize_opts o = {.model = hf, .inputs = inputs, .n_inputs = 1, .output_dir = out,
                          .shard_tokens = 1 << 20, .on_error = LT_ON_ERROR_FAIL};
    lt_tokenize_report r;
    cr_assert_eq(lt_tokenize_run(&o, &r), LT_OK, "%s", lt_error_message());
    cr_assert_str_eq(r.template_name, "model");
    cr_assert_eq(r.n_docs, 1);
    lt_tokenizer *t = load_tokenizer(model);
    char p[800];
    snprintf(p, sizeof p, "%s/train-00000.h5", out);
    lt_shard *sh;
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_OK, "%s", lt_error_message());
    int64_t len = (int64_t)sh->doc_offsets[1];
    int32_t ids[512], kept[512];
    uint8_t mk[512];
    cr_assert(len > 0 && len < 512);
    cr_assert_eq(lt_shard_read(sh, 0, len, ids, mk), LT_OK);
    char *all = lt_tokenizer_decode_special(t, ids, (size_t)len, true);
    /* the run after the first </s> got SentencePiece's dummy prefix (this converted tokenizer
     * prepends it to every run, as transformers does), which decoding drops again */
    cr_expect_str_eq(all, "<tools>[{\"name\": \"w\"}]</tools><user>Weather?<assistant><call>w"
                          "{\"c\": \"Oslo\"}</call></s><tool>cold<assistant>It is cold.</s>");
    free(all);
    size_t nk = 0;
    for (int64_t i = 0; i < len; i++)
        if (mk[i]) kept[nk++] = ids[i];
    char *trained = lt_tokenizer_decode_special(t, kept, nk, true);
    cr_expect_str_eq(trained, "<call>w{\"c\": \"Oslo\"}</call></s>It is cold.</s>");
    free(trained);
    lt_shard_close(sh);
    lt_tokenizer_free(t);
}

/* The model's own template decides: one that refuses a system role (as Gemma's does) makes that
 * record an error quoting the template's message, skipped or fatal per --on-error. */
Test(tokenize, template_raise_skips_or_fails_the_record, .init = setup, .fini = teardown) {
    char model[1100], hf[600], data[600];
    stories_hf_with_template(
        model, sizeof model, hf, sizeof hf,
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not "
        "supported') }}{% endif %}<{{ m['role'] }}>{{ m['content'] }}{% if m['role'] == "
        "'assistant' %}{{ eos_token }}{% endif %}{% endfor %}");
    snprintf(data, sizeof data, "%s/chats.jsonl", tmpdir);
    FILE *f = fopen(data, "w");
    fputs("{\"messages\": [{\"role\": \"user\", \"content\": \"Once\"}, {\"role\": \"assistant\", "
          "\"content\": \"upon a time\"}]}\n"
          "{\"messages\": [{\"role\": \"system\", \"content\": \"x\"}, {\"role\": \"user\", "
          "\"content\": \"Once\"}, {\"role\": \"assistant\", \"content\": \"upon\"}]}\n", f);
    fclose(f);
    char out[700];
    snprintf(out, sizeof out, "%s/out", tmpdir);
    const char *inputs[1] = {data};
    lt_tokenize_opts o = {.model = hf, .inputs = inputs, .n_inputs = 1, .output_dir = out,
                          .shard_tokens = 1 << 20};
    lt_tokenize_report r;
    cr_assert_eq(lt_tokenize_run(&o, &r), LT_OK, "%s", lt_error_message());
    cr_expect_str_eq(r.template_name, "model");
    cr_expect_eq(r.n_docs, 1);
    cr_expect_eq(r.n_skipped, 1, "the system record is skipped");
    /* the kept record: "<user>Once<assistant>upon a time</s>", trained on "upon a time</s>" */
    lt_tokenizer *t = load_tokenizer(model);
    char p[800];
    snprintf(p, sizeof p, "%s/train-00000.h5", out);
    lt_shard *sh;
    cr_assert_eq(lt_shard_open(&sh, p, NULL), LT_OK, "%s", lt_error_message());
    int64_t len = (int64_t)sh->doc_offsets[1];
    int32_t ids[256];
    uint8_t mk[256];
    cr_assert(len > 0 && len < 256);
    cr_assert_eq(lt_shard_read(sh, 0, len, ids, mk), LT_OK);
    cr_expect_eq(ids[len - 1], lt_tokenizer_eos(t));
    cr_expect_eq(mk[len - 1], 1, "the closing </s> is trained");
    int64_t first_trained = -1;
    for (int64_t i = 0; i < len && first_trained < 0; i++)
        if (mk[i]) first_trained = i;
    char *trained = lt_tokenizer_decode(t, ids + first_trained, (size_t)(len - 1 - first_trained));
    cr_expect_str_eq(trained, "upon a time");
    free(trained);
    lt_shard_close(sh);
    lt_tokenizer_free(t);
    o.on_error = LT_ON_ERROR_FAIL;
    snprintf(out, sizeof out, "%s/out2", tmpdir);
    cr_expect_eq(lt_tokenize_run(&o, &r), LT_ERR_DATA);
    cr_expect(strstr(lt_error_message(), "System role not supported") &&
              strstr(lt_error_message(), "chats.jsonl:2"), "%s", lt_error_message());
}

/* `--input /dev/zero` (issue 9, finding 5) read without bound (8.7 GB resident after 20 s): now
 * exit 3 at once, naming the file and what it is. The limit on memory keeps a regression from
 * taking the machine with it. */
Test(tokenize, special_file_input_refused, .init = setup, .fini = teardown, .timeout = 60) {
    char model[1024], cmd[4096], *out;
    fixture(model, sizeof model, "stories260K/stories260K.gguf");
#ifdef __SANITIZE_ADDRESS__
    const char *limit = ""; /* ASan reserves terabytes of shadow address space at start */
#else
    const char *limit = "ulimit -v 4000000; "; /* an unbounded read fails fast, not the machine */
#endif
    snprintf(cmd, sizeof cmd, "%s%s tokenize --model %s --input /dev/zero --output %s/o > "
             "%s/log.txt 2>&1", limit, lathe_bin(), model, tmpdir, tmpdir);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "%s/log.txt", tmpdir);
    size_t n;
    cr_assert_eq(lt_read_file(cmd, &out, &n), LT_OK);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 3, "expected exit 3, got %d:\n%s", rc, out);
    cr_assert(strstr(out, "/dev/zero") && strstr(out, "character device"), "%s", out);
    free(out);
}
