package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ErrNoEvents is returned by [CRISource.Events] when the runtime does not
// stream container events (CRI GetContainerEvents is optional); callers rely
// on periodic List then.
var ErrNoEvents = errors.New("runtime does not stream container events")

// CRISource reads containers and pod sandboxes from a Kubernetes Container
// Runtime Interface (v1) endpoint: containerd's CRI plugin or CRI-O. Only the
// containers of the CRI's own namespace are visible (for containerd, k8s.io),
// not those Docker or nerdctl created.
type CRISource struct {
	endpoint string
	conn     *grpc.ClientConn
	rt       cri.RuntimeServiceClient

	mu      sync.Mutex
	runtime string
}

// NewCRI returns a source for the CRI endpoint, a unix socket path or a
// unix:// address. It does not connect: the first call does.
func NewCRI(endpoint string) (*CRISource, error) {
	target := endpoint
	if !strings.HasPrefix(target, "unix:") {
		target = "unix://" + target
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return nil, fmt.Errorf("cri client for %s: %w", endpoint, err)
	}
	return &CRISource{endpoint: endpoint, conn: conn, rt: cri.NewRuntimeServiceClient(conn)}, nil
}

func (c *CRISource) String() string { return "cri " + c.endpoint }

// Close closes the connection.
func (c *CRISource) Close() error { return c.conn.Close() }

// Runtime returns the runtime's name from the CRI Version call: Containerd,
// CRIO, or what an unknown runtime calls itself.
func (c *CRISource) Runtime(ctx context.Context) (string, error) {
	c.mu.Lock()
	rt := c.runtime
	c.mu.Unlock()
	if rt != "" {
		return rt, nil
	}
	v, err := c.rt.Version(ctx, &cri.VersionRequest{})
	if err != nil {
		return "", fmt.Errorf("%s: version: %w", c, err)
	}
	switch rt = v.GetRuntimeName(); strings.ToLower(rt) {
	case "containerd":
		rt = Containerd
	case "cri-o", "crio":
		rt = CRIO
	}
	c.mu.Lock()
	c.runtime = rt
	c.mu.Unlock()
	return rt, nil
}

// List returns the running containers with their pods' metadata.
func (c *CRISource) List(ctx context.Context) ([]Info, error) {
	rt, err := c.Runtime(ctx)
	if err != nil {
		return nil, err
	}
	ctrs, err := c.rt.ListContainers(ctx, &cri.ListContainersRequest{Filter: &cri.ContainerFilter{
		State: &cri.ContainerStateValue{State: cri.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		return nil, fmt.Errorf("%s: list containers: %w", c, err)
	}
	pods, err := c.rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("%s: list pod sandboxes: %w", c, err)
	}
	listed := make(map[string]*cri.PodSandbox, len(pods.GetItems()))
	for _, p := range pods.GetItems() {
		listed[p.GetId()] = p
	}
	// The list has metadata and labels; the status adds network and
	// namespaces. A sandbox removed since the list keeps the former.
	sandboxes := make(map[string]*cri.PodSandboxStatus, len(listed))
	out := make([]Info, 0, len(ctrs.GetContainers()))
	for _, ct := range ctrs.GetContainers() {
		id := ct.GetPodSandboxId()
		sb, ok := sandboxes[id]
		if !ok {
			sb, err = c.sandboxStatus(ctx, id)
			switch {
			case errors.Is(err, ErrNotFound):
				if p := listed[id]; p != nil {
					sb = &cri.PodSandboxStatus{Id: id, Metadata: p.GetMetadata(), Labels: p.GetLabels(), State: p.GetState()}
				}
			case err != nil:
				return nil, err
			}
			sandboxes[id] = sb
		}
		st, pid, err := c.containerStatus(ctx, ct.GetId())
		if errors.Is(err, ErrNotFound) {
			continue // removed since the list
		}
		if err != nil {
			return nil, err
		}
		out = append(out, criInfo(rt, ct, st, pid, sb))
	}
	return out, nil
}

// Inspect returns one container, or a pod sandbox (its pause container) as
// an Info named after the pod.
func (c *CRISource) Inspect(ctx context.Context, id string) (Info, error) {
	rt, err := c.Runtime(ctx)
	if err != nil {
		return Info{}, err
	}
	ctrs, err := c.rt.ListContainers(ctx, &cri.ListContainersRequest{Filter: &cri.ContainerFilter{Id: id}})
	if err != nil {
		return Info{}, fmt.Errorf("%s: list container %s: %w", c, ShortID(id), err)
	}
	var ct *cri.Container
	for _, x := range ctrs.GetContainers() {
		if x.GetId() == id {
			ct = x
		}
	}
	if ct == nil {
		sb, err := c.sandboxStatus(ctx, id)
		if err != nil {
			return Info{}, err
		}
		in := criInfo(rt, &cri.Container{Id: id, Metadata: &cri.ContainerMetadata{Name: "POD"}},
			&cri.ContainerStatus{State: sandboxState(sb.GetState()), StartedAt: sb.GetCreatedAt()}, 0, sb)
		return in, nil
	}
	st, pid, err := c.containerStatus(ctx, id)
	if err != nil {
		return Info{}, err
	}
	sb, err := c.sandboxStatus(ctx, ct.GetPodSandboxId())
	if errors.Is(err, ErrNotFound) {
		sb = nil
	} else if err != nil {
		return Info{}, err
	}
	return criInfo(rt, ct, st, pid, sb), nil
}

func sandboxState(s cri.PodSandboxState) cri.ContainerState {
	if s == cri.PodSandboxState_SANDBOX_READY {
		return cri.ContainerState_CONTAINER_RUNNING
	}
	return cri.ContainerState_CONTAINER_EXITED
}

// containerStatus returns the status and, from the verbose info both
// containerd and CRI-O return ({"pid": N, …} under "info"), the init pid.
func (c *CRISource) containerStatus(ctx context.Context, id string) (*cri.ContainerStatus, int, error) {
	r, err := c.rt.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if status.Code(err) == codes.NotFound {
		return nil, 0, fmt.Errorf("%s: container status %s: %w", c, ShortID(id), ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: container status %s: %w", c, ShortID(id), err)
	}
	var v struct {
		PID int `json:"pid"`
	}
	if s, ok := r.GetInfo()["info"]; ok {
		_ = json.Unmarshal([]byte(s), &v) // best effort: the pid is optional
	}
	return r.GetStatus(), v.PID, nil
}

func (c *CRISource) sandboxStatus(ctx context.Context, id string) (*cri.PodSandboxStatus, error) {
	r, err := c.rt.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: id})
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("%s: pod sandbox status %s: %w", c, ShortID(id), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: pod sandbox status %s: %w", c, ShortID(id), err)
	}
	return r.GetStatus(), nil
}

func criInfo(rt string, ct *cri.Container, st *cri.ContainerStatus, pid int, sb *cri.PodSandboxStatus) Info {
	in := Info{
		Runtime: rt,
		ID:      ct.GetId(),
		Name:    ct.GetMetadata().GetName(),
		Labels:  ct.GetLabels(),
		Running: st.GetState() == cri.ContainerState_CONTAINER_RUNNING,
	}
	if in.Labels == nil {
		in.Labels = st.GetLabels()
	}
	if in.Running {
		in.PID = pid
	}
	if t := st.GetStartedAt(); t != 0 {
		in.StartedAt = time.Unix(0, t)
	}
	// Prefer the name the user wrote over a digest: the kubelet passes the
	// image id as Image and the manifest's name as UserSpecifiedImage.
	for _, img := range []string{
		st.GetImage().GetUserSpecifiedImage(), st.GetImage().GetImage(),
		ct.GetImage().GetUserSpecifiedImage(), ct.GetImage().GetImage(),
		st.GetImageRef(), ct.GetImageRef(),
	} {
		if img != "" && (in.Image == "" || strings.HasPrefix(in.Image, "sha256:")) {
			in.Image = img
		}
	}
	if sb != nil {
		md := sb.GetMetadata()
		in.PodName, in.PodNamespace, in.PodUID = md.GetName(), md.GetNamespace(), md.GetUid()
		in.PodLabels = sb.GetLabels()
		in.NetworkMode = "pod"
		if sb.GetLinux().GetNamespaces().GetOptions().GetNetwork() == cri.NamespaceMode_NODE {
			in.NetworkMode = "node"
			in.HostNetwork = true
		}
		if !in.HostNetwork {
			// The CRI reports the node's address for host-network pods;
			// that is not the container's own.
			for _, s := range append([]string{sb.GetNetwork().GetIp()}, podIPs(sb.GetNetwork().GetAdditionalIps())...) {
				if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(in.IPs, a) {
					in.IPs = append(in.IPs, a)
				}
			}
			slices.SortFunc(in.IPs, netip.Addr.Compare)
		}
	}
	in.fill()
	return in
}

func podIPs(ips []*cri.PodIP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.GetIp())
	}
	return out
}

// Events follows the runtime's container events (CRI GetContainerEvents:
// containerd 1.7+, CRI-O 1.26+) until ctx ends or the stream breaks. It
// returns [ErrNoEvents] when the runtime does not implement the call.
func (c *CRISource) Events(ctx context.Context, fn func(Event)) error {
	rt, err := c.Runtime(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rt.GetContainerEvents(ctx, &cri.GetEventsRequest{})
	for err == nil {
		var r *cri.ContainerEventResponse
		r, err = stream.Recv()
		if err != nil {
			break
		}
		ev := Event{Runtime: rt, ID: r.GetContainerId()}
		switch r.GetContainerEventType() {
		case cri.ContainerEventType_CONTAINER_STARTED_EVENT:
			ev.Type = EventStart
		case cri.ContainerEventType_CONTAINER_STOPPED_EVENT:
			ev.Type = EventDie
		case cri.ContainerEventType_CONTAINER_DELETED_EVENT:
			ev.Type = EventDestroy
		default:
			continue
		}
		if t := r.GetCreatedAt(); t != 0 {
			ev.Time = time.Unix(0, t)
		}
		for _, st := range r.GetContainersStatuses() {
			if st.GetId() == ev.ID {
				ev.Name = st.GetMetadata().GetName()
				ev.ExitCode = int(st.GetExitCode())
			}
		}
		fn(ev)
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case status.Code(err) == codes.Unimplemented:
		return fmt.Errorf("%s: %w", c, ErrNoEvents)
	case errors.Is(err, io.EOF):
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s: container events: %w", c, err)
}
