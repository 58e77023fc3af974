/* libFuzzer: a tokenizer.json through lt_tokenizer_from_hf_dir (model type, vocab, merges in both
 * encodings, added tokens, normalizer / pre-tokenizer / decoder chains); a tokenizer that loads
 * encodes and decodes a fixed text. The directory has no tokenizer_config.json. */
#include "fuzz.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fz_write(path, sizeof path, "tokenizer.json", data, size, 0);
    lt_tokenizer *t = NULL;
    if (lt_tokenizer_from_hf_dir(&t, fz_dir()) != LT_OK) return 0;
    static const char text[] = "Hello world! 123 <|im_start|>caf\xc3\xa9 \xff\xfe  \n\t";
    lt_tokens v = {0};
    lt_tokenizer_encode(t, text, sizeof text - 1, true, 0, &v);
    free(lt_tokenizer_decode(t, v.ids, v.n));
    lt_tokens_free(&v);
    lt_tokenizer_free(t);
    return 0;
}
