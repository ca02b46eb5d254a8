#!/usr/bin/env bash
# eLicense Ledger on real Hyperledger Fabric: native binaries (local processes on 127.0.0.1) or
# docker compose. See network/fabric/README.md.
#
#   network.sh up|down|channels|deploy|enroll|status|compose|env|peer [options]
#
# Fabric binaries are looked up in $FABRIC_BIN, then on PATH, then in the bundle at
# ../shared/fabric relative to the repository. Needs python3 (3.11+, standard library only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

py="${PYTHON:-python3}"
if ! "$py" -c 'import sys, tomllib; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "error: network.sh needs Python 3.11 or newer (for tomllib) as python3 or \$PYTHON" >&2
    exit 2
fi

export ELICENSE_REPO="$repo"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$py" -m fabnet "$@"
