#!/bin/sh
# Install elevtts with the `local` extra (the offline voices) into a virtual environment, with the
# exact versions CI verified (constraints.txt). The Dockerfile's only install step; CI runs it as
# it is, into a temporary prefix, then serves from that prefix and checks /health.
#   deploy/install.sh [SOURCE]      SOURCE: the checkout (default: this script's parent folder)
#   ELEVTTS_PREFIX=/opt/elevtts     where the virtual environment goes
set -eu
SOURCE=$(cd "${1:-$(dirname "$0")/..}" && pwd)
PREFIX=${ELEVTTS_PREFIX:-/opt/elevtts}
python3 -m venv "$PREFIX"
"$PREFIX/bin/pip" install --quiet --no-cache-dir -c "$SOURCE/constraints.txt" "$SOURCE[local]"
# The voices load offline (nothing is downloaded at run time): fail the install, not the first request.
"$PREFIX/bin/elevtts" voices >/dev/null
echo "elevtts installed in $PREFIX"
