#!/usr/bin/env bash
# Debian packages the tests drive from outside Python, installed when missing:
#
#   infra/tools.sh kcat        # a non-Python Kafka client (direct-ingest tests)
#
# Each name is a command; its Debian package is installed with apt-get (after
# apt-get update) when the command is not on PATH. Needs root or sudo only then.
set -euo pipefail

die() { echo "tools.sh: $*" >&2; exit 1; }

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

package_of() {
  case "$1" in
    kcat) echo kcat ;;
    chromium) echo chromium ;;             # the dashboard and portal browser tests
    chromedriver) echo chromium-driver ;;  # ... drive it through WebDriver
    pdftoppm) echo poppler-utils ;;        # screenshots of rendered PDFs
    *) die "unknown tool $1" ;;
  esac
}

missing=()
for tool in "$@"; do
  command -v "$tool" >/dev/null || missing+=("$(package_of "$tool")")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
echo "tools.sh: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -q >/dev/null
as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
