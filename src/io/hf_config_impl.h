/* io-private: what hf_config.c and hf_config_keys.c share. Not part of the module's interface. */
#ifndef LATHE_HF_CONFIG_IMPL_H
#define LATHE_HF_CONFIG_IMPL_H

#include <jansson.h>

#include "../model/model.h"

/* Refuse the keys of `root` (config.json at `path`) that would change the function of the
 * parsed config c and were not applied (LT_ERR_MODEL naming the key and what it means); warn, in
 * one line naming them, about keys lathe neither reads nor knows to be inert. */
lt_status lt_hf__audit_keys(const char *path, json_t *root, const lt_model_config *c);

#endif
