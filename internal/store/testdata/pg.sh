#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the store's tests and prints the
# shell lines that point the tests at it:
#
#   pgenv=$(bash internal/store/testdata/pg.sh)   # start (fails the caller's set -e)
#   eval "$pgenv"                                 # export DIGEST_TEST_POSTGRES(_DIR)
#   bash internal/store/testdata/pg.sh stop "$DIGEST_TEST_POSTGRES_DIR"
#
# (Not eval "$(…)" in one line: under set -e, eval of a failed command
# substitution succeeds.)
#
# Run as root on Debian. It installs Debian's postgresql package when no
# server is installed, creates a cluster in a fresh temporary directory owned
# by the postgres user (the server refuses to run as root), starts it on
# 127.0.0.1 only, and waits until it accepts connections. The port is
# DIGEST_PG_PORT, or else the first free one from 55432. Everything but the
# export lines goes to stderr, so that the output can be eval'ed.
set -euo pipefail

bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/postgres" ] && echo "$d"
}

if [ "${1:-}" = stop ]; then
	dir=${2:?usage: pg.sh stop DIR}
	runuser -u postgres -- "$(bindir)/pg_ctl" -D "$dir/data" stop -m fast >&2
	rm -rf "$dir"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "pg.sh: run as root (it installs packages and switches to the postgres user)" >&2
	exit 1
fi

if ! bindir >/dev/null; then
	echo "pg.sh: installing postgresql" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
bin=$(bindir) || { echo "pg.sh: no postgres server under /usr/lib/postgresql after install" >&2; exit 1; }

# A port nothing listens on: DIGEST_PG_PORT, or the first free one from 55432.
free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "${DIGEST_PG_PORT:-}" ]; then
	port=$DIGEST_PG_PORT
	free "$port" || { echo "pg.sh: 127.0.0.1:$port (DIGEST_PG_PORT) is in use" >&2; exit 1; }
else
	port=55432
	while ! free "$port"; do
		port=$((port + 1))
		[ "$port" -lt 55532 ] || { echo "pg.sh: no free port in 55432-55531" >&2; exit 1; }
	done
fi

dir=$(mktemp -d /tmp/digest-pg.XXXXXX)
chown postgres: "$dir"
chmod 700 "$dir"
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres \
	--encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log" >&2; exit 1; }

# setsid and no inherited descriptors: the server outlives this script and
# never holds the caller's stdout open.
runuser -u postgres -- setsid "$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" \
	-c listen_addresses=127.0.0.1 -c max_connections=200 \
	</dev/null >"$dir/server.log" 2>&1 &

for _ in $(seq 1 300); do
	if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
		echo "pg.sh: $("$bin/postgres" --version) ready on 127.0.0.1:$port, data in $dir" >&2
		echo "export DIGEST_TEST_POSTGRES='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
		echo "export DIGEST_TEST_POSTGRES_DIR='$dir'"
		exit 0
	fi
	sleep 0.1
done
echo "pg.sh: server did not become ready on 127.0.0.1:$port within 30 s; its log:" >&2
cat "$dir/server.log" >&2
exit 1
