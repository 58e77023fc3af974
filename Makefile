# lathe — build, test, bench, demo.
#   make            bin/lathe and build/liblathe.a (CPU; CUDA too when nvcc is found, CUDA=0 to skip;
#                   with CUDA also build/test_cuda_ops and build/bench_gpu, so compile breaks show)
#   make deps       install the Debian packages lathe needs (apt-get; sudo when not root)
#   make test       Criterion suite (runs `make deps` first when a library is missing)
#   make bench      CPU training benchmark, JSON lines
#   make demo       fine-tune SmolLM2-135M-Instruct on the Jargon File and compare answers
#   make clean
# Out-of-tree builds for parallel work: make BUILD=/tmp/b BIN=/tmp/b/bin

BUILD ?= build
BIN ?= bin
CC ?= gcc
NATIVE ?= 1
CUDA ?= $(if $(shell command -v nvcc 2>/dev/null),1,0)
LATHE_FIXTURES ?= $(abspath ../shared/fixtures)
export LATHE_FIXTURES

PKGS := hdf5 yaml-0.1 libpcre2-8 jansson openblas libcrypto
DEB_PKGS := build-essential pkg-config python3 libhdf5-dev libyaml-dev libcriterion-dev \
            libopenblas-dev libpcre2-dev libjansson-dev libssl-dev dict-jargon python3-pip \
            python3-venv cmake
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ARCH_FLAGS := $(if $(filter 1,$(NATIVE)),-march=native,)
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp -fPIC $(ARCH_FLAGS) $(PKG_CFLAGS) -Iinclude -Isrc
LDLIBS := $(PKG_LIBS) -fopenmp -lm -lpthread

LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*/*.c src/*/*/*.c))
CLI_SRC := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/unit/*.c tests/integration/*.c tests/*.c)
BENCH_SRC := $(wildcard bench/*.c)
CU_SRC := $(wildcard src/kernels/cuda/*.cu)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

ifeq ($(CUDA),1)
NVCC ?= nvcc
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC)))
NVCCFLAGS ?= -O3 -std=c++17 -Xcompiler -fPIC -Isrc -Iinclude \
             -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=compute_80
CU_OBJ := $(CU_SRC:%.cu=$(BUILD)/%.o)
CFLAGS += -DLATHE_CUDA=1 -I$(CUDA_HOME)/include
LDLIBS += $(if $(CU_SRC),-L$(CUDA_HOME)/lib64 -lcudart -lcublas -lcublasLt -lstdc++,)
endif

CUDA_PROGS := $(if $(filter 1,$(CUDA)),$(BUILD)/test_cuda_ops $(BUILD)/bench_gpu,)

.SECONDARY:
.PHONY: all deps ensure-deps test test-run bench bench-run demo demo-run interop clean
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
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/liblathe.a $(LDLIBS) -lcriterion

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
	LATHE_BIN=$(abspath $(BIN)/lathe) $(BUILD)/lathe_tests --jobs 2

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

bench-run: $(BIN)/lathe $(BUILD)/bench_train $(BUILD)/bench_quant
	BENCH_BIN=$(abspath $(BUILD)/bench_train) tools/bench.sh

# ---- CUDA: op tests against the CPU, and the GPU benchmark (both skip cleanly without a GPU) ----
.PHONY: test-cuda bench-gpu
ifeq ($(CUDA),1)
$(BUILD)/test_cuda_ops: $(BUILD)/tests/cuda/test_cuda_ops.o $(BUILD)/liblathe.a
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

clean:
	rm -rf $(BUILD) $(BIN)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(CU_OBJ:.o=.d) \
         $(BENCH_SRC:%.c=$(BUILD)/%.d) $(BUILD)/tests/cuda/test_cuda_ops.d $(BUILD)/bench/gpu/bench_gpu.d
