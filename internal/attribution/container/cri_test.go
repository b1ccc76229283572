package container

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// No Kubernetes runs on the test machines, so CRISource is tested against an
// in-process fake CRI RuntimeService on a unix socket: a gRPC server that
// implements the calls the source makes (Version, ListContainers,
// ListPodSandbox, ContainerStatus, PodSandboxStatus, GetContainerEvents)
// and answers with responses shaped like containerd 1.7's CRI plugin for a
// node with an nginx Deployment pod and a hostNetwork kube-proxy pod. The
// real gRPC client and protobuf encoding run; only the runtime is fake.

const (
	webPodID   = "5f1c2d0a9e8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"
	nginxID    = "c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	oldNginxID = "dead000123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	proxyPodID = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
	proxyID    = "beef000123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	webPodUID  = "1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
)

type fakeCRI struct {
	cri.UnimplementedRuntimeServiceServer
	runtimeName string
	noEvents    bool
	events      []*cri.ContainerEventResponse

	mu          sync.Mutex
	statusCalls []*cri.ContainerStatusRequest
	listCalls   []*cri.ListContainersRequest
}

func newFakeCRI(runtimeName string) *fakeCRI {
	return &fakeCRI{runtimeName: runtimeName}
}

func (f *fakeCRI) serve(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	if f != nil {
		cri.RegisterRuntimeServiceServer(srv, f)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return sock
}

func (f *fakeCRI) Version(context.Context, *cri.VersionRequest) (*cri.VersionResponse, error) {
	return &cri.VersionResponse{Version: "0.1.0", RuntimeName: f.runtimeName, RuntimeVersion: "v1.7.24", RuntimeApiVersion: "v1"}, nil
}

var criContainers = []*cri.Container{
	{
		Id: nginxID, PodSandboxId: webPodID,
		Metadata: &cri.ContainerMetadata{Name: "nginx", Attempt: 1},
		Image:    &cri.ImageSpec{Image: "sha256:a8758716bb6aa4d90071160d27028fe4eaee7ce8166221a97d30440c8eac2be6"},
		ImageRef: "sha256:a8758716bb6aa4d90071160d27028fe4eaee7ce8166221a97d30440c8eac2be6",
		State:    cri.ContainerState_CONTAINER_RUNNING, CreatedAt: 1795430000123456789,
		Labels: map[string]string{
			"io.kubernetes.container.name": "nginx",
			"io.kubernetes.pod.name":       "web-7d4b9c-x2x9z",
			"io.kubernetes.pod.namespace":  "default",
			"io.kubernetes.pod.uid":        webPodUID,
		},
		Annotations: map[string]string{"io.kubernetes.container.restartCount": "1"},
	},
	{
		Id: oldNginxID, PodSandboxId: webPodID,
		Metadata: &cri.ContainerMetadata{Name: "nginx", Attempt: 0},
		Image:    &cri.ImageSpec{Image: "sha256:a8758716bb6aa4d90071160d27028fe4eaee7ce8166221a97d30440c8eac2be6"},
		State:    cri.ContainerState_CONTAINER_EXITED,
	},
	{
		Id: proxyID, PodSandboxId: proxyPodID,
		Metadata: &cri.ContainerMetadata{Name: "kube-proxy"},
		Image:    &cri.ImageSpec{Image: "sha256:3c1a5e9f7b2d4c6e8a0b1d3f5e7c9a2b4d6f8e0a1c3e5b7d9f2a4c6e8b0d1f3a"},
		State:    cri.ContainerState_CONTAINER_RUNNING, CreatedAt: 1795420000000000000,
		Labels: map[string]string{
			"io.kubernetes.container.name": "kube-proxy",
			"io.kubernetes.pod.name":       "kube-proxy-8xk2p",
			"io.kubernetes.pod.namespace":  "kube-system",
			"io.kubernetes.pod.uid":        "6e5d4c3b-2a19-0817-2635-44536271809a",
		},
	},
}

var criStatuses = map[string]*cri.ContainerStatusResponse{
	nginxID: {
		Status: &cri.ContainerStatus{
			Id: nginxID, Metadata: &cri.ContainerMetadata{Name: "nginx", Attempt: 1},
			State: cri.ContainerState_CONTAINER_RUNNING, CreatedAt: 1795430000123456789, StartedAt: 1795430000456789012,
			Image:    &cri.ImageSpec{Image: "docker.io/library/nginx:1.25", UserSpecifiedImage: "nginx:1.25"},
			ImageRef: "docker.io/library/nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
			Labels:   criContainers[0].Labels,
			LogPath:  "/var/log/pods/default_web-7d4b9c-x2x9z_" + webPodUID + "/nginx/1.log",
		},
		// containerd's verbose info (abridged: runtimeSpec and config elided).
		Info: map[string]string{"info": `{"sandboxID":"` + webPodID + `","pid":48211,"removing":false,` +
			`"snapshotKey":"` + nginxID + `","snapshotter":"overlayfs","runtimeType":"io.containerd.runc.v2",` +
			`"runtimeOptions":{"systemd_cgroup":true},"config":{},"runtimeSpec":{}}`},
	},
	proxyID: {
		Status: &cri.ContainerStatus{
			Id: proxyID, Metadata: &cri.ContainerMetadata{Name: "kube-proxy"},
			State: cri.ContainerState_CONTAINER_RUNNING, CreatedAt: 1795420000000000000, StartedAt: 1795420000200000000,
			Image:  &cri.ImageSpec{Image: "registry.k8s.io/kube-proxy:v1.31.2"},
			Labels: criContainers[2].Labels,
		},
		Info: map[string]string{"info": `{"sandboxID":"` + proxyPodID + `","pid":1733}`},
	},
}

var criSandboxes = map[string]*cri.PodSandboxStatus{
	webPodID: {
		Id:       webPodID,
		Metadata: &cri.PodSandboxMetadata{Name: "web-7d4b9c-x2x9z", Uid: webPodUID, Namespace: "default"},
		State:    cri.PodSandboxState_SANDBOX_READY, CreatedAt: 1795429999000000000,
		Network: &cri.PodSandboxNetworkStatus{Ip: "10.244.1.17", AdditionalIps: []*cri.PodIP{{Ip: "fd00:10:244:1::11"}}},
		Linux: &cri.LinuxPodSandboxStatus{Namespaces: &cri.Namespace{Options: &cri.NamespaceOption{
			Network: cri.NamespaceMode_POD, Pid: cri.NamespaceMode_CONTAINER}}},
		Labels: map[string]string{
			"app": "web", "pod-template-hash": "7d4b9c",
			"io.kubernetes.pod.name": "web-7d4b9c-x2x9z", "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": webPodUID,
		},
		RuntimeHandler: "runc",
	},
	proxyPodID: {
		Id:       proxyPodID,
		Metadata: &cri.PodSandboxMetadata{Name: "kube-proxy-8xk2p", Uid: "6e5d4c3b-2a19-0817-2635-44536271809a", Namespace: "kube-system"},
		State:    cri.PodSandboxState_SANDBOX_READY, CreatedAt: 1795419999000000000,
		// The CRI reports the node's address for host-network pods.
		Network: &cri.PodSandboxNetworkStatus{Ip: "192.168.1.10"},
		Linux: &cri.LinuxPodSandboxStatus{Namespaces: &cri.Namespace{Options: &cri.NamespaceOption{
			Network: cri.NamespaceMode_NODE, Pid: cri.NamespaceMode_CONTAINER}}},
		Labels: map[string]string{"k8s-app": "kube-proxy", "io.kubernetes.pod.name": "kube-proxy-8xk2p", "io.kubernetes.pod.namespace": "kube-system"},
	},
}

func (f *fakeCRI) ListContainers(_ context.Context, r *cri.ListContainersRequest) (*cri.ListContainersResponse, error) {
	f.mu.Lock()
	f.listCalls = append(f.listCalls, r)
	f.mu.Unlock()
	var out []*cri.Container
	for _, c := range criContainers {
		fl := r.GetFilter()
		if fl.GetId() != "" && c.Id != fl.GetId() ||
			fl.GetState() != nil && c.State != fl.GetState().GetState() ||
			fl.GetPodSandboxId() != "" && c.PodSandboxId != fl.GetPodSandboxId() {
			continue
		}
		out = append(out, c)
	}
	return &cri.ListContainersResponse{Containers: out}, nil
}

func (f *fakeCRI) ListPodSandbox(context.Context, *cri.ListPodSandboxRequest) (*cri.ListPodSandboxResponse, error) {
	var out []*cri.PodSandbox
	for _, id := range []string{webPodID, proxyPodID} {
		s := criSandboxes[id]
		out = append(out, &cri.PodSandbox{Id: s.Id, Metadata: s.Metadata, State: s.State, CreatedAt: s.CreatedAt, Labels: s.Labels, RuntimeHandler: s.RuntimeHandler})
	}
	return &cri.ListPodSandboxResponse{Items: out}, nil
}

func (f *fakeCRI) ContainerStatus(_ context.Context, r *cri.ContainerStatusRequest) (*cri.ContainerStatusResponse, error) {
	f.mu.Lock()
	f.statusCalls = append(f.statusCalls, r)
	f.mu.Unlock()
	s, ok := criStatuses[r.GetContainerId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "an error occurred when try to find container %q: not found", r.GetContainerId())
	}
	if !r.GetVerbose() {
		return &cri.ContainerStatusResponse{Status: s.Status}, nil
	}
	return s, nil
}

func (f *fakeCRI) PodSandboxStatus(_ context.Context, r *cri.PodSandboxStatusRequest) (*cri.PodSandboxStatusResponse, error) {
	s, ok := criSandboxes[r.GetPodSandboxId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "an error occurred when try to find sandbox %q: not found", r.GetPodSandboxId())
	}
	return &cri.PodSandboxStatusResponse{Status: s}, nil
}

func (f *fakeCRI) GetContainerEvents(_ *cri.GetEventsRequest, stream grpc.ServerStreamingServer[cri.ContainerEventResponse]) error {
	if f.noEvents {
		return status.Error(codes.Unimplemented, "method GetContainerEvents not implemented")
	}
	for _, e := range f.events {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	return nil
}

func criSource(t *testing.T, sock string) *CRISource {
	t.Helper()
	c, err := NewCRI(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var wantNginx = Info{
	Runtime: Containerd,
	ID:      nginxID,
	Name:    "nginx",
	Image:   "nginx:1.25",
	Labels:  criContainers[0].Labels,

	PodName:      "web-7d4b9c-x2x9z",
	PodNamespace: "default",
	PodUID:       webPodUID,
	PodLabels:    criSandboxes[webPodID].Labels,
	NetworkMode:  "pod",
	IPs:          []netip.Addr{netip.MustParseAddr("10.244.1.17"), netip.MustParseAddr("fd00:10:244:1::11")},
	PID:          48211,
	Running:      true,
	StartedAt:    time.Unix(0, 1795430000456789012),
	Account:      "default/web-7d4b9c-x2x9z",
}

var wantProxy = Info{
	Runtime:      Containerd,
	ID:           proxyID,
	Name:         "kube-proxy",
	Image:        "registry.k8s.io/kube-proxy:v1.31.2",
	Labels:       criContainers[2].Labels,
	PodName:      "kube-proxy-8xk2p",
	PodNamespace: "kube-system",
	PodUID:       "6e5d4c3b-2a19-0817-2635-44536271809a",
	PodLabels:    criSandboxes[proxyPodID].Labels,
	NetworkMode:  "node",
	HostNetwork:  true,
	PID:          1733,
	Running:      true,
	StartedAt:    time.Unix(0, 1795420000200000000),
	Account:      "kube-system/kube-proxy-8xk2p",
}

// List returns running containers only, with their pod's metadata, the
// image the user named, the pid from the verbose status, the pod's IPs, and
// host networking (without the node's address) for a NODE-network sandbox.
func TestCRIList(t *testing.T) {
	f := newFakeCRI("containerd")
	c := criSource(t, f.serve(t))
	got, err := c.List(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Info{wantNginx, wantProxy}, got, cmpInfo); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	for _, r := range f.statusCalls {
		if !r.GetVerbose() {
			t.Errorf("ContainerStatus(%s) not verbose: no pid", ShortID(r.GetContainerId()))
		}
	}
	if len(f.listCalls) != 1 || f.listCalls[0].GetFilter().GetState().GetState() != cri.ContainerState_CONTAINER_RUNNING {
		t.Errorf("ListContainers requests %v, want one filtered on RUNNING", f.listCalls)
	}
}

func TestCRIRuntimeName(t *testing.T) {
	for name, want := range map[string]string{"containerd": Containerd, "cri-o": CRIO, "pouch": "pouch"} {
		c := criSource(t, newFakeCRI(name).serve(t))
		got, err := c.Runtime(testCtx(t))
		if err != nil || got != want {
			t.Errorf("Runtime for %q = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestCRIInspect(t *testing.T) {
	c := criSource(t, newFakeCRI("containerd").serve(t))
	ctx := testCtx(t)
	got, err := c.Inspect(ctx, proxyID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantProxy, got, cmpInfo); diff != "" {
		t.Errorf("Inspect (-want +got):\n%s", diff)
	}

	// A sandbox id (the pause process's cgroup) answers with the pod.
	pod, err := c.Inspect(ctx, webPodID)
	if err != nil {
		t.Fatal(err)
	}
	if pod.Name != "POD" || pod.PodName != "web-7d4b9c-x2x9z" || !pod.Running || pod.Account != "default/web-7d4b9c-x2x9z" || len(pod.IPs) != 2 {
		t.Errorf("Inspect(sandbox) = %+v", pod)
	}

	if _, err := c.Inspect(ctx, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect of an unknown id: %v, want ErrNotFound", err)
	}
}

func TestCRIEvents(t *testing.T) {
	f := newFakeCRI("cri-o")
	f.events = []*cri.ContainerEventResponse{
		{ContainerId: nginxID, ContainerEventType: cri.ContainerEventType_CONTAINER_CREATED_EVENT, CreatedAt: 1},
		{ContainerId: nginxID, ContainerEventType: cri.ContainerEventType_CONTAINER_STARTED_EVENT, CreatedAt: 2,
			ContainersStatuses: []*cri.ContainerStatus{criStatuses[nginxID].Status}},
		{ContainerId: nginxID, ContainerEventType: cri.ContainerEventType_CONTAINER_STOPPED_EVENT, CreatedAt: 3,
			ContainersStatuses: []*cri.ContainerStatus{{Id: nginxID, Metadata: &cri.ContainerMetadata{Name: "nginx"}, ExitCode: 143}}},
		{ContainerId: nginxID, ContainerEventType: cri.ContainerEventType_CONTAINER_DELETED_EVENT, CreatedAt: 4},
	}
	got, err := collectEvents(t, criSource(t, f.serve(t)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Events after the stream ended: %v, want io.ErrUnexpectedEOF", err)
	}
	die := ev(EventDie, CRIO, nginxID, "nginx", 3)
	die.ExitCode = 143
	want := []Event{ev(EventStart, CRIO, nginxID, "nginx", 2), die, ev(EventDestroy, CRIO, nginxID, "", 4)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestCRIEventsUnimplemented(t *testing.T) {
	f := newFakeCRI("containerd")
	f.noEvents = true
	_, err := collectEvents(t, criSource(t, f.serve(t)))
	if !errors.Is(err, ErrNoEvents) {
		t.Fatalf("Events: %v, want ErrNoEvents", err)
	}
}

// A containerd without its CRI plugin serves no RuntimeService.
func TestCRINotACRI(t *testing.T) {
	var none *fakeCRI
	c := criSource(t, none.serve(t))
	_, err := c.List(testCtx(t))
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("List: %v, want Unimplemented", err)
	}
}
