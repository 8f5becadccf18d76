#!/bin/sh
# Turn the page's files into C arrays: embed.sh OUT.c FILE...
# Each FILE becomes `const unsigned char page_<base>_<ext>[]` and its
# length `page_<base>_<ext>_len`.  od and sed only, so that any POSIX
# system builds it (no xxd).
set -eu
out=$1
shift
tmp=$out.tmp
{
	echo "/* Made by daemon/page/embed.sh from daemon/page/: do not edit. */"
	echo "#include <stddef.h>"
	for f in "$@"; do
		name=page_$(basename "$f" | tr -c 'A-Za-z0-9\n' '_')
		echo ""
		echo "extern const unsigned char ${name}[];"
		echo "extern const size_t ${name}_len;"
		echo "const unsigned char ${name}[] = {"
		od -An -v -tx1 "$f" |
		    sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/	/'
		echo "};"
		echo "const size_t ${name}_len = sizeof(${name});"
	done
} > "$tmp"
mv -f "$tmp" "$out"
