# qfit — build, test, bench.
#   make            release build: build/release/{libqfit.a,qfit}
#   make test       debug build with AddressSanitizer + UBSan, runs the Criterion suite
#   make demo       dependencies, build, and a real run on the built-in default
#   make fuzz       libFuzzer targets (clang)
#   make CC=clang   builds with clang instead of gcc
#   make check-portable   the build a system that is not Linux gets (macOS), checked here
#   macOS (Apple clang, arm64 or x86_64): `make` with the Homebrew packages of README.md
CC      ?= gcc
AR      ?= ar
# the target CPU: Apple clang says arm64-apple-darwin..., gcc/clang on Linux aarch64-...
ARCH    := $(shell $(CC) -dumpmachine | cut -d- -f1)
ifeq ($(ARCH),arm64)
ARCH    := aarch64
endif
UNAME_S := $(shell uname -s)

# libraries outside the core engine (tokenizer, store, server, cli)
ifeq ($(UNAME_S),Darwin)
# Homebrew's (openssl@3 is keg-only: its own prefix); libcurl is the system's
BREW     ?= $(shell brew --prefix 2>/dev/null || echo /opt/homebrew)
EXT_CFLAGS := -I$(BREW)/include -I$(BREW)/opt/openssl@3/include
EXT_LIBS := -L$(BREW)/lib -L$(BREW)/opt/openssl@3/lib -lpcre2-8 -ljansson -lcrypto -lcurl -lmicrohttpd -lhiredis
else
EXT_LIBS := $(shell pkg-config --libs libpcre2-8 jansson libcrypto libcurl libmicrohttpd hiredis 2>/dev/null || echo -lpcre2-8 -ljansson -lcrypto -lcurl -lmicrohttpd -lhiredis)
endif

# Vulkan compute (src/vulkan, issue 16): built when the loader's headers (pkg-config vulkan)
# and glslc are found; VULKAN=0 leaves it out, VULKAN=1 makes a missing piece an error.
# Its shaders are compiled to SPIR-V here and embedded (build/gen/shaders).
VULKAN  ?= auto
VK_WHY  := VULKAN=0
ifeq ($(VULKAN),auto)
VULKAN  := $(shell pkg-config --exists vulkan 2>/dev/null && command -v glslc >/dev/null 2>&1 && echo 1 || echo 0)
VK_WHY  := libvulkan-dev or glslc not found
endif
ifeq ($(VULKAN),1)
ifneq ($(shell pkg-config --exists vulkan 2>/dev/null && command -v glslc >/dev/null 2>&1 && echo ok),ok)
$(error VULKAN=1, but the Vulkan loader's headers (libvulkan-dev) or glslc are missing)
endif
VK_LIBS := $(shell pkg-config --libs vulkan)
VK_DEFS := -DQFIT_VULKAN -Ibuild/gen
endif
ifeq ($(MAKELEVEL),0)
$(info qfit: Vulkan $(if $(filter 1,$(VULKAN)),on,off ($(VK_WHY))))
endif
GLSLC   ?= glslc
VK_GEN  := build/gen/shaders
vk_upper = $(shell echo $(1) | tr a-z A-Z)
# One SPIR-V module per variant of a shader, each a rule made by vk_variant (name, source,
# defines): matvec_<type> is matvec.comp with -DWT_<TYPE>, rows_<op> rows.comp and kv_<op>
# kv.comp with -DOP_<OP>; rope and round are their files. The device-feature builds that
# src/vulkan/vk.c chooses among at run time carry a suffix: _sg subgroup operations
# (-DUSE_SUBGROUP), _st 8/16-bit storage (-DUSE_STORAGE), _sgst both.
VK_MV_TYPES := f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k iq4_nl iq4_xs
VK_VARIANTS :=
define vk_variant
VK_VARIANTS += $(1)
$$(VK_GEN)/$(1).h: src/vulkan/shaders/$(2)
	@mkdir -p $$(dir $$@)
	$$(GLSLC) --target-env=vulkan1.1 -O $(3) -mfmt=c $$< -o $$@
$$(VK_GEN)/$(1).spv: src/vulkan/shaders/$(2)
	@mkdir -p $$(dir $$@)
	$$(GLSLC) --target-env=vulkan1.1 -O $(3) $$< -o $$@
endef
$(foreach t,$(VK_MV_TYPES),$(eval $(call vk_variant,matvec_$(t),matvec.comp,-DWT_$(call vk_upper,$(t)))) \
  $(eval $(call vk_variant,matvec_$(t)_sg,matvec.comp,-DWT_$(call vk_upper,$(t)) -DUSE_SUBGROUP)))
$(foreach t,$(filter-out f32,$(VK_MV_TYPES)), \
  $(eval $(call vk_variant,matvec_$(t)_st,matvec.comp,-DWT_$(call vk_upper,$(t)) -DUSE_STORAGE)) \
  $(eval $(call vk_variant,matvec_$(t)_sgst,matvec.comp,-DWT_$(call vk_upper,$(t)) -DUSE_SUBGROUP -DUSE_STORAGE)))
$(foreach o,rms_norm swiglu add,$(eval $(call vk_variant,rows_$(o),rows.comp,-DOP_$(call vk_upper,$(o)))))
$(eval $(call vk_variant,kv_store,kv.comp,-DOP_STORE))
$(eval $(call vk_variant,kv_attn,kv.comp,-DOP_ATTN))
$(eval $(call vk_variant,kv_attn_sg,kv.comp,-DOP_ATTN -DUSE_SUBGROUP))
$(eval $(call vk_variant,rope,rope.comp,))
$(eval $(call vk_variant,round,round.comp,))
VK_HEADERS := $(VK_VARIANTS:%=$(VK_GEN)/%.h)
VK_SPV := $(VK_VARIANTS:%=$(VK_GEN)/%.spv)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
# -pthread: threads are part of libSystem on macOS (no flag)
PTHREAD := $(if $(filter Darwin,$(UNAME_S)),,-pthread)
# QFIT_DEFS: extra definitions (make check-portable)
BASE    := -std=c11 -ffp-contract=off -D_GNU_SOURCE -Iinclude -Isrc $(EXT_CFLAGS) $(PTHREAD) -MMD -MP $(WARN) $(QFIT_DEFS) $(VK_DEFS)
REL_CFLAGS := -O2 -g $(BASE)
DBG_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined $(BASE)

LDLIBS   := $(EXT_LIBS) $(VK_LIBS) -lm -lpthread
TEST_LIBS := -lcriterion

# per-ISA kernel flags (runtime dispatch picks among them)
ifeq ($(ARCH),x86_64)
ISA_avx2   := -mavx2 -mfma -mf16c -mbmi2
ISA_avx512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c -mbmi2
ISA_SRCS_EXCLUDE := %_neon.c
else ifeq ($(ARCH),aarch64)
ISA_neon   := -march=armv8.2-a+dotprod+fp16
ISA_SRCS_EXCLUDE := %_avx2.c %_avx512.c
endif

LIB_SRCS := $(filter-out $(ISA_SRCS_EXCLUDE) src/cli/% src/server/%,$(wildcard src/*/*.c))
CLI_SRCS := $(wildcard src/cli/*.c)
# the HTTP server (libmicrohttpd): linked into the qfit binary and the tests, not libqfit.a
SERVER_SRCS := $(wildcard src/server/*.c)
TEST_SRCS := $(wildcard tests/test_*.c) $(wildcard tests/util/*.c)
# the web page (web/): embedded into the server by tools/embed_web.c, a C file per build
WEB_FILES := $(sort $(wildcard web/*.html web/*.js web/*.css web/*.svg))

REL := build/release
DBG := build/debug

isa_flags = $(if $(findstring _avx512.c,$(1)),$(ISA_avx512),$(if $(findstring _avx2.c,$(1)),$(ISA_avx2),$(if $(findstring _neon.c,$(1)),$(ISA_neon))))

.PHONY: all release debug test test-neon test-clients test-web demo fuzz clean deps bench check-clang \
        check-portable neon-count-bins bench-neon-count check-msl check-vulkan-validation
all: release
release: $(REL)/qfit
debug: $(DBG)/qfit $(DBG)/tests/qfit-tests

$(REL)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) $(call isa_flags,$<) -c $< -o $@
$(DBG)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(DBG_CFLAGS) $(call isa_flags,$<) -c $< -o $@

# the Vulkan shaders: one header declaring every variant's SPIR-V as a static array
# spv_<variant> (included by src/vulkan/vk.c), from glslc's C initializers
$(VK_GEN)/all.h: $(VK_HEADERS)
	@for v in $(VK_VARIANTS); do printf 'static const uint32_t spv_%s[] =\n#include "%s.h"\n    ;\n' $$v $$v; done > $@.tmp
	@mv $@.tmp $@
ifeq ($(VULKAN),1)
$(REL)/src/vulkan/vk.o $(DBG)/src/vulkan/vk.o: $(VK_GEN)/all.h
endif
# The Vulkan tests, a partly offloaded run and a run on the plain shader builds
# (QFIT_VK_FEATURES=none) under the Khronos validation layer, with its
# synchronization checks: any message it logs (build/vk-validation/log.txt) fails
VKVAL := build/vk-validation
check-vulkan-validation: $(DBG)/tests/qfit-tests $(REL)/qfit
	@mkdir -p $(VKVAL) && rm -f $(VKVAL)/log.txt
	@printf '%s\n' 'khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG' \
	  'khronos_validation.report_flags = error,warn,perf' 'khronos_validation.log_filename = $(CURDIR)/$(VKVAL)/log.txt' \
	  'khronos_validation.enables = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT' > $(VKVAL)/vk_layer_settings.txt
	VK_LAYER_SETTINGS_PATH=$(CURDIR)/$(VKVAL) VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $(DBG)/tests/qfit-tests -j2 --filter 'vulkan/*'
	VK_LAYER_SETTINGS_PATH=$(CURDIR)/$(VKVAL) VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation \
	  $(REL)/qfit run $${QFIT_SHARED:-../shared}/models/kjv-llama-7m-f32.gguf -p 'In the beginning' -n 8 --temp 0 \
	  --device vulkan0 --gpu-layers 4 > /dev/null
	VK_LAYER_SETTINGS_PATH=$(CURDIR)/$(VKVAL) VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation QFIT_VK_FEATURES=none \
	  $(REL)/qfit run $${QFIT_SHARED:-../shared}/models/kjv-llama-7m-f32.gguf -p 'In the beginning' -n 8 --temp 0 \
	  --device vulkan0 > /dev/null
	@test -f $(VKVAL)/log.txt || { echo "check-vulkan-validation: the validation layer did not run (vulkan-validationlayers?)"; exit 1; }
	@if [ -s $(VKVAL)/log.txt ]; then cat $(VKVAL)/log.txt; echo "check-vulkan-validation: the layer reported the above"; exit 1; fi
	@echo "check-vulkan-validation: no validation message"

# Every shader must translate to Metal Shading Language (what MoltenVK does on a Mac); the
# subgroup builds need Metal 2.1's SIMD-group functions (every Mac MoltenVK runs on has them),
# the rest Metal 1.2 (spirv-cross's default)
check-msl: $(VK_SPV)
	@for f in $(VK_SPV); do case $$f in *_sg.spv|*_sgst.spv) v="--msl-version 20100";; *) v=;; esac; \
	  spirv-cross --msl $$v $$f > /dev/null || { echo "check-msl: $$f does not translate to MSL"; exit 1; }; done
	@echo "check-msl: $(words $(VK_SPV)) shaders translate to MSL"

$(REL)/libqfit.a: $(LIB_SRCS:%.c=$(REL)/%.o)
	@rm -f $@; $(AR) rcs $@ $^
$(DBG)/libqfit.a: $(LIB_SRCS:%.c=$(DBG)/%.o)
	@rm -f $@; $(AR) rcs $@ $^

# build/<config>/gen/web_assets.c: the page's files as C arrays (the generator runs at build
# time, on this machine: HOST_CC, without sanitizers)
HOST_CC ?= $(CC)
$(REL)/gen/web_assets.c $(DBG)/gen/web_assets.c: %/gen/web_assets.c: tools/embed_web.c $(WEB_FILES)
	@mkdir -p $(dir $@)
	$(HOST_CC) -O1 -std=c11 $(WARN) tools/embed_web.c -o $*/gen/embed_web
	$*/gen/embed_web $@ web $(WEB_FILES)
$(REL)/gen/web_assets.o: $(REL)/gen/web_assets.c
	$(CC) $(REL_CFLAGS) -c $< -o $@
$(DBG)/gen/web_assets.o: $(DBG)/gen/web_assets.c
	$(CC) $(DBG_CFLAGS) -c $< -o $@

$(REL)/qfit: $(CLI_SRCS:%.c=$(REL)/%.o) $(SERVER_SRCS:%.c=$(REL)/%.o) $(REL)/gen/web_assets.o $(REL)/libqfit.a
	$(CC) $(REL_CFLAGS) $^ -o $@ $(LDLIBS)
$(DBG)/qfit: $(CLI_SRCS:%.c=$(DBG)/%.o) $(SERVER_SRCS:%.c=$(DBG)/%.o) $(DBG)/gen/web_assets.o $(DBG)/libqfit.a
	$(CC) $(DBG_CFLAGS) $^ -o $@ $(LDLIBS)

$(DBG)/tests/qfit-tests: $(TEST_SRCS:%.c=$(DBG)/%.o) $(SERVER_SRCS:%.c=$(DBG)/%.o) $(DBG)/gen/web_assets.o $(DBG)/libqfit.a
	@mkdir -p $(dir $@)
	$(CC) $(DBG_CFLAGS) $^ -o $@ $(LDLIBS) $(TEST_LIBS)

# The test suite: unit + integration tests against ../shared (QFIT_SHARED).
# TESTS_FILTER='suite/*' narrows the run (Criterion --filter).
test: $(DBG)/tests/qfit-tests $(DBG)/qfit $(REL)/qfit
	$(if $(filter 1,$(VULKAN)),$(MAKE) check-msl check-vulkan-validation)
	QFIT_BIN=$(CURDIR)/$(DBG)/qfit QFIT_RELEASE_BIN=$(CURDIR)/$(REL)/qfit ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 \
	  $(DBG)/tests/qfit-tests -j2 $(if $(TESTS_FILTER),--filter '$(TESTS_FILTER)') $(TESTS_ARGS)
	$(if $(TESTS_FILTER),,$(MAKE) test-clients)
	$(if $(TESTS_FILTER),,$(MAKE) test-web)
ifeq ($(ARCH),x86_64)
	$(if $(TESTS_FILTER),,$(MAKE) test-neon)
endif

# qfit serve against the official ollama and openai npm clients (versions pinned in
# tests/clients/package-lock.json), node's built-in test runner, on the release binary
test-clients: $(REL)/qfit $(DBG)/qfit
	cd tests/clients && npm ci --no-audit --no-fund --loglevel=error && \
	  QFIT_BIN=$(CURDIR)/$(REL)/qfit node --test --test-concurrency=1
	# the same against the AddressSanitizer + UBSan build: any report or leak fails the server's exit status
	cd tests/clients && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1 QFIT_BIN=$(CURDIR)/$(DBG)/qfit node --test --test-concurrency=1

# the web page (web/) in headless Chromium (Debian's chromium, driven by puppeteer-core,
# pinned in tests/web/package-lock.json), against the release binary and then the
# AddressSanitizer + UBSan one (a report or leak fails the server's exit status). The
# screenshots in docs/screenshots/ are retaken by hand: node tests/web/screenshots.mjs
test-web: $(REL)/qfit $(DBG)/qfit
	cd tests/web && npm ci --no-audit --no-fund --loglevel=error && \
	  QFIT_BIN=$(CURDIR)/$(REL)/qfit node --test --test-concurrency=1
	cd tests/web && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1 QFIT_BIN=$(CURDIR)/$(DBG)/qfit node --test --test-concurrency=1

# NEON kernels: cross-compiled for aarch64 and run under qemu-aarch64 (dotprod and non-dotprod CPUs)
test-neon:
	sh tests/neon/run.sh

deps:
	bash scripts/deps.sh

demo: deps release
	bash scripts/demo.sh

# libFuzzer targets: build/fuzz/fuzz_<name>, each linked with the src/ folders it names
# in FUZZ_DIRS_<name> (ISA-specific kernel files are never part of a fuzz build).
FUZZ_CC ?= clang
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_DIRS_fuzz_gguf := gguf quant
FUZZ_DIRS_fuzz_tokenizer := tokenizer gguf quant
FUZZ_DIRS_fuzz_imatrix := imatrix gguf quant
FUZZ_DIRS_fuzz_batch := batch
FUZZ_DIRS_fuzz_name := store config gguf quant quantize modelfile
FUZZ_DIRS_fuzz_config := config
FUZZ_DIRS_fuzz_gotmpl :=
FUZZ_DIRS_fuzz_modelfile := modelfile
FUZZ_DIRS_fuzz_jinja := template
FUZZ_DIRS_fuzz_gbnf := grammar
FUZZ_DIRS_fuzz_schema := schema grammar
FUZZ_DIRS_fuzz_api := api modelfile config
FUZZ_DIRS_fuzz_toolcall := toolcall platform
# what a target's sources call beyond its directories (store's create quantizes, which runs
# the engine): taken, uninstrumented, from the release library
FUZZ_LIBS_fuzz_name := $(REL)/libqfit.a
FUZZ_DIRS_fuzz_args :=
FUZZ_LIBS_fuzz_args := $(REL)/libqfit.a
fuzz_srcs = $(filter-out %_avx2.c %_avx512.c %_neon.c,$(foreach d,$(FUZZ_DIRS_$(1)),$(wildcard src/$(d)/*.c)))
fuzz: $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)
.SECONDEXPANSION:
build/fuzz/%: fuzz/%.c $$(call fuzz_srcs,%) $$(FUZZ_LIBS_$$*)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -O1 -g -fsanitize=fuzzer,address,undefined $^ -o $@ $(LDLIBS)

check-clang:
	$(MAKE) CC=clang REL=build/clang release

# The build of a system that is not Linux, checked on Linux (macOS cannot be run here):
# QFIT_PORTABLE_ONLY makes src/platform/platform.c and src/kernels/cpu.c compile their
# POSIX branches instead of the Linux ones, tools/portable/poison.h makes every call
# that glibc has and macOS lacks a compile error anywhere else, and
# tools/portable/include/ does the same for Linux-only headers. Then the wrappers'
# tests (tests/test_platform.c) run on the POSIX branches. PORTABLE_CC=clang for clang.
PORTABLE_CC ?= $(CC)
PORTABLE := build/portable-$(notdir $(PORTABLE_CC))
PORTABLE_DEFS := -DQFIT_PORTABLE_ONLY -Itools/portable/include -include tools/portable/poison.h
check-portable:
	@if grep -rn -e '^ *# *include *<linux/' -e '^ *# *include *<endian\.h>' -e '\baccept4 *(' -e SOCK_CLOEXEC \
	    -e SOCK_NONBLOCK -e MSG_NOSIGNAL src include; then \
	  echo "check-portable: Linux-only headers or socket calls above (macOS has none)"; exit 1; fi
	$(MAKE) CC=$(PORTABLE_CC) REL=$(PORTABLE) QFIT_DEFS="$(PORTABLE_DEFS)" release
	$(PORTABLE_CC) -O1 -g -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -pthread $(WARN) $(PORTABLE_DEFS) \
	  tests/test_platform.c src/platform/platform.c -o $(PORTABLE)/platform-tests -lcriterion
	$(PORTABLE)/platform-tests

# bench/neon-count: guest instructions per kernel call under qemu (NEON and scalar on
# AArch64, AVX2 on x86-64). The driver bench/neon_count.c with the quantizers and the
# kernels, release flags, linked static, once per target (cross gcc for AArch64).
NC := build/neon-count
NC_A64_CC ?= aarch64-linux-gnu-gcc
NC_X86_CC ?= $(if $(filter x86_64,$(ARCH)),$(CC),x86_64-linux-gnu-gcc)
NC_SRCS := $(wildcard src/quant/*.c src/kernels/*.c) bench/neon_count.c
NC_NEON_FLAGS := -march=armv8.2-a+dotprod+fp16
NC_AVX2_FLAGS := -mavx2 -mfma -mf16c -mbmi2
NC_AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni $(NC_AVX2_FLAGS)
$(NC)/aarch64/%.o: %.c
	@mkdir -p $(dir $@)
	$(NC_A64_CC) $(REL_CFLAGS) $(if $(findstring _neon.c,$<),$(NC_NEON_FLAGS)) -c $< -o $@
$(NC)/x86_64/%.o: %.c
	@mkdir -p $(dir $@)
	$(NC_X86_CC) $(REL_CFLAGS) $(if $(findstring _avx512.c,$<),$(NC_AVX512_FLAGS),$(if $(findstring _avx2.c,$<),$(NC_AVX2_FLAGS))) -c $< -o $@
$(NC)/aarch64/neon_count: $(patsubst %.c,$(NC)/aarch64/%.o,$(filter-out %_avx2.c %_avx512.c,$(NC_SRCS)))
	$(NC_A64_CC) -static $^ -o $@ -lm -lpthread
$(NC)/x86_64/neon_count: $(patsubst %.c,$(NC)/x86_64/%.o,$(filter-out %_neon.c,$(NC_SRCS)))
	$(NC_X86_CC) -static $^ -o $@ -lm -lpthread
# the counting qemu plugin (bench/insn_plugin.c), for the qemu on this machine
$(NC)/insn_plugin.so: bench/insn_plugin.c
	@mkdir -p $(dir $@)
	$(HOST_CC) -std=c11 -O2 $(WARN) -fPIC -shared -fvisibility=hidden $< -o $@
neon-count-bins: $(NC)/aarch64/neon_count $(NC)/x86_64/neon_count $(NC)/insn_plugin.so
# the table, written to build/neon-count/neon-count.txt and checked against the committed
# baseline (bench/results/neon-count.txt): nonzero exit when a NEON count grew
bench-neon-count: neon-count-bins
	bench/neon-count --out $(NC)/neon-count.txt --check bench/results/neon-count.txt

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
