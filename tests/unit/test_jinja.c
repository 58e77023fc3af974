/*
 * test_jinja.c — the chat-template interpreter (src/jinja/): statements, expressions, filters,
 * tests, methods, whitespace control, loop variables, namespace, macros, errors with positions,
 * and the sandbox's limits. The expected outputs in jinja_cases.h are what jinja2 renders in
 * transformers' chat-template environment (tools/gen_jinja_cases.py wrote them); an expected
 * NULL means jinja2 raises there, and so must we.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "jinja/jinja.h"
#include "jinja_cases.h"

static json_t *vars(void) {
    json_error_t e;
    json_t *v = json_loads(JINJA_VARS, 0, &e);
    cr_assert_not_null(v, "bad JINJA_VARS: %s", e.text);
    return v;
}

/* Render src with v; returns the output (malloc'ed) or NULL with the status in *st. */
static char *render(const char *src, const json_t *v, const lt_jinja_limits *lim, lt_status *st) {
    char *out = NULL;
    size_t n = 0;
    lt_jinja_template *t;
    *st = lt_jinja_parse(&t, "case.jinja", src, strlen(src));
    if (*st) return NULL;
    *st = lt_jinja_render(&out, &n, t, v, lim);
    lt_jinja_free(t);
    if (!*st) cr_assert_eq(strlen(out), n);
    return out;
}

Test(jinja, cases_match_jinja2) {
    json_t *v = vars();
    size_t n = sizeof JINJA_CASES / sizeof JINJA_CASES[0], bad = 0;
    for (size_t i = 0; i < n; i++) {
        lt_status st;
        char *out = render(JINJA_CASES[i].tpl, v, NULL, &st);
        const char *want = JINJA_CASES[i].want;
        if (want && (!out || strcmp(out, want) != 0)) {
            cr_log_error("case %zu: %s\n  want: [%s]\n  got:  [%s] %s", i, JINJA_CASES[i].tpl, want,
                         out ? out : "(error)", out ? "" : lt_error_message());
            bad++;
        } else if (!want && out) {
            cr_log_error("case %zu: %s\n  want an error, got: [%s]", i, JINJA_CASES[i].tpl, out);
            bad++;
        }
        free(out);
    }
    json_decref(v);
    cr_assert_eq(bad, 0, "%zu of %zu cases differ from jinja2", bad, n);
}

Test(jinja, syntax_error_names_template_and_position) {
    lt_jinja_template *t;
    const char *src = "ok\n{% if x %}\n  {{ a + }}\n{% endif %}";
    lt_status st = lt_jinja_parse(&t, "my.jinja", src, strlen(src));
    cr_assert_eq(st, LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), "template my.jinja:3:") != NULL, "%s", lt_error_message());
    st = lt_jinja_parse(&t, "my.jinja", "{% if x %}never closed", 22);
    cr_assert_eq(st, LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), "endif") != NULL, "%s", lt_error_message());
}

Test(jinja, runtime_error_position_and_raise_message) {
    json_t *v = vars();
    lt_status st;
    char *out = render("line1\n  {{ nope.attr }}", v, NULL, &st);
    cr_assert_null(out);
    cr_assert(strstr(lt_error_message(), "case.jinja:2:") && strstr(lt_error_message(), "'nope' is undefined"),
              "%s", lt_error_message());
    out = render("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
                 v, NULL, &st);
    cr_assert_null(out);
    cr_assert_eq(st, LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), "System role not supported") != NULL, "%s", lt_error_message());
    /* strip's chars must be a string or none (fuzz finding: a number was read as a string) */
    const char *strips[] = {"{{ 'abc'.strip(5) }}", "{{ 'abc'.rstrip([1]) }}",
                            "{{ 'abc' | trim(2.5) }}"};
    for (int i = 0; i < 3; i++) {
        out = render(strips[i], v, NULL, &st);
        cr_assert_null(out, "%s rendered", strips[i]);
        cr_assert_eq(st, LT_ERR_DATA);
        cr_assert(strstr(lt_error_message(), "chars must be a string or none"), "%s",
                  lt_error_message());
    }
    out = render("{{ 'xabcx'.strip('x') }}|{{ ' a '.strip(none) }}", v, NULL, &st);
    cr_assert_str_eq(out, "abc|a");
    free(out);
    json_decref(v);
}

Test(jinja, limits_are_errors_naming_the_limit) {
    json_t *v = vars();
    lt_status st;
    lt_jinja_limits lim = {0};
    lim.max_steps = 1000;
    char *out = render("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", v, &lim, &st);
    cr_assert_null(out);
    cr_assert(strstr(lt_error_message(), "step limit") && strstr(lt_error_message(), "case.jinja"), "%s",
              lt_error_message());

    lt_jinja_limits lo = {.max_output_bytes = 1000};
    out = render("{% for i in range(1000) %}xxxxxxxxxx{% endfor %}", v, &lo, &st);
    cr_assert_null(out);
    cr_assert(strstr(lt_error_message(), "output limit"), "%s", lt_error_message());

    lt_jinja_limits lm = {.max_memory_bytes = 1 << 20};
    out = render("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", v,
                 &lm, &st);
    cr_assert_null(out);
    cr_assert(strstr(lt_error_message(), "memory limit"), "%s", lt_error_message());
    out = render("{{ 'x' * 100000000000 }}", v, &lm, &st);
    cr_assert_null(out);
    cr_assert(strstr(lt_error_message(), "memory limit"), "%s", lt_error_message());

    out = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", v, NULL, &st);
    cr_assert_null(out);
    cr_assert(strstr(lt_error_message(), "recursion limit"), "%s", lt_error_message());

    out = render("{{ range(1000000)|length }}", v, NULL, &st);
    cr_assert_null(out);
    cr_assert(strstr(lt_error_message(), "range too big"), "%s", lt_error_message());
    json_decref(v);
}

Test(jinja, deep_nesting_is_a_syntax_error_not_a_crash) {
    size_t n = 20000;
    char *src = malloc(n * 2 + 16);
    strcpy(src, "{{ ");
    size_t k = 3;
    for (size_t i = 0; i < n; i++) src[k++] = '(';
    src[k++] = '1';
    for (size_t i = 0; i < n; i++) src[k++] = ')';
    strcpy(src + k, " }}");
    lt_jinja_template *t;
    cr_assert_eq(lt_jinja_parse(&t, "deep", src, strlen(src)), LT_ERR_DATA);
    k = 3;
    strcpy(src, "{{ 1");
    k = 4;
    for (size_t i = 0; i < n / 2; i++) src[k++] = '+', src[k++] = '1';
    strcpy(src + k, " }}");
    cr_assert_eq(lt_jinja_parse(&t, "long", src, strlen(src)), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), "nested too deeply"), "%s", lt_error_message());
    free(src);
}

Test(jinja, sandbox_has_no_host_access) {
    json_t *v = vars();
    lt_status st;
    /* Python escape hatches are plain undefined names / attributes here */
    char *out = render("{{ ''.__class__ }}|{{ cycler }}|{{ self }}|{{ config }}", v, NULL, &st);
    cr_assert_not_null(out, "%s", lt_error_message());
    cr_assert_str_eq(out, "|||");
    free(out);
    out = render("{% include 'x.jinja' %}", v, NULL, &st);
    cr_assert_null(out);
    out = render("{% set ns = namespace() %}{% set ns._x = 1 %}", v, NULL, &st);
    cr_assert_null(out);
    json_decref(v);
}

Test(jinja, chat_vars_normalize_like_transformers) {
    json_t *msgs = json_loads("[{\"role\": \"assistant\", \"content\": \"a\", \"tool_calls\": null,"
                              " \"reasoning\": \"r\"}]", 0, NULL);
    json_t *extra = json_loads("{\"bos_token\": \"<s>\"}", 0, NULL);
    json_t *v = lt_jinja_chat_vars(msgs, NULL, NULL, true, extra);
    cr_assert_not_null(v);
    lt_status st;
    char *out = render("{{ bos_token }}{{ tools }}{{ documents is none }}{{ add_generation_prompt }}"
                       "{% for m in messages %}{{ m|list }}{{ m.thinking }}{{ m.reasoning_content }}{% endfor %}",
                       v, NULL, &st);
    cr_assert_not_null(out, "%s", lt_error_message());
    cr_assert_str_eq(out, "<s>NoneTrueTrue['thinking', 'role', 'content', 'reasoning', 'reasoning_content']rr");
    free(out);
    json_decref(v);
    json_decref(msgs);
    json_decref(extra);
}
