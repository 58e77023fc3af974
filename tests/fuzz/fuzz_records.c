/* libFuzzer: a dataset file through lt_record_reader_open / _next, as JSONL (or a JSON array: the
 * reader decides by the first byte) with format detection, and again as each explicit format
 * (alpaca, sharegpt, messages, text), skipping malformed records as `lathe tokenize` does. */
#include "fuzz.h"
#include "data/data.h"

static void read_all(const char *path, lt_record_format f) {
    lt_record_reader *rd;
    if (lt_record_reader_open(&rd, path, f, LT_ON_ERROR_SKIP) != LT_OK) return;
    lt_record rec;
    bool got = true;
    for (int n = 0; got && n < 100000; n++)
        if (lt_record_reader_next(rd, &rec, &got) != LT_OK) break;
    lt_record_reader_free(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fz_write(path, sizeof path, "data.jsonl", data, size, 0);
    for (int f = 0; f < LT_FORMAT_COUNT; f++) read_all(path, (lt_record_format)f);
    return 0;
}
