#!/usr/bin/env bash
# Install a daemonless OCI toolchain (podman + buildah + runc) for hosts that
# have no usable Docker engine, and give it a configuration that works on
# machines with a hybrid cgroup v1/v2 layout and no container registry.
#
# Idempotent:
#   * a working Docker engine means there is nothing to do;
#   * only packages that are missing are installed;
#   * /etc/containers/{containers,storage}.conf are written only when they do
#     not exist yet or were written by this script earlier (recognised by the
#     MANAGED_MARKER header), so an operator's own configuration is never
#     overwritten.
#
# Environment:
#   CONTAINERS_CONF_DIR   where the config files go      (default /etc/containers)
#   CONTAINERS_GRAPHROOT  image/layer storage             (default /var/lib/containers/storage)
#   CONTAINERS_RUNROOT    runtime state                   (default /run/containers/storage)
#   FORCE_PODMAN=1        install podman even when a Docker engine is usable
set -euo pipefail

CONF_DIR="${CONTAINERS_CONF_DIR:-/etc/containers}"
GRAPHROOT="${CONTAINERS_GRAPHROOT:-/var/lib/containers/storage}"
RUNROOT="${CONTAINERS_RUNROOT:-/run/containers/storage}"
MANAGED_MARKER="# Managed by deploy/container/install-tools.sh"

log() { printf '[install-tools] %s\n' "$*" >&2; }

# Everything below needs root (apt, /etc); use sudo when it is available.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        log "must run as root (or with sudo available)"
        exit 1
    fi
fi

# 1. A usable Docker engine wins: `bentoml containerize` uses it by default.
if [ "${FORCE_PODMAN:-0}" != "1" ] && command -v docker >/dev/null 2>&1 \
    && docker info >/dev/null 2>&1; then
    log "Docker engine is usable; nothing to install"
    exit 0
fi

# 2. Packages. runc rather than crun: crun fails on hybrid cgroup hosts.
#    catatonit is the init that `podman run --init` injects (without an init,
#    PID 1 in the container ignores SIGTERM and `podman stop` has to kill it).
#    debootstrap builds the base image without pulling from a registry.
PACKAGES="buildah podman skopeo runc conmon catatonit fuse-overlayfs slirp4netns uidmap
containernetworking-plugins golang-github-containers-common debootstrap"

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -n "$missing" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        # Not a Debian-family host: accept a podman/buildah the operator installed.
        if command -v podman >/dev/null 2>&1 && command -v buildah >/dev/null 2>&1; then
            log "no apt-get; using the podman/buildah already on PATH"
        else
            log "no Docker engine, no podman/buildah and no apt-get: install podman and buildah first"
            exit 1
        fi
    else
        log "installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -q
        # --no-install-recommends: every runtime piece we rely on is listed explicitly.
        # shellcheck disable=SC2086  # word splitting of the package list is intended
        $SUDO apt-get install -q -y --no-install-recommends $missing
    fi
else
    log "all packages already installed"
fi

# 3. Configuration, written only if absent or ours.
write_managed() {
    # write_managed PATH  (content on stdin)
    local path="$1" tmp
    if [ -e "$path" ] && ! head -n 1 "$path" | grep -qF "$MANAGED_MARKER"; then
        log "keeping existing $path (not written by this script)"
        cat >/dev/null
        return 0
    fi
    tmp="$(mktemp)"
    cat >"$tmp"
    if [ -e "$path" ] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        log "$path is up to date"
        return 0
    fi
    $SUDO mkdir -p "$(dirname "$path")"
    $SUDO install -m 0644 "$tmp" "$path"
    rm -f "$tmp"
    log "wrote $path"
}

write_managed "$CONF_DIR/containers.conf" <<EOF
$MANAGED_MARKER
# Delete this header line to take the file over; the script will then leave it alone.
[containers]
# Host networking for builds and runs: no bridge/CNI setup and no NAT needed,
# and RUN steps reach the package index through the host's own network path.
netns = "host"
# The runtime default (1024 open files) is too low for an HTTP server.
default_ulimits = [
  "nofile=20000:20000",
  "nproc=32768:32768",
]

[engine]
# No systemd managing cgroups here; cgroupfs works on v1, v2 and hybrid hosts.
cgroup_manager = "cgroupfs"
# journald is not guaranteed to run; a plain file always works.
events_logger = "file"
# crun fails on hybrid cgroup setups; runc works.
runtime = "runc"
EOF

write_managed "$CONF_DIR/storage.conf" <<EOF
$MANAGED_MARKER
# Delete this header line to take the file over; the script will then leave it alone.
[storage]
driver = "overlay"
graphroot = "$GRAPHROOT"
runroot = "$RUNROOT"

[storage.options.overlay]
# Kernel overlayfs as root; fuse-overlayfs is installed for rootless use.
mountopt = "nodev"
EOF

if command -v podman >/dev/null 2>&1; then
    log "$(podman --version), $(buildah --version 2>/dev/null | head -n 1)"
fi
