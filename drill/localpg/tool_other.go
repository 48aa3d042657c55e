//go:build !linux

package localpg

import "os/exec"

func dieWithParent(*exec.Cmd) {}

// bytesRead cannot tell without Linux's /proc.
func bytesRead(int) (int64, bool) { return 0, false }

// holdLock holds nothing where flock is not used: captures are never taken
// for dead (holderGone is always false).
func holdLock(string) (func(), error) { return func() {}, nil }

func holderGone(string) bool { return false }
