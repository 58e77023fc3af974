/*
 * eval.c — executes a parsed template: statements, expressions, scopes, macros, and the public
 * entry points (lt_jinja_parse / lt_jinja_render).
 *
 * Scoping as jinja2 compiles it (read for behaviour): `if` shares its scope; each iteration of a
 * `for` body gets a fresh scope whose parent is the enclosing one (so `set` inside a loop is gone
 * at the next iteration and after the loop — hence namespace()); a macro call gets a scope whose
 * parent is the scope the macro was defined in. Names resolve innermost first, then the render
 * variables, then the global functions, else to an undefined value that remembers its name.
 * Errors longjmp to lt_jinja_render, which frees the arena.
 */
#include "jinja_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EX_NORMAL = 0, EX_BREAK, EX_CONTINUE };

struct lt_jinja_template {
    jarena arena;
    char *name;
    jnode *root;
};

_Noreturn void jfail(jctx *c, const jnode *n, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n)
        c->err = lt_error_set(LT_ERR_DATA, "template %s:%d:%d: %s", c->tname, n->line, n->col, msg);
    else
        c->err = lt_error_set(LT_ERR_DATA, "template %s: %s", c->tname, msg);
    longjmp(c->jmp, 1);
}

void jstep(jctx *c, const jnode *n) {
    if (++c->steps > c->lim.max_steps)
        jfail(c, n, "step limit (%llu loop iterations and calls) exceeded; hint: the template "
                    "loops too long for its input",
              (unsigned long long)c->lim.max_steps);
}

static void on_arena_limit(void *ud) {
    jctx *c = ud;
    jfail(c, NULL, "memory limit (%zu bytes) exceeded", c->lim.max_memory_bytes);
}

/* ---- scopes ------------------------------------------------------------------------------- */

static jframe *frame_new(jctx *c, jframe *parent) {
    jframe *f = ja_alloc(&c->arena, sizeof *f);
    f->parent = parent;
    return f;
}

static void frame_set(jctx *c, jframe *f, const char *name, jv v) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) {
            f->vals[i] = v;
            return;
        }
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 8;
        const char **nn = ja_alloc(&c->arena, nc * sizeof *nn);
        jv *nv = ja_alloc(&c->arena, nc * sizeof *nv);
        if (f->n) {
            memcpy(nn, f->names, f->n * sizeof *nn);
            memcpy(nv, f->vals, f->n * sizeof *nv);
        }
        f->names = nn;
        f->vals = nv;
        f->cap = nc;
    }
    f->names[f->n] = name;
    f->vals[f->n++] = v;
}

static jv lookup(jctx *c, const char *name) {
    for (jframe *f = c->frame; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (!strcmp(f->names[i], name)) return f->vals[i];
    int fn = jb_global(name);
    if (fn >= 0) return (jv){.t = JV_FUNC, .u.fn = fn};
    return jv_undef(name);
}

/* ---- output ------------------------------------------------------------------------------- */

static void emit(jctx *c, const jnode *at, const char *s, size_t n) {
    c->out_total += n;
    if (c->out_total > c->lim.max_output_bytes)
        jfail(c, at, "output limit (%zu bytes) exceeded", c->lim.max_output_bytes);
    jb_put(c, c->out, s, n);
}

static void emit_val(jctx *c, const jnode *at, jv v) {
    if (v.t == JV_STR) {
        emit(c, at, v.u.s.p, v.u.s.n);
        return;
    }
    jbuf b = {0};
    jv_str_to(c, &b, v);
    emit(c, at, b.p, b.n);
}



static jv eval(jctx *c, const jnode *n);

static bool slice_arg(jctx *c, const jnode *n, int64_t *out) {
    if (!n) return false;
    jv v = eval(c, n);
    if (v.t == JV_NONE) return false;
    if (v.t == JV_INT) *out = v.u.i;
    else if (v.t == JV_BOOL) *out = v.u.b;
    else jfail(c, n, "slice indices must be integers or None, not %s", jv_type_name(v));
    return true;
}

static jv do_slice(jctx *c, const jnode *n) {
    jv obj = eval(c, n->a);
    int64_t start = 0, stop = 0, step = 1;
    bool hs = slice_arg(c, n->b, &start), he = slice_arg(c, n->c, &stop);
    slice_arg(c, n->d, &step);
    return je_slice(c, n, obj, hs, start, he, stop, step);
}

/* ---- calls -------------------------------------------------------------------------------- */

typedef struct {
    jv *pos;
    size_t npos;
    const char **kwn;
    jv *kwv;
    size_t nkw;
} jargs;

static jargs eval_args(jctx *c, const jnode *n) {
    jargs a = {0};
    a.npos = n->nargs;
    a.nkw = n->nkids - n->nargs;
    a.pos = ja_alloc(&c->arena, (n->nkids + 1) * sizeof(jv));
    a.kwv = a.pos + a.npos;
    a.kwn = n->nkids > n->nargs ? n->kwnames + n->nargs : NULL;
    for (size_t i = 0; i < n->nkids; i++) a.pos[i] = eval(c, n->kids[i]);
    return a;
}

static int exec(jctx *c, const jnode *n);

static jv capture(jctx *c, const jnode *body) {
    jbuf *saved = c->out, b = {0};
    c->out = &b;
    exec(c, body);
    c->out = saved;
    return jv_str_ref(b.p ? b.p : "", b.n);
}

jv je_call_macro(jctx *c, const jnode *at, jmacro *m, jv *args, size_t nargs, const char **kwn,
                 jv *kwv, size_t nkw, jv caller) {
    jstep(c, at);
    if (c->depth + 1 > c->lim.max_depth)
        jfail(c, at, "recursion limit (%d nested macro calls) exceeded", c->lim.max_depth);
    const jnode *def = m->def;
    jframe *f = frame_new(c, m->closure), *saved = c->frame;
    size_t np = def->nkids;
    bool *bound = ja_alloc(&c->arena, (np + 1) * sizeof *bound);
    for (size_t i = 0; i < nargs && i < np; i++) {
        frame_set(c, f, def->kids[i]->name, args[i]);
        bound[i] = true;
    }
    jv varargs = jv_list(c, nargs > np ? nargs - np : 0, true);
    for (size_t i = np; i < nargs; i++) varargs.u.l->v[i - np] = args[i];
    jv kwargs = jv_dict(c);
    for (size_t k = 0; k < nkw; k++) {
        size_t i = 0;
        while (i < np && strcmp(def->kids[i]->name, kwn[k])) i++;
        if (i < np) {
            if (bound[i]) jfail(c, at, "macro '%s' got multiple values for argument '%s'", m->name ? m->name : "caller", kwn[k]);
            frame_set(c, f, def->kids[i]->name, kwv[k]);
            bound[i] = true;
        } else {
            jd_set(c, kwargs.u.d, jv_str_ref(kwn[k], strlen(kwn[k])), kwv[k]);
        }
    }
    frame_set(c, f, "varargs", varargs);
    frame_set(c, f, "kwargs", kwargs);
    if (caller.t != JV_UNDEF) frame_set(c, f, "caller", caller);
    c->depth++;
    c->frame = f;
    for (size_t i = 0; i < np; i++)
        if (!bound[i])
            frame_set(c, f, def->kids[i]->name,
                      def->kids[i]->a ? eval(c, def->kids[i]->a) : jv_undef(def->kids[i]->name));
    jv out = capture(c, def->b);
    c->frame = saved;
    c->depth--;
    return out;
}

static jv call_value(jctx *c, const jnode *n, jv fn, jargs *a) {
    switch (fn.t) {
    case JV_MACRO: return je_call_macro(c, n, fn.u.m, a->pos, a->npos, a->kwn, a->kwv, a->nkw, jv_undef(NULL));
    case JV_FUNC: jstep(c, n); return jb_call_global(c, n, fn.u.fn, a->pos, a->npos, a->kwn, a->kwv, a->nkw);
    case JV_UNDEF: je_fail_undef(c, n, fn, "call");
    default: jfail(c, n, "'%s' object is not callable", jv_type_name(fn));
    }
}

static jv eval_call(jctx *c, const jnode *n) {
    const jnode *f = n->a;
    if (f->kind == N_ATTR) {
        jv obj = eval(c, f->a);
        if (obj.t == JV_UNDEF) je_fail_undef(c, f, obj, "method call");
        jargs a = eval_args(c, n);
        bool handled = false;
        jstep(c, n);
        jv r = jb_method(c, n, obj, f->name, a.pos, a.npos, a.kwn, a.kwv, a.nkw, &handled);
        if (handled) return r;
        jv fn = je_getattr(c, f, obj, f->name, f->n_name);
        if (fn.t == JV_UNDEF)
            jfail(c, n, "'%s' object has no method '%s'", jv_type_name(obj), f->name);
        return call_value(c, n, fn, &a);
    }
    jv fn = eval(c, f);
    jargs a = eval_args(c, n);
    return call_value(c, n, fn, &a);
}

static jv apply_filter(jctx *c, const jnode *f, jv v) {
    jargs a = eval_args(c, f);
    jstep(c, f);
    return jb_filter(c, f, f->name, v, a.pos, a.npos, a.kwn, a.kwv, a.nkw);
}

static jv apply_chain(jctx *c, const jnode *f, jv v) {
    if (f->a) v = apply_chain(c, f->a, v);
    return apply_filter(c, f, v);
}

/* ---- expressions -------------------------------------------------------------------------- */

/* Every eval/exec level counts against MAX_NEST, so macro recursion through deeply nested
 * statements and expressions cannot exhaust the C stack (each level is a few hundred bytes). */
#define MAX_NEST 6000

static jv eval_node(jctx *c, const jnode *n);
static jv eval(jctx *c, const jnode *n) {
    if (++c->nest > MAX_NEST) jfail(c, n, "nesting limit (%d levels of evaluation) exceeded", MAX_NEST);
    jv v = eval_node(c, n);
    c->nest--;
    return v;
}

static jv eval_node(jctx *c, const jnode *n) {
    switch (n->kind) {
    case N_LIT: return n->lit;
    case N_NAME: return lookup(c, n->name);
    case N_ATTR: return je_getattr(c, n, eval(c, n->a), n->name, n->n_name);
    case N_ITEM: {
        jv obj = eval(c, n->a);
        return je_getitem(c, n, obj, eval(c, n->b));
    }
    case N_SLICE: return do_slice(c, n);
    case N_CALL: return eval_call(c, n);
    case N_FILTER: return apply_filter(c, n, eval(c, n->a));
    case N_TEST: {
        jv v = eval(c, n->a);
        jargs a = eval_args(c, n);
        bool r = jb_test(c, n, n->name, v, a.pos, a.npos);
        return jv_bool(n->negate ? !r : r);
    }
    case N_UNARY: {
        jv v = eval(c, n->a);
        if (v.t == JV_UNDEF) je_fail_undef(c, n, v, "unary operator");
        if (!je_numeric(v)) jfail(c, n, "bad operand type for unary %s: '%s'", n->name, jv_type_name(v));
        if (n->name[0] == '+') return v.t == JV_BOOL ? jv_int(v.u.b) : v;
        if (v.t == JV_FLOAT) return jv_float(-v.u.f);
        if (je_inum(v) == INT64_MIN) jfail(c, n, "integer overflow in unary -");
        return jv_int(-je_inum(v));
    }
    case N_BINARY: {
        jv a = eval(c, n->a);
        return je_binop(c, n, n->name, a, eval(c, n->b));
    }
    case N_AND: {
        jv a = eval(c, n->a);
        return jv_truthy(a) ? eval(c, n->b) : a;
    }
    case N_OR: {
        jv a = eval(c, n->a);
        return jv_truthy(a) ? a : eval(c, n->b);
    }
    case N_NOT: return jv_bool(!jv_truthy(eval(c, n->a)));
    case N_COND:
        if (jv_truthy(eval(c, n->b))) return eval(c, n->a);
        return n->c ? eval(c, n->c) : jv_undef(NULL);
    case N_LIST:
    case N_TUPLE: {
        jv l = jv_list(c, n->nkids, n->kind == N_TUPLE);
        for (size_t i = 0; i < n->nkids; i++) l.u.l->v[i] = eval(c, n->kids[i]);
        return l;
    }
    case N_DICT: {
        jv d = jv_dict(c);
        for (size_t i = 0; i + 1 < n->nkids; i += 2) {
            jv k = eval(c, n->kids[i]);
            if (k.t == JV_LIST && !k.u.l->is_tuple) jfail(c, n->kids[i], "unhashable type: 'list'");
            if (k.t == JV_DICT || k.t == JV_NS) jfail(c, n->kids[i], "unhashable type: 'dict'");
            jd_set(c, d.u.d, k, eval(c, n->kids[i + 1]));
        }
        return d;
    }
    case N_COMPARE: {
        jv left = eval(c, n->a);
        for (size_t i = 0; i < n->nkids; i++) {
            jv right = eval(c, n->kids[i]);
            const char *op = n->ops[i];
            bool r;
            if (!strcmp(op, "==")) r = jv_eq(left, right);
            else if (!strcmp(op, "!=")) r = !jv_eq(left, right);
            else if (!strcmp(op, "in")) r = je_contains(c, n, right, left);
            else if (!strcmp(op, "notin")) r = !je_contains(c, n, right, left);
            else {
                if (left.t == JV_UNDEF) je_fail_undef(c, n, left, "comparison");
                if (right.t == JV_UNDEF) je_fail_undef(c, n, right, "comparison");
                int k = jv_cmp(c, n, left, right);
                r = op[0] == '<' ? (op[1] ? k <= 0 : k < 0) : (op[1] ? k >= 0 : k > 0);
            }
            if (!r) return jv_bool(false);
            left = right;
        }
        return jv_bool(true);
    }
    default: jfail(c, n, "internal: not an expression");
    }
}

/* ---- statements --------------------------------------------------------------------------- */

static void assign(jctx *c, const jnode *target, jv v) {
    if (target->kind == N_NAME) {
        frame_set(c, c->frame, target->name, v);
    } else if (target->kind == N_ATTR) {
        jv ns = eval(c, target->a);
        if (ns.t != JV_NS) jfail(c, target, "cannot assign attribute on a non-namespace object ('%s')", jv_type_name(ns));
        if (target->name[0] == '_') jfail(c, target, "namespace attributes cannot start with '_' ('%s')", target->name);
        jd_set(c, ns.u.d, jv_str_ref(target->name, target->n_name), v);
    } else { /* tuple unpacking */
        jlist *items = je_iter(c, target, v);
        if (items->n != target->nkids)
            jfail(c, target, "%s values to unpack (expected %zu, got %zu)",
                  items->n > target->nkids ? "too many" : "not enough", target->nkids, items->n);
        for (size_t i = 0; i < items->n; i++) assign(c, target->kids[i], items->v[i]);
    }
}

static int exec_for(jctx *c, const jnode *n) {
    jv it = eval(c, n->b);
    jlist *items = je_iter(c, n->b, it);
    jframe *outer = c->frame;
    if (n->nkids) { /* {% for x in xs if cond %}: filter first, loop.* counts what passes */
        jv kept = jv_list(c, items->n, false);
        size_t k = 0;
        for (size_t i = 0; i < items->n; i++) {
            jstep(c, n);
            c->frame = frame_new(c, outer);
            assign(c, n->a, items->v[i]);
            if (jv_truthy(eval(c, n->kids[0]))) kept.u.l->v[k++] = items->v[i];
        }
        c->frame = outer;
        kept.u.l->n = k;
        items = kept.u.l;
    }
    int depth = 1;
    jv prev_loop = lookup(c, "loop");
    if (prev_loop.t == JV_LOOP) depth = prev_loop.u.lp->depth + 1;
    jloop *lp = ja_alloc(&c->arena, sizeof *lp);
    lp->items = items;
    lp->depth = depth;
    for (size_t i = 0; i < items->n; i++) {
        jstep(c, n);
        lp->idx = i;
        c->frame = frame_new(c, outer);
        frame_set(c, c->frame, "loop", (jv){.t = JV_LOOP, .u.lp = lp});
        assign(c, n->a, items->v[i]);
        int r = exec(c, n->c);
        if (r == EX_BREAK) break;
    }
    c->frame = outer;
    if (items->n == 0 && n->d) {
        c->frame = frame_new(c, outer);
        exec(c, n->d);
        c->frame = outer;
    }
    return EX_NORMAL;
}

static int exec_node(jctx *c, const jnode *n);
static int exec(jctx *c, const jnode *n) {
    if (++c->nest > MAX_NEST) jfail(c, n, "nesting limit (%d levels of evaluation) exceeded", MAX_NEST);
    int r = exec_node(c, n);
    c->nest--;
    return r;
}

static int exec_node(jctx *c, const jnode *n) {
    switch (n->kind) {
    case N_BODY:
        for (size_t i = 0; i < n->nkids; i++) {
            int r = exec(c, n->kids[i]);
            if (r != EX_NORMAL) return r;
        }
        return EX_NORMAL;
    case N_TEXT: emit(c, n, n->lit.u.s.p, n->lit.u.s.n); return EX_NORMAL;
    case N_OUTPUT: emit_val(c, n, eval(c, n->a)); return EX_NORMAL;
    case N_IF:
        for (const jnode *b = n; b;) {
            if (b->kind != N_IF) return exec(c, b);
            if (jv_truthy(eval(c, b->a))) return exec(c, b->b);
            b = b->c;
        }
        return EX_NORMAL;
    case N_FOR: return exec_for(c, n);
    case N_SET: assign(c, n->a, eval(c, n->b)); return EX_NORMAL;
    case N_SET_BLOCK: {
        jv v = capture(c, n->b);
        if (n->c) v = apply_chain(c, n->c, v);
        assign(c, n->a, v);
        return EX_NORMAL;
    }
    case N_MACRO: {
        jmacro *m = ja_alloc(&c->arena, sizeof *m);
        m->def = n;
        m->closure = c->frame;
        m->name = n->name;
        frame_set(c, c->frame, n->name, (jv){.t = JV_MACRO, .u.m = m});
        return EX_NORMAL;
    }
    case N_CALL_BLOCK: {
        jmacro *m = ja_alloc(&c->arena, sizeof *m);
        m->def = n; /* params: n->kids, body: n->b */
        m->closure = c->frame;
        const jnode *call = n->a;
        jv fn = eval(c, call->a);
        if (fn.t != JV_MACRO) jfail(c, n, "'call' needs a macro, got '%s'", jv_type_name(fn));
        jargs a = eval_args(c, call);
        emit_val(c, n, je_call_macro(c, n, fn.u.m, a.pos, a.npos, a.kwn, a.kwv, a.nkw,
                                     (jv){.t = JV_MACRO, .u.m = m}));
        return EX_NORMAL;
    }
    case N_FILTER_BLOCK: emit_val(c, n, apply_chain(c, n->a, capture(c, n->b))); return EX_NORMAL;
    case N_BREAK: return EX_BREAK;
    case N_CONTINUE: return EX_CONTINUE;
    default: jfail(c, n, "internal: not a statement");
    }
}

/* ---- public API --------------------------------------------------------------------------- */

void lt_jinja_limits_default(lt_jinja_limits *lim) {
    lim->max_output_bytes = 16u << 20;
    lim->max_memory_bytes = 256u << 20;
    lim->max_steps = 10000000;
    lim->max_depth = 64;
}

lt_status lt_jinja_parse(lt_jinja_template **out, const char *name, const char *src, size_t len) {
    *out = NULL;
    lt_jinja_template *t = lt_xcalloc(1, sizeof *t);
    t->name = lt_xstrdup(name ? name : "(template)");
    jtok *toks;
    size_t ntok;
    char *err = NULL;
    int line = 0, col = 0;
    if (!jlex(&t->arena, src ? src : "", src ? len : 0, &toks, &ntok, &err, &line, &col) ||
        !jparse(&t->arena, toks, ntok, &t->root, &err, &line, &col)) {
        lt_status st = lt_error_set(LT_ERR_DATA, "template %s:%d:%d: syntax error: %s", t->name,
                                    line, col, err ? err : "?");
        lt_jinja_free(t);
        return st;
    }
    *out = t;
    return LT_OK;
}

void lt_jinja_free(lt_jinja_template *t) {
    if (!t) return;
    ja_free_all(&t->arena);
    free(t->name);
    free(t);
}

const char *lt_jinja_name(const lt_jinja_template *t) { return t->name; }

lt_status lt_jinja_render(char **out, size_t *out_len, const lt_jinja_template *t,
                          const json_t *vars, const lt_jinja_limits *lim) {
    *out = NULL;
    if (out_len) *out_len = 0;
    jctx *c = lt_xcalloc(1, sizeof *c);
    lt_jinja_limits_default(&c->lim);
    if (lim) {
        if (lim->max_output_bytes) c->lim.max_output_bytes = lim->max_output_bytes;
        if (lim->max_memory_bytes) c->lim.max_memory_bytes = lim->max_memory_bytes;
        if (lim->max_steps) c->lim.max_steps = lim->max_steps;
        if (lim->max_depth) c->lim.max_depth = lim->max_depth;
    }
    c->tname = t->name;
    c->arena.limit = c->lim.max_memory_bytes;
    c->arena.on_limit = on_arena_limit;
    c->arena.ud = c;
    c->now = time(NULL);
    lt_status st = LT_OK;
    if (setjmp(c->jmp)) {
        st = c->err ? c->err : LT_ERR_DATA;
        ja_free_all(&c->arena);
        free(c);
        return st;
    }
    jbuf b = {0};
    c->out = &b;
    c->globals = frame_new(c, NULL);
    if (vars && json_is_object(vars)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)vars, k, x) { frame_set(c, c->globals, k, jv_from_json(c, x, 0)); }
    }
    c->frame = frame_new(c, c->globals);
    exec(c, t->root);
    char *s = malloc(b.n + 1);
    if (!s) {
        ja_free_all(&c->arena);
        free(c);
        return lt_error_set(LT_ERR_OOM, "template %s: out of memory for the output", t->name);
    }
    if (b.n) memcpy(s, b.p, b.n);
    s[b.n] = 0;
    *out = s;
    if (out_len) *out_len = b.n;
    ja_free_all(&c->arena);
    free(c);
    return st;
}

lt_status lt_jinja_render_source(char **out, size_t *out_len, const char *name, const char *src,
                                 const json_t *vars, const lt_jinja_limits *lim) {
    lt_jinja_template *t;
    lt_status st = lt_jinja_parse(&t, name, src, src ? strlen(src) : 0);
    if (st != LT_OK) {
        *out = NULL;
        return st;
    }
    st = lt_jinja_render(out, out_len, t, vars, lim);
    lt_jinja_free(t);
    return st;
}
