/*
 * nfc.c — Unicode Normalization Form C for the tokenizer's `nfc` normalizer (a tokenizer.json
 * with {"type": "NFC"}, as Qwen2 / Qwen2.5 / Qwen3 have). Definition: Unicode Standard Annex
 * #15; the composition itself is libutf8proc's (Debian libutf8proc-dev, Unicode 15.0 in 2.8),
 * which is what Hugging Face tokenizers' NFC (Rust unicode-normalization) computes for every
 * character both Unicode versions assign.
 */
#include "tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Code points whose characters all have NFC_Quick_Check = Yes, canonical combining class 0, and
 * are the second character of no canonical composition (UAX #15 §9 and §10): NFC never changes
 * them, and nothing before one of them interacts with it or with anything after it, so that
 * NFC(a + x + b) = NFC(a) + NFC(x + b). The blocks are the text users feed Qwen: U+0000..02FF
 * (ASCII, Latin-1, Latin Extended), CJK symbols and kana (U+3000..3029, 3030..3098, 309B..30FF;
 * not the combining marks U+302A..302F and U+3099..309A), CJK ideographs (U+3400..4DBF,
 * 4E00..9FFF), Hangul syllables (U+AC00..D7A3), fullwidth forms (U+FF00..FFEF) and emoji
 * (U+1F000..1FAFF); each code point checked with Python's unicodedata (Unicode 14). */
static bool stable(uint32_t cp) {
    return cp < 0x300 || (cp >= 0x3000 && cp <= 0x3029) || (cp >= 0x3030 && cp <= 0x3098) ||
           (cp >= 0x309B && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
           (cp >= 0xFF00 && cp <= 0xFFEF) || (cp >= 0x1F000 && cp <= 0x1FAFF);
}

/* Length of the UTF-8 sequence at s[i] (1 for a byte that starts none) and whether it is a
 * stable code point; anything malformed is not (the slow path keeps its bytes as they are). */
static size_t next_cp(const unsigned char *s, size_t n, size_t i, bool *is_stable) {
    unsigned char c = s[i];
    *is_stable = c < 0x80;
    if (c < 0x80) return 1;
    size_t k = c >= 0xF8 ? 0 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (k == 0 || i + k > n) return 1;
    uint32_t cp = c & (0x7Fu >> k);
    for (size_t j = 1; j < k; j++) {
        if ((s[i + j] & 0xC0) != 0x80) return 1;
        cp = cp << 6 | (s[i + j] & 0x3F);
    }
    /* overlong forms decode below their length's range: not stable, so kept by the slow path */
    *is_stable = cp >= (k == 2 ? 0x80u : k == 3 ? 0x800u : 0x10000u) && stable(cp);
    return k;
}

static void append(char **buf, size_t *n, size_t *cap, const void *src, size_t k) {
    if (*n + k + 1 > *cap) *buf = lt_xrealloc(*buf, *cap = (*n + k + 1) * 2);
    memcpy(*buf + *n, src, k);
    *n += k;
}

/* NFC of s[0,n) appended: each maximal valid UTF-8 stretch through libutf8proc, an invalid byte
 * kept as it is (Rust strings, and so `tokenizers`, cannot hold one: any rule is ours). */
static void nfc_slow(const unsigned char *s, size_t n, char **buf, size_t *bn, size_t *cap) {
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate(s + j, (utf8proc_ssize_t)(n - j), &cp);
            if (k <= 0) break;
            j += (size_t)k;
        }
        if (j > i) {
            utf8proc_uint8_t *mapped = NULL;
            utf8proc_ssize_t m = utf8proc_map(s + i, (utf8proc_ssize_t)(j - i), &mapped,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (m < 0) { /* the stretch is valid UTF-8: only running out of memory remains */
                fprintf(stderr, "fatal: utf8proc_map of %zu bytes: %s\n", j - i,
                        utf8proc_errmsg(m));
                abort();
            }
            append(buf, bn, cap, mapped, (size_t)m);
            free(mapped);
        }
        if (j < n) append(buf, bn, cap, s + j++, 1); /* the invalid byte */
        i = j;
    }
}

bool lt_tok_nfc(const char *text, size_t len, char **out, size_t *out_len) {
    const unsigned char *s = (const unsigned char *)text;
    char *buf = NULL;
    size_t n = 0, cap = 0, done = 0, last_stable = SIZE_MAX;
    for (size_t i = 0; i < len;) {
        bool st;
        size_t k = next_cp(s, len, i, &st);
        if (st) {
            last_stable = i;
            i += k;
            continue;
        }
        /* the chunk from the stable code point before i (which the marks may compose with)
         * through the code points up to the next stable one goes through libutf8proc */
        size_t from = last_stable != SIZE_MAX && last_stable >= done ? last_stable : done;
        size_t to = i + k;
        while (to < len) {
            size_t k2 = next_cp(s, len, to, &st);
            if (st) break;
            to += k2;
        }
        if (!buf) buf = lt_xmalloc(cap = len + 16);
        append(&buf, &n, &cap, s + done, from - done);
        nfc_slow(s + from, to - from, &buf, &n, &cap);
        done = i = to;
    }
    if (!buf) return false;
    append(&buf, &n, &cap, s + done, len - done);
    *out = buf;
    *out_len = n;
    return true;
}
