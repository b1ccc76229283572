package pipeline

import (
	"path/filepath"
	"testing"

	"github.com/netmeter/netmeter/internal/attribution/container"
)

// A runtime that does not answer leaves the container unnamed (ok false),
// so aggregation asks again later instead of naming it by its short id for
// good — the cause of a Podman container never named under CI load.
func TestRegistryResolverUnanswered(t *testing.T) {
	reg, err := container.NewRegistry(container.WithDockerSockets(filepath.Join(t.TempDir(), "none.sock")), container.WithCRIEndpoints())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	rr := newRegistryResolver(reg)
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if in, ok := rr.Lookup(container.Ref{Runtime: container.Podman, ID: id}); ok {
		t.Fatalf("Lookup without an answering runtime = %+v, true", in)
	}
	if in, ok := rr.Lookup(container.Ref{Runtime: container.Nspawn, ID: "build-vm"}); !ok || in.Name != "build-vm" {
		t.Fatalf("nspawn machine (no runtime to ask) = %+v, %v", in, ok)
	}
}
