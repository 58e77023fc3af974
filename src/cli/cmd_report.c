/* `lathe report RUN_DIR... [--out FILE]`: one self-contained HTML page (report/report.h). */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "report/report.h"

static const char usage_text[] =
    "usage: lathe report RUN_DIR [RUN_DIR ...] [--out FILE]\n"
    "\n"
    "Write one self-contained HTML file about the runs (no scripts, no network, no external\n"
    "fonts: it opens on an air-gapped machine): SVG charts of train loss, eval loss, learning\n"
    "rate, gradient norm and tokens/s against step with the runs overlaid, and a table of each\n"
    "run's manifest (status, base model and its SHA-256, shards, steps, eval losses, the gate's\n"
    "baseline, candidate and decision, the published version, parent and own adapter\n"
    "checksums). `lathe train` writes RUN_DIR/report.html for its own run at the end.\n"
    "\n"
    "  --out FILE    output file (default report.html)\n"
    "\n"
    "Exit codes: 0 done, 1 cannot write, 2 bad usage, 3 a run directory lacks its manifest or\n"
    "metrics.\n";

int lt_cmd_report(int argc, char **argv) {
    static const struct option longopts[] = {
        {"out", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = "report.html";
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        if (c == 'o') {
            out = optarg;
        } else if (c == 'h') {
            fputs(usage_text, stdout);
            return 0;
        } else {
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "lathe report: expected a run directory\n%s", usage_text);
        return 2;
    }
    lt_status st = lt_report_write((const char *const *)argv + optind, (size_t)(argc - optind),
                                   out);
    if (st) return lt_cli_fail(st);
    printf("report      %s (%d run%s)\n", out, argc - optind, argc - optind == 1 ? "" : "s");
    return 0;
}
