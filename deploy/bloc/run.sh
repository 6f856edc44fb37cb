#!/usr/bin/env bash
# A regional bloc on one machine: MEMBERS real nodes (default 27) over mutual TLS with a dev PKI,
# a charter every member signs, then a day of synthetic applications driven through
# `tessera application check`, consultations and decisions, and the pilot report.
#
#   deploy/bloc/run.sh                 # 27 members, binaries from target/release
#   MEMBERS=5 BIN=target/debug deploy/bloc/run.sh
#   BENCH=1 deploy/bloc/run.sh         # the benchmark instead of the day (tessera-bloc-bench)
#
# Environment: MEMBERS (2..27), BIN (folder holding tessera and tessera-node), OUT (a folder to
# keep; default a temporary one), BASE_PORT (default 17400), SEED (the generator's seed, default 1),
# DENIALS (default 20), APPLICATIONS (default 40), HELLO_MS (each node greets every peer this
# often; default 1000, the node's own default is 10000), BENCH (1: once the charter is in force, run
# tessera-bloc-bench from BIN with BENCH_ARGS and stop; figures in BENCH_JSON, default
# bench-results/bloc.json). Every node is stopped on exit.
#
# The generator (documented in deploy/bloc/README.md): with SEED, member i issues denials
# d = i, i+MEMBERS, ... of party "Synthetic Party d" (LEI-like id SYNTH<d>) for control entry
# ENTRIES[d % 4] to destination DESTS[d % 3]; application a is checked at member (a + 1) % MEMBERS for
# party (a * SEED) % (2 * DENIALS) (half of them denied somewhere), control entry ENTRIES[a % 4],
# destination DESTS[a % 3]; an answer "consult" opens the consultation (--consult), the denying
# member answers (objection for even a, no objection for odd a), and the applicant follows an
# objection except for every fourth application, which it grants anyway (an undercut notice).
set -euo pipefail

MEMBERS=${MEMBERS:-27}
BIN=${BIN:-target/release}
BASE_PORT=${BASE_PORT:-17400}
SEED=${SEED:-1}
DENIALS=${DENIALS:-20}
APPLICATIONS=${APPLICATIONS:-40}
HELLO_MS=${HELLO_MS:-1000}
OUT=${OUT:-$(mktemp -d)}
ENTRIES=(2B001.b 3A001.a.2 5A002.a ML10)
DESTS=(CN IR RU)
COUNTRIES=(AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE)

if (( MEMBERS < 2 || MEMBERS > 27 )); then echo "MEMBERS: 2 to 27" >&2; exit 64; fi
BENCH=${BENCH:-0}
needed=(tessera tessera-node)
if [[ $BENCH == 1 ]]; then needed+=(tessera-bloc-bench); fi
for b in "${needed[@]}"; do
  [[ -x "$BIN/$b" ]] || { echo "$BIN/$b not found: cargo build --release -p tessera-node -p tessera-cli (and -p tessera-tests for BENCH=1), or set BIN" >&2; exit 69; }
done
BIN=$(cd "$BIN" && pwd)

agencies=()
for ((i = 0; i < MEMBERS; i++)); do agencies+=("${COUNTRIES[$i]}-LA"); done
args=()
for a in "${agencies[@]}"; do args+=(--agency "$a"); done
"$BIN/tessera" certs dev --out "$OUT" --base-port "$BASE_PORT" "${args[@]}" > /dev/null
for a in "${agencies[@]}"; do
  printf '\n[privacy]\ndefault_disclosure = "summary"\n' >> "$OUT/$a/node.toml"
  sed -i "s/^interval_ms = 2000/interval_ms = $HELLO_MS/" "$OUT/$a/node.toml"
done

pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; }
trap stop EXIT
for a in "${agencies[@]}"; do
  (cd "$OUT/$a" && RUST_LOG=warn exec "$BIN/tessera-node" --config node.toml > node.log 2>&1) &
  pids+=($!)
done
t() { local a=$1; shift; "$BIN/tessera" --config "$OUT/$a/cli.toml" "$@"; }
for a in "${agencies[@]}"; do
  for _ in $(seq 200); do t "$a" status > /dev/null 2>&1 && break; sleep 0.1; done
done
echo "$MEMBERS nodes up in $OUT"

# The charter, signed by every member.
members=$(printf '"%s",' "${agencies[@]}")
cat > "$OUT/charter.json" << JSON
{"bloc": "all-dev", "version": 1, "members": [${members%,}], "recognised": ["denial", "trusted"],
 "disclosure": "summary", "consult_days": 10, "identical_rule": "identical-v1"}
JSON
for a in "${agencies[@]}"; do t "$a" bloc sign --file "$OUT/charter.json" > /dev/null; done
for a in "${agencies[@]}"; do
  for _ in $(seq 300); do
    t "$a" bloc status --bloc all-dev --json 2> /dev/null | grep -q '"in_force":1' && break
    sleep 0.1
  done
done
echo "charter in force at every member"
rss=$(for p in "${pids[@]}"; do awk '/VmRSS/ {print $2}' "/proc/$p/status" 2> /dev/null; done | sort -n)
if [[ -n $rss ]]; then
  echo "resident memory per idle node (KiB): median $(sed -n "$(( (MEMBERS + 1) / 2 ))p" <<< "$rss"), max $(tail -1 <<< "$rss")"
fi

printf '%s\n' "${pids[@]}" > "$OUT/pids"
if [[ $BENCH == 1 ]]; then
  # shellcheck disable=SC2086 # BENCH_ARGS is a list of arguments
  "$BIN/tessera-bloc-bench" --dir "$OUT" --agencies "$(IFS=,; echo "${agencies[*]}")" --bloc all-dev \
    --pids "$OUT/pids" --json "${BENCH_JSON:-bench-results/bloc.json}" ${BENCH_ARGS:-}
  exit 0
fi

party() { printf '{"kind":"organisation","name":"Synthetic Party %d","countries":["%s"],"ids":[{"type":"LEI","value":"SYNTH%08d"}]}' "$1" "${DESTS[$(($1 % 3))]}" "$1"; }

# Denials.
for ((d = 0; d < DENIALS; d++)); do
  a=${agencies[$((d % MEMBERS))]}
  cat > "$OUT/denial-$d.json" << JSON
{"serial": "SYN-$d", "to": "group:all-dev", "denial": {"authority_reference": "SYN-$d",
 "regime_basis": "eu-dual-use", "decision_date": "$(date -u +%F)",
 "items": [{"control_entry": "${ENTRIES[$((d % 4))]}"}],
 "parties": [{"role": "end-user", "party": $(party "$d")}], "destination": "${DESTS[$((d % 3))]}"}}
JSON
  t "$a" notice issue --file "$OUT/denial-$d.json" > /dev/null
done
echo "$DENIALS denials issued"
sleep 3

# A day of applications.
declare -A answers=()
for ((k = 0; k < APPLICATIONS; k++)); do
  a=${agencies[$(((k + 1) % MEMBERS))]}
  p=$(((k * SEED) % (2 * DENIALS)))
  cat > "$OUT/app-$k.json" << JSON
{"reference": "APP-$k", "parties": [{"role": "end-user", "party": $(party "$p")}],
 "items": [{"control_entry": "${ENTRIES[$((k % 4))]}"}], "destination": "${DESTS[$((k % 3))]}"}
JSON
  started=$(date +%s%N)
  out=$(t "$a" application check --file "$OUT/app-$k.json" --bloc all-dev --consult --json)
  echo $((($(date +%s%N) - started) / 1000000)) >> "$OUT/check-ms"
  answer=$(sed -n 's/.*"answer":"\([a-z-]*\)".*/\1/p' <<< "$out")
  answers[$answer]=$((${answers[$answer]:-0} + 1))
  decision=granted
  for id in $(grep -o '"consultation":"[^"]\+"' <<< "$out" | cut -d'"' -f4); do
    denier=${agencies[$((p % MEMBERS))]}
    for _ in $(seq 100); do t "$denier" consult show "$id" > /dev/null 2>&1 && break; sleep 0.1; done
    if ((k % 2 == 0)); then
      t "$denier" consult respond "$id" --answer objection --text "same end user" > /dev/null
    else
      t "$denier" consult respond "$id" --answer no-objection > /dev/null
    fi
    for _ in $(seq 100); do t "$a" consult show "$id" --json 2> /dev/null | grep -q '"answer":"[a-z]' && break; sleep 0.1; done
    # Objections are followed, except every fourth application: granted despite it (an undercut).
    if ((k % 2 == 0 && k % 4 != 0)); then decision=refused; fi
    t "$a" consult decide "$id" --decision "$decision" --text "end use verified" > /dev/null
  done
  t "$a" application decide "APP-$k" --decision "$decision" > /dev/null
done
for k in "${!answers[@]}"; do echo "answer $k: ${answers[$k]}"; done
ms=$(sort -n "$OUT/check-ms")
n=$(wc -l <<< "$ms")
echo "application check, whole command (process start, TLS, screening against $((MEMBERS - 1)) members, --consult) in ms: p50 $(sed -n "$(( (n + 1) / 2 ))p" <<< "$ms"), p99 $(sed -n "$(( (n * 99 + 99) / 100 ))p" <<< "$ms")"

t "${agencies[0]}" pilot report --group all-dev --from "$(date -u +%F)" --to "$(date -u +%F)" --svg "$OUT/figures"
echo "charts in $OUT/figures"
