# Convenience targets; .ci/run does not depend on this file.
.PHONY: build test lint bench
build:
	go build -o digest ./cmd/digest
test:
	go test -race ./...
lint:
	gofmt -l . && go vet ./... && go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
bench:
	go test -run '^$$' -bench . -benchmem ./...
