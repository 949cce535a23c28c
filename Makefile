# volume-reaper: the two commands for a fresh machine are `make demo` and `make test`.
PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift
DEMO_POLICY ?= policies/default.yaml

.PHONY: all deps build release demo test bench bench-plan install uninstall clean

all: build

deps:
	./scripts/install-deps

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Builds a realistic example node in a temporary directory and prints the plan
# (a dry run: nothing is deleted). Never touches /var/lib/kubelet.
demo: release
	@set -e; node=$$(mktemp -d /tmp/volume-reaper-demo-XXXXXX); \
	trap './examples/make-example-node --cleanup "$$node"' EXIT; \
	rmdir "$$node"; ./examples/make-example-node "$$node"; \
	echo; echo "$$ volume-reaper --plan --kubelet-root $$node/kubelet --manifests $$node/manifests --policy $(DEMO_POLICY)"; \
	$$($(SWIFT) build -c release --show-bin-path)/volume-reaper --plan --kubelet-root "$$node/kubelet" \
	    --manifests "$$node/manifests" --policy $(DEMO_POLICY) --state-dir "$$node/state" --log-target stderr

test: deps
	./scripts/ensure-journald
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: release
	./bench/plan-vs-find

clean:
	rm -rf .build
