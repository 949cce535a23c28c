# volume-reaper: the two commands for a fresh machine are `make demo` and `make test`.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
CATALOGDIR ?= $(PREFIX)/lib/systemd/catalog
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
SWIFT ?= swift
DEMO_POLICY ?= policies/default.yaml
# One version for the binary (Sources/ReaperCore/Version.swift, kept equal by
# a test), the Debian package and the image.
VERSION := $(shell tr -d '[:space:]' < VERSION)
# Packages and image archives land here (gitignored).
DIST ?= dist

.PHONY: all deps build release demo test kubelet-restart-soak bench bench-plan prometheus-scrape fuzz fuzz-build install install-files uninstall clean \
    deb deb-test image image-test man prometheusrule

all: build

deps:
	./scripts/install-deps

build: deps
	$(SWIFT) build

# The Swift runtime and Foundation are linked in: nodes have no Swift
# toolchain, and one binary maps fewer pages than a dozen shared libraries.
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

# Builds a realistic example node in a temporary directory and prints the plan
# (a dry run: nothing is deleted). Never touches /var/lib/kubelet.
demo: release
	@set -e; node=$$(mktemp -d /tmp/volume-reaper-demo-XXXXXX); \
	trap './examples/make-example-node --cleanup "$$node"' EXIT; \
	rmdir "$$node"; ./examples/make-example-node "$$node"; \
	echo; echo "$$ volume-reaper --plan --kubelet-root $$node/kubelet --manifests $$node/manifests --policy $(DEMO_POLICY)"; \
	$$($(SWIFT) build -c release --show-bin-path)/volume-reaper --plan --kubelet-root "$$node/kubelet" --cgroup-root "$$node/cgroup" \
	    --manifests "$$node/manifests" --policy $(DEMO_POLICY) --state-dir "$$node/state" --log-target stderr

# Two runs: the suites whose timers and sockets live on Swift's cooperative
# threads (as many as cores) run on their own, after the rest, whose
# child processes and waits may hold those threads on a 2-core machine.
TIMING_SUITES = ^(SocketAPITests\.|PodSourcesTests\.|ClusterAccessTests\.)
# The /healthz latency test times answers with curl while it walks 100k
# files: alone, so that neither its load nor the others' skews the other.
ALONE_SUITES = ^ReaperAgentTests\.PromptHealthTests
test: deps
	./scripts/ensure-journald
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip '$(TIMING_SUITES)' --skip '$(ALONE_SUITES)'
	$(SWIFT) test --skip-build --filter '$(TIMING_SUITES)'
	$(SWIFT) test --skip-build --filter '$(ALONE_SUITES)'

# Issue 18's kubelet-restart scenario at its full length: a daemon on the
# kubelet source against a stand-in that lists only static pods for ten
# minutes (make test runs it for 200 s).
kubelet-restart-soak: deps
	./scripts/ensure-journald
	$(SWIFT) build --build-tests
	KUBELET_RESTART_OUTAGE_SECONDS=600 $(SWIFT) test --skip-build --filter 'KubeletRestartTests'

# A real Prometheus on loopback scrapes the metrics listener of a daemon on an example node.
prometheus-scrape: deps
	$(SWIFT) build
	./bench/prometheus-scrape

# Every bench in turn; the rows of issue 22's goals table (bench/verdict.sh
# lines, each measured against its reference tool in the same run) are
# printed again together at the end. A bench that fails fails the target.
BENCHES = plan-vs-find once-vs-rm watch-scale watch-storm watch-latency reap-races orphan-races overflow-race \
    pressure-recovery steady-cost cycle-cost manifest-memory daemon-resources pod-watch api-cost

bench: release
	@summary=$$(mktemp /tmp/volume-reaper-bench-summary-XXXXXX); failed=; \
	for bench in $(BENCHES); do BENCH_SUMMARY=$$summary ./bench/$$bench || failed="$$failed $$bench"; done; \
	echo; echo "== issue 22's goals table, this run:"; cat "$$summary"; rm -f "$$summary"; \
	if [ -n "$$failed" ]; then echo "benches that failed:$$failed"; exit 1; fi

# libFuzzer harnesses (Fuzz/Harnesses, a package of their own so the main
# package never builds with sanitizers), instrumented and with AddressSanitizer.
# `make fuzz` runs each for FUZZ_SECONDS (default 600) seeded with Fuzz/corpus;
# findings land in Fuzz/findings/<harness>/ (gitignored). CI only replays the
# corpus (FuzzCorpusTests in `make test`).
FUZZ_SECONDS ?= 600
FUZZ_HARNESSES ?= manifest policy config mountinfo http url
FUZZ_FLAGS = -c release --package-path Fuzz/Harnesses -Xswiftc -sanitize=fuzzer,address \
    -Xswiftc -parse-as-library -Xcc -fsanitize=fuzzer-no-link,address

fuzz-build: deps
	$(SWIFT) build $(FUZZ_FLAGS)

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./Fuzz/run-fuzzers "$$($(SWIFT) build $(FUZZ_FLAGS) --show-bin-path)" $(FUZZ_HARNESSES)

# Installs the binary, the systemd units, the journal catalog, the man page and (unless
# present) the default config and policy under $(SYSCONFDIR)/volume-reaper.
# `install` builds the release binary first; `install-files` only copies, from
# BIN (default: the release build's binary), so tests can install a debug build.
install: release
	$(MAKE) install-files

BIN ?= $(shell $(SWIFT) build -c release --show-bin-path)/volume-reaper

install-files:
	@[ -x "$(BIN)" ] || { echo "no volume-reaper binary at $(BIN): run 'make release' or pass BIN=" >&2; exit 1; }
	install -D -m 0755 "$(BIN)" "$(DESTDIR)$(BINDIR)/volume-reaper"
	install -d -m 0755 "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(CATALOGDIR)" "$(DESTDIR)$(SYSCONFDIR)/volume-reaper"
	sed 's|/usr/local/bin/volume-reaper|$(BINDIR)/volume-reaper|; s|/etc/volume-reaper|$(SYSCONFDIR)/volume-reaper|g' \
	    packaging/systemd/volume-reaper.service > "$(DESTDIR)$(UNITDIR)/volume-reaper.service"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/volume-reaper.service"
	install -m 0644 packaging/systemd/volume-reaper.socket "$(DESTDIR)$(UNITDIR)/volume-reaper.socket"
	install -m 0644 packaging/journal/volume-reaper.catalog "$(DESTDIR)$(CATALOGDIR)/volume-reaper.catalog"
	install -D -m 0644 packaging/man/volume-reaper.8 "$(DESTDIR)$(MANDIR)/man8/volume-reaper.8"
	[ -e "$(DESTDIR)$(SYSCONFDIR)/volume-reaper/config.yaml" ] || { \
	    sed 's|/etc/volume-reaper|$(SYSCONFDIR)/volume-reaper|g' packaging/config/config.yaml > "$(DESTDIR)$(SYSCONFDIR)/volume-reaper/config.yaml" && \
	    chmod 0644 "$(DESTDIR)$(SYSCONFDIR)/volume-reaper/config.yaml"; }
	[ -e "$(DESTDIR)$(SYSCONFDIR)/volume-reaper/policy.yaml" ] || \
	    install -m 0644 policies/default.yaml "$(DESTDIR)$(SYSCONFDIR)/volume-reaper/policy.yaml"
	@echo "installed; then: systemctl daemon-reload && journalctl --update-catalog && systemctl enable --now volume-reaper.socket volume-reaper.service"

# Removes what install put down, but not the config, policy or state.
uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/volume-reaper" "$(DESTDIR)$(UNITDIR)/volume-reaper.service" \
	    "$(DESTDIR)$(UNITDIR)/volume-reaper.socket" "$(DESTDIR)$(CATALOGDIR)/volume-reaper.catalog" \
	    "$(DESTDIR)$(MANDIR)/man8/volume-reaper.8"
	@echo "kept $(SYSCONFDIR)/volume-reaper and /var/lib/volume-reaper; remove them by hand if wanted"

# The Debian package from the static release binary (packaging/debian/build-deb),
# checked with lintian. deb-test runs its install, upgrade, remove and purge
# cycle in a debootstrapped Debian root (cached in .build-debian/; minutes).
RELEASE_BIN = $(shell $(SWIFT) build -c release --show-bin-path)/volume-reaper
DEB_FILE = $(DIST)/volume-reaper_$(VERSION)_$(shell dpkg --print-architecture).deb

deb: release
	./packaging/debian/build-deb "$(RELEASE_BIN)" "$(DIST)"
	lintian --fail-on error,warning --display-info "$(DEB_FILE)"
	@ls -l "$(DEB_FILE)"

deb-test: deb
	./packaging/debian/test-deb "$(DEB_FILE)"

# The OCI image localhost/volume-reaper:$(VERSION) (buildah, from scratch: the
# binary and its shared libraries only), also as $(DIST)/*.oci.tar.
# image-test unpacks it and runs --plan inside it with chroot.
IMAGE_FILE = $(DIST)/volume-reaper_$(VERSION)_$(shell dpkg --print-architecture).oci.tar

image: release
	./packaging/image/build-image "$(RELEASE_BIN)" "$(DIST)"
	@ls -l "$(IMAGE_FILE)"

image-test: image
	./packaging/image/test-image "$(IMAGE_FILE)" "$(RELEASE_BIN)"

# Generated files, committed (tests fail when they are stale):
# packaging/man/volume-reaper.8, volume-reaper(8), from the command's own
# help by swift-argument-parser's generate-manual plugin (the journald
# catalog cites it; the package installs it); and the PrometheusRule
# component, from packaging/prometheus/volume-reaper.rules.yaml.
man: deps
	./scripts/generate-man

prometheusrule:
	./scripts/generate-prometheusrule packaging/kubernetes/components/prometheusrule/prometheusrule.yaml

clean:
	rm -rf .build Fuzz/Harnesses/.build $(DIST)
