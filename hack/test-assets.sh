#!/usr/bin/env bash
# Provide the test control plane binaries (etcd, kube-apiserver, kube-controller-manager, kubectl)
# in the controller-runtime envtest layout, and print the folder on stdout.
#
#   KUBEBUILDER_ASSETS=/some/folder  -> that folder is used as it is (checked, never modified)
#   otherwise                        -> $TBO_CACHE_DIR/k8s-1.20.2 (default ~/.cache/tradingbot-operator)
#                                       is built once from Debian's packages and reused afterwards.
#
# Kubernetes 1.20 is the newest release whose full source Debian ships (bookworm); see DESIGN.md.
# Progress goes to stderr so callers can capture the folder with $(hack/test-assets.sh).
set -euo pipefail

K8S_VERSION=1.20.2
REQUIRED=(etcd kube-apiserver kube-controller-manager kubectl)

say() { printf 'test-assets: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

complete_in() {
  local dir=$1 bin
  for bin in "${REQUIRED[@]}"; do
    [[ -x "$dir/$bin" ]] || return 1
  done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for bin in etcd kube-apiserver; do
    [[ -x "$KUBEBUILDER_ASSETS/$bin" ]] ||
      die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable '$bin' (envtest layout: etcd, kube-apiserver, optionally kube-controller-manager and kubectl)"
  done
  say "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

CACHE_ROOT=${TBO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tradingbot-operator}
DEST="$CACHE_ROOT/k8s-$K8S_VERSION"

if complete_in "$DEST"; then
  say "reusing cached assets in $DEST"
  echo "$DEST"
  exit 0
fi

say "no cached assets in $DEST: building them once (about 10 minutes on 2 cores)"

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || die "installing Debian packages needs root or sudo; or set KUBEBUILDER_ASSETS to a folder from 'setup-envtest use -p path 1.28.x'"
  SUDO=sudo
fi
command -v apt-get >/dev/null ||
  die "this build uses Debian's packages (apt-get not found); set KUBEBUILDER_ASSETS to a folder from 'setup-envtest use -p path 1.28.x'"

SRC_LIST=/etc/apt/sources.list.d/tradingbot-operator-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  say "adding Debian source repositories ($SRC_LIST) for 'apt-get source kubernetes'"
  $SUDO tee "$SRC_LIST" >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

say "apt-get update"
$SUDO apt-get update -qq >&2
say "installing the build tools: golang-1.19-go, rsync, dpkg-dev, make, reflect2 1.0.2 sources"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  golang-1.19-go rsync dpkg-dev make golang-github-modern-go-reflect2-dev >&2

mkdir -p "$CACHE_ROOT"
BUILD=$(mktemp -d "$CACHE_ROOT/build.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
# etcd and kubectl are unpacked from their .debs rather than installed: that starts no system etcd
# and does not fight with another kubectl package (Google's cloud SDK ships one at /usr/bin/kubectl).
say "unpacking etcd 3.4 (etcd-server) and kubectl 1.20 (kubernetes-client) from Debian's packages"
(cd "$BUILD" && apt-get download -qq etcd-server kubernetes-client >&2 &&
  dpkg-deb -x etcd-server_*.deb debs && dpkg-deb -x kubernetes-client_*.deb debs)
(cd "$BUILD" && apt-get source -qq kubernetes >&2)
SRC=$(find "$BUILD" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
[[ -n "$SRC" ]] || die "apt-get source kubernetes produced no source folder"
[[ -d "$SRC/vendor" ]] || die "the kubernetes source package has no vendor/ folder"

# The vendored reflect2 1.0.1 crashes the apiserver ("fatal error: fault" in map iteration)
# under Go >= 1.18; Debian's 1.0.2 sources fix it.
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
[[ -d "$REFLECT2" ]] || die "reflect2 sources not found in $REFLECT2"
say "replacing vendor/github.com/modern-go/reflect2 with Debian's 1.0.2"
rm -rf "$SRC/vendor/github.com/modern-go/reflect2"
cp -r "$REFLECT2" "$SRC/vendor/github.com/modern-go/reflect2"

say "building kube-apiserver and kube-controller-manager (go 1.19)"
(cd "$SRC" && PATH=/usr/lib/go-1.19/bin:$PATH GOCACHE="$BUILD/gocache" GOPATH="$BUILD/gopath" \
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2)

OUT="$SRC/_output/bin"
mkdir -p "$DEST.tmp"
cp "$OUT/kube-apiserver" "$OUT/kube-controller-manager" "$DEST.tmp/"
cp "$BUILD/debs/usr/bin/etcd" "$BUILD/debs/usr/bin/kubectl" "$DEST.tmp/"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
complete_in "$DEST" || die "the build finished but $DEST is incomplete"
say "assets ready in $DEST"
echo "$DEST"
