# lathe — build, test, bench, demo.
#   make            bin/lathe and build/liblathe.a (CPU; CUDA too when nvcc is found, CUDA=0 to skip;
#                   with CUDA also build/test_cuda_ops and build/bench_gpu, so compile breaks show)
#   make deps       install the Debian packages lathe needs (apt-get; sudo when not root)
#   make test       Criterion suite (runs `make deps` first when a library is missing)
#   make bench      CPU training benchmark, JSON lines
#   make bench-dist data-parallel benchmark: tokens/s and all-reduce ms/step at 1 and 2 MPI ranks
#   make demo       fine-tune SmolLM2-135M-Instruct on the Jargon File and compare answers
#   make gpu-bundle everything tools/gpu_check.sh needs on a GPU server, in gpu-bundle/ (<= 64 MiB;
#                   needs nvcc here, no GPU): binaries with the Debian libraries linked statically
#   make gpu-bundle-check   build the bundle and run its GPU check here (no GPU: all skip, exit 0)
#   make fuzz       libFuzzer harnesses (tests/fuzz/, clang + ASan + UBSan), FUZZ_SECONDS=N each
#   make clean
#   make test SANITIZE=1    the same suite built with ASan + UBSan (CPU only) in build/san/
# Out-of-tree builds for parallel work: make BUILD=/tmp/b BIN=/tmp/b/bin

# SANITIZE=1: library, CLI and tests with AddressSanitizer (leaks included) and UBSan, any
# report fatal; an out-of-tree build so that the plain one stays as it is.
SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD ?= build/san
BIN ?= build/san/bin
CUDA := 0
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif
BUILD ?= build
BIN ?= bin
CC ?= gcc
NATIVE ?= 1
CUDA ?= $(if $(shell command -v nvcc 2>/dev/null),1,0)
LATHE_FIXTURES ?= $(abspath ../shared/fixtures)
export LATHE_FIXTURES

PKGS := hdf5 yaml-0.1 libpcre2-8 jansson openblas libcrypto libutf8proc ompi-c
# libaec-dev, zlib1g-dev and gfortran (libgfortran's .a) give the static archives `make gpu-bundle`
# links into its binaries; clang, libclang-rt-dev (libFuzzer, the sanitizers) and libomp-dev build
# `make fuzz`.
DEB_PKGS := build-essential pkg-config python3 libhdf5-dev libyaml-dev libcriterion-dev \
            libopenblas-dev libpcre2-dev libjansson-dev libssl-dev libutf8proc-dev dict-jargon \
            python3-pip python3-venv cmake libaec-dev zlib1g-dev gfortran clang libclang-rt-dev libomp-dev \
            libopenmpi-dev openmpi-bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ARCH_FLAGS := $(if $(filter 1,$(NATIVE)),-march=native,)
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp -fPIC $(ARCH_FLAGS) $(PKG_CFLAGS) -Iinclude -Isrc
LDLIBS := $(PKG_LIBS) -fopenmp -lm -lpthread
CFLAGS += $(SAN_FLAGS)
LDLIBS += $(SAN_FLAGS)

# STATIC_DEPS=1 (`make gpu-bundle` sets it): binaries for a machine that has none of our Debian
# libraries. HDF5 (+ szip/libaec, zlib; its S3 driver, the only user of libcurl, is never linked
# in), libyaml, PCRE2, Jansson, OpenBLAS (+ libgfortran, libquadmath), libcrypto, libgomp, libgcc
# and (with CUDA) libstdc++ and the CUDA runtime are linked statically; only glibc and the CUDA
# libraries (cuBLASLt, later cuDNN and NCCL) stay shared. --as-needed drops the shared libgomp
# that -fopenmp adds at link time (its symbols already come from libgomp.a).
STATIC_DEPS ?= 0
ifeq ($(STATIC_DEPS),1)
PKG_LIBS := $(shell pkg-config --libs-only-L $(PKGS) 2>/dev/null) -Wl,-Bstatic -lhdf5 -lsz -laec -lz \
            -lyaml -lpcre2-8 -ljansson -lutf8proc -lopenblas -lgfortran -lquadmath -lcrypto -lgomp -Wl,-Bdynamic
LDLIBS := -static-libgcc -Wl,--as-needed $(PKG_LIBS) -lm -lpthread -ldl -lrt
endif

# LATHE_MPI=1 (default where pkg-config finds OpenMPI's ompi-c): src/dist/ runs data-parallel ranks
# over MPI when a launcher (mpirun, srun) started the process. The GPU bundle (STATIC_DEPS=1) is for
# servers without our Debian libraries and OpenMPI cannot be linked statically in a useful way (its
# plugins, PMIx and the launcher must match the host's), so it is built without: src/dist/ then has
# one rank and a launched job is refused with a hint (docs/distributed.md).
LATHE_MPI ?= $(if $(filter 1,$(STATIC_DEPS)),0,$(if $(shell pkg-config --exists ompi-c 2>/dev/null && echo y),1,0))
ifeq ($(LATHE_MPI),1)
CFLAGS += -DLATHE_MPI=1
else ifeq ($(STATIC_DEPS),0)
PKG_CFLAGS := $(shell pkg-config --cflags $(filter-out ompi-c,$(PKGS)) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(filter-out ompi-c,$(PKGS)) 2>/dev/null)
LDLIBS := $(PKG_LIBS) -fopenmp -lm -lpthread $(SAN_FLAGS)
endif

LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*/*.c src/*/*/*.c))
CLI_SRC := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/unit/*.c tests/integration/*.c tests/*.c)
BENCH_SRC := $(wildcard bench/*.c)
CU_SRC := $(wildcard src/kernels/cuda/*.cu)

CUDA_TEST_SRC := $(wildcard tests/cuda/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

NVCC ?= nvcc
ifeq ($(CUDA),1)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC)))
NVCCFLAGS ?= -O3 -std=c++17 -Xcompiler -fPIC -Isrc -Iinclude \
             -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=compute_80
CU_OBJ := $(CU_SRC:%.cu=$(BUILD)/%.o)
CFLAGS += -DLATHE_CUDA=1 -I$(CUDA_HOME)/include
ifeq ($(STATIC_DEPS),1)
CUDA_LIBS_STATIC := -L$(CUDA_HOME)/lib64 -lcudart_static -lcublas -lcublasLt \
                    -Wl,-Bstatic -lstdc++ -Wl,-Bdynamic -ldl -lrt -lpthread
LDLIBS += $(if $(CU_SRC),$(CUDA_LIBS_STATIC),)
else
LDLIBS += $(if $(CU_SRC),-L$(CUDA_HOME)/lib64 -lcudart -lcublas -lcublasLt -lstdc++,)
endif
endif

# With CUDA: every tests/cuda/*.c program and the GPU benchmark (built by `all`).
CUDA_PROGS := $(if $(filter 1,$(CUDA)),$(CUDA_TEST_SRC:tests/cuda/%.c=$(BUILD)/%) $(BUILD)/bench_gpu,)

.SECONDARY:
.PHONY: all deps ensure-deps test test-run bench bench-run demo demo-run interop interop-archs clean \
        chat-templates
all: $(BIN)/lathe $(BUILD)/liblathe.a $(CUDA_PROGS)

$(BUILD)/liblathe.a: $(LIB_OBJ) $(CU_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BIN)/lathe: $(CLI_OBJ) $(BUILD)/liblathe.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/liblathe.a $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# nvcc writes -MMD's file into the current directory unless -MF names it.
$(BUILD)/%.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -MF $(@:.o=.d) -c -o $@ $<

$(BUILD)/bench_%: $(BUILD)/bench/bench_%.o $(BUILD)/liblathe.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/liblathe.a $(LDLIBS)

$(BUILD)/lathe_tests: $(TEST_OBJ) $(BUILD)/liblathe.a
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/liblathe.a $(LDLIBS) -lcriterion -lz

deps:
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(DEB_PKGS)

# Install the packages only when one is missing, so `make test` works on a fresh machine.
ensure-deps:
	@if ! command -v pkg-config >/dev/null || ! pkg-config --exists $(PKGS) criterion \
	   || [ ! -e /usr/share/dictd/jargon.dict.dz ]; then $(MAKE) deps; fi

test: ensure-deps
	@$(MAKE) --no-print-directory test-run

test-run: $(BIN)/lathe $(BUILD)/lathe_tests
	LATHE_BIN=$(abspath $(BIN)/lathe) $(if $(SAN_FLAGS),LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) UBSAN_OPTIONS=print_stacktrace=1) $(BUILD)/lathe_tests --jobs 2

bench: ensure-deps
	@$(MAKE) --no-print-directory bench-run

demo: ensure-deps
	@$(MAKE) --no-print-directory demo-run

demo-run: $(BIN)/lathe
	LATHE_BIN=$(abspath $(BIN)/lathe) tools/demo.sh

# Interop proof with the consumers' own loaders (llama.cpp, transformers, peft): heavy Python
# packages go into a virtual environment under build/, never into the default `make test`.
INTEROP_VENV := $(BUILD)/interop-venv
INTEROP_PKGS := numpy gguf safetensors torch transformers peft llama-cpp-python==0.3.36
interop: ensure-deps $(BIN)/lathe
	@[ -x $(INTEROP_VENV)/bin/python ] || python3 -m venv $(INTEROP_VENV)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(INTEROP_VENV)/bin/pip install -q --disable-pip-version-check $(INTEROP_PKGS)
	LATHE_BIN=$(abspath $(BIN)/lathe) $(INTEROP_VENV)/bin/python tools/interop/check.py

# The same proof for every decoder family (tests/data/models: Llama 3, Qwen2, Qwen3, Mistral),
# trained and exported: transformers, peft and llama.cpp against lathe (tools/interop/check_archs.py).
interop-archs: ensure-deps $(BIN)/lathe
	@[ -x $(INTEROP_VENV)/bin/python ] || python3 -m venv $(INTEROP_VENV)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(INTEROP_VENV)/bin/pip install -q --disable-pip-version-check $(INTEROP_PKGS)
	LATHE_BIN=$(abspath $(BIN)/lathe) $(INTEROP_VENV)/bin/python tools/interop/check_archs.py

# Proof that `lathe chat-render` (src/jinja/) renders real chat templates byte for byte as
# transformers' apply_chat_template: the templates of llama.cpp's models/templates/ (fetched at run
# time from the llama-cpp-python sdist into ~/.cache/lathe, never committed) on a set of
# conversations (tools/check_chat_templates.py). CHAT_PYTHON=/path/to/python uses an existing
# environment with transformers instead of the venv.
CHAT_VENV := $(BUILD)/chat-venv
CHAT_PKGS := transformers tokenizers jinja2
CHAT_PYTHON ?=
chat-templates: ensure-deps $(BIN)/lathe
	@if [ -z "$(CHAT_PYTHON)" ]; then \
	  [ -x $(CHAT_VENV)/bin/python ] || python3 -m venv $(CHAT_VENV); \
	  $(CHAT_VENV)/bin/pip install -q --disable-pip-version-check $(CHAT_PKGS); fi
	LATHE_BIN=$(abspath $(BIN)/lathe) $(or $(CHAT_PYTHON),$(CHAT_VENV)/bin/python) tools/check_chat_templates.py

bench-run: $(BIN)/lathe $(BUILD)/bench_train $(BUILD)/bench_quant
	BENCH_BIN=$(abspath $(BUILD)/bench_train) tools/bench.sh

# Data parallelism on CPU ranks (docs/distributed.md): tokens/s and all-reduce ms/step at 1 and 2
# ranks of the CI recipe, then the all-reduce alone for three adapter sizes (tools/bench_dist.sh).
.PHONY: bench-dist bench-dist-run
bench-dist: ensure-deps
	@$(MAKE) --no-print-directory bench-dist-run

bench-dist-run: $(BIN)/lathe $(BUILD)/bench_dist
	LATHE_BIN=$(abspath $(BIN)/lathe) BENCH_DIST_BIN=$(abspath $(BUILD)/bench_dist) tools/bench_dist.sh

# ---- CUDA: op tests against the CPU, and the GPU benchmark (both skip cleanly without a GPU) ----
.PHONY: test-cuda bench-gpu
ifeq ($(CUDA),1)
$(BUILD)/test_cuda_%: $(BUILD)/tests/cuda/test_cuda_%.o $(BUILD)/liblathe.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/liblathe.a $(LDLIBS)

$(BUILD)/bench_gpu: $(BUILD)/bench/gpu/bench_gpu.o $(BUILD)/liblathe.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/liblathe.a $(LDLIBS)

test-cuda: $(BUILD)/test_cuda_ops
	$(BUILD)/test_cuda_ops

bench-gpu: $(BUILD)/bench_gpu
	BENCH_GPU_BIN=$(abspath $(BUILD)/bench_gpu) bench/gpu/run.sh
else
test-cuda:
	@echo "SKIP test-cuda: lathe built without CUDA (nvcc not found, or CUDA=0)"

bench-gpu:
	@echo "SKIP bench-gpu: lathe built without CUDA (nvcc not found, or CUDA=0)"
endif

# ---- the GPU proof (DESIGN.md §9): a bundle built here, checked on a GPU server ----------------
# gpu-bundle: the CUDA build with STATIC_DEPS=1 and NATIVE=0 (the GPU host's CPU differs; no
# source needs more than x86-64's baseline, OpenBLAS picks its kernels at run time) in its own
# object tree, then tools/gpu_bundle.sh assembles GPU_BUNDLE: stripped binaries, stories260K and
# the CI recipe's token shards, the CPU reference figures (measured now, with the bundled lathe),
# gpu_check.sh and the benchmark scripts; it checks the linkage (ldd) and the size (<= 64 MiB).
GPU_BUNDLE ?= gpu-bundle
GPU_BUNDLE_BUILD ?= $(BUILD)/gpu-bundle-obj
# One multi-call executable (tools/gpu_bundle_main.c) holds lathe, the tests/cuda programs and
# bench_gpu, so the static libraries are in the bundle once: each program's main source is
# compiled with -Dmain=lt_mc_<name>_main. Every such main takes (int argc, char **argv).
MC_NAMES := lathe $(CUDA_TEST_SRC:tests/cuda/%.c=%) bench_gpu
MC_SRC_lathe := src/cli/main.c
MC_SRC_bench_gpu := bench/gpu/bench_gpu.c
$(foreach t,$(CUDA_TEST_SRC),$(eval MC_SRC_$(t:tests/cuda/%.c=%) := $(t)))
MC_OBJ := $(MC_NAMES:%=$(BUILD)/multicall/%.o) $(BUILD)/multicall/gpu_bundle_main.o
define MC_RULE
$(BUILD)/multicall/$(1).o: $(2)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) -Dmain=lt_mc_$(1)_main -MMD -MP -c -o $$@ $$<
endef
$(foreach n,$(MC_NAMES),$(eval $(call MC_RULE,$(n),$(MC_SRC_$(n)))))
$(BUILD)/multicall/gpu_bundle_main.o: tools/gpu_bundle_main.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) '-DLT_MC_PROGS=$(foreach n,$(MC_NAMES),X($(n)))' -MMD -MP -c -o $@ $<
$(BUILD)/lathe-gpu: $(MC_OBJ) $(filter-out $(BUILD)/src/cli/main.o,$(CLI_OBJ)) $(BUILD)/liblathe.a
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/liblathe.a $(LDLIBS)
GPU_CHECK_OUT ?= $(BUILD)/gpu-check-out
BUNDLE_STATIC_LIBS := libhdf5.a libsz.a libaec.a libz.a libyaml.a libpcre2-8.a libjansson.a libutf8proc.a \
                      libopenblas.a libgfortran.a libquadmath.a libcrypto.a libgomp.a libstdc++.a
.PHONY: gpu-bundle gpu-bundle-check ensure-bundle-deps
ensure-bundle-deps: ensure-deps
	@missing=; for a in $(BUNDLE_STATIC_LIBS); do \
	    found=$$($(CC) $(shell pkg-config --libs-only-L $(PKGS) 2>/dev/null | sed 's/-L/-B/g') \
	             -print-file-name=$$a); [ "$$found" != "$$a" ] || missing="$$missing $$a"; done; \
	 if [ -n "$$missing" ]; then echo "static archives missing:$$missing; running make deps"; \
	    $(MAKE) --no-print-directory deps; fi

gpu-bundle: ensure-bundle-deps
	@command -v $(NVCC) >/dev/null 2>&1 || { echo "make gpu-bundle: $(NVCC) not found; the bundle's \
	CUDA binaries are built here (no GPU needed): install the CUDA toolkit or put nvcc on PATH"; exit 2; }
	@$(MAKE) --no-print-directory BUILD=$(GPU_BUNDLE_BUILD) BIN=$(GPU_BUNDLE_BUILD)/bin CUDA=1 \
	    NATIVE=0 STATIC_DEPS=1 $(GPU_BUNDLE_BUILD)/lathe-gpu
	tools/gpu_bundle.sh $(GPU_BUNDLE) $(GPU_BUNDLE_BUILD)/lathe-gpu $(MC_NAMES)

# The skip path, proven on a machine without a GPU (or the whole check, on one with a GPU): the
# check must exit 0 and every check line must say pass or skip.
# Also: the library locator finds cuBLASLt in torch's pip-wheel layout (tools/gpu_env_selftest.sh),
# and gpu_check.sh reads simulated GPU results right (tools/gpu_check_selftest.sh: its pass and
# fail branches, which a machine without a GPU never reaches otherwise).
gpu-bundle-check: gpu-bundle
	tools/gpu_env_selftest.sh $(GPU_BUNDLE)
	tools/gpu_check_selftest.sh $(GPU_BUNDLE)
	rm -rf $(GPU_CHECK_OUT)
	$(GPU_BUNDLE)/gpu_check.sh $(GPU_BUNDLE) $(GPU_CHECK_OUT)
	python3 tools/gpu_check_verify.py $(GPU_CHECK_OUT)/results.jsonl

# ---- fuzzing (tests/fuzz/): libFuzzer harnesses, clang with ASan + UBSan -----------------------
# make fuzz [FUZZ_SECONDS=N]: builds every tests/fuzz/fuzz_*.c against the library compiled with
# the sanitizers (CPU only) in FUZZ_BUILD, cuts seed corpora from the fixtures, runs each harness
# N seconds, one at a time (tools/fuzz.sh). Without clang's libFuzzer: one SKIP line, exit 0.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 20
FUZZ_BUILD ?= $(BUILD)/fuzz
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_PROGS := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -fopenmp $(FUZZ_SAN) $(PKG_CFLAGS) -Iinclude -Isrc
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -fopenmp -lm -lpthread
.PHONY: fuzz fuzz-build
fuzz: ensure-deps
	@MAKE="$(MAKE)" FUZZ_CC="$(FUZZ_CC)" tools/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-build: $(FUZZ_PROGS) $(FUZZ_BUILD)/fuzz_seeds

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/liblathe.a: $(FUZZ_LIB_OBJ)
	$(AR) rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/liblathe.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/liblathe.a $(FUZZ_LIBS)

$(FUZZ_BUILD)/fuzz_seeds: $(FUZZ_BUILD)/tests/fuzz/seeds.o $(FUZZ_BUILD)/liblathe.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_BUILD)/liblathe.a $(FUZZ_LIBS)

clean:
	rm -rf $(BUILD) $(BIN)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(CU_OBJ:.o=.d) \
         $(BENCH_SRC:%.c=$(BUILD)/%.d) $(CUDA_TEST_SRC:%.c=$(BUILD)/%.d) $(BUILD)/bench/gpu/bench_gpu.d \
         $(MC_OBJ:.o=.d) $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_SRC:%.c=$(FUZZ_BUILD)/%.d) \
         $(FUZZ_BUILD)/tests/fuzz/seeds.d
