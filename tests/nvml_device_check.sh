#!/usr/bin/env bash
# The NVML checks of the GPU exporter on a machine with an NVIDIA GPU and driver; under 5 minutes.
#
#   tests/nvml_device_check.sh
#
# Online it makes a fresh venv with `pip install -e '.[test]'`. A machine that reaches nothing
# (the lent GPU machines) gets the few runtime dependencies carried from here instead:
#
#   .venv/bin/pip install -q --target build/nvml-deps prometheus-client nvidia-ml-py pyyaml requests pytest
#   NVML_DEPS=build/nvml-deps tests/nvml_device_check.sh      # carry build/nvml-deps
#
# It prints the GPUs nvidia-smi sees, runs the tests marked `nvml` (real GPUs read through NVML and
# priced through the whole exporter), then runs `aifinops-gpu-exporter --source nvml` for a few
# seconds and prints its GPU series. Exit status: the tests' status (0 when all passed).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

echo "== nvidia-smi"
nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,power.draw \
  --format=csv 2>&1 || echo "(nvidia-smi unavailable; NVML may still work)"

if [ -n "${NVML_DEPS:-}" ]; then
  # No install: the package's folders under the aifinops namespace through symlinks.
  SHIM=$(mktemp -d)
  mkdir -p "$SHIM/aifinops"
  for part in exporters bridge cli; do ln -s "$ROOT/$part" "$SHIM/aifinops/$part"; done
  DEPS=$(cd "$NVML_DEPS" && pwd)
  export PYTHONPATH="$SHIM:$DEPS:$ROOT/tests"
  PY=${PYTHON:-python3}
  echo "== offline: $PY with $DEPS"
else
  VENV=${VENV:-/tmp/aifinops-nvml-venv}
  echo "== venv $VENV: pip install -e '.[test]'"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q -e '.[test]' || {
    echo "pip install failed (no network? see NVML_DEPS above)"
    exit 2
  }
  PY=$VENV/bin/python
fi

echo "== pytest -m nvml"
# The conftest's service fixtures are not used by these tests; -p no:cacheprovider keeps the tree clean.
timeout 240 "$PY" -m pytest -m nvml -v -rs -s -p no:cacheprovider tests/unit/exporters/gpu/test_nvml.py
RC=$?

echo "== aifinops-gpu-exporter --source nvml, 5 s"
PORT=19871
"$PY" -c 'import sys; from aifinops.cli.gpu_exporter import main; sys.exit(main(sys.argv[1:]))' \
  --source=nvml --web.listen-address="127.0.0.1:$PORT" --log.level=info &
DAEMON=$!
sleep 5
"$PY" - "$PORT" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
for line in text.splitlines():
    if line.startswith(("aifinops_gpu_", "aifinops_collector_success")):
        print(line)
EOF
kill "$DAEMON" 2>/dev/null
wait "$DAEMON" 2>/dev/null

echo "== nvml tests exit status: $RC"
exit "$RC"
