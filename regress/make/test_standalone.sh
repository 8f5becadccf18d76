#!/bin/sh
# The repository stands alone: no README, man page, source or test points
# at files a clone does not have (the design notes and the lab the project
# grew from lived next to it, in ../shared).
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
echo "1..2"
hits=$(grep -rn -I -e '\.\./shared' -e 'shared/seeds' -e 'DESIGN\.md' \
    --exclude-dir=build --exclude-dir=dev --exclude-dir=.git \
    --exclude=test_standalone.sh . 2>/dev/null)
if [ -z "$hits" ]; then
	echo "ok 1 - nothing points at ../shared or DESIGN.md"
else
	echo "$hits" | sed 's/^/# /'
	echo "not ok 1 - pointers to files outside the repository"
fi
for f in README daemon/todod.8 daemon/todod.conf.5 certs/todod-pki.1 \
    etc/todod.conf rc.d/todod.service; do
	[ -f "$f" ] || { echo "not ok 2 - missing $f"; exit 1; }
done
echo "ok 2 - README, the man pages, the sample configuration and the unit"
