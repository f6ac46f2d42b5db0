# Pivota: one GNU Makefile, no recursion.  Output goes to build/$(BUILD)/.
#   make            build everything (debug)
#   make run        build, start PostgreSQL + lighttpd + worker, print the demo
#   make check      install what is missing (as root), build, run every test
#   make bench      wrk benchmarks on loopback (BUILD=release by default)
#   make lint       banned functions, self-contained headers, clang-format
#   make install PREFIX=/usr/local DESTDIR=
# BUILD is debug, release or asan.  Local overrides go in Makefile.local.

BUILD	?= debug
PREFIX	?= /usr/local
DESTDIR	?=
-include Makefile.local

O	:= build/$(BUILD)
CC	?= cc
PKGS	:= libpq json-c libcurl openssl nettle fcgi

WARN	= -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	  -Wmissing-prototypes -Wold-style-definition -Wformat=2 \
	  -Wvla -Wpointer-arith -Wcast-qual -Wundef
STD	= -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
CFLAGS_debug	= -O0 -g
CFLAGS_release	= -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
CFLAGS_asan	= -O1 -g -fno-omit-frame-pointer \
		  -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS_release	= -Wl,-z,relro,-z,now
LDFLAGS_asan	= -fsanitize=address,undefined

PKG_CFLAGS	:= $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl is not linked into the library or the programs: pv_upstream.c
# loads it (dlopen) on the first outbound call, so processes that never
# call a provider never map it and its twenty dependencies.  Only its
# headers and its soname are used here.  The tests' HTTP client links it.
PKG_LIBS	:= $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null)
CURL_LIBS	:= $(shell pkg-config --libs libcurl 2>/dev/null)
ifndef CURL_SONAME
CURL_SONAME	:= $(or $(shell objdump -p \
		   "$$(pkg-config --variable=libdir libcurl)/libcurl.so" \
		   2>/dev/null | awk '$$1 == "SONAME" { print $$2 }'),libcurl.so.4)
endif
CHECK_CFLAGS	:= $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS	:= $(shell pkg-config --libs check 2>/dev/null)

ALL_CFLAGS	= $(STD) $(WARN) $(CFLAGS_$(BUILD)) -Ilib $(PKG_CFLAGS) \
		  -DPV_CURL_SONAME='"$(CURL_SONAME)"' -MMD -MP $(CFLAGS)
ALL_LDFLAGS	= $(LDFLAGS_$(BUILD)) $(LDFLAGS)
RPATH		= -Wl,-rpath,'$$ORIGIN/../lib:$$ORIGIN/../../lib'

LIB_SRC	:= $(wildcard lib/*.c)
LIB_OBJ	:= $(LIB_SRC:%.c=$(O)/pic/%.o)
TLIB_OBJ := $(LIB_SRC:%.c=$(O)/test/%.o)
SOLIB	:= $(O)/lib/libpivota-core.so
ALIB	:= $(O)/lib/libpivota-core.a
TLIB	:= $(O)/lib/libpivota-core-test.a

CGI_SRC	:= $(wildcard cgi-bin/*.c)
CGI	:= $(CGI_SRC:cgi-bin/%.c=$(O)/cgi-bin/%)
BIN_SRC	:= $(wildcard bin/*.c)
BIN	:= $(BIN_SRC:bin/%.c=$(O)/bin/%)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
DB_SRC	:= $(wildcard tests/db/test_*.c)
INT_SRC	:= $(wildcard tests/integration/test_*.c)
SUPPORT_SRC := $(filter-out tests/support/check_main.c,$(wildcard tests/support/*.c))
UNIT_T	:= $(O)/tests/unit/unit_tests
DB_T	:= $(O)/tests/db/db_tests
INT_T	:= $(O)/tests/integration/integration_tests
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ	:= $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 60
FUZZ_CC	?= clang
FUZZ_CFLAGS = $(STD) $(WARN) -g -O1 -fno-omit-frame-pointer \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  -Ilib $(PKG_CFLAGS) -DPV_CURL_SONAME='"$(CURL_SONAME)"'
BENCH_SRC := $(wildcard bench/*.c)
BENCH	:= $(BENCH_SRC:bench/%.c=$(O)/bench/%)

.PHONY: all run check check-unit check-db check-leak check-integration deps \
	check-browser bench lint \
	fuzz install clean tests
.DEFAULT_GOAL := all

all: $(SOLIB) $(ALIB) $(CGI) $(BIN)

tests: $(UNIT_T) $(DB_T) $(INT_T)

$(O)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -c $< -o $@

$(O)/test/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DPV_TESTING -fPIC -c $< -o $@

$(O)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIE -c $< -o $@

$(O)/tobj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DPV_TESTING $(CHECK_CFLAGS) -Itests/support \
	    -I$(dir $@) -c $< -o $@

$(SOLIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libpivota-core.so $(ALL_LDFLAGS) -o $@ \
	    $(LIB_OBJ) $(PKG_LIBS)

$(ALIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $(LIB_OBJ)

$(TLIB): $(TLIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $(TLIB_OBJ)

$(O)/cgi-bin/%: $(O)/obj/cgi-bin/%.o $(SOLIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -pie $(RPATH) -o $@ $< -L$(O)/lib \
	    -lpivota-core $(PKG_LIBS)

$(O)/bin/%: $(O)/obj/bin/%.o $(SOLIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -pie $(RPATH) -o $@ $< -L$(O)/lib \
	    -lpivota-core $(PKG_LIBS)

# Bare baselines for `make bench`: plain libfcgi, no libpivota-core.
$(O)/bench/%: $(O)/obj/bench/%.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -pie -o $@ $< $(PKG_LIBS)

# Each test directory gets a generated list of its suites: test_foo.c
# defines foo_suite().  No shared file to edit when a suite is added.
define suites
	@mkdir -p $(@D)
	@printf '%s\n' $(patsubst test_%.c,'PV_SUITE(%)',$(notdir $(1))) \
	    > $@.tmp && (cmp -s $@.tmp $@ || mv $@.tmp $@) && rm -f $@.tmp
endef
$(O)/tobj/tests/unit/suites.h: FORCE
	$(call suites,$(UNIT_SRC))
$(O)/tobj/tests/db/suites.h: FORCE
	$(call suites,$(DB_SRC))
$(O)/tobj/tests/integration/suites.h: FORCE
	$(call suites,$(INT_SRC))
FORCE:

$(O)/tobj/tests/unit/main.o: $(O)/tobj/tests/unit/suites.h
$(O)/tobj/tests/db/main.o: $(O)/tobj/tests/db/suites.h
$(O)/tobj/tests/integration/main.o: $(O)/tobj/tests/integration/suites.h
$(UNIT_SRC:%.c=$(O)/tobj/%.o): $(O)/tobj/tests/unit/suites.h
$(DB_SRC:%.c=$(O)/tobj/%.o): $(O)/tobj/tests/db/suites.h
$(INT_SRC:%.c=$(O)/tobj/%.o): $(O)/tobj/tests/integration/suites.h

SUPPORT_OBJ := $(SUPPORT_SRC:%.c=$(O)/tobj/%.o)
TEST_LIBS = $(TLIB) $(PKG_LIBS) $(CURL_LIBS) $(CHECK_LIBS) -lpthread

$(UNIT_T): $(O)/tobj/tests/unit/main.o $(UNIT_SRC:%.c=$(O)/tobj/%.o) \
	    $(SUPPORT_OBJ) $(TLIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(TEST_LIBS)

$(DB_T): $(O)/tobj/tests/db/main.o $(DB_SRC:%.c=$(O)/tobj/%.o) \
	    $(SUPPORT_OBJ) $(TLIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(TEST_LIBS)

$(INT_T): $(O)/tobj/tests/integration/main.o \
	    $(INT_SRC:%.c=$(O)/tobj/%.o) $(SUPPORT_OBJ) $(TLIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(TEST_LIBS)

$(O)/tobj/tests/%/main.o: tests/support/check_main.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DPV_TESTING $(CHECK_CFLAGS) -Itests/support \
	    -I$(dir $@) -c $< -o $@

deps:
	@scripts/deps.sh
	@scripts/node-deps.sh

# The checks.  check-db and check-integration start their own
# throwaway PostgreSQL (and web servers) and remove them afterwards.
check: deps
	@$(MAKE) --no-print-directory all tests
	@# -O2 finds warnings -O0 cannot (maybe-uninitialized): build it too.
	@$(MAKE) --no-print-directory BUILD=release all
	@$(MAKE) --no-print-directory check-unit check-db check-leak \
	    check-integration check-browser

check-unit: $(UNIT_T)
	$(UNIT_T)

check-db: all $(DB_T)
	tests/db/run.sh $(O)

# One persistent process per program under valgrind, thousands of mixed
# requests, SIGTERM: no invalid access, no leak.  Not with BUILD=asan.
check-leak: all
ifeq ($(BUILD),asan)
	@echo "check-leak: skipped under BUILD=asan (ASan checks leaks itself)"
else
	tests/leak/run.sh $(O)
endif

check-integration: all $(INT_T) $(BENCH)
	tests/integration/run.sh $(O)

# The dashboard end to end in headless Chromium; screenshots in
# build/browser/.
check-browser: all
	tests/browser/run.sh $(O)

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh $(O)

bench: deps
	@$(MAKE) --no-print-directory BUILD=release all $(subst $(O),build/release,$(BENCH))
	@scripts/bench.sh build/release

lint:
	@scripts/lint.sh

# libFuzzer harnesses, each linked with the whole library built by
# clang with ASan and UBSan; `make fuzz` runs each FUZZ_SECONDS.
build/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(wildcard lib/*.h tests/fuzz/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(PKG_LIBS)

fuzz: deps $(FUZZ)
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/libexec/pivota \
	    $(DESTDIR)$(PREFIX)/share/pivota/migrations \
	    $(DESTDIR)$(PREFIX)/share/pivota/templates \
	    $(DESTDIR)$(PREFIX)/share/pivota/www \
	    $(DESTDIR)$(PREFIX)/include/pivota
	install -m 755 $(SOLIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(ALIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 lib/*.h $(DESTDIR)$(PREFIX)/include/pivota/
	install -m 755 $(CGI) $(DESTDIR)$(PREFIX)/libexec/pivota/
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 migrations/*.sql $(DESTDIR)$(PREFIX)/share/pivota/migrations/
	cp -R templates/. $(DESTDIR)$(PREFIX)/share/pivota/templates/
	cp -R www/. $(DESTDIR)$(PREFIX)/share/pivota/www/

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
