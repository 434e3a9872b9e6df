# Convenience targets; .ci/run does not depend on this file.
.PHONY: build test lint bench
build:
	go build -o digest ./cmd/digest
test:
	go test -race ./...
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./... && go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
bench:
	go test -run '^$$' -bench . -benchmem ./...
