package pgstate

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// owner names the process that runs a drill, in the drills it owns:
// "host/pid/boot/pidns/start/id". id is random, made for each store, and
// alone says who the owner is: in containers a restarted process often has
// the same hostname and pid as the dead one it replaced, and two live
// processes in different pid namespaces may share a hostname and a pid.
// boot (the kernel's boot id), pidns (the pid namespace's inode) and start
// (when the process started, in clock ticks since boot) say whether the
// owner's pid can be looked up here at all, and whether it is still the
// same process; host is for people.
type owner struct {
	host, boot, pidns, start, id string
	pid                          int
}

// newOwner names this process, with a new random id.
func newOwner() owner {
	host, _ := os.Hostname()
	var b [8]byte
	_, _ = rand.Read(b[:])
	pid := os.Getpid()
	return owner{host: host, pid: pid, boot: bootID(), pidns: pidNamespace(), start: startTime(pid), id: hex.EncodeToString(b[:])}
}

func (o owner) String() string {
	return fmt.Sprintf("%s/%d/%s/%s/%s/%s", o.host, o.pid, o.boot, o.pidns, o.start, o.id)
}

// parseOwner reads an owner's name; an old "host/pid" name, or any other,
// reads as an owner with no id, whose liveness only its lock and its
// heartbeat tell.
func parseOwner(s string) owner {
	f := strings.Split(s, "/")
	if len(f) != 6 {
		return owner{}
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		return owner{}
	}
	return owner{host: f[0], pid: pid, boot: f[2], pidns: f[3], start: f[4], id: f[5]}
}

// goneHere tells whether other, an owner that is not o, was a process of
// o's machine and pid namespace that no longer runs: its pid runs no
// process, or one that started at another time (the pid was reused, as a
// restarted container's first process gets the pid of the one before).
// For an owner elsewhere, or still running, it is false: its lock and its
// heartbeat tell. A pid check never says an owner is alive.
func (o owner) goneHere(other owner) bool {
	if other.id == "" || other.id == o.id || other.boot == "" || other.pidns == "" || other.start == "" ||
		other.host != o.host || other.boot != o.boot || other.pidns != o.pidns || other.pid <= 0 {
		return false
	}
	if err := syscall.Kill(other.pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	now := startTime(other.pid)
	return now != "" && now != other.start
}

// startTime is when process pid started, in clock ticks since boot (field
// 22 of /proc/PID/stat), or "" where it cannot be read.
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// bootID is the kernel's boot id, or "" where there is none to read.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pidNamespace is the inode number of this process's pid namespace, or ""
// where it cannot be read.
func pidNamespace() string {
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	// "pid:[4026531836]"
	ino := strings.TrimSuffix(strings.TrimPrefix(link, "pid:["), "]")
	if _, err := strconv.ParseUint(ino, 10, 64); err != nil {
		return ""
	}
	return ino
}
