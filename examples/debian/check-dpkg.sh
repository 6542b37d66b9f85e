#!/bin/sh
# Runs inside the image: dpkg sees the image's packages, not the host's.
set -eu
count=$(dpkg-query -W -f='${db:Status-Abbrev}\n' | grep -c '^ii')
echo "installed packages: $count"
test "$count" -lt 200
version=$(dpkg-query -W -f='${Version}' base-files)
echo "base-files $version"
case "$version" in "$DEBIAN_MAJOR"*) ;; *) echo "base-files is not Debian $DEBIAN_MAJOR" >&2; exit 1 ;; esac
if dpkg-query -W mmdebstrap >/dev/null 2>&1; then echo "mmdebstrap is installed: the host's dpkg?" >&2; exit 1; fi
command -v apt-get >/dev/null
