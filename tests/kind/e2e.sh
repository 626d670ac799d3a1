#!/usr/bin/env bash
# End-to-end on a kind cluster (opt-in: MARKETPRISM_KIND=1; needs docker, kind, kubectl, helm).
#   1. create a kind cluster, build both images, load them into the nodes
#   2. install the chart in dev mode (NATS, ClickHouse, simulator in-cluster)
#   3. apply a CollectorSet (from config/samples/collectorset-full.yaml's shape) pointed at the simulator,
#      wait for Ready, assert rows of all 8 data types in ClickHouse
#   4. delete the pod holding the shard Lease: the standby takes the Lease, no trade id goes missing
#      (ids contiguous, or the hole covered by a recorded gap row)
#   5. add a symbol: the shard rolls out and the new symbol lands
#   6. upgrade the chart; 7. delete the CollectorSet, uninstall, assert nothing is left
# Knobs: KIND_CLUSTER (default marketprism-e2e), MARKETPRISM_KIND_KEEP=1 keeps the cluster,
#        MARKETPRISM_KIND_SKIP_BUILD=1 reuses loaded images, MARKETPRISM_KIND_TIMEOUT (s, default 600).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [[ ${MARKETPRISM_KIND:-0} != 1 ]]; then
    echo "kind e2e skipped: docker/kind not available or not requested (opt-in: MARKETPRISM_KIND=1)"
    exit 0
fi
for tool in docker kind kubectl helm python3; do
    command -v "$tool" >/dev/null || {
        echo "kind e2e: MARKETPRISM_KIND=1 but '$tool' is not installed" >&2
        exit 1
    }
done
docker info >/dev/null 2>&1 || {
    echo "kind e2e: MARKETPRISM_KIND=1 but the docker daemon is not reachable" >&2
    exit 1
}

CLUSTER=${KIND_CLUSTER:-marketprism-e2e}
NS=marketprism
RELEASE=mp
CS=e2e
TAG=e2e
TIMEOUT=${MARKETPRISM_KIND_TIMEOUT:-600}
PREFIX="$RELEASE-marketprism"
CH_DEPLOY="$PREFIX-clickhouse"
# The in-cluster simulator (dev.simulator); venue URLs are derived as SimulatorHandle::endpoints does.
SIMULATOR=${MARKETPRISM_KIND_SIMULATOR:-$PREFIX-simulator.$NS.svc:9200}
DATA_TYPES=(orderbooks trades funding_rates open_interests liquidations lsr_top_positions lsr_all_accounts volatility_indices)
KCTL=(kubectl --context "kind-$CLUSTER")
HELM=(helm --kube-context "kind-$CLUSTER")

section() { printf '\n==== kind e2e: %s ====  (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
fail() {
    echo "kind e2e FAILED: $*" >&2
    exit 1
}

# Retries "$@" every 3 s until it succeeds or TIMEOUT passes. Arg 1: what we wait for.
wait_for() {
    local what=$1 deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "timed out after ${TIMEOUT}s waiting for $what"
        sleep 3
    done
    echo "  ok: $what"
}

ch() { "${KCTL[@]}" -n "$NS" exec "deploy/$CH_DEPLOY" -- clickhouse-client --format TSV -q "$1"; }

dump_state() {
    echo "---- cluster state ----"
    "${KCTL[@]}" get all,collectorsets,leases,configmaps -n "$NS" -o wide || true
    "${KCTL[@]}" describe collectorset -n "$NS" "$CS" || true
    "${KCTL[@]}" logs -n "$NS" -l app.kubernetes.io/component=operator --tail=80 --prefix || true
    "${KCTL[@]}" logs -n "$NS" -l app.kubernetes.io/managed-by=marketprism-operator --tail=40 --prefix || true
}

cleanup() {
    local rc=$?
    ((rc == 0)) || dump_state
    if [[ ${MARKETPRISM_KIND_KEEP:-0} == 1 ]]; then
        echo "kept kind cluster $CLUSTER"
    else
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
    exit "$rc"
}
trap cleanup EXIT

section "cluster $CLUSTER"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 180s
"${KCTL[@]}" cluster-info >/dev/null

section "images"
if [[ ${MARKETPRISM_KIND_SKIP_BUILD:-0} != 1 ]]; then
    docker build -f collector/Dockerfile -t "marketprism-collector:$TAG" .
    docker build -f operator/Dockerfile -t "marketprism-operator:$TAG" .
fi
kind load docker-image --name "$CLUSTER" "marketprism-collector:$TAG" "marketprism-operator:$TAG"

section "helm install (dev mode)"
helm_values=(
    -f tests/chart/values/laptop.yaml
    --set "operator.image.tag=$TAG" --set "collector.image.tag=$TAG" --set operator.replicas=2
)
"${HELM[@]}" install "$RELEASE" charts/marketprism -n "$NS" --create-namespace "${helm_values[@]}" \
    --wait --timeout "${TIMEOUT}s"
"${KCTL[@]}" get crd collectorsets.marketprism.io >/dev/null
holder=$("${KCTL[@]}" -n "$NS" get lease marketprism-operator -o jsonpath='{.spec.holderIdentity}')
[[ $holder == "$PREFIX-operator-"* ]] || fail "operator leader Lease held by '$holder'"

# The CollectorSet of this test: the 7 Binance USD-M types plus Deribit's volatility index = all 8 data types.
collectorset() {
    local symbols=$1
    python3 - "$symbols" "$SIMULATOR" <<'EOF'
import json, sys
symbols, simulator = sys.argv[1].split(","), sys.argv[2]
def endpoints(venue):  # base URLs, as SimulatorHandle::endpoints gives them; connectors append their paths
    return {"wsUrl": f"ws://{simulator}/{venue}", "restUrl": f"http://{simulator}/{venue}"}
spec = {
    "exchanges": [
        {"venue": "binance_derivatives", "symbols": symbols,
         "dataTypes": ["orderbooks", "trades", "funding_rates", "open_interests", "liquidations",
                       "lsr_top_positions", "lsr_all_accounts"],
         "endpoints": endpoints("binance_derivatives")},
        {"venue": "deribit_derivatives", "symbols": ["BTC-USD"], "dataTypes": ["trades", "volatility_indices"],
         "endpoints": endpoints("deribit_derivatives")},
    ],
    "sharding": {"maxSymbolsPerShard": 8},
    "replicasPerShard": 2,
    "nats": {"url": "nats://mp-marketprism-nats.marketprism.svc:4222"},
    "clickhouse": {"url": "http://mp-marketprism-clickhouse.marketprism.svc:8123", "createSchema": True},
    "sink": {"replicas": 1},
    "imagePullPolicy": "Never",
}
print(json.dumps({"apiVersion": "marketprism.io/v1alpha1", "kind": "CollectorSet",
                  "metadata": {"name": "e2e", "namespace": "marketprism"}, "spec": spec}))
EOF
}

section "CollectorSet $CS"
collectorset BTC-USDT | "${KCTL[@]}" apply -f -
wait_for "CollectorSet Ready" \
    "${KCTL[@]}" -n "$NS" wait "collectorset/$CS" --for=condition=Ready --timeout=5s
for data_type in "${DATA_TYPES[@]}"; do
    wait_for "rows in marketprism_hot.$data_type" \
        bash -c "[[ \$(${KCTL[*]} -n $NS exec deploy/$CH_DEPLOY -- clickhouse-client -q 'SELECT count() FROM marketprism_hot.$data_type') -gt 0 ]]"
done

section "failover: delete the pod holding the shard Lease"
lease=$("${KCTL[@]}" -n "$NS" get lease -l "marketprism.io/collectorset=$CS" \
    -o jsonpath='{.items[0].metadata.name}')
[[ -n $lease ]] || fail "no shard Lease labelled marketprism.io/collectorset=$CS"
lease_holder() { "${KCTL[@]}" -n "$NS" get lease "$lease" -o jsonpath='{.spec.holderIdentity}'; }
active=$(lease_holder)
[[ -n $active ]] || fail "shard Lease $lease has no holder"
echo "  shard Lease $lease held by $active"
# Kill it hard (no graceful release): the standby must take over once the Lease expires.
"${KCTL[@]}" -n "$NS" delete pod "$active" --grace-period=0 --force --wait=false
new_holder_ok() {
    local h
    h=$(lease_holder)
    [[ -n $h && $h != "$active" ]] && "${KCTL[@]}" -n "$NS" get pod "$h" >/dev/null
}
wait_for "standby takes Lease $lease" new_holder_ok
echo "  new holder: $(lease_holder)"
sleep 30 # let trades after the failover land
wait_for "CollectorSet Ready after failover" \
    "${KCTL[@]}" -n "$NS" wait "collectorset/$CS" --for=condition=Ready --timeout=5s

section "no trade id missing (contiguous or covered by a gap row)"
trade_holes=$(ch "$(cat tests/kind/sql/trade_holes.sql)")
gaps=$(ch "$(cat tests/kind/sql/trade_gaps.sql)")
trade_count=$(ch "SELECT count() FROM marketprism_hot.trades FINAL WHERE exchange = 'binance_derivatives'")
echo "  trades: $trade_count, holes in ids: $(grep -c . <<<"$trade_holes" || true), trade gap rows: $(grep -c . <<<"$gaps" || true)"
python3 tests/kind/uncovered_holes.py "$trade_holes" "$gaps" || fail "trade ids missing without a recorded gap"
dupes=$(ch "SELECT count() - uniqExact(symbol, trade_id) FROM marketprism_hot.trades FINAL")
[[ $dupes == 0 ]] || fail "$dupes duplicate trades after FINAL"

section "add a symbol: rollout"
generation=$("${KCTL[@]}" -n "$NS" get "collectorset/$CS" -o jsonpath='{.metadata.generation}')
collectorset BTC-USDT,ETH-USDT | "${KCTL[@]}" apply -f -
observed() { [[ $("${KCTL[@]}" -n "$NS" get "collectorset/$CS" -o jsonpath='{.status.observedGeneration}') -gt $generation ]]; }
wait_for "operator observed the new generation" observed
wait_for "a shard ConfigMap lists ETH-USDT" \
    bash -c "${KCTL[*]} -n $NS get configmaps -l marketprism.io/collectorset=$CS,app.kubernetes.io/component=collector -o yaml | grep -q ETH-USDT"
for deployment in $("${KCTL[@]}" -n "$NS" get deploy -l "marketprism.io/collectorset=$CS" -o name); do
    "${KCTL[@]}" -n "$NS" rollout status "$deployment" --timeout="${TIMEOUT}s"
done
wait_for "CollectorSet Ready with 2 symbols" \
    "${KCTL[@]}" -n "$NS" wait "collectorset/$CS" --for=condition=Ready --timeout=5s
wait_for "ETH-USDT trades landed" \
    bash -c "[[ \$(${KCTL[*]} -n $NS exec deploy/$CH_DEPLOY -- clickhouse-client -q \"SELECT count() FROM marketprism_hot.trades WHERE symbol = 'ETH-USDT'\") -gt 0 ]]"

section "helm upgrade"
# Helm never upgrades crds/: the documented upgrade applies the CRD first.
"${KCTL[@]}" apply --server-side -f charts/marketprism/crds/collectorset.yaml
"${HELM[@]}" upgrade "$RELEASE" charts/marketprism -n "$NS" "${helm_values[@]}" --set operator.logLevel=debug \
    --wait --timeout "${TIMEOUT}s"
"${KCTL[@]}" -n "$NS" get deploy "$PREFIX-operator" -o jsonpath='{.spec.template.spec.containers[0].env}' |
    grep -q '"value":"debug"' || fail "upgrade did not reach the operator Deployment"
[[ $("${HELM[@]}" -n "$NS" history "$RELEASE" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["revision"])') == 2 ]] ||
    fail "release is not at revision 2"
wait_for "CollectorSet Ready after upgrade" \
    "${KCTL[@]}" -n "$NS" wait "collectorset/$CS" --for=condition=Ready --timeout=5s

section "uninstall: nothing left"
"${KCTL[@]}" -n "$NS" delete "collectorset/$CS" --wait --timeout="${TIMEOUT}s"
no_operator_objects() {
    [[ -z $("${KCTL[@]}" get deploy,svc,cm,sa,role,rolebinding,pdb,lease -A \
        -l app.kubernetes.io/managed-by=marketprism-operator -o name) ]]
}
wait_for "operator-created objects garbage-collected" no_operator_objects
"${HELM[@]}" uninstall "$RELEASE" -n "$NS" --wait --timeout "${TIMEOUT}s"
no_release_objects() {
    [[ -z $("${KCTL[@]}" get all,cm,sa,role,rolebinding,pdb,secret -n "$NS" -l "app.kubernetes.io/instance=$RELEASE" -o name) ]] &&
        [[ -z $("${KCTL[@]}" get clusterrole,clusterrolebinding -l "app.kubernetes.io/instance=$RELEASE" -o name) ]] &&
        [[ -z $("${KCTL[@]}" get pods -n "$NS" -o name) ]]
}
wait_for "no objects of release $RELEASE left" no_release_objects
# Helm keeps CRDs on uninstall by design; removing it is the documented last step.
"${KCTL[@]}" delete crd collectorsets.marketprism.io --wait --timeout="${TIMEOUT}s"
"${KCTL[@]}" delete namespace "$NS" --wait --timeout="${TIMEOUT}s"
section "passed"
