package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/zmonitor/firmware/image/manifest"
	"github.com/zmonitor/firmware/internal/central/attestation"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/devicewire"
	"github.com/zmonitor/firmware/internal/proto/enroll"
)

// unmeasuredFlag is serve's development switch (attestHook).
const unmeasuredFlag = "allow-unmeasured-dev-firmware"

func cmdFirmwareAllow(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("firmware allow", &f)
	return withStore(ctx, fs, &f, args, 1, 1, func(st store.Store) error {
		b, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		m, err := manifest.Parse(b)
		if err != nil {
			return err
		}
		fw, err := store.FirmwareFromManifest(m)
		if err != nil {
			return err
		}
		if err := st.AllowFirmware(ctx, fw); err != nil {
			return err
		}
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "firmware.allow",
			Detail: fmt.Sprintf("image=%s version=%s board=%s pcr4=%s pcr7=%s", fw.Authenticode, fw.Version, fw.Board, fw.PCR4, fw.PCR7)}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "allowed firmware %s (%s) image %s\n", fw.Version, fw.Board, fw.Authenticode)
		return nil
	})
}

func cmdFirmwareDeny(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("firmware deny", &f)
	return withStore(ctx, fs, &f, args, 1, 1, func(st store.Store) error {
		img := fs.Arg(0)
		if err := st.DenyFirmware(ctx, img); err != nil {
			return err
		}
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "firmware.deny", Detail: "image=" + img}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "denied firmware image %s: devices booting it are refused (FIRMWARE_NOT_TRUSTED)\n", img)
		return nil
	})
}

func cmdFirmwareList(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("firmware list", &f)
	return withStore(ctx, fs, &f, args, 0, 0, func(st store.Store) error {
		list, err := st.FirmwareImages(ctx)
		if err != nil {
			return err
		}
		for _, fw := range list {
			state := "allowed"
			if fw.Denied() {
				state = "denied"
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\tallowed %s\n", fw.Authenticode, state, fw.Version, fw.Board, fw.AllowedAt.Format("2006-01-02T15:04:05Z"))
		}
		return nil
	})
}

// attestHook is the pusher's firmware check: the device's quote and event
// log against its enrolled attestation key and the allow-list
// (internal/central/attestation). Every verdict is audited.
func attestHook(st store.Store, allowUnmeasured bool, log *slog.Logger) func(context.Context, job.Job, []byte, *devicewire.VerifiedHello) error {
	return func(ctx context.Context, j job.Job, nonce []byte, h *devicewire.VerifiedHello) error {
		d, err := st.Device(ctx, j.DeviceID)
		if err != nil {
			return fmt.Errorf("attestation: %w", err)
		}
		var ak *enroll.AttestationKey
		if d.AttestationKey != nil {
			if ak, err = enroll.ParseAttestationPublic(d.AttestationKey); err != nil {
				return fmt.Errorf("attestation: enrolled key: %w", err)
			}
		}
		v, err := attestation.Verify(attestation.Input{
			AK: ak, Nonce: nonce, Evidence: h.Evidence, Unmeasured: h.Unmeasured, AllowUnmeasured: allowUnmeasured,
			Lookup: func(img string) (attestation.Firmware, bool, error) {
				fw, err := st.FirmwareImage(ctx, img)
				if errors.Is(err, store.ErrNotFound) {
					return attestation.Firmware{}, false, nil
				}
				if err != nil {
					return attestation.Firmware{}, false, err
				}
				return attestation.Firmware{Authenticode: fw.Authenticode, Version: fw.Version, PCR4: fw.PCR4, PCR7: fw.PCR7, Denied: fw.Denied()}, true, nil
			},
		})
		event, detail := "firmware.attested", v.String()
		if err != nil {
			event, detail = "firmware.not_trusted", err.Error()
			log.Warn("firmware not trusted", "device", j.DeviceID, "err", err)
		} else if v.Unmeasured != "" {
			log.Warn("UNMEASURED DEVELOPMENT FIRMWARE ALLOWED", "device", j.DeviceID, "flag", "--"+unmeasuredFlag, "reason", v.Unmeasured)
		}
		if aerr := st.Audit(ctx, store.AuditRecord{Actor: "central-station", Event: event, DeviceID: j.DeviceID, Detail: detail}); aerr != nil && err == nil {
			return fmt.Errorf("attestation: audit: %w", aerr)
		}
		return err
	}
}
