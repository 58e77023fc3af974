/* libFuzzer: a safetensors file through lt_safetensors_open (u64 header length, JSON header,
 * dtypes, shapes, data offsets, __metadata__), then every tensor converted to F32 (reads exactly
 * the bytes the header claims). A 1 MiB zero tail stands for the data section. */
#include "fuzz.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fz_write(path, sizeof path, "in.safetensors", data, size, 1u << 20);
    lt_safetensors *st;
    if (lt_safetensors_open(&st, path) != LT_OK) return 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const lt_st_tensor *t = &st->tensors[i];
        size_t esz = t->dtype == LT_F32 || t->dtype == LT_I32 ? 4 : t->dtype == LT_U8 ? 1 : 2;
        size_t numel = t->nbytes / esz;
        if (numel > (1u << 20)) continue; /* the bytes exist; converting megabytes is slow */
        float *dst = malloc((numel ? numel : 1) * sizeof *dst);
        lt_st_tensor_to_f32(t, dst);
        free(dst);
    }
    (void)lt_safetensors_meta(st, "format");
    lt_safetensors_close(st);
    return 0;
}
