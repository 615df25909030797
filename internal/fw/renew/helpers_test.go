package renew_test

import (
	"os"
	"testing"

	"github.com/zmonitor/firmware/internal/fw/conncheck"
)

func conncheckConfig() conncheck.Config { return conncheck.Config{Attempts: 1} }

func TestMain(m *testing.M) { os.Exit(m.Run()) }
