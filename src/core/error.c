/* Thread-local error messages, status → exit code mapping, assertion failure. */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LT_ERRMSG_MAX 2048
static _Thread_local char errmsg[LT_ERRMSG_MAX];

lt_status lt_error_set(lt_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return st;
}

lt_status lt_error_wrap(lt_status st, const char *fmt, ...) {
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    if (n < 0) return st;
    size_t plen = strlen(prefix);
    memcpy(prefix + plen, ": ", 3);
    plen += 2;
    size_t old = strnlen(errmsg, sizeof errmsg - 1);
    if (old + plen >= sizeof errmsg) old = sizeof errmsg - 1 - plen;
    memmove(errmsg + plen, errmsg, old);
    memcpy(errmsg, prefix, plen);
    errmsg[plen + old] = 0;
    return st;
}

const char *lt_error_message(void) { return errmsg; }

int lt_status_exit_code(lt_status st) {
    switch (st) {
    case LT_OK: return 0;
    case LT_ERR_USAGE:
    case LT_ERR_RECIPE: return 2;
    case LT_ERR_MODEL:
    case LT_ERR_DATA: return 3;
    case LT_ERR_INTERRUPTED: return 130;
    case LT_ERR_GATE: return 4;
    case LT_ERR_IO:
    case LT_ERR_OOM:
    case LT_ERR_RUNTIME: return 1;
    }
    return 1;
}

void lt_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "lathe: internal error: assertion `%s` failed at %s:%d\n", expr, file, line);
    abort();
}
