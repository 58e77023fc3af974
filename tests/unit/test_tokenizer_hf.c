/*
 * test_tokenizer_hf.c — Hugging Face tokenizer directories and GGUF tokenizer keys:
 *  - round trips: GGUF tokenizer -> lt_tokenizer_write_hf -> lt_tokenizer_from_hf_dir, and
 *    GGUF tokenizer -> lt_tokenizer_to_gguf -> GGUF file -> lt_tokenizer_from_gguf, both against
 *    the llama.cpp reference ids (tests/data/tokenizer/<model>.refs);
 *  - the written tokenizer.json against HF `tokenizers` itself: <model>.hf.refs holds the ids
 *    `tokenizers.Tokenizer.from_file` gives for the same slices (tools/gen_tokenizer_refs.py --hf,
 *    which reads the directories this file's export test writes when LATHE_TOKENIZER_EXPORT is
 *    set: LATHE_TOKENIZER_EXPORT=/tmp/x build/lathe_tests --filter 'tokenizer_hf/export*');
 *  - real tokenizer.json files of the families users move to (Qwen2 / Qwen2.5, Qwen3.5, Llama 3,
 *    DeepSeek LLM / Coder, Phi-3, Llama 2 / Mistral SentencePiece, GPT-2): the directories
 *    tools/fetch_hf_vocabs.sh makes with transformers from llama.cpp's test vocabularies into
 *    $LATHE_CACHE/vocabs/hf-<family> (not in the repository), against the ids HF `tokenizers`
 *    gives for them (tests/data/tokenizer/hf_<family>.refs, tools/gen_hf_family_refs.py; each
 *    names the SHA-256 of its tokenizer.json, and the test skips naming the script when the
 *    cached file is absent or another);
 *  - errors for what lathe does not support, and the chat template families.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../refs.h"
#include "tokenizer/tokenizer.h"

#include <utf8proc.h>

static lt_tokenizer *from_gguf_path(const char *path) {
    lt_gguf *g = NULL;
    cr_assert_eq(lt_gguf_open(&g, path), LT_OK, "%s", lt_error_message());
    lt_tokenizer *t = NULL;
    cr_assert_eq(lt_tokenizer_from_gguf(&t, g), LT_OK, "%s", lt_error_message());
    lt_gguf_close(g);
    return t;
}

static lt_tokenizer *stories(void) {
    char p[4096];
    ts_fixture(p, sizeof p, "stories260K/stories260K.gguf");
    return from_gguf_path(p);
}

static lt_tokenizer *smollm2(void) {
    char p[4096];
    ts_smollm2(p, sizeof p);
    return from_gguf_path(p);
}

/* ---- reference files (format: tools/gen_tokenizer_refs.py) -------------------------------- */

static void expect_ids(const char *what, const lt_tokens *v, const int32_t *want, size_t nwant) {
    size_t i = 0;
    while (i < v->n && i < nwant && v->ids[i] == want[i]) i++;
    if (i == v->n && i == nwant) return;
    cr_assert_fail("%s: first mismatch at token %zu (lathe %zu ids: %d, reference %zu ids: %d)",
                   what, i, v->n, i < v->n ? v->ids[i] : -1, nwant, i < nwant ? want[i] : -1);
}

/* Every case of `file` through t, exactly. Returns the number of cases. */
static size_t run_refs(const lt_tokenizer *t, const char *file, const char *tag) {
    ts_ref_case *cs;
    size_t n = ts_refs_load(file, &cs);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *text = ts_ref_text(&cs[i], &len);
        lt_tokens v = {0};
        lt_tokenizer_encode(t, text, len, cs[i].special != 0, 0, &v);
        char what[256];
        snprintf(what, sizeof what, "%s %s:%s", tag, file, cs[i].name);
        expect_ids(what, &v, cs[i].ids, cs[i].n);
        if (!cs[i].special) {
            char *back = lt_tokenizer_decode(t, v.ids, v.n);
            cr_expect_str_eq(back, text, "%s: decode(encode(x)) != x", what);
            free(back);
        }
        lt_tokens_free(&v);
        free(text);
    }
    ts_refs_free(cs, n);
    return n;
}

/* ---- round trips -------------------------------------------------------------------------- */

static lt_tokenizer *via_hf(const lt_tokenizer *t, char *dir, size_t cap) {
    ts_tmpdir(dir, cap, "hftok");
    cr_assert_eq(lt_tokenizer_write_hf(t, dir), LT_OK, "%s", lt_error_message());
    lt_tokenizer *u = NULL;
    cr_assert_eq(lt_tokenizer_from_hf_dir(&u, dir), LT_OK, "%s", lt_error_message());
    return u;
}

static lt_tokenizer *via_gguf(const lt_tokenizer *t) {
    char dir[256], path[512];
    ts_tmpdir(dir, sizeof dir, "hftok_gguf");
    snprintf(path, sizeof path, "%s/tok.gguf", dir);
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_tokenizer_to_gguf(t, w);
    cr_assert_eq(lt_gguf_writer_write(w, path), LT_OK, "%s", lt_error_message());
    lt_gguf_writer_free(w);
    lt_tokenizer *u = from_gguf_path(path);
    ts_rmtree(dir);
    return u;
}

static void same_specials(const lt_tokenizer *a, const lt_tokenizer *b) {
    cr_assert_eq(lt_tokenizer_vocab_size(a), lt_tokenizer_vocab_size(b));
    cr_assert_eq(lt_tokenizer_bos(a), lt_tokenizer_bos(b));
    cr_assert_eq(lt_tokenizer_eos(a), lt_tokenizer_eos(b));
    cr_assert_eq(lt_tokenizer_pad(a), lt_tokenizer_pad(b));
    cr_assert_eq(lt_tokenizer_add_bos(a), lt_tokenizer_add_bos(b));
    const char *ca = lt_tokenizer_chat_template(a), *cb = lt_tokenizer_chat_template(b);
    cr_assert((ca == NULL) == (cb == NULL));
    if (ca) cr_assert_str_eq(ca, cb);
}

Test(tokenizer_hf, stories260K_gguf_to_hf_round_trip) {
    lt_tokenizer *t = stories();
    char dir[256];
    lt_tokenizer *u = via_hf(t, dir, sizeof dir);
    same_specials(t, u);
    cr_assert_gt(run_refs(u, "stories260K.refs", "gguf->hf->lathe"), 8);
    lt_tokenizer_free(u);
    lt_tokenizer_free(t);
    ts_rmtree(dir);
}

Test(tokenizer_hf, smollm2_gguf_to_hf_round_trip) {
    lt_tokenizer *t = smollm2();
    char dir[256];
    lt_tokenizer *u = via_hf(t, dir, sizeof dir);
    same_specials(t, u);
    cr_assert_str_eq(lt_tokenizer_sha256(t), lt_tokenizer_sha256(u),
                     "byte-level: same tokens, types, merges and pre-tokenizer name");
    cr_assert_str_eq(lt_tokenizer_default_system(u), lt_tokenizer_default_system(t));
    cr_assert_gt(run_refs(u, "smollm2.refs", "gguf->hf->lathe"), 8);
    /* and HF -> GGUF again: still the same vocabulary */
    lt_tokenizer *w = via_gguf(u);
    cr_assert_str_eq(lt_tokenizer_sha256(w), lt_tokenizer_sha256(t));
    lt_tokenizer_free(w);
    lt_tokenizer_free(u);
    lt_tokenizer_free(t);
    ts_rmtree(dir);
}

Test(tokenizer_hf, gguf_keys_round_trip) {
    lt_tokenizer *ts[2] = {stories(), smollm2()};
    const char *refs[2] = {"stories260K.refs", "smollm2.refs"};
    for (int k = 0; k < 2; k++) {
        lt_tokenizer *u = via_gguf(ts[k]);
        same_specials(ts[k], u);
        cr_assert_str_eq(lt_tokenizer_sha256(u), lt_tokenizer_sha256(ts[k]),
                         "%s: to_gguf -> from_gguf must give the identical vocabulary", refs[k]);
        run_refs(u, refs[k], "gguf->to_gguf->lathe");
        lt_tokenizer_free(u);
        lt_tokenizer_free(ts[k]);
    }
}

/* The written tokenizer.json against HF tokenizers' own ids (<model>.hf.refs). */
Test(tokenizer_hf, written_tokenizer_json_matches_hf_tokenizers) {
    lt_tokenizer *ts[2] = {stories(), smollm2()};
    const char *refs[2] = {"stories260K.hf.refs", "smollm2.hf.refs"};
    for (int k = 0; k < 2; k++) {
        char dir[256];
        lt_tokenizer *u = via_hf(ts[k], dir, sizeof dir);
        cr_assert_gt(run_refs(u, refs[k], "lathe(hf dir) vs tokenizers"), 8);
        lt_tokenizer_free(u);
        lt_tokenizer_free(ts[k]);
        ts_rmtree(dir);
    }
}

/* Writes the directories the reference generator reads; skipped unless asked for. */
Test(tokenizer_hf, export_for_reference) {
    const char *out = getenv("LATHE_TOKENIZER_EXPORT");
    if (!out || !*out) cr_skip_test("LATHE_TOKENIZER_EXPORT not set: nothing to export");
    lt_tokenizer *ts[2] = {stories(), smollm2()};
    const char *names[2] = {"stories260K", "smollm2"};
    for (int k = 0; k < 2; k++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", out, names[k]);
        cr_assert_eq(lt_tokenizer_write_hf(ts[k], dir), LT_OK, "%s", lt_error_message());
        lt_tokenizer_free(ts[k]);
    }
}

/* ---- real family tokenizer.json files (tools/gen_hf_family_refs.py) ---------------------- */

/* The line "# <key> <value>" of refs file `file` (tests/data/tokenizer/): value copied into out,
 * true; false when there is none. */
static bool refs_header(const char *file, const char *key, char *out, size_t cap) {
    char path[512], *data;
    size_t n;
    snprintf(path, sizeof path, "tests/data/tokenizer/%s", file);
    cr_assert_eq(lt_read_file(path, &data, &n), LT_OK, "%s (run from the repo root)",
                 lt_error_message());
    size_t kl = strlen(key);
    for (char *line = data; line && *line == '#';) {
        char *nl = strchr(line, '\n');
        if (line[1] == ' ' && strncmp(line + 2, key, kl) == 0 &&
            line[2 + kl] == ' ') {
            size_t vl = (size_t)((nl ? nl : data + n) - (line + 3 + kl));
            cr_assert_lt(vl, cap, "%s: \"# %s\" too long", path, key);
            memcpy(out, line + 3 + kl, vl);
            out[vl] = 0;
            free(data);
            return true;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(data);
    return false;
}

/* Is `name` a word of the space-separated list? */
static bool in_list(const char *list, const char *name) {
    size_t l = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += l)
        if ((p == list || p[-1] == ' ') && (p[l] == ' ' || p[l] == 0)) return true;
    return false;
}

/* "1,2" or "-" into ids; returns the count. */
static size_t parse_id_list(const char *s, int32_t *ids, size_t cap) {
    size_t n = 0;
    for (char *e; *s && n < cap; s = *e ? e + 1 : e) {
        ids[n++] = (int32_t)strtol(s, &e, 10);
        if (e == s) return n - 1;
    }
    return n;
}

/* $LATHE_CACHE/vocabs/hf-<family> (default ~/.cache/lathe/vocabs/...) with the tokenizer.json
 * hf_<family>.refs was made from, loaded as `lathe` loads a model directory; skips the test
 * naming the script that makes it when it is absent or another file. */
static lt_tokenizer *family_tokenizer(const char *family, const char *refs) {
    const char *cache = getenv("LATHE_CACHE"), *home = getenv("HOME");
    char dir[4096], json[4200], want[80], got[65];
    if (cache && *cache)
        snprintf(dir, sizeof dir, "%s/vocabs/hf-%s", cache, family);
    else
        snprintf(dir, sizeof dir, "%s/.cache/lathe/vocabs/hf-%s", home ? home : "", family);
    snprintf(json, sizeof json, "%s/tokenizer.json", dir);
    cr_assert(refs_header(refs, "tokenizer.json sha256", want, sizeof want),
              "%s: no \"# tokenizer.json sha256\" line", refs);
    if (access(json, R_OK) != 0)
        cr_skip_test("%s not found (run tools/fetch_hf_vocabs.sh, which makes it with transformers "
                     "from llama.cpp's vocabulary; or set LATHE_CACHE to the cache it filled)",
                     json);
    cr_assert_eq(lt_sha256_file(json, got), LT_OK, "%s", lt_error_message());
    if (strcmp(got, want) != 0)
        cr_skip_test("%s has SHA-256 %.16s..., but %s was made from %.16s... (run "
                     "tools/fetch_hf_vocabs.sh to make the file again)",
                     json, got, refs, want);
    lt_tokenizer *t = NULL;
    cr_assert_eq(lt_tokenizer_load(&t, dir), LT_OK, "%s", lt_error_message());
    return t;
}

/* Every case of hf_<family>.refs through lathe's reading of the family's tokenizer.json, id for
 * id, and decoded back to its text (control tokens as their text where special tokens were
 * parsed); the BOS lathe adds is what transformers' add_special_tokens adds in front, and nothing
 * is added behind. decode(encode(x)) is x, except that a Metaspace layout decodes " x" as "x"
 * ("# decode drops the leading space": lt_tokenizer_decode) and that an NFC normalizer's
 * tokens decode to NFC(x). */
static void check_family(const char *family) {
    char refs[128], prefix[64], suffix[64], lossy[512] = "";
    snprintf(refs, sizeof refs, "hf_%s.refs", family);
    lt_tokenizer *t = family_tokenizer(family, refs);
    refs_header(refs, "decode drops the leading space", lossy, sizeof lossy);

    ts_ref_case *cs;
    size_t n = ts_refs_load(refs, &cs);
    cr_assert_gt(n, 20);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *text = ts_ref_text(&cs[i], &len);
        lt_tokens v = {0};
        lt_tokenizer_encode(t, text, len, cs[i].special != 0, 0, &v);
        char what[256];
        snprintf(what, sizeof what, "lathe(hf-%s) vs tokenizers %s:%s", family, refs, cs[i].name);
        expect_ids(what, &v, cs[i].ids, cs[i].n);
        char *back = lt_tokenizer_decode_special(t, v.ids, v.n, cs[i].special != 0);
        size_t nl;
        char *norm = lt_tokenizer_normalized(t, text, len, cs[i].special != 0, &nl);
        const char *want = norm ? norm : text;
        if (in_list(lossy, cs[i].name)) {
            cr_assert_eq(text[0], ' ', "%s: listed as losing a leading space it lacks", what);
            want++;
        }
        cr_expect_str_eq(back, want, "%s: decode(encode(x)) != %sx", what, norm ? "NFC " : "");
        free(norm);
        free(back);
        lt_tokens_free(&v);
        free(text);
    }
    ts_refs_free(cs, n);

    cr_assert(refs_header(refs, "add_special_tokens=True prefix", prefix, sizeof prefix));
    cr_assert(refs_header(refs, "add_special_tokens=True suffix", suffix, sizeof suffix));
    int32_t ids[4];
    size_t np = parse_id_list(prefix, ids, 4);
    if (lt_tokenizer_add_bos(t)) {
        cr_assert(np == 1 && ids[0] == lt_tokenizer_bos(t),
                  "%s: lathe adds BOS %d, transformers adds [%s]", family, lt_tokenizer_bos(t),
                  prefix);
    } else {
        cr_assert_eq(np, 0, "%s: lathe adds no BOS, transformers adds [%s]", family, prefix);
    }
    cr_assert_eq(parse_id_list(suffix, ids, 4), 0, "%s: transformers appends [%s]", family,
                 suffix);
    printf("hf-%-15s %zu/%zu cases identical to tokenizers\n", family, n, n);
    lt_tokenizer_free(t);
}

Test(tokenizer_hf, family_qwen2) { check_family("qwen2"); }
Test(tokenizer_hf, family_qwen35) { check_family("qwen35"); }
Test(tokenizer_hf, family_llama3) { check_family("llama-bpe"); }
Test(tokenizer_hf, family_deepseek_llm) { check_family("deepseek-llm"); }
Test(tokenizer_hf, family_deepseek_coder) { check_family("deepseek-coder"); }
Test(tokenizer_hf, family_phi3) { check_family("phi-3"); }
Test(tokenizer_hf, family_llama_spm) { check_family("llama-spm"); }
Test(tokenizer_hf, family_gpt2) { check_family("gpt-2"); }

/* ---- errors ------------------------------------------------------------------------------- */

static void write_dir(char *dir, size_t cap, const char *tokenizer_json, const char *config) {
    char p[512];
    ts_tmpdir(dir, cap, "hftok_bad");
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    cr_assert_eq(lt_write_file_atomic(p, tokenizer_json, strlen(tokenizer_json)), LT_OK);
    if (config) {
        snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
        cr_assert_eq(lt_write_file_atomic(p, config, strlen(config)), LT_OK);
    }
}

static void expect_error(const char *json, const char *config, const char *needle) {
    char dir[256];
    write_dir(dir, sizeof dir, json, config);
    lt_tokenizer *t = (lt_tokenizer *)1;
    cr_assert_eq(lt_tokenizer_from_hf_dir(&t, dir), LT_ERR_MODEL, "expected an error for %s",
                 needle);
    cr_assert_null(t);
    cr_assert(strstr(lt_error_message(), needle), "message \"%s\" lacks \"%s\"",
              lt_error_message(), needle);
    cr_assert(strstr(lt_error_message(), dir), "message names the file: %s", lt_error_message());
    ts_rmtree(dir);
}

#define BL_PRE "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}"
#define VOCAB "{\"a\":0,\"b\":1,\"ab\":2,\"<s>\":3}"

Test(tokenizer_hf, unsupported_parts_are_named) {
    expect_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":" VOCAB "}}", NULL, "model.type");
    expect_error("{\"normalizer\":{\"type\":\"NFKC\"},\"pre_tokenizer\":" BL_PRE
                 ",\"model\":{\"type\":\"BPE\",\"vocab\":" VOCAB ",\"merges\":[\"a b\"]}}",
                 NULL, "normalizer");
    expect_error("{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"model\":{\"type\":\"BPE\","
                 "\"vocab\":" VOCAB ",\"merges\":[\"a b\"]}}",
                 NULL, "pre_tokenizer");
    expect_error("{\"pre_tokenizer\":" BL_PRE ",\"decoder\":{\"type\":\"WordPiece\"},"
                 "\"model\":{\"type\":\"BPE\",\"vocab\":" VOCAB ",\"merges\":[\"a b\"]}}",
                 NULL, "decoder");
    expect_error("{\"pre_tokenizer\":" BL_PRE ",\"model\":{\"type\":\"BPE\",\"vocab\":" VOCAB
                 ",\"merges\":[\"a b c\"]}}",
                 NULL, "model.merges[0]");
    expect_error("{\"pre_tokenizer\":" BL_PRE ",\"model\":{\"type\":\"BPE\",\"vocab\":" VOCAB
                 ",\"merges\":[]}}",
                 "{\"bos_token\":\"<nope>\"}", "bos_token");
    expect_error("{\"pre_tokenizer\":" BL_PRE ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,"
                 "\"b\":2},\"merges\":[]}}",
                 NULL, "id 1");
    expect_error("{\"pre_tokenizer\":" BL_PRE ",\"model\":{\"type\":\"BPE\",\"vocab\":" VOCAB
                 ",\"merges\":[]}}",
                 "{\"chat_template\":[{\"name\":\"tool_use\",\"template\":\"x\"}]}", "default");
    expect_error("{\"model\":", NULL, "JSON");
    /* an added token tokenizers would match in the normalized text */
    expect_error("{\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":" BL_PRE
                 ",\"added_tokens\":[{\"id\":3,\"content\":\"<s>\",\"normalized\":true}],"
                 "\"model\":{\"type\":\"BPE\",\"vocab\":" VOCAB ",\"merges\":[]}}",
                 NULL, "added_tokens[0] (\"<s>\") has \"normalized\": true");
}

Test(tokenizer_hf, small_byte_level_file) {
    /* pairs form of merges, AddedToken objects, a named chat-template list, Split + ByteLevel */
    const char *json =
        "{\"added_tokens\":[{\"id\":3,\"content\":\"<s>\",\"special\":true}],"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
        "\"pattern\":{\"String\":\"b\"},\"behavior\":\"Isolated\",\"invert\":false},"
        "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]},"
        "\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":" VOCAB ",\"merges\":[[\"a\",\"b\"]]}}";
    const char *cfg = "{\"bos_token\":{\"content\":\"<s>\"},\"add_bos_token\":true,"
                      "\"chat_template\":[{\"name\":\"default\",\"template\":\"<|im_start|>\"}]}";
    char dir[256];
    write_dir(dir, sizeof dir, json, cfg);
    lt_tokenizer *t = NULL;
    cr_assert_eq(lt_tokenizer_from_hf_dir(&t, dir), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_tokenizer_bos(t), 3);
    cr_assert(lt_tokenizer_add_bos(t));
    cr_assert_str_eq(lt_tokenizer_chat_template(t), "<|im_start|>");
    lt_tokens v = {0};
    lt_tokenizer_encode(t, "aab<s>ab", 8, true, 0, &v);
    /* "b" is split off by the Split, so "ab" cannot merge: a a b <s> a b */
    int32_t want[] = {0, 0, 1, 3, 0, 1};
    expect_ids("split + special", &v, want, 6);
    lt_tokens_free(&v);
    lt_tokenizer_free(t);

    /* chat_template.jinja beside the config wins over the config's entry (transformers v5 saves
     * the template only there) */
    char p[512];
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    cr_assert_eq(lt_write_file_atomic(p, "{{ bos_token }}jinja", 20), LT_OK);
    cr_assert_eq(lt_tokenizer_from_hf_dir(&t, dir), LT_OK, "%s", lt_error_message());
    cr_assert_str_eq(lt_tokenizer_chat_template(t), "{{ bos_token }}jinja");
    lt_tokenizer_free(t);
    ts_rmtree(dir);
}

/* ---- chat templates ----------------------------------------------------------------------- */

Test(tokenizer_hf, template_families) {
    static const struct {
        const char *src;
        lt_template tpl;
        const char *name;
    } cases[] = {
        {"{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}",
         LT_TEMPLATE_LLAMA3, "llama3"},
        {"{{ bos_token + '[INST] <<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}",
         LT_TEMPLATE_LLAMA2, "llama2"},
        {"{{ '[INST] ' + message['content'] + ' [/INST]' }}", LT_TEMPLATE_MISTRAL, "mistral"},
        {"{{ '<start_of_turn>' + role + '\\n' }}", LT_TEMPLATE_GEMMA, "gemma"},
        {"{{ '<|im_start|>' }}", LT_TEMPLATE_CHATML, "chatml"},
        {"### Instruction:", LT_TEMPLATE_ALPACA, "alpaca"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lt_template tpl;
        cr_assert_eq(lt_template_detect(&tpl, cases[i].src), LT_OK);
        cr_assert_eq(tpl, cases[i].tpl, "%s", cases[i].name);
        cr_assert_str_eq(lt_template_name(tpl), cases[i].name);
        cr_assert_eq(lt_template_from_name(&tpl, cases[i].name), LT_OK);
        cr_assert_eq(tpl, cases[i].tpl);
    }
    lt_template tpl;
    cr_assert_eq(lt_template_detect(&tpl, "{{ messages }}"), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), "--template chatml|alpaca|llama3|llama2|mistral|gemma"),
              "%s", lt_error_message());
}

static const lt_message CONVO[] = {
    {LT_ROLE_SYSTEM, "Be brief.", NULL},
    {LT_ROLE_USER, "Tell me a story.", NULL},
    {LT_ROLE_ASSISTANT, " Once upon a time. ", NULL},
    {LT_ROLE_USER, "More?", NULL},
    {LT_ROLE_ASSISTANT, "The end.", NULL},
};

#define NO_CHECK INT32_MIN

/* Render, check the text and that every mask run decodes to an assistant turn + its closer. */
static void check_render(lt_tokenizer *t, lt_template tpl, const char *want, int32_t closer,
                         bool gen, size_t n) {
    lt_tokens v = {0};
    lt_chat_render(t, tpl, CONVO, n, gen, &v);
    char *got = lt_tokenizer_decode_special(t, v.ids, v.n, true);
    cr_assert_str_eq(got, want, "%s: got [%s]", lt_template_name(tpl), got);
    free(got);
    size_t runs = 0;
    for (size_t i = 0; i < v.n;) {
        if (!v.mask[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < v.n && v.mask[j]) j++;
        if (closer != NO_CHECK)
            cr_assert_eq(v.ids[j - 1], closer,
                         "%s: a mask run ends with the turn's closing token",
                         lt_template_name(tpl));
        runs++;
        i = j;
    }
    cr_assert_eq(runs, 2, "%s", lt_template_name(tpl));
    if (closer != NO_CHECK) cr_assert_eq(lt_template_end_of_turn(t, tpl), closer);
    lt_tokens_free(&v);
}

Test(tokenizer_hf, render_new_families_stories260K) {
    lt_tokenizer *t = stories(); /* SentencePiece-style; <s> </s>, no chat markers: text */
    int32_t eos = lt_tokenizer_eos(t);
    check_render(t, LT_TEMPLATE_LLAMA2,
                 "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nTell me a story. [/INST] Once upon a "
                 "time. </s><s>[INST] More? [/INST] The end. </s>",
                 eos, false, 5);
    check_render(t, LT_TEMPLATE_MISTRAL,
                 "<s>[INST] Be brief.\n\nTell me a story. [/INST] Once upon a time. </s>[INST] "
                 "More? [/INST]The end.</s>",
                 eos, true, 5);
    lt_tokenizer_free(t);
}

Test(tokenizer_hf, render_new_families_smollm2) {
    lt_tokenizer *t = smollm2(); /* markers not in the vocabulary are rendered as text */
    int32_t eos = lt_tokenizer_eos(t);
    check_render(t, LT_TEMPLATE_LLAMA3,
                 "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nTell me a story.<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nOnce upon a time.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nMore?<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nThe end.<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n",
                 NO_CHECK /* <|eot_id|> is text in this vocabulary */, true, 5);
    check_render(t, LT_TEMPLATE_GEMMA,
                 "<start_of_turn>user\nBe brief.\n\nTell me a story.<end_of_turn>\n"
                 "<start_of_turn>model\nOnce upon a time.<end_of_turn>\n"
                 "<start_of_turn>user\nMore?<end_of_turn>\n"
                 "<start_of_turn>model\nThe end.<end_of_turn>\n",
                 NO_CHECK, false, 5);
    (void)eos;
    lt_tokenizer_free(t);
}

/* ---- the NFC normalizer (Qwen2's tokenizer.json) ------------------------------------------ */

static void encode_str(const lt_tokenizer *t, const char *s, size_t n, bool special, lt_tokens *v) {
    v->n = 0;
    lt_tokenizer_encode(t, s, n, special, 0, v);
}

static bool same_tokens(const lt_tokens *a, const lt_tokens *b) {
    return a->n == b->n && memcmp(a->ids, b->ids, a->n * sizeof *a->ids) == 0;
}

/* What the refs (hf_qwen2 nfc_text / nfc_specials) do not reach: invalid UTF-8 and NUL bytes
 * between valid stretches, the text the encoder sees (lt_tokenizer_normalized), a family without
 * the normalizer, and the normalizer kept through lt_tokenizer_write_hf. */
Test(tokenizer_hf, nfc_normalizer) {
    lt_tokenizer *q = family_tokenizer("qwen2", "hf_qwen2.refs");
    lt_tokenizer *q35 = family_tokenizer("qwen35", "hf_qwen35.refs");
    lt_tokens a = {0}, b = {0};
    static const char DECOMPOSED[] = "cafe\xcc\x81 Vie\xcc\x82\xcc\xa3t <|im_end|>\xcc\xb8";
    static const char COMPOSED[] = "caf\xc3\xa9 Vi\xe1\xbb\x87t <|im_end|>\xcc\xb8";
    /* NFC before encoding; the mark after the special token stays (the run starts after it) */
    encode_str(q, DECOMPOSED, sizeof DECOMPOSED - 1, true, &a);
    encode_str(q, COMPOSED, sizeof COMPOSED - 1, true, &b);
    cr_assert(same_tokens(&a, &b), "qwen2: NFC(x) and x encode differently");
    size_t n;
    char *seen = lt_tokenizer_normalized(q, DECOMPOSED, sizeof DECOMPOSED - 1, true, &n);
    cr_assert_not_null(seen);
    cr_assert_eq(n, sizeof COMPOSED - 1);
    cr_assert_str_eq(seen, COMPOSED);
    free(seen);
    /* without parse_special "<|im_end|>" is text, and '>' + U+0338 composes to U+226F */
    seen = lt_tokenizer_normalized(q, DECOMPOSED, sizeof DECOMPOSED - 1, false, &n);
    cr_assert(n == sizeof COMPOSED - 1 && memcmp(seen + n - 3, "\xe2\x89\xaf", 3) == 0,
              "'>' + U+0338 should compose outside a special token: %s", seen);
    free(seen);
    /* invalid bytes and NUL: kept, the valid stretches around them normalized */
    static const char BAD[] = "e\xcc\x81\xff" "e\xcc\x81" "\0" "e\xcc\x81\xcc";
    static const char BAD_NFC[] = "\xc3\xa9\xff\xc3\xa9\0\xc3\xa9\xcc";
    seen = lt_tokenizer_normalized(q, BAD, sizeof BAD - 1, false, &n);
    cr_assert(n == sizeof BAD_NFC - 1 && memcmp(seen, BAD_NFC, n) == 0,
              "invalid UTF-8 around NFC stretches");
    free(seen);
    encode_str(q, BAD, sizeof BAD - 1, false, &a);
    encode_str(q, BAD_NFC, sizeof BAD_NFC - 1, false, &b);
    cr_assert(same_tokens(&a, &b));
    /* Qwen3.5's tokenizer.json has no normalizer: the text is what the engines see */
    cr_assert_null(lt_tokenizer_normalized(q35, DECOMPOSED, sizeof DECOMPOSED - 1, true, &n));
    encode_str(q35, DECOMPOSED, sizeof DECOMPOSED - 1, true, &a);
    encode_str(q35, COMPOSED, sizeof COMPOSED - 1, true, &b);
    cr_assert(!same_tokens(&a, &b), "qwen35 normalizes although its file has no normalizer");
    /* written out and read back: the normalizer (and so the checksum) survives */
    char dir[256];
    lt_tokenizer *u = via_hf(q, dir, sizeof dir);
    cr_assert_str_eq(lt_tokenizer_sha256(u), lt_tokenizer_sha256(q));
    encode_str(u, DECOMPOSED, sizeof DECOMPOSED - 1, true, &a);
    encode_str(u, COMPOSED, sizeof COMPOSED - 1, true, &b);
    cr_assert(same_tokens(&a, &b), "the written tokenizer.json lost the NFC normalizer");
    lt_tokenizer_free(u);
    ts_rmtree(dir);
    lt_tokens_free(&a);
    lt_tokens_free(&b);
    lt_tokenizer_free(q35);
    lt_tokenizer_free(q);
}

/* Loss masks through the model's own template when the content is not in NFC: the content is
 * found in the text the encoder sees, and its tokens are the trained ones. */
Test(tokenizer_hf, nfc_chat_masks) {
    lt_tokenizer *q = family_tokenizer("qwen2", "hf_qwen2.refs");
    lt_chat_jinja *c = NULL;
    cr_assert_eq(lt_chat_jinja_open(&c, q, "hf-qwen2", NULL), LT_OK, "%s", lt_error_message());
    const lt_message msgs[] = {
        {LT_ROLE_USER, "Comment dit-on cafe\xcc\x81 ?", NULL},
        {LT_ROLE_ASSISTANT, "Cafe\xcc\x81, re\xcc\x81sume\xcc\x81 \xe1\x84\x80\xe1\x85\xa1", NULL},
    };
    lt_tokens v = {0};
    cr_assert_eq(lt_chat_jinja_render(c, msgs, 2, NULL, false, &v), LT_OK, "%s",
                 lt_error_message());
    lt_tokens tr = {0};
    for (size_t i = 0; i < v.n; i++)
        if (v.mask[i]) lt_tokens_push(&tr, v.ids[i], 1);
    char *got = lt_tokenizer_decode_special(q, tr.ids, tr.n, true);
    cr_assert_str_eq(got, "Caf\xc3\xa9, r\xc3\xa9sum\xc3\xa9 \xea\xb0\x80<|im_end|>",
                     "trained tokens: the NFC content and the closing token");
    free(got);
    lt_tokens_free(&tr);
    lt_tokens_free(&v);
    lt_chat_jinja_free(c);
    lt_tokenizer_free(q);
}

/* The normalizer copies stable code points and sends only the chunks around the others through
 * libutf8proc (nfc.c): over random strings of code points that compose, reorder and decompose
 * next to ones that do not, that must equal NFC of the whole string (utf8proc_map). */
Test(tokenizer_hf, nfc_chunks_equal_whole_string_nfc) {
    lt_tokenizer *q = family_tokenizer("qwen2", "hf_qwen2.refs");
    static const uint32_t POOL[] = {
        'a',    'e',    'o',    'A',    '>',    '=',    ' ',    0x0301, 0x0323, 0x0302,
        0x0338, 0x031B, 0x0345, 0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01, 0x304B, 0x3099,
        0x309A, 0x30AB, 0x212B, 0x0958, 0x0915, 0x093C, 0x0344, 0x4E2D, 0x201C, 0x0F43,
        0x1F44D, 0x03B1, 0x0313, 0x1F00, 0x00E9, 0x302A, 0x3005, 0xFF76, 0xFF9E, 0x05D9,
    };
    const size_t np = sizeof POOL / sizeof POOL[0];
    uint64_t x = 42;
    size_t changed = 0;
    for (int iter = 0; iter < 3000; iter++) {
        unsigned char str[64];
        size_t len = 0;
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int ncp = 1 + (int)((x >> 33) % 12);
        for (int k = 0; k < ncp; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            len += (size_t)utf8proc_encode_char((utf8proc_int32_t)POOL[(x >> 33) % np], str + len);
        }
        utf8proc_uint8_t *want = NULL;
        utf8proc_ssize_t wn = utf8proc_map(str, (utf8proc_ssize_t)len, &want,
                                           UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        cr_assert_geq(wn, 0);
        size_t n;
        char *got = lt_tokenizer_normalized(q, (const char *)str, len, false, &n);
        cr_assert_not_null(got);
        cr_assert(n == (size_t)wn && memcmp(got, want, n) == 0, "case %d: %.*s", iter, (int)len,
                  str);
        changed += n != len || memcmp(got, str, n) != 0;
        free(got);
        free(want);
    }
    cr_assert_gt(changed, 1000, "the strings should mostly change under NFC (%zu did)", changed);
    lt_tokenizer_free(q);
}
