# Z Monitor firmware. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
OUT       ?= out
ZM_CACHE  ?= /var/cache/zmonitor
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BUILDTIME ?= $(shell git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
PKG       := github.com/zmonitor/firmware
LDFLAGS   := -s -w -X $(PKG)/internal/base/version.Version=$(VERSION) -X $(PKG)/internal/base/version.BuildTime=$(BUILDTIME)
FUZZTIME  ?= 3s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

export ZM_CACHE

# The image trusts this provisioning root; by default a development Central
# Station made by `zm-central init` (make dev-central).
DEV_CENTRAL ?= $(OUT)/dev-central
ANCHOR      ?= $(DEV_CENTRAL)/provisioning-root.pem

.PHONY: bench-renewal dev-central qemu bench-qemu bench-qemu-secure bench-web screenshots-web help deps build firmware test unit fuzz-smoke fuzz bench lint check-go e2e demo clean

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

check-go:
	@command -v $(GO) >/dev/null || { echo "go not found: install Go 1.26 (https://go.dev/dl) and put it on PATH" >&2; exit 1; }
	@$(GO) version | grep -qE 'go1\.(2[6-9]|[3-9][0-9])' || { echo "need Go >= 1.26 (crypto/hpke), have: $$($(GO) version)" >&2; exit 1; }

deps: ## install the Debian packages the build, tests and QEMU board need (idempotent; root or sudo)
	@scripts/install-deps.sh

build: check-go ## host binaries into $(OUT)/
	@mkdir -p $(OUT)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT)/ ./cmd/...

firmware: check-go ## static linux/arm64 firmware binary $(OUT)/zmonitor-arm64
	@mkdir -p $(OUT)
	GO=$(GO) scripts/build-firmware.sh $(OUT)/zmonitor-arm64 '$(VERSION)' '$(BUILDTIME)'
	@ls -l $(OUT)/zmonitor-arm64 | awk '{printf "firmware binary: %s bytes\n", $$5}'

lint: check-go ## gofmt, go vet, staticcheck, CGO_ENABLED=0 arm64 builds (the firmware's with -tags zmfirmware)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags zmfirmware ./cmd/zmonitor
	$(GO) run $(STATICCHECK) ./...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build ./...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags zmfirmware -o /dev/null ./cmd/zmonitor

unit: check-go ## unit and host integration tests with -race (fuzz seed corpora included)
	ZM_TEST_PG_REQUIRED=1 ZM_TEST_BROWSER_REQUIRED=1 $(GO) test -race -count=1 -timeout 30m ./...

fuzz-smoke: check-go ## run every fuzz target for FUZZTIME (default 3s)
	@scripts/fuzz.sh $(FUZZTIME)

fuzz: ## longer fuzzing: FUZZTIME=5m make fuzz
	@scripts/fuzz.sh $(FUZZTIME)

test: deps kernel u-boot lint unit fuzz-smoke ## everything CI runs: packages, kernel and the secure board's U-Boot (cached), lint, tests incl. QEMU end to end, fuzz smoke

demo: deps kernel build firmware ## the main job: image + QEMU board + zm-central + the web app on a headless tablet, the whole provisioning flow
	$(OUT)/zm-demo -bin $(OUT) -out $(OUT)/demo

e2e: deps kernel u-boot ## only the end-to-end tests of the real image on the QEMU board
	$(GO) test -count=1 -v -timeout 30m ./internal/e2e/

dev-central: build ## a development Central Station in $(DEV_CENTRAL) (its root is the image's default anchor)
	@test -f $(DEV_CENTRAL)/provisioning-root.pem || $(OUT)/zm-central init --dir $(DEV_CENTRAL) | tee $(OUT)/dev-central.txt

$(DEV_CENTRAL)/provisioning-root.pem:
	@$(MAKE) --no-print-directory dev-central

qemu: image ## boot the image on the QEMU board with the console on this terminal (Ctrl-] quits)
	$(OUT)/zm-board run --kernel $(IMAGE_DIR)/Image --initrd $(IMAGE_DIR)/initramfs.cpio.gz --state $(OUT)/board --fwd 8444 --append "zmonitor.device_id=ZM-DEV-01 zmonitor.serial=SN-DEV-000001"

bench: check-go ## benchmarks (host)
	$(GO) test -short -run '^$$' -bench . -benchmem ./...

bench-renewal: check-go ## certificate renewals per second: 1,000 software devices against one EST server, SQLite and PostgreSQL (3 runs each; docs/lifecycle.md)
	$(GO) test -run '^$$' -bench 'BenchmarkRenewal$$' -benchtime 1x -count 3 -timeout 30m ./internal/central/estserver/

bench-web: deps check-go ## web app numbers in headless Chromium: QR decoders on camera-like frames of the board's screen; progress latency, device report -> shown in the page (docs/web-app.md)
	$(GO) test -run '^$$' -bench 'BenchmarkQRDecoders$$' -benchtime 100x -timeout 60m ./internal/central/web/
	$(GO) test -run '^$$' -bench 'BenchmarkProgressLatency$$' -benchtime 100x -timeout 10m ./internal/central/webapp/

screenshots-web: deps check-go ## the web app's pages at tablet sizes (768x1024, 1280x800) into docs/img/web/, from its browser test
	ZM_WEB_SCREENSHOTS=$(CURDIR)/docs/img/web $(GO) test -count=1 -run '^(TestEveryPageAccessibleOnTablets|TestOperatorPagesAccessible|TestBatchOfThree)$$' ./internal/central/webapp/

bench-qemu: deps kernel ## QEMU board numbers: start -> UNPROVISIONED screen, press -> decodable QR (median of 5 boots), scan -> PROVISIONED (median of 5 pairings; CLI and web page)
	$(GO) test -run '^$$' -bench 'BenchmarkQEMU(Boot|Pairing|WebPairing)$$' -benchtime 5x -timeout 45m ./internal/e2e/
	@ls -l $(OUT)/zmonitor-arm64 2>/dev/null | awk '{print "firmware binary:", $$5, "bytes"}' || true

bench-qemu-secure: deps kernel u-boot ## qemu-virt-secure: QEMU start -> UNPROVISIONED screen through U-Boot and Secure Boot (median of 5 boots)
	$(GO) test -run '^$$' -bench 'BenchmarkQEMUBootSecure$$' -benchtime 5x -timeout 30m ./internal/e2e/

clean: ## remove build outputs (not the kernel cache)
	rm -rf $(OUT)

-include image/image.mk
