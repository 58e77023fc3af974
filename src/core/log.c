/* Leveled logging to stderr. Progress lines are the train loop's business, not this file's. */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>

static lt_log_level min_level = LT_LOG_INFO;

void lt_log_set_level(lt_log_level level) { min_level = level; }

void lt_log(lt_log_level level, const char *fmt, ...) {
    if (level < min_level) return;
    static const char *tag[] = {"debug: ", "", "warning: ", "error: "};
    fprintf(stderr, "%s", tag[level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
