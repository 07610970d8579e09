#!/usr/bin/env bash
# Installs, from Debian's packages, those of the named packages that are not
# installed yet (as root, or through sudo). Usage: install-missing.sh LABEL PKG...
# LABEL prefixes the messages (the calling script's name).
set -euo pipefail
label="$1"
shift

missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "$label: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "$label: all needed packages are installed"
fi
