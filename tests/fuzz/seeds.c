/* Seed inputs for the fuzz harnesses that cannot be cut from the fixtures with a shell (built and
 * run by tools/fuzz.sh; nothing here is committed as data): small crafted GGUF vocabularies (a
 * byte-level BPE and a SentencePiece one), stories260K's tokenizer as tokenizer.json, and
 * bitsandbytes NF4 weights (plain and double-quantized) in fuzz_bnb's input layout.
 * usage: fuzz_seeds OUT_DIR STORIES260K_GGUF */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "io/io.h"
#include "quant/quant.h"
#include "tokenizer/tokenizer.h"

/* fuzz_bnb's layout: u16 rows-1, u16 cols-1, u16 config length, config.json, safetensors. */
static void bnb_seed(const char *out_dir, const char *name, bool double_quant) {
    enum { ROWS = 16, COLS = 128 };
    static float x[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) x[i] = (float)((i * 37) % 101 - 50) * 0.01f;
    lt_tensor t = {.dtype = LT_F32, .ndim = 2, .shape = {ROWS, COLS}, .data = x, .name = "w"};
    lt_tensor q;
    if (lt_nf4_quantize(&q, &t, 64, double_quant) != LT_OK) return;
    char st_path[4096], path[4096];
    snprintf(st_path, sizeof st_path, "%s/bnb/%s.safetensors", out_dir, name);
    lt_st_writer *w = lt_st_writer_new();
    if (lt_bnb_write_nf4(w, "model.layers.0.mlp.down_proj.weight", &q) == LT_OK)
        lt_st_writer_write(w, st_path);
    lt_bnb_writer_release(w);
    lt_st_writer_free(w);
    lt_nf4_free(&q);
    char cfg[512];
    int clen = snprintf(cfg, sizeof cfg, "{\"quantization_config\": {\"quant_method\": "
                        "\"bitsandbytes\", \"load_in_4bit\": true, \"bnb_4bit_quant_type\": "
                        "\"nf4\", \"bnb_4bit_use_double_quant\": %s, "
                        "\"bnb_4bit_compute_dtype\": \"bfloat16\"}}",
                        double_quant ? "true" : "false");
    FILE *in = fopen(st_path, "rb");
    snprintf(path, sizeof path, "%s/bnb/%s", out_dir, name);
    FILE *out = fopen(path, "wb");
    if (in && out) {
        unsigned char hdr[6] = {ROWS - 1, 0, COLS - 1, 0, (unsigned char)clen,
                                (unsigned char)(clen >> 8)};
        fwrite(hdr, 1, sizeof hdr, out);
        fwrite(cfg, 1, (size_t)clen, out);
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    }
    if (in) fclose(in);
    if (out) fclose(out);
    remove(st_path);
}

static void tiny_vocab(const char *path, const char *model) {
    static char store[300][8];
    const char *toks[300];
    int32_t types[300];
    float scores[300];
    int n = 0;
    for (int b = 0; b < 256; b++, n++) {
        if (!strcmp(model, "llama")) snprintf(store[n], sizeof store[n], "<0x%02X>", b);
        else if (b > 32 && b < 127) snprintf(store[n], sizeof store[n], "%c", b);
        else snprintf(store[n], sizeof store[n], "\xc4%c", 0x80 + (b & 0x3f));
        toks[n] = store[n];
        types[n] = strcmp(model, "llama") ? 1 : 6;
        scores[n] = 0;
    }
    const char *extra[] = {"ab", "<|im_start|>", "<|im_end|>", "\xe2\x96\x81" "a", "abc"};
    for (int i = 0; i < 5; i++, n++) {
        toks[n] = extra[i];
        types[n] = (i == 1 || i == 2) ? 3 : 1;
        scores[n] = -(float)i;
    }
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_gguf_writer_set_str(w, "general.architecture", "llama");
    lt_gguf_writer_set_u32(w, "llama.block_count", 2);
    lt_gguf_writer_set_u32(w, "llama.embedding_length", 64);
    lt_gguf_writer_set_u32(w, "llama.feed_forward_length", 128);
    lt_gguf_writer_set_u32(w, "llama.attention.head_count", 4);
    lt_gguf_writer_set_u32(w, "llama.context_length", 256);
    lt_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    lt_gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    lt_gguf_writer_set_str(w, "tokenizer.ggml.pre", "smollm");
    lt_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", toks, (size_t)n);
    lt_gguf_writer_set_i32_arr(w, "tokenizer.ggml.token_type", types, (size_t)n);
    lt_gguf_writer_set_f32_arr(w, "tokenizer.ggml.scores", scores, (size_t)n);
    const char *merges[] = {"a b", "ab c"};
    lt_gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", merges, 2);
    lt_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 257);
    lt_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 258);
    lt_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    static const float norm[64];
    const int64_t ne[1] = {64};
    lt_gguf_writer_add_tensor(w, "output_norm.weight", LT_F32, 1, ne, norm);
    if (lt_gguf_writer_write(w, path) != LT_OK) fprintf(stderr, "%s\n", lt_error_message());
    lt_gguf_writer_free(w);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_seeds OUT_DIR STORIES260K_GGUF\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/gguf/tiny_bpe.gguf", argv[1]);
    tiny_vocab(path, "gpt2");
    snprintf(path, sizeof path, "%s/gguf/tiny_spm.gguf", argv[1]);
    tiny_vocab(path, "llama");
    lt_tokenizer *t;
    if (lt_tokenizer_load(&t, argv[2]) == LT_OK) {
        snprintf(path, sizeof path, "%s/tokhf_stories260K", argv[1]);
        if (lt_tokenizer_write_hf(t, path) != LT_OK) fprintf(stderr, "%s\n", lt_error_message());
        lt_tokenizer_free(t);
    }
    snprintf(path, sizeof path, "%s/gguf/tiny_bpe.gguf", argv[1]);
    if (lt_tokenizer_load(&t, path) == LT_OK) {
        snprintf(path, sizeof path, "%s/tokhf_tiny", argv[1]);
        lt_tokenizer_write_hf(t, path);
        lt_tokenizer_free(t);
    }
    bnb_seed(argv[1], "nf4", false);
    bnb_seed(argv[1], "nf4_dq", true);
    return 0;
}
