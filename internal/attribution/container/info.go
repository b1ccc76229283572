package container

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Labels with a meaning to netmeter.
const (
	// LabelAccount, set on a container, names the account its traffic is
	// billed to; it wins over every derived identity (see [Info.Account]).
	LabelAccount = "netmeter.account"

	LabelComposeProject       = "com.docker.compose.project"
	LabelComposeService       = "com.docker.compose.service"
	LabelPodmanComposeProject = "io.podman.compose.project"
	LabelPodmanComposeService = "io.podman.compose.service"

	// Labels the kubelet sets on every container it creates through the CRI
	// (and, formerly, through dockershim and cri-dockerd).
	LabelPodName      = "io.kubernetes.pod.name"
	LabelPodNamespace = "io.kubernetes.pod.namespace"
	LabelPodUID       = "io.kubernetes.pod.uid"
)

// ErrNotFound is returned by [Source.Inspect] when the runtime does not know
// the container.
var ErrNotFound = errors.New("container not found")

// Info is what a runtime says about one container.
type Info struct {
	// Runtime is one of the runtime names (Docker, Podman, Containerd, CRIO,
	// …); for a Docker-compatible socket it is the engine that answered.
	Runtime string
	// ID is the full container id.
	ID string
	// Unanswered is set when no runtime answered the lookup (a timeout, a
	// runtime that is down or does not know the id): the Info holds only
	// what the cgroup path says, and a later lookup may complete it.
	Unanswered bool
	// Name is the container's name without Docker's leading "/": for the
	// CRI, the container's name inside its pod. When no runtime answers it
	// is the short id (first 12 characters).
	Name string
	// Image is the image as the user named it ("nginx:1.25"), not its
	// digest, when the runtime knows it.
	Image  string
	Labels map[string]string

	// ComposeProject and ComposeService come from the labels docker compose
	// (com.docker.compose.*) or podman-compose (io.podman.compose.*) set.
	ComposeProject, ComposeService string

	// Pod fields are set for containers of a Kubernetes pod: from the pod
	// sandbox through the CRI, or from the kubelet's io.kubernetes.pod.*
	// labels. PodLabels are the sandbox's labels as the runtime reports
	// them (the pod's own labels plus the kubelet's io.kubernetes.pod.*).
	PodName, PodNamespace, PodUID string
	PodLabels                     map[string]string

	// NetworkMode is the runtime's network mode: Docker's "bridge",
	// "host", "none", "container:<id>" or a user network name; for the CRI
	// "pod" or "node".
	NetworkMode string
	// HostNetwork is set when the container shares the host's network
	// namespace (Docker --network host, a pod with hostNetwork: true).
	HostNetwork bool
	// IPs are the container's addresses on its networks (the pod's IPs for
	// the CRI), sorted. Empty for host networking.
	IPs []netip.Addr
	// Ports are published ports (Docker -p), sorted. The CRI does not report
	// a pod's host ports, so they are empty there.
	Ports []Port

	// PID is the host pid of the container's init process, 0 when not
	// running or unknown.
	PID       int
	Running   bool
	StartedAt time.Time

	// Account is the stable billing identity of the container's traffic,
	// the first of:
	//
	//  1. the value of the label netmeter.account;
	//  2. "project/service" from compose labels;
	//  3. "pod-namespace/pod-name";
	//  4. the container's name.
	//
	// Compose services, pods and Docker/Podman container names outlive a
	// container id, so bytes of a container recreated by a deploy or
	// restarted stay in one account. A fallback Info (no runtime answered)
	// has the short id as its name and account, which is not stable.
	// Renaming a container changes an account derived from its name.
	Account string
}

// Port is one published port: the host address and port that forward to the
// container's port.
type Port struct {
	HostIP        netip.Addr // unspecified (0.0.0.0, ::) for all addresses; invalid when unset
	HostPort      uint16
	ContainerPort uint16
	Proto         string // "tcp", "udp", "sctp"
}

// EventType is what happened to a container.
type EventType string

// Event types a [Source] reports. Other runtime events are not reported.
const (
	EventStart   EventType = "start"
	EventDie     EventType = "die"
	EventDestroy EventType = "destroy"
	EventRename  EventType = "rename"
)

// Event is a container lifecycle event.
type Event struct {
	Type    EventType
	Runtime string
	ID      string
	// Name is the container's name after the event (the new name for a
	// rename), when the runtime says.
	Name string
	// OldName is the name before a rename.
	OldName string
	// ExitCode is set for die events when the runtime says.
	ExitCode int
	Time     time.Time
}

// Source is a container runtime's API. [DockerSource] and [CRISource]
// implement it; tests and embedders may supply their own to [WithSources].
type Source interface {
	// String names the source for errors ("docker /var/run/docker.sock").
	String() string
	// List returns the running containers.
	List(ctx context.Context) ([]Info, error)
	// Inspect returns one container, running or not; [ErrNotFound] when the
	// runtime does not know it.
	Inspect(ctx context.Context, id string) (Info, error)
	// Events calls fn for each lifecycle event until ctx ends or the stream
	// fails; it returns the reason. The caller may call it again to
	// reconnect; events in between are lost, so it should List again.
	Events(ctx context.Context, fn func(Event)) error
	Close() error
}

// ShortID returns the first 12 characters of a 64-hex-digit id, as docker ps
// shows it; other ids are returned unchanged.
func ShortID(id string) string {
	if isHexID(id) {
		return id[:12]
	}
	return id
}

// fill derives the compose, pod and account fields from the labels and name.
// Fields already set are kept.
func (i *Info) fill() {
	l := i.Labels
	if i.ComposeProject == "" {
		i.ComposeProject = first(l[LabelComposeProject], l[LabelPodmanComposeProject])
	}
	if i.ComposeService == "" {
		i.ComposeService = first(l[LabelComposeService], l[LabelPodmanComposeService])
	}
	if i.PodName == "" {
		i.PodName = l[LabelPodName]
	}
	if i.PodNamespace == "" {
		i.PodNamespace = l[LabelPodNamespace]
	}
	if i.PodUID == "" {
		i.PodUID = l[LabelPodUID]
	}
	i.Account = i.account()
}

func (i *Info) account() string {
	switch {
	case i.Labels[LabelAccount] != "":
		return i.Labels[LabelAccount]
	case i.ComposeProject != "" && i.ComposeService != "":
		return i.ComposeProject + "/" + i.ComposeService
	case i.PodName != "":
		return i.PodNamespace + "/" + i.PodName
	case i.Name != "":
		return i.Name
	}
	return ShortID(i.ID)
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// fallbackInfo is what a cgroup Ref alone says.
func fallbackInfo(ref Ref) Info {
	in := Info{Runtime: ref.Runtime, ID: ref.ID, Name: ShortID(ref.ID), PodUID: ref.PodUID}
	in.fill()
	return in
}
