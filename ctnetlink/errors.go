package ctnetlink

import (
	"errors"
	"os"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nlattr"
)

// Error is the error of a failed operation. It names the operation and wraps
// the cause: for a kernel failure a *netlink.OpError carrying the errno and
// the kernel's extended-ACK message and offset.
//
// Use errors.Is to branch on the cause: os.ErrNotExist (ENOENT, such as no
// such flow), os.ErrExist (EEXIST, the flow exists already), os.ErrPermission
// (EPERM or EACCES), ErrDumpInterrupted, or any unix.Errno.
//
// A request that the kernel would refuse as malformed with a bare EINVAL (a
// port without a protocol, ICMP fields with another protocol, addresses of
// two families, a tuple missing a field the kernel requires, and the like)
// fails before it is sent, with an error that says what is wrong and
// matches unix.EINVAL.
type Error struct {
	// Op is the operation that failed, such as "dump" or "create".
	Op string
	// Attr is the path, in spec names, of the request attribute that the
	// kernel's extended ACK pointed at, or empty.
	Attr string
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ctnetlink: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Attr != "" {
		b.WriteString(" (at attribute ")
		b.WriteString(e.Attr)
		b.WriteString(")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is maps the kernel's errno onto the os package's portable errors.
func (e *Error) Is(target error) bool {
	var errno unix.Errno
	if !errors.As(e.Err, &errno) {
		return false
	}
	switch target {
	case os.ErrNotExist:
		return errno == unix.ENOENT
	case os.ErrExist:
		return errno == unix.EEXIST
	case os.ErrPermission:
		return errno == unix.EPERM || errno == unix.EACCES
	}
	return false
}

// ErrDumpInterrupted reports that the kernel flagged a dump with
// NLM_F_DUMP_INTR: the table changed while it was being dumped, so the dump
// may have missed or repeated entries. Every entry of the dump was still
// delivered; repeat the dump for a consistent view.
var ErrDumpInterrupted = errors.New("dump interrupted by a table change (NLM_F_DUMP_INTR)")

// opError wraps err for operation op. For a kernel error with an extended-ACK
// offset, it names the attribute of req (the request, starting with its
// netlink header) that the offset points at; top is the schema index of the
// request's attribute set.
func opError(op string, err error, req []byte, top int) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Err: err}
	var oe *netlink.OpError
	if errors.As(err, &oe) && oe.Offset > 0 && top >= 0 {
		e.Attr = attrPath(req, top, oe.Offset)
	}
	return e
}

// attrPath returns the spec-name path of the attribute that starts at offset
// off of the request req, walking nested sets with the generated schema.
func attrPath(req []byte, top, off int) string {
	const attrStart = unix.NLMSG_HDRLEN + 4
	if off < attrStart || off >= len(req) {
		return ""
	}
	var path []string
	set, base, b := top, attrStart, req[attrStart:]
	for {
		d := nlattr.NewDecoder(b)
		pos := base
		found := false
		for d.Next() {
			n := 4 + len(d.Bytes())
			next := pos + ((n + 3) &^ 3)
			if off >= pos && off < pos+n {
				name, nested := attrName(set, d.Type())
				path = append(path, name)
				if off == pos || nested < 0 {
					return strings.Join(path, ".")
				}
				set, base, b = nested, pos+4, d.Bytes()
				found = true
				break
			}
			pos = next
		}
		if !found {
			return strings.Join(path, ".")
		}
	}
}

func attrName(set int, t uint16) (string, int) {
	attrs := schema[set].attrs
	if int(t) < len(attrs) && attrs[t].name != "" {
		return attrs[t].name, attrs[t].nested
	}
	return "attr-" + itoa(int(t)), -1
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
