/* libFuzzer: a bitsandbytes NF4 directory's two inputs — config.json's quantization_config through
 * lt_bnb_config_read, and a safetensors file whose "<name>.quant_state.bitsandbytes__nf4" weights
 * go through lt_bnb_read_nf4 (packed JSON quant state, absmax / nested absmax / quant maps, codes)
 * and, when read, a full dequantization. Input layout: u16 rows, u16 cols, u16 config length L,
 * L bytes of config.json, then the safetensors file (a 64 KiB zero tail stands for its data). */
#include "fuzz.h"
#include "io/io.h"
#include "quant/quant.h"

#define QS_SUFFIX ".quant_state.bitsandbytes__nf4"

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 6) return 0;
    int64_t rows = u16(data) % 512 + 1, cols = u16(data + 2) % 1024 + 1;
    size_t clen = u16(data + 4);
    if (clen > size - 6) clen = size - 6;
    char path[128];
    fz_write(path, sizeof path, "config.json", data + 6, clen, 0);
    bool found;
    lt_bnb_config bc;
    (void)lt_bnb_config_read(path, &found, &bc);
    fz_write(path, sizeof path, "model.safetensors", data + 6 + clen, size - 6 - clen, 1u << 16);
    lt_safetensors *st;
    if (lt_safetensors_open(&st, path) != LT_OK) return 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const char *nm = st->tensors[i].name;
        size_t n = strlen(nm), k = sizeof QS_SUFFIX - 1;
        if (n <= k || strcmp(nm + n - k, QS_SUFFIX)) continue;
        char base[512];
        if (n - k >= sizeof base) continue;
        memcpy(base, nm, n - k);
        base[n - k] = 0;
        if (!lt_bnb_is_quantized(st, base)) __builtin_trap(); /* the companion was just found */
        lt_tensor q;
        if (lt_bnb_read_nf4(st, base, rows, cols, &q) != LT_OK) continue;
        float *deq = malloc((size_t)(rows * cols) * sizeof *deq);
        lt_nf4_dequant_range(q.data, q.quant, 0, rows * cols, deq);
        free(deq);
        lt_nf4_free(&q);
    }
    lt_safetensors_close(st);
    return 0;
}
