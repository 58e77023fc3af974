/* Reference token ids for the tokenizer tests: tests/data/tokenizer/<file> in the format
 * tools/gen_tokenizer_refs.py (and gen_hf_family_refs.py) write — '#' comment lines, then one
 * case per line: name \t source \t offset \t length \t special \t ids (space-separated), where
 * source is "fixtures/<path>" (under $LATHE_FIXTURES) or "repo:<path>" and the case's text is
 * bytes [offset, offset + length) of that file. One reader for test_tokenizer.c,
 * test_tokenizer_hf.c and test_vocabs.c. */
#ifndef LATHE_TESTS_REFS_H
#define LATHE_TESTS_REFS_H

#include "support.h"

typedef struct {
    char name[64], source[256];
    long offset, length;
    int special; /* the ids were made with special tokens parsed */
    int32_t *ids;
    size_t n;
} ts_ref_case;

/* Every case of tests/data/tokenizer/<file> into *out (malloc'ed; free with ts_refs_free);
 * returns the count. Fails the test on a missing file or malformed line (tests run from the
 * repository root). */
static inline size_t ts_refs_load(const char *file, ts_ref_case **out) {
    char path[512], *data;
    size_t n, nc = 0;
    snprintf(path, sizeof path, "tests/data/tokenizer/%s", file);
    cr_assert_eq(lt_read_file(path, &data, &n), LT_OK, "%s (tests run from the repo root)",
                 lt_error_message());
    ts_ref_case *cs = NULL;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || !line[0]) continue;
        cs = realloc(cs, (nc + 1) * sizeof *cs);
        ts_ref_case *c = memset(&cs[nc++], 0, sizeof *cs);
        char *f[6] = {0}, *s2 = NULL;
        for (int k = 0; k < 6; k++) f[k] = strtok_r(k ? NULL : line, "\t", &s2);
        cr_assert(f[4], "%s: malformed line %zu", path, nc);
        snprintf(c->name, sizeof c->name, "%s", f[0]);
        snprintf(c->source, sizeof c->source, "%s", f[1]);
        c->offset = atol(f[2]);
        c->length = atol(f[3]);
        c->special = atoi(f[4]);
        for (char *p = f[5], *e; p && *p; p = e) {
            long v = strtol(p, &e, 10);
            if (e == p) break;
            c->ids = realloc(c->ids, (c->n + 1) * sizeof *c->ids);
            c->ids[c->n++] = (int32_t)v;
        }
    }
    free(data);
    *out = cs;
    return nc;
}

static inline void ts_refs_free(ts_ref_case *cs, size_t n) {
    for (size_t i = 0; i < n; i++) free(cs[i].ids);
    free(cs);
}

/* The case called `name`; fails the test when there is none. */
static inline const ts_ref_case *ts_ref_find(const ts_ref_case *cs, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(cs[i].name, name) == 0) return &cs[i];
    cr_assert_fail("reference case %s missing", name);
    return NULL;
}

/* The case's text (malloc'ed, NUL-terminated, *len bytes), re-read from the fixtures (skipping
 * the test when they are absent) or the repository; fails when the slice is outside the file. */
static inline char *ts_ref_text(const ts_ref_case *c, size_t *len) {
    char path[4096], *data;
    size_t n;
    if (strncmp(c->source, "fixtures/", 9) == 0)
        ts_fixture(path, sizeof path, c->source + 9);
    else
        snprintf(path, sizeof path, "%s", c->source + 5);
    cr_assert_eq(lt_read_file(path, &data, &n), LT_OK, "%s", lt_error_message());
    cr_assert(c->offset >= 0 && (size_t)(c->offset + c->length) <= n,
              "%s: slice %ld+%ld outside the file (%zu bytes): fixture changed?", path, c->offset,
              c->length, n);
    memmove(data, data + c->offset, (size_t)c->length);
    data[c->length] = 0;
    *len = (size_t)c->length;
    return data;
}

#endif
