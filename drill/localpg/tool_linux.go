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

// holdLock takes an exclusive flock on path (created if need be) and keeps
// it until release. The kernel drops it when the process dies, however it
// dies, so a lock that can be taken means its holder is gone.
func holdLock(path string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = os.Remove(path); _ = f.Close() }, nil
}

// holderGone reports whether the lock at path was held and its holder has
// died: the file is there and its lock can be taken. A missing file says
// nothing (a record written before locks existed): false.
func holderGone(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return false
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true
}
