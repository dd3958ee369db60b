package nfnl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// link is what a Socket needs of its descriptor; tests replace it with a
// fake kernel.
type link interface {
	send(b []byte) error
	// watch makes the end of ctx unblock recv until the returned func is
	// called.
	watch(ctx context.Context) (stop func())
	// recv reads one datagram into buf and returns its length and the port
	// id of its sender, 0 for the kernel. With block false it returns
	// unix.EAGAIN rather than wait. When ctx, being watched, ends while it
	// waits, it returns ctx.Err().
	recv(ctx context.Context, buf []byte, block bool) (n int, from uint32, err error)
	setReadDeadline(t time.Time) error
	control(fn func(fd uintptr)) error
	close() error
}

// rawLink reads and writes a non-blocking descriptor through the runtime's
// poller, without allocating.
type rawLink struct {
	raw syscall.RawConn
	// read reads one datagram of the descriptor into buf, setting n and
	// rerr; readBlock and readNow wrap it as raw read callbacks, made once
	// so that a receive does not allocate.
	read               func(fd uintptr)
	readBlock, readNow func(fd uintptr) bool
	buf                []byte
	n                  int
	rerr               error

	// write writes wbuf, setting werr: the raw write callback, made once
	// so that a send does not allocate. wmu guards the three.
	wmu   sync.Mutex
	write func(fd uintptr) bool
	wbuf  []byte
	werr  error
}

func (r *rawLink) init(raw syscall.RawConn, read func(fd uintptr)) {
	r.raw, r.read = raw, read
	r.readBlock = func(fd uintptr) bool { r.read(fd); return r.rerr != unix.EAGAIN }
	r.readNow = func(fd uintptr) bool { r.read(fd); return true }
	r.write = func(fd uintptr) bool {
		_, r.werr = unix.Write(int(fd), r.wbuf)
		return r.werr != unix.EAGAIN
	}
}

// recvRaw reads one datagram into buf. With block false it returns
// unix.EAGAIN rather than wait.
func (r *rawLink) recvRaw(ctx context.Context, buf []byte, block bool) (int, error) {
	if len(buf) == 0 {
		return 0, unix.EINVAL
	}
	r.buf = buf
	fn := r.readNow
	if block {
		fn = r.readBlock
	}
	r.n, r.rerr = 0, nil
	err := r.raw.Read(fn)
	r.buf = nil
	if err != nil {
		return 0, deadlineError(ctx, err)
	}
	return r.n, r.rerr
}

func (r *rawLink) control(fn func(fd uintptr)) error { return r.raw.Control(fn) }

// send writes b in one datagram, without allocating.
func (r *rawLink) send(b []byte) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.wbuf, r.werr = b, nil
	err := r.raw.Write(r.write)
	r.wbuf = nil
	if err != nil {
		return err
	}
	return r.werr
}

// nlLink is a real NETLINK_NETFILTER socket.
type nlLink struct {
	rawLink
	nl   *netlink.Conn
	from unix.RawSockaddrNetlink
}

func dialNetlink(netns int, groups uint32) (*nlLink, uint32, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns, Groups: groups})
	if err != nil {
		return nil, 0, err
	}
	l := &nlLink{nl: nl}
	raw, err := nl.SyscallConn()
	if err != nil {
		nl.Close()
		return nil, 0, err
	}
	l.init(raw, l.recvfrom)
	var port uint32
	var serr error
	err = raw.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		if sa, serr = unix.Getsockname(int(fd)); serr != nil {
			return
		}
		if nsa, ok := sa.(*unix.SockaddrNetlink); ok {
			port = nsa.Pid
		}
		// Connected to the kernel, the socket refuses unicasts from
		// other sockets (the kernel answers their sender ECONNREFUSED),
		// so no other process can slip messages into a reply.
		serr = unix.Connect(int(fd), &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		nl.Close()
		return nil, 0, err
	}
	return l, port, nil
}

func (l *nlLink) close() error                      { return l.nl.Close() }
func (l *nlLink) setReadDeadline(t time.Time) error { return l.nl.SetReadDeadline(t) }
func (l *nlLink) watch(ctx context.Context) func()  { return watchDeadline(l.nl, ctx) }

// recv reads one datagram and its sender's address; it does not allocate.
func (l *nlLink) recv(ctx context.Context, buf []byte, block bool) (int, uint32, error) {
	n, err := l.recvRaw(ctx, buf, block)
	if err != nil {
		return 0, 0, err
	}
	if l.from.Family != unix.AF_NETLINK {
		return 0, 0, fmt.Errorf("datagram from address family %d", l.from.Family)
	}
	return n, l.from.Pid, nil
}

// recvfrom is recvfrom(2) into l.buf and l.from, without the allocation of
// unix.Recvfrom's Sockaddr.
func (l *nlLink) recvfrom(fd uintptr) {
	salen := uint32(unix.SizeofSockaddrNetlink)
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&l.buf[0])), uintptr(len(l.buf)), 0,
		uintptr(unsafe.Pointer(&l.from)), uintptr(unsafe.Pointer(&salen)))
	if e != 0 {
		l.n, l.rerr = 0, e
		return
	}
	l.n, l.rerr = int(n), nil
}

// fileLink is a fake kernel's socket pair end: every datagram counts as the
// kernel's.
type fileLink struct {
	rawLink
	f *os.File
}

func (l *fileLink) close() error                      { return l.f.Close() }
func (l *fileLink) setReadDeadline(t time.Time) error { return l.f.SetReadDeadline(t) }
func (l *fileLink) watch(ctx context.Context) func()  { return watchDeadline(l.f, ctx) }

func (l *fileLink) recv(ctx context.Context, buf []byte, block bool) (int, uint32, error) {
	n, err := l.recvRaw(ctx, buf, block)
	return n, 0, err
}

// deadlineError turns the expiry of a watched ctx's deadline into ctx's
// error.
func deadlineError(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		// The socket's deadline is the context's: it can expire before the
		// context's own timer has run.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return context.DeadlineExceeded
		}
	}
	return err
}

// watchDeadline makes ctx's deadline the read deadline of d and its
// cancellation move the deadline into the past, which unblocks a waiting
// read. The returned func undoes it and waits for a cancellation under way,
// so that it cannot move the deadline of a later request.
func watchDeadline(d interface{ SetReadDeadline(time.Time) error }, ctx context.Context) func() {
	dl, _ := ctx.Deadline()
	_ = d.SetReadDeadline(dl)
	if ctx.Done() == nil {
		return func() { _ = d.SetReadDeadline(time.Time{}) }
	}
	fired := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		_ = d.SetReadDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !cancel() {
			<-fired
		}
		_ = d.SetReadDeadline(time.Time{})
	}
}
