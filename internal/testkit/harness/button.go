package harness

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// QEMUButtonPulse is how long QEMU's virt machine holds PL061 GPIO line 3
// high for one QMP system_powerdown: hw/gpio/gpio_key.c raises the line
// and lowers it GPIO_KEY_LATENCY (100 ms on QEMU's virtual clock) later. A
// second system_powerdown inside that window only pushes the timer back:
// the line never goes low in between, so the guest sees one longer press
// and the second press is lost. See docs/qemu.md.
const QEMUButtonPulse = 100 * time.Millisecond

// PressGap is the least time Press leaves between the QMP replies of two
// presses: the pulse, then the driver's 30 ms debounce window after the
// release, plus margin for a guest on a loaded host to take the falling
// edge before the next rising one (PL061 latches both edges in one
// interrupt status bit, so two edges the guest has not yet handled are one
// interrupt).
const PressGap = 300 * time.Millisecond

// PressSeenTimeout bounds how long Press waits for the guest to record the
// press (a BUTTON_PRESSED audit record).
const PressSeenTimeout = 10 * time.Second

// auditLineRE is one line of the console's audit command:
// "SEQ RFC3339-TIME EVENT ...".
var auditLineRE = regexp.MustCompile(`(?m)^\s*(\d+) \S+ ([A-Z0-9_]+)`)

// AuditMark is the highest audit sequence number the device shows now
// (0 when it has no records). Presses recorded later have higher numbers.
func (d *Device) AuditMark(ctx context.Context) (int, error) {
	out, err := d.Command(ctx, "audit 1")
	if err != nil {
		return 0, fmt.Errorf("audit mark: %w", err)
	}
	mark := 0
	for _, m := range auditLineRE.FindAllStringSubmatch(out, -1) {
		if n, err := strconv.Atoi(m[1]); err == nil && n > mark {
			mark = n
		}
	}
	return mark, nil
}

// PressesSince counts the BUTTON_PRESSED audit records after mark (among
// the last 200 records, the console's maximum).
func (d *Device) PressesSince(ctx context.Context, mark int) (int, error) {
	out, err := d.Command(ctx, "audit 200")
	if err != nil {
		return 0, fmt.Errorf("count presses: %w", err)
	}
	n := 0
	for _, m := range auditLineRE.FindAllStringSubmatch(out, -1) {
		if seq, err := strconv.Atoi(m[1]); err == nil && seq > mark && m[2] == "BUTTON_PRESSED" {
			n++
		}
	}
	return n, nil
}

// Press presses the button the way a technician does and returns once the
// guest has recorded the press (a BUTTON_PRESSED audit record newer than
// the ones before the press). It first lets PressGap pass since the
// previous Press, so QEMU's pulses never merge (QEMUButtonPulse). A press
// the guest does not record within PressSeenTimeout is an error that says
// the device's state and shows the end of the console log: it is never
// pressed again blindly.
func (d *Device) Press(ctx context.Context) error {
	mark, err := d.AuditMark(ctx)
	if err != nil {
		return fmt.Errorf("press: %w", err)
	}
	if err := d.pressRaw(ctx); err != nil {
		return err
	}
	return d.waitPressSeen(ctx, mark)
}

// pressRaw waits out PressGap since the previous press and presses once.
func (d *Device) pressRaw(ctx context.Context) error {
	if wait := time.Until(d.lastPress.Add(PressGap)); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("press: waiting %v for the previous pulse to end: %w", wait, ctx.Err())
		case <-t.C:
		}
	}
	err := d.PressButton(ctx)
	d.lastPress = time.Now()
	return err
}

// waitPressSeen polls the audit log until a BUTTON_PRESSED newer than mark
// appears.
func (d *Device) waitPressSeen(ctx context.Context, mark int) error {
	wctx, cancel := context.WithTimeout(ctx, PressSeenTimeout)
	defer cancel()
	for {
		n, err := d.PressesSince(wctx, mark)
		if err == nil && n > 0 {
			return nil
		}
		select {
		case <-wctx.Done():
			return d.Failure(fmt.Sprintf("press not recorded by the guest within %v (no BUTTON_PRESSED after audit record %d; last error %v)", PressSeenTimeout, mark, err))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PressFor presses once (Press) and waits until the console reports state
// want.
func (d *Device) PressFor(ctx context.Context, want string) error {
	if err := d.Press(ctx); err != nil {
		return err
	}
	return d.WaitStateFor(ctx, want, time.Minute)
}

// WaitStateFor is WaitState bounded by limit, failing with the device's
// state and the end of the console log.
func (d *Device) WaitStateFor(ctx context.Context, want string, limit time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := d.WaitState(wctx, want); err != nil {
		return d.Failure(fmt.Sprintf("waiting %v for state %s: %v", limit, want, err))
	}
	return nil
}

// FactoryResetConfirmed runs the console's factory-reset and confirms it
// with a button press inside the device's window, then waits for
// UNPROVISIONED. The console runs one command at a time, so the press is
// confirmed by the command's own answer first and the audit record after.
func (d *Device) FactoryResetConfirmed(ctx context.Context) error {
	return d.confirmed(ctx, "factory-reset", "factory reset", factoryResetEndRE, "factory reset done", "UNPROVISIONED")
}

// ReprovisionConfirmed runs the console's reprovision and confirms it with
// a button press, then waits for READY_TO_PAIR.
func (d *Device) ReprovisionConfirmed(ctx context.Context) error {
	return d.confirmed(ctx, "reprovision", "reprovision", reprovisionEndRE, "pairing open", "READY_TO_PAIR")
}

// confirmed runs a console command that waits for the button, presses it
// at the prompt, and checks the answer starts with done and the device
// reaches state.
func (d *Device) confirmed(ctx context.Context, line, what string, end *regexp.Regexp, done, state string) error {
	mark, err := d.AuditMark(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.SendLine(line); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := d.Expect(wctx, confirmAskRE); err != nil {
		return d.Failure(fmt.Sprintf("%s: no confirmation prompt: %v", what, err))
	}
	if err := d.pressRaw(wctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	m, err := d.ExpectSubmatch(wctx, end)
	if err != nil {
		return d.Failure(fmt.Sprintf("%s: no answer after the press: %v", what, err))
	}
	if !strings.HasPrefix(m[0], done) {
		return d.Failure(fmt.Sprintf("%s: %q", what, strings.TrimSpace(m[0])))
	}
	if err := d.waitPressSeen(ctx, mark); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return d.WaitStateFor(ctx, state, 30*time.Second)
}

var (
	confirmAskRE      = regexp.MustCompile(`press the Enable Provisioning button within \d+ s to confirm`)
	factoryResetEndRE = regexp.MustCompile(`factory reset done[^\n]*|factory reset cancelled[^\n]*|error: factory-reset[^\n]*`)
	reprovisionEndRE  = regexp.MustCompile(`pairing open[^\n]*|re-provisioning cancelled[^\n]*|error: reprovision[^\n]*`)
)

// ConsoleTail is how much of the console log a failure message shows.
const ConsoleTail = 3000

// Failure is an error saying what the harness waited for, the state the
// console reports now (asked with a short deadline of its own) and the end
// of the console log.
func (d *Device) Failure(what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := d.State(ctx)
	if err != nil {
		st = "unknown (" + err.Error() + ")"
	}
	text := d.ConsoleText()
	if len(text) > ConsoleTail {
		text = "…" + text[len(text)-ConsoleTail:]
	}
	return fmt.Errorf("%s; device state %s; console tail:\n%s", what, st, text)
}
