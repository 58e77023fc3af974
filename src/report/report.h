/*
 * report — one self-contained HTML page about one or more training runs (issue 11): SVG line
 * charts of train loss, eval loss, learning rate, gradient norm and tokens/s against the
 * optimizer step with the runs overlaid (a week of nightly runs side by side), and a table of
 * each run's manifest facts (status, base model and data checksums, steps, eval losses, the
 * gate's figures and decision, the published version, the parent adapter). No scripts, no
 * network, no external fonts or images: it opens on an air-gapped machine.
 */
#ifndef LATHE_REPORT_H
#define LATHE_REPORT_H

#include <stddef.h>

#include "core/core.h"

/* Write the report of the run directories runs[0..n) (each holding manifest.json and
 * metrics.jsonl, as `lathe train` writes them) to `out_path` atomically. Runs are shown in the
 * order given. Errors: LT_ERR_USAGE when n is 0; LT_ERR_DATA naming the run directory and file
 * when a manifest is missing or not JSON, or metrics.jsonl is unreadable (a malformed line is
 * skipped with a warning naming file:line); LT_ERR_IO when the output cannot be written. */
lt_status lt_report_write(const char *const *runs, size_t n, const char *out_path);

#endif
