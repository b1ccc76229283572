package testnet

import (
	"os"
	"testing"
)

// EnvRequirePrivileged is the environment variable that turns the skip of
// [RequirePrivileged] into a failure. CI sets it to "1" so a privileged test
// can never pass by being skipped.
const EnvRequirePrivileged = "NETMETER_REQUIRE_PRIVILEGED"

// RequirePrivileged skips t, saying why, unless the process runs as root
// (effective uid 0). When NETMETER_REQUIRE_PRIVILEGED=1 it fails t instead.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const why = "needs root (euid 0) to create network namespaces, veth links and cgroups"
	if os.Getenv(EnvRequirePrivileged) == "1" {
		t.Fatalf("%s; running as euid %d with %s=1", why, os.Geteuid(), EnvRequirePrivileged)
	}
	t.Skipf("%s; running as euid %d (set %s=1 to fail instead)", why, os.Geteuid(), EnvRequirePrivileged)
}
