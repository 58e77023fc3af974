/*
 * jinja_impl.h — internals shared by the jinja module's files (never included outside
 * src/jinja/): tokens, the AST, values, the arena and the render context.
 *
 * Invariants: every AST node and token lives in the template's arena (freed with the template);
 * every value created during a render lives in the render's arena (freed when it ends), so a
 * runtime error can longjmp out of any depth without leaking. Strings are byte ranges (UTF-8, not
 * NUL-terminated); lists/tuples and dicts are arrays, never mutated once built, except namespaces.
 */
#ifndef LATHE_JINJA_IMPL_H
#define LATHE_JINJA_IMPL_H

#include <setjmp.h>

#include "jinja.h"

/* ---- arena -------------------------------------------------------------------------------- */

typedef struct jarena_block jarena_block;
typedef struct {
    jarena_block *head;
    size_t used, limit; /* bytes handed out (incl. block slack); limit 0 = none */
    void (*on_limit)(void *ud);
    void *ud;
} jarena;

void *ja_alloc(jarena *a, size_t n); /* zeroed, 16-aligned; on_limit (no return) when over */
char *ja_strndup(jarena *a, const char *s, size_t n);
void ja_free_all(jarena *a);

/* ---- tokens ------------------------------------------------------------------------------- */

typedef enum {
    TK_EOF = 0,
    TK_TEXT,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP,
} jtok_kind;

typedef struct {
    jtok_kind kind;
    int line, col;
    const char *s; /* text / name / unescaped string / operator (NUL-terminated, arena) */
    size_t n;
    int64_t i;
    double f;
} jtok;

/* Tokenize; false and *err set (arena string, with line/col) on a lexical error. */
bool jlex(jarena *a, const char *src, size_t len, jtok **toks, size_t *ntok, char **err,
          int *eline, int *ecol);

/* ---- values ------------------------------------------------------------------------------- */

typedef enum {
    JV_UNDEF = 0,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* list or tuple (is_tuple) */
    JV_DICT,
    JV_NS,    /* namespace(): a mutable dict */
    JV_MACRO, /* a macro (or a call block's caller) */
    JV_FUNC,  /* a global function */
    JV_LOOP,  /* a for loop's `loop` */
} jv_type;

struct jlist;
struct jdict;
struct jmacro;
struct jloop;

typedef struct {
    jv_type t;
    bool safe; /* JV_STR: a Markup string (from |safe / |escape): `+` escapes the other side */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        struct jlist *l;
        struct jdict *d;
        struct jmacro *m;
        struct jloop *lp;
        int fn;
        const char *uname; /* JV_UNDEF: the name that was missing (may be NULL) */
    } u;
} jv;

typedef struct jlist {
    size_t n;
    bool is_tuple;
    bool is_gen; /* a generator (map/select/reject/unique/items results, reversed lists): always
                  * true, no len(), not subscriptable, not JSON-serializable, as in Python */
    jv *v;
} jlist;

typedef struct jdict {
    size_t n, cap;
    jv *k, *v;
} jdict;

struct jnode;
struct jframe;
typedef struct jmacro {
    const struct jnode *def; /* N_MACRO (or the body of a call block) */
    struct jframe *closure;
    const char *name;
} jmacro;

typedef struct jloop {
    jlist *items;
    size_t idx;
    int depth;
} jloop;

/* ---- AST ---------------------------------------------------------------------------------- */

typedef enum {
    /* statements */
    N_TEXT,
    N_OUTPUT,
    N_IF,
    N_FOR,
    N_SET,
    N_SET_BLOCK,
    N_MACRO,
    N_CALL_BLOCK,
    N_FILTER_BLOCK,
    N_BREAK,
    N_CONTINUE,
    N_BODY, /* a list of statements (also {% generation %}) */
    /* expressions */
    N_LIT,
    N_NAME,
    N_ATTR,
    N_ITEM,
    N_SLICE,
    N_CALL,
    N_FILTER,
    N_TEST,
    N_UNARY,
    N_BINARY,
    N_AND,
    N_OR,
    N_NOT,
    N_COND,
    N_LIST,
    N_TUPLE,
    N_DICT,
    N_COMPARE,
} jnode_kind;

typedef struct jnode {
    jnode_kind kind;
    int line, col;
    int h; /* height of the expression tree under this node (parser.c bounds it) */
    const char *name; /* N_NAME/N_ATTR/N_FILTER/N_TEST/N_MACRO/N_UNARY op/N_BINARY op/N_COMPARE ops */
    size_t n_name;
    jv lit;               /* N_LIT, N_TEXT (string) */
    struct jnode *a, *b, *c, *d; /* operands / children (meaning per kind, parser.c) */
    struct jnode **kids;  /* args, list items, statements, dict keys+values interleaved */
    size_t nkids;
    const char **kwnames; /* N_CALL/N_FILTER/N_TEST/N_MACRO: keyword names of kids[nargs..] */
    size_t nargs;         /* positional count in kids (the rest are keyword) */
    bool negate;          /* N_TEST: `is not` */
    const char **ops;     /* N_COMPARE: operator per kids[1..] */
} jnode;

/* Parse tokens into the statement list of the template; false + *err (arena) on error. */
bool jparse(jarena *a, const jtok *toks, size_t ntok, jnode **root, char **err, int *eline,
            int *ecol);

/* ---- render context ----------------------------------------------------------------------- */

typedef struct jframe {
    struct jframe *parent;
    size_t n, cap;
    const char **names;
    jv *vals;
} jframe;

typedef struct {
    char *p;
    size_t n, cap;
} jbuf;

typedef struct jctx {
    jarena arena;
    const char *tname;
    lt_jinja_limits lim;
    uint64_t steps;
    size_t out_total;
    int depth;
    int nest; /* eval/exec recursion depth (eval.c MAX_NEST) */
    jbuf *out;
    jframe *globals;
    jframe *frame; /* the current scope */
    jmp_buf jmp;
    lt_status err;
    time_t now;
} jctx;

/* Raise a runtime error at node n (NULL: no position): formats, records with lt_error_set and
 * longjmps to the render's exit. */
_Noreturn void jfail(jctx *c, const jnode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void jstep(jctx *c, const jnode *n); /* count one step; fails past max_steps */

/* value constructors and helpers (value.c) */
jv jv_undef(const char *name);
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(jctx *c, const char *p, size_t n); /* copies */
jv jv_str_ref(const char *p, size_t n);       /* no copy: p must outlive the render */
jv jv_list(jctx *c, size_t n, bool tuple);    /* n items, all undefined */
jv jv_dict(jctx *c);
void jd_set(jctx *c, jdict *d, jv k, jv v); /* replace or append */
jv *jd_get(const jdict *d, jv k);           /* NULL when absent */
jv *jd_get_str(const jdict *d, const char *k, size_t n);
bool jv_truthy(jv v);
bool jv_eq(jv a, jv b);
const char *jv_type_name(jv v);
/* Python str(v) appended to b; repr() for jv_repr. */
void jv_str_to(jctx *c, jbuf *b, jv v);
void jv_repr_to(jctx *c, jbuf *b, jv v);
jv jv_to_str(jctx *c, jv v); /* str(v) as a string value */
jv jv_html_escape(jctx *c, jv s); /* markupsafe.escape of a string: a safe string */
/* json.dumps(v, ensure_ascii, indent (<0: None; indent_str overrides when non-NULL),
 * separators (NULL: default), sort_keys); false when v holds something JSON cannot encode. */
bool jv_json_to(jctx *c, jbuf *b, jv v, bool ensure_ascii, int indent, const char *indent_str,
                const char *item_sep, const char *key_sep, bool sort_keys, int level);
jv jv_from_json(jctx *c, const json_t *j, int depth);
void jb_put(jctx *c, jbuf *b, const char *s, size_t n);
void jb_putc(jctx *c, jbuf *b, char ch);
void jb_puts(jctx *c, jbuf *b, const char *s);
void jv_float_repr(char *buf, size_t cap, double f);
/* UTF-8 code point count of s, and byte offset of code point index i (clamped to n). */
size_t ju_len(const char *s, size_t n);
size_t ju_off(const char *s, size_t n, size_t i);
/* Python whitespace (str.isspace) at s[0..n): its byte length, 0 when not whitespace. */
size_t ju_space_at(const char *s, size_t n);
size_t ju_space_before(const char *s, size_t n); /* same for the code point ending at s[n] */
int jv_cmp(jctx *c, const jnode *at, jv a, jv b); /* <, ==, > as -1/0/1; type error fails */

/* filters.c, methods.c */
/* Argument `pos` or keyword `name` of a call (positional args[0, nargs), keywords kwn/kwv[0,
 * nkw)), NULL when absent. JB_ARG reads it from the builtins' usual parameter names. */
jv *jb_arg(jv *args, size_t nargs, const char **kwn, jv *kwv, size_t nkw, size_t pos,
           const char *name);
#define JB_ARG(pos, name) jb_arg(args, nargs, kwn, kwv, nkw, (pos), (name))
/* Python str methods shared by filters and methods (ASCII case mapping): map mode 0 lower,
 * 1 upper, 2 capitalize; strip which 1 left, 2 right, 3 both, chars NULL = whitespace;
 * replace at most count (< 0: all) occurrences. Results live in c's arena. */
jv jstr_map(jctx *c, jv s, int mode);
jv jstr_strip(jctx *c, const jnode *at, jv s, const jv *chars, int which);
jv jstr_replace(jctx *c, jv s, jv old, jv new_, int64_t count);
jv jb_filter(jctx *c, const jnode *n, const char *name, jv v, jv *args, size_t nargs,
             const char **kwn, jv *kwv, size_t nkw);
bool jb_test(jctx *c, const jnode *n, const char *name, jv v, jv *args, size_t nargs);
bool jb_has_test(const char *name);
/* A method call obj.name(args); *handled false when obj has no such method. */
jv jb_method(jctx *c, const jnode *n, jv obj, const char *name, jv *args, size_t nargs,
             const char **kwn, jv *kwv, size_t nkw, bool *handled);
/* Global function by name: its id (>= 0) or -1. */
int jb_global(const char *name);
jv jb_call_global(jctx *c, const jnode *n, int fn, jv *args, size_t nargs, const char **kwn,
                  jv *kwv, size_t nkw);
const char *jb_global_name(int fn);
/* Call a macro value (eval.c), returning its output as a string. */
jv je_call_macro(jctx *c, const jnode *at, jmacro *m, jv *args, size_t nargs, const char **kwn,
                 jv *kwv, size_t nkw, jv caller);
/* ops.c — operations on values; each fails with jfail naming node `at` / `n`. */
/* Attribute / item access: attr for `x.name`, item for `x[k]`. */
jv je_getattr(jctx *c, const jnode *at, jv obj, const char *name, size_t n);
jv je_getitem(jctx *c, const jnode *at, jv obj, jv key);
/* Iterate: a list of the items of v (list/tuple/str chars/dict keys/undefined empty); fails
 * for others. */
jlist *je_iter(jctx *c, const jnode *at, jv v);
/* An undefined value v used for `what` ("call", "comparison", ...): jinja2's UndefinedError. */
_Noreturn void je_fail_undef(jctx *c, const jnode *at, jv v, const char *what);
/* `needle in hay` for strings (substring), lists, tuples and dicts (keys); undefined: false. */
bool je_contains(jctx *c, const jnode *at, jv hay, jv needle);
/* obj[start:stop:step] on a list, tuple or string, Python's rules; hs / he: start / stop given. */
jv je_slice(jctx *c, const jnode *n, jv obj, bool hs, int64_t start, bool he, int64_t stop,
            int64_t step);
/* Binary operator op (+ - * / // % ** ~) with Python's int/float semantics, overflow checked. */
jv je_binop(jctx *c, const jnode *n, const char *op, jv a, jv b);
bool je_numeric(jv v);  /* int, float or bool */
int64_t je_inum(jv v);  /* an int or bool as int64; 0 for anything else */

#endif
