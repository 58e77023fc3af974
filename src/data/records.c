/*
 * Dataset records: JSON arrays, JSONL and plain text files turned into chat conversations
 * (lt_message arrays) or text documents. Formats (field names as in LLaMA-Factory's dataset docs
 * and OpenAI's chat format):
 *   alpaca    {instruction, input?, output, system?, history?: [[user, assistant], ...]}
 *             (GSM8K's {question, answer} is read as instruction/output)
 *   sharegpt  {conversations: [{from, value}], system?, tools?}; from: system, human/user,
 *             gpt/assistant, function_call (-> assistant), observation/tool/function (-> tool)
 *   messages  {messages: [{role, content}]}; content may be a string, a list of {type: "text",
 *             text} parts, or null with tool_calls
 *   text      {text} per record, or a .txt file = one document
 * Both chat formats accept either element spelling (role/content or from/value). A chat record
 * is given twice. For the model's Jinja template (tmsgs, tools) as the record holds it: the
 * `system` field as a first system turn, `tools` as a JSON array (a string holding one, as
 * glaive's, is parsed), a message's keys other than role and content in lt_message.fields, and
 * a ShareGPT function_call turn as an assistant turn with content null and
 * tool_calls [{"type": "function", "function": <the value's object>}] (OpenAI's form). For the
 * built-in layouts (msgs), which know no tools: `tools` appended to the system message as "You
 * have access to the following tools:\n<tools>" and a tool call's JSON as the content. Invariant: a record handed out has at least one assistant turn (chat) or
 * non-empty text.
 */
#include "data.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_JSONL, KIND_ARRAY, KIND_TXT } file_kind;

bool lt_data_is_raw(const char *pattern) {
    const char *dot = strrchr(pattern, '.'), *slash = strrchr(pattern, '/');
    if (!dot || (slash && dot < slash)) return false;
    return !strcmp(dot, ".json") || !strcmp(dot, ".jsonl") || !strcmp(dot, ".txt");
}

struct lt_record_reader {
    char *path;
    lt_record_format fmt;
    lt_on_error on_error;
    file_kind kind;
    char *buf;            /* whole file */
    size_t len, pos;      /* JSONL cursor */
    int64_t line;         /* JSONL: line of pos */
    json_t *root;         /* ARRAY: the parsed array */
    int64_t *elem_line;   /* ARRAY: line where element i starts */
    size_t n_elem_line;
    int64_t index;        /* next record number */
    bool done;
    json_t *cur;          /* JSONL: the current record's value */
    lt_message *msgs, *tmsgs;
    size_t n_msgs, cap_msgs, n_tmsgs, cap_tmsgs;
    const char *tools;
    char **owned;         /* strings built for the current record */
    size_t n_owned, cap_owned;
    int64_t skipped;
    char first_err[600];
};

static const char *format_names[LT_FORMAT_COUNT] = {"auto", "alpaca", "sharegpt", "messages",
                                                    "text"};

lt_status lt_record_format_from_name(lt_record_format *out, const char *name) {
    for (int i = 0; i < LT_FORMAT_COUNT; i++)
        if (!strcmp(name, format_names[i])) {
            *out = (lt_record_format)i;
            return LT_OK;
        }
    return lt_error_set(LT_ERR_USAGE, "unknown dataset format '%s' (known: auto, alpaca, "
                        "sharegpt, messages, text)", name);
}

const char *lt_record_format_name(lt_record_format f) {
    return f >= 0 && f < LT_FORMAT_COUNT ? format_names[f] : "?";
}

static bool has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcasecmp(s + n - m, suf);
}

/* Line where each top-level element of the JSON array in buf starts (a string-aware bracket
 * scan; only used for messages, the parse itself is jansson's). */
static void scan_element_lines(lt_record_reader *r) {
    int64_t line = 1;
    int depth = 0;
    bool in_str = false, esc = false, expect = false;
    size_t cap = 0;
    for (size_t i = 0; i < r->len; i++) {
        char c = r->buf[i];
        if (in_str) {
            if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') in_str = false;
            if (c == '\n') line++;
            continue;
        }
        if (depth == 1 && expect && !isspace((unsigned char)c) && c != ']') {
            if (r->n_elem_line == cap) {
                cap = cap ? 2 * cap : 256;
                r->elem_line = lt_xrealloc(r->elem_line, cap * sizeof *r->elem_line);
            }
            r->elem_line[r->n_elem_line++] = line;
            expect = false;
        }
        if (c == '\n') line++;
        else if (c == '"') in_str = true;
        else if (c == '[' || c == '{') {
            if (++depth == 1) expect = true;
        } else if (c == ']' || c == '}') depth--;
        else if (c == ',' && depth == 1) expect = true;
    }
}

lt_status lt_record_reader_open(lt_record_reader **out, const char *path, lt_record_format fmt,
                                lt_on_error on_error) {
    *out = NULL;
    char *buf;
    size_t len;
    lt_status st = lt_require_regular(path, LT_ERR_DATA, "dataset");
    if (st || (st = lt_read_file(path, &buf, &len))) return st;
    lt_record_reader *r = lt_xcalloc(1, sizeof *r);
    r->path = lt_xstrdup(path);
    r->fmt = fmt;
    r->on_error = on_error;
    r->buf = buf;
    r->len = len;
    r->line = 1;
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) r->pos = 3; /* UTF-8 BOM */
    size_t first = r->pos;
    while (first < len && isspace((unsigned char)buf[first])) first++;
    char c0 = first < len ? buf[first] : 0;
    if ((fmt == LT_FORMAT_AUTO || fmt == LT_FORMAT_TEXT) &&
        (has_suffix(path, ".txt") || (fmt == LT_FORMAT_TEXT && c0 != '{' && c0 != '['))) {
        r->kind = KIND_TXT;
        r->fmt = LT_FORMAT_TEXT;
    } else if (c0 == '[') {
        r->kind = KIND_ARRAY;
        json_error_t err;
        r->root = json_loadb(buf + r->pos, len - r->pos, 0, &err);
        if (!r->root || !json_is_array(r->root)) {
            st = r->root ? lt_error_set(LT_ERR_DATA, "%s: expected a JSON array of records", path)
                         : lt_error_set(LT_ERR_DATA, "%s:%d:%d: invalid JSON: %s (hint: fix the "
                                        "file; a JSON array cannot be read past a syntax error)",
                                        path, err.line, err.column, err.text);
            lt_record_reader_free(r);
            return st;
        }
        scan_element_lines(r);
    } else if (c0 == '{' || c0 == 0) {
        r->kind = KIND_JSONL;
    } else {
        lt_record_reader_free(r);
        return lt_error_set(LT_ERR_DATA, "%s: neither a JSON array nor JSONL (first character "
                            "'%c') (hint: pass --format text for plain text)", path, c0);
    }
    *out = r;
    return LT_OK;
}

/* ---- building one record ------------------------------------------------------------------- */

static const char *own(lt_record_reader *r, char *s) {
    if (r->n_owned == r->cap_owned) {
        r->cap_owned = r->cap_owned ? 2 * r->cap_owned : 8;
        r->owned = lt_xrealloc(r->owned, r->cap_owned * sizeof *r->owned);
    }
    r->owned[r->n_owned++] = s;
    return s;
}

static void push_to(lt_message **v, size_t *n, size_t *cap, lt_message m) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *v = lt_xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[(*n)++] = m;
}

/* A turn for the built-in layouts only (msgs), for the Jinja template only (tmsgs), or both. */
static void push_builtin(lt_record_reader *r, lt_role role, const char *content) {
    push_to(&r->msgs, &r->n_msgs, &r->cap_msgs, (lt_message){role, content, NULL});
}
static void push_tmpl(lt_record_reader *r, lt_role role, const char *content, const char *fields) {
    push_to(&r->tmsgs, &r->n_tmsgs, &r->cap_tmsgs, (lt_message){role, content, fields});
}
static void push_msg(lt_record_reader *r, lt_role role, const char *content) {
    push_builtin(r, role, content);
    push_tmpl(r, role, content, NULL);
}

static void clear_record(lt_record_reader *r) {
    for (size_t i = 0; i < r->n_owned; i++) free(r->owned[i]);
    r->n_owned = 0;
    r->n_msgs = r->n_tmsgs = 0;
    r->tools = NULL;
    if (r->cur) json_decref(r->cur);
    r->cur = NULL;
}

static char *concat3(const char *a, const char *sep, const char *b) {
    size_t na = strlen(a), ns = strlen(sep), nb = strlen(b);
    char *s = lt_xmalloc(na + ns + nb + 1);
    memcpy(s, a, na);
    memcpy(s + na, sep, ns);
    memcpy(s + na + ns, b, nb + 1);
    return s;
}

/* Optional string field: NULL when absent or null; *bad set when present with another type. */
static const char *opt_str(json_t *o, const char *key, bool *bad) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

static const char *json_type_name(json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Each converter returns NULL on success or writes the problem into err. */
static bool convert_alpaca(lt_record_reader *r, json_t *o, char *err, size_t cap) {
    bool bad = false;
    const char *ins_key = json_object_get(o, "instruction") ? "instruction" : "question";
    const char *out_key = json_object_get(o, "output") ? "output" : "answer";
    const char *ins = opt_str(o, ins_key, &bad);
    if (bad) return snprintf(err, cap, "'%s' must be a string", ins_key), false;
    const char *input = opt_str(o, "input", &bad);
    if (bad) return snprintf(err, cap, "'input' must be a string"), false;
    const char *output = opt_str(o, out_key, &bad);
    if (bad) return snprintf(err, cap, "'%s' must be a string", out_key), false;
    const char *system = opt_str(o, "system", &bad);
    if (bad) return snprintf(err, cap, "'system' must be a string"), false;
    if (!ins) return snprintf(err, cap, "missing 'instruction' (alpaca format)"), false;
    if (!output) return snprintf(err, cap, "missing '%s' (alpaca format)", out_key), false;
    if (!*ins && (!input || !*input))
        return snprintf(err, cap, "'%s' and 'input' are both empty", ins_key), false;
    if (!*output) return snprintf(err, cap, "'%s' is empty: nothing to train on", out_key), false;
    if (system && *system) push_msg(r, LT_ROLE_SYSTEM, system);
    json_t *hist = json_object_get(o, "history");
    if (hist && !json_is_null(hist)) {
        if (!json_is_array(hist)) return snprintf(err, cap, "'history' must be an array"), false;
        size_t i;
        json_t *pair;
        json_array_foreach(hist, i, pair) {
            json_t *q = json_array_get(pair, 0), *a = json_array_get(pair, 1);
            if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(q) ||
                !json_is_string(a))
                return snprintf(err, cap, "'history'[%zu] must be [user, assistant] strings", i),
                       false;
            push_msg(r, LT_ROLE_USER, json_string_value(q));
            push_msg(r, LT_ROLE_ASSISTANT, json_string_value(a));
        }
    }
    const char *user = ins;
    if (input && *input) user = own(r, *ins ? concat3(ins, "\n\n", input) : lt_xstrdup(input));
    push_msg(r, LT_ROLE_USER, user);
    push_msg(r, LT_ROLE_ASSISTANT, output);
    return true;
}

static bool map_role(const char *s, lt_role *role) {
    static const struct {
        const char *name;
        lt_role role;
    } map[] = {{"system", LT_ROLE_SYSTEM},       {"human", LT_ROLE_USER},
               {"user", LT_ROLE_USER},           {"gpt", LT_ROLE_ASSISTANT},
               {"assistant", LT_ROLE_ASSISTANT}, {"function_call", LT_ROLE_ASSISTANT},
               {"observation", LT_ROLE_TOOL},    {"tool", LT_ROLE_TOOL},
               {"function", LT_ROLE_TOOL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].name)) {
            *role = map[i].role;
            return true;
        }
    return false;
}

/* Message content: string, list of text parts, or null + tool_calls. NULL with err set. */
static const char *message_content(lt_record_reader *r, json_t *m, const char *key, size_t i,
                                   char *err, size_t cap) {
    json_t *v = json_object_get(m, key);
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_array(v)) {
        char *s = lt_xstrdup("");
        size_t k;
        json_t *part;
        json_array_foreach(v, k, part) {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(part)) t = part;
            if (!json_is_string(t)) {
                free(s);
                snprintf(err, cap, "turn %zu: content part %zu has no 'text' string", i, k);
                return NULL;
            }
            char *n = concat3(s, "", json_string_value(t));
            free(s);
            s = n;
        }
        return own(r, s);
    }
    json_t *calls = json_object_get(m, "tool_calls");
    if ((!v || json_is_null(v)) && calls && !json_is_null(calls)) {
        char *s = json_dumps(calls, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s) {
            char *c = lt_xstrdup(s);
            free(s);
            return own(r, c);
        }
    }
    if (!v) snprintf(err, cap, "turn %zu: missing '%s'", i, key);
    else snprintf(err, cap, "turn %zu: '%s' must be a string, not %s", i, key, json_type_name(v));
    return NULL;
}

/* Turn i (object m) for the Jinja template, as the record holds it: content null stays null; a
 * ShareGPT function_call becomes OpenAI's tool_calls; keys other than role/content go to fields.
 * `content` is the built-in layouts' text of the turn. */
static bool template_turn(lt_record_reader *r, json_t *m, const char *role_key,
                          const char *content_key, const char *content, lt_role role, size_t i,
                          char *err, size_t cap) {
    json_t *v = json_object_get(m, content_key);
    const char *tcontent = !v || json_is_null(v) ? NULL : content;
    json_t *fields = json_object();
    if (!strcmp(json_string_value(json_object_get(m, role_key)), "function_call")) {
        json_t *call = json_loads(content, 0, NULL);
        if (!json_is_object(call) || !json_is_string(json_object_get(call, "name"))) {
            json_decref(call);
            json_decref(fields);
            return snprintf(err, cap, "turn %zu: a function_call value must be a JSON object "
                            "{\"name\": ..., \"arguments\": ...}", i), false;
        }
        json_object_set_new(fields, "tool_calls",
                            json_pack("[{s:s, s:o}]", "type", "function", "function", call));
        tcontent = NULL;
    } else {
        const char *k;
        json_t *x;
        json_object_foreach(m, k, x) {
            if (strcmp(k, role_key) && strcmp(k, content_key)) json_object_set(fields, k, x);
        }
    }
    char *f = json_object_size(fields) ? json_dumps(fields, JSON_COMPACT) : NULL;
    json_decref(fields);
    push_tmpl(r, role, tcontent, f ? own(r, lt_xstrdup(f)) : NULL);
    free(f);
    return true;
}

static bool convert_chat(lt_record_reader *r, json_t *o, char *err, size_t cap) {
    const char *conv_key = json_object_get(o, "conversations") ? "conversations" : "messages";
    json_t *conv = json_object_get(o, conv_key);
    if (!conv) return snprintf(err, cap, "missing 'conversations' or 'messages'"), false;
    if (!json_is_array(conv))
        return snprintf(err, cap, "'%s' must be an array, not %s", conv_key,
                        json_type_name(conv)), false;
    if (json_array_size(conv) == 0) return snprintf(err, cap, "empty conversation"), false;
    bool bad = false;
    const char *system = opt_str(o, "system", &bad);
    if (bad) return snprintf(err, cap, "'system' must be a string"), false;
    json_t *tools = json_object_get(o, "tools");
    const char *tools_s = NULL;
    if (json_is_string(tools)) tools_s = json_string_value(tools);
    else if (tools && !json_is_null(tools)) {
        char *s = json_dumps(tools, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s) {
            tools_s = own(r, lt_xstrdup(s));
            free(s);
        }
    }
    if (tools_s && (!*tools_s || !strcmp(tools_s, "[]"))) tools_s = NULL;
    if (tools_s) {
        json_t *ta = json_is_string(tools) ? json_loads(tools_s, 0, NULL) : json_incref(tools);
        char *s = json_is_array(ta) ? json_dumps(ta, JSON_COMPACT) : NULL;
        json_decref(ta);
        if (!s)
            return snprintf(err, cap, "'tools' must be a JSON array of tool schemas (or a string "
                            "holding one)"), false;
        r->tools = own(r, lt_xstrdup(s));
        free(s);
    }
    /* A leading system turn inside the conversation takes the place of the `system` field. */
    json_t *m0 = json_array_get(conv, 0);
    const char *r0 = json_string_value(json_object_get(m0, json_object_get(m0, "role") ? "role"
                                                                                      : "from"));
    bool sys_in_conv = r0 && !strcmp(r0, "system");
    if (!sys_in_conv && (system || tools_s)) {
        const char *s = system ? system : "";
        if (tools_s)
            s = own(r, concat3(s, *s ? "\n\nYou have access to the following tools:\n"
                                     : "You have access to the following tools:\n", tools_s));
        push_builtin(r, LT_ROLE_SYSTEM, s);
    }
    if (!sys_in_conv && system && *system) push_tmpl(r, LT_ROLE_SYSTEM, system, NULL);
    size_t i;
    json_t *m;
    bool any_assistant = false;
    json_array_foreach(conv, i, m) {
        if (!json_is_object(m))
            return snprintf(err, cap, "turn %zu must be an object, not %s", i,
                            json_type_name(m)), false;
        const char *role_key = json_object_get(m, "role") ? "role" : "from";
        const char *content_key = json_object_get(m, "role") ? "content" : "value";
        json_t *rv = json_object_get(m, role_key);
        if (!json_is_string(rv))
            return snprintf(err, cap, "turn %zu: missing 'from'/'role' string", i), false;
        lt_role role;
        if (!map_role(json_string_value(rv), &role))
            return snprintf(err, cap, "turn %zu: unknown role '%s' (known: system, human, user, "
                            "gpt, assistant, function_call, observation, tool, function)", i,
                            json_string_value(rv)), false;
        const char *content = message_content(r, m, content_key, i, err, cap);
        if (!content) return false;
        if (!template_turn(r, m, role_key, content_key, content, role, i, err, cap)) return false;
        if (role == LT_ROLE_SYSTEM && i == 0 && tools_s)
            content = own(r, concat3(content, "\n\nYou have access to the following tools:\n",
                                     tools_s));
        any_assistant |= role == LT_ROLE_ASSISTANT;
        push_builtin(r, role, content);
    }
    if (!any_assistant) return snprintf(err, cap, "no assistant turn: nothing to train on"), false;
    return true;
}

static bool convert_text(lt_record *rec, json_t *o, char *err, size_t cap) {
    json_t *t = json_object_get(o, "text");
    if (!t) return snprintf(err, cap, "missing 'text'"), false;
    if (!json_is_string(t))
        return snprintf(err, cap, "'text' must be a string, not %s", json_type_name(t)), false;
    if (json_string_length(t) == 0) return snprintf(err, cap, "'text' is empty"), false;
    rec->text = json_string_value(t);
    rec->text_len = json_string_length(t);
    return true;
}

static lt_record_format detect(json_t *o) {
    if (json_object_get(o, "conversations")) return LT_FORMAT_SHAREGPT;
    if (json_object_get(o, "messages")) return LT_FORMAT_MESSAGES;
    if (json_object_get(o, "instruction") || json_object_get(o, "question"))
        return LT_FORMAT_ALPACA;
    if (json_object_get(o, "text")) return LT_FORMAT_TEXT;
    return LT_FORMAT_AUTO;
}

static bool convert(lt_record_reader *r, json_t *o, lt_record *rec, char *err, size_t cap) {
    if (!json_is_object(o))
        return snprintf(err, cap, "expected a JSON object, found %s", json_type_name(o)), false;
    if (r->fmt == LT_FORMAT_AUTO) {
        lt_record_format f = detect(o);
        if (f == LT_FORMAT_AUTO) {
            int n = snprintf(err, cap, "cannot detect the dataset format from keys");
            const char *k;
            json_t *v;
            json_object_foreach(o, k, v) if (n > 0 && (size_t)n < cap) n +=
                snprintf(err + n, cap - (size_t)n, " '%s'", k);
            if (n > 0 && (size_t)n < cap)
                snprintf(err + n, cap - (size_t)n, " (hint: pass --format alpaca|sharegpt|"
                         "messages|text)");
            return false;
        }
        r->fmt = f;
    }
    switch (r->fmt) {
    case LT_FORMAT_ALPACA: return convert_alpaca(r, o, err, cap);
    case LT_FORMAT_SHAREGPT:
    case LT_FORMAT_MESSAGES: return convert_chat(r, o, err, cap);
    default: return convert_text(rec, o, err, cap);
    }
}

/* ---- iteration ----------------------------------------------------------------------------- */

/* Next raw value: *o (borrowed for arrays, owned in r->cur for JSONL) and its line; or a parse
 * problem in err with *o NULL. false at the end. */
static bool next_value(lt_record_reader *r, json_t **o, int64_t *line, char *err, size_t cap) {
    *o = NULL;
    if (r->kind == KIND_ARRAY) {
        size_t i = (size_t)r->index;
        if (i >= json_array_size(r->root)) return false;
        *line = i < r->n_elem_line ? r->elem_line[i] : 0;
        *o = json_array_get(r->root, i);
        return true;
    }
    while (r->pos < r->len) { /* JSONL */
        const char *s = r->buf + r->pos;
        const char *nl = memchr(s, '\n', r->len - r->pos);
        size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
        int64_t this_line = r->line;
        r->pos += n + (nl != NULL);
        r->line++;
        size_t k = 0;
        while (k < n && isspace((unsigned char)s[k])) k++;
        if (k == n) continue; /* blank line */
        *line = this_line;
        json_error_t je;
        r->cur = json_loadb(s, n, 0, &je);
        if (!r->cur) snprintf(err, cap, "invalid JSON at column %d: %s", je.column, je.text);
        *o = r->cur;
        return true;
    }
    return false;
}

lt_status lt_record_reader_next(lt_record_reader *r, lt_record *rec, bool *got) {
    memset(rec, 0, sizeof *rec);
    *got = false;
    clear_record(r);
    if (r->kind == KIND_TXT) {
        if (r->done || r->len - r->pos == 0) return LT_OK;
        r->done = true;
        rec->text = r->buf + r->pos;
        rec->text_len = r->len - r->pos;
        rec->line = 1;
        rec->index = r->index++;
        *got = true;
        return LT_OK;
    }
    for (;;) {
        json_t *o;
        int64_t line = 0;
        char err[400] = "";
        if (!next_value(r, &o, &line, err, sizeof err)) return LT_OK;
        int64_t index = r->index++;
        if (o && convert(r, o, rec, err, sizeof err)) {
            rec->msgs = r->n_msgs ? r->msgs : NULL;
            rec->n_msgs = r->n_msgs;
            rec->tmsgs = r->n_msgs ? r->tmsgs : NULL;
            rec->n_tmsgs = r->n_msgs ? r->n_tmsgs : 0;
            rec->tools = r->tools;
            rec->line = line;
            rec->index = index;
            *got = true;
            return LT_OK;
        }
        char msg[600];
        if (r->kind == KIND_ARRAY)
            snprintf(msg, sizeof msg, "%s:%lld: record %lld: %s", r->path, (long long)line,
                     (long long)index, err);
        else
            snprintf(msg, sizeof msg, "%s:%lld: %s", r->path, (long long)line, err);
        if (!r->first_err[0]) snprintf(r->first_err, sizeof r->first_err, "%s", msg);
        if (r->on_error == LT_ON_ERROR_FAIL)
            return lt_error_set(LT_ERR_DATA, "%s (hint: fix the record, or pass --on-error skip)",
                                msg);
        lt_warn("skipping malformed record: %s", msg);
        r->skipped++;
        clear_record(r);
    }
}

lt_record_format lt_record_reader_format(const lt_record_reader *r) { return r->fmt; }
int64_t lt_record_reader_skipped(const lt_record_reader *r) { return r->skipped; }
const char *lt_record_reader_first_error(const lt_record_reader *r) { return r->first_err; }

void lt_record_reader_free(lt_record_reader *r) {
    if (!r) return;
    clear_record(r);
    free(r->owned);
    free(r->msgs);
    free(r->tmsgs);
    if (r->root) json_decref(r->root);
    free(r->elem_line);
    free(r->buf);
    free(r->path);
    free(r);
}
