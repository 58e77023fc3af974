/* libFuzzer: a Hugging Face config.json through lt_hf_config_parse (every architecture's keys,
 * rope_scaling / rope_parameters, token ids, dtypes). */
#include "fuzz.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fz_write(path, sizeof path, "config.json", data, size, 0);
    lt_model_config c;
    (void)lt_hf_config_parse(&c, path);
    return 0;
}
