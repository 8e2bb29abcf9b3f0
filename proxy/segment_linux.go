package proxy

import (
	"net"

	"golang.org/x/sys/unix"
)

// sendMore writes p with MSG_MORE: the kernel holds a partial segment back
// until the next write (a sendfile) fills it or pushes it.
func sendMore(c *net.TCPConn, p []byte) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			n, err := unix.SendmsgN(int(fd), p, nil, nil, unix.MSG_MORE)
			if err == unix.EAGAIN {
				return false // wait until writable, within the deadline
			}
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				serr = err
				return true
			}
			p = p[n:]
		}
		return true
	})
	if err != nil {
		return err
	}
	return serr
}
