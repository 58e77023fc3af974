/*
 * chat_vars.c — the variables a chat template sees, built as transformers' apply_chat_template
 * builds them (see lt_jinja_chat_vars in jinja.h for the rules and their source).
 */
#include "jinja_impl.h"

#include <string.h>

static json_t *normalize_message(const json_t *m) {
    json_t *out = json_object();
    static const char *const REASONING[] = {"reasoning_content", "thinking", "reasoning"};
    json_t *reasoning = NULL;
    for (size_t i = 0; i < 3 && !reasoning; i++) {
        json_t *r = json_object_get(m, REASONING[i]);
        if (r && !json_is_null(r)) reasoning = r;
    }
    /* {"thinking": r, **message, "reasoning_content": r}: thinking keeps the first position */
    if (reasoning) json_object_set(out, "thinking", reasoning);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (json_is_null(v)) continue;
        json_object_set(out, k, v);
    }
    if (reasoning) json_object_set(out, "reasoning_content", reasoning);
    return out;
}

json_t *lt_jinja_chat_vars(const json_t *messages, const json_t *tools, const json_t *documents,
                           bool add_generation_prompt, const json_t *extra) {
    if (!json_is_array(messages)) {
        lt_error_set(LT_ERR_DATA, "chat messages must be a JSON array of objects");
        return NULL;
    }
    json_t *vars = json_object(), *msgs = json_array();
    if (extra && json_is_object(extra)) json_object_update(vars, (json_t *)extra);
    size_t i;
    json_t *m;
    json_array_foreach((json_t *)messages, i, m) {
        if (!json_is_object(m)) {
            json_decref(msgs);
            json_decref(vars);
            lt_error_set(LT_ERR_DATA, "chat message %zu is not a JSON object", i);
            return NULL;
        }
        json_array_append_new(msgs, normalize_message(m));
    }
    json_object_set_new(vars, "messages", msgs);
    json_object_set(vars, "tools", tools ? (json_t *)tools : json_null());
    json_object_set(vars, "documents", documents ? (json_t *)documents : json_null());
    json_object_set_new(vars, "add_generation_prompt", json_boolean(add_generation_prompt));
    return vars;
}
