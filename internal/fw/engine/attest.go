package engine

import (
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/proto/devicewire"
)

// attestation answers a hello request's attestation nonce: a quote of the
// boot PCRs by the TPM's attestation key and the firmware's event log, or
// the reason the device has none (a direct-kernel board measures nothing).
// It is nil when the Central Station sent no nonce. TPM commands: ReadPublic,
// PCR_Read, Quote (drivers/tpm).
func (e *Engine) attestation(req devicewire.HelloRequest) *devicewire.Attestation {
	nonce, err := req.Nonce() // ParseHelloRequest checked it
	if err != nil || nonce == nil {
		return nil
	}
	a, ok := e.d.Keys.(keys.Attester)
	if !ok {
		return devicewire.Unmeasured("the key store has no attestation key")
	}
	if e.d.EventLog == nil {
		return devicewire.Unmeasured("no measured boot on this board")
	}
	log, err := e.d.EventLog()
	if err != nil {
		return devicewire.Unmeasured("no measured boot: " + err.Error())
	}
	q, err := a.Quote(nonce)
	if err != nil {
		e.log.Warn("attestation quote failed", "err", err)
		return devicewire.Unmeasured("quote failed: " + err.Error())
	}
	return devicewire.NewAttestation(devicewire.Evidence{
		Quote: q.Attest, QuoteSignature: q.Signature, PCR4: q.PCRs[0], PCR7: q.PCRs[1], EventLog: log,
	})
}
