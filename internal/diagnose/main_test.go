package diagnose_test

import (
	"testing"

	_ "github.com/netmeter/netmeter/internal/diagnose/diagtest" // child roles
	"github.com/netmeter/netmeter/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }
