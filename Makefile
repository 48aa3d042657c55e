# Shortcuts; the README's two commands need no make.
.PHONY: demo test bench build
build:
	go build -o restore-drill ./cmd/restore-drill
demo:
	bash .ci/demo
test:
	bash .ci/test
bench:
	go test -run '^$$' -bench . -benchtime 1x -timeout 60m ./drill/localpg/
