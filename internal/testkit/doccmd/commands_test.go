package doccmd

import (
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/proto/pairing"
)

// Reasons shared by several skipped commands.
const (
	bootsBoard  = "boots the QEMU board (kernel, swtpm, qemu-system-aarch64): internal/e2e does that, `make test` runs it"
	showsQEMU   = "shows what zm-board runs (qemu package): placeholders, and it boots the QEMU board that internal/e2e boots"
	goTests     = "a go test command: `make unit` runs these packages; here the packages must exist (go list) and a -bench pattern must name a benchmark"
	postgres    = "needs a PostgreSQL server and its tools; the store's tests run every case on PostgreSQL too (pgtest), `make unit` runs them"
	firmwareCLI = "needs the secure image's manifest (the board's kernel and keys: make image-secure); cmd/zm-central TestFirmwareAllowListCommands runs allow, list and deny on a manifest of that form"
	serialLine  = "needs a serial line or a board's console socket (TestOverPTY drives the console over a pty, internal/e2e over the board's socket)"
)

// entries is what TestDocumentedCommands does with each command README.md
// and docs/*.md show in ```sh blocks. doc is the command as extracted
// (continuations joined, trailing comment dropped, spaces collapsed). A
// check runs it in a fresh directory whose out/ holds the programs (as
// `make build` leaves them), with the programs on PATH. A line that is a
// synopsis ([optional] parts, placeholders, alternatives) runs as a script
// that gives every flag it names, and, where it has optional parts, as its
// shortest form too, so a flag that is documented as optional but is not
// fails.
var entries = []entry{
	// README.md
	{doc: "make demo", skip: "boots the QEMU board and pairs it (minutes); internal/e2e TestProgramsPairTheBoard runs the same programs"},
	{doc: "make test", skip: "is CI itself (.ci/run), which runs this test"},
	{doc: "make firmware", skip: "builds the arm64 firmware; internal/e2e builds it with the same script (scripts/build-firmware.sh) and checks its size"},
	{doc: "make image", skip: "needs the board's kernel (built or taken from the cache, 4-10 min the first time); internal/e2e builds the image"},
	{doc: "make qemu", skip: "boots the QEMU board with the console on the terminal until Ctrl-]"},
	{doc: "out/zm-board press --state out/board; out/zm-board screenshot --state out/board -o shot.png", skip: "needs the board `make qemu` runs; internal/e2e presses and takes screenshots through the same qemu package"},
	{doc: "make e2e", skip: bootsBoard},
	{doc: "make bench-qemu", skip: bootsBoard + ", 10 boots"},
	{doc: "make u-boot", skip: "builds the secure board's U-Boot from Debian's source (~15 min the first time); CI runs it before the tests"},
	{doc: "make image-secure", skip: "needs the board's kernel and keys; internal/e2e builds the signed image the same way (harness.SecureBoard.Image)"},
	{doc: "make qemu-secure", skip: "boots the secure QEMU board with the console on the terminal until Ctrl-]"},
	{doc: "make bench-qemu-secure", skip: bootsBoard + " through U-Boot, 6 boots"},
	{doc: "out/zmonitor render -state PROVISIONING_FAILED -size 320x240 -o failed.png", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		runScript(t, w, c, "", "", 0, []string{"failed.png"})
		pngSize(t, w, "failed.png", 320, 240)
	}},
	{doc: "make dev-central", skip: "builds every program into out/ (make build) then runs zm-central init --dir out/dev-central, which the next command's check runs"},
	{doc: "out/zmonitor run -data out/zm -tpm soft -anchor out/dev-central/provisioning-root.pem", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.must("zm-central init --dir out/dev-central >/dev/null")
		s := w.start("exec "+c.text, "status\n", "state: UNPROVISIONED")
		out, code, err := s.stop()
		if err != nil || code != 0 {
			t.Errorf("zmonitor run on Ctrl-C: exit %d %v\n%s", code, err, out)
		}
		exists(t, w, "out/zm/enrollment.json", "out/zm/screen.png")
	}},
	{doc: "make bench", skip: "every host benchmark: minutes"},
	{doc: "make screenshots-web", skip: "writes docs/img/web from TestEveryPageAccessibleOnTablets and TestOperatorPagesAccessible, which `make unit` runs (without writing)"},
	{doc: "make bench-renewal", skip: "1,000 devices renewing three times on each backend: minutes; BenchmarkRenewal runs with 100 devices in make bench, and the EST server's tests in make unit"},
	{doc: "make bench-web", skip: "decodes 100 camera frames per QR decoder and times 100 progress events in headless Chromium: minutes; the web app's tests (TestDecoderReadsEveryCameraView ...) decode in Chromium in `make unit`"},
	{doc: "FUZZTIME=5m make fuzz", skip: "five minutes a target; `make test` runs the same script for 3 s a target (fuzz-smoke)"},

	// docs/central-station.md
	{doc: "zm-central init --dir DIR [--hosts localhost,127.0.0.1] [--technician admin] [--origin URL]", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		runSynopsis(t, w, c, "zm-central init --dir DIR --hosts localhost,127.0.0.1 --technician admin --origin https://localhost:8443", "", 0,
			[]string{"enrollment link for", "(admin, operator)", "https://localhost:8443/enroll#e-", "(admin) token"})
		exists(t, w, "DIR/provisioning-root.pem", "DIR/device-ca.pem", "DIR/central.db")
		w = e.work(t)
		minimal := "zm-central init --dir DIR"
		minimalOnly(t, c.text, minimal)
		runScript(t, w, c, minimal, "", 0, []string{"Central Station created in DIR"})
	}},
	{doc: "zm-central devices import FILE... | list [--json] | revoke ID | decommission ID | label ID LABEL", check: func(t *testing.T, e *env, c command) {
		// Run in the Central Station's directory: --dir defaults to it.
		w := e.work(t)
		w.central()
		w.device()
		runSynopsis(t, w, c, "cd DIR && zm-central devices import ../ZM-001.json && zm-central devices label ZM-001 ICU-MON-04 && zm-central devices list && zm-central devices list --json && zm-central devices decommission ZM-001 && zm-central devices list && zm-central devices revoke ZM-001 && zm-central devices list", "", 0,
			[]string{"ZM-001: added", "1 added", "ICU-MON-04", `"deviceId":"ZM-001"`, "device ZM-001 decommissioned, and 0 certificate(s) of it revoked", "decommissioned 20", "revoked"})
		// Flags may follow the arguments.
		runScript(t, w, c, "zm-central devices label ZM-001 ICU-MON-05 --dir DIR && zm-central devices list --dir DIR", "", 0, []string{"ICU-MON-05"})
	}},
	{doc: "zm-central devices replace --reason TEXT FILE", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.central()
		w.device()
		w.record("ZM-001-new.json", "SN-2")
		w.must("zm-central devices import --dir DIR ZM-001.json")
		runSynopsis(t, w, c, `cd DIR && zm-central devices replace --reason "board swapped" ../ZM-001-new.json`, "", 0, []string{"device ZM-001 replaced", "serial SN-2024-001234 -> SN-2"})
	}},
	{doc: "zm-central devices verify-audit ID CAPTURE", check: func(t *testing.T, e *env, c command) {
		// A capture of an export that was cut short (the device's own
		// exports are verified in cmd/zm-central's TestDevicesVerifyAudit
		// with logs written by internal/fw/audit): refused, exit 1.
		w := e.work(t)
		w.central()
		w.device()
		w.must("zm-central devices import --dir DIR ZM-001.json")
		w.must(`printf 'zm> audit export\r\n=== BEGIN ZMONITOR AUDIT LOG ===\r\n' > capture.txt`)
		runSynopsis(t, w, c, "zm-central devices verify-audit --dir DIR ZM-001 capture.txt", "", 1, []string{"capture is cut short"})
	}},
	{doc: `zm-central devices replace --reason "TPM replaced, work order 4711" new-ZM-001.json`, check: func(t *testing.T, e *env, c command) {
		// The example, in the Central Station's directory, of a device
		// revoked when its TPM failed.
		w := e.work(t)
		w.central()
		w.device()
		w.record("DIR/new-ZM-001.json", "SN-2")
		w.must("zm-central devices import --dir DIR ZM-001.json && zm-central devices revoke --dir DIR ZM-001")
		runScript(t, w, c, "cd DIR && "+c.text, "", 0, []string{"device ZM-001 replaced (was revoked ", "serial SN-2024-001234 -> SN-2"})
	}},
	{doc: "zm-central technicians add [--role technician|operator] [--enroll [--origin URL] [--no-qr] [--token]] NAME", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.central()
		runSynopsis(t, w, c, "cd DIR && zm-central technicians add --role operator --enroll --origin https://localhost:8443 --no-qr --token olga && zm-central technicians add --role technician biomed-2", "", 0,
			[]string{"(olga, operator) added", "enrollment link for", "https://localhost:8443/enroll#e-", "(olga) token", "(biomed-2) token"})
		minimal := "cd DIR && zm-central technicians add biomed-3"
		minimalOnly(t, c.text, minimal)
		runScript(t, w, c, minimal, "", 0, []string{"(biomed-3) token"})
	}},
	{doc: "zm-central technicians enroll [--origin URL] [--no-qr] ID | list [--json] | revoke ID", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.central()
		runSynopsis(t, w, c, "cd DIR && id=$(zm-central technicians add biomed-2 | tail -1 | cut -d. -f1) && zm-central technicians enroll --origin https://localhost:8443 --no-qr $id && zm-central technicians revoke $id && zm-central technicians list && zm-central technicians list --json", "", 0,
			[]string{"enrollment link for", "biomed-2", "admin", `"name":"biomed-2"`, "revoked"})
	}},
	{doc: "zm-central passkeys list [--technician ID] | revoke PASSKEY-ID", check: func(t *testing.T, e *env, c command) {
		// Registering a passkey takes a browser: the web app's tests do
		// (internal/central/webapp, cmd/zm-central web_test.go); here the
		// commands run and refuse an unknown passkey.
		w := e.work(t)
		w.central()
		runSynopsis(t, w, c, "cd DIR && zm-central passkeys list && zm-central passkeys list --technician t-00000000 && (zm-central passkeys revoke k-0000000000000000 || echo refused)", "", 0,
			[]string{"TECHNICIAN", "refused"})
	}},
	{doc: "zm-central certificates list [--device ID] [--state issued|in-use|revoked] [--json]", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.central()
		runSynopsis(t, w, c, "cd DIR && zm-central certificates list --device ZM-001 --state issued && zm-central certificates list --state in-use --json && zm-central certificates list --state revoked", "", 0, nil)
		minimal := "cd DIR && zm-central certificates list"
		minimalOnly(t, c.text, minimal)
		runScript(t, w, c, minimal, "", 0, nil)
	}},
	{doc: "zm-central certificates revoke --reason key-compromise|cessation-of-operation|affiliation-changed [--note TEXT] SERIAL", check: func(t *testing.T, e *env, c command) {
		// No certificate in a fresh inventory: the serial is refused as
		// unknown after the flags were taken (cmd/zm-central
		// TestRevokeAndCRLVerifyWithOpenSSL revokes real ones).
		w := e.work(t)
		w.central()
		runSynopsis(t, w, c, "cd DIR && zm-central certificates revoke --reason key-compromise --note 'stolen from ward 4' 3fa1", "", 1, []string{"not found"})
	}},
	{doc: "zm-central firmware allow out/image-secure/manifest.json", skip: firmwareCLI},
	{doc: "zm-central firmware list", skip: firmwareCLI},
	{doc: "zm-central firmware deny 3f5e…", skip: firmwareCLI},
	{doc: "zm-central crl [--out FILE] [--der]", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.central()
		runSynopsis(t, w, c, "cd DIR && zm-central crl --out crl.pem && zm-central crl --der --out crl.der && head -1 crl.pem", "", 0, []string{"-----BEGIN X509 CRL-----"})
		runScript(t, w, c, "cd DIR && zm-central crl", "", 0, []string{"-----BEGIN X509 CRL-----"})
	}},
	{doc: "zm-central pki status [--json]", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.central()
		runSynopsis(t, w, c, "cd DIR && zm-central pki status && zm-central pki status --json | sed -n 1p", "", 0, []string{"tablet-server", "provisioning-signer", `"daysLeft":`})
	}},
	{doc: "zm-central pki renew [--root-key FILE] [--hosts h1,h2] provisioning-signer|tablet-server", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.central()
		runSynopsis(t, w, c, "cd DIR && zm-central pki renew --hosts localhost,127.0.0.1 tablet-server && zm-central pki renew --root-key provisioning-root.key provisioning-signer", "", 0,
			[]string{"tablet-server renewed", "provisioning-signer renewed"})
	}},
	{doc: "zm-central crl --dir central --out crl.pem", skip: "the synopsis zm-central crl [--out FILE] [--der] is run; cmd/zm-central TestRevokeAndCRLVerifyWithOpenSSL runs this with the OpenSSL checks below"},
	{doc: "openssl crl -in crl.pem -noout -verify -CAfile central/device-ca.pem", skip: "needs a CRL with revoked certificates: cmd/zm-central TestRevokeAndCRLVerifyWithOpenSSL runs it"},
	{doc: "openssl verify -crl_check -CAfile central/device-ca.pem -CRLfile crl.pem device.pem", skip: "needs a device certificate: cmd/zm-central TestRevokeAndCRLVerifyWithOpenSSL runs it on a revoked and a valid one"},
	{doc: "zm-central serve --dir central --monitor-listen 127.0.0.1:9443 --est-listen 127.0.0.1:9444 --clock-offset 6552h", skip: "the renewal drill against a paired device: internal/e2e TestRenewalOnTheBoard runs it with the board"},
	{doc: "zm-central audit export", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.central()
		out := runScript(t, w, c, "cd DIR && zm-central audit export", "", 0, nil)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines {
			if !json.Valid([]byte(l)) {
				t.Errorf("not a JSON line: %q", l)
			}
		}
		if len(lines) == 0 || lines[0] == "" {
			t.Error("no audit record after init")
		}
	}},
	{doc: "zm-central backup OUT | restore [--force] BACKUP", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.central()
		runSynopsis(t, w, c, "cd DIR && zm-central backup ../central.bak && zm-central restore --force ../central.bak", "", 0, nil)
		// Without --force an existing database is not replaced.
		runScript(t, w, c, "cd DIR && zm-central restore ../central.bak", "", 2, []string{"give --force"})
		minimal := "mkdir other && cd other && zm-central restore ../central.bak && zm-central technicians list"
		minimalOnly(t, c.text, minimal)
		runScript(t, w, c, minimal, "", 0, []string{"admin"})
	}},
	{doc: "zm-central backup [--dir DIR] OUT", check: func(t *testing.T, e *env, c command) {
		// "while serve runs"
		w := e.work(t)
		w.central()
		w.serve()
		runSynopsis(t, w, c, "zm-central backup --dir DIR central.bak", "", 0, nil)
		exists(t, w, "central.bak")
		minimal := "cd DIR && zm-central backup ../central2.bak"
		minimalOnly(t, c.text, minimal)
		runScript(t, w, c, minimal, "", 0, nil)
	}},
	{doc: "zm-central restore [--dir DIR] [--force] BACKUP", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.central()
		w.must("zm-central backup --dir DIR central.bak && zm-central technicians add --dir DIR later")
		runSynopsis(t, w, c, "zm-central restore --dir DIR --force central.bak && zm-central technicians list --dir DIR", "", 0, []string{"admin"})
		if out, _ := w.sh("zm-central technicians list --dir DIR", ""); strings.Contains(out, "later") {
			t.Errorf("the technician added after the backup is still there after the restore:\n%s", out)
		}
	}},
	{doc: "zm-central version", check: func(t *testing.T, e *env, c command) {
		runScript(t, e.work(t), c, "", "", 0, []string{"zm-central "})
	}},
	{doc: "pg_dump --format=custom --file=central-$(date +%F).dump \"$ZM_CENTRAL_DB\"", skip: postgres},
	{doc: "createdb central_restored", skip: postgres},
	{doc: "pg_restore --no-owner --dbname=central_restored central-2026-12-07.dump", skip: postgres},
	{doc: "zm-central serve [--dir DIR] [--db DSN] [--listen 127.0.0.1:8443] {--monitor-listen 127.0.0.1:9443 | --server-url https://...} [--origin https://NAME:PORT] [--rp-id NAME] [--session-idle 15m] [--session-max 12h] [--est-listen 127.0.0.1:9444] [--est-url https://.../.well-known/est] [--est-renewals-per-hour 10] [--crl-url http://.../crl] [--ops-listen 127.0.0.1:9464] [--log-format text|json] [--log-level info] [--device-port 8444] [--trust-device-clock] [--batch-concurrency 4] [--max-in-flight 256] [--drain 30s] [--device-addr ID=host:port]... [--clock-offset -2h]", check: func(t *testing.T, e *env, c command) {
		full := "exec zm-central serve --dir DIR --db sqlite:DIR/central.db --listen 127.0.0.1:0 --monitor-listen 127.0.0.1:0 --server-url https://monitor.example:9443" +
			" --origin https://localhost:8443 --rp-id localhost --session-idle 15m --session-max 12h" +
			" --est-listen 127.0.0.1:0 --est-url https://central.example:9444/.well-known/est --est-renewals-per-hour 10 --crl-url http://central.example:9464/crl" +
			" --ops-listen 127.0.0.1:0 --log-format json --log-level info --device-port 8444 --trust-device-clock --batch-concurrency 4 --max-in-flight 256 --drain 30s --device-addr ZM-001=127.0.0.1:8444 --clock-offset -2h"
		coversFlags(t, c.text, full)
		// Its shortest forms: either of the two, in the directory (--dir
		// defaults to it); free ports, not 8443 and 9443, on this shared
		// machine.
		monitor := "cd DIR && exec zm-central serve --listen 127.0.0.1:0 --monitor-listen 127.0.0.1:0"
		serverURL := "cd DIR && exec zm-central serve --listen 127.0.0.1:0 --server-url https://monitor.example:9443"
		for _, s := range []struct{ script, want string }{
			{full, "devices are sent server URL https://monitor.example:9443"},
			{monitor, "stand-in monitoring server on https://127.0.0.1:"},
			{serverURL, "devices are sent server URL https://monitor.example:9443"},
		} {
			if s.script != full {
				minimalOnly(t, c.text, s.script, "--listen")
			}
			w := e.work(t)
			w.central()
			srv := w.start(s.script, "", "tablet API on https://127.0.0.1:")
			out, code, err := srv.stop()
			if err != nil || code != 0 {
				t.Errorf("%s: on SIGINT: exit %d %v\n%s", s.script, code, err, out)
			}
			if !strings.Contains(out, s.want) {
				t.Errorf("%s: output lacks %q:\n%s", s.script, s.want, out)
			}
		}
	}},
	{doc: "zm-central init --dir central", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		runScript(t, w, c, "", "", 0, []string{"Central Station created in central", "tablets must trust: central/device-ca.pem"})
	}},
	{doc: "zm-central serve --dir central --monitor-listen 127.0.0.1:9443", check: func(t *testing.T, e *env, c command) {
		// Free ports instead of 9443 and the default 8443 on this shared
		// machine.
		w := e.work(t)
		w.must("zm-central init --dir central")
		s := "zm-central serve --dir central --listen 127.0.0.1:0 --monitor-listen 127.0.0.1:0"
		coversFlags(t, c.text, s)
		srv := w.start("exec "+s, "", "tablet API on https://127.0.0.1:")
		out, code, err := srv.stop()
		if err != nil || code != 0 || !strings.Contains(out, "stand-in monitoring server on https://127.0.0.1:") {
			t.Errorf("%s: on SIGINT: exit %d %v\n%s", s, code, err, out)
		}
	}},
	{doc: "go test -race ./internal/central/store/... ./internal/central/server/... ./internal/proto/tabletwire ./internal/proto/ident ./internal/proto/strictjson ./cmd/zm-central/ ./cmd/clitest/", skip: goTests},

	// docs/console.md
	{doc: "picocom -b 115200 /dev/ttyUSB0", skip: serialLine},
	{doc: "screen /dev/ttyUSB0 115200", skip: serialLine},
	{doc: "socat -,raw,echo=0 UNIX-CONNECT:/path/to/console.sock", skip: serialLine},

	// docs/image.md
	{doc: "make kernel", skip: "builds the board's kernel (4-10 min the first time); CI runs it before the tests"},
	{doc: "make image-verify", skip: "verifies out/image, which `make image` makes (see make image); zm-image verify runs below"},
	{doc: "make kernel-check", skip: bootsBoard},
	{doc: "zm-image build --kernel IMAGE --init out/zmonitor-arm64 --board board.json --anchor anchor.pem --version v1.2.3 --out out/image", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.imageInputs()
		runScript(t, w, c, "", "", 0, nil)
		exists(t, w, "out/image/Image", "out/image/initramfs.cpio.gz", "out/image/manifest.json")
	}},
	{doc: "zm-image initramfs --init out/zmonitor-arm64 --board board.json --anchor anchor.pem --out x.cpio.gz", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.imageInputs()
		runScript(t, w, c, "", "", 0, nil)
		exists(t, w, "x.cpio.gz")
	}},
	{doc: "zm-image verify out/image", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.imageInputs()
		w.must("zm-image build --kernel IMAGE --init out/zmonitor-arm64 --board board.json --anchor anchor.pem --out out/image")
		runScript(t, w, c, "", "", 0, nil)
		w.must("echo >> out/image/initramfs.cpio.gz")
		runScript(t, w, c, "", "", 1, []string{"initramfs.cpio.gz"})
	}},
	{doc: `qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 1 -m 256 -nographic -monitor none -no-reboot -kernel IMAGE -initrd initramfs.cpio.gz -append "console=ttyAMA0 panic=-1" -chardev socket,id=chrtpm,path=swtpm.sock -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis-device,tpmdev=tpm0 -device virtio-gpu-pci,xres=240,yres=240 -drive if=none,id=d0,file=disk.img,format=raw -device virtio-blk-pci,drive=d0 -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,romfile=`, skip: showsQEMU},

	// docs/qemu.md
	{doc: "swtpm socket --tpm2 --tpmstate dir=STATE/tpm --ctrl type=unixio,path=STATE/swtpm.sock --log file=STATE/swtpm.log,level=1 --terminate", skip: showsQEMU},
	{doc: `qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 256 -display none -monitor none -no-reboot -nodefaults -kernel IMAGE -initrd INITRAMFS -append "console=ttyAMA0 panic=-1 quiet [Append]" -chardev socket,id=con0,path=STATE/console.sock,server=on,wait=on,logfile=STATE/console.log,logappend=on -serial chardev:con0 -qmp unix:STATE/qmp.sock,server=on,wait=off -chardev socket,id=chrtpm,path=STATE/swtpm.sock -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis-device,tpmdev=tpm0 -device virtio-gpu-pci,xres=240,yres=240 -drive if=none,id=data,file=STATE/data.img,format=raw -device virtio-blk-pci,drive=data -netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:HOSTPORT-:8444,guestfwd=tcp:10.0.2.100:443-tcp:127.0.0.1:PORT -device virtio-net-pci,netdev=n0,romfile=`, skip: showsQEMU},
	{doc: "zm-board run --initrd out/image/initramfs.cpio.gz --state /tmp/zm1", skip: bootsBoard},
	{doc: "zm-board press --state /tmp/zm1", skip: "needs the board zm-board run started; internal/e2e presses through the same qemu package"},
	{doc: "zm-board screenshot --state /tmp/zm1 -o shot.png", skip: "needs the board zm-board run started; internal/e2e takes screenshots through the same qemu package"},

	// docs/secure-boot.md
	{doc: "make uefi-keys", skip: "writes the development Secure Boot keys into $ZM_CACHE (kept once made); internal/e2e makes a second key set with the same script (scripts/uefi-keys.sh)"},
	{doc: "make image-secure-verify", skip: "needs the image `make image-secure` writes; internal/e2e checks the signed image by booting it"},

	// docs/screens.md
	{doc: "zmonitor render --state READY_TO_PAIR --size 240x240 -o ready.png", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		runScript(t, w, c, "", "", 0, []string{"ready.png"})
		pngSize(t, w, "ready.png", 240, 240)
		runScript(t, w, c, "zm-pair decode ready.png", "", 0, []string{"Z Monitor pairing QR: device ZM-001"})
	}},

	// docs/zm-pair.md
	{doc: "zm-pair scan --central URL --ca FILE [--token-file FILE] [--label L] IMAGE", check: func(t *testing.T, e *env, c command) {
		// The sample QR of `zmonitor render` names ZM-001 at
		// 192.168.1.100, which this Central Station does not know: the
		// command reaches it and is refused (exit 1).
		w := e.work(t)
		w.central()
		w.serve()
		w.must("zmonitor render --state READY_TO_PAIR --size 240x240 -o ready.png")
		refused := []string{"Scanned device ZM-001", "REFUSED BY THE CENTRAL STATION"}
		runSynopsis(t, w, c, `zm-pair scan --central "$CENTRAL" --ca DIR/device-ca.pem --token-file technician.token --label ICU-MON-04 ready.png`, "", 1, refused)
		minimal := `ZM_TECH_TOKEN=$(cat technician.token) zm-pair scan --central "$CENTRAL" --ca DIR/device-ca.pem ready.png`
		minimalOnly(t, c.text, minimal)
		runScript(t, w, c, minimal, "", 1, refused)
	}},
	{doc: "zm-pair code --central URL --ca FILE [--token-file FILE] [--label L] --device ID --address IP[:PORT] [--code AAA-999-AAA]", check: func(t *testing.T, e *env, c command) {
		// An enrolled device that is not there: the Central Station cannot
		// reach it (exit 1), which shows the command reached the Central
		// Station with what it was given.
		w := e.work(t)
		w.central()
		w.device()
		w.must("zm-central devices import --dir DIR ZM-001.json")
		w.serve()
		// A code is used once: a new one for each run.
		code, err := pairing.NewCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		code2, err := pairing.NewCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		w.setenv("CODE=" + code.Display())
		// Nothing listens on 127.0.0.1:1: the device is not waiting.
		unreachable := []string{"ZM-001", "DEVICE_NOT_LISTENING", "Nothing reached the monitor"}
		runSynopsis(t, w, c, `zm-pair code --central "$CENTRAL" --ca DIR/device-ca.pem --token-file technician.token --label ICU-MON-04 --device ZM-001 --address 127.0.0.1:1 --code "$CODE"`, "", 1, unreachable)
		// Without --code the code is read from standard input, in any case,
		// with spaces for dashes.
		minimal := `ZM_TECH_TOKEN=$(cat technician.token) zm-pair code --central "$CENTRAL" --ca DIR/device-ca.pem --device ZM-001 --address 127.0.0.1:1`
		minimalOnly(t, c.text, minimal)
		typed := strings.ToLower(strings.ReplaceAll(code2.Display(), "-", " "))
		runScript(t, w, c, minimal, typed+"\n", 1, unreachable)
	}},
	{doc: "zm-pair version", check: func(t *testing.T, e *env, c command) {
		runScript(t, e.work(t), c, "", "", 0, []string{"zm-pair "})
	}},
	{doc: "zm-pair decode IMAGE", check: func(t *testing.T, e *env, c command) {
		w := e.work(t)
		w.must("zmonitor render --state READY_TO_PAIR --size 240x240 -o IMAGE")
		runScript(t, w, c, "", "", 0, []string{"Z Monitor pairing QR: device ZM-001 (serial SN-2024-001234, firmware 1.2.3) at 192.168.1.100"})
	}},
	{doc: "go test -race ./internal/tablet/... ./cmd/zm-pair/", skip: goTests},
	{doc: "go test -run '^$' -bench ScanImage ./internal/tablet/", skip: goTests},
	{doc: "go test -run '^$' -bench 'BenchmarkQEMUBoot$' -benchtime 5x ./internal/e2e/", skip: goTests},
}
