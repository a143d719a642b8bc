# Shared by the test fixtures' build scripts (tests/*/build.sh), sourced.

newer() { # target sources...: does target need rebuilding?
  local t=$1
  shift
  [ -f "$t" ] || return 0
  for s in "$@"; do [ "$s" -nt "$t" ] && return 0; done
  return 1
}
