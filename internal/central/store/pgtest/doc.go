// Package pgtest gives tests a PostgreSQL database: either an external
// server named by the environment variable ZM_TEST_PG_DSN, or a throwaway
// cluster it starts itself with Debian's initdb and pg_ctl, listening only on
// a unix socket in a temporary directory (as the postgres user when the
// tests run as root, since PostgreSQL refuses to run as root).
//
// Each test gets a fresh database (CREATE DATABASE), so tests do not see
// each other's rows. Test support only: it starts processes and trusts every
// local connection.
package pgtest
