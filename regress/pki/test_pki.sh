#!/bin/sh
# Tests of certs/todod-pki, checked with the openssl CLI.
# Run from the top of the tree: sh regress/pki/test_pki.sh
# Prints TAP; exits non-zero when a test fails.

set -u
unset TODOD_PKI_PASS || :

top=$(pwd)
pki=$top/certs/todod-pki
man=$top/certs/todod-pki.1
# The tool must run under dash; use it when it is there.
if command -v dash >/dev/null 2>&1; then
	SH=dash
else
	SH="sh"
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

n=0
failed=0
d=$tmp/dev

# ok STATUS DESCRIPTION: one TAP line from an exit status.
ok()
{
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}

# t DESCRIPTION COMMAND...: passes when the command succeeds.
t()
{
	t_desc=$1
	shift
	"$@" >/dev/null 2>&1
	ok $? "$t_desc"
}

# f DESCRIPTION COMMAND...: passes when the command fails.
f()
{
	f_desc=$1
	shift
	if "$@" >/dev/null 2>&1; then
		ok 1 "$f_desc"
	else
		ok 0 "$f_desc"
	fi
}

skip()
{
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

pki()
{
	"$SH" "$pki" "$@"
}

# has FILE PATTERN: the file contains a line matching the fixed string.
has()
{
	grep -F -e "$2" "$1" >/dev/null 2>&1
}

# mode FILE: the permission string as ls shows it ("-rw-------").
mode()
{
	ls -ld "$1" | cut -c1-10
}

# noscratch DIR: no scratch directory is left in DIR/.pki.
noscratch()
{
	for s_f in "$1"/.pki/tmp.*; do
		[ -e "$s_f" ] && return 1
	done
	return 0
}

text()
{
	openssl x509 -in "$1" -noout -text > "$tmp/text" 2>&1
}

# verify_err FILE EXPECTED-ERROR OPENSSL-VERIFY-ARGS...: verification fails
# with the given error string (so it fails for the right reason).
verify_err()
{
	v_file=$1
	v_want=$2
	shift 2
	if openssl verify "$@" "$v_file" > "$tmp/verify" 2>&1; then
		return 1
	fi
	has "$tmp/verify" "$v_want"
}

# The stored fingerprint of a certificate: "SHA256:" and lower-case hex.
fp_of()
{
	openssl x509 -in "$1" -noout -fingerprint -sha256 |
	    sed 's/^[^=]*=//; s/://g' | tr 'A-F' 'a-f' | sed 's/^/SHA256:/'
}

# A listing of every regular file under $1 with its mode, size and sum.
snapshot()
{
	(cd "$1" && find . -type f | LC_ALL=C sort | while read -r s_f; do
		printf '%s %s %s\n' "$(mode "$s_f")" "$s_f" \
		    "$(cksum < "$s_f")"
	done)
}

# 1. The development set.
pki -d "$d" dev > "$tmp/dev.out" 2> "$tmp/dev.err"
ok $? "dev makes a development set"
t "dev prints a summary with the mtls-client fingerprint" \
    has "$tmp/dev.out" "mtls-client fingerprint: SHA256:"

for f in ca.crt ca.key localhost.crt localhost.key mtls-client.crt \
    mtls-client.key mtls-client.p12 intruder.crt intruder.key \
    untrusted-ca.crt untrusted-ca.key expired.crt expired.key revoked.crt \
    revoked.key server-eku-only.crt server-eku-only.key crl.pem \
    auditor.crt ops-user.crt spiffe-client.crt san-client.crt \
    noeku-client.crt notyet.crt localhost-rsa.crt localhost-rsa.key \
    localhost-ec384.crt; do
	t "dev made $f" test -s "$d/$f"
done

m_bad=
for f in "$d"/*.key "$d"/*.p12; do
	[ "$(mode "$f")" = "-rw-------" ] || m_bad="$m_bad ${f##*/}"
done
[ -z "$m_bad" ]
ok $? "keys and .p12 are mode 0600${m_bad:+ (not:$m_bad)}"
m_bad=
for f in "$d"/*.crt "$d"/crl.pem; do
	[ "$(mode "$f")" = "-rw-r--r--" ] || m_bad="$m_bad ${f##*/}"
done
[ -z "$m_bad" ]
ok $? "certificates and crl.pem are mode 0644${m_bad:+ (not:$m_bad)}"
t "no scratch files left in .pki" noscratch "$d"

# 2. Extensions.
text "$d/ca.crt"
t "CA has CA:TRUE" has "$tmp/text" "CA:TRUE"
t "CA has keyCertSign" has "$tmp/text" "Certificate Sign"
t "CA has cRLSign" has "$tmp/text" "CRL Sign"
t "CA is EC P-256" has "$tmp/text" "NIST CURVE: P-256"
text "$d/localhost.crt"
t "server SAN has DNS:localhost" has "$tmp/text" "DNS:localhost"
t "server SAN has IP 127.0.0.1" has "$tmp/text" "IP Address:127.0.0.1"
t "server SAN has IP ::1" has "$tmp/text" "IP Address:0:0:0:0:0:0:0:1"
t "server has EKU serverAuth" has "$tmp/text" "TLS Web Server Authentication"
f "server has no EKU clientAuth" has "$tmp/text" "TLS Web Client Authentication"
t "server is CA:FALSE" has "$tmp/text" "CA:FALSE"
text "$d/mtls-client.crt"
t "client has EKU clientAuth" has "$tmp/text" "TLS Web Client Authentication"
t "client is CA:FALSE" has "$tmp/text" "CA:FALSE"
text "$d/ops-user.crt"
t "ops-user has OU ops" has "$tmp/text" "OU = ops"
text "$d/spiffe-client.crt"
t "spiffe-client has the URI SAN" \
    has "$tmp/text" "URI:spiffe://example.org/ns/prod/svc"
text "$d/san-client.crt"
t "san-client has DNS SAN svc.example.org" has "$tmp/text" "DNS:svc.example.org"
t "san-client has IP SAN 127.0.0.2" has "$tmp/text" "IP Address:127.0.0.2"
text "$d/noeku-client.crt"
f "noeku-client has no EKU" has "$tmp/text" "Extended Key Usage"
text "$d/server-eku-only.crt"
t "server-eku-only has EKU serverAuth" \
    has "$tmp/text" "TLS Web Server Authentication"
f "server-eku-only lacks clientAuth" \
    has "$tmp/text" "TLS Web Client Authentication"

# 3. Verification, good and bad.  v: against the dev CA; vc: and its CRL.
v()
{
	openssl verify -CAfile "$d/ca.crt" "$@"
}

vc()
{
	openssl verify -CAfile "$d/ca.crt" -crl_check -CRLfile "$d/crl.pem" "$@"
}

t "verify localhost OK" v "$d/localhost.crt"
t "verify localhost as sslserver with CRL OK" \
    vc -purpose sslserver "$d/localhost.crt"
t "verify localhost-rsa OK" v "$d/localhost-rsa.crt"
t "verify localhost-ec384 OK" v "$d/localhost-ec384.crt"
t "verify mtls-client OK" v "$d/mtls-client.crt"
t "verify mtls-client as sslclient with CRL OK" \
    vc -purpose sslclient "$d/mtls-client.crt"
t "verify noeku-client as sslclient OK" \
    v -purpose sslclient "$d/noeku-client.crt"
for c in auditor ops-user spiffe-client san-client; do
	t "verify $c as sslclient OK" vc -purpose sslclient "$d/$c.crt"
done
t "intruder fails: unknown CA" verify_err "$d/intruder.crt" \
    "unable to get local issuer certificate" -CAfile "$d/ca.crt"
t "intruder verifies against untrusted-ca" \
    openssl verify -CAfile "$d/untrusted-ca.crt" "$d/intruder.crt"
t "expired fails: expired" verify_err "$d/expired.crt" \
    "certificate has expired" -CAfile "$d/ca.crt"
t "notyet fails: not yet valid" verify_err "$d/notyet.crt" \
    "certificate is not yet valid" -CAfile "$d/ca.crt"
t "revoked verifies without the CRL" v "$d/revoked.crt"
t "revoked fails with the CRL" verify_err "$d/revoked.crt" \
    "certificate revoked" -CAfile "$d/ca.crt" \
    -crl_check -CRLfile "$d/crl.pem"
t "server-eku-only fails as sslclient" verify_err "$d/server-eku-only.crt" \
    "certificate purpose" -CAfile "$d/ca.crt" -purpose sslclient
t "mtls-client fails as sslserver" verify_err "$d/mtls-client.crt" \
    "certificate purpose" -CAfile "$d/ca.crt" -purpose sslserver
serial=$(openssl x509 -in "$d/revoked.crt" -noout -serial | sed 's/.*=//')
openssl crl -in "$d/crl.pem" -noout -text > "$tmp/crl" 2>&1
t "revoked serial is in crl.pem" has "$tmp/crl" "Serial Number: $serial"
t "crl.pem records keyCompromise" has "$tmp/crl" "Key Compromise"

# 4. Key types.
openssl pkey -in "$d/localhost.key" -noout -text > "$tmp/key" 2>&1
t "localhost key is EC P-256" has "$tmp/key" "NIST CURVE: P-256"
openssl pkey -in "$d/localhost-rsa.key" -noout -text > "$tmp/key" 2>&1
t "localhost-rsa key is RSA 2048" has "$tmp/key" "Private-Key: (2048 bit"
openssl pkey -in "$d/localhost-ec384.key" -noout -text > "$tmp/key" 2>&1
t "localhost-ec384 key is EC P-384" has "$tmp/key" "NIST CURVE: P-384"
text "$d/localhost-rsa.crt"
t "RSA server has keyEncipherment" has "$tmp/text" "Key Encipherment"

# 5. PKCS#12.
t "mtls-client.p12 opens with the dev password" \
    openssl pkcs12 -in "$d/mtls-client.p12" -passin pass:todod -noout
f "mtls-client.p12 refuses a wrong password" \
    openssl pkcs12 -in "$d/mtls-client.p12" -passin pass:wrong -noout
openssl pkcs12 -in "$d/mtls-client.p12" -passin pass:todod -nokeys \
    -cacerts -out "$tmp/p12ca.pem" >/dev/null 2>&1
t "mtls-client.p12 holds the CA certificate" \
    has "$tmp/p12ca.pem" "$(sed -n 2p "$d/ca.crt")"
openssl pkcs12 -in "$d/mtls-client.p12" -passin pass:todod -nocerts \
    -nodes -out "$tmp/p12key.pem" >/dev/null 2>&1
a=$(openssl pkey -in "$tmp/p12key.pem" -pubout 2>/dev/null)
b=$(openssl pkey -in "$d/mtls-client.key" -pubout 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ]
ok $? "mtls-client.p12 key matches mtls-client.key"
if python3 -c 'import cryptography' >/dev/null 2>&1; then
	t "python reads mtls-client.p12" python3 -c '
import sys
from cryptography.hazmat.primitives.serialization import pkcs12
k, c, more = pkcs12.load_key_and_certificates(
    open(sys.argv[1], "rb").read(), b"todod")
sys.exit(0 if k is not None and c is not None and len(more) == 1 else 1)
' "$d/mtls-client.p12"
else
	skip "python reads mtls-client.p12" "no python3 cryptography"
fi

# 6. dev run again changes nothing; a missing pair is remade.
snapshot "$d" > "$tmp/snap1"
touch "$tmp/stamp"
pki -d "$d" dev > "$tmp/dev2.out" 2>&1
ok $? "dev runs again"
snapshot "$d" > "$tmp/snap2"
t "second dev changes no file content or mode" cmp -s "$tmp/snap1" "$tmp/snap2"
t "second dev writes no file" \
    test -z "$(find "$d" -type f -newer "$tmp/stamp")"
t "second dev reports 0 made" has "$tmp/dev2.out" "(0 made)"
rm -f "$d/auditor.crt" "$d/auditor.key"
pki -d "$d" dev > /dev/null 2>&1
ok $? "dev remakes a removed pair"
t "dev remade auditor" test -s "$d/auditor.crt" -a -s "$d/auditor.key"
t "verify remade auditor OK" openssl verify -CAfile "$d/ca.crt" "$d/auditor.crt"
# Only the files of the set: the CA database has a new entry, of course.
snapshot "$d" | grep -v '/auditor\.\|/\.pki/' > "$tmp/snap3"
grep -v '/auditor\.\|/\.pki/' "$tmp/snap1" > "$tmp/snap1a"
t "remaking auditor left the other files alone" \
    cmp -s "$tmp/snap1a" "$tmp/snap3"
rm -f "$d/auditor.key"
pki -d "$d" dev > /dev/null 2> "$tmp/err"
rc=$?
[ $rc -eq 1 ] && has "$tmp/err" "auditor.crt"
ok $? "dev refuses a certificate without its key"

# 7. client, server, revoke, crl in a CA of our own.
p=$tmp/pki
pki -d "$p" init > "$tmp/out" 2> "$tmp/err"
ok $? "init makes a CA"
t "init prints nothing on stdout" test ! -s "$tmp/out"
t "init writes crl.pem" test -s "$p/crl.pem"
openssl crl -in "$p/crl.pem" -noout -text > "$tmp/crl" 2>&1
t "the initial CRL is empty" has "$tmp/crl" "No Revoked Certificates"
t "the initial CRL verifies" \
    openssl crl -in "$p/crl.pem" -CAfile "$p/ca.crt" -noout
pki -d "$p" client alice --ou ops --ou dev > "$tmp/fp" 2> "$tmp/err"
ok $? "client alice"
t "client prints one line on stdout" test "$(wc -l < "$tmp/fp")" -eq 1
fp=$(cat "$tmp/fp")
t "client fingerprint is SHA256: and 64 lower-case hex digits" \
    sh -c 'printf "%s\n" "$1" | grep -Eqx "SHA256:[0-9a-f]{64}"' sh "$fp"
t "client fingerprint matches openssl x509 -fingerprint" \
    test "$fp" = "$(fp_of "$p/alice.crt")"
t "client progress goes to stderr" has "$tmp/err" "alice.crt"
text "$p/alice.crt"
t "--ou ops --ou dev land in the subject, in order" \
    has "$tmp/text" "OU = ops, OU = dev, CN = alice"
t "client key is EC P-256 by default" has "$tmp/text" "NIST CURVE: P-256"
t "alice.key is mode 0600" test "$(mode "$p/alice.key")" = "-rw-------"
san="URI:spiffe://example.org/bob,DNS:bob.example.org,IP:127.0.0.9"
san="$san,email:bob@example.org"
pki -d "$p" client bob --san "$san" --rsa > /dev/null 2>&1
ok $? "client bob --san --rsa"
text "$p/bob.crt"
t "client --san URI lands" has "$tmp/text" "URI:spiffe://example.org/bob"
t "client --san DNS lands" has "$tmp/text" "DNS:bob.example.org"
t "client --san IP lands" has "$tmp/text" "IP Address:127.0.0.9"
t "client --san email lands" has "$tmp/text" "email:bob@example.org"
openssl pkey -in "$p/bob.key" -noout -text > "$tmp/key" 2>&1
t "client --rsa key is RSA 2048" has "$tmp/key" "Private-Key: (2048 bit"
pki -d "$p" server api --san DNS:api.example.org,IP:::1 > /dev/null 2>&1
ok $? "server api --san"
text "$p/api.crt"
t "server --san lands" \
    has "$tmp/text" "DNS:api.example.org, IP Address:0:0:0:0:0:0:0:1"
f "server --san replaces DNS:NAME" has "$tmp/text" "DNS:api,"
pki -d "$p" server web > /dev/null 2>&1
text "$p/web.crt"
t "server default SAN is DNS:NAME" has "$tmp/text" "DNS:web"
pki -d "$p" server big --ec384 --days 30 > /dev/null 2>&1
ok $? "server --ec384 --days 30"
text "$p/big.crt"
t "server --ec384 key is P-384" has "$tmp/text" "NIST CURVE: P-384"
f "--days 30 certificate ends within 31 days" \
    openssl x509 -in "$p/big.crt" -noout -checkend $((31 * 86400))
t "--days 30 certificate does not end within 29 days" \
    openssl x509 -in "$p/big.crt" -noout -checkend $((29 * 86400))
t "default certificate lasts past 364 days" \
    openssl x509 -in "$p/web.crt" -noout -checkend $((364 * 86400))
t "CA lasts past 3649 days" \
    openssl x509 -in "$p/ca.crt" -noout -checkend $((3649 * 86400))

t "fresh client verifies with the CRL before revoke" \
    openssl verify -CAfile "$p/ca.crt" -crl_check -CRLfile "$p/crl.pem" \
    "$p/alice.crt"
pki -d "$p" revoke alice > /dev/null 2>&1
ok $? "revoke alice"
serial=$(openssl x509 -in "$p/alice.crt" -noout -serial | sed 's/.*=//')
openssl crl -in "$p/crl.pem" -noout -text > "$tmp/crl" 2>&1
t "revoked alice is in crl.pem" has "$tmp/crl" "Serial Number: $serial"
t "revoked alice fails verification with the CRL" \
    verify_err "$p/alice.crt" "certificate revoked" -CAfile "$p/ca.crt" \
    -crl_check -CRLfile "$p/crl.pem"
bobserial=$(openssl x509 -in "$p/bob.crt" -noout -serial | sed 's/.*=//')
f "bob is not in crl.pem" has "$tmp/crl" "Serial Number: $bobserial"
n1=$(openssl crl -in "$p/crl.pem" -noout -crlnumber)
pki -d "$p" crl --days 2 > /dev/null 2>&1
ok $? "crl --days 2"
n2=$(openssl crl -in "$p/crl.pem" -noout -crlnumber)
t "crl increments the CRL number" test "$n1" != "$n2"
openssl crl -in "$p/crl.pem" -noout -text > "$tmp/crl" 2>&1
t "crl keeps the revoked serial" has "$tmp/crl" "Serial Number: $serial"
t "a 2-day CRL is valid now" openssl verify -CAfile "$p/ca.crt" \
    -crl_check -CRLfile "$p/crl.pem" "$p/bob.crt"
later=$(( $(date +%s) + 3 * 86400 ))
t "a 2-day CRL has expired in 3 days" verify_err "$p/bob.crt" \
    "CRL has expired" -CAfile "$p/ca.crt" -crl_check \
    -CRLfile "$p/crl.pem" -attime "$later"

TODOD_PKI_PASS=sekrit pki -d "$p" pkcs12 bob > /dev/null 2>&1
ok $? "pkcs12 bob with TODOD_PKI_PASS"
t "bob.p12 is mode 0600" test "$(mode "$p/bob.p12")" = "-rw-------"
t "bob.p12 opens with its password" \
    openssl pkcs12 -in "$p/bob.p12" -passin pass:sekrit -noout
f "bob.p12 refuses a wrong password" \
    openssl pkcs12 -in "$p/bob.p12" -passin pass:todod -noout

# Keys are private from the moment they exist: an openssl on PATH that
# notes the mode and path of every key right after genpkey wrote it.
real=$(command -v openssl)
mkdir "$tmp/shim"
cat > "$tmp/shim/openssl" <<EOF
#!/bin/sh
"$real" "\$@"
rc=\$?
if [ "\$1" = genpkey ]; then
	while [ \$# -gt 1 ]; do
		[ "\$1" = -out ] && ls -ld "\$2" >> "$tmp/genpkey.log"
		shift
	done
fi
exit \$rc
EOF
chmod 755 "$tmp/shim/openssl"
PATH=$tmp/shim:$PATH pki -d "$p" client carol > /dev/null 2>&1
ok $? "client carol through the openssl wrapper"
t "the wrapper saw the key generated" test -s "$tmp/genpkey.log"
t "a new key is mode 0600 before anything else touches it" \
    test -z "$(grep -v '^-rw------- ' "$tmp/genpkey.log")"
t "a new key is made in the scratch directory, not in place" \
    has "$tmp/genpkey.log" "/.pki/tmp."
t "a directory made by dev is mode 0700" test "$(mode "$d")" = "drwx------"

# RSA CA.
pki -d "$tmp/rsa" init --rsa > /dev/null 2>&1
ok $? "init --rsa"
openssl pkey -in "$tmp/rsa/ca.key" -noout -text > "$tmp/key" 2>&1
t "init --rsa makes an RSA 4096 CA key" has "$tmp/key" "Private-Key: (4096 bit"

# A CA made again after its files were removed starts a new database.
r=$tmp/re
pki -d "$r" init > /dev/null 2>&1 && pki -d "$r" client a > /dev/null 2>&1 &&
    rm -f "$r/ca.crt" "$r/ca.key" && pki -d "$r" init > /dev/null 2>&1
ok $? "init again after the CA files were removed"
t "the new CA's database is empty" test ! -s "$r/.pki/ca/index.txt"
t "the old database was kept aside" \
    test -n "$(find "$r/.pki" -name 'ca.old.*' -type d)"

# 8. Errors: exit 1 with a message, nothing half-made.
# expect_err DESCRIPTION MESSAGE ARGS...: exit 1 and MESSAGE on stderr.
expect_err()
{
	e_desc=$1
	e_msg=$2
	shift 2
	pki "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null
	e_rc=$?
	[ $e_rc -eq 1 ] && has "$tmp/err" "$e_msg" && test ! -s "$tmp/out"
	ok $? "$e_desc (exit $e_rc)"
}
expect_err "unknown command" "todod-pki: unknown command: frobnicate" \
    -d "$p" frobnicate
expect_err "no command prints usage" "usage:" -d "$p"
expect_err "unknown option prints usage" "usage:" -d "$p" client x --bogus
expect_err "missing name prints usage" "usage:" -d "$p" server
expect_err "missing directory" "todod-pki: no such directory: $tmp/empty" \
    -d "$tmp/empty" client x
expect_err "bad days for init" "todod-pki: number of days out of range" \
    -d "$tmp/empty" init --days 0
mkdir "$tmp/empty"
expect_err "client without a CA" \
    "todod-pki: no CA (run init first): $tmp/empty/ca.crt" \
    -d "$tmp/empty" client x
t "no key left without a CA" test ! -e "$tmp/empty/x.key"
expect_err "init refuses an existing CA" \
    "todod-pki: CA already exists: $p/ca.crt" \
    -d "$p" init
expect_err "server refuses to overwrite" \
    "todod-pki: already exists (use --force): $p/api.crt" -d "$p" server api
expect_err "client refuses to overwrite" \
    "todod-pki: already exists (use --force): $p/bob.crt" -d "$p" client bob
expect_err "pkcs12 refuses to overwrite" \
    "todod-pki: already exists (use --force): $p/bob.p12" -d "$p" pkcs12 bob
expect_err "pkcs12 without a password or terminal" \
    "todod-pki: no password (set TODOD_PKI_PASS): $p/api.p12" \
    -d "$p" pkcs12 api
expect_err "revoke twice" "todod-pki: already revoked: $p/alice.crt" \
    -d "$p" revoke alice
expect_err "revoke an unknown name" \
    "todod-pki: no such certificate: $p/nobody.crt" \
    -d "$p" revoke nobody
cp "$d/intruder.crt" "$p/intruder.crt"
expect_err "revoke a foreign certificate" "not issued by" \
    -d "$p" revoke intruder
expect_err "bad name" "todod-pki: bad name" -d "$p" client "a/b"
expect_err "reserved name ca" "reserved" -d "$p" server ca
expect_err "bad SAN type" "unknown subjectAltName type" \
    -d "$p" server s1 --san RID:1.2.3
expect_err "bad days" "todod-pki: bad number of days" -d "$p" server s1 --days x
expect_err "openssl rejects a bad IP" \
    "todod-pki: openssl ca failed: $p/s2.crt" \
    -d "$p" server s2 --san IP:1.2.3.999
t "no half-written key after a failure" \
    test ! -e "$p/s2.key" -a ! -e "$p/s2.crt"
t "no scratch files after a failure" noscratch "$p"

old=$(fp_of "$p/bob.crt")
pki -d "$p" client bob --force > "$tmp/fp" 2> /dev/null
ok $? "client --force replaces"
t "the replacement is a new certificate" test "$old" != "$(cat "$tmp/fp")"

# 9. The life of a PKI: help, list, show, renew, expiring.
pki help > "$tmp/out" 2> "$tmp/err"
[ $? -eq 0 ] && has "$tmp/out" "usage:" && has "$tmp/out" "expiring DAYS" &&
    test ! -s "$tmp/err"
ok $? "help prints the usage on stdout and exits 0"
pki -h > "$tmp/out" 2>&1
ok $? "-h exits 0"

l=$tmp/life
pki -d "$l" init > /dev/null 2>&1 &&
    pki -d "$l" server api.example.org \
    --san DNS:api.example.org,IP:192.0.2.10,IP:2001:db8::1 > /dev/null 2>&1 &&
    pki -d "$l" client alice --ou ops --ou dev > /dev/null 2>&1 &&
    pki -d "$l" client carol --san URI:spiffe://example.org/carol \
    > /dev/null 2>&1 &&
    pki -d "$l" client short --days 5 > /dev/null 2>&1 &&
    pki -d "$l" client gone > /dev/null 2>&1 &&
    pki -d "$l" revoke gone > /dev/null 2>&1
ok $? "a PKI with servers, clients and a revocation"

# serial_of FILE: as openssl prints it
serial_of()
{
	openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'
}

# end_of FILE: notAfter in ISO 8601, as openssl prints it
end_of()
{
	openssl x509 -in "$1" -noout -enddate -dateopt iso_8601 |
	    sed 's/^notAfter=//; s/ /T/'
}

# row NAME SERIAL: the list line of that certificate
row()
{
	awk -v n="$1" -v s="$2" '$1 == n && $4 == s' "$tmp/list"
}

pki -d "$l" list > "$tmp/list" 2> "$tmp/err"
ok $? "list exits 0"
t "list has a header" has "$tmp/list" "NAME"
[ "$(($(wc -l < "$tmp/list") - 1))" -eq "$(wc -l < "$l/.pki/ca/index.txt")" ]
ok $? "list has one line per certificate the CA issued"
bad=$(awk 'NR > 1 { print $5 }' "$tmp/list" |
    grep -E -v '^SHA256:[0-9a-f]{64}$')
[ -z "$bad" ]
ok $? "every fingerprint is SHA256: and 64 lower-case hex digits"
for c in api.example.org alice carol short; do
	r=$(row "$c" "$(serial_of "$l/$c.crt")")
	[ -n "$r" ] && [ "$(echo "$r" | awk '{print $2}')" = valid ] &&
	    [ "$(echo "$r" | awk '{print $3}')" = "$(end_of "$l/$c.crt")" ] &&
	    [ "$(echo "$r" | awk '{print $5}')" = "$(fp_of "$l/$c.crt")" ]
	ok $? "list: $c valid, with openssl's serial, notAfter and fingerprint"
done
r=$(row gone "$(serial_of "$l/gone.crt")")
[ "$(echo "$r" | awk '{print $2}')" = revoked ]
ok $? "list: a revoked certificate is revoked"
pki -d "$d" list > "$tmp/devlist" 2>&1
[ "$(awk '$1 == "expired" {print $2}' "$tmp/devlist")" = expired ] &&
    [ "$(awk '$1 == "notyet" {print $2}' "$tmp/devlist")" = not-yet-valid ] &&
    [ "$(awk '$1 == "revoked" {print $2}' "$tmp/devlist")" = revoked ] &&
    ! has "$tmp/devlist" intruder
ok $? "list: expired, not-yet-valid, revoked; another CA's are not listed"

pki -d "$l" show api.example.org > "$tmp/show" 2> "$tmp/err"
ok $? "show exits 0"
field()
{
	sed -n "s/^$1: *//p" "$tmp/show"
}
[ "$(field subject)" = CN=api.example.org ] &&
    [ "$(field serial)" = "$(serial_of "$l/api.example.org.crt")" ] &&
    [ "$(field "not after")" = "$(end_of "$l/api.example.org.crt")" ] &&
    [ "$(field fingerprint)" = "$(fp_of "$l/api.example.org.crt")" ]
ok $? "show: subject, serial, notAfter and fingerprint as openssl has them"
[ "$(field SAN)" = "DNS:api.example.org,IP:192.0.2.10,IP:2001:DB8:0:0:0:0:0:1" ]
ok $? "show: the SAN ($(field SAN))"
[ "$(field EKU)" = serverAuth ] && [ "$(field status)" = valid ]
ok $? "show: EKU serverAuth, status valid"
pki -d "$l" show alice > "$tmp/show" 2>&1
[ "$(field subject)" = "CN=alice,OU=dev,OU=ops" ] &&
    [ "$(field EKU)" = clientAuth ]
ok $? "show: a client's OUs and EKU ($(field subject))"
pki -d "$l" show gone > "$tmp/show" 2>&1
gs=$(serial_of "$l/gone.crt")
case $(field status) in revoked\ 20*) r=0 ;; *) r=1 ;; esac
openssl crl -in "$l/crl.pem" -noout -text | grep -q "Serial Number: $gs" ||
    r=1
ok $r "show: revoked, with the date, and the CRL lists it ($(field status))"
expect_err "show an unknown name" \
    "todod-pki: no such certificate: $l/nobody.crt" -d "$l" show nobody

# renew a client: same subject, SAN, EKU; new key and serial
old_s=$(serial_of "$l/alice.crt")
old_fp=$(fp_of "$l/alice.crt")
old_pub=$(openssl x509 -in "$l/alice.crt" -noout -pubkey)
old_subj=$(openssl x509 -in "$l/alice.crt" -noout -subject)
cp "$l/alice.crt" "$tmp/alice-old.crt"
pki -d "$l" renew alice > "$tmp/out" 2> "$tmp/err"
ok $? "renew alice"
[ "$(cat "$tmp/out")" = "$(fp_of "$l/alice.crt")" ] &&
    [ "$(cat "$tmp/out")" != "$old_fp" ]
ok $? "renew prints the new fingerprint"
[ "$(serial_of "$l/alice.crt")" != "$old_s" ]
ok $? "renew: a new serial"
[ "$(openssl x509 -in "$l/alice.crt" -noout -subject)" = "$old_subj" ]
ok $? "renew: the same subject, OUs included ($old_subj)"
[ "$(openssl x509 -in "$l/alice.crt" -noout -pubkey)" != "$old_pub" ] &&
    [ "$(openssl pkey -in "$l/alice.key" -pubout)" = \
    "$(openssl x509 -in "$l/alice.crt" -noout -pubkey)" ]
ok $? "renew: a new key, and alice.key is its key"
t "renew: the key is mode 0600" test "$(mode "$l/alice.key")" = "-rw-------"
text "$l/alice.crt"
t "renew: EKU clientAuth" has "$tmp/text" "TLS Web Client Authentication"
t "renew: verifies against the CA and CRL" openssl verify -CAfile \
    "$l/ca.crt" -crl_check -CRLfile "$l/crl.pem" -purpose sslclient \
    "$l/alice.crt"
t "renew: the old certificate still verifies" openssl verify -CAfile \
    "$l/ca.crt" -crl_check -CRLfile "$l/crl.pem" "$tmp/alice-old.crt"
pki -d "$l" list > "$tmp/list" 2>&1
[ "$(row alice "$old_s" | awk '{print $2}')" = valid ] &&
    [ "$(row alice "$(serial_of "$l/alice.crt")" | awk '{print $2}')" = valid ]
ok $? "list shows the old and the new alice, both valid"
t "renew: no scratch files" noscratch "$l"

# renew a server: the SAN, IPv6 included, and serverAuth
old_san=$(openssl x509 -in "$l/api.example.org.crt" -noout \
    -ext subjectAltName)
pki -d "$l" renew api.example.org > /dev/null 2>&1
ok $? "renew a server"
[ "$(openssl x509 -in "$l/api.example.org.crt" -noout -ext subjectAltName)" \
    = "$old_san" ]
ok $? "renew: the same SAN"
t "renew: the server verifies as sslserver" openssl verify -CAfile \
    "$l/ca.crt" -purpose sslserver "$l/api.example.org.crt"
pki -d "$l" renew carol > /dev/null 2>&1
openssl x509 -in "$l/carol.crt" -noout -ext subjectAltName |
    grep -q "URI:spiffe://example.org/carol"
ok $? "renew: a URI SAN is kept"

# --keep-key
ck=$(cksum < "$l/carol.key")
cs=$(serial_of "$l/carol.crt")
pki -d "$l" renew carol --keep-key > /dev/null 2>&1
ok $? "renew --keep-key"
[ "$(cksum < "$l/carol.key")" = "$ck" ] &&
    [ "$(serial_of "$l/carol.crt")" != "$cs" ] &&
    [ "$(openssl pkey -in "$l/carol.key" -pubout)" = \
    "$(openssl x509 -in "$l/carol.crt" -noout -pubkey)" ]
ok $? "renew --keep-key: the same key, a new serial"
cp "$l/alice.key" "$tmp/alice.key.save"
cp "$l/carol.key" "$l/alice.key"
expect_err "renew --keep-key refuses a key that does not match" \
    "todod-pki: key does not match the certificate: $l/alice.key" \
    -d "$l" renew alice --keep-key
cp "$tmp/alice.key.save" "$l/alice.key"
expect_err "renew refuses the CA" "renewing a CA" -d "$l" renew ca
expect_err "renew an unknown name" \
    "todod-pki: no such certificate: $l/nobody.crt" -d "$l" renew nobody

# the replaced certificate can be revoked by serial
pki -d "$l" revoke alice --serial "$old_s" > /dev/null 2>&1
ok $? "revoke --serial: the replaced alice"
openssl crl -in "$l/crl.pem" -noout -text > "$tmp/crl"
grep -q "Serial Number: $old_s" "$tmp/crl" &&
    ! grep -q "Serial Number: $(serial_of "$l/alice.crt")" "$tmp/crl"
ok $? "the CRL lists the old alice, not the new"
t "the new alice still verifies with the CRL" openssl verify -CAfile \
    "$l/ca.crt" -crl_check -CRLfile "$l/crl.pem" "$l/alice.crt"
expect_err "revoke --serial of another name's certificate" \
    "is not a certificate of carol" \
    -d "$l" revoke carol --serial "$(serial_of "$l/alice.crt")"

# expiring
pki -d "$l" expiring 10 > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && has "$tmp/out" "short" && ! has "$tmp/out" alice
ok $? "expiring 10: exit 1, lists the certificate of 5 days (rc $rc)"
[ "$(awk '$1 == "short" {print $5}' "$tmp/out")" = "$(fp_of "$l/short.crt")" ]
ok $? "expiring lists it with its fingerprint"
pki -d "$l" expiring 3 > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] && test ! -s "$tmp/out"
ok $? "expiring 3: nothing, exit 0 (rc $rc)"
pki -d "$l" renew short --days 365 > /dev/null 2>&1
pki -d "$l" expiring 10 > "$tmp/out" 2>&1
rc=$?
pki -d "$l" list > "$tmp/list" 2>&1
[ $rc -eq 0 ] && [ "$(grep -c '^short ' "$tmp/list")" -eq 2 ]
ok $? "renewed: expiring 10 is quiet, the old one is still listed (rc $rc)"
pki -d "$l" expiring 31 > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && has "$tmp/out" "crl.pem"
ok $? "expiring 31 names the CRL due in 30 days (rc $rc)"
pki -d "$l" expiring 4000 > "$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q '^ca ' "$tmp/out"
ok $? "expiring 4000 names the CA"
pki -d "$d" expiring 10 > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ]
ok $? "expiring: expired and not-yet-valid certificates are not expiring (rc $rc)"
expect_err "expiring needs a number" "todod-pki: bad number of days" \
    -d "$l" expiring soon

# 9b. AIA and CDP extensions.
pki -d "$l" server aia-srv --ocsp-url http://127.0.0.1:8888/ocsp \
    --crl-url http://127.0.0.1:8080/crl.der > /dev/null 2>&1
openssl x509 -in "$l/aia-srv.crt" -noout -ext authorityInfoAccess \
    2>/dev/null | grep -q 'OCSP - URI:http://127.0.0.1:8888/ocsp'
ok $? "--ocsp-url puts the responder in authorityInfoAccess"
openssl x509 -in "$l/aia-srv.crt" -noout -ext crlDistributionPoints \
    2>/dev/null | grep -q 'URI:http://127.0.0.1:8080/crl.der'
ok $? "--crl-url puts the URL in cRLDistributionPoints"
pki -d "$l" client aia-cli --ocsp-url http://127.0.0.1:8888/ > /dev/null 2>&1
openssl x509 -in "$l/aia-cli.crt" -noout -ext authorityInfoAccess \
    2>/dev/null | grep -q 'OCSP - URI:http://127.0.0.1:8888/'
ok $? "client --ocsp-url too"
expect_err "--ocsp-url must be http://" "must be an http:// URL" \
    -d "$l" client aia-bad --ocsp-url https://127.0.0.1/
expect_err "--crl-url refuses quotes" "character not allowed" \
    -d "$l" client aia-bad --crl-url 'http://x/"y'

# 9c. The dev set points at loopback; todod-pki ocsp answers for the CA.
openssl x509 -in "$d/localhost.crt" -noout -ext authorityInfoAccess \
    2>/dev/null | grep -q 'OCSP - URI:http://127.0.0.1:8889/'
ok $? "dev: localhost names the loopback OCSP responder"
openssl x509 -in "$d/mtls-client.crt" -noout -ext crlDistributionPoints \
    2>/dev/null | grep -q 'URI:http://127.0.0.1:8890/crl.der'
ok $? "dev: mtls-client names the loopback CRL"
openssl x509 -in "$d/intruder.crt" -noout -ext authorityInfoAccess \
    2>/dev/null | grep -q OCSP
[ $? -ne 0 ]
ok $? "dev: the untrusted CA's certificate names no responder"
openssl x509 -in "$d/ocsp-responder.crt" -noout -text > "$tmp/text" 2>&1
t "dev: ocsp-responder has EKU OCSPSigning" has "$tmp/text" "OCSP Signing"
t "dev: ocsp-responder has OCSP No Check" has "$tmp/text" "OCSP No Check"
openssl crl -in "$d/pub/crl.der" -inform DER -outform PEM 2>/dev/null |
    cmp -s - "$d/crl.pem"
ok $? "dev: pub/crl.der is crl.pem in DER"
t "dev: pub is mode 0755" test "$(mode "$d/pub")" = drwxr-xr-x
ls "$d/pub" > "$tmp/pub"
t "dev: pub holds nothing but crl.der" test "$(cat "$tmp/pub")" = crl.der

oport=$(python3 -c 'import socket; s = socket.socket();
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
query()
{
	openssl ocsp -issuer "$d/ca.crt" -cert "$d/$1.crt" -CAfile "$d/ca.crt" \
	    -url "http://127.0.0.1:$oport/" -timeout 5 -nonce 2>&1
}
"$SH" "$pki" -d "$d" ocsp --port "$oport" --nmin 5 > "$tmp/ocsp.out" 2>&1 &
opid=$!
i=0
until query mtls-client > "$tmp/q" && has "$tmp/q" ": good"; do
	i=$((i + 1))
	[ $i -lt 50 ] || break
	sleep 0.1
done
t "ocsp: answers good for mtls-client, nonce and signature verified" \
    has "$tmp/q" "Response verify OK"
query revoked > "$tmp/q"
t "ocsp: answers revoked for revoked" has "$tmp/q" ": revoked"
t "ocsp: says it listens on every address" has "$tmp/ocsp.out" \
    "EVERY address"
t "the manual says ocsp listens on every address" has "$man" \
    "every address"
pki -d "$d" revoke ops-user > /dev/null 2>&1
i=0
until query ops-user > "$tmp/q" && has "$tmp/q" ": revoked"; do
	i=$((i + 1))
	[ $i -lt 50 ] || break
	sleep 0.1
done
t "ocsp: a certificate revoked while it runs is answered revoked" \
    has "$tmp/q" "ops-user.crt: revoked"
query ops-user > "$tmp/q"
t "ocsp: and again (no stale answer)" has "$tmp/q" "ops-user.crt: revoked"
kill "$opid"
wait "$opid"
sleep 0.2
query mtls-client > "$tmp/q"
f "ocsp: gone after it is stopped (no openssl left behind)" \
    has "$tmp/q" ": good"
expect_err "ocsp: a bad port" "todod-pki: port out of range" \
    -d "$d" ocsp --port 70000
expect_err "ocsp: an unknown signer" "no such certificate" \
    -d "$d" ocsp --signer nobody

# 10. The manual.
if command -v mandoc >/dev/null 2>&1; then
	mandoc -Tlint -W warning "$man" > "$tmp/lint" 2>&1
	rc=$?
	[ $rc -eq 0 ] && [ ! -s "$tmp/lint" ]
	ok $? "mandoc -Tlint -W warning is clean"
	[ -s "$tmp/lint" ] && sed 's/^/# /' "$tmp/lint"
	for c in init server client revoke crl pkcs12 dev list show renew \
	    expiring keep-key TODOD_PKI_PASS ocsp-url crl-url Cm ocsp \
	    pub/crl.der ocsp-responder; do
		t "the manual documents $c" has "$man" "$c"
	done
else
	skip "mandoc -Tlint -W warning is clean" "mandoc not installed"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
