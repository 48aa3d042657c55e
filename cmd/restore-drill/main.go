// Command restore-drill proves that a Postgres database can be restored from
// its backups, and restores it when it matters. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, InteractiveIn: isTerminal(os.Stdin)})
	stop()
	os.Exit(code)
}

// isTerminal asks the kernel whether f is a terminal; /dev/null is a
// character device too, so a mode check would take it for one.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
