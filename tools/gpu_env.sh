# gpu_env.sh — sourced (bash) by tools/gpu_check.sh and tools/gpu_bundle.sh: find the CUDA shared
# libraries a gpu-bundle's binaries need and put their directories on LD_LIBRARY_PATH.
#
# The bundle's binaries link everything statically except glibc and the CUDA libraries (DESIGN.md
# §9); the bundle lists the CUDA sonames they need in BUNDLE/needed-libs.txt (one per line, e.g.
# libcublasLt.so.13). A GPU server has them in a CUDA toolkit or in the pip wheels torch brings:
# CUDA 13 wheels put cuBLAS, cuBLASLt and the runtime in site-packages/nvidia/cu13/lib, cuDNN in
# nvidia/cudnn/lib, NCCL in nvidia/nccl/lib (CUDA 12 wheels: nvidia/<name>/lib, e.g.
# nvidia/cublas/lib). Search order, first match per soname wins:
#   1. $LATHE_CUDA_LIBDIRS (colon-separated; an explicit choice),
#   2. CUDA toolkits: $CUDA_HOME, $CUDA_PATH, the one holding `nvcc` on PATH, /usr/local/cuda,
#      /usr/local/cuda-* (newest first); their lib64, lib and targets/x86_64-linux/lib,
#   3. python3's packages: every <nvidia namespace dir>/*/lib (cu13, cublas, cudnn, nccl, ...)
#      and torch/lib, located with importlib (nothing is imported),
#   4. the system's loader cache (ldconfig -p): found there, no LD_LIBRARY_PATH entry is needed.
#
# lt_gpu_env_find NEEDED_FILE
#   sets  LT_GPU_LIBS_FOUND    lines "soname<TAB>path<TAB>origin" (origin: override, toolkit,
#                              python, system)
#         LT_GPU_LIBS_MISSING  space-separated sonames found nowhere
#         LT_GPU_LIBDIRS       the directories added, colon-separated, in order
#         LT_GPU_SEARCHED      every directory searched, colon-separated
#   and prepends LT_GPU_LIBDIRS to LD_LIBRARY_PATH (exported). Returns 1 when a soname is missing.
# lt_gpu_env_driver        prints the path of libcuda.so.1 (the driver) from the loader cache or
#                          the usual driver directories, or nothing.
# lt_gpu_env_sanitizer     prints the path of compute-sanitizer (PATH, then the toolkits), or
#                          nothing.

lt_gpu_env_toolkits() { # toolkit roots, most specific first, existing ones only
    local roots=() d nv
    [ -n "${CUDA_HOME:-}" ] && roots+=("$CUDA_HOME")
    [ -n "${CUDA_PATH:-}" ] && roots+=("$CUDA_PATH")
    nv=$(command -v nvcc 2>/dev/null) && roots+=("$(dirname "$(dirname "$nv")")")
    roots+=(/usr/local/cuda)
    for d in $(ls -d /usr/local/cuda-* 2>/dev/null | sort -rV); do roots+=("$d"); done
    for d in "${roots[@]}"; do [ -d "$d" ] && echo "$d"; done | awk '!seen[$0]++'
}

lt_gpu_env_python_dirs() { # lib directories of python3's nvidia wheels and torch, one per line
    command -v python3 >/dev/null 2>&1 || return 0
    timeout 60 python3 - <<'PY' 2>/dev/null
import glob, importlib.util, os
dirs = []
try:
    spec = importlib.util.find_spec("nvidia")
    roots = list(spec.submodule_search_locations or []) if spec else []
except Exception:
    roots = []
for r in roots:
    for pat in ("cu13/lib", "cu12/lib", "*/lib", "*/lib64"):
        dirs += sorted(glob.glob(os.path.join(r, pat)))
try:
    spec = importlib.util.find_spec("torch")
    if spec and spec.origin:
        dirs.append(os.path.join(os.path.dirname(spec.origin), "lib"))
except Exception:
    pass
seen = set()
for d in dirs:
    if os.path.isdir(d) and d not in seen:
        seen.add(d)
        print(d)
PY
}

lt_gpu_env_find() {
    local needed=$1 so d found origin cands=() origins=() i
    LT_GPU_LIBS_FOUND= LT_GPU_LIBS_MISSING= LT_GPU_LIBDIRS= LT_GPU_SEARCHED=
    if [ -n "${LATHE_CUDA_LIBDIRS:-}" ]; then
        local IFS_=$IFS; IFS=:
        for d in $LATHE_CUDA_LIBDIRS; do cands+=("$d"); origins+=(override); done
        IFS=$IFS_
    fi
    while read -r root; do
        for d in "$root/lib64" "$root/lib" "$root/targets/x86_64-linux/lib"; do
            [ -d "$d" ] && { cands+=("$d"); origins+=(toolkit); }
        done
    done < <(lt_gpu_env_toolkits)
    while read -r d; do
        [ -n "$d" ] && { cands+=("$d"); origins+=(python); }
    done < <(lt_gpu_env_python_dirs)
    for d in "${cands[@]}"; do LT_GPU_SEARCHED+=${LT_GPU_SEARCHED:+:}$d; done
    local cache
    cache=$( { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null)
    while read -r so; do
        so=${so%%#*}; so=${so//[[:space:]]/}
        [ -n "$so" ] || continue
        found=
        for i in "${!cands[@]}"; do
            if [ -e "${cands[$i]}/$so" ]; then
                found=${cands[$i]}/$so origin=${origins[$i]}
                case ":$LT_GPU_LIBDIRS:" in
                    *":${cands[$i]}:"*) ;;
                    *) LT_GPU_LIBDIRS+=${LT_GPU_LIBDIRS:+:}${cands[$i]} ;;
                esac
                break
            fi
        done
        if [ -z "$found" ]; then
            found=$(printf '%s\n' "$cache" | awk -v so="$so" '$1 == so && /x86-64/ {print $NF; exit}')
            origin=system
        fi
        if [ -n "$found" ]; then
            LT_GPU_LIBS_FOUND+="$so	$found	$origin"$'\n'
        else
            LT_GPU_LIBS_MISSING+=${LT_GPU_LIBS_MISSING:+ }$so
        fi
    done < "$needed"
    if [ -n "$LT_GPU_LIBDIRS" ]; then
        export LD_LIBRARY_PATH=$LT_GPU_LIBDIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    fi
    [ -z "$LT_GPU_LIBS_MISSING" ]
}

lt_gpu_env_driver() {
    local p
    p=$( { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | awk '$1 == "libcuda.so.1" && /x86-64/ {print $NF; exit}')
    if [ -z "$p" ]; then
        for p in /usr/lib/x86_64-linux-gnu/libcuda.so.1 /usr/lib64/libcuda.so.1 \
                 /usr/local/nvidia/lib64/libcuda.so.1 /usr/lib/wsl/lib/libcuda.so.1; do
            [ -e "$p" ] && break
            p=
        done
    fi
    [ -n "$p" ] && echo "$p"
    return 0
}

lt_gpu_env_sanitizer() {
    local p root
    p=$(command -v compute-sanitizer 2>/dev/null) && { echo "$p"; return 0; }
    while read -r root; do
        for p in "$root/bin/compute-sanitizer" "$root/compute-sanitizer/compute-sanitizer"; do
            [ -x "$p" ] && { echo "$p"; return 0; }
        done
    done < <(lt_gpu_env_toolkits)
    return 0
}
