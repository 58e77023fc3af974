/* `lathe eval`: score a model (optionally with a PEFT adapter) on token shards — mean loss and
 * perplexity over one fixed-order pass — or dump its logits on one prompt for interop checks
 * against other implementations. Results go to stdout as one JSON object. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/data.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/train.h"

static const char usage_text[] =
    "usage: lathe eval --model PATH [--adapter DIR] --data GLOB... [options]\n"
    "       lathe eval --model PATH [--adapter DIR] --prompt TEXT [--logits OUT.f32]\n"
    "\n"
    "Score a model on token shards (mean next-token loss and perplexity over one pass, in file\n"
    "order), or run one prompt and write its logits. Prints one JSON object on stdout.\n"
    "\n"
    "  --model PATH       GGUF file or Hugging Face model directory\n"
    "  --adapter DIR      PEFT LoRA adapter directory\n"
    "  --data GLOB        token shards (repeatable; quote globs)\n"
    "  --seq-len N        rows of N tokens (default 512)\n"
    "  --batch B          rows per forward pass (default 4)\n"
    "  --max-batches N    stop after N batches (default: the whole set)\n"
    "  --no-packing       one document per row\n"
    "  --prompt TEXT      tokenize TEXT (BOS first when the tokenizer adds one) and run it\n"
    "  --logits FILE      with --prompt: write the logits, F32 little-endian [tokens, vocab]\n"
    "  --quant TYPE       load the base quantized as a QLoRA run did: nf4 (double quant,\n"
    "                     blocks of 64), nf4-nodq, q8_0 or none (default)\n"
    LT_CLI_DEVICE_HELP
    "  -h, --help         this help\n";

static int eval_prompt(lt_model *m, const lt_tokenizer *tok, const char *prompt,
                       const char *logits_path) {
    lt_tokens ids = {0};
    int32_t bos = lt_tokenizer_bos(tok);
    if (bos >= 0 && lt_tokenizer_add_bos(tok)) lt_tokens_push(&ids, bos, 0);
    lt_tokenizer_encode(tok, prompt, strlen(prompt), false, 0, &ids);
    if (ids.n == 0) {
        lt_tokens_free(&ids);
        return lt_cli_fail(lt_error_set(LT_ERR_USAGE, "--prompt gives no tokens"));
    }
    int T = (int)ids.n;
    int32_t *pos = lt_xmalloc(sizeof(int32_t) * T), *doc = lt_xcalloc((size_t)T, sizeof(int32_t));
    for (int i = 0; i < T; i++) pos[i] = i;
    lt_arena arena;
    lt_arena_init(&arena, 0);
    lt_graph g;
    lt_status st = lt_model_graph_init(&g, &arena, m);
    if (st) {
        lt_arena_free(&arena);
        free(pos), free(doc);
        lt_tokens_free(&ids);
        return lt_cli_fail(st);
    }
    g.record = false;
    lt_tensor *lt = lt_model_forward(&g, m, 1, T, ids.ids, pos, doc, 0);
    float *logits = lt_xmalloc((size_t)lt_tensor_numel(lt) * sizeof(float));
    lt_tensor_download_f32(lt, logits); /* bf16 on a device */
    if (logits_path)
        st = lt_write_file_atomic(logits_path, logits,
                                  (size_t)lt_tensor_numel(lt) * sizeof(float));
    if (!st) {
        json_t *o = json_object(), *arr = json_array();
        for (int i = 0; i < T; i++) json_array_append_new(arr, json_integer(ids.ids[i]));
        json_object_set_new(o, "tokens", arr);
        json_object_set_new(o, "n_vocab", json_integer(m->cfg.vocab_size));
        if (logits_path) json_object_set_new(o, "logits_file", json_string(logits_path));
        /* the last position's argmax, handy for eyeballing */
        const float *last = logits + (size_t)(T - 1) * m->cfg.vocab_size;
        int best = 0;
        for (int v = 1; v < m->cfg.vocab_size; v++)
            if (last[v] > last[best]) best = v;
        json_object_set_new(o, "next_token_argmax", json_integer(best));
        char *s = json_dumps(o, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(o);
    }
    free(logits);
    lt_graph_free(&g);
    lt_arena_free(&arena);
    free(pos);
    free(doc);
    lt_tokens_free(&ids);
    return st ? lt_cli_fail(st) : 0;
}

static int eval_data(lt_model *m, const lt_tokenizer *tok, const char **globs, int n_globs,
                     int T, int B, int64_t max_batches, bool pack) {
    lt_loader_opts lo = {
        .patterns = globs, .n_patterns = (size_t)n_globs, .seq_len = T, .batch_rows = B,
        .shuffle = false, .pack = pack, .seed = 0,
        .expect = {.vocab_size = m->cfg.vocab_size, .tokenizer_sha256 = lt_tokenizer_sha256(tok)},
    };
    lt_loader *l;
    lt_status st = lt_loader_open(&l, &lo);
    if (st) return lt_cli_fail(st);
    double loss;
    int64_t n;
    double t0 = lt_now();
    st = lt_train_eval(m, l, B, T, max_batches, &loss, &n);
    double dt = lt_now() - t0;
    lt_loader_free(l);
    if (st) return lt_cli_fail(st);
    printf("{\"eval_loss\": %.6f, \"eval_ppl\": %.4f, \"tokens\": %lld, \"seconds\": %.2f}\n", loss,
           exp(loss), (long long)n, dt);
    return 0;
}

int lt_cmd_eval(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},     {"adapter", required_argument, 0, 'a'},
        {"data", required_argument, 0, 'd'},      {"seq-len", required_argument, 0, 'T'},
        {"batch", required_argument, 0, 'B'},     {"max-batches", required_argument, 0, 'n'},
        {"no-packing", no_argument, 0, 'P'},      {"prompt", required_argument, 0, 'p'},
        {"logits", required_argument, 0, 'l'},    {"quant", required_argument, 0, 'Q'},
        {"device", required_argument, 0, 'D'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model_path = NULL, *adapter = NULL, *prompt = NULL, *logits = NULL;
    const char *globs[64];
    int n_globs = 0, T = 512, B = 4;
    int64_t max_batches = 0;
    bool pack = true;
    char *end;
    lt_model_opts quant;
    bool quant_set = false;
    lt_device_choice device = LT_DEVICE_CPU;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'a': adapter = optarg; break;
        case 'd':
            if (n_globs == 64) goto bad;
            globs[n_globs++] = optarg;
            break;
        case 'T': T = (int)strtol(optarg, &end, 10); if (*end || T < 2) goto bad; break;
        case 'B': B = (int)strtol(optarg, &end, 10); if (*end || B < 1) goto bad; break;
        case 'n': max_batches = strtoll(optarg, &end, 10); if (*end || max_batches < 0) goto bad; break;
        case 'P': pack = false; break;
        case 'p': prompt = optarg; break;
        case 'l': logits = optarg; break;
        case 'Q':
            if (lt_cli_parse_quant("eval", optarg, &quant)) return 2;
            quant_set = true;
            break;
        case 'D':
            if (lt_cli_parse_device("eval", optarg, &device)) return 2;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (!model_path || optind < argc || (!prompt && n_globs == 0) || (prompt && n_globs) ||
        (logits && !prompt)) {
        fprintf(stderr, "lathe eval: give --model and either --data or --prompt\n%s", usage_text);
        return 2;
    }
    lt_device dev;
    lt_status st = lt_device_open(device, 0, &dev);
    if (st) return lt_cli_fail(st);
    lt_model *m = NULL;
    lt_tokenizer *tok = NULL;
    st = lt_model_load_opts(&m, &tok, model_path, quant_set ? &quant : NULL);
    if (!st && adapter) st = lt_peft_load(m, adapter);
    if (!st) st = lt_model_to_device(m, dev);
    int rc = st ? lt_cli_fail(st)
                : prompt ? eval_prompt(m, tok, prompt, logits)
                         : eval_data(m, tok, globs, n_globs, T, B, max_batches, pack);
    lt_tokenizer_free(tok);
    lt_model_free(m);
    return rc;
bad:
    fprintf(stderr, "lathe eval: bad value '%s' for %s\n", optarg, argv[optind - 1]);
    return 2;
}
