/* libFuzzer: any bytes through a tokenizer with an NFC normalizer (a tokenizer.json written once):
 * lt_tokenizer_normalized, whose fast path copies stable code points and normalizes only the
 * chunks around the others (src/tokenizer/nfc.c), must equal libutf8proc's NFC of the whole
 * input when the input is valid UTF-8 (the invalid bytes' rule is ours, so there it only has to
 * be memory-safe); then the input is encoded, with special tokens parsed. */
#include "fuzz.h"
#include "tokenizer/tokenizer.h"

#include <utf8proc.h>

static lt_tokenizer *nfc_tokenizer(void) {
    static lt_tokenizer *t;
    if (t) return t;
    static const char json[] =
        "{\"normalizer\":{\"type\":\"NFC\"},\"added_tokens\":[{\"id\":3,\"content\":\"<s>\","
        "\"special\":true,\"normalized\":false}],\"pre_tokenizer\":{\"type\":\"ByteLevel\","
        "\"add_prefix_space\":false,\"use_regex\":true},\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"<s>\":3},"
        "\"merges\":[\"a b\"]}}";
    char path[128];
    fz_write(path, sizeof path, "tokenizer.json", (const uint8_t *)json, sizeof json - 1, 0);
    if (lt_tokenizer_from_hf_dir(&t, fz_dir()) != LT_OK) abort();
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lt_tokenizer *t = nfc_tokenizer();
    size_t n;
    char *got = lt_tokenizer_normalized(t, (const char *)data, size, false, &n);
    utf8proc_uint8_t *want = NULL;
    utf8proc_ssize_t wn = utf8proc_map(data, (utf8proc_ssize_t)size, &want,
                                       UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    /* without parse_special "<s>" (a special token) does not split the text: one run */
    if (wn >= 0 && (!got ? (size_t)wn != size || memcmp(data, want, size) != 0
                         : (size_t)wn != n || memcmp(got, want, n) != 0))
        abort();
    free(want);
    free(got);
    lt_tokens v = {0};
    lt_tokenizer_encode(t, (const char *)data, size, true, 0, &v);
    lt_tokens_free(&v);
    return 0;
}
