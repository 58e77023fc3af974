/*
 * test_vocabs.c — lathe's GGUF tokenizer against llama.cpp's own tokenizer test vectors.
 *
 * llama.cpp ships, for each tokenizer family it supports, a vocabulary-only GGUF
 * (models/ggml-vocab-<name>.gguf) with <name>.gguf.inp (inputs, each followed by the line
 * "__ggml_vocab_test__") and <name>.gguf.out (one line per input: the ids Hugging Face
 * `tokenizers` gives it, written by convert_hf_to_gguf_update.py). llama.cpp's
 * tests/test-tokenizer-0.cpp asserts its tokenizer reproduces them with add_special = false (no
 * BOS) and parse_special = false; this test asserts the same of lt_tokenizer_from_gguf +
 * lt_tokenizer_encode, and prints "N/N inputs identical" per vocabulary. None of these files is
 * in the repository: tools/fetch_vocabs.sh extracts them from the PyPI sdist of
 * llama-cpp-python 0.3.36 into $LATHE_CACHE/vocabs (default ~/.cache/lathe/vocabs); without
 * them each test skips naming that script.
 *
 * Also: decode(encode(x)) == x for every input (test-tokenizer-0.cpp only prints the
 * detokenized text; lathe's decoder promises the round trip on valid UTF-8, which all inputs
 * are, and never applies clean_up_tokenization_spaces), the same through the tokenizer.json
 * path, and vocabularies lathe refuses are listed with the reason, the test asserting the
 * refusal names what is refused. Runs in a few seconds (the big vocabularies dominate).
 *
 * The pre-tokenizers llama.cpp has no test vocabulary for (deepseek-v3, tekken, default) are
 * checked on two of these vocabularies with their tokenizer.ggml.pre replaced, against the ids
 * llama.cpp gives with the same override (tests/data/tokenizer/pre_<vocab>_<pre>.refs; the
 * vocabs/pre_* tests at the end of this file).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../refs.h"
#include "tokenizer/tokenizer.h"

/* $LATHE_CACHE/vocabs/ggml-vocab-<name>.gguf<ext>, or skip the test naming the fetch script. */
static void vocab_path(char *buf, size_t cap, const char *name, const char *ext) {
    const char *cache = getenv("LATHE_CACHE"), *home = getenv("HOME");
    if (cache && *cache)
        snprintf(buf, cap, "%s/vocabs/ggml-vocab-%s.gguf%s", cache, name, ext);
    else
        snprintf(buf, cap, "%s/.cache/lathe/vocabs/ggml-vocab-%s.gguf%s", home ? home : "", name,
                 ext);
    if (access(buf, R_OK) != 0)
        cr_skip_test("llama.cpp test vocabulary %s not found (run tools/fetch_vocabs.sh, or set "
                     "LATHE_CACHE to the cache it filled)",
                     buf);
}

typedef struct {
    char **inp;
    size_t *inp_len;
    int32_t **ids;
    size_t *n_ids;
    size_t n;
    char *raw_inp, *raw_out;
} vectors;

/* Read <name>.gguf.inp / .out exactly as test-tokenizer-0.cpp does: inputs are the pieces of the
 * file between separators "\n__ggml_vocab_test__\n" (the text after the last one, if any, is a
 * last input); outputs are the lines of .out, stripped, ids separated by single spaces. */
static void read_vectors(vectors *v, const char *name) {
    char pin[4096], pout[4096];
    vocab_path(pin, sizeof pin, name, ".inp");
    vocab_path(pout, sizeof pout, name, ".out");
    size_t nin, nout;
    cr_assert_eq(lt_read_file(pin, &v->raw_inp, &nin), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_read_file(pout, &v->raw_out, &nout), LT_OK, "%s", lt_error_message());
    memset(v, 0, offsetof(vectors, raw_inp));
    static const char SEP[] = "\n__ggml_vocab_test__\n";
    size_t cap = 16;
    v->inp = malloc(cap * sizeof *v->inp);
    v->inp_len = malloc(cap * sizeof *v->inp_len);
    for (size_t pos = 0; pos < nin;) {
        char *next = memmem(v->raw_inp + pos, nin - pos, SEP, sizeof SEP - 1);
        size_t end = next ? (size_t)(next - v->raw_inp) : nin;
        if (v->n == cap) {
            cap *= 2;
            v->inp = realloc(v->inp, cap * sizeof *v->inp);
            v->inp_len = realloc(v->inp_len, cap * sizeof *v->inp_len);
        }
        v->inp[v->n] = v->raw_inp + pos;
        v->inp_len[v->n++] = end - pos;
        pos = next ? end + sizeof SEP - 1 : nin;
    }
    v->ids = calloc(v->n, sizeof *v->ids);
    v->n_ids = calloc(v->n, sizeof *v->n_ids);
    size_t line = 0;
    for (char *p = v->raw_out, *end = v->raw_out + nout; p < end; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        cr_assert_lt(line, v->n, "%s.gguf.out has more lines than %s.gguf.inp has inputs (%zu)",
                     name, name, v->n);
        v->ids[line] = malloc(((size_t)(le - p) / 2 + 1) * sizeof(int32_t));
        for (char *q = p; q < le;) {
            while (q < le && (*q == ' ' || *q == '\r' || *q == '\t')) q++;
            if (q == le) break;
            char *e;
            long id = strtol(q, &e, 10);
            cr_assert(e > q && e <= le, "%s.gguf.out line %zu: not an id list", name, line + 1);
            v->ids[line][v->n_ids[line]++] = (int32_t)id;
            q = e;
        }
        p = nl ? nl + 1 : end;
    }
    cr_assert_eq(line, v->n, "%s: %zu inputs but %zu output lines", name, v->n, line);
}

static void free_vectors(vectors *v) {
    for (size_t i = 0; i < v->n; i++) free(v->ids[i]);
    free(v->ids);
    free(v->n_ids);
    free(v->inp);
    free(v->inp_len);
    free(v->raw_inp);
    free(v->raw_out);
}

/* The input with control bytes and non-ASCII escaped, at most ~120 characters, for messages. */
static const char *show(const char *s, size_t n) {
    static char buf[512];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') k += (size_t)snprintf(buf + k, sizeof buf - k, "\\n");
        else if (c < 0x20 || c >= 0x7f) k += (size_t)snprintf(buf + k, sizeof buf - k, "\\x%02x", c);
        else buf[k++] = (char)c;
    }
    buf[k < sizeof buf ? k : sizeof buf - 1] = 0;
    return buf;
}

static void show_ids(char *buf, size_t cap, const int32_t *ids, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && k + 16 < cap; i++) k += (size_t)snprintf(buf + k, cap - k, " %d", ids[i]);
}

static lt_status load(const char *name, lt_tokenizer **t, char *pre, size_t pre_cap) {
    char path[4096];
    vocab_path(path, sizeof path, name, "");
    lt_gguf *g = NULL;
    cr_assert_eq(lt_gguf_open(&g, path), LT_OK, "%s", lt_error_message());
    lt_gguf_str s;
    if (lt_gguf_get_str(g, "tokenizer.ggml.pre", &s))
        snprintf(pre, pre_cap, "%.*s", (int)s.len, s.ptr);
    else if (lt_gguf_get_str(g, "tokenizer.ggml.model", &s))
        snprintf(pre, pre_cap, "(model %.*s)", (int)s.len, s.ptr);
    lt_status st = lt_tokenizer_from_gguf(t, g);
    lt_gguf_close(g);
    return st;
}

/* How many inputs t encodes to exactly their .out ids (no BOS, specials as text; mismatches
 * logged) and how many survive decode(encode(x)). */
static void run_vectors(const lt_tokenizer *t, const vectors *v, const char *label, size_t *same,
                        size_t *round) {
    size_t shown = 0;
    *same = *round = 0;
    for (size_t i = 0; i < v->n; i++) {
        lt_tokens got = {0};
        lt_tokenizer_encode(t, v->inp[i], v->inp_len[i], false, 1, &got);
        bool eq = got.n == v->n_ids[i] &&
                  (got.n == 0 || memcmp(got.ids, v->ids[i], got.n * sizeof(int32_t)) == 0);
        *same += eq;
        if (!eq && shown++ < 5) {
            char a[2048], b[2048];
            show_ids(a, sizeof a, v->ids[i], v->n_ids[i]);
            show_ids(b, sizeof b, got.ids, got.n);
            cr_log_error("%s input %zu \"%s\":\n  llama.cpp/HF:%s\n  lathe:       %s", label, i,
                         show(v->inp[i], v->inp_len[i]), a, b);
        }
        char *back = lt_tokenizer_decode(t, got.ids, got.n);
        bool rt = strlen(back) == v->inp_len[i] && memcmp(back, v->inp[i], v->inp_len[i]) == 0;
        *round += rt;
        if (!rt && shown++ < 5)
            cr_log_error("%s input %zu \"%s\" decodes to \"%s\"", label, i,
                         show(v->inp[i], v->inp_len[i]), show(back, strlen(back)));
        free(back);
        lt_tokens_free(&got);
    }
}

/* Every input encodes to exactly its .out ids and decodes back: from the GGUF, and (via_hf) from
 * the tokenizer.json + tokenizer_config.json lathe writes for it (lt_tokenizer_write_hf, read
 * back by lt_tokenizer_from_hf_dir: the tokenizer.json path with this pre-tokenizer's regex
 * list), which must convert back to GGUF keys that load (the list keeps its llama.cpp name).
 * via_hf costs about a second per 100k tokens of JSON, so it is done once per regex row of
 * bpe.c's table, on the smallest vocabulary with that row, and for both SentencePiece ones. */
static void check_vocab(const char *name, bool via_hf) {
    vectors v;
    read_vectors(&v, name);
    char pre[64] = "?";
    lt_tokenizer *t = NULL;
    lt_status st = load(name, &t, pre, sizeof pre);
    cr_assert_eq(st, LT_OK, "ggml-vocab-%s.gguf: %s", name, lt_error_message());
    size_t same, round;
    run_vectors(t, &v, name, &same, &round);

    size_t hsame = v.n, hround = v.n;
    if (via_hf) {
        char dir[] = "/tmp/lathe_vocab_XXXXXX", label[96];
        cr_assert_not_null(mkdtemp(dir));
        cr_assert_eq(lt_tokenizer_write_hf(t, dir), LT_OK, "%s", lt_error_message());
        lt_tokenizer *h = NULL;
        cr_assert_eq(lt_tokenizer_from_hf_dir(&h, dir), LT_OK, "%s", lt_error_message());
        lt_remove_tree(dir);
        snprintf(label, sizeof label, "%s via tokenizer.json", name);
        run_vectors(h, &v, label, &hsame, &hround);
        /* and back to GGUF keys (lt_tokenizer_to_gguf), which must load: the regex list read from
         * tokenizer.json keeps a pre-tokenizer name lathe (and llama.cpp) know */
        snprintf(dir, sizeof dir, "/tmp/lathe_vocab_XXXXXX");
        int fd = mkstemp(dir);
        cr_assert(fd >= 0);
        close(fd);
        lt_gguf_writer *w = lt_gguf_writer_new();
        lt_gguf_writer_set_str(w, "general.architecture", "llama");
        lt_tokenizer_to_gguf(h, w);
        cr_assert_eq(lt_gguf_writer_write(w, dir), LT_OK, "%s", lt_error_message());
        lt_gguf_writer_free(w);
        lt_gguf *g = NULL;
        cr_assert_eq(lt_gguf_open(&g, dir), LT_OK, "%s", lt_error_message());
        lt_tokenizer *back = NULL;
        lt_status bst = lt_tokenizer_from_gguf(&back, g);
        lt_gguf_close(g);
        unlink(dir);
        cr_assert_eq(bst, LT_OK, "%s: tokenizer.json -> GGUF does not load: %s", name,
                     lt_error_message());
        lt_tokenizer_free(back);
        lt_tokenizer_free(h);
    }

    char hf[64] = "";
    if (via_hf) snprintf(hf, sizeof hf, " (via tokenizer.json: %zu/%zu)", hsame, v.n);
    printf("vocab %-15s pre %-15s %zu/%zu inputs identical%s\n", name, pre, same, v.n, hf);
    fflush(stdout);
    cr_assert_eq(same, v.n, "%s (pre %s): %zu/%zu inputs identical", name, pre, same, v.n);
    cr_assert_eq(round, v.n, "%s: %zu/%zu inputs survive decode(encode(x))", name, round, v.n);
    cr_assert_eq(hsame, v.n, "%s via tokenizer.json: %zu/%zu inputs identical", name, hsame, v.n);
    cr_assert_eq(hround, v.n, "%s via tokenizer.json: %zu/%zu round trips", name, hround, v.n);
    lt_tokenizer_free(t);
    free_vectors(&v);
}

/* SentencePiece ("llama") vocabularies. */
Test(vocabs, llama_spm) { check_vocab("llama-spm", true); }
Test(vocabs, phi_3) { check_vocab("phi-3", true); }
/* Byte-level BPE ("gpt2"), one per pre-tokenizer row of bpe.c's table. */
Test(vocabs, gpt_2) { check_vocab("gpt-2", true); }
Test(vocabs, mpt) { check_vocab("mpt", false); }
Test(vocabs, starcoder) { check_vocab("starcoder", true); }
Test(vocabs, refact) { check_vocab("refact", false); }
Test(vocabs, command_r) { check_vocab("command-r", false); }
Test(vocabs, falcon) { check_vocab("falcon", true); }
Test(vocabs, llama_bpe) { check_vocab("llama-bpe", true); }
Test(vocabs, qwen2) { check_vocab("qwen2", true); }
Test(vocabs, qwen35) { check_vocab("qwen35", true); }
Test(vocabs, deepseek_llm) { check_vocab("deepseek-llm", true); }
Test(vocabs, deepseek_coder) { check_vocab("deepseek-coder", true); }

/* Vocabularies lathe refuses, each with the reason; the error must name what is refused. */
static const struct {
    const char *vocab, *refused, *reason;
} REFUSED[] = {
    {"gemma-4", "gemma4",
     "tokenizer.ggml.model \"gemma4\": a BPE over raw UTF-8 with U+2581 spaces and no GPT-2 byte "
     "map (llama.cpp byte_encode = false), which neither of lathe's engines is"},
};

Test(vocabs, expected_refusals) {
    for (size_t i = 0; i < sizeof REFUSED / sizeof REFUSED[0]; i++) {
        char pre[64] = "?";
        lt_tokenizer *t = NULL;
        lt_status st = load(REFUSED[i].vocab, &t, pre, sizeof pre);
        cr_assert_eq(st, LT_ERR_MODEL, "ggml-vocab-%s.gguf should be refused (%s)",
                     REFUSED[i].vocab, REFUSED[i].reason);
        cr_assert_null(t);
        cr_assert(strstr(lt_error_message(), REFUSED[i].refused),
                  "the refusal of %s names \"%s\": %s", REFUSED[i].vocab, REFUSED[i].refused,
                  lt_error_message());
        printf("vocab %-15s pre %-15s refused: %s\n", REFUSED[i].vocab, pre, REFUSED[i].reason);
        fflush(stdout);
    }
}

/* ---- pre-tokenizers without a test vocabulary ---------------------------------------------- */

/* llama.cpp ships no ggml-vocab file for tokenizer.ggml.pre = deepseek-v3, tekken or default,
 * so the references are its ids for qwen2's and llama-bpe's vocabularies with the pre type
 * overridden (tests/data/tokenizer/pre_<vocab>_<pre>.refs, tools/gen_tokenizer_refs.py --pre:
 * llama-cpp-python's kv_overrides, fixture slices and tests/data/tokenizer/pretok_edge.txt).
 * lathe gets the same override by loading the vocabulary, writing its tokenizer keys into a new
 * GGUF (lt_tokenizer_to_gguf) with the pre key replaced, and loading that: the loader reads the
 * key from a file as it would from a real DeepSeek-V3 or Mistral NeMo GGUF, and the rewrite is
 * checked to change nothing else (lt_tokenizer_sha256 of the unchanged rewrite). Each case is
 * compared id for id and must survive decode(encode(x)); all mismatches are logged (with the
 * text where they start) before the test fails. */

/* w written to a temporary file and loaded back. */
static lt_tokenizer *write_and_load(lt_gguf_writer *w, const char *what) {
    char path[] = "/tmp/lathe_vocab_pre_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(lt_gguf_writer_write(w, path), LT_OK, "%s", lt_error_message());
    lt_gguf *g = NULL;
    cr_assert_eq(lt_gguf_open(&g, path), LT_OK, "%s", lt_error_message());
    lt_tokenizer *t = NULL;
    lt_status st = lt_tokenizer_from_gguf(&t, g);
    lt_gguf_close(g);
    unlink(path);
    cr_assert_eq(st, LT_OK, "%s: %s", what, lt_error_message());
    return t;
}

/* ggml-vocab-<vocab>.gguf loaded as if its tokenizer.ggml.pre were `pre`: its tokenizer keys
 * rewritten (lt_tokenizer_to_gguf), first unchanged, which must give the same tokenizer
 * (lt_tokenizer_sha256 covers kind, pre, tokens, scores, types and merges), then with the pre
 * key replaced. */
static lt_tokenizer *load_with_pre(const char *vocab, const char *pre) {
    char own[64] = "?", what[128];
    lt_tokenizer *t0 = NULL;
    cr_assert_eq(load(vocab, &t0, own, sizeof own), LT_OK, "ggml-vocab-%s.gguf: %s", vocab,
                 lt_error_message());
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_gguf_writer_set_str(w, "general.architecture", "llama");
    lt_tokenizer_to_gguf(t0, w);
    snprintf(what, sizeof what, "ggml-vocab-%s.gguf rewritten", vocab);
    lt_tokenizer *same = write_and_load(w, what);
    cr_assert_str_eq(lt_tokenizer_sha256(same), lt_tokenizer_sha256(t0),
                     "%s: the tokenizer keys lathe writes do not give the same tokenizer", vocab);
    lt_tokenizer_free(same);
    lt_tokenizer_free(t0);
    lt_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    snprintf(what, sizeof what, "ggml-vocab-%s.gguf with pre \"%s\"", vocab, pre);
    lt_tokenizer *t = write_and_load(w, what);
    lt_gguf_writer_free(w);
    return t;
}

static void check_pre(const char *vocab, const char *pre) {
    char file[128];
    snprintf(file, sizeof file, "pre_%s_%s.refs", vocab, pre);
    char probe[4096];
    vocab_path(probe, sizeof probe, vocab, ""); /* skips without the cached vocabulary */
    ts_ref_case *cs;
    size_t n = ts_refs_load(file, &cs), same = 0, round = 0, bytes = 0, ids = 0;
    cr_assert_gt(n, 10, "%s: too few cases", file);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(cs[i].special, 0, "%s: case %s has special != 0", file, cs[i].name);
    lt_tokenizer *t = load_with_pre(vocab, pre);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *text = ts_ref_text(&cs[i], &len);
        lt_tokens v = {0};
        lt_tokenizer_encode(t, text, len, false, 1, &v);
        size_t k = 0;
        while (k < v.n && k < cs[i].n && v.ids[k] == cs[i].ids[k]) k++;
        bool eq = k == v.n && k == cs[i].n;
        same += eq;
        if (!eq) {
            size_t from = k > 4 ? k - 4 : 0, na = cs[i].n - from, nb = v.n - from;
            char a[512], b[512];
            show_ids(a, sizeof a, cs[i].ids + from, na < 10 ? na : 10);
            show_ids(b, sizeof b, v.ids + from, nb < 10 ? nb : 10);
            /* where in the text: the bytes of the ids both agree on */
            char *head = lt_tokenizer_decode(t, v.ids, k);
            size_t at = strlen(head) < len ? strlen(head) : len;
            free(head);
            cr_log_error("%s:%s: first mismatch at id %zu, byte %zu \"%s\" (lathe %zu ids, "
                         "llama.cpp %zu)\n  llama.cpp [%zu..]:%s\n  lathe     [%zu..]:%s",
                         file, cs[i].name, k, at, show(text + at, len - at), v.n, cs[i].n, from,
                         a, from, b);
        }
        char *back = lt_tokenizer_decode(t, v.ids, v.n);
        bool rt = strlen(back) == len && memcmp(back, text, len) == 0;
        round += rt;
        if (!rt) cr_log_error("%s:%s: decode(encode(x)) != x", file, cs[i].name);
        bytes += len;
        ids += cs[i].n;
        free(back);
        lt_tokens_free(&v);
        free(text);
    }
    printf("vocab %-15s pre %-15s %zu/%zu cases identical (%zu bytes, %zu ids)\n", vocab, pre,
           same, n, bytes, ids);
    fflush(stdout);
    ts_refs_free(cs, n);
    lt_tokenizer_free(t);
    cr_assert_eq(same, n, "%s: %zu/%zu cases identical to llama.cpp", file, same, n);
    cr_assert_eq(round, n, "%s: %zu/%zu cases survive decode(encode(x))", file, round, n);
}

Test(vocabs, pre_deepseek_v3_on_qwen2) { check_pre("qwen2", "deepseek-v3"); }
Test(vocabs, pre_deepseek_v3_on_llama_bpe) { check_pre("llama-bpe", "deepseek-v3"); }
Test(vocabs, pre_tekken_on_qwen2) { check_pre("qwen2", "tekken"); }
Test(vocabs, pre_tekken_on_llama_bpe) { check_pre("llama-bpe", "tekken"); }
Test(vocabs, pre_default_on_qwen2) { check_pre("qwen2", "default"); }
Test(vocabs, pre_default_on_llama_bpe) { check_pre("llama-bpe", "default"); }
