package localpg

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes pg_dump and pg_restore die with restore-drill, so a
// killed drill leaves no tool writing on behind the resumer's back.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
