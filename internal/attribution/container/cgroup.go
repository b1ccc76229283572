// Package container identifies the container a process belongs to from its
// cgroup paths (every hierarchy, v1 and v2: on hybrid hosts a runtime may
// place containers only in v1 controllers) and, when a runtime's socket is
// present, enriches the identity with names, image and labels.
package container

import (
	"strings"
)

// Runtime names.
const (
	Docker     = "docker"
	Containerd = "containerd"
	CRIO       = "cri-o"
	Podman     = "podman"
	Nspawn     = "systemd-nspawn"
	LXC        = "lxc"
)

// Ref is what a cgroup path says about a container.
type Ref struct {
	Runtime string
	// ID is the runtime's container id (64 hex digits), or the machine name
	// for systemd-nspawn and LXC.
	ID string
	// PodUID is the Kubernetes pod UID when the path is under kubepods.
	PodUID string
}

// IsZero reports whether the path named no container.
func (r Ref) IsZero() bool { return r.ID == "" }

// FromCgroupFile parses /proc/<pid>/cgroup and returns the first container
// any hierarchy names. Each line is "hierarchy-id:controllers:path".
func FromCgroupFile(data []byte) Ref {
	for line := range strings.SplitSeq(string(data), "\n") {
		_, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		_, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if r := FromPath(path); !r.IsZero() {
			return r
		}
	}
	return Ref{}
}

// FromPath parses one cgroup path, such as
//
//	/docker/<id>                                   Docker, cgroupfs driver
//	/system.slice/docker-<id>.scope                Docker, systemd driver
//	/kubepods/burstable/pod<uid>/<id>              containerd or CRI-O, cgroupfs
//	/kubepods.slice/…/cri-containerd-<id>.scope    containerd, systemd
//	/kubepods.slice/…/crio-<id>.scope              CRI-O, systemd
//	/machine.slice/libpod-<id>.scope               Podman, systemd
//	/libpod_parent/libpod-<id>                     Podman, cgroupfs
//	/machine.slice/machine-<name>.scope            systemd-nspawn
//	/lxc/<name>, /lxc.payload.<name>               LXC
//
// Runtime helpers (conmon, containerd-shim) are not containers.
func FromPath(path string) Ref {
	var r Ref
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range segs {
		if uid, ok := podUID(seg); ok {
			r.PodUID = uid
			continue
		}
		if strings.Contains(seg, "conmon") {
			continue
		}
		name := strings.TrimSuffix(seg, ".scope")
		switch {
		case hasHexID(name, "docker-"):
			r.Runtime, r.ID = Docker, name[len("docker-"):]
		case hasHexID(name, "cri-containerd-"):
			r.Runtime, r.ID = Containerd, name[len("cri-containerd-"):]
		case hasHexID(name, "crio-"):
			r.Runtime, r.ID = CRIO, name[len("crio-"):]
		case hasHexID(name, "libpod-"):
			r.Runtime, r.ID = Podman, name[len("libpod-"):]
		case strings.HasPrefix(name, "machine-") && strings.HasSuffix(seg, ".scope") && i > 0 && segs[i-1] == "machine.slice":
			if id := unescapeSystemd(name[len("machine-"):]); !strings.HasPrefix(id, "libpod") {
				r.Runtime, r.ID = Nspawn, id
			}
		case isHexID(seg) && i > 0 && segs[i-1] == "docker":
			r.Runtime, r.ID = Docker, seg
		case isHexID(seg) && r.PodUID != "":
			r.Runtime, r.ID = "", seg // containerd or CRI-O: the CRI tells which
		case i > 0 && segs[i-1] == "lxc" && seg != "":
			r.Runtime, r.ID = LXC, seg
		case strings.HasPrefix(seg, "lxc.payload.") && len(seg) > len("lxc.payload."):
			r.Runtime, r.ID = LXC, seg[len("lxc.payload."):]
		}
	}
	if r.ID == "" {
		return Ref{}
	}
	return r
}

// podUID recognises "pod<uid>" and the systemd form
// "kubepods-<qos>-pod<uid_with_underscores>.slice".
func podUID(seg string) (string, bool) {
	s := strings.TrimSuffix(seg, ".slice")
	if i := strings.LastIndex(s, "-pod"); i >= 0 && strings.HasPrefix(s, "kubepods") {
		s = s[i+1:]
	}
	if !strings.HasPrefix(s, "pod") || len(s) < 3+32 {
		return "", false
	}
	uid := strings.ReplaceAll(s[3:], "_", "-")
	for _, c := range uid {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return uid, true
}

func hasHexID(s, prefix string) bool {
	return strings.HasPrefix(s, prefix) && isHexID(s[len(prefix):])
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// unescapeSystemd undoes systemd's unit-name escaping (\x2d for '-').
func unescapeSystemd(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, ok := hexByte(s[i+2], s[i+3]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hexByte(a, b byte) (byte, bool) {
	h := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	x, ok1 := h(a)
	y, ok2 := h(b)
	return x<<4 | y, ok1 && ok2
}
