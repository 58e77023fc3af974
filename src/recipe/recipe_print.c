/*
 * recipe_print — output driven by the key table: the resolved recipe (YAML with every key and its
 * help as a comment, read back by lt_recipe_load to an equal recipe) and the Markdown reference
 * committed as docs/recipe.md.
 */
#include "recipe/recipe_impl.h"

#include <limits.h>
#include <string.h>

/* ---- resolved YAML ------------------------------------------------------------------------ */

/* "# text" wrapped at ~96 columns, indented by two spaces. */
static void comment(FILE *out, const char *indent, const char *text) {
    const int width = 92;
    const char *s = text;
    while (*s) {
        int len = (int)strlen(s), cut = len;
        if (len > width) {
            cut = width;
            while (cut > 0 && s[cut] != ' ') cut--;
            if (cut == 0) cut = width;
        }
        fprintf(out, "%s# %.*s\n", indent, cut, s);
        s += cut;
        while (*s == ' ') s++;
    }
}

/* A YAML double-quoted scalar. Bytes >= 0x80 (UTF-8) pass through. */
static void quoted(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"') fputs("\\\"", out);
        else if (*p == '\\') fputs("\\\\", out);
        else if (*p == '\n') fputs("\\n", out);
        else if (*p == '\t') fputs("\\t", out);
        else if (*p < 0x20 || *p == 0x7f) fprintf(out, "\\x%02x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

/* A data.train / data.eval entry as a YAML flow mapping, the fields that are set only. */
static void entry(FILE *out, const char *path, const lt_data_entry *e) {
    const rk_key *fmt = &lt_recipe_keys[lt_recipe__find("data", 4, "format")];
    const rk_key *err = &lt_recipe_keys[lt_recipe__find("data", 4, "on_error")];
    char b[40];
    fputs("{path: ", out);
    quoted(out, path);
    if (e->weight > 0) {
        lt_recipe__fmt_double(e->weight, b, sizeof b);
        fprintf(out, ", weight: %s", b);
    }
    if (e->format >= 0) fprintf(out, ", format: %s", fmt->choices[e->format]);
    if (e->template_name) {
        fputs(", template: ", out);
        quoted(out, e->template_name);
    }
    if (e->max_len >= 0) fprintf(out, ", max_len: %lld", (long long)e->max_len);
    if (e->eval_fraction >= 0) {
        lt_recipe__fmt_double(e->eval_fraction, b, sizeof b);
        fprintf(out, ", eval_fraction: %s", b);
    }
    if (e->on_error >= 0) fprintf(out, ", on_error: %s", err->choices[e->on_error]);
    fputc('}', out);
}

/* The value of row i as YAML text. */
static void value(FILE *out, const lt_recipe *r, const rk_key *k) {
    const void *f = (const char *)r + k->off;
    char b[40];
    switch (k->type) {
    case RK_STRING:
    case RK_PATH: quoted(out, *(char *const *)f); break;
    case RK_INT: fprintf(out, "%lld", (long long)*(const int64_t *)f); break;
    case RK_FLOAT:
        lt_recipe__fmt_double(*(const double *)f, b, sizeof b);
        fputs(b, out);
        break;
    case RK_BOOL: fputs(*(const bool *)f ? "true" : "false", out); break;
    case RK_ENUM: fputs(k->choices[*(const int *)f], out); break;
    case RK_LIST:
    case RK_PATHLIST: {
        const lt_recipe_list *l = f;
        fputc('[', out);
        for (int i = 0; i < l->n; i++) {
            if (i) fputs(", ", out);
            if (l->entries && lt_data_entry_is_set(&l->entries[i])) {
                entry(out, l->items[i], &l->entries[i]);
            } else {
                quoted(out, l->items[i]);
            }
        }
        fputc(']', out);
        break;
    }
    case RK_FLOATPAIR: break;
    }
}

void lt_recipe_print(const lt_recipe *r, FILE *out) {
    fprintf(out, "# lathe recipe, resolved: every key with the value used. Paths are absolute.\n");
    if (r->source) {
        fputs("# from: ", out);
        for (const char *p = r->source; *p; p++) fputc(*p == '\n' ? ' ' : *p, out);
        fputc('\n', out);
    }
    size_t prev_len = 0, prev_sub_len = 0;
    const char *prev = NULL, *prev_sub = NULL;
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const rk_key *k = &lt_recipe_keys[i];
        if (k->flags & RF_ALIAS) continue;
        const char *dot = strchr(k->name, '.'), *dot2 = strchr(dot + 1, '.');
        size_t sl = (size_t)(dot - k->name);
        if (!prev || sl != prev_len || strncmp(prev, k->name, sl)) {
            fprintf(out, "\n%.*s:\n", (int)sl, k->name);
            prev_sub = NULL;
        }
        prev = k->name, prev_len = sl;
        /* a.b.c: key c of subsection b, one level deeper */
        const char *key = dot2 ? dot2 + 1 : dot + 1, *indent = dot2 ? "    " : "  ";
        size_t bl = dot2 ? (size_t)(dot2 - dot - 1) : 0;
        if (dot2 && (!prev_sub || bl != prev_sub_len || strncmp(prev_sub, dot + 1, bl)))
            fprintf(out, "  %.*s:\n", (int)bl, dot + 1);
        prev_sub = dot2 ? dot + 1 : NULL, prev_sub_len = bl;
        comment(out, indent, k->help);
        const void *f = (const char *)r + k->off;
        bool unset = (k->type == RK_STRING || k->type == RK_PATH) && !*(char *const *)f;
        if (unset) {
            fprintf(out, "%s# %s: (not set)\n", indent, key);
        } else if (!strcmp(k->name, "train.epochs") && r->train.max_steps > 0) {
            fprintf(out, "%s# %s: ", indent, key);
            value(out, r, k);
            fputs("   (not used: train.max_steps decides the run length)\n", out);
        } else {
            fprintf(out, "%s%s: ", indent, key);
            value(out, r, k);
            fputc('\n', out);
        }
    }
}

lt_status lt_recipe_write(const lt_recipe *r, const char *path) {
    char tmp[PATH_MAX];
    FILE *fp;
    lt_status st = lt_atomic_open(path, tmp, &fp);
    if (st) return st;
    lt_recipe_print(r, fp);
    if (ferror(fp)) {
        lt_atomic_abort(fp, tmp);
        return lt_error_set(LT_ERR_IO, "cannot write '%s'", path);
    }
    return lt_atomic_commit(fp, tmp, path);
}

/* ---- Markdown reference ------------------------------------------------------------------- */

static const char *type_name(const rk_key *k) {
    switch (k->type) {
    case RK_STRING: return "string";
    case RK_PATH: return "path";
    case RK_INT: return "integer";
    case RK_FLOAT: return "number";
    case RK_BOOL: return "true/false";
    case RK_ENUM: return "choice";
    case RK_LIST: return "list of names";
    case RK_PATHLIST: return "list of globs";
    case RK_FLOATPAIR: return "[number, number]";
    }
    return "?";
}

void lt_recipe_docs(FILE *out) {
    fputs("# Recipe reference\n\n"
          "<!-- Generated by lt_recipe_docs() from the key table in src/recipe/recipe.c; do not "
          "edit by hand.\n"
          "     Regenerate: make build/lathe_tests && LATHE_UPDATE_DOCS=1 build/lathe_tests "
          "--filter 'recipe/docs_up_to_date' -->\n\n"
          "A recipe is one YAML document: a mapping of sections, each a mapping of keys.\n"
          "`lathe train recipe.yaml [--set section.key=value ...]` reads it, applies the\n"
          "overrides in order, checks it, and saves the resolved copy (every key with the value\n"
          "used, paths absolute) as `recipe.yaml` in the run directory; that copy runs the same\n"
          "training again. Examples to copy: `recipes/*.yaml`.\n\n"
          "```yaml\n"
          "model:\n"
          "  path: ../models/base.gguf\n"
          "data:\n"
          "  train: [../shards/train-*.h5]\n"
          "output:\n"
          "  dir: ../runs/first\n"
          "```\n\n"
          "Rules:\n\n"
          "- **Subsections**: a key named `a.b.c` (`output.gate.metric`) is written as `b:` "
          "inside\n  section `a`, holding `c:` (block, or flow: `gate: {metric: eval_loss}`); "
          "`--set` takes\n  its full name.\n"
          "- **Data entries**: an item of `data.train` / `data.eval` is a glob, or a mapping "
          "with\n  `path:` and the entry's own settings: `{path: tickets/*.jsonl, weight: 0.7, "
          "max_len: 2048}`.\n"
          "- **Paths** (`model.path`, `data.train`, `data.eval`, `output.dir`): a relative path in "
          "a\n  recipe file is relative to the directory of that recipe file; a relative path "
          "given\n  with `--set` is relative to the current directory; `~/` is the home directory."
          "\n  Paths are stored absolute, with `.` and `..` removed by text (symbolic links are "
          "not\n  followed). `data.*` entries are glob patterns, expanded when the data is "
          "opened.\n"
          "- **Lists** are YAML lists (`[a, b]` or one `- item` per line); a single value is a "
          "list\n  of one; an empty value or `[]` is an empty list.\n"
          "- **`--set section.key=value`**: the value is taken literally unless it starts with "
          "`[`\n  (a YAML flow list, `--set data.train=[a.h5, b.h5]`) or a quote (a YAML quoted "
          "string).\n  An empty value clears a list.\n"
          "- **Run length**: `train.max_steps` > 0 decides it, otherwise `train.epochs`. Setting "
          "both\n  in the recipe file (or both with `--set`) is an error; a `--set` of one "
          "replaces the\n  other's value from the file.\n"
          "- **true/false** also accepts yes/no and on/off. Numbers accept `2e-4` notation.\n"
          "- Unknown sections and keys, repeated keys, wrong types and out-of-range values are "
          "errors\n  that name `file:line:column` and suggest the nearest key name.\n",
          out);
    const char *prev = NULL;
    size_t prev_len = 0;
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const rk_key *k = &lt_recipe_keys[i];
        const char *dot = strchr(k->name, '.');
        size_t sl = (size_t)(dot - k->name);
        if (!prev || sl != prev_len || strncmp(prev, k->name, sl)) {
            fprintf(out, "\n## %.*s\n\n", (int)sl, k->name);
            fputs("| key | type | default | allowed | description |\n"
                  "|---|---|---|---|---|\n",
                  out);
        }
        prev = k->name, prev_len = sl;
        char allowed[256] = "";
        if (k->choices) {
            size_t used = 0;
            for (int j = 0; k->choices[j]; j++) {
                int w = snprintf(allowed + used, sizeof allowed - used, "%s`%s`", j ? ", " : "",
                                 k->choices[j]);
                if (w < 0 || (size_t)w >= sizeof allowed - used) break;
                used += (size_t)w;
            }
        } else {
            char range[96];
            lt_recipe__range_text(k, range, sizeof range);
            if (*range) snprintf(allowed, sizeof allowed, "%s", range);
            if (k->type == RK_FLOATPAIR)
                snprintf(allowed, sizeof allowed, "each %s", range);
        }
        fprintf(out, "| `%s` | %s | ", k->name, type_name(k));
        if (k->flags & RF_REQUIRED) fputs("**required**", out);
        else if (k->flags & RF_ALIAS) fputs("-", out);
        else if (!k->def) fputs("not set", out);
        else fprintf(out, "`%s`", k->def);
        fprintf(out, " | %s | %s |\n", allowed, k->help);
    }
}
