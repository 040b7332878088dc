# libdeissn - build, test, install.  `make help` lists the targets.
#
# Variables you may set:
#   WITH_TORCH=1|0   build the libtorch shim (TorchScript models). Default: 1 when libtorch's
#                    headers are found under TORCH_DIR.
#   TORCH_DIR        where libtorch lives: /usr (Debian's libtorch-dev, the default), the
#                    unpacked official libtorch zip, or a pip wheel's site-packages/torch.
#   PYTHON           the interpreter with torch/numpy (Debian's /usr/bin/python3).
#   PREFIX, DESTDIR  for `make install`.

# The version has one source, include/deissn.h (tests/test_build.sh checks the others).
hdr_num    = $(shell sed -n 's/^\#define DEISSN_$(1) \([0-9]*\)$$/\1/p' include/deissn.h)
VERSION    := $(call hdr_num,VERSION_MAJOR).$(call hdr_num,VERSION_MINOR).$(call hdr_num,VERSION_PATCH)
SOVERSION  := $(call hdr_num,ABI)
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
DESTDIR    ?=
PYTHON     ?= /usr/bin/python3

CC       ?= cc
CXX      ?= g++
OPT      ?= -O3
WARN     := -Wall -Wextra -Wpedantic
CFLAGS   ?= $(OPT) -g
CXXFLAGS ?= $(OPT) -g
LDFLAGS  ?=
# -ffp-contract=off: no fused multiply-add, so results are the same on every machine.
LIB_CFLAGS := -std=c11 $(WARN) -fPIC -fvisibility=hidden -ffp-contract=off \
              -D_POSIX_C_SOURCE=200809L -Iinclude -Ilib

TORCH_DIR ?= /usr
ifneq ($(wildcard $(TORCH_DIR)/include/torch/script.h),)
WITH_TORCH ?= 1
else
WITH_TORCH ?= 0
endif
# Debian keeps the libraries in the multiarch directory; the zip and wheels in lib/.
TORCH_LIBDIR ?= $(firstword $(dir $(wildcard $(TORCH_DIR)/lib/libtorch.so \
                  $(TORCH_DIR)/lib/*-linux-gnu/libtorch.so)) $(TORCH_DIR)/lib/)
# (-isystem /usr/include would break #include_next in libstdc++, so Debian's needs only the
# api/include directory.) TORCH_ABI=0 for an official libtorch built with the old C++ ABI.
TORCH_ABI ?= 1
TORCH_CXXFLAGS := -std=c++17 -fPIC -fvisibility=hidden -Wall -Wextra -Iinclude -Ilib \
                  $(if $(filter /usr,$(TORCH_DIR)),,-isystem $(TORCH_DIR)/include) \
                  -isystem $(TORCH_DIR)/include/torch/csrc/api/include \
                  -D_GLIBCXX_USE_CXX11_ABI=$(TORCH_ABI)
TORCH_LIBS := -L$(TORCH_LIBDIR) -Wl,-rpath,$(TORCH_LIBDIR) -Wl,--no-as-needed \
              -ltorch -ltorch_cpu -lc10 -Wl,--as-needed

B        := build
# lib/ is grouped by layer (docs/design.md): base/ maths/ tables/ sampling/ backends/ tune/.
LIB_SRC  := $(wildcard lib/*/*.c)
LIB_HDR  := $(wildcard lib/*/*.h)
LIB_OBJ  := $(patsubst lib/%.c,$(B)/obj/%.o,$(LIB_SRC))
# libdeissn.so needs libc, libm and zlib only; TorchScript is the plug-in libdeissn-torch.so,
# which deissn_model_load() loads at run time (lib/backends/plugin.c).
LINK     := $(CC)
LIB_LIBS := -lz -lm
PLUGINS  :=
ifeq ($(WITH_TORCH),1)
PLUGINS  += $(B)/lib/libdeissn-torch.so.$(SOVERSION)
endif

SONAME   := libdeissn.so.$(SOVERSION)
LIB_REAL := $(B)/lib/libdeissn.so.$(VERSION)
LIB      := $(B)/lib/libdeissn.so
# Tests that reach inside the library link its objects statically.
LIB_INTERNAL := $(B)/lib/libdeissn_internal.a

EXAMPLES := $(B)/bin/deissn-inspect $(B)/bin/deissn-sample $(B)/bin/deissn-calibrate
DATADIR  ?= $(PREFIX)/share/deissn
APP_CFLAGS := -std=c11 $(WARN) -D_DEFAULT_SOURCE -Iinclude
APP_LDFLAGS := -L$(B)/lib -Wl,-rpath,'$$ORIGIN/../lib'

.PHONY: all lib examples check test-build install uninstall clean deps help demo bench FORCE
CMAKE_FILES := $(B)/pkgconfig/deissn-config.cmake $(B)/pkgconfig/deissn-config-version.cmake
all: lib examples $(B)/pkgconfig/deissn.pc $(CMAKE_FILES)

help:
	@echo "make            build build/lib/libdeissn.so, the torch plug-in, the tools, deissn.pc"
	@echo "make demo       install what is missing, build, sample 64 images into samples.png"
	@echo "make deps       install the Debian packages the build and tests need (as root)"
	@echo "make check      build and run every test"
	@echo "make check-debian13  make check in a Debian 13 chroot (libtorch 2.6, Python 3.13;"
	@echo "                as root; first run ~7 min and 3.5 GB in build/debian13, then ~3-4 min)"
	@echo "make install    install to DESTDIR/PREFIX (default /usr/local)"
	@echo "make asan|ubsan|tsan|memcheck   the C tests under a sanitizer or valgrind (no torch)"
	@echo "make fuzz       build the libFuzzer targets; make fuzz-run FUZZ_SECONDS=60 runs them"
	@echo "make fuzz-seeds renew fuzz_reference's seeds in tests/fuzz/corpus/reference"
	@echo "make plots      draw r(tau) of the normalization tables into docs/img/r_tau.png"
	@echo "make bench      benchmarks against memcpy, torch and the reference (docs/benchmarks.md)"
	@echo "make eval       RMSE and FD of DDIM/DEIS/DEIS-SN against NFE (docs/quality.md, ~20 min)"
	@echo "make eval-tuned tuned plans vs DPM-Solver++ / UniPC on three models (docs/quality.md part 3)"
	@echo "make shipped-table  re-tune the shipped model into models/fmnist_unet.dsn (~16 min)"
	@echo "make abi-check  compare the ABI with abi/$(SONAME).abi (make abi-baseline renews it)"
	@echo "make symbols-md regenerate docs/symbols.md from the library's exported symbols"
	@echo "WITH_TORCH=$(WITH_TORCH) TORCH_DIR=$(TORCH_DIR) TORCH_LIBDIR=$(TORCH_LIBDIR)"

deps:
	@tools/install-deps.sh

# The README's first command: install what is missing, build, and sample 64 garments with
# DEIS-SN at 10 model evaluations from the shipped model.
demo: deps
	@$(MAKE) --no-print-directory all
	$(B)/bin/deissn-sample -n 64 --steps 10 --out samples.png

lib: $(LIB)

$(B)/obj/%.o: lib/%.c include/deissn.h $(LIB_HDR) | $(B)/obj
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -DDEISSN_BUILDING_LIBRARY -c $< -o $@

$(B)/obj/torch_backend.o: shim/torch_backend.cpp include/deissn.h lib/backends/backend.h | $(B)/obj
	$(CXX) $(CXXFLAGS) $(TORCH_CXXFLAGS) -c $< -o $@

# The plug-in links libtorch, not libdeissn (the library lends it its error function).
$(B)/lib/libdeissn-torch.so.$(SOVERSION): $(B)/obj/torch_backend.o shim/plugin.map | $(B)/lib
	$(CXX) $(LDFLAGS) -shared -Wl,-soname,libdeissn-torch.so.$(SOVERSION) \
	    -Wl,--version-script=shim/plugin.map -Wl,--no-undefined -o $@ $< $(TORCH_LIBS)

# Objects depend on the configuration, so switching WITH_TORCH rebuilds them; deissn.pc
# depends on the install directories.
$(LIB_OBJ) $(B)/obj/torch_backend.o: $(B)/config.mk
$(B)/config.mk: FORCE | $(B)/obj
	@echo "WITH_TORCH=$(WITH_TORCH) TORCH_DIR=$(TORCH_DIR)" > $@.tmp
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
$(B)/prefix.mk: FORCE | $(B)/obj
	@echo "PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR) DATADIR=$(DATADIR)" > $@.tmp
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
FORCE:

$(LIB_REAL): $(LIB_OBJ) lib/deissn.map | $(B)/lib
	$(LINK) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/deissn.map \
	    -Wl,--no-undefined -o $@ $(LIB_OBJ) $(LIB_LIBS)

$(LIB): $(LIB_REAL) $(PLUGINS)
	ln -sf libdeissn.so.$(VERSION) $(B)/lib/$(SONAME)
	ln -sf $(SONAME) $@

$(LIB_INTERNAL): $(LIB_OBJ) | $(B)/lib
	rm -f $@ && ar rcs $@ $(LIB_OBJ)

examples: $(EXAMPLES)

# Each tool is its source and examples/tool.c, the helpers they share (tool.h).
TOOL_SRC := examples/tool.c examples/tool.h include/deissn.h
$(B)/bin/deissn-%: examples/%.c $(TOOL_SRC) $(LIB) | $(B)/bin
	$(CC) $(CFLAGS) $(APP_CFLAGS) $< examples/tool.c -o $@ $(APP_LDFLAGS) -ldeissn -lz -lm

$(B)/bin/deissn-sample: examples/sample.c $(TOOL_SRC) $(LIB) $(B)/prefix.mk | $(B)/bin
	$(CC) $(CFLAGS) $(APP_CFLAGS) -DDEISSN_DATADIR='"$(DATADIR)"' $< examples/tool.c -o $@ \
	    $(APP_LDFLAGS) -ldeissn -lpng -lz -lm

$(B)/pkgconfig/%: pkgconfig/%.in $(B)/prefix.mk include/deissn.h | $(B)/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@SOVERSION@|$(SOVERSION)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

$(B)/obj $(B)/lib $(B)/bin $(B)/pkgconfig $(B)/tests:
	mkdir -p $@

# ---- tests ----------------------------------------------------------------------------
C_TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))
ifneq ($(WITH_TORCH),1)
C_TESTS := $(filter-out $(B)/tests/test_torch,$(C_TESTS))
endif
TEST_CFLAGS := -std=c11 $(WARN) -D_POSIX_C_SOURCE=200809L -Iinclude -Ilib -Itests

# Tests of the public contract link the shared library, as users do; the others link the
# library's objects statically so that they can call internal functions too.
PUBLIC_TESTS := $(B)/tests/test_api $(B)/tests/test_torch $(B)/tests/test_edges \
                $(B)/tests/test_abi_compat
# test_faults links a build of the library that can fail its k-th allocation (below).
SPECIAL_TESTS := $(B)/tests/test_faults
$(filter-out $(PUBLIC_TESTS) $(SPECIAL_TESTS),$(C_TESTS)): $(B)/tests/test_%: tests/test_%.c \
        tests/testlib.h $(LIB_INTERNAL) | $(B)/tests
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $< -o $@ $(LIB_INTERNAL) -lcjson $(LIB_LIBS) -lpthread

$(filter $(PUBLIC_TESTS),$(C_TESTS)): $(B)/tests/test_%: tests/test_%.c tests/testlib.h $(LIB) \
        | $(B)/tests
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $< -o $@ -L$(B)/lib -Wl,-rpath,$(CURDIR)/$(B)/lib -ldeissn \
	    -lm -lpthread

test-build: all $(C_TESTS)

# Tests that link the library statically find the plug-ins through DEISSN_PLUGIN_DIR; the
# others find them next to build/lib/libdeissn.so, as installed programs do.
check: test-build
	@PYTHON=$(PYTHON) DEISSN_PLUGIN_DIR=$(CURDIR)/$(B)/lib tests/run.sh $(C_TESTS) \
	    tests/test_build.sh tests/test_symbols.sh tests/test_sample.sh tests/test_tools.sh \
	    $(BINDING_TESTS) tools/eval/test_baselines.sh

# The bindings' test suites, each reported as one "N passed, N failed" entry of tests/run.sh.
BINDING_TESTS := bindings/python/test_python.sh bindings/rust/test_rust.sh
.PHONY: check-python check-rust check-debian13
check-python: lib
	@PYTHON=$(PYTHON) tests/run.sh bindings/python/test_python.sh
check-rust: lib
	@tests/run.sh bindings/rust/test_rust.sh
# make check on Debian 13 (trixie: libtorch 2.6, Python 3.13, NumPy 2.2) in a debootstrap
# chroot cached in build/debian13 (tools/debian13.sh; as root).
check-debian13:
	@tools/debian13.sh

# Fault injection: the library's C sources (never the shim) built with DEISSN_FAULT_INJECTION,
# so that dsn_fail_after(k) makes the k-th following allocation fail.
FAULT_OBJ := $(patsubst lib/%.c,$(B)/obj-faults/%.o,$(LIB_SRC))
LIB_FAULTS := $(B)/lib/libdeissn_faults.a
$(B)/obj-faults/%.o: lib/%.c include/deissn.h $(LIB_HDR) | $(B)/obj-faults
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -DDEISSN_BUILDING_LIBRARY \
	    -DDEISSN_FAULT_INJECTION -c $< -o $@
$(LIB_FAULTS): $(FAULT_OBJ) | $(B)/lib
	rm -f $@ && ar rcs $@ $(FAULT_OBJ)
$(B)/tests/test_faults: tests/test_faults.c tests/testlib.h $(LIB_FAULTS) | $(B)/tests
	$(CC) $(CFLAGS) $(TEST_CFLAGS) -DDEISSN_FAULT_INJECTION $< -o $@ $(LIB_FAULTS) -lz -lm \
	    -lpthread
$(B)/obj-faults:
	mkdir -p $@

# ---- reliability: sanitizers, valgrind, fuzzing, ABI (docs/reliability.md) -------------
# The sanitizer and valgrind targets build the library WITHOUT the libtorch shim (libtorch
# itself is not instrumented, so ASan/TSan on it only report noise) into a build directory
# of their own, and run the C tests there. The first report ends the test that made it.
.PHONY: check-c asan ubsan tsan memcheck memcheck-run fuzz fuzz-run fuzz-seeds abi-check abi-baseline \
        symbols-md
check-c: $(C_TESTS)
	@$(TEST_ENV) tests/run.sh $(C_TESTS)

SAN_COMMON := -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_FLAGS_asan  := $(SAN_COMMON) -fsanitize=address
SAN_FLAGS_ubsan := $(SAN_COMMON) -fsanitize=undefined,float-cast-overflow
SAN_FLAGS_tsan  := $(SAN_COMMON) -fsanitize=thread
SAN_ENV_asan  := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
SAN_ENV_ubsan := UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
SAN_ENV_tsan  := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
# TSan needs the low-entropy address-space layout that older kernels use; setarch -R gives it
# on kernels with vm.mmap_rnd_bits > 28.
SAN_RUN_tsan  := $(shell setarch -R true 2>/dev/null && echo setarch -R)
asan ubsan tsan:
	@$(MAKE) --no-print-directory B=build-$@ WITH_TORCH=0 CFLAGS="$(SAN_FLAGS_$@)" \
	    LDFLAGS="$(SAN_FLAGS_$@)" TEST_ENV="$(SAN_ENV_$@) $(SAN_RUN_$@)" check-c

VALGRIND := valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
            --error-exitcode=1
# Under valgrind: the WITH_TORCH=0 build in build-notorch/ (also the one the ABI is read
# from), each test run through a one-line wrapper script so that tests/run.sh adds them up.
memcheck:
	@$(MAKE) --no-print-directory B=build-notorch WITH_TORCH=0 \
	    TEST_WRAP="$(VALGRIND)" memcheck-run
memcheck-run: $(C_TESTS)
	@mkdir -p $(B)/valgrind
	@for t in $(C_TESTS); do \
	    printf '#!/bin/sh\nexec %s %s "$$@"\n' "$(TEST_WRAP)" "$$t" > $(B)/valgrind/$${t##*/}; \
	    chmod +x $(B)/valgrind/$${t##*/}; \
	done
	@tests/run.sh $(patsubst $(B)/tests/%,$(B)/valgrind/%,$(C_TESTS))

# libFuzzer targets: every tests/fuzz/fuzz_*.c, linked with the library's C sources built by
# clang with ASan and UBSan (and fault injection, which fuzz_api drives) into build/fuzz/.
# `make fuzz-run FUZZ_SECONDS=N` runs each for N seconds on its seeds in tests/fuzz/corpus/NAME
# (NAME = the file name without fuzz_), keeping what it finds in build/fuzz/corpus/NAME.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := $(B)/fuzz
FUZZ_SAN     := -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all \
                -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -DDEISSN_FAULT_INJECTION
FUZZERS      := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_OBJ     := $(patsubst lib/%.c,$(FUZZ_DIR)/obj/%.o,$(LIB_SRC))
fuzz: $(FUZZERS)
$(FUZZ_DIR)/obj/%.o: lib/%.c include/deissn.h $(LIB_HDR) | $(FUZZ_DIR)/obj
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer-no-link,address,undefined \
	    $(LIB_CFLAGS) -c $< -o $@
$(FUZZ_DIR)/libdeissn_fuzz.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $(FUZZ_OBJ)
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libdeissn_fuzz.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer,address,undefined -std=c11 $(WARN) \
	    -D_POSIX_C_SOURCE=200809L -Iinclude -Ilib $< -o $@ $(FUZZ_DIR)/libdeissn_fuzz.a -lz -lm
$(FUZZ_DIR)/obj:
	mkdir -p $@
# `make fuzz-seeds` renews the seeds of fuzz_reference (tests/fuzz/gen_reference.c), keeping
# its regress-* inputs (failures the fuzzer found); the other corpora were written by hand.
$(FUZZ_DIR)/gen_reference: tests/fuzz/gen_reference.c tests/fuzz/reference_model.h $(LIB_INTERNAL)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $< -o $@ $(LIB_INTERNAL) $(LIB_LIBS)
fuzz-seeds: $(FUZZ_DIR)/gen_reference
	mkdir -p tests/fuzz/corpus/reference
	find tests/fuzz/corpus/reference -type f ! -name 'regress-*' -delete
	$< tests/fuzz/corpus/reference
# FUZZ_RUNS=N instead of FUZZ_SECONDS makes a run reproducible (CI): same seed, same inputs.
FUZZ_SEED ?= 1
fuzz-run: fuzz
	@set -e; for f in $(FUZZERS); do \
	    name=$${f##*/fuzz_}; seeds=tests/fuzz/corpus/$$name; \
	    mkdir -p $(FUZZ_DIR)/corpus/$$name; \
	    echo "== $${f##*/}: $(if $(FUZZ_RUNS),$(FUZZ_RUNS) runs,$(FUZZ_SECONDS) s), seed $(FUZZ_SEED)"; \
	    $$f $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS)) -seed=$(FUZZ_SEED) \
	        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus/$$name \
	        $$( [ -d $$seeds ] && echo $$seeds ) 2>&1 \
	        | grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==|SUMMARY|INFO: seed)|ERROR|[Cc]rash|deadly' \
	        || true; \
	    [ -z "$$(ls $(FUZZ_DIR)/crash-* $(FUZZ_DIR)/leak-* $(FUZZ_DIR)/timeout-* $(FUZZ_DIR)/oom-* 2>/dev/null)" ] \
	        || { echo "$${f##*/}: found a failing input (in $(FUZZ_DIR)/)"; exit 1; }; \
	done

# ABI: abi/libdeissn.so.0.abi describes the public API (types reachable from include/) of the
# WITH_TORCH=0 build (the shim adds no public symbol or type). abidiff's exit status is a bit
# mask: 1 error, 2 usage error, 4 ABI changed, 8 incompatible change (a symbol removed).
# abidiff sets only 4 for a changed or grown struct, so abi-check runs it with
# --no-added-syms, where new functions (and new types only they use) leave the status 0, and
# fails on any other bit: a removed symbol (8) or a changed type (4).
ABIDW := abidw --headers-dir include --drop-private-types --no-show-locs --no-corpus-path
ABI_LIB = build-notorch/lib/libdeissn.so.$(VERSION)
abi-baseline:
	@$(MAKE) --no-print-directory B=build-notorch WITH_TORCH=0 lib
	@mkdir -p abi
	$(ABIDW) --out-file abi/$(SONAME).abi $(ABI_LIB)
abi-check:
	@$(MAKE) --no-print-directory B=build-notorch WITH_TORCH=0 lib
	@$(ABIDW) --out-file build-notorch/$(SONAME).abi $(ABI_LIB)
	@rc=0; abidiff --no-added-syms --no-show-locs --suppressions abi/appended-fields.suppr \
	    abi/$(SONAME).abi build-notorch/$(SONAME).abi \
	    || rc=$$?; \
	if [ $$rc -ne 0 ]; then \
	    echo "abi-check: FAILED (abidiff status $$rc: $$( [ $$((rc & 8)) -ne 0 ] && \
	        echo 'incompatible change' || echo 'changed types or an error'))." \
	        "The ABI of $(SONAME) must only grow. If the change is intended, bump SOVERSION" \
	        "(or, before the first release, accept it with make abi-baseline)."; exit 1; \
	fi; \
	rc=0; abidiff --no-show-locs abi/$(SONAME).abi build-notorch/$(SONAME).abi > /dev/null \
	    || rc=$$?; \
	if [ $$rc -eq 0 ]; then echo "abi-check: ABI unchanged"; \
	else echo "abi-check: compatible additions only (refresh the baseline: make abi-baseline)"; fi

# docs/symbols.md: every exported symbol and the version it appeared in.
symbols-md: lib
	tools/gen-symbols-md.sh $(LIB)

# docs/img/r_tau.png: r(tau) of the reference tables and, once it exists, the shipped model's,
# exported by deissn-calibrate --csv (tools/plot_tables.py).
.PHONY: plots
plots: $(B)/bin/deissn-calibrate
	$(PYTHON) tools/plot_tables.py

# ---- benchmarks (numbers and ratios, not pass/fail) ----------------------------------------
$(B)/bench/bench_%: bench/bench_%.c include/deissn.h $(LIB)
	@mkdir -p $(B)/bench
	$(CC) $(CFLAGS) $(APP_CFLAGS) $< -o $@ -L$(B)/lib -Wl,-rpath,$(CURDIR)/$(B)/lib -ldeissn -lm

# docs/benchmarks.md: the C step/setup benchmark, then bench/bench.py's table of ratios.
# bench-smoke runs the same code with tiny repetition counts (CI, < 60 s).
.PHONY: bench-smoke eval eval-smoke eval-classifier
bench: $(B)/bench/bench_step
	$(B)/bench/bench_step
	$(PYTHON) bench/bench.py
bench-smoke: $(B)/bench/bench_step
	$(B)/bench/bench_step 3
	$(PYTHON) bench/bench.py --smoke

# ---- the shipped model's table: r(tau) and the plans tuned on it (docs/tuning.md) ---------
# Not run by `make check` (about 10 min on one core); the result is committed.
.PHONY: shipped-table
shipped-table: $(B)/bin/deissn-calibrate
	$(B)/bin/deissn-calibrate --model models/fmnist_unet.pt --out models/fmnist_unet.dsn \
	    --metadata "the shipped model's table (make shipped-table)" 2>&1 | tee models/fmnist_unet.tune.log

# ---- quality evaluation (docs/quality.md): RMSE and FD against NFE, plots in docs/img -------
# eval takes ~20 min on 2 cores for part 2 (ground truth cached in build/eval) and about 2 h
# on one core for part 1 (tools/eval/presets.sh); eval-smoke and eval-presets-smoke take
# ~2 min each (CI).
# eval-classifier retrains the feature network (tools/eval/fmnist_classifier.pt, committed).
eval: lib
	$(PYTHON) tools/eval/quality.py
	PYTHON=$(PYTHON) tools/eval/presets.sh
eval-smoke: lib
	$(PYTHON) tools/eval/quality.py --smoke
eval-classifier:
	$(PYTHON) tools/eval/train_classifier.py

# ---- presets: libdeissn's options vs DPM-Solver++ and UniPC (docs/presets.md; slow, not in CI)
.PHONY: eval-presets eval-presets-smoke
eval-presets: lib
	PYTHON=$(PYTHON) tools/eval/presets.sh
eval-presets-smoke: lib
	SMOKE=1 PYTHON=$(PYTHON) tools/eval/presets.sh

# ---- tuned plans against DPM-Solver++ and UniPC (docs/quality.md part 3; slow, not in CI) ---
# The shipped model's table is `make shipped-table`'s; the other two models are tuned here
# once (order-only: a committed table is not retuned because of a checkout's timestamps).
# About 40 min on one core for the RMSE part (1249 + 974 + 159 s measured: 1024, 1024 and
# 16384 samples) and 20 min for the FD part (649 + 567 s, mostly the exact solutions of its
# 1000 samples; `evaluate.py --model M --fd-only` redoes only it), plus the tuning of a
# missing table (466 s, 23 s).
.PHONY: eval-tuned
TUNED_EVAL_TABLES := tools/tune/fmnist_small_tuned.dsn tools/tune/gmm_cosine_tuned.dsn
eval-tuned: lib $(EXAMPLES) | $(TUNED_EVAL_TABLES)
	$(PYTHON) tools/tune/evaluate.py --model fmnist
	$(PYTHON) tools/tune/evaluate.py --model fmnist-small
	$(PYTHON) tools/tune/evaluate.py --model gmm-cosine
	$(PYTHON) tools/tune/evaluate.py --report
tools/tune/gmm_cosine.pt: | lib
	$(PYTHON) tools/tune/make_gmm_model.py --out $@
tools/tune/fmnist_small_tuned.dsn: | $(B)/bin/deissn-calibrate
	$(B)/bin/deissn-calibrate --model tools/eval/fmnist_small.pt --out $@ --nfe 4-20 \
	    --metadata "fmnist_small tuned for the evaluation (make eval-tuned)" \
	    > tools/tune/fmnist_small_tuned.log 2>&1
tools/tune/gmm_cosine_tuned.dsn: | tools/tune/gmm_cosine.pt $(B)/bin/deissn-calibrate
	$(B)/bin/deissn-calibrate --model tools/tune/gmm_cosine.pt --out $@ --noise squaredcos_cap_v2 \
	    --time tau --shape 1,4,4 --nfe 4-20 \
	    --metadata "analytic GMM, cosine schedule (make eval-tuned)" \
	    > tools/tune/gmm_cosine_tuned.log 2>&1

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	    $(DESTDIR)$(BINDIR)
	install -m 644 include/deissn.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(LIB_REAL) $(PLUGINS) $(DESTDIR)$(LIBDIR)/
	ln -sf libdeissn.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libdeissn.so
	install -m 644 $(B)/pkgconfig/deissn.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -d $(DESTDIR)$(LIBDIR)/cmake/deissn
	install -m 644 $(CMAKE_FILES) $(DESTDIR)$(LIBDIR)/cmake/deissn/
	install -m 755 $(EXAMPLES) $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(DATADIR)/models
	install -m 644 models/fmnist_unet.pt models/fmnist_unet.dsn $(DESTDIR)$(DATADIR)/models/

uninstall:
	rm -rf $(DESTDIR)$(LIBDIR)/cmake/deissn
	rm -f $(DESTDIR)$(INCLUDEDIR)/deissn.h $(DESTDIR)$(LIBDIR)/libdeissn.so* \
	    $(DESTDIR)$(LIBDIR)/libdeissn-*.so.* \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/deissn.pc $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(EXAMPLES)))
	rm -rf $(DESTDIR)$(DATADIR)

# --one-file-system: never into a mount that a killed check-debian13 left under build/debian13.
clean:
	rm -rf --one-file-system $(B) build-asan build-ubsan build-tsan build-notorch
