# Tessera: the two commands of the README, and a few conveniences.
#   make demo   installs missing packages, builds, runs the demo
#   make test   installs missing packages, builds (normal and ASan+UBSan), runs every test
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build demo test bench format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@$(BUILD)/bin/tessera demo

test: deps
	@bash scripts/test.sh

bench: build
	@bench/run

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-asan build-fuzz
