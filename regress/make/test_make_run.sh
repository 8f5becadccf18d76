#!/bin/sh
# `make run` on a machine without the build packages: deps installs them
# and the build that follows must see them.  A copy of the tree stands in
# for the fresh machine: its pkg-config knows no package until the copy's
# deps step has run (the stand-in for apt-get), and its dev-setup records
# that it was reached and stops before todod would start.  A make that
# computed the compiler flags before deps ran builds without
# -isystem /usr/include/bsd and fails (sys/tree.h: No such file).
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/todod-makerun.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$top/regress/make/tap.inc"

echo "1..6"
mkdir -p "$tmp/src" "$tmp/bin"
tar -C "$top" --exclude=./build --exclude=./dev --exclude=./.git -cf - . |
    tar -C "$tmp/src" -xf -
real=$(command -v pkg-config)
cat > "$tmp/bin/pkg-config" <<SH
#!/bin/sh
# "not installed" until the deps step has run
[ -e "$tmp/installed" ] || exit 1
exec "$real" "\$@"
SH
cat > "$tmp/src/regress/deps.sh" <<SH
#!/bin/sh
echo "\$@" > "$tmp/deps.args"
touch "$tmp/installed"
SH
cat > "$tmp/src/etc/dev-setup.sh" <<SH
#!/bin/sh
touch "$tmp/setup.ran"
exit 7
SH
chmod +x "$tmp/bin/pkg-config"

# -O0: this test is about the order of the steps, not the code
( cd "$tmp/src" && PATH="$tmp/bin:$PATH" timeout 600 \
    make CFLAGS="-O0" run ) > "$tmp/make.out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/make.out" | tail -15
[ -e "$tmp/installed" ]; ok $? "make run ran the deps step"
[ -x "$tmp/src/build/todod" ] && [ -x "$tmp/src/build/todod-keyholder" ]
ok $? "make run built todod and todod-keyholder after deps"
[ -e "$tmp/setup.ran" ] && [ "$rc" -ne 0 ]
ok $? "make run went on to the development set-up (stopped there, rc $rc)"
args=$(cat "$tmp/deps.args" 2>/dev/null)
echo "# deps asked for: $args"
case " $args " in *" libbsd-dev "*) r=0 ;; *) r=1 ;; esac
case " $args " in *" openssl "*) ;; *) r=1 ;; esac
ok $r "make run asks for the build packages and openssl"
r=0
for p in clang valgrind systemd mandoc curl libclang-rt-14-dev nginx-light; do
	case " $args " in *" $p "*) echo "# also asked for $p"; r=1 ;; esac
done
ok $r "make run asks for nothing only the tests need"
"$tmp/src/build/todod" -V > "$tmp/v.out" 2>&1
grep -q '^todod [0-9]' "$tmp/v.out"
ok $? "the todod it built runs (todod -V: $(cat "$tmp/v.out"))"
[ "$fails" -eq 0 ]
