# sked - one GNU Makefile.
#
#   make                      bin/sked (and the test programs on `make test`)
#   make SANITIZE=address,undefined
#                             the same under ASan+UBSan, in build/san/ and bin/san/
#   make test                 every test; ends with "N passed, N failed"
#   make fuzz                 libFuzzer targets (clang) in bin/fuzz/
#   make bench                benchmark programs in bin/
#   make run                  install missing packages, build, start sked server
#   make install PREFIX=/usr/local

CC      ?= cc
PREFIX  ?= /usr/local
PKGS    := libmicrohttpd jansson sqlite3 libcurl libpq librabbitmq
CSTD    := -std=gnu11
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
OPT     ?= -O2 -g
DEPFLAGS = -MMD -MP

ifeq ($(SANITIZE),)
  VARIANT := release
  BIN     := bin
  SANFLAGS :=
else
  VARIANT := san
  BIN     := bin/san
  SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
  OPT     := -O1 -g
endif

OBJDIR   := build/$(VARIANT)
CPPFLAGS += -Isrc -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS))
CFLAGS   += $(CSTD) $(WARN) $(OPT) $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lpthread -lm

# Library sources: everything under src/ but main.c.  One file per job.
LIB_SRCS := $(sort $(wildcard src/core/*.c src/time/*.c src/model/*.c \
                             src/store/*.c src/queue/*.c src/sched/*.c \
                             src/worker/*.c src/api/*.c src/cli/*.c))
# Migrations are embedded: sql/<backend>/NNNN_*.sql -> one generated .c each.
SQL_GEN  := $(OBJDIR)/gen/sql_sqlite.c $(OBJDIR)/gen/sql_postgres.c
LIB_OBJS := $(LIB_SRCS:%.c=$(OBJDIR)/%.o) $(SQL_GEN:.c=.o)
MAIN_OBJ := $(OBJDIR)/src/main.o

UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BIN)/tests/%)
BACKEND_SRCS := $(sort $(wildcard tests/backend/test_*.c))
UNIT_BINS  += $(BACKEND_SRCS:tests/backend/%.c=$(BIN)/tests/backend_%)
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=bin/fuzz/%)
BENCH_SRCS := $(sort $(wildcard bench/bench_*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=bin/%)

.PHONY: all test unit-tests fuzz bench run install clean deps
.SECONDARY:
all: $(BIN)/sked

$(OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(OBJDIR)/gen/sql_%.c: $(wildcard sql/*/*.sql) scripts/embed-sql
	@mkdir -p $(dir $@)
	scripts/embed-sql $* sql/$* $@

$(OBJDIR)/gen/%.o: $(OBJDIR)/gen/%.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(OBJDIR)/libsked.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/sked: $(MAIN_OBJ) $(OBJDIR)/libsked.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/tests/%: $(OBJDIR)/tests/unit/%.o $(OBJDIR)/libsked.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

# Backend conformance suites: tests/backend/test_*.c, run like unit tests.
$(BIN)/tests/backend_%: $(OBJDIR)/tests/backend/%.o $(OBJDIR)/libsked.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

unit-tests: $(UNIT_BINS)

# Tests run from the source tree; BIN tells the scripts which build to use.
test: deps $(BIN)/sked $(UNIT_BINS)
	@BIN=$(BIN) tests/run

# libFuzzer targets need clang; they build their own objects.
FUZZ_CC     ?= clang
FUZZ_FLAGS  := $(CSTD) -Isrc -Itests/unit -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
bin/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(SQL_GEN)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(shell pkg-config --cflags $(PKGS)) -o $@ $^ $(shell pkg-config --libs $(PKGS)) -lpthread -lm

fuzz: $(FUZZ_BINS)

bin/bench_%: $(OBJDIR)/bench/bench_%.o $(OBJDIR)/libsked.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: $(BENCH_BINS)

deps:
	@scripts/install-deps

# The server on the embedded store in ./sked-data; Ctrl-C stops it cleanly.
run: deps $(BIN)/sked
	@echo "starting sked server (data in ./sked-data; Ctrl-C to stop)"
	@exec $(BIN)/sked server --data ./sked-data

install: $(BIN)/sked
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN)/sked $(DESTDIR)$(PREFIX)/bin/sked

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
