#!/usr/bin/env bash
# Build a minimal Debian bookworm + Python 3.11 base image locally, without
# pulling anything from a container registry.
#
# Why: where no registry is reachable, the default BentoML base image
# (python:3.11-slim) cannot be pulled. debootstrap builds the same kind of
# root filesystem from the Debian mirror apt already uses on this host, and
# `podman import` turns it into an image that bentofile.yaml can name as
# `docker: base_image: localhost/...`.
#
# The image only needs python3.11 + pip: BentoML's generated Dockerfile
# (bento v2, distro "none") installs uv, creates the venv in /app/.venv and
# creates the non-root `bentoml` user (uid/gid 1034) itself with useradd,
# which this image provides (package `passwd` is part of every debootstrap).
#
# Environment:
#   BASE_IMAGE       image name             (default localhost/model-bundle-base:bookworm)
#   SUITE            Debian suite           (default bookworm: Python 3.11)
#   DEBIAN_MIRROR    mirror URL             (default: the one the host's apt sources use for SUITE)
#   TRUST_HOST_CA    1/0: copy the host's extra CA certificates
#                    (/usr/local/share/ca-certificates) into the image and
#                    trust them. Needed behind a TLS-intercepting (corporate)
#                    proxy so pip/uv inside image builds can reach the package
#                    index. Default: 1 when the host has such certificates.
#   HOST_CA_DIR      where the extra CA certificates are (default /usr/local/share/ca-certificates)
#   SECURITY_UPGRADE 1/0: apply updates from the host's <suite>-updates and
#                    <suite>-security entries inside the image (default 1)
#   FORCE=1          rebuild even when the image already exists
#   WORK_DIR         scratch directory for the root filesystem (default: mktemp under /var/tmp)
set -euo pipefail

BASE_IMAGE="${BASE_IMAGE:-localhost/model-bundle-base:bookworm}"
SUITE="${SUITE:-bookworm}"
HOST_CA_DIR="${HOST_CA_DIR:-/usr/local/share/ca-certificates}"
SECURITY_UPGRADE="${SECURITY_UPGRADE:-1}"
FORCE="${FORCE:-0}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '[build-base-image] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    # debootstrap creates device nodes and chowns files: it needs real root.
    log "must run as root"
    exit 1
fi

"$SCRIPT_DIR/install-tools.sh"

if [ "$FORCE" != "1" ] && podman image exists "$BASE_IMAGE"; then
    log "$BASE_IMAGE already exists (FORCE=1 rebuilds it)"
    podman image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$BASE_IMAGE"
    exit 0
fi

# --- Which mirrors does the host's apt use? -------------------------------
# Prints "URI SUITE" for every enabled binary (deb) entry with component main,
# from both the one-line format (sources.list, *.list) and deb822 (*.sources).
apt_entries() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }   # skip [options]
                uri = $i; suite = $(i + 1)
                for (j = i + 2; j <= NF; j++) if ($j == "main") print uri, suite
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no" && comps ~ /(^| )main( |$)/) {
                    n = split(uris, u, " "); m = split(suites, s, " ")
                    for (a = 1; a <= n; a++) for (b = 1; b <= m; b++) print u[a], s[b]
                }
                types = uris = suites = comps = ""; enabled = "yes"
            }
            BEGIN { enabled = "yes" }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                key = tolower($1); sub(/:$/, "", key)
                $1 = ""; sub(/^[ \t]+/, "")
                if (key == "types") types = $0
                else if (key == "uris") uris = $0
                else if (key == "suites") suites = $0
                else if (key == "components") comps = $0
                else if (key == "enabled") enabled = tolower($0)
            }
            END { flush() }' "$f"
    done
}

ENTRIES="$(apt_entries | awk -v s="$SUITE" '$2 == s || index($2, s "-") == 1' | sort -u)"
if [ -z "${DEBIAN_MIRROR:-}" ]; then
    DEBIAN_MIRROR="$(printf '%s\n' "$ENTRIES" | awk -v s="$SUITE" '$2 == s { print $1; exit }')"
fi
if [ -z "$DEBIAN_MIRROR" ]; then
    log "no apt source for suite '$SUITE' with component main on this host; set DEBIAN_MIRROR"
    exit 1
fi
log "mirror: $DEBIAN_MIRROR (suite $SUITE)"

# --- Corporate-proxy option: trust the host's extra CA certificates -------
if [ -z "${TRUST_HOST_CA:-}" ]; then
    if [ -d "$HOST_CA_DIR" ] && [ -n "$(find "$HOST_CA_DIR" -type f -name '*.crt' -print -quit)" ]; then
        TRUST_HOST_CA=1
    else
        TRUST_HOST_CA=0
    fi
fi

# --- Root filesystem -------------------------------------------------------
ROOTFS_PARENT="${WORK_DIR:-$(mktemp -d /var/tmp/model-bundle-base.XXXXXX)}"
ROOTFS="$ROOTFS_PARENT/rootfs"
cleanup() { rm -rf "$ROOTFS_PARENT"; }
trap cleanup EXIT

BUILD_LOG="$ROOTFS_PARENT/build.log"
# Run a noisy step with its output in the build log; show the log's tail if it fails.
quiet() {
    "$@" >>"$BUILD_LOG" 2>&1 || {
        local rc=$?
        log "failed ($rc): $*"
        tail -n 30 "$BUILD_LOG" >&2
        exit "$rc"
    }
}

start=$(date +%s)
log "debootstrap (minbase) into $ROOTFS"
quiet debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    "$SUITE" "$ROOTFS" "$DEBIAN_MIRROR"

# Same mirrors as the host for later `apt-get` calls in image builds
# (updates and security entries included when the host has them).
printf '%s\n' "$ENTRIES" | awk '{ print "deb", $1, $2, "main" }' >"$ROOTFS/etc/apt/sources.list"

if [ "$TRUST_HOST_CA" = "1" ]; then
    log "trusting the host's extra CA certificates from $HOST_CA_DIR"
    mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    cp -a "$HOST_CA_DIR"/. "$ROOTFS/usr/local/share/ca-certificates/"
    quiet chroot "$ROOTFS" update-ca-certificates
fi

if [ "$SECURITY_UPGRADE" = "1" ] && [ "$(printf '%s\n' "$ENTRIES" | wc -l)" -gt 1 ]; then
    log "applying updates from the host's ${SUITE}-updates/-security entries"
    cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
    quiet chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    quiet chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get -q -y upgrade
    # The upgrade may have replaced ca-certificates; re-trust the extra CAs.
    if [ "$TRUST_HOST_CA" = "1" ]; then quiet chroot "$ROOTFS" update-ca-certificates; fi
fi

# pip/uv may install into the system interpreter inside the image: it is the
# image's only Python user (BentoML creates its own venv anyway).
rm -f "$ROOTFS"/usr/lib/python3*/EXTERNALLY-MANAGED

# Keep it lean: package caches, indexes, docs, man pages, logs.
rm -rf "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
    "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* \
    "$ROOTFS"/usr/share/man "$ROOTFS"/usr/share/info "$ROOTFS"/usr/share/locale/* \
    "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/lib/dpkg/*-old
find "$ROOTFS"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
# resolv.conf/hostname are provided by the runtime at start.
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"

log "importing as $BASE_IMAGE"
if podman image exists "$BASE_IMAGE"; then podman rmi -f "$BASE_IMAGE" >/dev/null; fi
# SSL_CERT_FILE: uv (used by BentoML's Dockerfile) bundles its own root
# certificates unless told to use the system bundle, which holds the extra CAs.
tar -C "$ROOTFS" --numeric-owner -c . | podman import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV LC_ALL=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["/usr/bin/python3"]' \
    --change "LABEL org.opencontainers.image.description=Debian $SUITE minbase with Python 3 (debootstrap)" \
    --message "debootstrap $SUITE minbase + python3" \
    --quiet - "$BASE_IMAGE" >/dev/null

log "built in $(($(date +%s) - start)) s"
podman run --rm "$BASE_IMAGE" python3 -c 'import sys, ssl; print("python", sys.version.split()[0])'
podman image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$BASE_IMAGE"
