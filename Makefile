# netmeter — see README.md. Every target needs only Go, except `generate`
# (clang 14 + llvm: `make deps-bpf`).
GO       ?= go
PKGS     ?= ./...
BIN      ?= bin/netmeter
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Privileged tests fail instead of skipping when run as root.
ifeq ($(shell id -u),0)
export NETMETER_REQUIRE_PRIVILEGED ?= 1
endif

.PHONY: build run test test-deps generate check-bpf deps-bpf lint bench bench-once fuzz vmlinux

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/netmeter

# The live view; needs root for --netns and (later) the eBPF engine.
run: build
	./$(BIN) $(ARGS)

# As root the privileged tests run real Docker and Podman containers: install
# them first (Debian packages; idempotent).
test: test-deps
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

test-deps:
	@if [ "$$(id -u)" = 0 ]; then bash .ci/containers-setup.sh; fi

deps-bpf:
	@command -v clang >/dev/null && command -v llvm-strip >/dev/null && command -v clang-format-14 >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev clang-format-14; }

# Regenerate BPF objects and Go bindings (committed; CI checks they are fresh).
generate: deps-bpf
	$(GO) generate $(PKGS)

# Fail if committed BPF objects are stale or bpf/*.c is not clang-formatted.
check-bpf: deps-bpf
	bash bpf/check-generated.sh

# Refresh bpf/vmlinux.h from the running kernel's BTF.
vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h

lint:
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

# Every benchmark once: proves they run (CI).
bench-once:
	$(GO) test -run='^$$' -bench=. -benchtime=1x $(PKGS)

FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParseProcNetDev -fuzztime=$(FUZZTIME) ./internal/source/iface
	$(GO) test -run='^$$' -fuzz=FuzzDelta -fuzztime=$(FUZZTIME) ./internal/counter
