/*
 * recipe internals shared by recipe.c (key table, values, overrides), recipe_check.c
 * (queries, validation), recipe_load.c (YAML files) and recipe_print.c (resolved copy, docs).
 * Not for other modules: they include recipe.h only.
 *
 * A value reaches a key as an rv_value: a scalar, a sequence of scalars (or of flat mappings of
 * scalars, for data.train / data.eval entries) or a mapping (always an error), with 1-based line:column marks when it came from a file. rv_ctx says where it came
 * from, so every message starts with "file:line:col" or "--set assignment".
 */
#ifndef LATHE_RECIPE_IMPL_H
#define LATHE_RECIPE_IMPL_H

#include <stddef.h>

#include "recipe/recipe.h"

typedef enum {
    RK_STRING,    /* char * */
    RK_PATH,      /* char *, resolved to an absolute path */
    RK_INT,       /* int64_t */
    RK_FLOAT,     /* double */
    RK_BOOL,      /* bool */
    RK_ENUM,      /* int-sized enum, index into choices */
    RK_LIST,      /* lt_recipe_list, items checked against choices when given */
    RK_PATHLIST,  /* lt_recipe_list of glob patterns, each resolved like RK_PATH */
    RK_FLOATPAIR, /* alias writing two RK_FLOAT keys (pair[0], pair[1]) */
} rk_type;

enum {
    RF_REQUIRED = 1u << 0, /* no default: must be set (checked by lt_recipe_validate) */
    RF_MIN = 1u << 1,      /* value >= min (or > min with RF_MIN_EXCL) */
    RF_MIN_EXCL = 1u << 2,
    RF_MAX = 1u << 3, /* value <= max (or < max with RF_MAX_EXCL) */
    RF_MAX_EXCL = 1u << 4,
    RF_ALIAS = 1u << 5, /* a synonym: no default, not written in the resolved copy */
};

typedef struct {
    const char *name; /* "section.key" */
    rk_type type;
    size_t off;       /* offset of the field in lt_recipe */
    const char *def;  /* default as YAML text (parsed by the same code as a file); NULL = none */
    unsigned flags;
    double min, max;
    const char *const *choices; /* NULL-terminated: enum values, or allowed list items */
    const char *help;           /* one or two sentences for docs and the resolved copy */
    const char *pair[2];        /* RK_FLOATPAIR: the two keys it writes */
} rk_key;

extern const rk_key lt_recipe_keys[LT_RECIPE_NKEYS];
/* quantization.type's choices, in lt_quant_type order (NULL-terminated). */
extern const char *const lt_recipe_quant_types[];

typedef struct rv_scalar {
    const char *text; /* NUL-terminated ("" for a mapping item) */
    bool null;        /* YAML null: empty plain scalar, ~, null */
    int line, col;    /* 1-based; 0 when not from a file */
    /* a sequence item written as a mapping of scalars (data.train's {path: ..., weight: ...}):
     * n_kv pairs, key kv[2i] and value kv[2i + 1]; NULL / 0 otherwise */
    struct rv_scalar *kv;
    int n_kv;
} rv_scalar;

typedef enum { RV_SCALAR, RV_SEQ, RV_MAP } rv_kind;

typedef struct {
    rv_kind kind;
    rv_scalar s;      /* RV_SCALAR; for others only line/col are meaningful */
    rv_scalar *items; /* RV_SEQ: n scalars or flat mappings (others are rejected before this) */
    int n;
} rv_value;

typedef struct {
    const char *file;     /* recipe file, or NULL */
    const char *set;      /* the --set assignment, or NULL */
    const char *base_dir; /* absolute directory relative paths are resolved against */
} rv_ctx;

/* A parsed value, ready to store. Owns s / list. */
typedef struct {
    int64_t i;
    double d;
    bool b;
    int e;
    char *s;
    lt_recipe_list list;
    double pair[2];
} rv_parsed;

/* Free a value's items array (and their mapping pairs; not the texts, which point into a YAML
 * document or are freed by lt_recipe__value_free) and zero n. */
void lt_recipe__items_free(rv_value *v);

/* Index of "section.key" (section given by pointer + length) in the table, or -1. */
int lt_recipe__find(const char *section, size_t seclen, const char *key);
/* Index of the full name "section.key" (or "section.sub.key"), or -1. */
int lt_recipe__find_full(const char *name);
/* Record "<where>: <message>" as an LT_ERR_RECIPE error; where is file:line:col or --set. */
lt_status lt_recipe__fail(const rv_ctx *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* " did you mean 'x'?" hint text for an unknown section / key (empty string if none). */
void lt_recipe__suggest_key(const char *section, const char *key, char *out, size_t n);
void lt_recipe__suggest_section(const char *section, char *out, size_t n);
/* Parse `v` for key k into `out` (range and choice checks included). */
lt_status lt_recipe__parse(const rk_key *k, const rv_value *v, const rv_ctx *c, rv_parsed *out);
/* Store a parsed value (taking ownership) and set the key's origin / position. */
void lt_recipe__commit(lt_recipe *r, int idx, rv_parsed *p, lt_recipe_origin origin, int line,
                       int col);
void lt_recipe__parsed_free(rv_parsed *p);
/* Shortest "%.*g" text of x that strtod reads back exactly. */
void lt_recipe__fmt_double(double x, char *buf, size_t n);
/* "> 0", ">= 0 and < 1", "" for the key's range. */
void lt_recipe__range_text(const rk_key *k, char *buf, size_t n);

#endif
