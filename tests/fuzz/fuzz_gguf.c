/* libFuzzer: a GGUF file through lt_gguf_open (header, metadata of every type, tensor infos),
 * then the model config (lt_model_config_from_gguf), the tokenizer (lt_tokenizer_from_gguf) and,
 * when one loads, an encode/decode round of a fixed text. The file gets a 4 MiB zero tail so that
 * tensor data a mutated header points at exists and the later stages are reached. */
#include "fuzz.h"
#include "io/io.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fz_write(path, sizeof path, "in.gguf", data, size, 4u << 20);
    lt_gguf *g;
    if (lt_gguf_open(&g, path) != LT_OK) return 0;
    lt_model_config cfg;
    (void)lt_model_config_from_gguf(&cfg, g);
    lt_tokenizer *t = NULL;
    if (lt_tokenizer_from_gguf(&t, g) == LT_OK) {
        static const char text[] = "Hello world! 123 <|im_start|>caf\xc3\xa9 \xff\xfe";
        lt_tokens v = {0};
        lt_tokenizer_encode(t, text, sizeof text - 1, true, 0, &v);
        free(lt_tokenizer_decode(t, v.ids, v.n));
        lt_tokens_free(&v);
        lt_tokenizer_free(t);
    }
    lt_gguf_close(g);
    return 0;
}
