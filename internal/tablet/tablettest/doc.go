// Package tablettest runs the real Central Station tablet API
// (internal/central/server on SQLite in a temporary directory, behind a TLS
// 1.3 httptest server) with a scripted, hand-written job.Provisioner and a
// stepping clock for the tablet, so that tests of internal/tablet and
// cmd/zm-pair see a deterministic progress timeline without sleeps. Test
// code only.
package tablettest
