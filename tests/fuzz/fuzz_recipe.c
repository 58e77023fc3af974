/* libFuzzer: a YAML recipe through lt_recipe_load and lt_recipe_validate; then every input line of
 * the form "--set KEY=VALUE" (or any line containing '=') applied as a --set override onto the
 * defaults, then validation, and the resolved recipe written out and loaded back. */
#include "fuzz.h"
#include "recipe/recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128], out[160];
    fz_write(path, sizeof path, "recipe.yaml", data, size, 0);
    lt_recipe r;
    if (lt_recipe_load(&r, path) == LT_OK) (void)lt_recipe_validate(&r);
    lt_recipe_free(&r);

    /* --set values: each line holding '=' (NUL-free, at most 512 bytes) as one assignment */
    lt_recipe_defaults(&r);
    bool any = false;
    for (size_t i = 0; i < size;) {
        size_t j = i;
        while (j < size && data[j] != '\n') j++;
        size_t len = j - i;
        if (len && len <= 512 && memchr(data + i, '=', len) && !memchr(data + i, 0, len)) {
            char line[513];
            memcpy(line, data + i, len);
            line[len] = 0;
            const char *a = strncmp(line, "--set ", 6) ? line : line + 6;
            any |= lt_recipe_set(&r, a) == LT_OK;
        }
        i = j + 1;
    }
    if (any && lt_recipe_validate(&r) == LT_OK) {
        snprintf(out, sizeof out, "%s/resolved.yaml", fz_dir());
        if (lt_recipe_write(&r, out) == LT_OK) {
            lt_recipe back;
            (void)lt_recipe_load(&back, out);
            lt_recipe_free(&back);
        }
    }
    lt_recipe_free(&r);
    return 0;
}
