#!/bin/sh
# `make run` for real, in a copy of the tree: it prints the PKCS#12
# password, serves on TODOD_PORT, honours a new TODOD_PORT once dev/
# exists, and says what to do when the port is taken.
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/todod-devrun.XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill $(pgrep -P "$pid") "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	[ -n "${holder:-}" ] && kill "$holder" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/regress/make/tap.inc"

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_make LOG: make run in the background, until "parent: started"
# (0) or its end (1), at most 120 s.
run_make() {
	( cd "$tmp/src" && exec make -s CFLAGS=-O0 run ) > "$1" 2>&1 &
	pid=$!
	i=0
	while [ $i -lt 1200 ]; do
		grep -q "parent: started" "$1" && return 0
		kill -0 "$pid" 2>/dev/null || { wait "$pid"; pid=; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# What Ctrl-C does, minus the signal to make: todod (make's child, the
# recipe's shell having exec'd it) gets SIGTERM and make ends with it.
stop_make() {
	[ -n "$pid" ] || return 0
	kill -TERM $(pgrep -P "$pid")
	wait "$pid"
	r=$?
	pid=
	return $r
}

get() {
	curl -sS --max-time 10 --cacert "$tmp/src/dev/pki/ca.crt" \
	    --cert "$tmp/src/dev/pki/mtls-client.crt" \
	    --key "$tmp/src/dev/pki/mtls-client.key" \
	    "https://127.0.0.1:$1/todo"
}

echo "1..9"
mkdir -p "$tmp/src"
tar -C "$top" --exclude=./build --exclude=./dev --exclude=./.git -cf - . |
    tar -C "$tmp/src" -xf -

p1=$(free_port)
export TODOD_PORT=$p1
run_make "$tmp/run1.out"
ok $? "make run starts todod (TODOD_PORT=$p1)"
sed 's/^/# /' "$tmp/run1.out" | grep -v '^# cc\|^#     ' | head -40
grep -q "mtls-client.p12 (password: todod)" "$tmp/run1.out"
ok $? "it prints the PKCS#12 password"
grep -q "https://127.0.0.1:$p1/todo" "$tmp/run1.out"
ok $? "it prints the curl commands for port $p1"
get "$p1" | grep -q '"todos":\['
ok $? "todod serves on $p1"
stop_make
ok $? "Ctrl-C (SIGTERM) stops it cleanly"

p2=$(free_port)
export TODOD_PORT=$p2
run_make "$tmp/run2.out"
r=$?
get "$p2" | grep -q '"todos":\[' && [ $r -eq 0 ] &&
    grep -q "https://127.0.0.1:$p2/todo" "$tmp/run2.out"
ok $? "dev/ exists: a new TODOD_PORT=$p2 is honoured"
grep -q "password: todod, or the TODOD_PKI_PASS" "$tmp/run2.out"
ok $? "a kept bundle: the password it was probably made with"
stop_make

# a port somebody else holds
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
time.sleep(120)' "$p2" &
holder=$!
sleep 1
run_make "$tmp/run3.out"
r=$?
sed 's/^/# /' "$tmp/run3.out" | tail -6
[ $r -ne 0 ] && grep -q "Port $p2 on 127.0.0.1 is in use" "$tmp/run3.out"
ok $? "a port in use: make run stops and says so"
grep -q "TODOD_PORT=9443 make run" "$tmp/run3.out"
ok $? "and says what to do"
[ "$fails" -eq 0 ]
