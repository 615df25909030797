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

# --- qemu-virt-secure: the same firmware as one signed EFI program, booted
# by U-Boot with Secure Boot and a measured boot (docs/secure-boot.md). The
# board's kernel is qemu-virt's (it has the EFI stub).
#
#   make uefi-keys       development PK, KEK and db in $(UEFI_KEYS)
#   make u-boot          the board's firmware with $(UEFI_KEYS) built in, cached in $(ZM_CACHE)/u-boot
#   make image-secure    $(IMAGE_SECURE_DIR): zmonitor.efi (signed) + manifest.json
#   make qemu-secure     boot it on the qemu-virt-secure board

SECURE_BOARD     := qemu-virt-secure
# The development keys live with the caches: the firmware is built with
# them, and the end-to-end tests sign with them (harness.DevKeys).
UEFI_KEYS        ?= $(ZM_CACHE)/uefi-keys/dev
UEFI_SEED        := $(OUT)/uefi-seed.var
IMAGE_SECURE_DIR ?= $(OUT)/image-secure
# A signed image carries its command line; the development identity is in it.
SECURE_CMDLINE   ?= console=ttyAMA0 panic=-1 quiet zmonitor.device_id=ZM-DEV-01 zmonitor.serial=SN-DEV-000001
STUB_VERSION      = $(shell dpkg-query -W -f='systemd-boot-efi $${Version}' systemd-boot-efi:arm64 2>/dev/null || echo systemd-stub)

.PHONY: u-boot uefi-keys image-secure image-secure-verify qemu-secure

uefi-keys: ## development Secure Boot keys (PK, KEK, db) in $(UEFI_KEYS) (kept once made)
	@scripts/uefi-keys.sh $(UEFI_KEYS)

u-boot: uefi-keys zm-image ## the qemu-virt-secure firmware (U-Boot, Secure Boot keys built in; cached; ~15 min the first time on a loaded 2-core host)
	@$(ZM_IMAGE) uefi-seed --keys $(UEFI_KEYS) --out $(UEFI_SEED)
	@scripts/build-u-boot.sh --seed $(UEFI_SEED) $(SECURE_BOARD)

image-secure: kernel firmware zm-image uefi-keys $(ANCHOR) ## signed firmware image in $(IMAGE_SECURE_DIR): zmonitor.efi, manifest.json
	@kernel=$$(scripts/build-kernel.sh $(BOARD)) && \
	$(ZM_IMAGE) build --kernel "$$kernel" --init $(FIRMWARE_BIN) --board board/$(SECURE_BOARD)/board.json \
		--anchor $(ANCHOR) --board-name $(SECURE_BOARD) --version $(VERSION) --out $(IMAGE_SECURE_DIR) \
		--efi-keys $(UEFI_KEYS) --efi-cmdline "$(SECURE_CMDLINE)" --efi-stub-version "$(STUB_VERSION)"

image-secure-verify: zm-image ## recheck $(IMAGE_SECURE_DIR)/manifest.json, the Authenticode digest and the signature
	@$(ZM_IMAGE) verify $(IMAGE_SECURE_DIR)
	@sbverify --cert $(UEFI_KEYS)/db.crt $(IMAGE_SECURE_DIR)/zmonitor.efi

qemu-secure: image-secure u-boot build ## boot the signed image on the qemu-virt-secure board (Ctrl-] quits)
	@fw=$$(scripts/build-u-boot.sh --cached-only --seed $(UEFI_SEED) $(SECURE_BOARD)) && \
	$(OUT)/zm-board run --kernel $(IMAGE_SECURE_DIR)/zmonitor.efi --uefi-code "$$fw/u-boot.bin" \
		--pcr-banks sha256 --state $(OUT)/board-secure --fwd 8444
