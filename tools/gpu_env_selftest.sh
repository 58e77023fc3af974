#!/usr/bin/env bash
# gpu_env_selftest.sh BUNDLE — part of `make gpu-bundle-check`: gpu_env.sh finds the CUDA libraries
# the way a GPU server without a CUDA toolkit holds them, in torch's pip wheels (CUDA 13 layout:
# site-packages/nvidia/cu13/lib; NCCL in nvidia/nccl/lib). Builds such a tree of links to this
# machine's libraries, hides the toolkits, and checks that the locator picks the wheel directory
# and that the bundled lathe then loads its libraries from there (ldd).
set -euo pipefail
BUNDLE=$(cd "$1" && pwd)
source "$BUNDLE/gpu_env.sh"
lt_gpu_env_find "$BUNDLE/needed-libs.txt" || { echo "gpu_env_selftest: libraries not found here" >&2; exit 1; }
FAKE=$(mktemp -d "${TMPDIR:-/tmp}/gpu-env-selftest.XXXXXX")
trap 'rm -rf "$FAKE"' EXIT
mkdir -p "$FAKE/site/nvidia/cu13/lib"
while IFS=$'\t' read -r so path _; do
    [ -n "$so" ] && ln -s "$(readlink -f "$path")" "$FAKE/site/nvidia/cu13/lib/$so"
done <<< "$LT_GPU_LIBS_FOUND"
out=$(env -u CUDA_HOME -u CUDA_PATH -u LATHE_CUDA_LIBDIRS -u LD_LIBRARY_PATH PYTHONPATH="$FAKE/site" \
      bash -c 'source "$1/gpu_env.sh"; lt_gpu_env_toolkits() { :; }
               lt_gpu_env_find "$1/needed-libs.txt" || exit 1
               printf "%s" "$LT_GPU_LIBS_FOUND"; ldd "$1/bin/lathe"' _ "$BUNDLE")
want=$FAKE/site/nvidia/cu13/lib
while read -r so; do
    grep -q "^$so	$want/$so	python$" <<< "$out" ||
        { echo "gpu_env_selftest: $so not located in the wheel layout:"$'\n'"$out" >&2; exit 1; }
    grep -q "$so => $want/$so" <<< "$out" ||
        { echo "gpu_env_selftest: lathe does not load $so from the wheel directory:"$'\n'"$out" >&2; exit 1; }
done < "$BUNDLE/needed-libs.txt"
echo "gpu_env_selftest: $(tr '\n' ' ' < "$BUNDLE/needed-libs.txt")found in a pip-wheel layout (nvidia/cu13/lib) and loaded from there"
