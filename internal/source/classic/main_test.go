package classic_test

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

// roleHoldSend is tcp-send whose connections each live at least -hold: it
// sends half the bytes, waits, sends the rest, then half-closes and reads
// the server's count like testnet.SendTCP.
const roleHoldSend = "hold-send"

func init() { testnet.RegisterRole(roleHoldSend, holdSend) }

func holdSend(ctx context.Context, args []string, rep *testnet.Reporter) error {
	fs := flag.NewFlagSet(roleHoldSend, flag.ContinueOnError)
	addr := fs.String("addr", "", "server address")
	n := fs.Int("bytes", 0, "payload bytes per connection")
	conns := fs.Int("conns", 1, "connections, one after another")
	hold := fs.Duration("hold", 0, "pause in the middle of each connection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep.Ready("")
	res := testnet.Result{Proto: "tcp"}
	buf := make([]byte, *n)
	for i := range *conns {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", *addr)
		if err != nil {
			return err
		}
		_, err = c.Write(buf[:*n/2])
		if err == nil {
			time.Sleep(*hold)
			_, err = c.Write(buf[*n/2:])
		}
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		var ack [testnet.TCPAckSize]byte
		if err == nil {
			_, err = io.ReadFull(c, ack[:])
		}
		c.Close()
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		if got := binary.BigEndian.Uint64(ack[:]); got != uint64(*n) {
			return fmt.Errorf("connection %d: server got %d of %d bytes", i, got, *n)
		}
		res.Conns++
		res.Bytes += int64(*n)
	}
	rep.Result(res)
	return nil
}
