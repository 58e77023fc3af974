/* `lathe inspect`: readable summaries of the files lathe reads and writes. Which kind a path is
 * comes from its content (GGUF magic, HDF5 signature, safetensors header) or, for directories,
 * from the files in it: manifest.json or recipe.yaml (run), adapter_config.json (PEFT adapter),
 * config.json (HF model). Every described file gets its SHA-256. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "export_impl.h"
#include "../data/data.h"

static bool is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void sha_line(FILE *out, const char *path) {
    char hex[65];
    if (lt_sha256_file(path, hex) == LT_OK) fprintf(out, "sha256     %s  %s\n", hex, path);
    else fprintf(out, "sha256     (unreadable)  %s\n", path);
}

static void human(char *buf, size_t n, double v) {
    const char *u[] = {"", "K", "M", "G", "T"};
    int i = 0;
    while (v >= 1000 && i < 4) v /= 1000, i++;
    snprintf(buf, n, i ? "%.2f%s" : "%.0f%s", v, u[i]);
}

/* ---- memory by storage format ------------------------------------------------------------- */

/* Bytes and parameters per storage format of a model's weights, the same breakdown `lathe train`
 * prints for the base it loaded (model.h lt_model_memory_str): a quantized base (GGUF Q4_0 /
 * Q4_1 / Q8_0, or a bitsandbytes NF4 safetensors directory, whose packed U8 weight and its
 * absmax / quant_map / nested_* / quant_state tensors count as NF4) next to its F32/F16/BF16
 * remainder. bits/param = bytes · 8 / params, scales and states included. */
typedef struct {
    double bytes[LT_DTYPE_COUNT];
    int64_t params[LT_DTYPE_COUNT];
} membreak;

static void mem_add(membreak *mb, lt_dtype t, size_t bytes, int64_t params) {
    mb->bytes[t] += (double)bytes;
    mb->params[t] += params;
}

static void mem_print(FILE *out, const membreak *mb) {
    fprintf(out, "memory    ");
    const char *sep = " ";
    for (int t = LT_DTYPE_COUNT - 1; t >= 0; t--) { /* quantized formats first */
        if (mb->bytes[t] <= 0) continue;
        fprintf(out, "%s%.1f MiB %s", sep, mb->bytes[t] / 1048576.0, lt_dtype_name((lt_dtype)t));
        if (mb->params[t] > 0)
            fprintf(out, " (%.3f bits/param, %.1fM params)",
                    8.0 * mb->bytes[t] / (double)mb->params[t], mb->params[t] / 1e6);
        sep = ", ";
    }
    fputc('\n', out);
}

/* One safetensors file's tensors into mb. A bitsandbytes 4-bit weight (transformers'
 * Params4bit serialization: "X.weight" U8 packed two codes per byte beside
 * "X.weight.quant_state.bitsandbytes__nf4") counts as NF4 with 2 params per byte; its state
 * tensors ("X.weight.absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
 * ".quant_state.*") add to NF4's bytes. */
static void mem_add_safetensors(membreak *mb, const lt_safetensors *st) {
    static const char *const state_sfx[] = {".weight.absmax", ".weight.quant_map",
                                            ".weight.nested_absmax", ".weight.nested_quant_map",
                                            NULL};
    for (int i = 0; i < st->n_tensors; i++) {
        const lt_st_tensor *t = &st->tensors[i];
        size_t len = strlen(t->name);
        bool state = strstr(t->name, ".weight.quant_state.") != NULL;
        for (int k = 0; !state && state_sfx[k]; k++) {
            size_t sl = strlen(state_sfx[k]);
            state = len > sl && !strcmp(t->name + len - sl, state_sfx[k]);
        }
        if (state) {
            mem_add(mb, LT_NF4, t->nbytes, 0);
            continue;
        }
        char qs[512];
        snprintf(qs, sizeof qs, "%s.quant_state.bitsandbytes__nf4", t->name);
        if (t->dtype == LT_U8 && lt_safetensors_find(st, qs)) {
            mem_add(mb, LT_NF4, t->nbytes, 2 * (int64_t)t->nbytes);
            continue;
        }
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
        mem_add(mb, t->dtype, t->nbytes, n);
    }
}

/* ---- GGUF --------------------------------------------------------------------------------- */

static const char *gtype_name(lt_gguf_type t) {
    static const char *n[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string",
                              "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof n / sizeof n[0] ? n[t] : "?";
}

static void print_str(FILE *out, lt_gguf_str s, size_t max) {
    fputc('"', out);
    for (uint64_t i = 0; i < s.len && i < max; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch == '\n') fputs("\\n", out);
        else if (ch == '"') fputs("\\\"", out);
        else if (ch < 0x20) fprintf(out, "\\x%02x", ch);
        else fputc(ch, out);
    }
    fputc('"', out);
    if (s.len > max) fprintf(out, "... (%llu bytes)", (unsigned long long)s.len);
}

static void print_kv(FILE *out, const lt_gguf_kv *kv) {
    fprintf(out, "  %-44s ", kv->key);
    switch (kv->type) {
    case LT_GGUF_UINT8: case LT_GGUF_UINT16: case LT_GGUF_UINT32: case LT_GGUF_UINT64:
        fprintf(out, "%llu", (unsigned long long)kv->v.u);
        break;
    case LT_GGUF_INT8: case LT_GGUF_INT16: case LT_GGUF_INT32: case LT_GGUF_INT64:
        fprintf(out, "%lld", (long long)kv->v.i);
        break;
    case LT_GGUF_FLOAT32: case LT_GGUF_FLOAT64: fprintf(out, "%g", kv->v.f); break;
    case LT_GGUF_BOOL: fputs(kv->v.b ? "true" : "false", out); break;
    case LT_GGUF_STRING: print_str(out, kv->v.s, 80); break;
    case LT_GGUF_ARRAY:
        fprintf(out, "[%llu x %s]", (unsigned long long)kv->arr_n, gtype_name(kv->arr_type));
        for (uint64_t i = 0; i < kv->arr_n && i < 4; i++) {
            fputs(i ? ", " : " ", out);
            if (kv->arr_str) print_str(out, kv->arr_str[i], 24);
            else if (kv->arr_type == LT_GGUF_FLOAT32 || kv->arr_type == LT_GGUF_FLOAT64)
                fprintf(out, "%g", lt_gguf_arr_float(kv, i));
            else if (kv->arr_type != LT_GGUF_ARRAY)
                fprintf(out, "%lld", (long long)lt_gguf_arr_int(kv, i));
        }
        if (kv->arr_n > 4) fputs(", ...", out);
        break;
    }
    fputc('\n', out);
}

static lt_status inspect_gguf(const char *path, FILE *out) {
    lt_gguf *g;
    lt_status st = lt_gguf_open(&g, path);
    if (st) return st;
    lt_gguf_str s;
    fprintf(out, "GGUF       %s (version %u, %lld metadata keys, %lld tensors, alignment %zu)\n",
            path, g->version, (long long)g->n_kv, (long long)g->n_tensors, g->alignment);
    if (lt_gguf_get_str(g, "general.architecture", &s))
        fprintf(out, "arch       %.*s\n", (int)s.len, s.ptr);
    if (lt_gguf_get_str(g, "general.type", &s)) fprintf(out, "type       %.*s\n", (int)s.len, s.ptr);
    if (lt_gguf_get_str(g, "tokenizer.ggml.model", &s)) {
        const lt_gguf_kv *tk = lt_gguf_find(g, "tokenizer.ggml.tokens");
        fprintf(out, "tokenizer  %.*s, %llu tokens%s\n", (int)s.len, s.ptr,
                tk ? (unsigned long long)tk->arr_n : 0ULL,
                lt_gguf_find(g, "tokenizer.chat_template") ? ", chat template" : "");
    }
    fprintf(out, "metadata:\n");
    for (int64_t i = 0; i < g->n_kv; i++) print_kv(out, &g->kv[i]);
    fprintf(out, "tensors (shape in GGUF order, ne[0] first):\n");
    int64_t params = 0;
    size_t bytes = 0;
    membreak mb = {0};
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lt_gguf_tensor *t = &g->tensors[i];
        char shape[96];
        int n = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < t->n_dims; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%lld", d ? ", " : "",
                          (long long)t->ne[d]);
        snprintf(shape + n, sizeof shape - (size_t)n, "]");
        fprintf(out, "  %-40s %-6s %s\n", t->name, lt_ggml_type_name(t->ggml_type), shape);
        params += lt_gguf_tensor_numel(t);
        bytes += t->nbytes;
        mem_add(&mb, t->dtype, t->nbytes, lt_gguf_tensor_numel(t));
    }
    char hp[32], hb[32];
    human(hp, sizeof hp, (double)params);
    human(hb, sizeof hb, (double)bytes);
    fprintf(out, "parameters %lld (%s), tensor data %sB\n", (long long)params, hp, hb);
    mem_print(out, &mb);
    lt_gguf_close(g);
    sha_line(out, path);
    return LT_OK;
}

/* ---- safetensors -------------------------------------------------------------------------- */

/* mb: when not NULL, the file's weights are added to it (an HF directory's breakdown). */
static lt_status inspect_safetensors(const char *path, FILE *out, bool list, membreak *mb) {
    lt_safetensors *sf;
    lt_status st = lt_safetensors_open(&sf, path);
    if (st) return st;
    int64_t params = 0;
    int counts[LT_DTYPE_COUNT] = {0};
    fprintf(out, "safetensors %s (%d tensors)\n", path, sf->n_tensors);
    for (int i = 0; i < sf->n_meta; i++)
        fprintf(out, "  metadata %s = %s\n", sf->meta_keys[i], sf->meta_values[i]);
    for (int i = 0; i < sf->n_tensors; i++) {
        const lt_st_tensor *t = &sf->tensors[i];
        int64_t n = 1;
        char shape[96];
        int k = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < t->ndim; d++) {
            n *= t->shape[d];
            k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%lld", d ? ", " : "",
                          (long long)t->shape[d]);
        }
        snprintf(shape + k, sizeof shape - (size_t)k, "]");
        params += n;
        counts[t->dtype]++;
        if (list) fprintf(out, "  %-60s %-5s %s\n", t->name, lt_dtype_name(t->dtype), shape);
    }
    char hp[32];
    human(hp, sizeof hp, (double)params);
    fprintf(out, "  parameters %lld (%s); dtypes:", (long long)params, hp);
    for (int d = 0; d < LT_DTYPE_COUNT; d++)
        if (counts[d]) fprintf(out, " %s x%d", lt_dtype_name((lt_dtype)d), counts[d]);
    fputc('\n', out);
    if (mb) mem_add_safetensors(mb, sf);
    lt_safetensors_close(sf);
    sha_line(out, path);
    return LT_OK;
}

/* ---- HDF5 token shard --------------------------------------------------------------------- */

static lt_status inspect_shard(const char *path, FILE *out) {
    lt_shard *s;
    lt_status st = lt_shard_open(&s, path, NULL);
    if (st) return st;
    fprintf(out, "shard      %s (lathe-tokens v1)\n", path);
    fprintf(out, "  vocab_size %lld, bos %lld, eos %lld, pad %lld\n", (long long)s->meta.vocab_size,
            (long long)s->meta.bos_id, (long long)s->meta.eos_id, (long long)s->meta.pad_id);
    fprintf(out, "  tokenizer_sha256 %s\n  created_by %s\n", s->meta.tokenizer_sha256,
            s->meta.created_by);
    fprintf(out, "  tokens %lld, documents %lld, loss_mask %s, trainable tokens %lld\n",
            (long long)s->n_tokens, (long long)s->n_docs, s->has_mask ? "yes" : "no",
            (long long)s->n_trainable);
    lt_shard_close(s);
    sha_line(out, path);
    return LT_OK;
}

/* ---- directories -------------------------------------------------------------------------- */

static void print_json_fields(FILE *out, json_t *j, const char *indent) {
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        if (json_is_object(v) || (json_is_array(v) && json_array_size(v) > 8)) {
            fprintf(out, "%s%-28s (%s of %zu)\n", indent, k, json_is_object(v) ? "object" : "list",
                    json_is_object(v) ? json_object_size(v) : json_array_size(v));
            continue;
        }
        if (json_is_string(v) && strlen(json_string_value(v)) > 100) {
            fprintf(out, "%s%-28s (text of %zu bytes)\n", indent, k, strlen(json_string_value(v)));
            continue;
        }
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        fprintf(out, "%s%-28s %s\n", indent, k, t ? t : "?");
        free(t);
    }
}

/* flags: JSON_DECODE_INT_AS_REAL for files that hold integers beyond int64 (transformers writes
 * tokenizer_config.json's model_max_length as 1000000000000000019884624838656). */
static lt_status load_json_flags(const char *path, size_t flags, json_t **j) {
    json_error_t e;
    *j = json_load_file(path, flags, &e);
    if (!*j) return lt_error_set(LT_ERR_MODEL, "%s:%d: %s", path, e.line, e.text);
    return LT_OK;
}

static lt_status load_json(const char *path, json_t **j) { return load_json_flags(path, 0, j); }

static lt_status inspect_peft(const char *dir, FILE *out) {
    char p[PATH_MAX + 64];
    json_t *cfg;
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    lt_status st = load_json(p, &cfg);
    if (st) return st;
    fprintf(out, "PEFT adapter %s\n", dir);
    print_json_fields(out, cfg, "  ");
    json_decref(cfg);
    sha_line(out, p);
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    lt_safetensors *sf;
    if ((st = lt_safetensors_open(&sf, p))) return st;
    int layers = -1;
    unsigned mods = 0;
    bool fused[2] = {false, false}; /* Phi-3's qkv_proj, gate_up_proj */
    int64_t rank = -1;
    for (int i = 0; i < sf->n_tensors; i++) {
        const lt_st_tensor *t = &sf->tensors[i];
        const char *lp = strstr(t->name, "layers.");
        if (lp && atoi(lp + 7) > layers) layers = atoi(lp + 7);
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            char pat[32];
            snprintf(pat, sizeof pat, ".%s.", lt_module_name((lt_module)k));
            if (strstr(t->name, pat)) mods |= 1u << k;
        }
        if (strstr(t->name, ".qkv_proj.")) fused[0] = true;
        if (strstr(t->name, ".gate_up_proj.")) fused[1] = true;
        if (strstr(t->name, "lora_A") && t->ndim == 2) rank = t->shape[0];
    }
    fprintf(out, "  tensors %d, rank %lld, layers %d, targets:", sf->n_tensors, (long long)rank,
            layers + 1);
    for (int k = 0; k < LT_MOD_COUNT; k++) {
        if (fused[0] && k == LT_MOD_O) fprintf(out, " qkv_proj");
        if (fused[1] && k == LT_MOD_DOWN) fprintf(out, " gate_up_proj");
        if (mods & (1u << k)) fprintf(out, " %s", lt_module_name((lt_module)k));
    }
    fputc('\n', out);
    lt_safetensors_close(sf);
    sha_line(out, p);
    return LT_OK;
}

static lt_status inspect_hf(const char *dir, FILE *out) {
    char p[PATH_MAX + 64];
    json_t *cfg;
    snprintf(p, sizeof p, "%s/config.json", dir);
    lt_status st = load_json(p, &cfg);
    if (st) return st;
    fprintf(out, "HF model   %s\nconfig.json:\n", dir);
    print_json_fields(out, cfg, "  ");
    json_decref(cfg);
    sha_line(out, p);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    json_t *idx;
    membreak mb = {0};
    if (is_file(p)) {
        if ((st = load_json(p, &idx))) return st;
        json_t *wm = json_object_get(idx, "weight_map");
        json_t *ts = json_object_get(json_object_get(idx, "metadata"), "total_size");
        fprintf(out, "index: %zu tensors, total_size %lld bytes\n", json_object_size(wm),
                (long long)(json_is_integer(ts) ? json_integer_value(ts) : -1));
        sha_line(out, p);
        /* each shard once, in the order the index first names it */
        json_t *seen = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(wm, k, v) {
            const char *f = json_string_value(v);
            if (!f || json_object_get(seen, f)) continue;
            json_object_set_new(seen, f, json_true());
            if (strchr(f, '/') || f[0] == '.') {
                st = lt_error_set(LT_ERR_MODEL, "%s/model.safetensors.index.json: shard '%s' is "
                                  "not a file name inside the directory", dir, f);
                break;
            }
            snprintf(p, sizeof p, "%s/%s", dir, f);
            if ((st = inspect_safetensors(p, out, false, &mb))) break;
        }
        json_decref(seen);
        json_decref(idx);
        if (st) return st;
    } else {
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        if (is_file(p) && (st = inspect_safetensors(p, out, false, &mb))) return st;
    }
    mem_print(out, &mb);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    json_t *tj;
    if (is_file(p) && !load_json(p, &tj)) {
        json_t *model = json_object_get(tj, "model");
        json_t *type = json_object_get(model, "type");
        fprintf(out, "tokenizer: %s, vocab %zu, merges %zu, added tokens %zu\n",
                json_is_string(type) ? json_string_value(type) : "?",
                json_object_size(json_object_get(model, "vocab")),
                json_array_size(json_object_get(model, "merges")),
                json_array_size(json_object_get(tj, "added_tokens")));
        json_decref(tj);
        sha_line(out, p);
    }
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    if (is_file(p)) {
        if (!load_json_flags(p, JSON_DECODE_INT_AS_REAL, &tj)) {
            fprintf(out, "tokenizer_config.json: chat_template %s\n",
                    json_object_get(tj, "chat_template") ? "present" : "absent");
            json_decref(tj);
        } else {
            fprintf(out, "tokenizer_config.json: unreadable: %s\n", lt_error_message());
        }
        sha_line(out, p);
    }
    return LT_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static lt_status inspect_run(const char *dir, FILE *out) {
    char p[PATH_MAX + 64];
    json_t *man;
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    lt_status st;
    fprintf(out, "run        %s\n", dir);
    if (is_file(p)) {
        if ((st = load_json(p, &man))) return st;
        fprintf(out, "manifest.json:\n");
        print_json_fields(out, man, "  ");
        json_decref(man);
    } else {
        fprintf(out, "manifest.json absent\n");
    }
    snprintf(p, sizeof p, "%s/recipe.yaml", dir);
    if (is_file(p)) sha_line(out, p);
    /* last training and last evaluation record of metrics.jsonl */
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    char *text;
    size_t n;
    if (lt_read_file(p, &text, &n) == LT_OK) {
        char *last_step = NULL, *last_eval = NULL;
        size_t lines = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            lines++;
            if (strstr(line, "\"eval_loss\"")) last_eval = line;
            else last_step = line;
        }
        fprintf(out, "metrics    %zu records\n", lines);
        if (last_step) fprintf(out, "  last step %s\n", last_step);
        if (last_eval) fprintf(out, "  last eval %s\n", last_eval);
        free(text);
    }
    snprintf(p, sizeof p, "%s/checkpoints", dir);
    DIR *d = opendir(p);
    if (d) {
        char **names = NULL;
        size_t k = 0, partial = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, "step-", 5)) continue;
            /* a checkpoint is step-<digits>; step-N.tmp.PID / .old.PID are interrupted writes */
            size_t nd = strspn(e->d_name + 5, "0123456789");
            if (nd == 0 || e->d_name[5 + nd]) {
                partial++;
                continue;
            }
            names = lt_xrealloc(names, (k + 1) * sizeof *names);
            names[k++] = lt_xstrdup(e->d_name);
        }
        closedir(d);
        if (k > 1) qsort(names, k, sizeof *names, cmp_str);
        fprintf(out, "checkpoints %zu:", k);
        for (size_t i = 0; i < k; i++) {
            fprintf(out, " %s", names[i]);
            free(names[i]);
        }
        fputc('\n', out);
        if (partial)
            fprintf(out, "  (%zu unfinished temporary checkpoint directories, not counted; "
                    "`lathe train --resume` removes them)\n", partial);
        free(names);
    }
    snprintf(p, sizeof p, "%s/adapter", dir);
    struct stat sb;
    if (stat(p, &sb) == 0) {
        if ((st = inspect_peft(p, out))) return st;
    } else {
        fprintf(out, "adapter    absent (the run has not completed)\n");
    }
    snprintf(p, sizeof p, "%s/exports", dir);
    if ((d = opendir(p))) {
        struct dirent *e;
        fprintf(out, "exports   ");
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') fprintf(out, " %s", e->d_name);
        fputc('\n', out);
        closedir(d);
    }
    return LT_OK;
}

lt_status lt_inspect(const char *path, FILE *out) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lt_error_set(LT_ERR_USAGE, "cannot inspect '%s': %s", path, strerror(errno));
    char p[PATH_MAX + 64];
    if (S_ISDIR(sb.st_mode)) {
        snprintf(p, sizeof p, "%s/manifest.json", path);
        if (is_file(p)) return inspect_run(path, out);
        snprintf(p, sizeof p, "%s/recipe.yaml", path);
        if (is_file(p)) return inspect_run(path, out);
        snprintf(p, sizeof p, "%s/adapter_config.json", path);
        if (is_file(p)) return inspect_peft(path, out);
        snprintf(p, sizeof p, "%s/config.json", path);
        if (is_file(p)) return inspect_hf(path, out);
        return lt_error_set(LT_ERR_USAGE, "'%s' is a directory but not a run (manifest.json or recipe.yaml), a "
                            "PEFT adapter (adapter_config.json) or an HF model (config.json)",
                            path);
    }
    unsigned char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return lt_error_set(LT_ERR_USAGE, "cannot open '%s': %s", path, strerror(errno));
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got >= 4 && !memcmp(magic, "GGUF", 4)) return inspect_gguf(path, out);
    if (got == 8 && !memcmp(magic, "\x89HDF\r\n\x1a\n", 8)) return inspect_shard(path, out);
    size_t len = strlen(path);
    if (len > 12 && !strcmp(path + len - 12, ".safetensors")) return inspect_safetensors(path, out, true, NULL);
    return lt_error_set(LT_ERR_USAGE, "'%s' is not a GGUF file, a safetensors file or an HDF5 "
                        "token shard", path);
}
