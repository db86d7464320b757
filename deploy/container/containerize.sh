#!/usr/bin/env bash
# Turn a built Bento into an OCI image with whatever builder this host has.
#
#   deploy/container/containerize.sh BENTO_TAG [extra `bentoml containerize` args...]
#
# Backend choice:
#   * docker  - when a Docker engine answers `docker info`: plain
#               `bentoml containerize`, exactly as on a developer laptop.
#   * podman  - otherwise: install podman/buildah (install-tools.sh), build the
#               local base image (build-base-image.sh) and build with
#               `--backend podman --opt network=host`. Host networking lets the
#               RUN steps reach the package index without a bridge network.
#
# The Bento must have been built for the base image it will run on; with the
# podman route that is the local debootstrap image (see deploy/README.md).
#
# Environment:
#   BENTO_CONTAINER_BACKEND  force docker|podman|buildah (default: auto)
#   IMAGE_TAG          name:tag of the image (default: the Bento tag); it is also tagged name:latest
#   BASE_IMAGE         local base image for podman/buildah (default localhost/model-bundle-base:bookworm)
#   BENTOML            bentoml command (default: bentoml on PATH)
#   STRIP_WHEELS       1/0 (podman/buildah only). BentoML's Dockerfile copies the
#                      Bento's src/wheels twice (once to install, once with the
#                      whole Bento), so a carried CPU torch wheel costs ~2 x 190 MB
#                      on top of the installed package. 1 flattens the image into
#                      one layer without those copies. Default: 1 when the Bento
#                      carries wheels.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENTOML="${BENTOML:-bentoml}"
export BASE_IMAGE="${BASE_IMAGE:-localhost/model-bundle-base:bookworm}"

log() { printf '[containerize] %s\n' "$*" >&2; }

if [ $# -lt 1 ]; then
    echo "usage: $0 BENTO_TAG [extra bentoml containerize args...]" >&2
    exit 2
fi
BENTO_TAG="$1"
shift

docker_usable() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

BACKEND="${BENTO_CONTAINER_BACKEND:-}"
if [ -z "$BACKEND" ]; then
    if docker_usable; then BACKEND=docker; else BACKEND=podman; fi
fi

# Resolve "name:latest" to the concrete tag so the image name is predictable.
BENTO_TAG="$("$BENTOML" get "$BENTO_TAG" -o json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["name"] + ":" + d["version"])')"
IMAGE_TAG="${IMAGE_TAG:-$BENTO_TAG}"
# The base image is fixed when the Bento is built (it is in its Dockerfile).
BENTO_PATH="$("$BENTOML" get "$BENTO_TAG" -o path)"
FROM_IMAGE="$(awk 'toupper($1) == "FROM" { print $2; exit }' "$BENTO_PATH/env/docker/Dockerfile")"
log "bento $BENTO_TAG, base image $FROM_IMAGE"

args=(containerize "$BENTO_TAG" --image-tag "$IMAGE_TAG")
case "$BACKEND" in
    docker)
        case "$FROM_IMAGE" in
            localhost/*)
                if ! docker image inspect "$FROM_IMAGE" >/dev/null 2>&1; then
                    log "warning: the Bento was built for the local image $FROM_IMAGE, which Docker does not have;"
                    log "rebuild the Bento for the default base image, or load $FROM_IMAGE into Docker"
                fi
                ;;
        esac
        args+=(--backend docker)
        ;;
    podman | buildah)
        if [ "$(id -u)" -ne 0 ]; then
            log "the $BACKEND route runs as root here (debootstrap, rootful storage); use sudo"
            exit 1
        fi
        "$SCRIPT_DIR/install-tools.sh"
        if [ "$FROM_IMAGE" = "$BASE_IMAGE" ]; then
            "$SCRIPT_DIR/build-base-image.sh"
        elif ! podman image exists "$FROM_IMAGE"; then
            log "warning: $FROM_IMAGE is not in local storage and will be pulled;"
            log "without a registry, rebuild the Bento for $BASE_IMAGE (see deploy/README.md)"
        fi
        # BentoML's generated Dockerfile installs into /app/.venv with uv; pass
        # --opt network=host so those RUN steps use the host's network path.
        args+=(--backend "$BACKEND" --opt network=host)
        ;;
    *)
        log "unknown BENTO_CONTAINER_BACKEND '$BACKEND' (docker, podman or buildah)"
        exit 2
        ;;
esac

log "backend: $BACKEND"
start=$(date +%s)
BENTOML_DO_NOT_TRACK="${BENTOML_DO_NOT_TRACK:-true}" "$BENTOML" "${args[@]}" "$@"

if [ -z "${STRIP_WHEELS:-}" ]; then
    if [ -n "$(find "$BENTO_PATH/src/wheels" -name '*.whl' -print -quit 2>/dev/null)" ]; then
        STRIP_WHEELS=1
    else
        STRIP_WHEELS=0
    fi
fi
if [ "$STRIP_WHEELS" = "1" ] && [ "$BACKEND" != docker ]; then
    # The wheels are only needed while installing. Deleting them in a new layer
    # would not shrink the image, so squash everything into one layer
    # (entrypoint, user, env and ports are inherited from the built image).
    log "flattening the image without the Bento's wheel files"
    old_id="$(podman image inspect --format '{{.Id}}' "$IMAGE_TAG")"
    old_user="$(podman image inspect --format '{{.Config.User}}' "$IMAGE_TAG")"
    ctx="$(mktemp -d)"
    # shellcheck disable=SC2016  # $BENTO_PATH is expanded inside the image, not here
    printf '%s\n' "FROM $old_id" "USER root" 'RUN rm -rf "$BENTO_PATH/src/wheels"' "USER ${old_user:-root}" >"$ctx/Containerfile"
    podman build --quiet --squash-all --network host -t "$IMAGE_TAG" -f "$ctx/Containerfile" "$ctx" >/dev/null
    rm -rf "$ctx"
    podman rmi "$old_id" >/dev/null 2>&1 || true
fi
elapsed=$(($(date +%s) - start))

# Also tag it NAME:latest, the name `make run-container` (and a person) asks for.
LATEST_TAG="${IMAGE_TAG%:*}:latest"
if [ "$LATEST_TAG" != "$IMAGE_TAG" ]; then
    case "$BACKEND" in
        docker) docker tag "$IMAGE_TAG" "$LATEST_TAG" ;;
        *) podman tag "$IMAGE_TAG" "$LATEST_TAG" ;;
    esac
    log "tagged $LATEST_TAG"
fi

# buildah and podman share /var/lib/containers, so podman can report either.
case "$BACKEND" in
    docker) size="$(docker image inspect --format '{{.Size}}' "$IMAGE_TAG")" ;;
    *) size="$(podman image inspect --format '{{.Size}}' "$IMAGE_TAG")" ;;
esac
human="$(numfmt --to=si --suffix=B "$size" 2>/dev/null || echo "${size} bytes")"
log "built in ${elapsed} s"
printf 'image: %s\nsize: %s (%s bytes)\n' "$IMAGE_TAG" "$human" "$size"
