#!/bin/sh
# `make run`: a development PKI and configuration under dev/, then the
# commands to try.  Existing files are kept (delete dev/ to start over).
#
# TODOD_PORT=N chooses the port.  dev/todod.conf keeps the port it was made
# with as its macro $port; `make run` passes TODOD_PORT on as -D port=N,
# which overrides it, so TODOD_PORT works whether or not dev/ exists.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dev=$top/dev
port=${TODOD_PORT:-8443}
case $port in
''|*[!0-9]*|0*)
	echo "TODOD_PORT=$port: not a port number (1-65535)" >&2
	exit 1 ;;
esac
if [ "${#port}" -gt 5 ] || [ "$port" -gt 65535 ]; then
	echo "TODOD_PORT=$port: not a port number (1-65535)" >&2
	exit 1
fi

mkdir -p "$dev"
p12_before=no
[ -f "$dev/pki/mtls-client.p12" ] && p12_before=yes
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

p=${TODOD_PORT:-$(sed -n 's/^port = //p' "$dev/todod.conf")}

# Something already listening there (another todod, another server):
# say so now, with what to do, rather than let todod fail to bind.
if timeout 5 openssl s_client -connect "127.0.0.1:$p" < /dev/null \
    > /dev/null 2> "$dev/.probe"; then
	taken=yes
elif grep -q -e 'errno=111' -e 'Connection refused' "$dev/.probe"; then
	taken=no
else
	taken=yes
fi
rm -f "$dev/.probe"
if [ "$taken" = yes ]; then
	cat >&2 <<TXT
Port $p on 127.0.0.1 is in use: another todod (make run in another
terminal?) or another server.  Stop it, or choose another port:

  TODOD_PORT=9443 make run

TXT
	exit 1
fi

if [ "$p12_before" = no ]; then
	p12pass="password: ${TODOD_PKI_PASS:-todod}"
else
	p12pass="password: todod, or the TODOD_PKI_PASS it was made with"
fi

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

For a browser: import dev/pki/mtls-client.p12 ($p12pass)
and trust dev/pki/ca.crt.

TXT
