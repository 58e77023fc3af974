/*
 * fuzz_jinja.c — libFuzzer harness for the chat-template interpreter (src/jinja/): the input is
 * a template source; it is parsed and, when it parses, rendered against a fixed conversation
 * with small limits. Any crash, sanitizer report, leak or abort is a bug: every input must end
 * in LT_OK or an lt_status error. Build and run: `make fuzz` (tools/fuzz.sh; clang
 * with -fsanitize=fuzzer,address,undefined).
 */
#include <stdint.h>
#include <stdlib.h>

#include "jinja/jinja.h"

static const char VARS[] =
    "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true,"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"a\": 1.5}}}],"
    " \"messages\": [{\"role\": \"system\", \"content\": \"sys\"},"
    " {\"role\": \"user\", \"content\": \"hi \\u00e9 <x>\"},"
    " {\"role\": \"assistant\", \"content\": \"yo\", \"tool_calls\": [{\"function\": {\"name\": \"f\","
    " \"arguments\": {\"a\": [1, null, true]}}}]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_t *vars;
    if (!vars) vars = json_loads(VARS, 0, NULL);
    lt_jinja_template *t;
    if (lt_jinja_parse(&t, "fuzz", (const char *)data, size) != LT_OK) return 0;
    lt_jinja_limits lim = {.max_output_bytes = 1 << 20, .max_memory_bytes = 64u << 20,
                           .max_steps = 200000, .max_depth = 32};
    char *out = NULL;
    size_t n = 0;
    if (lt_jinja_render(&out, &n, t, vars, &lim) == LT_OK) free(out);
    lt_jinja_free(t);
    return 0;
}
