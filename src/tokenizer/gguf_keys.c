/*
 * gguf_keys.c — a tokenizer as GGUF tokenizer.ggml.* metadata, the inverse of
 * lt_tokenizer_from_gguf (tokenizer.c). Key names and meanings: ggml-org/ggml docs/gguf.md
 * ("Tokenizer") and llama.cpp gguf-py/gguf/constants.py (Keys.Tokenizer); types as llama.cpp's
 * convert_hf_to_gguf.py writes them (ids uint32, token_type int32, scores float32).
 *
 * Every id key is written, 0xFFFFFFFF meaning "none", because the loader defaults missing BOS /
 * EOS / unknown ids of a "llama" vocabulary to 1 / 2 / 0 (llama.cpp). The merges of a byte-level
 * vocabulary are the merge table in rank order ("left right"). What GGUF cannot say is lost:
 * a Hugging Face Metaspace prefix scheme (written as add_space_prefix, which llama.cpp applies to
 * every run), a pre-tokenizer regex list llama.cpp has no name for (pre = "hf", which the
 * loader refuses) and an NFC normalizer (a warning names it: llama.cpp's own conversion of
 * Qwen2 drops it too, and the ids differ only for text not in NFC).
 */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

void lt_tokenizer_to_gguf(const lt_tokenizer *t, lt_gguf_writer *w) {
    bool spm = t->kind == TOK_KIND_SPM;
    if (t->nfc)
        lt_warn("the tokenizer's NFC normalizer has no GGUF key: llama.cpp and lathe encode the "
                "GGUF's text without it (the same ids for text already in NFC)");
    lt_gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    if (!spm) lt_gguf_writer_set_str(w, "tokenizer.ggml.pre", t->pre);
    const char **toks = lt_xmalloc((size_t)t->n_vocab * sizeof *toks);
    for (int32_t i = 0; i < t->n_vocab; i++) toks[i] = lt_tok_text(t, i);
    lt_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", toks, (size_t)t->n_vocab);
    free(toks);
    lt_gguf_writer_set_f32_arr(w, "tokenizer.ggml.scores", t->scores, (size_t)t->n_vocab);
    lt_gguf_writer_set_i32_arr(w, "tokenizer.ggml.token_type", t->types, (size_t)t->n_vocab);
    if (!spm) {
        int32_t *pairs;
        size_t n = lt_tok_bpe_merge_pairs(t, &pairs);
        char **m = lt_xmalloc((n + 1) * sizeof *m);
        for (size_t i = 0; i < n; i++) {
            int32_t l = pairs[2 * i], r = pairs[2 * i + 1];
            size_t ll = t->tok_len[l], rl = t->tok_len[r];
            m[i] = lt_xmalloc(ll + rl + 2);
            memcpy(m[i], lt_tok_text(t, l), ll);
            m[i][ll] = ' ';
            memcpy(m[i] + ll + 1, lt_tok_text(t, r), rl);
            m[i][ll + rl + 1] = 0;
        }
        lt_gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", (const char *const *)m, n);
        for (size_t i = 0; i < n; i++) free(m[i]);
        free(m);
        free(pairs);
    }
    static const char *const id_keys[4] = {"tokenizer.ggml.bos_token_id",
                                           "tokenizer.ggml.eos_token_id",
                                           "tokenizer.ggml.unknown_token_id",
                                           "tokenizer.ggml.padding_token_id"};
    int32_t ids[4] = {t->bos, t->eos, t->unk, t->pad};
    for (int k = 0; k < 4; k++)
        lt_gguf_writer_set_u32(w, id_keys[k], ids[k] >= 0 ? (uint32_t)ids[k] : 0xFFFFFFFFu);
    lt_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos);
    lt_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos);
    if (spm) lt_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix);
    if (t->chat_template) lt_gguf_writer_set_str(w, "tokenizer.chat_template", t->chat_template);
}
