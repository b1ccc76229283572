package pktcount

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/netmeter/netmeter/internal/testnet"
)

// TestMain runs the tests, or a child role (registered with
// testnet.RegisterRole) when testnet.Command re-executed the test binary.
func TestMain(m *testing.M) { testnet.Main(m) }

// lastJSONLine decodes the last line of out into v: roles that report more
// than testnet.Result print one JSON line of their own to stdout.
func lastJSONLine(t *testing.T, out []byte, v any) {
	t.Helper()
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], v); err != nil {
		t.Fatalf("decode child report from %q: %v", out, err)
	}
}

// worldExecutableCopy copies the test binary into a fresh 0755 directory so a
// child running as nobody can execute it (go test's build dir is 0700).
func worldExecutableCopy(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "netmeter-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, filepath.Base(self))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}
