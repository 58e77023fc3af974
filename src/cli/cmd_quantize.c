/* `lathe quantize MODEL --type nf4 --out DIR`: quantize a base once and save it as a bitsandbytes
 * 4-bit Hugging Face directory (io.h "bitsandbytes 4-bit checkpoints"; docs/formats.md), so that
 * a nightly job loads the quantized base instead of quantizing on every run, and transformers
 * (AutoModelForCausalLM.from_pretrained) / PEFT load the same directory.
 *
 * Output: config.json (the model's, torch_dtype = --dtype, plus quantization_config),
 * model.safetensors (the seven projections of every layer as bnb NF4 tensors; embeddings, norms,
 * biases and an untied lm_head in --dtype: transformers never quantizes lm_head, and its bnb
 * loader keeps non-quantized parameters in the model's dtype, which is also the compute dtype
 * written here), tokenizer.json + tokenizer_config.json + special_tokens_map.json. Built in
 * "<out>.tmp.<pid>" and renamed onto <out> when complete (core lt_dir_publish). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "export/export.h"
#include "model/model.h"
#include "quant/quant.h"

static const char usage_text[] =
    "usage: lathe quantize MODEL --type nf4 --out DIR [options]\n"
    "\n"
    "Quantize a base model (GGUF file or Hugging Face directory) to NF4 and write it as a\n"
    "bitsandbytes 4-bit Hugging Face directory: lathe, transformers + bitsandbytes and PEFT load it\n"
    "without quantizing again. The q/k/v/o/gate/up/down projections are stored as NF4;\n"
    "embeddings, norms, biases and lm_head stay in --dtype.\n"
    "\n"
    "  --type nf4             quantization type (required; only nf4 has a bitsandbytes form)\n"
    "  --double-quant         quantize the per-block absmax again (QLoRA; the default)\n"
    "  --no-double-quant      keep the per-block absmax as F32\n"
    "  --block-size N         NF4 elements per absmax block, power of two in [32, 4096]\n"
    "                         dividing every projection's row length (default 64)\n"
    "  --dtype T              f32, bf16 or f16: the non-quantized tensors and the compute dtype\n"
    "                         recorded in quantization_config (default f32, lossless for any source)\n"
    "  --out DIR              output directory (required)\n"
    "  --force                replace an existing DIR\n"
    "  -h, --help             this help\n"
    "\n"
    "Exit codes: 0 done, 1 runtime failure, 2 bad usage, 3 bad model file.\n";

/* Non-quantized tensor t as `dtype` for the writer: t's own F32 data, or a converted copy kept in
 * *bufs (freed by the caller after the write). */
static const void *as_dtype(const lt_tensor *t, lt_dtype dtype, void ***bufs, int *n_bufs) {
    LT_ASSERT(t->dtype == LT_F32);
    if (dtype == LT_F32) return t->data;
    const int64_t n = lt_tensor_numel(t);
    uint16_t *b = lt_xmalloc((size_t)n * sizeof *b);
    const float *x = t->data;
    for (int64_t i = 0; i < n; i++) b[i] = dtype == LT_BF16 ? lt_f32_to_bf16(x[i]) : lt_f32_to_f16(x[i]);
    *bufs = lt_xrealloc(*bufs, (size_t)(*n_bufs + 1) * sizeof **bufs);
    (*bufs)[(*n_bufs)++] = b;
    return b;
}

static void add_plain(lt_st_writer *w, const char *name, const lt_tensor *t, lt_dtype dtype,
                      void ***bufs, int *n_bufs) {
    lt_st_writer_add(w, name, dtype, t->ndim, t->shape, as_dtype(t, dtype, bufs, n_bufs));
}

/* Write the quantized model m (projections NF4) into the existing directory dir. */
static lt_status write_dir(const lt_model *m, const lt_tokenizer *tok, const char *dir,
                           bool double_quant, lt_dtype dtype) {
    const lt_model_config *c = &m->cfg;
    if (c->fused) /* bitsandbytes would quantize qkv_proj as one tensor; lathe holds three */
        return lt_error_set(LT_ERR_MODEL, "%s: lathe quantize does not write Phi-3's fused "
                            "qkv_proj / gate_up_proj as bitsandbytes NF4; hint: train QLoRA with "
                            "quantization.type: nf4 on the full-precision directory instead",
                            m->path);
    lt_st_writer *w = lt_st_writer_new();
    void **bufs = NULL;
    int n_bufs = 0;
    char name[160], path[PATH_MAX + 32];
    lt_status st = LT_OK;
    lt_st_writer_meta(w, "format", "pt"); /* what transformers' save_pretrained records */
    add_plain(w, "model.embed_tokens.weight", &m->tok_embd, dtype, &bufs, &n_bufs);
    for (int l = 0; l < c->n_layer && !st; l++) {
        const lt_layer *L = &m->layers[l];
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        add_plain(w, name, &L->attn_norm, dtype, &bufs, &n_bufs);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        add_plain(w, name, c->sandwich_norm ? &L->post_attn_norm : &L->ffn_norm, dtype, &bufs,
                  &n_bufs);
        if (c->sandwich_norm) { /* Gemma's names (hf.c) */
            snprintf(name, sizeof name, "model.layers.%d.pre_feedforward_layernorm.weight", l);
            add_plain(w, name, &L->ffn_norm, dtype, &bufs, &n_bufs);
            snprintf(name, sizeof name, "model.layers.%d.post_feedforward_layernorm.weight", l);
            add_plain(w, name, &L->post_ffn_norm, dtype, &bufs, &n_bufs);
        }
        if (c->qk_norm) {
            snprintf(name, sizeof name, "model.layers.%d.self_attn.q_norm.weight", l);
            add_plain(w, name, &L->q_norm, dtype, &bufs, &n_bufs);
            snprintf(name, sizeof name, "model.layers.%d.self_attn.k_norm.weight", l);
            add_plain(w, name, &L->k_norm, dtype, &bufs, &n_bufs);
        }
        for (int k = 0; k < LT_MOD_COUNT && !st; k++) {
            const char *parent = lt_module_parent((lt_module)k), *mod = lt_module_name((lt_module)k);
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l, parent, mod);
            st = lt_bnb_write_nf4(w, name, &L->w[k]);
            if (L->bias[k].data) {
                snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", l, parent, mod);
                add_plain(w, name, &L->bias[k], dtype, &bufs, &n_bufs);
            }
        }
    }
    add_plain(w, "model.norm.weight", &m->out_norm, dtype, &bufs, &n_bufs);
    if (!c->tied) add_plain(w, "lm_head.weight", &m->lm_head, dtype, &bufs, &n_bufs);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!st) st = lt_st_writer_write(w, path);
    lt_bnb_writer_release(w);
    lt_st_writer_free(w);
    for (int i = 0; i < n_bufs; i++) free(bufs[i]);
    free(bufs);
    if (st) return st;

    lt_model_config cfg = *c;
    cfg.dtype = dtype; /* torch_dtype: the dtype of the non-quantized tensors written above */
    snprintf(path, sizeof path, "%s/config.json", dir);
    const lt_bnb_config q = {.double_quant = double_quant, .compute_dtype = dtype};
    if ((st = lt_hf_config_write(&cfg, path)) || (st = lt_bnb_config_add(path, &q))) return st;
    return lt_tokenizer_write_hf(tok, dir);
}

int lt_cmd_quantize(int argc, char **argv) {
    static const struct option longopts[] = {
        {"type", required_argument, 0, 't'},  {"double-quant", no_argument, 0, 'D'},
        {"no-double-quant", no_argument, 0, 'N'}, {"block-size", required_argument, 0, 'b'},
        {"dtype", required_argument, 0, 'd'}, {"out", required_argument, 0, 'o'},
        {"force", no_argument, 0, 'F'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *type = NULL, *out = NULL;
    bool dq = true, force = false;
    long long block = LT_NF4_BLOCK_DEFAULT;
    lt_dtype dtype = LT_F32;
    lt_status st;
    char *end;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': type = optarg; break;
        case 'D': dq = true; break;
        case 'N': dq = false; break;
        case 'b':
            block = strtoll(optarg, &end, 10);
            if (*end || end == optarg || block < LT_NF4_BLOCK_MIN || block > LT_NF4_BLOCK_MAX ||
                (block & (block - 1))) {
                fprintf(stderr, "lathe quantize: --block-size '%s' is not a power of two in "
                        "[%d, %d]\n", optarg, LT_NF4_BLOCK_MIN, LT_NF4_BLOCK_MAX);
                return 2;
            }
            break;
        case 'd':
            if ((st = lt_export_dtype_from_name(&dtype, optarg))) return lt_cli_fail(st);
            if (dtype != LT_F32 && dtype != LT_BF16 && dtype != LT_F16) {
                fprintf(stderr, "lathe quantize: --dtype '%s': expected f32, bf16 or f16\n",
                        optarg);
                return 2;
            }
            break;
        case 'o': out = optarg; break;
        case 'F': force = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc - 1 || !type || !out) {
        fprintf(stderr, "lathe quantize: expected MODEL, --type and --out\n%s", usage_text);
        return 2;
    }
    if (strcmp(type, "nf4")) {
        fprintf(stderr, "lathe quantize: --type '%s': only nf4 has a bitsandbytes checkpoint "
                "form\n", type);
        return 2;
    }
    struct stat sb;
    if (stat(out, &sb) == 0 && !force) {
        fprintf(stderr, "lathe quantize: output '%s' already exists; hint: pass --force to "
                "replace it\n", out);
        return 2;
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid()) >= (int)sizeof tmp) {
        fprintf(stderr, "lathe quantize: output path '%s' is too long\n", out);
        return 2;
    }

    const lt_model_opts o = {.type = LT_QUANT_NF4, .double_quant = dq, .block_size = block,
                             .modules = LT_QUANT_ALL_PROJ, .progress = true};
    lt_model *m = NULL;
    lt_tokenizer *tok = NULL;
    if ((st = lt_model_load_opts(&m, &tok, argv[optind], &o))) return lt_cli_fail(st);
    lt_remove_tree(tmp);
    if (!(st = lt_mkdir_p(tmp)) && !(st = write_dir(m, tok, tmp, dq, dtype)))
        st = lt_dir_publish(tmp, out, force);
    if (st) lt_remove_tree(tmp);
    char mem[256];
    if (!st) fprintf(stderr, "quantized: %s\n", lt_model_memory_str(m, mem, sizeof mem));
    lt_model_free(m);
    lt_tokenizer_free(tok);
    if (st) return lt_cli_fail(lt_error_wrap(st, "quantize '%s' to '%s'", argv[optind], out));
    printf("%s\n", out);
    return 0;
}
