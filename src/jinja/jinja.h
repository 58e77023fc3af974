/*
 * jinja — the sandboxed Jinja2 subset that renders models' chat templates.
 *
 * Renders a template the way transformers' apply_chat_template does: jinja2's
 * ImmutableSandboxedEnvironment with trim_blocks=True, lstrip_blocks=True, the loopcontrols
 * extension (break/continue), transformers' {% generation %} tag (renders its body), and the
 * globals raise_exception(msg), strftime_now(fmt), namespace(...), dict(...), range(...), plus
 * transformers' tojson filter (json.dumps(x, ensure_ascii=False, indent=None, separators=None,
 * sort_keys=False)). Sources of the semantics: transformers utils/chat_template_utils.py
 * (_compile_jinja_template, render_jinja_template), jinja2 3.1 lexer.py / parser.py / filters.py /
 * tests.py / sandbox.py (read for facts; none of their code is copied). Values print as Python's
 * str() does (None -> "None", True -> "True", lists and dicts as Python repr, floats as Python's
 * shortest repr); undefined names print "" and are an error only when an attribute, item or
 * operation needs a value, as jinja2's default Undefined.
 *
 * The sandbox: templates come inside downloaded model files and are untrusted. By construction
 * the interpreter has no file, environment, process or host-object access: values are only
 * None/bool/int/float/str/list/tuple/dict/namespace/macro, built from the caller's JSON; strings,
 * lists and dicts are immutable (append/pop/update are refused as in the immutable sandbox);
 * include/import/extends are refused. Each render is bounded (lt_jinja_limits): nesting depth of
 * macro calls and expressions, loop iterations plus calls, output bytes, and bytes allocated
 * (all values live in one arena per render, freed at its end). Exceeding one is an error naming
 * the template and the limit; no input makes the interpreter crash or abort (tests/fuzz/).
 *
 * Files: lexer.c (source -> tokens, whitespace control), parser.c (tokens -> AST), value.c
 * (values, arena, Python str/repr, JSON), eval.c (statements and expressions), builtins.c
 * (filters, tests, methods, globals). Shared internals: jinja_impl.h.
 */
#ifndef LATHE_JINJA_H
#define LATHE_JINJA_H

#include <jansson.h>

#include "../core/core.h"

typedef struct lt_jinja_template lt_jinja_template;

/* Bounds on one render. Zero in a field means its default (lt_jinja_limits_default). */
typedef struct {
    size_t max_output_bytes; /* bytes written by output statements, captured ones included */
    size_t max_memory_bytes; /* bytes the render's arena may hold */
    uint64_t max_steps;      /* loop iterations + macro/filter/method calls */
    int max_depth;           /* nested macro calls (recursion) */
} lt_jinja_limits;

/* Defaults: 16 MiB output, 256 MiB memory, 10 M steps, depth 64. */
void lt_jinja_limits_default(lt_jinja_limits *lim);

/* Parse template source `src` (len bytes, UTF-8; NUL bytes allowed). `name` names the template
 * in every error message (copied). On success *out owns the AST; free with lt_jinja_free.
 * Errors: LT_ERR_DATA "template NAME:LINE:COL: what" for a syntax error (unclosed tag, unknown
 * statement, unbalanced brackets, nesting deeper than 200). */
lt_status lt_jinja_parse(lt_jinja_template **out, const char *name, const char *src, size_t len);
void lt_jinja_free(lt_jinja_template *t);
const char *lt_jinja_name(const lt_jinja_template *t);

/* Render with the variables of `vars` (a JSON object; NULL = none): JSON null/bool/int/real/
 * string/array/object become None/bool/int/float/str/list/dict (object key order kept). `lim`
 * may be NULL for the defaults. On success *out is a malloc'ed NUL-terminated string (the caller
 * frees it) of *out_len bytes (may contain NUL bytes if the data did). Thread-safe: the template
 * is read-only during a render. Errors (nothing allocated stays behind):
 *  - LT_ERR_DATA "template NAME:LINE:COL: raised: MSG" for raise_exception(MSG),
 *  - LT_ERR_DATA "template NAME:LINE:COL: ..." for a runtime error (undefined attribute of an
 *    undefined value, a type error, unknown filter/test, a refused mutation),
 *  - LT_ERR_DATA "template NAME: ... limit (N) exceeded" for a limit. */
lt_status lt_jinja_render(char **out, size_t *out_len, const lt_jinja_template *t,
                          const json_t *vars, const lt_jinja_limits *lim);

/* Parse + render in one call (for one-shot use); errors as the two above. */
lt_status lt_jinja_render_source(char **out, size_t *out_len, const char *name, const char *src,
                                 const json_t *vars, const lt_jinja_limits *lim);

/* The variables transformers' apply_chat_template gives a chat template (transformers
 * tokenization_utils_base.py apply_chat_template + utils/chat_template_utils.py
 * render_jinja_template): `extra` first (the tokenizer's special tokens such as bos_token /
 * eos_token, then template kwargs such as enable_thinking; may be NULL), then messages, tools
 * (null when NULL), documents (null when NULL) and add_generation_prompt. Messages are
 * normalized as transformers does: keys whose value is null are dropped, and a message with
 * reasoning under reasoning_content / thinking / reasoning gets it under both "thinking"
 * (first key) and "reasoning_content". Returns a new JSON object (json_decref it); `messages`
 * must be an array of objects, else NULL with LT_ERR_DATA set. Inputs are not modified. */
json_t *lt_jinja_chat_vars(const json_t *messages, const json_t *tools, const json_t *documents,
                           bool add_generation_prompt, const json_t *extra);

#endif
