/*
 * spm.c — SentencePiece-style BPE over a "llama" GGUF vocabulary.
 *
 * Algorithm (llama.cpp src/llama-vocab.cpp llm_tokenizer_spm_session, itself after
 * google/sentencepiece bpe_model.cc): spaces become U+2581 (and one is prepended when asked);
 * the text is split into UTF-8 characters; repeatedly the adjacent pair whose concatenation is a
 * vocabulary token with the highest score is merged (ties: the leftmost pair); finally each
 * symbol becomes its token, or — when a single character is not in the vocabulary — one
 * <0xNN> byte token per byte (the unknown token when the vocabulary has no byte tokens).
 * Tokens scored -inf are never formed by a merge (see try_bigram).
 * Invalid UTF-8 needs no special case: a stray byte is a one-byte "character" that falls back
 * to its byte token.
 */
#include "tok_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t prev, next; /* symbol indices, -1 at the ends */
    uint32_t start, n;  /* byte span in the normalized text; n = 0 once merged away */
} spm_sym;

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size; /* bytes of the merged text when queued (stale if the symbols changed) */
} spm_bigram;

typedef struct {
    spm_bigram *a;
    size_t n, cap;
} spm_heap;

/* a before b: higher score first, then the leftmost pair */
static inline bool bigram_before(const spm_bigram *a, const spm_bigram *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static void heap_push(spm_heap *h, spm_bigram v) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->a = lt_xrealloc(h->a, h->cap * sizeof *h->a);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&v, &h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = v;
}

static spm_bigram heap_pop(spm_heap *h) {
    spm_bigram top = h->a[0];
    spm_bigram last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(&h->a[c + 1], &h->a[c])) c++;
        if (!bigram_before(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = last;
    return top;
}

/* Length of the UTF-8 character at s (n bytes left): the length its lead byte announces
 * (llama.cpp unicode_len_utf8) when that many bytes follow and all are continuation bytes, else 1,
 * so a broken sequence never swallows the start of the next character (llama.cpp would; only
 * invalid input can tell the difference). */
static inline uint32_t utf8_len(const unsigned char *s, size_t n) {
    static const uint8_t lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    uint32_t l = lut[s[0] >> 4];
    if (l > n) return 1;
    for (uint32_t k = 1; k < l; k++)
        if ((s[k] & 0xC0) != 0x80) return 1;
    return l;
}

static void try_bigram(const lt_tokenizer *t, const char *text, const spm_sym *sym, int32_t l,
                       int32_t r, spm_heap *h) {
    if (l < 0 || r < 0) return;
    uint32_t size = sym[l].n + sym[r].n;
    int32_t id = lt_tok_lookup(t, text + sym[l].start, size);
    /* a token scored -inf is never a merge result: vocabularies built from HF merges (hf_json.c)
     * score the tokens no merge produces so, as HF BPE can never form them */
    if (id < 0 || (isinf(t->scores[id]) && t->scores[id] < 0)) return;
    heap_push(h, (spm_bigram){t->scores[id], l, r, size});
}

void lt_tok_spm_encode(const lt_tokenizer *t, const char *text, size_t len, bool prefix_space,
                       uint8_t mask, lt_tokens *out) {
    /* normalize: optional dummy prefix, ' ' -> U+2581 (3 bytes) */
    size_t spaces = prefix_space ? 1 : 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t nlen = len + spaces * 2 + (prefix_space ? 1 : 0);
    char *norm = lt_xmalloc(nlen + 1);
    size_t k = 0;
    if (prefix_space) {
        memcpy(norm, "\xe2\x96\x81", 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(norm + k, "\xe2\x96\x81", 3);
            k += 3;
        } else {
            norm[k++] = text[i];
        }
    }
    LT_ASSERT(k == nlen);

    spm_sym *sym = lt_xmalloc((nlen + 1) * sizeof *sym);
    int32_t ns = 0;
    for (size_t i = 0; i < nlen;) {
        uint32_t l = utf8_len((const unsigned char *)norm + i, nlen - i);
        sym[ns] = (spm_sym){ns - 1, -1, (uint32_t)i, l};
        if (ns > 0) sym[ns - 1].next = ns;
        ns++;
        i += l;
    }

    spm_heap h = {0};
    for (int32_t i = 1; i < ns; i++) try_bigram(t, norm, sym, i - 1, i, &h);
    while (h.n) {
        spm_bigram b = heap_pop(&h);
        spm_sym *L = &sym[b.left], *R = &sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size || L->next != b.right) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sym[R->next].prev = b.left;
        try_bigram(t, norm, sym, L->prev, b.left, &h);
        try_bigram(t, norm, sym, b.left, L->next, &h);
    }

    for (int32_t i = ns > 0 ? 0 : -1; i >= 0; i = sym[i].next) {
        int32_t id = lt_tok_lookup(t, norm + sym[i].start, sym[i].n);
        if (id >= 0) {
            lt_tokens_push(out, id, mask);
            continue;
        }
        bool all_bytes = true;
        for (uint32_t j = 0; j < sym[i].n; j++)
            all_bytes &= t->byte_ids[(unsigned char)norm[sym[i].start + j]] >= 0;
        if (!all_bytes) { /* no byte tokens: one unknown token for the character */
            if (t->unk >= 0) lt_tokens_push(out, t->unk, mask);
            continue;
        }
        for (uint32_t j = 0; j < sym[i].n; j++)
            lt_tokens_push(out, t->byte_ids[(unsigned char)norm[sym[i].start + j]], mask);
    }
    free(h.a);
    free(sym);
    free(norm);
}
