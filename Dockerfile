# digest in a container: `digest daemon` with its HTTP server on :8080.
#
#   docker build -t digest .
#   docker run -d --name digest -p 8080:8080 -v digest-data:/data \
#     -e DIGEST_SMTP_PASSWORD=... --stop-timeout 20 digest
#
# /data holds config.yaml (with server.listen: ":8080", so that the port is
# reachable from outside the container), the SQLite database and the archive;
# relative paths in the config resolve against /data. Give --stop-timeout (or
# compose's stop_grace_period) above shutdown_timeout (default 10s): Docker
# sends SIGTERM, then SIGKILL when its own timeout (10s by default) is up.

FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go (modernc SQLite, embedded tzdata and templates): a static binary
# that needs no libc, so the final image can be empty.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/digest ./cmd/digest
# The unprivileged user and the folder it owns, for the empty image.
RUN mkdir -p /out/data \
 && echo 'digest:x:10001:10001:digest:/data:/digest' > /out/passwd \
 && echo 'digest:x:10001:' > /out/group

FROM scratch
# CA roots for STARTTLS/TLS to the relay and for https feeds.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build /out/digest /digest
COPY --from=build --chown=10001:10001 /out/data /data
USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 8080
STOPSIGNAL SIGTERM
# The image has no shell, curl or wget: the binary checks itself. It reads
# server.listen from the config and asks /healthz; "active" and "standby"
# are both healthy, a broken store is not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["/digest", "healthcheck", "--config", "/data/config.yaml"]
ENTRYPOINT ["/digest"]
CMD ["daemon", "--config", "/data/config.yaml"]
