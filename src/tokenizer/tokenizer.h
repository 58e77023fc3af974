/*
 * tokenizer — text <-> token ids for the two vocabulary kinds GGUF files carry, and chat
 * templates that turn a conversation into ids plus a loss mask.
 *
 *  - "llama": SentencePiece-style BPE by merge scores, byte fallback <0xNN>, the leading-space
 *    rule (a space is prepended and spaces become U+2581). Reference: llama.cpp llm_tokenizer_spm.
 *  - "gpt2": byte-level BPE by merge rank (tokenizer.ggml.merges), pre-split by a PCRE2 regex
 *    chosen from tokenizer.ggml.pre. Reference: llama.cpp src/llama-vocab.cpp, HF tokenizers.
 * Special tokens (BOS/EOS/pad and tokens typed CONTROL, USER_DEFINED or UNKNOWN — the last as
 * llama.cpp's special-token cache does) are matched as whole tokens, longest first, only when the
 * caller asks (parse_special), as chat templates do — except USER_DEFINED ones (HF's non-special
 * added tokens, e.g. MPT's runs of spaces), which split the text always, as in llama.cpp
 * (tokenizer_st_partition) and HF tokenizers. With a SentencePiece vocabulary a text run
 * that follows a special token gets the space prefix again (llama.cpp llama_vocab::tokenize).
 */
#ifndef LATHE_TOKENIZER_H
#define LATHE_TOKENIZER_H

#include "../core/core.h"
#include "../io/io.h"

/* Growable token vector with a parallel loss mask (1 = the token is a training target). Zero-init
 * an lt_tokens to start; lt_tokens_free releases both buffers. */
typedef struct {
    int32_t *ids;
    uint8_t *mask;
    size_t n, cap;
} lt_tokens;
/* Append one id with its mask value, growing both buffers (aborts on host OOM). */
void lt_tokens_push(lt_tokens *v, int32_t id, uint8_t mask);
void lt_tokens_free(lt_tokens *v);

typedef struct lt_tokenizer lt_tokenizer;

/* Build from a GGUF's tokenizer.ggml.* keys. LT_ERR_MODEL naming the file and key when a key is
 * missing or malformed, or the model / pre-tokenizer kind is unsupported (message lists the
 * supported ones). The tokenizer copies what it needs: the GGUF may be closed afterwards. */
lt_status lt_tokenizer_from_gguf(lt_tokenizer **out, const lt_gguf *g);
void lt_tokenizer_free(lt_tokenizer *t);

/* Build from a Hugging Face directory: tokenizer.json (the `tokenizers` serialization,
 * huggingface/tokenizers tokenizers/src/tokenizer/serialization.rs) with model.type BPE, merges as
 * "a b" strings or [a, b] pairs, byte_fallback, ignore_merges; normalizers Sequence / Prepend("▁") /
 * Replace(" ", "▁") / NFC (accepted, not applied — as llama.cpp's conversions do); pre-tokenizers
 * Sequence / Split(Regex or String; Isolated or Removed) / Digits / ByteLevel(add_prefix_space,
 * use_regex) / Metaspace(prepend_scheme always|first|never, split false); decoders ByteLevel,
 * Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence; added_tokens (special ones matched only
 * with parse_special). A ByteLevel pipeline becomes the byte-level engine with the Split regexes,
 * anything with U+2581 handling the SentencePiece-style engine (token scores derived from merge
 * ranks: hf_json.c). Plus tokenizer_config.json when present: bos/eos/pad_token (strings or
 * AddedToken objects), add_bos_token (else: whether the post-processor's template, a
 * TemplateProcessing alone or in a Sequence, starts with BOS), add_eos_token, chat_template (a
 * string, or the list entry named "default"); numbers there are read as doubles (transformers
 * writes model_max_length as the integer 10^30).
 * LT_ERR_MODEL naming the file, the JSON path and a hint for anything unsupported or malformed. */
lt_status lt_tokenizer_from_hf_dir(lt_tokenizer **out, const char *dir);
/* The tokenizer of the model at `path`: a Hugging Face directory (lt_tokenizer_from_hf_dir) or a
 * GGUF file (lt_gguf_open_meta + lt_tokenizer_from_gguf: only the metadata is read, so a model
 * whose tensor types lathe cannot train on, e.g. Q4_K_M, still gives its tokenizer). Their
 * errors. */
lt_status lt_tokenizer_load(lt_tokenizer **out, const char *path);
/* Write tokenizer.json + tokenizer_config.json + special_tokens_map.json into dir (created;
 * each file atomic), such that Hugging Face `tokenizers` / `transformers` tokenize exactly as this
 * tokenizer does (checked on the reference slices: tests/data/tokenizer/<model>.hf.refs). A
 * SentencePiece-style vocabulary gets merges derived from its scores the way transformers' GGUF
 * loader derives them (hf_write.c). LT_ERR_MODEL when a token cannot be a JSON key (invalid UTF-8
 * or a duplicate), LT_ERR_IO naming the path on write failure. */
lt_status lt_tokenizer_write_hf(const lt_tokenizer *t, const char *dir);
/* Set the tokenizer.ggml.* keys (model, pre, tokens, scores, token_type, merges, special ids,
 * add_bos/eos, add_space_prefix, chat_template) on a GGUF writer, e.g. for a merged GGUF or an
 * HF -> GGUF convert; lt_tokenizer_from_gguf on the result gives the same vocabulary (same
 * lt_tokenizer_sha256). Not expressible in GGUF: a Metaspace "first"/"always" prefix scheme and a
 * regex list llama.cpp has no pre-tokenizer name for (written as pre "hf", which loading
 * refuses). Key meanings: gguf_keys.c. */
void lt_tokenizer_to_gguf(const lt_tokenizer *t, lt_gguf_writer *w);

/* The tokenizer.ggml.pre values lathe's byte-level BPE accepts, as "default, gpt2, ..." (the
 * pre-tokenizer table in bpe.c), NUL-terminated into buf (cut to cap - 1 bytes); returns the
 * full length, as snprintf does. */
size_t lt_tokenizer_pre_names(char *buf, size_t cap);

int32_t lt_tokenizer_vocab_size(const lt_tokenizer *t);
int32_t lt_tokenizer_bos(const lt_tokenizer *t);   /* -1 when none */
int32_t lt_tokenizer_eos(const lt_tokenizer *t);
int32_t lt_tokenizer_pad(const lt_tokenizer *t);   /* falls back to eos when the file names none */
bool lt_tokenizer_add_bos(const lt_tokenizer *t);  /* tokenizer.ggml.add_bos_token (default per
                                                    * model kind: llama true, gpt2 false) */
/* Id of an exact token string, -1 if absent. */
int32_t lt_tokenizer_find(const lt_tokenizer *t, const char *piece);
/* SHA-256 hex of the vocabulary (model kind, tokens, scores, types, merges): stamped into shards
 * so a shard tokenized with another vocabulary is refused. */
const char *lt_tokenizer_sha256(const lt_tokenizer *t);
/* The chat template source (GGUF tokenizer.chat_template, tokenizer_config.json chat_template),
 * or NULL. */
const char *lt_tokenizer_chat_template(const lt_tokenizer *t);
/* The default system prompt that the file's ChatML template inserts when a conversation does not
 * start with a system message (lt_template_default_system of the template), or NULL. ChatML
 * rendering inserts it the same way. The setter replaces it (copied; NULL turns it off), e.g. for
 * a recipe that names its own. */
const char *lt_tokenizer_default_system(const lt_tokenizer *t);
void lt_tokenizer_set_default_system(lt_tokenizer *t, const char *text);

/* Append the ids of `text` (len bytes, UTF-8, need not be NUL-terminated) to out, each with loss
 * mask `mask`. No BOS/EOS is added. With parse_special, occurrences of special-token strings
 * become those ids (user-defined tokens always do). A tokenizer.json NFC normalizer (Qwen2)
 * normalizes each run of text between them first. Any bytes are accepted: invalid UTF-8 falls
 * back to <0xNN> tokens ("llama") or is encoded byte-level ("gpt2"; a byte whose character the
 * vocabulary lacks is dropped). Matches llama.cpp's llama_tokenize(add_special=false) id for id
 * on valid UTF-8 (tests/data/tokenizer/, and llama.cpp's own test vocabularies:
 * tests/unit/test_vocabs.c), and Hugging Face tokenizers for a tokenizer.json
 * (tests/unit/test_tokenizer_hf.c). Thread-safe: the tokenizer is read-only here. */
void lt_tokenizer_encode(const lt_tokenizer *t, const char *text, size_t len, bool parse_special,
                         uint8_t mask, lt_tokens *out);

/* The text lt_tokenizer_encode's BPE engines see for text[0,len): special tokens (as
 * parse_special selects them) as they are, each run between them NFC-normalized (UAX #15) when
 * the tokenizer normalizes. NULL when it has no normalizer, so that the text itself is what they
 * see; else malloc'ed, NUL-terminated, *out_len bytes. Decoding the ids of `text` gives this text
 * (as lt_tokenizer_decode describes), and byte offsets into encoded text are offsets in it. */
char *lt_tokenizer_normalized(const lt_tokenizer *t, const char *text, size_t len,
                              bool parse_special, size_t *out_len);

/* Bytes of one token for streaming output, given the previous token (for the SentencePiece
 * rule that drops the leading space right after BOS — and at the very start, prev = -1 — as
 * llama2.c and llama.cpp's detokenizer do, when the vocabulary adds a space prefix; and, where
 * the encoder prefixes every run of text (GGUF "llama", HF's Prepend normalizer), also right
 * after a control or user-defined token, whose following run got that prefix too).
 * Byte-fallback tokens give one raw byte; control tokens give ""; user-defined tokens their text;
 * SentencePiece's unknown token U+2585 (llama.cpp). Returns the byte count written (<= cap; a
 * longer piece is cut). */
size_t lt_tokenizer_piece(const lt_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap);
/* Whole-sequence decode into a malloc'ed NUL-terminated string (pieces as above, the first with
 * prev = -1, so decode(encode(x)) == x for valid UTF-8 x; except where the encoding itself
 * forgets: a SentencePiece Metaspace layout (prepend_scheme first/always) encodes " x" as it
 * encodes "x", which decodes to "x"). Ids outside the vocabulary give "". */
char *lt_tokenizer_decode(const lt_tokenizer *t, const int32_t *ids, size_t n);
/* Same, but with `special` control tokens give their text ("<|im_start|>"), for showing a
 * rendered chat. */
char *lt_tokenizer_decode_special(const lt_tokenizer *t, const int32_t *ids, size_t n,
                                  bool special);

/* ---- chat templates ----------------------------------------------------------------------- */

typedef enum { LT_ROLE_SYSTEM = 0, LT_ROLE_USER, LT_ROLE_ASSISTANT, LT_ROLE_TOOL } lt_role;

typedef struct {
    lt_role role;
    const char *content; /* UTF-8, NUL-terminated; NULL is JSON null for a Jinja template ("" for
                          * the built-in layouts) */
    const char *fields;  /* NULL, or a JSON object of the message's other keys as the dataset
                          * holds them (tool_calls, tool_call_id, name, ...), merged into the
                          * message a Jinja template sees; the built-in layouts ignore it */
} lt_message;

typedef enum {
    LT_TEMPLATE_CHATML = 0, /* <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen) */
    LT_TEMPLATE_ALPACA,     /* ### Instruction:\n...\n\n### Response:\n... EOS (base models) */
    LT_TEMPLATE_LLAMA3,     /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    LT_TEMPLATE_LLAMA2,     /* <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s> */
    LT_TEMPLATE_MISTRAL,    /* [INST] ... [/INST]...</s> */
    LT_TEMPLATE_GEMMA,      /* <start_of_turn>user\n...<end_of_turn>\n (assistant = "model") */
    LT_TEMPLATE_COUNT
} lt_template;

/* By name ("chatml", "alpaca", "llama3", "llama2", "mistral", "gemma"); LT_ERR_USAGE listing
 * the names otherwise. */
lt_status lt_template_from_name(lt_template *out, const char *name);
const char *lt_template_name(lt_template t);
/* Recognize a GGUF/HF Jinja chat template by its family's markers (<|start_header_id|> llama3,
 * <start_of_turn> gemma, <|im_start|> chatml, <<SYS>> llama2, [INST] mistral, "### Instruction:"
 * alpaca); LT_ERR_DATA when unrecognized, with a hint to pass --template and the names. NULL
 * source (no template in the file) chooses alpaca. */
lt_status lt_template_detect(lt_template *out, const char *jinja_source);
/* The literal default system prompt of a ChatML Jinja template — the text of a
 * "<|im_start|>system\n...<|im_end|>" string literal in a template that tests the first role
 * against 'system' (SmolLM2, Qwen2.5) — as a malloc'ed string (\n escapes undone), or NULL when
 * the template has none. */
char *lt_template_default_system(const char *jinja_source);

/* The token that closes an assistant turn in template tpl (<|im_end|>, <|eot_id|>,
 * <end_of_turn>, else EOS), for stopping generation; -1 when the vocabulary has none. */
int32_t lt_template_end_of_turn(const lt_tokenizer *t, lt_template tpl);

/* Render a conversation (BOS first when the tokenizer adds one; Llama 2 puts one before each user
 * turn), appending to out with the loss mask 1 on assistant content tokens and the assistant
 * turn's closing token (<|im_end|>, <|eot_id|>, <end_of_turn> or EOS), 0 elsewhere. With add_generation_prompt the ids end with the assistant header, ready to
 * generate. ChatML inserts the tokenizer's default system prompt (lt_tokenizer_default_system)
 * before a first message that is not a system message. Alpaca's, Llama 2's and Mistral's user
 * turns end with the assistant header, so add_generation_prompt adds nothing there. Layouts:
 * chat.c. */
void lt_chat_render(const lt_tokenizer *t, lt_template tpl, const lt_message *msgs, size_t n,
                    bool add_generation_prompt, lt_tokens *out);

/* ---- the model's own chat template (chat_jinja.c) ------------------------------------------ */

/* A Jinja chat template compiled by the sandboxed interpreter (src/jinja), with the bos_token /
 * eos_token strings of t as transformers gives them: `src` (NUL-terminated), or when NULL the
 * tokenizer's own (lt_tokenizer_chat_template). `name` names the template in errors (e.g. the
 * model path). Borrows t; copies nothing of src after parsing. LT_ERR_DATA naming it when there
 * is no template or it does not parse. */
typedef struct lt_chat_jinja lt_chat_jinja;
lt_status lt_chat_jinja_open(lt_chat_jinja **out, const lt_tokenizer *t, const char *name,
                             const char *src);
void lt_chat_jinja_free(lt_chat_jinja *c); /* NULL is fine */

/* Render a conversation as transformers' apply_chat_template(tokenize=True) does — the template's
 * text, special tokens parsed, nothing added — appending ids to out with the loss mask 1 on each
 * assistant turn's content and its closing control token, or on the whole turn when it carries
 * tool_calls; 0 elsewhere (chat_jinja.c explains how the spans are found). `tools`: NULL or a
 * JSON array of tool schemas, the template's `tools`. Errors (out unchanged): LT_ERR_DATA naming the template for
 * raise_exception (its message quoted), a limit, an assistant turn the text does not contain,
 * or tokens whose pieces do not add up to the text (their positions would be unknown). */
lt_status lt_chat_jinja_render(const lt_chat_jinja *c, const lt_message *msgs, size_t n,
                               const char *tools, bool add_generation_prompt, lt_tokens *out);
/* The control token that closes an assistant turn in this template (found by rendering a
 * two-turn probe conversation), else the tokenizer's EOS; for stopping generation. */
int32_t lt_chat_jinja_end_of_turn(const lt_chat_jinja *c);

#endif
