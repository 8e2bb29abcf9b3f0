package bench

import "syscall"

// sysProcAttr puts the child in its own process group and kills it if the
// benchmark dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
