/* `lathe convert`: GGUF <-> Hugging Face directory, through the merged writers with no adapter
 * attached. GGUF -> HF: weights dequantized (quant/ lt_dequant) and Q/K rows un-permuted on load
 * (model/ lt_model_load_gguf), written as safetensors + config.json + tokenizer files rebuilt
 * from the GGUF vocabulary. HF -> GGUF: Q/K rows permuted back (convert_hf_to_gguf.py). */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export_impl.h"

lt_status lt_convert(const char *src_path, lt_convert_to to, const char *out, lt_dtype dtype,
                     int64_t max_shard_bytes, bool force) {
    lt_status st = lt_export_check_dtype(to == LT_CONVERT_TO_HF ? LT_EXPORT_MERGED_SAFETENSORS
                                                               : LT_EXPORT_MERGED_GGUF, dtype);
    if (st) return st;
    struct stat sb;
    if (stat(out, &sb) == 0) {
        if (!force)
            return lt_error_set(LT_ERR_USAGE, "output '%s' already exists; hint: pass --force "
                                "to replace it", out);
        if (to == LT_CONVERT_TO_GGUF && S_ISDIR(sb.st_mode))
            return lt_error_set(LT_ERR_USAGE, "output '%s' is a directory; --to gguf writes one "
                                "file", out);
    }
    lt_export_src src;
    lt_model *m = NULL;
    if ((st = lt_export_src_load(&src, &m, src_path, NULL))) return st;
    if (to == LT_CONVERT_TO_GGUF) {
        st = lt_export_merged_gguf_file(&src, out, dtype);
    } else {
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid()) >= (int)sizeof tmp) {
            st = lt_error_set(LT_ERR_USAGE, "output path '%s' is too long", out);
        } else {
            lt_remove_tree(tmp);
            if (!(st = lt_mkdir_p(tmp)) &&
                !(st = lt_export_merged_hf_dir(&src, tmp, dtype, max_shard_bytes)))
                st = lt_dir_publish(tmp, out, force);
            if (st) lt_remove_tree(tmp);
        }
    }
    lt_export_src_close(&src);
    lt_model_free(m);
    if (st) return lt_error_wrap(st, "convert '%s' to '%s'", src_path, out);
    return LT_OK;
}
