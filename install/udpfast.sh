#!/usr/bin/env bash
# Build the DNS service's optional C fast path (services/dns/_udpfast.c) next to its source.
# Without a compiler the DNS service answers from its Python path, and says so when it starts.
set -u
py="$1"
src=services/dns/_udpfast.c
out=services/dns/_udpfast$("$py" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
include=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
if [ "$out" -nt "$src" ]; then exit 0; fi
if ! command -v "${CC:-gcc}" >/dev/null 2>&1; then
  echo "warning: no C compiler: the DNS service uses its Python fast path" >&2
  exit 0
fi
"${CC:-gcc}" -O2 -Wall -Wextra -Werror -shared -fPIC -I"$include" -o "$out" "$src" ||
  { echo "warning: $src did not build: the DNS service uses its Python fast path" >&2; rm -f "$out"; }
exit 0
