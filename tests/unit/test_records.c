/* Unit tests for src/data's dataset records: JSON / JSONL / ShareGPT / messages parsing, format
 * detection, malformed records named file:line, and the real fixture datasets. Temporary files
 * live under a per-test directory. */
#include "../support.h"
#include "data/data.h"

static char tmpdir[256];
static void make_tmpdir(void) { ts_tmpdir(tmpdir, sizeof tmpdir, "records"); }
static void remove_tmpdir(void) { ts_rmtree(tmpdir); }

static const char *fixtures(void) {
    const char *f = getenv("LATHE_FIXTURES");
    return f ? f : "../shared/fixtures";
}

static void write_text(const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int count_records(const char *path, lt_record_format fmt, lt_record_format *resolved,
                         int64_t *skipped) {
    lt_record_reader *r;
    cr_assert_eq(lt_record_reader_open(&r, path, fmt, LT_ON_ERROR_SKIP), LT_OK, "%s",
                 lt_error_message());
    int n = 0;
    lt_record rec;
    bool got;
    while (lt_record_reader_next(r, &rec, &got) == LT_OK && got) n++;
    if (resolved) *resolved = lt_record_reader_format(r);
    if (skipped) *skipped = lt_record_reader_skipped(r);
    lt_record_reader_free(r);
    return n;
}

Test(records, jsonl_malformed_lines, .init = make_tmpdir, .fini = remove_tmpdir) {
    char p[512];
    write_text("bad.jsonl",
               "{\"instruction\": \"a\", \"input\": \"\", \"output\": \"b\"}\n"
               "\n"
               "{\"instruction\": \"a\", \"output\": \n"
               "{\"instruction\": 5, \"output\": \"b\"}\n"
               "{\"instruction\": \"x\", \"input\": \"y\", \"output\": \"z\", \"system\": \"s\"}\n",
               p, sizeof p);
    lt_record_reader *r;
    cr_assert_eq(lt_record_reader_open(&r, p, LT_FORMAT_AUTO, LT_ON_ERROR_SKIP), LT_OK);
    lt_record rec;
    bool got;
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert(got);
    cr_assert_eq(lt_record_reader_format(r), LT_FORMAT_ALPACA);
    cr_assert_eq(rec.n_msgs, 2);
    cr_assert_eq(rec.msgs[0].role, LT_ROLE_USER);
    cr_assert_str_eq(rec.msgs[0].content, "a");
    cr_assert_eq(rec.msgs[1].role, LT_ROLE_ASSISTANT);
    cr_assert_str_eq(rec.msgs[1].content, "b");
    cr_assert_eq(rec.line, 1);
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert(got);
    cr_assert_eq(rec.line, 5);
    cr_assert_eq(rec.n_msgs, 3);
    cr_assert_eq(rec.msgs[0].role, LT_ROLE_SYSTEM);
    cr_assert_str_eq(rec.msgs[1].content, "x\n\ny");
    cr_assert_eq(lt_record_reader_skipped(r), 2);
    char want[600];
    snprintf(want, sizeof want, "%s:3: invalid JSON", p);
    cr_assert(strstr(lt_record_reader_first_error(r), want), "%s",
              lt_record_reader_first_error(r));
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert(!got);
    lt_record_reader_free(r);

    /* fail mode stops at line 3 */
    cr_assert_eq(lt_record_reader_open(&r, p, LT_FORMAT_AUTO, LT_ON_ERROR_FAIL), LT_OK);
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), want), "%s", lt_error_message());
    lt_record_reader_free(r);
}

Test(records, json_array_semantic_errors, .init = make_tmpdir, .fini = remove_tmpdir) {
    char p[512];
    write_text("conv.json",
               "[\n"
               "  {\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"},\n"
               "                     {\"from\": \"gpt\", \"value\": \"hello\"}]},\n"
               "  {\"conversations\": []},\n"
               "  {\"conversations\": [{\"from\": \"alien\", \"value\": \"x\"}]},\n"
               "  {\"conversations\": [{\"from\": \"human\", \"value\": \"q\"},\n"
               "     {\"from\": \"function_call\", \"value\": \"{\\\"name\\\": \\\"f\\\"}\"},\n"
               "     {\"from\": \"observation\", \"value\": \"r\"},\n"
               "     {\"from\": \"gpt\", \"value\": \"a\"}], \"tools\": \"[{\\\"name\\\": \\\"f\\\"}]\"}\n"
               "]\n",
               p, sizeof p);
    lt_record_reader *r;
    cr_assert_eq(lt_record_reader_open(&r, p, LT_FORMAT_AUTO, LT_ON_ERROR_FAIL), LT_OK);
    lt_record rec;
    bool got;
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert(got);
    cr_assert_eq(lt_record_reader_format(r), LT_FORMAT_SHAREGPT);
    cr_assert_eq(rec.line, 2);
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_ERR_DATA);
    char want[600];
    snprintf(want, sizeof want, "%s:4: record 1: empty conversation", p);
    cr_assert(strstr(lt_error_message(), want), "%s", lt_error_message());
    lt_record_reader_free(r);

    cr_assert_eq(lt_record_reader_open(&r, p, LT_FORMAT_AUTO, LT_ON_ERROR_SKIP), LT_OK);
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert(got);
    cr_assert_eq(rec.line, 6);
    cr_assert_eq(rec.n_msgs, 5);
    cr_assert_eq(rec.msgs[0].role, LT_ROLE_SYSTEM);
    cr_assert(strstr(rec.msgs[0].content, "tools") && strstr(rec.msgs[0].content, "\"f\""));
    cr_assert_eq(rec.msgs[2].role, LT_ROLE_ASSISTANT);
    cr_assert_eq(rec.msgs[3].role, LT_ROLE_TOOL);
    /* for the model's template: no system turn (the record has none), the tools as JSON, the
     * call as OpenAI tool_calls with content null */
    cr_assert_eq(rec.n_tmsgs, 4);
    cr_assert_str_eq(rec.tools, "[{\"name\":\"f\"}]");
    cr_assert_eq(rec.tmsgs[1].role, LT_ROLE_ASSISTANT);
    cr_assert_null(rec.tmsgs[1].content);
    cr_assert_str_eq(rec.tmsgs[1].fields,
                     "{\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}");
    cr_assert_eq(rec.tmsgs[2].role, LT_ROLE_TOOL);
    cr_assert_str_eq(rec.tmsgs[2].content, "r");
    cr_assert_eq(lt_record_reader_skipped(r), 2);
    snprintf(want, sizeof want, "%s:5: record 2: turn 0: unknown role 'alien'", p);
    lt_record_reader_free(r);

    /* syntax error in an array file: fatal with line:col */
    write_text("broken.json", "[\n {\"text\": \"a\"},\n {\"text\": }\n]\n", p, sizeof p);
    cr_assert_eq(lt_record_reader_open(&r, p, LT_FORMAT_AUTO, LT_ON_ERROR_SKIP), LT_ERR_DATA);
    snprintf(want, sizeof want, "%s:3:", p);
    cr_assert(strstr(lt_error_message(), want), "%s", lt_error_message());
}

Test(records, messages_and_detection_failure, .init = make_tmpdir, .fini = remove_tmpdir) {
    char p[512];
    write_text("m.jsonl",
               "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", "
               "\"content\": [{\"type\": \"text\", \"text\": \"a\"}, {\"type\": \"text\", "
               "\"text\": \"b\"}]}, {\"role\": \"assistant\", \"content\": null, \"tool_calls\": "
               "[{\"id\": 1}]}, {\"role\": \"tool\", \"content\": \"r\"}, {\"role\": "
               "\"assistant\", \"content\": \"done\"}]}\n"
               "{\"messages\": [{\"role\": \"user\", \"content\": \"only a question\"}]}\n",
               p, sizeof p);
    lt_record_reader *r;
    cr_assert_eq(lt_record_reader_open(&r, p, LT_FORMAT_AUTO, LT_ON_ERROR_SKIP), LT_OK);
    lt_record rec;
    bool got;
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert(got);
    cr_assert_eq(lt_record_reader_format(r), LT_FORMAT_MESSAGES);
    cr_assert_eq(rec.n_msgs, 5);
    cr_assert_str_eq(rec.msgs[1].content, "ab");
    cr_assert_str_eq(rec.msgs[2].content, "[{\"id\":1}]");
    cr_assert_eq(rec.msgs[3].role, LT_ROLE_TOOL);
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert(!got);
    cr_assert_eq(lt_record_reader_skipped(r), 1);
    cr_assert(strstr(lt_record_reader_first_error(r), "no assistant turn"));
    lt_record_reader_free(r);

    write_text("u.jsonl", "{\"foo\": 1}\n", p, sizeof p);
    cr_assert_eq(lt_record_reader_open(&r, p, LT_FORMAT_AUTO, LT_ON_ERROR_FAIL), LT_OK);
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), "'foo'") && strstr(lt_error_message(), "--format"),
              "%s", lt_error_message());
    lt_record_reader_free(r);

    lt_record_format f;
    cr_assert_eq(lt_record_format_from_name(&f, "sharegpt"), LT_OK);
    cr_assert_eq(f, LT_FORMAT_SHAREGPT);
    cr_assert_eq(lt_record_format_from_name(&f, "csv"), LT_ERR_USAGE);
}

Test(records, real_fixtures) {
    char p[1024];
    lt_record_format f;
    int64_t skipped;
    snprintf(p, sizeof p, "%s/data/identity.json", fixtures());
    if (access(p, R_OK) != 0) cr_skip_test("fixtures not found at %s (set LATHE_FIXTURES)", p);
    cr_assert_eq(count_records(p, LT_FORMAT_AUTO, &f, &skipped), 91);
    cr_assert_eq(f, LT_FORMAT_ALPACA);
    cr_assert_eq(skipped, 0);
    snprintf(p, sizeof p, "%s/data/glaive_toolcall_en_demo.json", fixtures());
    cr_assert_eq(count_records(p, LT_FORMAT_AUTO, &f, &skipped), 300);
    cr_assert_eq(f, LT_FORMAT_SHAREGPT);
    snprintf(p, sizeof p, "%s/data/gsm8k_train.jsonl", fixtures());
    cr_assert_eq(count_records(p, LT_FORMAT_AUTO, &f, &skipped), 7473);
    cr_assert_eq(f, LT_FORMAT_ALPACA);
    snprintf(p, sizeof p, "%s/data/c4_demo.jsonl", fixtures());
    cr_assert_eq(count_records(p, LT_FORMAT_AUTO, &f, &skipped), 300);
    cr_assert_eq(f, LT_FORMAT_TEXT);
    snprintf(p, sizeof p, "%s/data/tldr_alpaca.jsonl", fixtures());
    int n = count_records(p, LT_FORMAT_ALPACA, &f, &skipped);
    cr_assert_eq(n + skipped, 36139);
    snprintf(p, sizeof p, "%s/data/tinyshakespeare.txt", fixtures());
    lt_record_reader *r;
    cr_assert_eq(lt_record_reader_open(&r, p, LT_FORMAT_AUTO, LT_ON_ERROR_FAIL), LT_OK);
    lt_record rec;
    bool got;
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert(got && !rec.msgs && rec.text_len == 1115394);
    cr_assert_eq(lt_record_reader_next(r, &rec, &got), LT_OK);
    cr_assert(!got);
    lt_record_reader_free(r);
}
