package alert

import (
	"fmt"
	"strconv"
)

// ifaceErrors counts each interface's errors (rx_errors + tx_errors) and
// drops (rx_dropped + tx_dropped) per slot of window/10. Any error in the
// latest window fires the "errors" alert; drops averaged over the whole
// window (not the watched part, so the first seconds after start cannot
// read as a high rate) above drop_rate fire the "drops" alert. Each
// resolves when its window no longer qualifies: errors after a window
// without any.
type ifaceErrors struct {
	c    *compiled
	clk  *clock
	ents map[entKey]*errEnt
}

type errEnt struct {
	rxErr, txErr, rxDrop, txDrop series
	lastSeen                     int64
}

func newIfaceErrors(c *compiled) *ifaceErrors {
	return &ifaceErrors{c: c, clk: newClock(c.Window, 1), ents: map[entKey]*errEnt{}}
}

func (f *ifaceErrors) stats() (int, uint64) { return len(f.ents), 0 }

func (f *ifaceErrors) check(in *input) []instance {
	if in.snap != nil {
		f.feed(in)
	}
	var out []instance
	win := f.c.Window.Seconds()
	for k, e := range f.ents {
		rxE, txE := e.rxErr.sum(f.clk, 0), e.txErr.sum(f.clk, 0)
		if rxE+txE > 0 {
			out = append(out, instance{
				labels:  entityLabels(k, map[string]string{"counter": "errors"}),
				summary: fmt.Sprintf("interface %s: %d errors in the last %s", k.name, rxE+txE, f.c.Window),
				description: fmt.Sprintf("interface %s%s counted %d receive and %d transmit errors in the last %s "+
					"(CRC, frame, FIFO, carrier … errors; rule: any error).", k.name, netnsNote(k.netns), rxE, txE, f.c.Window),
			})
		}
		rxD, txD := e.rxDrop.sum(f.clk, 0), e.txDrop.sum(f.clk, 0)
		if rate := float64(rxD+txD) / win; rate > f.c.DropRate {
			out = append(out, instance{
				labels: entityLabels(k, map[string]string{"counter": "drops"}),
				summary: fmt.Sprintf("interface %s drops %s packets/s", k.name,
					strconv.FormatFloat(rate, 'f', 1, 64)),
				description: fmt.Sprintf("interface %s%s dropped %d received and %d transmitted packets in the last %s, "+
					"%s per second (rule: more than %v per second).", k.name, netnsNote(k.netns), rxD, txD, f.c.Window,
					strconv.FormatFloat(rate, 'f', 2, 64), f.c.DropRate),
			})
		}
	}
	return out
}

func (f *ifaceErrors) feed(in *input) {
	if steps := f.clk.advance(in.now); steps > 0 {
		for k, e := range f.ents {
			for _, s := range []series{e.rxErr, e.txErr, e.rxDrop, e.txDrop} {
				s.advance(f.clk, steps)
			}
			if f.clk.cur-e.lastSeen >= slotsPerWindow && e.rxErr.zero() && e.txErr.zero() && e.rxDrop.zero() && e.txDrop.zero() {
				delete(f.ents, k)
			}
		}
	}
	for i := range in.snap.Interfaces {
		ifc := &in.snap.Interfaces[i]
		if !ifc.Present || !f.c.matches(ifc.Name) {
			continue
		}
		k := entKey{"interface", ifc.Netns, ifc.Name}
		e := f.ents[k]
		if e == nil {
			n := f.clk.n
			e = &errEnt{rxErr: make(series, n), txErr: make(series, n), rxDrop: make(series, n), txDrop: make(series, n)}
			f.ents[k] = e
		}
		e.lastSeen = f.clk.cur
		d := &ifc.Delta
		e.rxErr.add(f.clk, d.RxErrors)
		e.txErr.add(f.clk, d.TxErrors)
		e.rxDrop.add(f.clk, d.RxDropped)
		e.txDrop.add(f.clk, d.TxDropped)
	}
}
