# libdeissn - build, test, install.  `make help` lists the targets.
#
# Variables you may set:
#   WITH_TORCH=1|0   build the libtorch shim (TorchScript models). Default: 1 when libtorch's
#                    headers are found under TORCH_DIR.
#   TORCH_DIR        where libtorch lives: /usr (Debian's libtorch-dev, the default), the
#                    unpacked official libtorch zip, or a pip wheel's site-packages/torch.
#   PYTHON           the interpreter with torch/numpy (Debian's /usr/bin/python3).
#   PREFIX, DESTDIR  for `make install`.

VERSION    := 0.1.0
SOVERSION  := 0
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
DESTDIR    ?=
PYTHON     ?= /usr/bin/python3

CC       ?= cc
CXX      ?= g++
OPT      ?= -O2
WARN     := -Wall -Wextra -Wpedantic
CFLAGS   ?= $(OPT) -g
CXXFLAGS ?= $(OPT) -g
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
LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(patsubst lib/%.c,$(B)/obj/%.o,$(LIB_SRC))
SHIM_OBJ :=
LINK     := $(CC)
LIB_LIBS := -lz -lm
ifeq ($(WITH_TORCH),1)
SHIM_OBJ := $(B)/obj/torch_model.o
LIB_CFLAGS += -DDEISSN_WITH_TORCH
LINK     := $(CXX)
LIB_LIBS += $(TORCH_LIBS)
endif

SONAME   := libdeissn.so.$(SOVERSION)
LIB_REAL := $(B)/lib/libdeissn.so.$(VERSION)
LIB      := $(B)/lib/libdeissn.so
# Tests that reach inside the library link its objects statically.
LIB_INTERNAL := $(B)/lib/libdeissn_internal.a

EXAMPLES := $(B)/bin/deissn-inspect $(B)/bin/deissn-sample
DATADIR  ?= $(PREFIX)/share/deissn
APP_CFLAGS := -std=c11 $(WARN) -D_POSIX_C_SOURCE=200809L -Iinclude
APP_LDFLAGS := -L$(B)/lib -Wl,-rpath,'$$ORIGIN/../lib'

.PHONY: all lib examples check test-build install uninstall clean deps help demo FORCE
all: lib examples $(B)/pkgconfig/deissn.pc

help:
	@echo "make            build build/lib/libdeissn.so, the tools in build/bin, deissn.pc"
	@echo "make deps       install the Debian packages the build and tests need (as root)"
	@echo "make check      build and run every test"
	@echo "make install    install to DESTDIR/PREFIX (default /usr/local)"
	@echo "WITH_TORCH=$(WITH_TORCH) TORCH_DIR=$(TORCH_DIR) TORCH_LIBDIR=$(TORCH_LIBDIR)"

deps:
	tools/install-deps.sh

lib: $(LIB)

$(B)/obj/%.o: lib/%.c include/deissn.h $(wildcard lib/*.h) | $(B)/obj
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -DDEISSN_BUILDING_LIBRARY -c $< -o $@

$(B)/obj/torch_model.o: shim/torch_model.cpp include/deissn.h lib/model.h lib/internal.h | $(B)/obj
	$(CXX) $(CXXFLAGS) $(TORCH_CXXFLAGS) -DDEISSN_WITH_TORCH -DDEISSN_BUILDING_LIBRARY -c $< -o $@

# Objects depend on the configuration, so switching WITH_TORCH rebuilds them; deissn.pc
# depends on the install directories.
$(LIB_OBJ) $(SHIM_OBJ): $(B)/config.mk
$(B)/config.mk: FORCE | $(B)/obj
	@echo "WITH_TORCH=$(WITH_TORCH) TORCH_DIR=$(TORCH_DIR)" > $@.tmp
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
$(B)/prefix.mk: FORCE | $(B)/obj
	@echo "PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR) DATADIR=$(DATADIR)" > $@.tmp
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
FORCE:

$(LIB_REAL): $(LIB_OBJ) $(SHIM_OBJ) lib/deissn.map | $(B)/lib
	$(LINK) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/deissn.map \
	    -Wl,--no-undefined -o $@ $(LIB_OBJ) $(SHIM_OBJ) $(LIB_LIBS)

$(LIB): $(LIB_REAL)
	ln -sf libdeissn.so.$(VERSION) $(B)/lib/$(SONAME)
	ln -sf $(SONAME) $@

$(LIB_INTERNAL): $(LIB_OBJ) $(SHIM_OBJ) | $(B)/lib
	rm -f $@ && ar rcs $@ $(LIB_OBJ) $(SHIM_OBJ)

examples: $(EXAMPLES)

$(B)/bin/deissn-%: examples/%.c include/deissn.h $(LIB) | $(B)/bin
	$(CC) $(CFLAGS) $(APP_CFLAGS) $< -o $@ $(APP_LDFLAGS) -ldeissn -lm

$(B)/bin/deissn-sample: examples/sample.c include/deissn.h $(LIB) $(B)/prefix.mk | $(B)/bin
	$(CC) $(CFLAGS) $(APP_CFLAGS) -DDEISSN_DATADIR='"$(DATADIR)"' $< -o $@ $(APP_LDFLAGS) \
	    -ldeissn -lpng -lm

$(B)/pkgconfig/deissn.pc: pkgconfig/deissn.pc.in $(B)/prefix.mk | $(B)/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
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
PUBLIC_TESTS := $(B)/tests/test_api $(B)/tests/test_torch
$(filter-out $(PUBLIC_TESTS),$(C_TESTS)): $(B)/tests/test_%: tests/test_%.c tests/testlib.h \
        $(LIB_INTERNAL) | $(B)/tests
	$(LINK) $(CFLAGS) $(TEST_CFLAGS) -x c $< -x none -o $@ $(LIB_INTERNAL) -lcjson $(LIB_LIBS) \
	    -lpthread

$(filter $(PUBLIC_TESTS),$(C_TESTS)): $(B)/tests/test_%: tests/test_%.c tests/testlib.h $(LIB) \
        | $(B)/tests
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $< -o $@ -L$(B)/lib -Wl,-rpath,$(CURDIR)/$(B)/lib -ldeissn \
	    -lm -lpthread

test-build: all $(C_TESTS)

check: test-build
	@tests/run.sh $(C_TESTS) tests/test_build.sh tests/test_sample.sh

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	    $(DESTDIR)$(BINDIR)
	install -m 644 include/deissn.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(LIB_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sf libdeissn.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libdeissn.so
	install -m 644 $(B)/pkgconfig/deissn.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 755 $(EXAMPLES) $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(DATADIR)/models
	install -m 644 models/fmnist_unet.pt models/fmnist_unet_table.pt $(DESTDIR)$(DATADIR)/models/

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/deissn.h $(DESTDIR)$(LIBDIR)/libdeissn.so* \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/deissn.pc $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(EXAMPLES)))
	rm -rf $(DESTDIR)$(DATADIR)

clean:
	rm -rf $(B)
