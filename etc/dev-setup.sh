#!/bin/sh
# `make run`: a development PKI and configuration under dev/, then the
# commands to try.  Existing files are kept (delete dev/ to start over).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dev=$top/dev
port=${TODOD_PORT:-8443}

mkdir -p "$dev"
sh "$top/certs/todod-pki" -d "$dev/pki" dev > /dev/null

if [ ! -f "$dev/todod.conf" ]; then
	listen6="# no IPv6 loopback on this machine"
	if [ -e /proc/net/if_inet6 ] && grep -q ' lo$' /proc/net/if_inet6; then
		listen6="listen on ::1 port \$port"
	fi
	sed -e "s/@PORT@/$port/" -e "s/@LISTEN6@/$listen6/" \
	    "$top/etc/dev.conf.in" > "$dev/todod.conf"
fi

# As root todod drops to _todod in a chroot: make sure both exist.
if [ "$(id -u)" -eq 0 ]; then
	if ! getent passwd _todod > /dev/null; then
		useradd -r -d /var/empty -s /usr/sbin/nologin _todod
		echo "created user _todod"
	fi
fi

p=$(sed -n 's/^port = //p' "$dev/todod.conf")
cat <<TXT

todod will listen on https://127.0.0.1:$p (Ctrl-C stops it). Try, from
another terminal in $top:

  curl --cacert dev/pki/ca.crt --cert dev/pki/mtls-client.crt \\
      --key dev/pki/mtls-client.key \\
      -H 'Content-Type: application/json' -d '{"task":"try todod"}' \\
      https://127.0.0.1:$p/todo

  curl --cacert dev/pki/ca.crt --cert dev/pki/mtls-client.crt \\
      --key dev/pki/mtls-client.key https://127.0.0.1:$p/todo

Without a client certificate the handshake fails:

  curl --cacert dev/pki/ca.crt https://127.0.0.1:$p/todo

TXT
