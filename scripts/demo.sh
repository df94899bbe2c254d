#!/usr/bin/env bash
# Runs the whole system on this machine with embedded defaults: the hub (SQLite), one edge
# gateway with its embedded MQTT broker, two demo cameras (GStreamer's RTSP server streaming
# still pictures live, without end: a crowd, and a generated road scene with a broken manhole
# cover) and simulated patrol terminals (patrol-sim). Ctrl-C stops everything.
# State is kept in .demo/ between runs; delete it to start afresh.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[demo] %s\n' "$*" >&2; }
scripts/install-deps.sh
# shellcheck disable=SC1091
source .cache/env.sh
say "building the dashboard (hub/web/dist)"
(cd hub/web && npm run build --silent)
say "building (release)"
cargo build --release --bins --locked
bin=target/release
demo=.demo
mkdir -p "$demo"
HUB_PORT=${HUB_PORT:-8080}
# The hub takes HUB_* from its environment as settings; this one is the demo's, not the hub's.
export -n HUB_PORT
API_PORT=${API_PORT:-9090}
RTSP_PORT=${RTSP_PORT:-8554}
ROAD_RTSP_PORT=${ROAD_RTSP_PORT:-8555}
MQTT_PORT=${MQTT_PORT:-1884}   # 1883 is often taken by a system broker
TERMINALS=${TERMINALS:-3}

# The demo camera: a crowd photo from ../shared/testdata when it is there, else a test
# pattern (no people, so no events).
crowd=../shared/testdata/crowd_seminar_ibm_stc-brownbag.jpg
if [ -f "$crowd" ]; then
  source_args=(--image "$crowd")
else
  say "no crowd photo found; the demo camera shows a test pattern"
  source_args=(--test-pattern)
fi

# The road camera: a street scene with a broken manhole cover, rendered by the manhole
# model's own scene generator (no outside data needed).
if [ ! -f "$demo/road.jpg" ]; then
  say "rendering the road camera's scene (models/manhole/synth.py)"
  "$SYNTH_PYTHON" models/manhole/synth.py --seed 2026 --scene manhole_broken --out "$demo/road.jpg" >&2
fi

# The crowd model: from ../shared/models when present, else fetched from its public URL into
# .cache/models and checked against the manifest's SHA-256.
if [ -z "${MODEL_CACHE:-}" ] && [ -d ../shared/models ]; then
  MODEL_CACHE=$(realpath ../shared/models)
fi
export MODEL_CACHE=${MODEL_CACHE:-$PWD/.cache/models}

export HUB_DATABASE_URL="sqlite:$PWD/$demo/hub.db"
export HUB_LISTEN="127.0.0.1:$HUB_PORT"
# Reference data for the first start (afterwards: `hub import KIND FILE`).
export HUB_DEPARTMENTS="$PWD/deploy/departments.example.csv"
export HUB_CATEGORIES="$PWD/deploy/categories.example.csv"
export HUB_OWNERSHIP_LIST="$PWD/deploy/ownership.example.toml"
export HUB_WEB_ROOT="$PWD/hub/web/dist"
export HUB_AREAS="$PWD/deploy/areas.example.geojson"
# The key that seals camera passwords in the device registry, made once for this demo.
[ -s "$demo/registry.key" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$demo/registry.key"
HUB_REGISTRY_KEY=$(cat "$demo/registry.key")
export HUB_REGISTRY_KEY
# Tokens and users belong to the database they were made in.
[ -f "$demo/hub.db" ] || rm -f "$demo"/*.token "$demo/password"
if [ ! -s "$demo/gateway.token" ]; then
  "$bin/hub" gateway add gw-demo --name "demo township" --rotate > "$demo/gateway.token"
fi
# Dashboard users: an operator and two departments of the example ownership list, sharing
# one password made for this demo database.
demo_user() {  # NAME ROLE-ARGS…: creates the user, or resets the password of an existing one
  local name=$1 token
  shift
  if token=$("$bin/hub" user add "$name" "$@" --password-stdin < "$demo/password" 2>/dev/null); then
    printf '%s\n' "$token" > "$demo/$name.token"
  else
    "$bin/hub" user password "$name" < "$demo/password"
  fi
}
if [ ! -s "$demo/password" ]; then
  head -c 12 /dev/urandom | base64 | tr -d '/+=' > "$demo/password"
  demo_user demo-operator --role operator
  demo_user demo-technician --role technician
  for dept in housing-bureau county-police; do
    demo_user "demo-$dept" --role department --department "$dept"
  done
fi

# Patrol terminals: their secrets go to the simulator, only hashes to the gateway.
if [ ! -s "$demo/terminals.csv" ] || [ ! -s "$demo/terminals.toml" ]; then
  rm -f "$demo/terminals.toml"
  ids=$(seq -f "demo-t%03g" 1 "$TERMINALS")
  # shellcheck disable=SC2086
  "$bin/edge-gateway" terminal add --file "$demo/terminals.toml" --holder "演示网格员 demo grid worker" $ids > "$demo/terminals.csv"
fi

cat > "$demo/gateway.toml" <<TOML
[gateway]
id = "gw-demo"
data_dir = "gateway-data"

[hub]
url = "http://127.0.0.1:$HUB_PORT"
token = "from EDGE_HUB__TOKEN"

[api]
listen = "127.0.0.1:$API_PORT"

[model]
manifest = "$PWD/models/yolox-nano.toml"

[models.manhole]
manifest = "$PWD/models/manhole-v1.toml"

[[camera]]
id = "demo-cam"
name = "演示摄像头 demo camera"
url = "rtsp://127.0.0.1:$RTSP_PORT/cam"
detect_fps = 2

[camera.location]
lat = 30.2741
lon = 120.1551
area_code = "330106001001"

[camera.crowd]
min_persons = 5
refresh_s = 60
cooldown_s = 30

[[camera]]
id = "demo-road"
name = "演示路面摄像头 demo road camera"
url = "rtsp://127.0.0.1:$ROAD_RTSP_PORT/road"
detect_fps = 1
model = "manhole"

[camera.location]
lat = 30.2752
lon = 120.1548
area_code = "330106001001"

[camera.hazard]
frames = 2
window = 3
cooldown_s = 600

[patrol]
listen = "127.0.0.1:$MQTT_PORT"
terminals_file = "terminals.toml"
TOML

pids=()
cleanup() { say "stopping"; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

/usr/bin/python3 deploy/demo/rtsp-server.py --port "$RTSP_PORT" "${source_args[@]}" > "$demo/rtsp.log" 2>&1 &
pids+=($!)
/usr/bin/python3 deploy/demo/rtsp-server.py --port "$ROAD_RTSP_PORT" --mount /road --image "$demo/road.jpg" > "$demo/rtsp-road.log" 2>&1 &
pids+=($!)
"$bin/hub" serve > "$demo/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$HUB_PORT/healthz" >/dev/null && break; sleep 0.2; done
# The cameras up before the gateway, so that it does not start with a failed connection.
for _ in $(seq 1 50); do grep -qs READY "$demo/rtsp.log" && grep -qs READY "$demo/rtsp-road.log" && break; sleep 0.2; done
EDGE_HUB__TOKEN=$(cat "$demo/gateway.token") "$bin/edge-gateway" --config "$demo/gateway.toml" > "$demo/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$API_PORT/healthz" >/dev/null && break; sleep 0.2; done
"$bin/patrol-sim" --broker "mqtt://127.0.0.1:$MQTT_PORT" --credentials "$demo/terminals.csv" \
  --center 30.2741,120.1551 --radius-m 800 --report-every 45 --location-every 10 --sos-every 600 \
  > "$demo/patrol-sim.log" 2>&1 &
pids+=($!)

cat <<INFO

  The system is running (logs in $demo/*.log). Ctrl-C stops it.

  Dashboard 仪表盘:                        http://127.0.0.1:$HUB_PORT/
    sign in as demo-operator, demo-housing-bureau, demo-county-police or demo-technician
    password: $(cat "$demo/password")
  Hub API:                                 http://127.0.0.1:$HUB_PORT/api/v1/cases
    curl -H "Authorization: Bearer \$(cat $demo/demo-operator.token)" http://127.0.0.1:$HUB_PORT/api/v1/cases
  Gateway status:                          http://127.0.0.1:$API_PORT/api/v1/status
  Patrol terminals at the gateway:         http://127.0.0.1:$API_PORT/api/v1/terminals
  Demo cameras:                            rtsp://127.0.0.1:$RTSP_PORT/cam (crowd)
                                           rtsp://127.0.0.1:$ROAD_RTSP_PORT/road (broken manhole cover)
  MQTT for patrol terminals:               mqtt://127.0.0.1:$MQTT_PORT ($TERMINALS simulated)

INFO
wait -n "${pids[@]}"
say "a process exited; see $demo/*.log"
