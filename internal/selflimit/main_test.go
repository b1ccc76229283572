package selflimit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/netmeter/netmeter/internal/testnet"
)

// Child roles of the kernel tests, run by re-executing the test binary.
const (
	// roleMemHog reports ready, waits for a byte on stdin (the signal that
	// its cgroup is in place), then allocates and touches hogBytes.
	roleMemHog = "selflimit-memhog"
	// roleApplySelf runs Apply on itself with a CPU limit and the cgroup
	// name given as its argument, and fails with Apply's error.
	roleApplySelf = "selflimit-apply-self"
)

const hogBytes = 256 << 20

func TestMain(m *testing.M) {
	testnet.RegisterRole(roleMemHog, func(_ context.Context, _ []string, rep *testnet.Reporter) error {
		rep.Ready("")
		if _, err := os.Stdin.Read(make([]byte, 1)); err != nil {
			return fmt.Errorf("wait for the go-ahead: %w", err)
		}
		b := make([]byte, hogBytes)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		rep.Result(testnet.Result{Bytes: int64(len(b))})
		return nil
	})
	testnet.RegisterRole(roleApplySelf, func(_ context.Context, args []string, rep *testnet.Reporter) error {
		if len(args) != 1 {
			return errors.New("want one argument: the cgroup name")
		}
		a, err := Apply(os.Getpid(), Limits{CPU: 0.5, Name: args[0]})
		if err != nil {
			return err
		}
		return errors.Join(errors.New("Apply succeeded: "+a.String()), a.Remove())
	})
	testnet.Main(m)
}
