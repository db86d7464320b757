#!/usr/bin/env bash
# Print the base image a Bento should be built for on this host, for example
#
#   BENTO_BASE_IMAGE="$(deploy/container/base-image.sh)" bentoml build
#
# The base image is fixed when the Bento is built (it is stored in the Bento), so the
# choice has to be made before `bentoml build`, not at containerize time:
#   * a usable Docker engine: BentoML's usual python:3.11-slim, pulled from the registry;
#   * otherwise: the local debootstrap image that build-base-image.sh creates.
# An explicit BENTO_BASE_IMAGE wins.
set -euo pipefail

if [ -n "${BENTO_BASE_IMAGE:-}" ]; then
    echo "$BENTO_BASE_IMAGE"
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "python:3.11-slim"
else
    echo "${BASE_IMAGE:-localhost/model-bundle-base:bookworm}"
fi
