package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// Environment variables.
const (
	// EnvDSN names an external server (a URL or key=value string) whose
	// user may CREATE DATABASE.
	EnvDSN = "ZM_TEST_PG_DSN"
	// EnvRequired, when "1", turns "PostgreSQL unavailable" into a test
	// failure instead of a skip (CI sets it).
	EnvRequired = "ZM_TEST_PG_REQUIRED"
)

// ErrUnavailable: neither ZM_TEST_PG_DSN nor initdb/pg_ctl.
var ErrUnavailable = errors.New("PostgreSQL unavailable: set " + EnvDSN + " or install Debian's postgresql package (initdb, pg_ctl)")

// Server is a PostgreSQL server for tests.
type Server struct {
	adminDSN string
	// for a cluster we started:
	pgctl, dataDir, dir, runAs string
}

// Required reports whether the environment demands PostgreSQL tests.
func Required() bool { return os.Getenv(EnvRequired) == "1" }

// Start returns the external server named by ZM_TEST_PG_DSN, or starts a
// throwaway cluster. It returns ErrUnavailable when neither is possible.
func Start(ctx context.Context) (*Server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		s := &Server{adminDSN: dsn}
		if err := s.ping(ctx); err != nil {
			return nil, fmt.Errorf("pgtest: %s: %w", EnvDSN, err)
		}
		return s, nil
	}
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	return startCluster(ctx, bin)
}

// findBin finds the directory with initdb and pg_ctl.
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", ErrUnavailable
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func startCluster(ctx context.Context, bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "zm-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{pgctl: filepath.Join(bin, "pg_ctl"), dir: dir, dataDir: filepath.Join(dir, "data")}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user
		// (created by Debian's package) in a directory it owns.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root and no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		s.runAs = "postgres"
	}
	if out, err := s.run(ctx, filepath.Join(bin, "initdb"), "-D", s.dataDir, "--auth=trust", "-U", "postgres",
		"--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w: %s", err, out)
	}
	opts := fmt.Sprintf("-k %s -c listen_addresses='' -F -c max_connections=200", dir)
	if out, err := s.run(ctx, s.pgctl, "-D", s.dataDir, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: pg_ctl start: %w: %s %s", err, out, log)
	}
	s.adminDSN = fmt.Sprintf("host=%s user=postgres dbname=postgres sslmode=disable", dir)
	if err := s.ping(ctx); err != nil {
		s.Stop()
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return s, nil
}

func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if s.runAs != "" {
		args = append([]string{"-u", s.runAs, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

func (s *Server) ping(ctx context.Context) error {
	db, err := sql.Open("pgx", s.adminDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

// NewDatabase creates a fresh, empty database and returns its DSN in the
// form store.Open takes ("postgres:..." or "postgres://...").
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	name := "zmtest_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", s.adminDSN)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return withDatabase(s.adminDSN, name)
}

// withDatabase returns dsn naming database name instead.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("pgtest: %s is not a URL", EnvDSN)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	return "postgres:" + dsn + " dbname=" + name, nil
}

// Stop stops a cluster Start started and deletes its files; for an
// external server it does nothing.
func (s *Server) Stop() error {
	if s == nil || s.dir == "" {
		return nil
	}
	out, err := s.run(context.Background(), s.pgctl, "-D", s.dataDir, "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.dir)
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w: %s", err, out)
	}
	return nil
}
