#!/usr/bin/env bash
# Create the throwaway peer environments used by the ADMET benchmarks (never committed).
#   /work/peers/chemprop : chemprop==2.3.1   (Chemprop v2 peer, called as `chemprop train/predict`)
#   /work/peers/admetai  : admet-ai==2.0.1   (ADMET-AI peer, throughput benchmark)
# Both use the CPU torch 2.13.0 wheel from pip's local find-links (/opt/wheels).
# Usage: bash bench/peers/setup.sh [PEERS_DIR]     (idempotent: existing venvs are kept)
set -euo pipefail
PEERS_DIR="${1:-${FEDADMET_PEERS_DIR:-/work/peers}}"
PY="${PEER_PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
mkdir -p "$PEERS_DIR"

make_env() {  # name, then pip requirement specs
    local name="$1"; shift
    local env="$PEERS_DIR/$name"
    if [ -x "$env/bin/python" ] && "$env/bin/python" -c "import $IMPORT_CHECK" 2>/dev/null; then
        echo "[peers] $env already set up"; return 0
    fi
    echo "[peers] creating $env"
    "$PY" -m venv "$env"
    "$env/bin/pip" install --quiet --upgrade pip
    "$env/bin/pip" install --quiet "torch==2.13.0" "$@"
    "$env/bin/pip" freeze > "$env/peer-freeze.txt"
}

IMPORT_CHECK=chemprop make_env chemprop "chemprop==2.3.1"
IMPORT_CHECK=admet_ai make_env admetai "admet-ai==2.0.1"
echo "[peers] done:"
"$PEERS_DIR/chemprop/bin/python" -c "import chemprop, torch; print('chemprop', chemprop.__version__, 'torch', torch.__version__)"
"$PEERS_DIR/admetai/bin/python" -c "import admet_ai, chemprop, torch; from importlib.metadata import version; print('admet_ai', version('admet-ai'), 'chemprop', chemprop.__version__, 'torch', torch.__version__)"
