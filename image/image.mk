# Firmware image targets: kernel, initramfs, image. Included by the top
# Makefile, which defines GO, OUT, ZM_CACHE, VERSION and the `firmware` target
# ($(OUT)/zmonitor-arm64, static linux/arm64).
#
#   make kernel        arm64 kernel Image for $(BOARD), cached in $(ZM_CACHE)/kernel
#   make initramfs     $(OUT)/initramfs.cpio.gz only (no kernel needed)
#   make image         kernel + initramfs + manifest.json in $(IMAGE_DIR)
#   make image-verify  recheck every hash of $(IMAGE_DIR)/manifest.json
#   make kernel-check  boot the kernel under QEMU, check the board's devices

OUT      ?= out
ZM_CACHE ?= /var/cache/zmonitor
GO       ?= go
VERSION  ?= dev

BOARD          ?= qemu-virt
BOARD_PROFILE  ?= board/$(BOARD)/board.json
ANCHOR         ?= $(OUT)/dev-central/provisioning-root.pem
FIRMWARE_BIN   ?= $(OUT)/zmonitor-arm64
IMAGE_DIR      ?= $(OUT)/image
ZM_IMAGE       := $(OUT)/zm-image
# Every initramfs entry carries this time: the last commit's, for
# reproducible images (0 outside git).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

.PHONY: kernel initramfs image image-verify kernel-check zm-image image-inputs

kernel: ## arm64 kernel Image for $(BOARD) (cached; ~4-10 min the first time)
	@command -v aarch64-linux-gnu-gcc >/dev/null || { echo "aarch64-linux-gnu-gcc not found: run scripts/install-deps.sh" >&2; exit 1; }
	@test -f /usr/src/linux-source-6.1.tar.xz || { echo "/usr/src/linux-source-6.1.tar.xz not found: run scripts/install-deps.sh" >&2; exit 1; }
	@scripts/build-kernel.sh $(BOARD)

# The host tool (GOOS/GOARCH cleared: the firmware is arm64, the tool is not).
zm-image: check-go
	@mkdir -p $(OUT)
	@env -u GOOS -u GOARCH $(GO) build -trimpath -o $(ZM_IMAGE) ./cmd/zm-image

image-inputs:
	@test -f $(BOARD_PROFILE) || { echo "board profile $(BOARD_PROFILE) not found (set BOARD_PROFILE=...)" >&2; exit 1; }
	@test -f $(ANCHOR) || { echo "trust anchor $(ANCHOR) not found (set ANCHOR=...)" >&2; exit 1; }

initramfs: firmware zm-image image-inputs ## $(OUT)/initramfs.cpio.gz: /init, board profile, trust anchor
	@$(ZM_IMAGE) initramfs --init $(FIRMWARE_BIN) --board $(BOARD_PROFILE) --anchor $(ANCHOR) --out $(OUT)/initramfs.cpio.gz

image: kernel firmware zm-image $(ANCHOR) image-inputs ## firmware image in $(IMAGE_DIR): kernel, initramfs, manifest.json
	@kernel=$$(scripts/build-kernel.sh $(BOARD)) && \
	$(ZM_IMAGE) build --kernel "$$kernel" --init $(FIRMWARE_BIN) --board $(BOARD_PROFILE) \
		--anchor $(ANCHOR) --board-name $(BOARD) --version $(VERSION) --out $(IMAGE_DIR)

image-verify: zm-image ## recheck the sizes and sha256 in $(IMAGE_DIR)/manifest.json
	@$(ZM_IMAGE) verify $(IMAGE_DIR)

kernel-check: kernel check-go ## boot the cached kernel under QEMU and check every board device appears
	@command -v qemu-system-aarch64 >/dev/null || { echo "qemu-system-aarch64 not found: run scripts/install-deps.sh" >&2; exit 1; }
	@command -v swtpm >/dev/null || { echo "swtpm not found: run scripts/install-deps.sh" >&2; exit 1; }
	$(GO) test -count=1 -run TestBootOnQEMU -v ./image/kernel/
