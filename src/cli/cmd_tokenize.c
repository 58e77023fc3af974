/* `lathe tokenize` — thin command-line front end of lt_tokenize_run (src/data). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "data/data.h"

/* The accepted tokenizer.ggml.pre names, wrapped at 80 columns under the option text. */
static void wrap_pre_names(char *out, size_t cap) {
    char names[512];
    lt_tokenizer_pre_names(names, sizeof names);
    size_t n = 0, col = 24;
    out[0] = 0;
    for (char *w = strtok(names, " "); w && n + 64 < cap; w = strtok(NULL, " ")) {
        size_t l = strlen(w);
        if (col + 1 + l > 80) {
            n += (size_t)snprintf(out + n, cap - n, "\n%24s", "");
            col = 24;
        } else if (n) {
            out[n++] = ' ';
            col++;
        }
        n += (size_t)snprintf(out + n, cap - n, "%s", w);
        col += l;
    }
}

static void usage(FILE *out) {
    char pre[1024];
    wrap_pre_names(pre, sizeof pre);
    fprintf(out,
            "usage: lathe tokenize --model PATH --input FILE... --output DIR [options]\n"
            "\n"
            "Tokenize datasets into HDF5 token shards (docs/shards.md) for `lathe train`.\n"
            "\n"
            "  --model PATH          GGUF file or Hugging Face model directory whose tokenizer\n"
            "                        and chat template to use. GGUF tokenizers: \"llama\"\n"
            "                        (SentencePiece BPE) and \"gpt2\" (byte-level BPE) with\n"
            "                        tokenizer.ggml.pre one of:\n"
            "                        %s\n"
            "                        tokenizer.json: BPE models, byte-level (ByteLevel, Split,\n"
            "                        Digits pre-tokenizers) or SentencePiece-style (Metaspace,\n"
            "                        or Prepend/Replace of U+2581 normalizers); an NFC\n"
            "                        normalizer is applied\n"
            "  --input FILE...       JSON array, JSONL or .txt files (repeat the flag or list\n"
            "                        several files after it)\n"
            "  --output DIR          where train-*.h5 (and eval-*.h5) are written\n"
            "  --format F            auto|alpaca|sharegpt|messages|text (default auto: from the\n"
            "                        first record's keys; .txt files are one text document)\n"
            "  --template NAME       a built-in chat layout instead of the model's own Jinja\n"
            "                        template: chatml|alpaca|llama3|llama2|mistral|gemma\n"
            "                        (default: the model's template; alpaca when it has none)\n"
            "  --max-len N           truncate documents to N tokens (default: no limit)\n"
            "  --shard-tokens N      tokens per shard before a new file starts (default %d)\n"
            "  --eval-fraction F     share of documents written to eval shards, in [0, 1)\n"
            "  --on-error MODE       skip|fail on a malformed record (default skip)\n"
            "  --seed S              seed of the train/eval split (default 0)\n"
            "  --name NAME           train shard prefix (default train)\n"
            "  --compress N          deflate level 0..9 (default 0)\n"
            "\n"
            "exit codes: 0 done, 2 bad usage, 3 bad model or data\n",
            pre, LT_SHARD_DEFAULT_TOKENS);
}

static bool parse_i64(const char *s, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0) return false;
    *out = v;
    return true;
}

int lt_cmd_tokenize(int argc, char **argv) {
    lt_tokenize_opts o = {.format = LT_FORMAT_AUTO, .on_error = LT_ON_ERROR_SKIP};
    const char **inputs = lt_xcalloc((size_t)argc + 1, sizeof *inputs);
    size_t n_inputs = 0;
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            free(inputs);
            return 0;
        }
        /* --opt=value or --opt value */
        char opt[64];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof opt) {
            snprintf(opt, sizeof opt, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(opt, sizeof opt, "%s", a);
        }
        if (!strcmp(opt, "--input")) {
            if (val) inputs[n_inputs++] = val;
            bool any = val != NULL;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) inputs[n_inputs++] = argv[++i],
                                                                  any = true;
            if (!any) rc = lt_error_set(LT_ERR_USAGE, "--input needs at least one file");
            continue;
        }
        static const char *const with_value[] = {
            "--model", "--output", "--format", "--template", "--max-len", "--shard-tokens",
            "--eval-fraction", "--on-error", "--seed", "--name", "--compress", NULL};
        bool known = false;
        for (int k = 0; with_value[k]; k++) known |= !strcmp(opt, with_value[k]);
        if (!known) {
            rc = lt_error_set(LT_ERR_USAGE, "tokenize: unknown argument '%s' (see lathe tokenize "
                              "--help)", a);
            break;
        }
        if (!val) {
            if (i + 1 >= argc) {
                rc = lt_error_set(LT_ERR_USAGE, "tokenize: %s needs a value", opt);
                break;
            }
            val = argv[++i];
        }
        int64_t n;
        if (!strcmp(opt, "--model")) o.model = val;
        else if (!strcmp(opt, "--output")) o.output_dir = val;
        else if (!strcmp(opt, "--template")) o.template_name = val;
        else if (!strcmp(opt, "--name")) o.name = val;
        else if (!strcmp(opt, "--format")) rc = lt_record_format_from_name(&o.format, val);
        else if (!strcmp(opt, "--on-error")) {
            if (!strcmp(val, "skip")) o.on_error = LT_ON_ERROR_SKIP;
            else if (!strcmp(val, "fail")) o.on_error = LT_ON_ERROR_FAIL;
            else rc = lt_error_set(LT_ERR_USAGE, "--on-error must be skip or fail, not '%s'", val);
        } else if (!strcmp(opt, "--eval-fraction")) {
            char *end;
            o.eval_fraction = strtod(val, &end);
            if (!*val || *end || !(o.eval_fraction >= 0 && o.eval_fraction < 1))
                rc = lt_error_set(LT_ERR_USAGE, "--eval-fraction must be a number in [0, 1), "
                                  "not '%s'", val);
        } else if (!parse_i64(val, &n)) {
            rc = lt_error_set(LT_ERR_USAGE, "%s needs a non-negative integer, not '%s'", opt, val);
        } else if (!strcmp(opt, "--max-len")) o.max_len = n;
        else if (!strcmp(opt, "--shard-tokens")) o.shard_tokens = n;
        else if (!strcmp(opt, "--seed")) o.seed = (uint64_t)n;
        else if (!strcmp(opt, "--compress")) {
            if (n > 9) rc = lt_error_set(LT_ERR_USAGE, "--compress must be 0..9");
            o.deflate = (int)n;
        }
    }
    if (!rc && (!o.model || !o.output_dir || n_inputs == 0))
        rc = lt_error_set(LT_ERR_USAGE, "tokenize: --model, --input and --output are required "
                          "(see lathe tokenize --help)");
    if (rc) {
        free(inputs);
        return lt_cli_fail(rc);
    }
    o.inputs = inputs;
    o.n_inputs = n_inputs;
    lt_tokenize_report r;
    double t0 = lt_now();
    lt_status st = lt_tokenize_run(&o, &r);
    free(inputs);
    if (st) {
        if (r.n_skipped) fprintf(stderr, "lathe: %lld malformed records skipped before the "
                                 "failure\n", (long long)r.n_skipped);
        return lt_cli_fail(st);
    }
    printf("documents   %lld (train %lld in %d shard%s, eval %lld in %d shard%s)\n",
           (long long)r.n_docs, (long long)r.n_train_docs, r.n_train_shards,
           r.n_train_shards == 1 ? "" : "s", (long long)r.n_eval_docs, r.n_eval_shards,
           r.n_eval_shards == 1 ? "" : "s");
    printf("tokens      %lld (%.1f%% trained)\n", (long long)r.n_tokens,
           r.n_tokens ? 100.0 * (double)r.n_trainable / (double)r.n_tokens : 0.0);
    printf("truncated   %lld%s\n", (long long)r.n_truncated,
           o.max_len ? "" : " (no --max-len)");
    printf("skipped     %lld malformed, %lld without trainable tokens\n",
           (long long)r.n_skipped, (long long)r.n_dropped);
    if (r.template_name[0]) printf("template    %s\n", r.template_name);
    printf("output      %s/%s-*.h5%s%s%s  (%.1f s)\n", o.output_dir, r.train_name,
           r.n_eval_shards ? ", " : "", r.n_eval_shards ? r.eval_name : "",
           r.n_eval_shards ? "-*.h5" : "", lt_now() - t0);
    return 0;
}
