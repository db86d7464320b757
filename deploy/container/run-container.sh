#!/usr/bin/env bash
# Run a containerized Bento in the background, or stop it.
#
#   deploy/container/run-container.sh IMAGE [extra run args...]   start (detached) and wait for /readyz
#   deploy/container/run-container.sh stop                          stop (SIGTERM, then timeout) and remove
#   deploy/container/run-container.sh logs                          print the container's logs
#   deploy/container/run-container.sh status                        show the container
#
# --init: a minimal init (catatonit/tini) runs as PID 1, forwards SIGTERM to
# the server and reaps the worker processes it leaves behind. A process that is
# PID 1 gets no default signal handlers, so without an init a clean shutdown
# depends on the server installing its own SIGTERM handler in time (bentoml
# 1.4.39 does once started; during startup the signal would be ignored).
#
# Environment:
#   BENTO_CONTAINER_ENGINE   docker|podman (default: docker if a Docker engine answers, else podman)
#   BENTO_CONTAINER_NAME     container name (default model-bundle)
#   BENTO_PORT               port on the host (default 3000)
#   BENTO_NETWORK            host|bridge (default: host for podman, bridge for docker).
#                            host needs no CNI/iptables setup (the podman route here);
#                            the server then listens on BENTO_PORT directly.
#   BENTOML_CONFIG           host path of a BentoML runtime config to mount read-only and use
#   STOP_TIMEOUT             seconds between SIGTERM and SIGKILL on stop (default 30)
#   READY_TIMEOUT            seconds to wait for /readyz after start; 0 skips the wait (default 120)
set -euo pipefail

NAME="${BENTO_CONTAINER_NAME:-model-bundle}"
PORT="${BENTO_PORT:-3000}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"

log() { printf '[run-container] %s\n' "$*" >&2; }

ENGINE="${BENTO_CONTAINER_ENGINE:-}"
if [ -z "$ENGINE" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        ENGINE=docker
    else
        ENGINE=podman
    fi
fi
if [ "$ENGINE" = docker ]; then NETWORK="${BENTO_NETWORK:-bridge}"; else NETWORK="${BENTO_NETWORK:-host}"; fi

exists() { "$ENGINE" container inspect "$NAME" >/dev/null 2>&1; }

stop() {
    if exists; then
        log "stopping $NAME (SIGTERM, up to ${STOP_TIMEOUT}s)"
        "$ENGINE" stop --time "$STOP_TIMEOUT" "$NAME" >/dev/null || true
        code="$("$ENGINE" container inspect --format '{{.State.ExitCode}}' "$NAME" 2>/dev/null || echo '?')"
        log "exit code $code"
        "$ENGINE" rm -f "$NAME" >/dev/null
    else
        log "no container named $NAME"
    fi
}

case "${1:-}" in
    "" | -h | --help)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
    stop)
        stop
        exit 0
        ;;
    logs)
        exec "$ENGINE" logs "$NAME"
        ;;
    status)
        exec "$ENGINE" ps -a --filter "name=^${NAME}\$"
        ;;
esac

IMAGE="$1"
shift

if exists; then
    log "replacing the existing container $NAME"
    stop
fi

# Fail early instead of probing somebody else's server on the same port.
if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then
    log "port $PORT is already in use on this host; set BENTO_PORT"
    exit 1
fi

run_args=(run --init --detach --name "$NAME" --network "$NETWORK")
if [ "$NETWORK" = host ]; then
    # No port mapping on the host network: move the server itself (bentoml serve reads BENTOML_PORT).
    run_args+=(--env "BENTOML_PORT=${PORT}")
else
    run_args+=(--publish "${PORT}:3000")
fi
if [ -n "${BENTOML_CONFIG:-}" ]; then
    # Same layout as the Kubernetes ConfigMap mount in deploy/kubernetes.
    run_args+=(--volume "$(realpath "$BENTOML_CONFIG"):/etc/bentoml/configuration.yaml:ro"
        --env BENTOML_CONFIG=/etc/bentoml/configuration.yaml)
fi

"$ENGINE" "${run_args[@]}" "$@" "$IMAGE" >/dev/null
log "started $NAME from $IMAGE on port $PORT ($ENGINE, network $NETWORK)"

if [ "$READY_TIMEOUT" -gt 0 ]; then
    deadline=$(($(date +%s) + READY_TIMEOUT))
    while :; do
        if [ "$("$ENGINE" container inspect --format '{{.State.Running}}' "$NAME")" != "true" ]; then
            log "container exited before it was ready:"
            "$ENGINE" logs --tail 40 "$NAME" >&2 || true
            exit 1
        fi
        if curl -fs -o /dev/null "http://127.0.0.1:${PORT}/readyz" 2>/dev/null; then break; fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "not ready after ${READY_TIMEOUT}s; logs:"
            "$ENGINE" logs --tail 40 "$NAME" >&2 || true
            exit 1
        fi
        sleep 1
    done
    log "ready: http://127.0.0.1:${PORT}/readyz"
fi
