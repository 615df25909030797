package store

import (
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Backend names a database engine.
type Backend int

// Backends.
const (
	SQLite Backend = iota + 1
	PostgreSQL
)

func (b Backend) String() string {
	switch b {
	case SQLite:
		return "sqlite"
	case PostgreSQL:
		return "postgres"
	}
	return "Backend(" + strconv.Itoa(int(b)) + ")"
}

// dialect is everything that differs between the backends.
type dialect struct {
	backend Backend
	driver  string
	// types fills the {{NAME}} placeholders of the schema.
	types map[string]string
	// migrationLock runs first in the migration transaction (serializes
	// replicas migrating at once); SQLite's immediate transactions already
	// do.
	migrationLock string
}

var dialects = map[Backend]*dialect{
	SQLite: {
		backend: SQLite,
		driver:  "sqlite",
		types: map[string]string{
			"BLOB":   "BLOB",
			"TIME":   "INTEGER",
			"BIGINT": "INTEGER",
			"SERIAL": "INTEGER PRIMARY KEY AUTOINCREMENT",
		},
	},
	PostgreSQL: {
		backend: PostgreSQL,
		driver:  "pgx",
		types: map[string]string{
			"BLOB":   "BYTEA",
			"TIME":   "BIGINT",
			"BIGINT": "BIGINT",
			"SERIAL": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
		},
		// An arbitrary constant shared by every zm-central replica.
		migrationLock: "SELECT pg_advisory_xact_lock(7208305311)",
	},
}

// expand fills the type placeholders of a schema statement.
func (d *dialect) expand(s string) string {
	for k, v := range d.types {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}

// rebind turns the ? placeholders of q into the backend's form. Queries in
// this package never hold a ? inside a literal.
func (d *dialect) rebind(q string) string {
	if d.backend != PostgreSQL {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// SQLite extended result codes for constraint violations.
const (
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// isUniqueViolation reports whether err is a unique or primary key
// violation.
func (d *dialect) isUniqueViolation(err error) bool {
	switch d.backend {
	case SQLite:
		var e interface{ Code() int }
		if errors.As(err, &e) {
			return e.Code() == sqliteConstraintUnique || e.Code() == sqliteConstraintPrimaryKey
		}
	case PostgreSQL:
		var e *pgconn.PgError
		if errors.As(err, &e) {
			return e.Code == "23505"
		}
	}
	return false
}
