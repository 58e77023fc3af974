/*
 * tok_internal.h — the tokenizer's private state, shared by the files of src/tokenizer/ only
 * (tokenizer.c: loading, lookup, special tokens, decode; spm.c: SentencePiece-style BPE;
 * bpe.c: byte-level BPE; chat.c: chat templates). Nothing outside this folder includes it.
 *
 * Invariants: every token string lives in `blob` (tok_off[i], tok_len[i]); `tok_map` maps each
 * distinct token string to its lowest id; `merge_map` maps a pair of ids (byte-level BPE only) to
 * the merge's rank and the id of the concatenation; specials are bucketed by first byte, each
 * bucket sorted by length, longest first.
 */
#ifndef LATHE_TOK_INTERNAL_H
#define LATHE_TOK_INTERNAL_H

#include "tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* GGUF token types (llama.cpp llama_token_type). */
enum {
    TOK_UNDEFINED = 0,
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER_DEFINED = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6,
};

typedef enum { TOK_KIND_SPM = 0, TOK_KIND_BPE } tok_kind;

/* Where SentencePiece-style encoding prepends U+2581 (when add_space_prefix):
 *  EVERY_RUN   — to every text run: the sequence start and each run after a special token, even
 *                when the run starts with a space (llama.cpp; HF normalizer Prepend("▁")).
 *  META_ALWAYS — HF Metaspace prepend_scheme "always": every run, unless it starts with a space.
 *  META_FIRST  — HF Metaspace prepend_scheme "first": the first run of the input only, unless it
 *                starts with a space. */
typedef enum { TOK_PREFIX_EVERY_RUN = 0, TOK_PREFIX_META_ALWAYS, TOK_PREFIX_META_FIRST } tok_prefix;

/* How a pre-tokenizer regex splits (HF tokenizers SplitDelimiterBehavior): ISOLATED keeps each
 * match as a piece of its own, REMOVED drops the matches. Text between matches is a piece. */
typedef enum { TOK_SPLIT_ISOLATED = 0, TOK_SPLIT_REMOVED } tok_split;

/* Open-addressing string -> id map (keys point into the tokenizer's blob). */
typedef struct {
    uint32_t *slots; /* id + 1, 0 = empty */
    uint64_t mask;   /* capacity - 1, capacity a power of two */
} tok_strmap;

/* Open-addressing (left id, right id) -> (rank, result id) map for byte-level merges. */
typedef struct {
    uint64_t *keys;  /* (left << 32 | right) + 1, 0 = empty */
    int32_t *rank;
    int32_t *result;
    uint64_t mask;
} tok_pairmap;

#define TOK_MAX_REGEX 8 /* deepseek-llm has 6 */

struct lt_tokenizer {
    tok_kind kind;
    char *pre;                 /* tokenizer.ggml.pre ("" for SPM) */
    int32_t n_vocab;
    char *blob;                /* all token strings back to back */
    uint64_t *tok_off;         /* [n_vocab] */
    uint32_t *tok_len;         /* [n_vocab] */
    float *scores;             /* [n_vocab] (0 when the file has none) */
    int32_t *types;            /* [n_vocab] (NORMAL when the file has none) */
    tok_strmap tok_map;

    int32_t bos, eos, pad, unk;
    bool add_bos;
    bool add_eos;              /* tokenizer.ggml.add_eos_token / add_eos_token (kept, not applied) */
    bool add_space_prefix;     /* SPM only */
    bool nfc;                  /* NFC-normalize each text run before encoding (tokenizer.json
                                * normalizer NFC; GGUF has no key for it) */
    tok_prefix prefix_mode;    /* SPM only: where the space prefix goes */
    int32_t byte_ids[256];     /* SPM: <0xNN> ids (-1 absent); BPE: id of the byte's unicode char */

    /* byte-level BPE */
    int n_merges;
    tok_pairmap merge_map;
    int n_regex;
    pcre2_code *regex[TOK_MAX_REGEX];
    char *regex_src[TOK_MAX_REGEX];     /* owned pattern text, for writing the tokenizer out */
    tok_split regex_split[TOK_MAX_REGEX];
    bool byte_prefix_space;    /* HF ByteLevel add_prefix_space: a run not starting with ' ' gets one */
    bool ignore_merges;        /* llama3, tekken: a whole pre-token that is in the vocab is one token */
    uint16_t byte_to_cp[256];  /* GPT-2 bytes_to_unicode */
    int16_t cp_to_byte[324];   /* inverse over code points < 324 (-1 elsewhere) */

    /* special tokens: ids bucketed by first byte, longest first */
    int32_t *special_ids;
    uint32_t special_start[257];
    uint32_t n_user_defined;   /* how many of them are USER_DEFINED (matched even without
                                * parse_special, as llama.cpp and HF tokenizers do) */

    char *chat_template;       /* owned copy or NULL */
    char *default_system;      /* ChatML default system prompt or NULL */
    char sha256[65];
};

/* djb-style mixing is too weak for 49k keys; use a 64-bit FNV-1a followed by a finalizer. */
uint64_t lt_tok_hash_bytes(const char *s, size_t n);
/* Id of the exact byte string, -1 when absent. */
int32_t lt_tok_lookup(const lt_tokenizer *t, const char *s, size_t n);
static inline const char *lt_tok_text(const lt_tokenizer *t, int32_t id) {
    return t->blob + t->tok_off[id];
}

/* Encoders for one run of text that holds no special token: append ids with mask `mask`.
 * spm: `prefix_space` prepends U+2581 (SentencePiece's dummy prefix). */
void lt_tok_spm_encode(const lt_tokenizer *t, const char *text, size_t len, bool prefix_space,
                       uint8_t mask, lt_tokens *out);
void lt_tok_bpe_encode(const lt_tokenizer *t, const char *text, size_t len, uint8_t mask,
                       lt_tokens *out);

/* Byte-level BPE set-up: GPT-2 byte map, regexes for `pre`, merges. LT_ERR_MODEL on failure
 * (message names `path` and the key). */
lt_status lt_tok_bpe_init(lt_tokenizer *t, const lt_gguf *g, const char *path);
void lt_tok_bpe_free(lt_tokenizer *t);

/* The pieces lt_tok_bpe_init is made of, for other sources (tokenizer.json):
 * byte maps (after the string map is built); one pre-tokenizer regex (compiled, source copied;
 * LT_ERR_MODEL naming `where` when it does not compile or there are more than TOK_MAX_REGEX);
 * the pre-tokenizer name whose regex list equals the current one (NULL when none); the merge
 * table sized for n merges; one merge by token strings (false when a part or the concatenation
 * is not a token, so it can never apply). */
void lt_tok_bpe_bytes(lt_tokenizer *t);
lt_status lt_tok_bpe_add_regex(lt_tokenizer *t, const char *src, tok_split how, const char *where);
const char *lt_tok_bpe_known_pre(const lt_tokenizer *t);
void lt_tok_bpe_merges_alloc(lt_tokenizer *t, size_t n);
bool lt_tok_bpe_add_merge(lt_tokenizer *t, int32_t rank, const char *l, size_t ll, const char *r,
                          size_t rl);
/* The merges as (left id, right id) pairs in rank order, malloc'ed [2 * count]; returns count. */
size_t lt_tok_bpe_merge_pairs(const lt_tokenizer *t, int32_t **pairs);
/* GPT-2's pre-tokenizer regex as lathe spells it (HF ByteLevel use_regex adds "|\\s+", which
 * never changes a split: see bpe.c). */
extern const char *const LT_TOK_RE_GPT2;

/* Shared by the loaders (tokenizer.c): allocate the per-token arrays for n tokens (types NORMAL,
 * scores 0); build the string map (after all token strings are in); build the special-token
 * buckets and the checksum (last). */
void lt_tok_alloc_vocab(lt_tokenizer *t, int32_t n, size_t blob_bytes);
void lt_tok_build_map(lt_tokenizer *t);
void lt_tok_finish(lt_tokenizer *t);

/* NFC (UAX #15) of text[0,len): false when the text is NFC as it is (nothing written); else
 * true with *out malloc'ed (*out_len bytes, not NUL-terminated). Invalid UTF-8 bytes are kept as
 * they are and normalization runs on the valid stretches between them. nfc.c. */
bool lt_tok_nfc(const char *text, size_t len, char **out, size_t *out_len);

/* Encode with an explicit SentencePiece "start of text" state (spm: prefix a space to the first
 * text run and to each run that follows a special token, as llama.cpp does). */
void lt_tok_encode_ex(const lt_tokenizer *t, const char *text, size_t len, bool parse_special,
                      uint8_t mask, bool at_start, lt_tokens *out);

#endif
