package localpg

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// dieWithParent makes pg_dump and pg_restore die with restore-drill, so a
// killed drill leaves no tool writing on behind the resumer's back.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// bytesRead is how many bytes process pid and its live children (pg_restore
// -j's workers) have read: rchar of /proc/PID/io, which also holds what the
// children it has already reaped read. ok is false when /proc cannot say.
func bytesRead(pid int) (n int64, ok bool) {
	pids := []string{strconv.Itoa(pid)}
	if kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		pids = append(pids, strings.Fields(string(kids))...)
	}
	for i, p := range pids {
		data, err := os.ReadFile("/proc/" + p + "/io")
		if err != nil {
			if i == 0 {
				return 0, false
			}
			continue // a worker that just exited: its parent counts it once reaped
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, found := strings.CutPrefix(line, "rchar: "); found {
				r, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += r
			}
		}
	}
	return n, true
}
