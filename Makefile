# lockscope build entry points. `make help` lists them.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: help build test test-loaded demo generate lint bench-jfr bench-offcpu bench-sniff bench-capture bench-merge

help:
	@echo "build     build bin/lockscope"
	@echo "test      set up the machine (root, Debian) and run every test, as CI does"
	@echo "test-loaded  the same three times beside a CPU hog (stress-ng --cpu 2)"
	@echo "demo      set up, start the demo broker and its load, show produce latency"
	@echo "generate  regenerate generated code (bpf2go output under bpf/ and internal/offcpu)"
	@echo "lint      gofmt -l and go vet"
	@echo "bench-*   benchmarks: bench-jfr, bench-offcpu, bench-sniff, bench-capture, bench-merge (root, quiet machine)"

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lockscope ./cmd/lockscope

test:
	bash scripts/test.sh

test-loaded:
	bash scripts/test-loaded.sh

demo:
	bash scripts/demo.sh

generate:
	$(GO) generate ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench-jfr:
	bash scripts/bench-jfr.sh

bench-offcpu:
	bash scripts/bench-offcpu.sh

bench-sniff:
	bash scripts/bench-sniff.sh

bench-capture:
	bash scripts/bench-capture.sh

bench-merge:
	bash scripts/bench-merge.sh
