// Package store is the Central Station's database: the device inventory
// (imported enrollment records), technicians and their bearer-token hashes,
// pairing attempts and batches, the pairing tokens and codes already used,
// the client certificates issued, and an append-only audit trail.
//
// One interface, Store, has one implementation over database/sql with two
// backends sharing the same schema and numbered migrations:
//
//   - SQLite (modernc.org/sqlite, pure Go: zm-central stays CGO_ENABLED=0),
//     the default, one file, WAL mode, immediate write transactions;
//   - PostgreSQL (github.com/jackc/pgx/v5 through its database/sql driver),
//     for several Central Station replicas sharing the work.
//
// The few differences between the two (placeholders, binary and identity
// column types, unique-violation errors, the migration lock) live in
// dialect.go. Timestamps are stored in both as integer microseconds since
// the Unix epoch, UTC, so that both backends compare and order them the
// same way.
//
// One-time use of pairing tokens and pairing codes is enforced by the
// database, not in memory: ClaimToken and ClaimCode insert into tables whose
// primary key is (device, nonce) and (device, code hash); the second insert
// fails with a unique violation, reported as ErrAlreadyUsed, whichever
// replica or goroutine makes it.
//
// Enrollment records (the manufacturing line's export, internal/enroll's
// format) are parsed by ParseEnrollments from JSON (one object or an array)
// or CSV: each record through enroll.Parse / enroll.Record.Keys, then the
// inventory's stricter checks (internal/proto/strictjson: duplicate and
// case-folded members, null, invalid UTF-8; name alphabet and limits;
// distinct keys).
package store
