#!/usr/bin/env bash
# Installs what building, testing and running the system need, idempotently:
#   - Debian packages: FFmpeg libraries and tools, clang (for the FFmpeg bindings), the
#     GStreamer RTSP server (demo camera and tests), Mosquitto (tests with an external
#     MQTT broker), Chromium and a CJK font (browser tests and screenshots of the dashboard),
#     Node.js and npm when missing;
#   - the ONNX Runtime shared library, from the PyPI wheel, into .cache/onnxruntime;
#   - Python packages for the manhole scene generator and the model tools, into venvs;
#   - the dashboard's npm packages (hub/web/node_modules), exactly as the lockfile says.
# Writes .cache/env.sh, which exports ORT_DYLIB_PATH; the other scripts source it.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.31.1
DEBIAN_PACKAGES=(
  pkg-config clang libclang-dev nasm
  ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavdevice-dev libavfilter-dev
  python3 python3-venv python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  mosquitto chromium fonts-wqy-zenhei
)
# Node.js may come from Debian or elsewhere (NodeSource bundles npm); add Debian's only if
# there is none.
command -v node >/dev/null 2>&1 || DEBIAN_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || DEBIAN_PACKAGES+=(npm)

say() { printf '[install-deps] %s\n' "$*" >&2; }

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages: all present"
fi

venv=.cache/onnxruntime/venv
lib=$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.${ORT_VERSION} 2>/dev/null | head -n1 || true)
if [ -z "$lib" ]; then
  say "installing ONNX Runtime ${ORT_VERSION} (PyPI wheel) into $venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "onnxruntime==${ORT_VERSION}"
  lib=$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.${ORT_VERSION} | head -n1)
else
  say "ONNX Runtime ${ORT_VERSION}: present"
fi

mkdir -p .cache
printf 'export ORT_DYLIB_PATH=%q\n' "$(realpath "$lib")" > .cache/env.sh
say "ONNX Runtime library: $lib (exported as ORT_DYLIB_PATH by .cache/env.sh)"

# The manhole model's scene generator (numpy, Pillow): the test suite evaluates the model on
# freshly generated held-out scenes, and the demo renders its road clip with it.
synth=.cache/synth/venv
if ! cmp -s models/manhole/requirements-data.txt "$synth/requirements-data.txt" 2>/dev/null; then
  say "installing the scene generator's Python packages into $synth"
  /usr/bin/python3 -m venv "$synth"
  "$synth/bin/pip" install --quiet --disable-pip-version-check -r models/manhole/requirements-data.txt
  cp models/manhole/requirements-data.txt "$synth/requirements-data.txt"
else
  say "scene generator packages: present"
fi
# The venv's own python (not what its symlink points at), so the venv's packages are seen.
printf 'export SYNTH_PYTHON=%q\n' "$PWD/$synth/bin/python" >> .cache/env.sh

# ONNX for models/tools/free_batch.py: the test suite checks batched inference on a copy of
# a shipped model with a free batch dimension.
tools=.cache/model-tools/venv
if ! cmp -s models/tools/requirements-free-batch.txt "$tools/requirements.txt" 2>/dev/null; then
  say "installing the model tools' Python packages into $tools"
  /usr/bin/python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check -r models/tools/requirements-free-batch.txt
  cp models/tools/requirements-free-batch.txt "$tools/requirements.txt"
else
  say "model tools' packages: present"
fi
printf 'export MODEL_TOOLS_PYTHON=%q\n' "$PWD/$tools/bin/python" >> .cache/env.sh

web=hub/web
if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  say "installing the dashboard's npm packages (npm ci in $web)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
else
  say "dashboard npm packages: present"
fi
