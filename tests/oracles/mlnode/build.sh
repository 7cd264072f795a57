#!/usr/bin/env bash
# Build mlnode, a HashiCorp memberlist node (Debian's golang-github-hashicorp-memberlist-dev,
# memberlist 0.2.2, protocol versions 1-5), fully offline in GOPATH mode.
#   bash tests/oracles/mlnode/build.sh OUT      e.g. OUT=build/oracles/mlnode
# Installs golang-go and the memberlist -dev package with apt when they are missing (root or sudo).
# The project's copy of ../shared/oracles/mlnode/build.sh (CI runs on clones without ../shared);
# it also accepts a relative OUT.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUT}"
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/hashicorp/memberlist ]; then
  pkgs="golang-go golang-github-hashicorp-memberlist-dev"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq >/dev/null && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null; }
fi
src="$(mktemp -d)"; cp "$here/main.go" "$src/"
export GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOPATH=/usr/share/gocode
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/mlnode-gocache}"
(cd "$src" && go build -trimpath -o "$out" .)
rm -rf "$src"
echo "built $out ($(go version | awk '{print $3}'), memberlist $(dpkg-query -W -f='${Version}' golang-github-hashicorp-memberlist-dev 2>/dev/null || echo '?'))"
