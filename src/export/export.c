/* Export formats: names, options, checks, the base's side inputs, and the dispatcher that builds
 * each export in a temporary directory and publishes it by rename. The PEFT and GGUF-adapter
 * writers are here; the merged writers are in merged.c. */
#include "export.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export_impl.h"
#include "../quant/quant.h"

const char *const lt_export_format_names[LT_EXPORT_FORMAT_COUNT + 1] = {
    "peft", "gguf-adapter", "merged-safetensors", "merged-gguf", NULL};

const char *lt_export_format_name(lt_export_format f) {
    LT_ASSERT(f >= 0 && f < LT_EXPORT_FORMAT_COUNT);
    return lt_export_format_names[f];
}

lt_status lt_export_format_from_name(lt_export_format *out, const char *name) {
    for (int i = 0; i < LT_EXPORT_FORMAT_COUNT; i++)
        if (!strcmp(name, lt_export_format_names[i])) {
            *out = (lt_export_format)i;
            return LT_OK;
        }
    return lt_error_set(LT_ERR_USAGE, "unknown export format '%s'; formats: peft, gguf-adapter, "
                        "merged-safetensors, merged-gguf", name);
}

lt_export_opts lt_export_defaults(lt_export_format f) {
    lt_export_opts o = {0};
    o.format = f;
    o.dtype = LT_DTYPE_COUNT;
    o.max_shard_bytes = LT_EXPORT_DEFAULT_SHARD_BYTES;
    o.max_rank = LT_EXPORT_DEFAULT_MAX_RANK;
    return o;
}

lt_dtype lt_export_default_dtype(lt_export_format f) {
    switch (f) {
    case LT_EXPORT_PEFT: return LT_F32;
    case LT_EXPORT_MERGED_SAFETENSORS: return LT_BF16;
    default: return LT_F16;
    }
}

lt_status lt_export_check_dtype(lt_export_format f, lt_dtype t) {
    bool ok;
    const char *takes;
    switch (f) {
    case LT_EXPORT_PEFT:
        ok = t == LT_F32;
        takes = "f32";
        break;
    case LT_EXPORT_MERGED_SAFETENSORS:
        ok = t == LT_F32 || t == LT_F16 || t == LT_BF16;
        takes = "f32, f16, bf16";
        break;
    default:
        ok = t == LT_F32 || t == LT_F16 || t == LT_BF16 || t == LT_Q8_0;
        takes = "f32, f16, bf16, q8_0";
        break;
    }
    if (ok) return LT_OK;
    return lt_error_set(LT_ERR_USAGE, "format %s cannot be written as %s; it takes %s",
                        lt_export_format_name(f), lt_dtype_name(t), takes);
}

lt_status lt_export_dtype_from_name(lt_dtype *out, const char *name) {
    static const struct {
        const char *name;
        lt_dtype t;
    } names[] = {{"f32", LT_F32}, {"f16", LT_F16}, {"bf16", LT_BF16}, {"q8_0", LT_Q8_0}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(name, names[i].name)) {
            *out = names[i].t;
            return LT_OK;
        }
    return lt_error_set(LT_ERR_USAGE, "unknown dtype '%s'; dtypes: f32, f16, bf16, q8_0", name);
}

lt_status lt_export_parse_size(const char *text, int64_t *bytes) {
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"", 1},      {"B", 1},          {"KB", 1e3},         {"MB", 1e6},
                 {"GB", 1e9},  {"TB", 1e12},      {"KIB", 1024.0},     {"MIB", 1048576.0},
                 {"GIB", 1073741824.0}, {"TIB", 1099511627776.0}};
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno || !(v > 0)) goto bad;
    while (*end == ' ') end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcasecmp(end, units[i].unit)) {
            double b = floor(v * units[i].mult);
            if (b < 1 || b > 9.0e18) goto bad;
            *bytes = (int64_t)b;
            return LT_OK;
        }
bad:
    return lt_error_set(LT_ERR_USAGE, "size '%s' is not a positive size such as 2GB, 500MB, "
                        "64KiB or a byte count", text);
}

lt_status lt_export_check_name(const char *name, const char *what) {
    size_t n = strlen(name);
    if (n == 0 || n > 200 || strchr(name, '/') || name[0] == '.')
        return lt_error_set(LT_ERR_USAGE, "%s '%s' is not a plain file name (no '/', not "
                            "starting with '.', at most 200 bytes); it would land outside the "
                            "output directory or hide in it", what, name);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20)
            return lt_error_set(LT_ERR_USAGE, "%s '%s' holds a control character", what, name);
    return LT_OK;
}

lt_status lt_export_check_servable(const lt_lora_config *lc, int max_rank, const char *where) {
    if (max_rank > 0 && lc->r > max_rank)
        return lt_error_set(LT_ERR_USAGE, "%s: rank r = %d is above the serving limit %d: vLLM "
                            "refuses adapters above its --max-lora-rank (default 16); hint: "
                            "start the server with "
                            "--max-lora-rank %d (or higher) and export with --max-rank %d, or "
                            "train with a lower lora.r", where, lc->r, max_rank, lc->r, lc->r);
    return LT_OK;
}

/* ---- side inputs -------------------------------------------------------------------------- */

lt_status lt_export_src_open(lt_export_src *src, const lt_model *m, const char *base_path) {
    memset(src, 0, sizeof *src);
    src->m = m;
    src->base_name = base_path;
    struct stat sb;
    if (stat(base_path, &sb) != 0)
        return lt_error_set(LT_ERR_MODEL, "base model '%s': %s", base_path, strerror(errno));
    lt_status st;
    lt_tokenizer *tok = NULL;
    if (S_ISDIR(sb.st_mode)) {
        st = lt_tokenizer_from_hf_dir(&tok, base_path);
    } else {
        lt_gguf *g = NULL;
        if ((st = lt_gguf_open(&g, base_path))) return st;
        src->gguf = g;
        st = lt_tokenizer_from_gguf(&tok, g);
    }
    src->tok = tok;
    if (st) lt_export_src_close(src);
    return st;
}

void lt_export_src_close(lt_export_src *src) {
    lt_gguf_close((lt_gguf *)src->gguf);
    lt_tokenizer_free((lt_tokenizer *)src->tok);
    src->gguf = NULL;
    src->tok = NULL;
}

lt_status lt_export_src_load(lt_export_src *src, lt_model **m, const char *base_path,
                             const lt_model_opts *opts) {
    *m = NULL;
    lt_status st = lt_export_src_open(src, NULL, base_path);
    if (st) return st;
    st = src->gguf ? lt_model_load_gguf_opts(m, src->gguf, opts)
                   : lt_model_load_hf_opts(m, base_path, opts);
    if (st) {
        lt_export_src_close(src);
        return st;
    }
    src->m = *m;
    return LT_OK;
}

/* ---- shared helpers (export_impl.h) ------------------------------------------------------- */

void *lt_export__convert(const float *x, int64_t n, lt_dtype t) {
    void *out = lt_xmalloc(lt_dtype_nbytes(t, n) ? lt_dtype_nbytes(t, n) : 1);
    uint16_t *h = out;
    switch (t) {
    case LT_F32: memcpy(out, x, (size_t)n * sizeof(float)); break;
    case LT_F16:
        for (int64_t i = 0; i < n; i++) h[i] = lt_f32_to_f16(x[i]);
        break;
    case LT_BF16:
        for (int64_t i = 0; i < n; i++) h[i] = lt_f32_to_bf16(x[i]);
        break;
    case LT_Q8_0: lt_quantize_q8_0(x, out, n); break;
    default: LT_ASSERT(!"dtype an export cannot write");
    }
    return out;
}

lt_dtype lt_export__gguf_dtype(lt_dtype want, int64_t row_len) {
    if (want == LT_Q8_0 && row_len % LT_QK != 0) return LT_F16;
    return want;
}

/* ---- GGUF LoRA adapter -------------------------------------------------------------------- */
/* Keys and shapes: llama.cpp convert_lora_to_gguf.py and src/llama-adapter.cpp
 * (llama_adapter_lora_init_impl): general.type must be "adapter", adapter.type "lora",
 * general.architecture the base's; each adapted weight "blk.N.<name>.weight" gets
 * "blk.N.<name>.weight.lora_a" with ne = [in, r] and ".lora_b" with ne = [r, out] (the loader
 * checks a.ne[0] == W.ne[0], b.ne[1] == W.ne[1], a.ne[1] == b.ne[0]) — i.e. PEFT's row-major
 * A [r, in] and B [out, r] written through unchanged. At run time llama.cpp scales B·A·x by
 * adapter.lora.alpha / r (r = a.ne[1]). B's output rows follow W's rows, so for attn_q and
 * attn_k they take the same LlamaModel.permute as W (convert_hf_to_gguf.py); A is untouched. */
static lt_status write_gguf_adapter(const lt_export_src *src, const char *path, lt_dtype dtype) {
    const lt_model *m = src->m;
    const lt_model_config *c = &m->cfg;
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_gguf_writer_set_str(w, "general.architecture", lt_export__gguf_arch(c));
    lt_gguf_writer_set_str(w, "general.type", "adapter");
    lt_gguf_str name;
    if (src->gguf && lt_gguf_get_str(src->gguf, "general.name", &name)) {
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(name.len > 400 ? 400 : name.len), name.ptr);
        lt_gguf_writer_set_str(w, "general.name", buf);
    }
    lt_gguf_writer_set_str(w, "adapter.type", "lora");
    /* llama.cpp applies alpha / r; rsLoRA's scale alpha / sqrt(r) equals (alpha·sqrt(r)) / r. */
    float alpha = m->lora.rslora ? m->lora.alpha * sqrtf((float)m->lora.r) : m->lora.alpha;
    lt_gguf_writer_set_f32(w, "adapter.lora.alpha", alpha);
    lt_gguf_writer_set_u32(w, "general.file_type", lt_export__ftype(dtype));
    lt_gguf_writer_set_u32(w, "general.quantization_version", 2);

    int n_bufs = 0, cap = c->n_layer * LT_MOD_COUNT * 2;
    void **bufs = lt_xcalloc((size_t)cap, sizeof *bufs);
    char tname[128];
    for (int l = 0; l < c->n_layer; l++)
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            const lt_tensor *A = &m->layers[l].lora_A[k], *B = &m->layers[l].lora_B[k];
            int first, nm = lt_model_adapter_group(c, k, &first, NULL);
            if (!A->data || k != first) continue; /* a fused module's adapter is written once */
            int64_t r = A->shape[0], in = A->shape[1], out = 0;
            for (int j = 0; j < nm; j++) out += m->layers[l].lora_B[k + j].shape[0];
            lt_dtype ta = lt_export__gguf_dtype(dtype, in), tb = lt_export__gguf_dtype(dtype, r);
            bufs[n_bufs++] = lt_export__convert(A->data, r * in, ta);
            snprintf(tname, sizeof tname, "blk.%d.%s.weight.lora_a", l, lt_model_gguf_stem(c, k));
            lt_gguf_writer_add_tensor(w, tname, ta, 2, (int64_t[]){in, r}, bufs[n_bufs - 1]);
            float *b = lt_xmalloc((size_t)(out * r) * sizeof(float));
            memcpy(b, B->data, (size_t)(out * r) * sizeof(float));
            lt_export__qk_to_gguf(c, k, b, out, r);
            bufs[n_bufs++] = lt_export__convert(b, out * r, tb);
            free(b);
            snprintf(tname, sizeof tname, "blk.%d.%s.weight.lora_b", l, lt_model_gguf_stem(c, k));
            lt_gguf_writer_add_tensor(w, tname, tb, 2, (int64_t[]){r, out}, bufs[n_bufs - 1]);
        }
    lt_status st = lt_gguf_writer_write(w, path);
    lt_gguf_writer_free(w);
    for (int i = 0; i < n_bufs; i++) free(bufs[i]);
    free(bufs);
    return st;
}

uint32_t lt_export__ftype(lt_dtype t) {
    /* llama.cpp enum llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32 */
    switch (t) {
    case LT_F16: return 1;
    case LT_Q8_0: return 7;
    case LT_BF16: return 32;
    default: return 0;
    }
}

/* ---- dispatcher --------------------------------------------------------------------------- */

lt_status lt_export_write(const lt_export_src *src, const char *out_dir, const lt_export_opts *o) {
    const lt_model *m = src->m;
    lt_export_format f = o->format;
    lt_dtype dtype = o->dtype == LT_DTYPE_COUNT ? lt_export_default_dtype(f) : o->dtype;
    lt_status st;
    if ((st = lt_export_check_dtype(f, dtype))) return st;
    const char *stem = o->name ? o->name : (f == LT_EXPORT_GGUF_ADAPTER ? "adapter" : "model");
    if ((st = lt_export_check_name(stem, "--name"))) return st;
    bool needs_adapter = f == LT_EXPORT_PEFT || f == LT_EXPORT_GGUF_ADAPTER;
    if (needs_adapter && !m->lora_params)
        return lt_error_set(LT_ERR_USAGE, "format %s needs an adapter, and none is attached",
                            lt_export_format_name(f));
    if (f == LT_EXPORT_PEFT &&
        (st = lt_export_check_servable(&m->lora, o->max_rank, "the adapter")))
        return st;
    if ((f == LT_EXPORT_MERGED_SAFETENSORS || f == LT_EXPORT_MERGED_GGUF) && !src->tok)
        return lt_error_set(LT_ERR_USAGE, "format %s needs the base model's tokenizer",
                            lt_export_format_name(f));
    struct stat sb;
    if (!o->force && stat(out_dir, &sb) == 0)
        return lt_error_set(LT_ERR_USAGE, "output '%s' already exists; hint: pass --force to "
                            "replace it, or --out another path", out_dir);

    if (f == LT_EXPORT_PEFT) /* builds in a temporary sibling and publishes by rename itself */
        return lt_peft_save(m, out_dir, src->base_name, o->force);

    char tmp[PATH_MAX], path[PATH_MAX + 256];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out_dir, (long)getpid()) >= (int)sizeof tmp)
        return lt_error_set(LT_ERR_USAGE, "output path '%s' is too long", out_dir);
    lt_remove_tree(tmp);
    if ((st = lt_mkdir_p(tmp))) return st;
    switch (f) {
    case LT_EXPORT_GGUF_ADAPTER:
        snprintf(path, sizeof path, "%s/%s.gguf", tmp, stem);
        st = write_gguf_adapter(src, path, dtype);
        break;
    case LT_EXPORT_MERGED_GGUF:
        snprintf(path, sizeof path, "%s/%s.gguf", tmp, stem);
        st = lt_export_merged_gguf_file(src, path, dtype);
        break;
    default:
        st = lt_export_merged_hf_dir(src, tmp, dtype, o->max_shard_bytes);
        break;
    }
    if (!st) st = lt_dir_publish(tmp, out_dir, o->force);
    if (st) {
        lt_remove_tree(tmp);
        return lt_error_wrap(st, "export %s to '%s'", lt_export_format_name(f), out_dir);
    }
    lt_info("exported %s (%s) to %s", lt_export_format_name(f), lt_dtype_name(dtype), out_dir);
    return LT_OK;
}
