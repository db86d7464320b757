#!/usr/bin/env bash
# An OCI image of the function for container-image deployments: the function package (make function) on
# the project's base image, with the Lambda Runtime Interface Client (awslambdaric) as its entry point.
#
#   serverless/build-image.sh [dist/function.zip]      IMAGE=model-bundle-function:latest
#
# Docker when an engine answers; otherwise podman with the local base image of the no-registry route
# (deploy/container/build-base-image.sh builds it when missing). The runtime client is installed on this
# host into the package (Python 3.11, glibc, like the image), so the image build needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."
ZIP="${1:-dist/function.zip}"
IMAGE="${IMAGE:-model-bundle-function:latest}"
PYTHON="${PYTHON:-.venv/bin/python}"
RIC=(awslambdaric==4.2.2 "simplejson>=3.20.1" "snapshot-restore-py>=1.0.0")

log() { printf '[function-image] %s\n' "$*" >&2; }

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    ENGINE=docker
    BASE="${BASE_IMAGE:-python:3.11-slim}"
    PY_IN_IMAGE=/usr/local/bin/python3
else
    ENGINE=podman
    BASE="${BASE_IMAGE:-localhost/model-bundle-base:bookworm}"
    PY_IN_IMAGE=/usr/bin/python3
    deploy/container/install-tools.sh
    podman image exists "$BASE" || deploy/container/build-base-image.sh
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
python3 -c "import zipfile, sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$ZIP" "$ctx/task"
"$PYTHON" -m pip install --quiet --no-compile --target "$ctx/task" "${RIC[@]}"
cat >"$ctx/Containerfile" <<CONTAINERFILE
FROM $BASE
COPY task/ /var/task/
ENV LAMBDA_TASK_ROOT=/var/task PYTHONPATH=/var/task
WORKDIR /var/task
USER 1000
ENTRYPOINT ["$PY_IN_IMAGE", "-m", "awslambdaric"]
CMD ["serverless.handler.handler"]
CONTAINERFILE
log "building $IMAGE from $BASE with $ENGINE"
if [ "$ENGINE" = docker ]; then
    docker build --quiet -t "$IMAGE" "$ctx" >/dev/null
else
    podman build --quiet --network host -t "$IMAGE" -f "$ctx/Containerfile" "$ctx" >/dev/null
fi
size="$("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE")"
printf 'image: %s\nsize: %s bytes\n' "$IMAGE" "$size"
