package container

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// DockerSource reads containers from a Docker Engine API socket: dockerd's,
// or Podman's Docker-compatible service (podman system service), which
// speaks the same API. It uses the moby client, which negotiates the API
// version (Docker 20.10 and Podman 4 speak 1.41).
type DockerSource struct {
	socket string
	cli    *client.Client

	mu      sync.Mutex
	runtime string // Docker or Podman, once the engine has said
}

// NewDocker returns a source for the Engine API on the unix socket at
// socketPath. It does not connect: the first call does.
func NewDocker(socketPath string) (*DockerSource, error) {
	cli, err := client.New(client.WithHost("unix://" + socketPath))
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", socketPath, err)
	}
	return &DockerSource{socket: socketPath, cli: cli}, nil
}

func (d *DockerSource) String() string { return "docker-api " + d.socket }

// Close closes idle connections.
func (d *DockerSource) Close() error { return d.cli.Close() }

// Runtime asks the engine which it is: Podman when its version names a
// Podman component, else Docker.
func (d *DockerSource) Runtime(ctx context.Context) (string, error) {
	d.mu.Lock()
	rt := d.runtime
	d.mu.Unlock()
	if rt != "" {
		return rt, nil
	}
	v, err := d.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("%s: version: %w", d, err)
	}
	rt = Docker
	for _, c := range v.Components {
		if strings.Contains(strings.ToLower(c.Name), "podman") {
			rt = Podman
		}
	}
	d.mu.Lock()
	d.runtime = rt
	d.mu.Unlock()
	return rt, nil
}

// List returns the running containers, each inspected for its pid, network
// and ports.
func (d *DockerSource) List(ctx context.Context) ([]Info, error) {
	rt, err := d.Runtime(ctx)
	if err != nil {
		return nil, err
	}
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: list containers: %w", d, err)
	}
	out := make([]Info, 0, len(res.Items))
	for _, s := range res.Items {
		r, err := d.cli.ContainerInspect(ctx, s.ID, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue // removed since the list
		}
		if err != nil {
			return nil, fmt.Errorf("%s: inspect %s: %w", d, ShortID(s.ID), err)
		}
		in := infoFromInspect(rt, &r.Container)
		if in.Image == "" {
			in.Image = s.Image
		}
		out = append(out, in)
	}
	return out, nil
}

// Inspect returns one container, running or not.
func (d *DockerSource) Inspect(ctx context.Context, id string) (Info, error) {
	rt, err := d.Runtime(ctx)
	if err != nil {
		return Info{}, err
	}
	r, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return Info{}, fmt.Errorf("%s: inspect %s: %w", d, ShortID(id), ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("%s: inspect %s: %w", d, ShortID(id), err)
	}
	return infoFromInspect(rt, &r.Container), nil
}

// Events follows start, die, destroy and rename events of containers until
// ctx ends (it returns ctx's error) or the stream breaks (it returns why; the
// daemon closing the stream is io.ErrUnexpectedEOF).
func (d *DockerSource) Events(ctx context.Context, fn func(Event)) error {
	rt, err := d.Runtime(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Filter on type only: Podman's compat service names some actions
	// differently, so actions are matched here.
	res := d.cli.Events(ctx, client.EventsListOptions{
		Filters: make(client.Filters).Add("type", string(events.ContainerEventType)),
	})
	for {
		select {
		case m := <-res.Messages:
			if ev, ok := dockerEvent(rt, m); ok {
				fn(ev)
			}
		case err := <-res.Err:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%s: events: %w", d, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func dockerEvent(rt string, m events.Message) (Event, bool) {
	if m.Type != "" && m.Type != events.ContainerEventType {
		return Event{}, false
	}
	ev := Event{Runtime: rt, ID: m.Actor.ID, Name: m.Actor.Attributes["name"]}
	switch m.Action {
	case events.ActionStart:
		ev.Type = EventStart
	case events.ActionDie, "died": // Podman's compat service may pass its own "died"
		ev.Type = EventDie
		ev.ExitCode, _ = strconv.Atoi(m.Actor.Attributes["exitCode"])
	case events.ActionDestroy, "remove", "cleanup":
		if m.Action == "cleanup" {
			return Event{}, false // Podman: the container stays, its mounts go
		}
		ev.Type = EventDestroy
	case events.ActionRename:
		ev.Type = EventRename
		ev.OldName = strings.TrimPrefix(m.Actor.Attributes["oldName"], "/")
	default:
		return Event{}, false
	}
	switch {
	case m.TimeNano != 0:
		ev.Time = time.Unix(0, m.TimeNano)
	case m.Time != 0:
		ev.Time = time.Unix(m.Time, 0)
	}
	return ev, ev.ID != ""
}

func infoFromInspect(rt string, c *ctypes.InspectResponse) Info {
	in := Info{Runtime: rt, ID: c.ID, Name: strings.TrimPrefix(c.Name, "/")}
	if c.Config != nil {
		in.Image = c.Config.Image
		in.Labels = c.Config.Labels
	}
	if c.State != nil {
		in.Running = c.State.Running
		if in.Running {
			in.PID = c.State.Pid
		}
		if t, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil && t.Year() > 1 {
			in.StartedAt = t
		}
	}
	if c.HostConfig != nil {
		mode := string(c.HostConfig.NetworkMode)
		if mode == "default" || mode == "" {
			mode = "bridge"
		}
		in.NetworkMode = mode
		in.HostNetwork = mode == "host"
	}
	if ns := c.NetworkSettings; ns != nil {
		for _, ep := range ns.Networks {
			if ep == nil {
				continue
			}
			for _, a := range []netip.Addr{ep.IPAddress, ep.GlobalIPv6Address} {
				if a.IsValid() && !slices.Contains(in.IPs, a) {
					in.IPs = append(in.IPs, a)
				}
			}
		}
		slices.SortFunc(in.IPs, netip.Addr.Compare)
		for p, bindings := range ns.Ports {
			for _, b := range bindings {
				hp, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					continue
				}
				in.Ports = append(in.Ports, Port{HostIP: b.HostIP, HostPort: uint16(hp), ContainerPort: p.Num(), Proto: string(p.Proto())})
			}
		}
		slices.SortFunc(in.Ports, comparePorts)
	}
	in.fill()
	return in
}

func comparePorts(a, b Port) int {
	return cmp.Or(
		cmp.Compare(a.ContainerPort, b.ContainerPort),
		strings.Compare(a.Proto, b.Proto),
		a.HostIP.Compare(b.HostIP),
		cmp.Compare(a.HostPort, b.HostPort),
	)
}
