package nfnl

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsDir is where ip-netns(8) keeps the namespaces it names.
const netnsDir = "/var/run/netns/"

// nsGetNSType is the NS_GET_NSTYPE ioctl of linux/nsfs.h.
const nsGetNSType = 0xb703

// openNetNS returns a descriptor of the network namespace that fd or path
// names, which the caller owns and closes, or 0 for the namespace of the
// process when both are unset. The descriptor is a duplicate, or path opened
// once: either way it stays valid when the caller closes fd.
func openNetNS(fd int, path string) (int, error) {
	var ns int
	switch {
	case fd != 0 && path != "":
		return 0, errors.New("both NetNS and NetNSPath are set")
	case fd < 0:
		return 0, fmt.Errorf("invalid network namespace descriptor %d", fd)
	case path != "":
		if !strings.Contains(path, "/") {
			path = netnsDir + path
		}
		var err error
		ns, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("open network namespace %s: %w", path, err)
		}
	case fd > 0:
		// At 3 or above, so that the duplicate is never 0, which means
		// the process's own namespace.
		var err error
		ns, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return 0, fmt.Errorf("duplicate network namespace descriptor %d: %w", fd, err)
		}
	default:
		return 0, nil
	}
	typ, err := unix.IoctlRetInt(ns, nsGetNSType)
	if errors.Is(err, unix.ENOTTY) || err == nil && typ != unix.CLONE_NEWNET {
		err = errors.New("not a network namespace")
	}
	if err != nil {
		unix.Close(ns)
		name := path
		if name == "" {
			name = fmt.Sprintf("descriptor %d", fd)
		}
		return 0, fmt.Errorf("network namespace %s: %w", name, err)
	}
	return ns, nil
}
