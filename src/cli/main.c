/* lathe — command-line entry point: dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

int main(int argc, char **argv) {
    (void)argc; (void)argv;
    puts("lathe");
    return 0;
}
