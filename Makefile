# lockscope build entry points. `make help` lists them.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: help build test demo generate lint

help:
	@echo "build     build bin/lockscope"
	@echo "test      set up the machine (root, Debian) and run every test, as CI does"
	@echo "demo      set up, start the demo broker and its load, show produce latency"
	@echo "generate  regenerate generated code (bpf2go output under bpf/ and internal/offcpu)"
	@echo "lint      gofmt -l and go vet"

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lockscope ./cmd/lockscope

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

generate:
	$(GO) generate ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
