/*
 * test_tokenizer.c — the tokenizer against ids that llama.cpp's own tokenizer produced
 * (tests/data/tokenizer/<model>.refs, written by tools/gen_tokenizer_refs.py), round trips, special
 * tokens, chat templates and hostile input.
 *
 * Needs the shared fixtures (LATHE_FIXTURES, default ../shared/fixtures) for stories260K and the
 * text slices, and the SmolLM2 GGUF (LATHE_SMOLLM2_GGUF, default
 * $HOME/.cache/lathe/models/SmolLM2-135M-Instruct.Q4_1.gguf); tests skip with a line saying
 * which file is missing. The Gemma 3 tests need tools/fetch_gemma.sh's GGUF (LATHE_GEMMA3_GGUF,
 * default $HOME/.cache/lathe/models/gemma-3-270m-q4_k_m.gguf) and skip without it.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../refs.h"
#include "tokenizer/tokenizer.h"

static const char *fixtures(void) {
    const char *f = getenv("LATHE_FIXTURES");
    return f && *f ? f : "../shared/fixtures";
}

static void stories_path(char *buf, size_t n) {
    snprintf(buf, n, "%s/stories260K/stories260K.gguf", fixtures());
}

static void smollm2_path(char *buf, size_t n) {
    const char *e = getenv("LATHE_SMOLLM2_GGUF");
    if (e && *e)
        snprintf(buf, n, "%s", e);
    else
        snprintf(buf, n, "%s/.cache/lathe/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                 getenv("HOME") ? getenv("HOME") : "/root");
}

/* Load a tokenizer or skip the test when the file is absent. */
static lt_tokenizer *load_or_skip(const char *path) {
    if (access(path, R_OK) != 0) {
        cr_skip_test("%s not found (set LATHE_FIXTURES / LATHE_SMOLLM2_GGUF); skipping", path);
        return NULL;
    }
    lt_gguf *g = NULL;
    lt_status st = lt_gguf_open(&g, path);
    cr_assert_eq(st, LT_OK, "lt_gguf_open: %s", lt_error_message());
    lt_tokenizer *t = NULL;
    st = lt_tokenizer_from_gguf(&t, g);
    cr_assert_eq(st, LT_OK, "lt_tokenizer_from_gguf: %s", lt_error_message());
    lt_gguf_close(g);
    return t;
}

static lt_tokenizer *stories(void) {
    char p[4096];
    stories_path(p, sizeof p);
    return load_or_skip(p);
}

static lt_tokenizer *smollm2(void) {
    char p[4096];
    smollm2_path(p, sizeof p);
    return load_or_skip(p);
}

/* ---- reference cases (tests/refs.h) ------------------------------------------------------- */

static void fmt_ids(char *buf, size_t cap, const int32_t *ids, size_t n, size_t from, size_t to) {
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = from; i < to && i < n && k + 16 < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%d", i > from ? " " : "", ids[i]);
}

/* Exact comparison; on failure names the first differing position and the ids around it. */
static void expect_ids(const char *what, const int32_t *got, size_t ngot, const int32_t *want,
                       size_t nwant) {
    size_t i = 0;
    while (i < ngot && i < nwant && got[i] == want[i]) i++;
    if (i == ngot && i == nwant) return;
    size_t from = i > 5 ? i - 5 : 0;
    char g[512], w[512];
    fmt_ids(g, sizeof g, got, ngot, from, i + 6);
    fmt_ids(w, sizeof w, want, nwant, from, i + 6);
    cr_assert_fail("%s: first mismatch at token %zu of %zu (reference has %zu)\n"
                   "  lathe     [%zu..]: %s\n  reference [%zu..]: %s",
                   what, i, ngot, nwant, from, g, from, w);
}

static void run_refs(lt_tokenizer *t, const char *file) {
    ts_ref_case *cs;
    size_t n = ts_refs_load(file, &cs);
    cr_assert_gt(n, 8, "%s: too few cases", file);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *text = ts_ref_text(&cs[i], &len);
        lt_tokens v = {0};
        lt_tokenizer_encode(t, text, len, cs[i].special != 0, 0, &v);
        char what[160];
        snprintf(what, sizeof what, "%s:%s", file, cs[i].name);
        expect_ids(what, v.ids, v.n, cs[i].ids, cs[i].n);
        if (!cs[i].special) {
            char *back = lt_tokenizer_decode(t, v.ids, v.n);
            cr_expect_str_eq(back, text, "%s: decode(encode(x)) != x", what);
            free(back);
        }
        lt_tokens_free(&v);
        free(text);
    }
    ts_refs_free(cs, n);
}

Test(tokenizer, stories260K_matches_llama_cpp) {
    lt_tokenizer *t = stories();
    cr_assert_eq(lt_tokenizer_vocab_size(t), 512);
    cr_assert_eq(lt_tokenizer_bos(t), 1);
    cr_assert_eq(lt_tokenizer_eos(t), 2);
    cr_assert(lt_tokenizer_add_bos(t));
    run_refs(t, "stories260K.refs");
    lt_tokenizer_free(t);
}

Test(tokenizer, smollm2_matches_llama_cpp) {
    lt_tokenizer *t = smollm2();
    cr_assert_eq(lt_tokenizer_vocab_size(t), 49152);
    cr_assert_eq(lt_tokenizer_bos(t), 1);
    cr_assert_eq(lt_tokenizer_eos(t), 2);
    cr_assert_eq(lt_tokenizer_pad(t), 2);
    cr_assert_not(lt_tokenizer_add_bos(t));
    run_refs(t, "smollm2.refs");
    lt_tokenizer_free(t);
}

/* Gemma 3 270M (Q4_K_M): a SentencePiece vocabulary of 262,144 tokens without the dummy-prefix
 * space, with byte fallback and control / user-defined tokens (<start_of_turn>, <mask>, ...).
 * lathe cannot read its Q4_K tensors, so the tokenizer comes from the metadata alone
 * (lt_tokenizer_load -> lt_gguf_open_meta). */
Test(tokenizer, gemma3_matches_llama_cpp) {
    char p[4096];
    const char *e = getenv("LATHE_GEMMA3_GGUF");
    if (e && *e)
        snprintf(p, sizeof p, "%s", e);
    else
        snprintf(p, sizeof p, "%s/.cache/lathe/models/gemma-3-270m-q4_k_m.gguf",
                 getenv("HOME") ? getenv("HOME") : "/root");
    if (access(p, R_OK) != 0) {
        cr_skip_test("%s not found (run tools/fetch_gemma.sh or set LATHE_GEMMA3_GGUF); skipping",
                     p);
        return;
    }
    lt_gguf *g = NULL;
    cr_assert_neq(lt_gguf_open(&g, p), LT_OK, "lathe reads Q4_K tensors now: update this test");
    cr_assert(strstr(lt_error_message(), "Q4_K") || strstr(lt_error_message(), "Q5_0") ||
                  strstr(lt_error_message(), "Q6_K"),
              "%s", lt_error_message());
    cr_assert_eq(lt_gguf_open_meta(&g, p), LT_OK, "%s", lt_error_message());
    cr_assert_eq(g->n_tensors, 0);
    cr_assert_null(lt_gguf_find_tensor(g, "token_embd.weight"));
    lt_gguf_close(g);
    lt_tokenizer *t = NULL;
    cr_assert_eq(lt_tokenizer_load(&t, p), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_tokenizer_vocab_size(t), 262144);
    cr_assert_eq(lt_tokenizer_bos(t), 2);
    cr_assert_eq(lt_tokenizer_eos(t), 1);
    cr_assert(lt_tokenizer_add_bos(t));
    run_refs(t, "gemma3_270m.refs");
    lt_tokenizer_free(t);
}

/* ---- whole-file round trip and speed ------------------------------------------------------ */

Test(tokenizer, smollm2_tinyshakespeare_round_trip) {
    lt_tokenizer *t = smollm2();
    char path[4096];
    snprintf(path, sizeof path, "%s/data/tinyshakespeare.txt", fixtures());
    if (access(path, R_OK) != 0) cr_skip_test("%s not found; skipping", path);
    char *data;
    size_t n;
    cr_assert_eq(lt_read_file(path, &data, &n), LT_OK);
    lt_tokens v = {0};
    double t0 = lt_now();
    lt_tokenizer_encode(t, data, n, false, 0, &v);
    double dt = lt_now() - t0;
    cr_log_info("smollm2 encode tinyshakespeare: %zu bytes -> %zu tokens in %.3f s (%.1f MB/s)", n,
                v.n, dt, (double)n / dt / 1e6);
    cr_assert_gt(v.n, n / 8);
    cr_assert_lt(v.n, n / 2);
    char *back = lt_tokenizer_decode(t, v.ids, v.n);
    cr_assert(strcmp(back, data) == 0, "decode(encode(tinyshakespeare)) differs");
    free(back);
    free(data);
    lt_tokens_free(&v);
    lt_tokenizer_free(t);
}

/* ---- special tokens ----------------------------------------------------------------------- */

static size_t count_id(const lt_tokens *v, int32_t id) {
    size_t k = 0;
    for (size_t i = 0; i < v->n; i++) k += v->ids[i] == id;
    return k;
}

Test(tokenizer, special_tokens_on_and_off) {
    lt_tokenizer *t = smollm2();
    const char *s = "<|im_start|>user\nhi<|im_end|><|endoftext|>";
    lt_tokens on = {0}, off = {0};
    lt_tokenizer_encode(t, s, strlen(s), true, 0, &on);
    lt_tokenizer_encode(t, s, strlen(s), false, 0, &off);
    int32_t im_start = lt_tokenizer_find(t, "<|im_start|>");
    int32_t im_end = lt_tokenizer_find(t, "<|im_end|>");
    int32_t eot = lt_tokenizer_find(t, "<|endoftext|>");
    cr_assert_eq(im_start, 1);
    cr_assert_eq(im_end, 2);
    cr_assert_eq(eot, 0);
    cr_assert_eq(on.ids[0], im_start);
    cr_assert_eq(on.ids[on.n - 2], im_end);
    cr_assert_eq(on.ids[on.n - 1], eot);
    cr_assert_eq(count_id(&off, im_start) + count_id(&off, im_end) + count_id(&off, eot), 0,
                 "parse_special off must treat <|...|> as text");
    char *back = lt_tokenizer_decode(t, off.ids, off.n);
    cr_assert_str_eq(back, s);
    free(back);
    /* control tokens vanish in plain decode and show with decode_special */
    back = lt_tokenizer_decode(t, on.ids, on.n);
    cr_assert_str_eq(back, "user\nhi");
    free(back);
    back = lt_tokenizer_decode_special(t, on.ids, on.n, true);
    cr_assert_str_eq(back, s);
    free(back);
    lt_tokens_free(&on);
    lt_tokens_free(&off);
    lt_tokenizer_free(t);

    /* SentencePiece: <s> and </s> parsed, and decode drops the space right after BOS */
    t = stories();
    lt_tokens v = {0};
    lt_tokenizer_encode(t, "<s>Once</s>", 11, true, 0, &v);
    cr_assert_eq(v.ids[0], 1);
    cr_assert_eq(v.ids[v.n - 1], 2);
    char buf[16];
    size_t k = lt_tokenizer_piece(t, 1, v.ids[1], buf, sizeof buf);
    cr_assert(k > 0 && buf[0] == 'O', "piece after BOS keeps no leading space");
    k = lt_tokenizer_piece(t, 5, v.ids[1], buf, sizeof buf);
    cr_assert(k > 0 && buf[0] == ' ', "piece after a text token keeps its space");
    lt_tokens_free(&v);
    lt_tokenizer_encode(t, "<s>", 3, false, 0, &v);
    cr_assert_eq(count_id(&v, 1), 0);
    lt_tokens_free(&v);
    lt_tokenizer_free(t);
}

/* ---- chat templates ----------------------------------------------------------------------- */

static const lt_message CONVO[] = {
    {LT_ROLE_USER, "What is the capital of France?", NULL},
    {LT_ROLE_ASSISTANT, "The capital of France is Paris.", NULL},
    {LT_ROLE_USER, "And its population, roughly?", NULL},
    {LT_ROLE_ASSISTANT, "About 2.1 million people live in Paris proper (2023).", NULL},
    {LT_ROLE_USER, "Thanks! Say it in French \xf0\x9f\x98\x8a", NULL},
    {LT_ROLE_ASSISTANT, "Environ 2,1 millions d'habitants vivent \xc3\xa0 Paris.", NULL},
};

static char *read_repo(const char *path) {
    char *d;
    size_t n;
    cr_assert_eq(lt_read_file(path, &d, &n), LT_OK, "%s", lt_error_message());
    return d;
}

/* Every maximal run of mask = 1 must decode (specials shown) to one assistant message plus
 * `closing`; returns the number of runs. */
static size_t check_mask_runs(const lt_tokenizer *t, const lt_tokens *v, const char *closing,
                              int32_t closing_id, int32_t after_id) {
    size_t runs = 0;
    for (size_t i = 0; i < v->n;) {
        if (!v->mask[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < v->n && v->mask[j]) j++;
        cr_assert(i > 0 && v->mask[i - 1] == 0);
        cr_assert_eq(v->ids[j - 1], closing_id, "a mask run ends with the closing token");
        if (after_id >= 0) {
            cr_assert(j < v->n, "closing token followed by the newline");
            cr_assert_eq(v->ids[j], after_id);
            cr_assert_eq(v->mask[j], 0, "the newline after the closing token is not a target");
        }
        char *s = lt_tokenizer_decode_special(t, v->ids + i, j - i, true);
        const lt_message *m = NULL;
        size_t seen = 0;
        for (size_t k = 0; k < sizeof CONVO / sizeof CONVO[0]; k++)
            if (CONVO[k].role == LT_ROLE_ASSISTANT && seen++ == runs) m = &CONVO[k];
        cr_assert(m, "more mask runs than assistant turns");
        char want[512];
        snprintf(want, sizeof want, "%s%s", m->content, closing);
        cr_assert_str_eq(s, want);
        free(s);
        runs++;
        i = j;
    }
    return runs;
}

Test(tokenizer, chatml_render_smollm2) {
    lt_tokenizer *t = smollm2();
    lt_template tpl;
    cr_assert_eq(lt_template_detect(&tpl, lt_tokenizer_chat_template(t)), LT_OK);
    cr_assert_eq(tpl, LT_TEMPLATE_CHATML);
    cr_assert_str_eq(lt_tokenizer_default_system(t),
                     "You are a helpful AI assistant named SmolLM, trained by Hugging Face");

    lt_tokens v = {0};
    lt_chat_render(t, tpl, CONVO, 6, false, &v);
    char *want = read_repo("tests/data/tokenizer/chatml_3turn.txt");
    char *got = lt_tokenizer_decode_special(t, v.ids, v.n, true);
    cr_assert_str_eq(got, want, "rendered ChatML text");
    free(got);
    free(want);

    ts_ref_case *cs;
    size_t nc = ts_refs_load("smollm2.refs", &cs);
    const ts_ref_case *c = ts_ref_find(cs, nc, "chatml_3turn");
    expect_ids("chatml render vs llama.cpp(rendered text, special)", v.ids, v.n, c->ids, c->n);
    ts_refs_free(cs, nc);

    int32_t im_end = lt_tokenizer_find(t, "<|im_end|>");
    int32_t nl = lt_tokenizer_find(t, "\xc4\x8a"); /* byte-level "\n" */
    cr_assert_eq(check_mask_runs(t, &v, "<|im_end|>", im_end, nl), 3);
    cr_assert_eq(v.ids[0], lt_tokenizer_find(t, "<|im_start|>"), "no BOS: add_bos is false");
    lt_tokens_free(&v);

    /* an explicit system message replaces the default; the generation prompt ends the ids */
    lt_message sys[] = {{LT_ROLE_SYSTEM, "Be terse.", NULL}, {LT_ROLE_USER, "Hi", NULL}};
    lt_chat_render(t, tpl, sys, 2, true, &v);
    got = lt_tokenizer_decode_special(t, v.ids, v.n, true);
    cr_assert_str_eq(got, "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>"
                          "\n<|im_start|>assistant\n");
    free(got);
    for (size_t i = 0; i < v.n; i++) cr_assert_eq(v.mask[i], 0);
    lt_tokens_free(&v);

    /* the default can be turned off */
    lt_tokenizer_set_default_system(t, NULL);
    lt_chat_render(t, tpl, sys + 1, 1, false, &v);
    got = lt_tokenizer_decode_special(t, v.ids, v.n, true);
    cr_assert_str_eq(got, "<|im_start|>user\nHi<|im_end|>\n");
    free(got);
    lt_tokens_free(&v);
    lt_tokenizer_free(t);
}

Test(tokenizer, alpaca_render_stories260K) {
    lt_tokenizer *t = stories();
    lt_template tpl;
    cr_assert_eq(lt_template_detect(&tpl, lt_tokenizer_chat_template(t)), LT_OK);
    cr_assert_eq(tpl, LT_TEMPLATE_ALPACA, "no template in the file: alpaca");
    const lt_message m[] = {
        {LT_ROLE_SYSTEM, "Be brief.", NULL},
        {LT_ROLE_USER, "Tell me a story about a cat.", NULL},
        {LT_ROLE_ASSISTANT, "Once upon a time, there was a little cat named Tom.", NULL},
        {LT_ROLE_USER, "What did Tom like?", NULL},
        {LT_ROLE_ASSISTANT, "Tom liked to play with a ball.", NULL},
    };
    lt_tokens v = {0};
    lt_chat_render(t, tpl, m, 5, false, &v);
    cr_assert_eq(v.ids[0], lt_tokenizer_bos(t), "BOS first: add_bos");
    cr_assert_eq(v.mask[0], 0);

    ts_ref_case *cs;
    size_t nc = ts_refs_load("stories260K.refs", &cs);
    const ts_ref_case *c = ts_ref_find(cs, nc, "alpaca_2turn");
    expect_ids("alpaca render vs llama.cpp(rendered text, special)", v.ids + 1, v.n - 1, c->ids,
               c->n);
    ts_refs_free(cs, nc);

    char *got = lt_tokenizer_decode_special(t, v.ids, v.n, true);
    cr_assert_str_eq(got, "<s>Be brief.\n\n### Instruction:\nTell me a story about a cat.\n\n"
                          "### Response:\nOnce upon a time, there was a little cat named Tom.</s>"
                          "### Instruction:\nWhat did Tom like?\n\n### Response:\nTom liked to "
                          "play with a ball.</s>",
                     "(the SentencePiece prefix of the run after </s> is not decoded as a space)");
    free(got);
    /* mask runs: content + EOS; compare against the assistant turns of this conversation */
    size_t runs = 0;
    for (size_t i = 0; i < v.n;) {
        if (!v.mask[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < v.n && v.mask[j]) j++;
        cr_assert_eq(v.ids[j - 1], lt_tokenizer_eos(t));
        char *s = lt_tokenizer_decode(t, v.ids + i, j - i);
        cr_assert_str_eq(s, m[runs == 0 ? 2 : 4].content);
        free(s);
        runs++;
        i = j;
    }
    cr_assert_eq(runs, 2);
    lt_tokens_free(&v);
    lt_tokenizer_free(t);
}

Test(tokenizer, template_detection_and_names) {
    lt_template tpl;
    cr_assert_eq(lt_template_detect(&tpl, NULL), LT_OK);
    cr_assert_eq(tpl, LT_TEMPLATE_ALPACA);
    cr_assert_eq(lt_template_detect(&tpl, "{% for m in messages %}{{ m.content }}{% endfor %}"),
                 LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), "--template chatml|alpaca"), "hint: %s",
              lt_error_message());
    const char *qwen = "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + "
                       "messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- "
                       "'<|im_start|>system\\nYou are Qwen.<|im_end|>\\n' }}{%- endif %}";
    cr_assert_eq(lt_template_detect(&tpl, qwen), LT_OK);
    cr_assert_eq(tpl, LT_TEMPLATE_CHATML);
    char *d = lt_template_default_system(qwen);
    cr_assert_str_eq(d, "You are Qwen.");
    free(d);
    cr_assert_null(lt_template_default_system("{{'<|im_start|>' + m['role'] }}"));
    cr_assert_eq(lt_template_from_name(&tpl, "alpaca"), LT_OK);
    cr_assert_eq(tpl, LT_TEMPLATE_ALPACA);
    cr_assert_str_eq(lt_template_name(LT_TEMPLATE_CHATML), "chatml");
    cr_assert_eq(lt_template_from_name(&tpl, "vicuna"), LT_ERR_USAGE);
    cr_assert(strstr(lt_error_message(), "chatml"));
}

/* ---- hostile and degenerate input --------------------------------------------------------- */

/* GPT-2 bytes_to_unicode of byte b as UTF-8 (recomputed here, independently of bpe.c). */
static void byte_char(int b, char out[4]) {
    int next = 256, c = -1;
    for (int x = 0; x < 256 && c < 0; x++) {
        bool keep = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174;
        if (x == b) c = keep ? x : next;
        if (!keep) next++;
    }
    if (c < 0x80) {
        out[0] = (char)c;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        out[2] = 0;
    }
}

/* What decode(encode(s)) must give: s itself, less (byte-level only) the bytes whose character
 * the vocabulary lacks — those are dropped. */
static size_t expected_round_trip(const lt_tokenizer *t, bool byte_level, const char *s,
                                  size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch[4];
        byte_char((unsigned char)s[i], ch);
        if (!byte_level || lt_tokenizer_find(t, ch) >= 0) out[k++] = s[i];
    }
    return k;
}

static void hostile(lt_tokenizer *t, bool byte_level) {
    static const char *const cases[] = {
        "\x80",                       /* lone continuation byte */
        "abc\xe2\x82",                /* truncated 3-byte sequence at the end */
        "\xf0\x9f\x98",               /* truncated 4-byte emoji */
        "\xc0\xaf overlong",          /* overlong '/' */
        "\xed\xa0\x80 surrogate",     /* UTF-16 surrogate */
        "\xff\xfe\xfd x \xf8\x88\x80\x80\x80 y", /* bytes that never occur in UTF-8 */
        "  \x80\x80  \t\xc3",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lt_tokens v = {0};
        size_t len = strlen(cases[i]);
        lt_tokenizer_encode(t, cases[i], len, true, 0, &v);
        for (size_t k = 0; k < v.n; k++)
            cr_assert(v.ids[k] >= 0 && v.ids[k] < lt_tokenizer_vocab_size(t));
        char *back = lt_tokenizer_decode(t, v.ids, v.n);
        char want[64];
        size_t wl = expected_round_trip(t, byte_level, cases[i], len, want);
        cr_assert(strlen(back) == wl && memcmp(back, want, wl) == 0,
                  "case %zu: byte fallback / byte-level encoding must be lossless", i);
        free(back);
        lt_tokens_free(&v);
    }
    /* random bytes, NULs included */
    unsigned char buf[4096];
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < sizeof buf; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[i] = (unsigned char)(s >> 56);
    }
    lt_tokens v = {0};
    lt_tokenizer_encode(t, (const char *)buf, sizeof buf, true, 1, &v);
    cr_assert_gt(v.n, 0);
    for (size_t k = 0; k < v.n; k++) {
        cr_assert(v.ids[k] >= 0 && v.ids[k] < lt_tokenizer_vocab_size(t));
        cr_assert_eq(v.mask[k], 1);
    }
    lt_tokens_free(&v);
    /* empty input: no tokens; empty decode: "" */
    lt_tokenizer_encode(t, "", 0, true, 0, &v);
    cr_assert_eq(v.n, 0);
    char *e = lt_tokenizer_decode(t, NULL, 0);
    cr_assert_str_eq(e, "");
    free(e);
    int32_t bad[] = {-5, 1 << 30};
    e = lt_tokenizer_decode(t, bad, 2);
    cr_assert_str_eq(e, "");
    free(e);
}

Test(tokenizer, invalid_utf8_and_empty_stories260K) {
    lt_tokenizer *t = stories();
    hostile(t, false);
    lt_tokenizer_free(t);
}

Test(tokenizer, invalid_utf8_and_empty_smollm2) {
    lt_tokenizer *t = smollm2();
    hostile(t, true);
    lt_tokenizer_free(t);
}

/* ---- checksums and bad files -------------------------------------------------------------- */

Test(tokenizer, sha256_identifies_the_vocabulary) {
    lt_tokenizer *a = stories(), *b = stories();
    const char *h = lt_tokenizer_sha256(a);
    cr_assert_eq(strlen(h), 64);
    cr_assert_str_eq(h, lt_tokenizer_sha256(b));
    lt_tokenizer_free(b);
    char p[4096];
    smollm2_path(p, sizeof p);
    if (access(p, R_OK) == 0) {
        b = smollm2();
        cr_assert_str_neq(h, lt_tokenizer_sha256(b));
        lt_tokenizer_free(b);
    }
    lt_tokenizer_free(a);
}

/* Write a tiny byte-level vocabulary: the 256 byte characters, "ab", "<|end|>" (control) and
 * "abc" (reachable by no merge), with one merge. */
static lt_status tiny_bpe(const char *path, const char *pre, const char *merge) {
    const char *toks[259];
    static char store[258][4];
    for (int b = 0; b < 256; b++) {
        /* GPT-2 bytes_to_unicode, recomputed here independently of bpe.c */
        static int cp[256];
        if (b == 0) {
            int next = 256;
            for (int x = 0; x < 256; x++) {
                bool keep = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174;
                cp[x] = keep ? x : next++;
            }
        }
        int c = cp[b];
        if (c < 0x80) {
            store[b][0] = (char)c;
            store[b][1] = 0;
        } else {
            store[b][0] = (char)(0xC0 | (c >> 6));
            store[b][1] = (char)(0x80 | (c & 0x3F));
            store[b][2] = 0;
        }
        toks[b] = store[b];
    }
    toks[256] = "ab";
    toks[257] = "<|end|>";
    toks[258] = "abc";
    int32_t types[259];
    for (int i = 0; i < 259; i++) types[i] = 1;
    types[257] = 3;
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_gguf_writer_set_str(w, "general.architecture", "llama");
    lt_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre) lt_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    lt_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", toks, 259);
    lt_gguf_writer_set_i32_arr(w, "tokenizer.ggml.token_type", types, 259);
    const char *merges[] = {merge};
    lt_gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", merges, 1);
    lt_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 257);
    lt_status st = lt_gguf_writer_write(w, path);
    lt_gguf_writer_free(w);
    return st;
}

static lt_status open_tiny(const char *path, lt_tokenizer **t) {
    lt_gguf *g;
    cr_assert_eq(lt_gguf_open(&g, path), LT_OK, "%s", lt_error_message());
    lt_status st = lt_tokenizer_from_gguf(t, g);
    lt_gguf_close(g);
    return st;
}

Test(tokenizer, crafted_vocabularies) {
    char path[] = "/tmp/lathe_tok_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    lt_tokenizer *t = NULL;

    cr_assert_eq(tiny_bpe(path, "no-such-pre", "a b"), LT_OK);
    cr_assert_eq(open_tiny(path, &t), LT_ERR_MODEL);
    cr_assert(strstr(lt_error_message(), "no-such-pre") && strstr(lt_error_message(), "smollm") &&
                  strstr(lt_error_message(), "tokenizer.ggml.pre"),
              "message names the key, the value and the supported ones: %s", lt_error_message());

    cr_assert_eq(tiny_bpe(path, "gpt2", "ab"), LT_OK); /* a merge without a separator */
    cr_assert_eq(open_tiny(path, &t), LT_ERR_MODEL);
    cr_assert(strstr(lt_error_message(), "tokenizer.ggml.merges"), "%s", lt_error_message());

    cr_assert_eq(tiny_bpe(path, NULL, "a b"), LT_OK); /* no pre: llama.cpp's "default" */
    cr_assert_eq(open_tiny(path, &t), LT_OK, "%s", lt_error_message());
    lt_tokens v = {0};
    lt_tokenizer_encode(t, "abab ab<|end|>", 14, true, 0, &v);
    /* "abab" -> ab ab; " ab" -> the space's byte token (id 0x20 here) then ab; then <|end|> */
    int32_t want[] = {256, 256, 0x20, 256, 257};
    expect_ids("tiny vocabulary", v.ids, v.n, want, 5);
    cr_assert_eq(lt_tokenizer_eos(t), 257);
    cr_assert_eq(lt_tokenizer_pad(t), 257, "pad falls back to eos");
    cr_assert_eq(lt_tokenizer_bos(t), -1);
    cr_assert_not(lt_tokenizer_add_bos(t));
    lt_tokens_free(&v);
    lt_tokenizer_free(t);

    /* llama3 pre-tokenizer: a whole pre-token found in the vocabulary is taken as it is
     * (llama.cpp ignore_merges), others go through the merges */
    cr_assert_eq(tiny_bpe(path, "llama-bpe", "a b"), LT_OK);
    cr_assert_eq(open_tiny(path, &t), LT_OK, "%s", lt_error_message());
    lt_tokenizer_encode(t, "abc abc", 7, false, 0, &v);
    int32_t want3[] = {258, 0x20, 256, 'c'};
    expect_ids("llama-bpe ignore_merges", v.ids, v.n, want3, 4);
    lt_tokens_free(&v);
    lt_tokenizer_free(t);
    cr_assert_eq(tiny_bpe(path, "gpt2", "a b"), LT_OK);
    cr_assert_eq(open_tiny(path, &t), LT_OK, "%s", lt_error_message());
    lt_tokenizer_encode(t, "abc", 3, false, 0, &v);
    int32_t want4[] = {256, 'c'};
    expect_ids("gpt2 merges only", v.ids, v.n, want4, 2);
    lt_tokens_free(&v);
    lt_tokenizer_free(t);

    /* tekken takes whole pre-tokens from the vocabulary too (llama.cpp ignore_merges) */
    cr_assert_eq(tiny_bpe(path, "tekken", "a b"), LT_OK);
    cr_assert_eq(open_tiny(path, &t), LT_OK, "%s", lt_error_message());
    lt_tokenizer_encode(t, "abc abc", 7, false, 0, &v);
    expect_ids("tekken ignore_merges", v.ids, v.n, want3, 4);
    lt_tokens_free(&v);
    lt_tokenizer_free(t);

    /* every accepted pre-tokenizer name loads (its regexes compile under PCRE2 UTF/UCP) */
    char names[1024];
    cr_assert_lt(lt_tokenizer_pre_names(names, sizeof names), sizeof names);
    cr_assert(strstr(names, "qwen2") && strstr(names, "deepseek-v3") && strstr(names, "tekken"),
              "%s", names);
    for (char *sp, *name = strtok_r(names, ", ", &sp); name; name = strtok_r(NULL, ", ", &sp)) {
        cr_assert_eq(tiny_bpe(path, name, "a b"), LT_OK);
        cr_assert_eq(open_tiny(path, &t), LT_OK, "pre %s: %s", name, lt_error_message());
        lt_tokenizer_encode(t, "ab", 2, false, 0, &v);
        cr_assert_eq(v.n, 1, "pre %s", name);
        cr_assert_eq(v.ids[0], 256, "pre %s", name);
        lt_tokens_free(&v);
        lt_tokenizer_free(t);
    }
    /* one llama.cpp implements with code of its own: refused, saying why */
    cr_assert_eq(tiny_bpe(path, "kimi-k2", "a b"), LT_OK);
    cr_assert_eq(open_tiny(path, &t), LT_ERR_MODEL);
    cr_assert(strstr(lt_error_message(), "\"kimi-k2\" is not supported: llama.cpp splits it") &&
                  strstr(lt_error_message(), "deepseek-llm"),
              "%s", lt_error_message());
    unlink(path);
}
