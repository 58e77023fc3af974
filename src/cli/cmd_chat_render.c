/* `lathe chat-render`: render a chat template (the sandboxed interpreter, src/jinja/) for one
 * conversation and write the text to stdout byte for byte, as transformers'
 * apply_chat_template(tokenize=False) would. For checking a model's template and for
 * tools/check_chat_templates.py. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "jinja/jinja.h"
#include "tokenizer/tokenizer.h"

static const char usage_text[] =
    "usage: lathe chat-render (--template FILE | --model PATH) --messages FILE\n"
    "                         [--tools FILE] [--vars FILE] [--add-generation-prompt]\n"
    "       lathe chat-render --model PATH [--template FILE] --messages FILE --tokens\n"
    "                         [--add-generation-prompt]\n"
    "\n"
    "Render a chat template for one conversation and print the text exactly (no newline\n"
    "added), as transformers' apply_chat_template(..., tokenize=False) renders it.\n"
    "\n"
    "  --template FILE          the Jinja chat template source\n"
    "  --model PATH             use the chat template of a GGUF file or Hugging Face directory\n"
    "                           (its bos_token / eos_token strings are set too)\n"
    "  --messages FILE          JSON: an array of messages, or an object with \"messages\" and\n"
    "                           optionally \"tools\", \"documents\", \"add_generation_prompt\";\n"
    "                           its other keys become template variables\n"
    "  --tools FILE             JSON array of tool schemas (the template's `tools`)\n"
    "  --vars FILE              JSON object of extra variables (bos_token, eos_token,\n"
    "                           enable_thinking, ...)\n"
    "  --add-generation-prompt  end with the assistant header\n"
    "  --tokens                 print the token ids and loss mask `lathe tokenize` writes for\n"
    "                           this conversation, as one JSON line {\"ids\": [...], \"mask\":\n"
    "                           [...]}, with the model's tokenizer and its template (or\n"
    "                           --template FILE); the messages file's \"tools\" are used\n"
    "\n"
    "The template runs sandboxed (no file, environment or host access; bounded time, memory\n"
    "and output). A template that calls raise_exception fails with its message.\n"
    "Exit codes: 0 done, 2 bad usage, 3 bad template, messages or model file.\n";

static lt_status load_json(json_t **out, const char *path) {
    json_error_t e;
    *out = json_load_file(path, JSON_DECODE_ANY, &e);
    if (!*out)
        return lt_error_set(LT_ERR_DATA, "%s:%d:%d: invalid JSON: %s", path, e.line, e.column, e.text);
    return LT_OK;
}

static char *token_text(const lt_tokenizer *t, int32_t id) {
    if (id < 0) return NULL;
    return lt_tokenizer_decode_special(t, &id, 1, true);
}

/* --tokens: msg_path's messages (and tools) through lt_chat_jinja_render, as lathe tokenize
 * gives a record's to it; one JSON line of ids and mask on stdout. */
static int print_tokens(const char *model, const char *tpl_path, const char *msg_path, bool gen) {
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    lt_tokenizer *tok = NULL;
    lt_chat_jinja *cj = NULL;
    json_t *doc = NULL;
    char *src = NULL;
    size_t src_n, n = 0;
    lt_message *msgs = NULL;
    char **fields = NULL, *tools = NULL;
    lt_tokens v = {0};
    lt_status st;
    if ((st = lt_tokenizer_load(&tok, model))) goto done;
    if (tpl_path && (st = lt_read_file(tpl_path, &src, &src_n))) goto done;
    if ((st = lt_chat_jinja_open(&cj, tok, tpl_path ? tpl_path : model, src))) goto done;
    if ((st = load_json(&doc, msg_path))) goto done;
    json_t *arr = json_is_object(doc) ? json_object_get(doc, "messages") : doc;
    if (json_is_object(doc) && json_is_true(json_object_get(doc, "add_generation_prompt"))) gen = true;
    if (!json_is_array(arr)) {
        st = lt_error_set(LT_ERR_DATA, "%s: no \"messages\" array", msg_path);
        goto done;
    }
    n = json_array_size(arr);
    msgs = lt_xcalloc(n ? n : 1, sizeof *msgs);
    fields = lt_xcalloc(n ? n : 1, sizeof *fields);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(arr, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        int r = -1;
        for (int k = 0; role && k < 4; k++)
            if (!strcmp(role, roles[k])) r = k;
        if (r < 0 || !(json_is_string(content) || json_is_null(content) || !content)) {
            st = lt_error_set(LT_ERR_DATA, "%s: messages[%zu]: --tokens takes a \"role\" of "
                              "system, user, assistant or tool and a string or null "
                              "\"content\", as lathe tokenize reads them", msg_path, i);
            goto done;
        }
        msgs[i].role = (lt_role)r;
        msgs[i].content = json_string_value(content);
        json_t *rest = json_deep_copy(m);
        json_object_del(rest, "role");
        json_object_del(rest, "content");
        if (json_object_size(rest)) msgs[i].fields = fields[i] = json_dumps(rest, JSON_COMPACT);
        json_decref(rest);
    }
    json_t *jt = json_is_object(doc) ? json_object_get(doc, "tools") : NULL;
    if (jt && !json_is_null(jt)) tools = json_dumps(jt, JSON_COMPACT | JSON_ENCODE_ANY);
    if ((st = lt_chat_jinja_render(cj, msgs, n, tools, gen, &v))) goto done;
    fputs("{\"ids\": [", stdout);
    for (size_t i = 0; i < v.n; i++) printf("%s%d", i ? ", " : "", v.ids[i]);
    fputs("], \"mask\": [", stdout);
    for (size_t i = 0; i < v.n; i++) printf("%s%d", i ? ", " : "", v.mask[i]);
    fputs("]}\n", stdout);
    fflush(stdout);
done:
    lt_tokens_free(&v);
    for (size_t i = 0; fields && i < n; i++) free(fields[i]);
    free(fields);
    free(tools);
    free(msgs);
    json_decref(doc);
    free(src);
    lt_chat_jinja_free(cj);
    lt_tokenizer_free(tok);
    return st ? lt_cli_fail(st) : 0;
}

int lt_cmd_chat_render(int argc, char **argv) {
    static const struct option longopts[] = {{"template", required_argument, 0, 't'},
                                             {"model", required_argument, 0, 'm'},
                                             {"messages", required_argument, 0, 'M'},
                                             {"tools", required_argument, 0, 'T'},
                                             {"vars", required_argument, 0, 'v'},
                                             {"add-generation-prompt", no_argument, 0, 'g'},
                                             {"tokens", no_argument, 0, 'k'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *tpl_path = NULL, *model = NULL, *msg_path = NULL, *tools_path = NULL, *vars_path = NULL;
    bool gen = false, tokens = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': tpl_path = optarg; break;
        case 'm': model = optarg; break;
        case 'M': msg_path = optarg; break;
        case 'T': tools_path = optarg; break;
        case 'v': vars_path = optarg; break;
        case 'g': gen = true; break;
        case 'k': tokens = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (tokens) {
        if (!model || !msg_path || tools_path || vars_path || optind < argc) {
            fprintf(stderr, "lathe chat-render: --tokens needs --model and --messages (no --tools "
                            "or --vars)\n%s", usage_text);
            return 2;
        }
        return print_tokens(model, tpl_path, msg_path, gen);
    }
    if ((!tpl_path) == (!model) || !msg_path || optind < argc) {
        fprintf(stderr, "lathe chat-render: need one of --template / --model, and --messages\n%s", usage_text);
        return 2;
    }
    lt_status st = LT_OK;
    char *src = NULL;
    size_t src_n = 0;
    json_t *msgs = NULL, *tools = NULL, *docs = NULL, *extra = json_object(), *vars = NULL;
    lt_jinja_template *t = NULL;
    char *out = NULL;
    size_t out_n = 0;
    const char *name = tpl_path;
    if (model) {
        lt_tokenizer *tok;
        if ((st = lt_tokenizer_load(&tok, model))) goto done;
        const char *s = lt_tokenizer_chat_template(tok);
        if (!s) {
            st = lt_error_set(LT_ERR_MODEL, "%s: the model has no chat template; hint: pass --template FILE", model);
            lt_tokenizer_free(tok);
            goto done;
        }
        src = lt_xstrdup(s);
        src_n = strlen(s);
        char *bos = token_text(tok, lt_tokenizer_bos(tok)), *eos = token_text(tok, lt_tokenizer_eos(tok));
        if (bos) json_object_set_new(extra, "bos_token", json_string(bos));
        if (eos) json_object_set_new(extra, "eos_token", json_string(eos));
        free(bos);
        free(eos);
        lt_tokenizer_free(tok);
        name = model;
    } else if ((st = lt_read_file(tpl_path, &src, &src_n))) {
        goto done;
    }
    if ((st = load_json(&msgs, msg_path))) goto done;
    if (json_is_object(msgs)) {
        json_t *obj = msgs;
        msgs = json_incref(json_object_get(obj, "messages"));
        tools = json_incref(json_object_get(obj, "tools"));
        docs = json_incref(json_object_get(obj, "documents"));
        json_t *g = json_object_get(obj, "add_generation_prompt");
        if (g && json_is_true(g)) gen = true;
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v) {
            if (strcmp(k, "messages") && strcmp(k, "tools") && strcmp(k, "documents") &&
                strcmp(k, "add_generation_prompt"))
                json_object_set(extra, k, v);
        }
        json_decref(obj);
        if (!msgs) {
            st = lt_error_set(LT_ERR_DATA, "%s: no \"messages\" array", msg_path);
            goto done;
        }
    }
    if (tools_path) {
        json_decref(tools);
        if ((st = load_json(&tools, tools_path))) goto done;
    }
    if (vars_path) {
        json_t *v;
        if ((st = load_json(&v, vars_path))) goto done;
        if (!json_is_object(v)) {
            json_decref(v);
            st = lt_error_set(LT_ERR_DATA, "%s: --vars must be a JSON object", vars_path);
            goto done;
        }
        json_object_update(extra, v);
        json_decref(v);
    }
    if (tools && json_is_null(tools)) {
        json_decref(tools);
        tools = NULL;
    }
    if (docs && json_is_null(docs)) {
        json_decref(docs);
        docs = NULL;
    }
    vars = lt_jinja_chat_vars(msgs, tools, docs, gen, extra);
    if (!vars) {
        st = LT_ERR_DATA;
        goto done;
    }
    if ((st = lt_jinja_parse(&t, name, src, src_n))) goto done;
    if ((st = lt_jinja_render(&out, &out_n, t, vars, NULL))) goto done;
    fwrite(out, 1, out_n, stdout);
    fflush(stdout);
done:
    free(out);
    lt_jinja_free(t);
    json_decref(vars);
    json_decref(msgs);
    json_decref(tools);
    json_decref(docs);
    json_decref(extra);
    free(src);
    return st ? lt_cli_fail(st) : 0;
}
