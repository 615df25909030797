// Package settings is the device's SettingsManager (DOC-COMP-022, DESIGN.md
// 6 and 7): the committed provisioning, the staged provisioning of a
// pairing in progress, and a little device state, in one bbolt file
// (settings.db) on the data partition.
//
// # Stage, test, commit
//
// APPLYING_CONFIG calls Stage; TESTING_CONNECTION reads Staged; success
// calls Commit, which moves the stage to current and deletes the stage in
// one bbolt transaction; failure calls Discard. bbolt commits a
// transaction by writing new pages, fsyncing, then switching one of two
// checksummed meta pages and fsyncing again, so after a power cut either
// the old or the new provisioning is current, never a mixture.
//
// Open discards a stage left by an interrupted pairing (a power cut or a
// crash between Stage and Commit) in one transaction and records
// STAGE_DISCARDED on the audit recorder before that transaction commits:
// no stage disappears unaudited (a crash after the audit record but before
// the commit leaves the stage for the next boot, which audits it again).
// If the recorder fails, Open fails.
//
// # No key material
//
// Provisioning holds certificates and a reference to the TPM-held client
// key (ClientKeyRef), never private key material; Validate refuses a
// reference that looks like a key (PEM, DER, long base64 or hex).
//
// # Schema
//
// The meta bucket holds schemaVersion. Open migrates an older file in one
// transaction (version 0 is a file with no buckets, e.g. a new one) and
// refuses a newer one with ErrSchemaTooNew rather than misread it. Every
// record is validated when read; a damaged one gives an error wrapping
// ErrCorrupt.
//
// A second Open of the same file (another process, or the same process
// twice) fails with ErrLocked after a timeout instead of hanging.
package settings
