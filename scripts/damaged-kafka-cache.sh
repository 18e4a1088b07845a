#!/usr/bin/env bash
# A damaged or missing jar in the Kafka cache is named by scripts/setup.sh and fetched again.
# A copy of the cache, one jar cut short and the agent gone, comes out of `kafka_setup` whole
# (Maven's repository is shared, and whole, so nothing is downloaded); a download in Maven's
# repository that no longer matches Central's checksum beside it is deleted, one that does
# is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
KAFKA_PLATFORM_KAFKA=1 source scripts/setup.sh >/dev/null
set +e
real="$KAFKA_PLATFORM_KAFKA_HOME"
copy="$(mktemp -d)"
trap 'rm -rf "$copy"' EXIT
fail() { echo "damaged-kafka-cache: $*" >&2; echo "damaged-kafka-cache: 0 passed, 1 failed"; exit 1; }

ln -s "$KAFKA_PLATFORM_CACHE/m2" "$copy/m2"
cp -r "$real" "$copy/"
home="$copy/$(basename "$real")"
clients="$(cd "$home" && ls libs/kafka-clients-*.jar)"
truncate -s 1000 "$home/$clients"
rm "$home/agent/jmx_prometheus_javaagent.jar"
out="$(KAFKA_PLATFORM_CACHE="$copy" bash -c '
  setup_fail() { echo "setup: $*" >&2; exit 1; }
  source scripts/kafka/fetch.sh && kafka_setup' 2>&1)" || fail "kafka_setup failed: $out"
grep -q "damaged or missing in $home: $clients agent/jmx_prometheus_javaagent.jar - fetching Kafka again" <<< "$out" \
  || fail "the damaged jars are not named: $out"
diff <(cd "$real" && sha256sum libs/*.jar agent/*.jar) <(cd "$home" && sha256sum libs/*.jar agent/*.jar) >/dev/null \
  || fail "the fetched folder differs from the original"
[ -z "$(kafka_damaged_jars "$home")" ] || fail "the fetched folder is not listed whole"

m2="$copy/fake-m2/org/example"
mkdir -p "$m2/good" "$m2/bad"
echo good > "$m2/good/a.jar" && sha1sum < "$m2/good/a.jar" | cut -c1-40 > "$m2/good/a.jar.sha1"
echo bad > "$m2/bad/b.jar" && echo "0000000000000000000000000000000000000000" > "$m2/bad/b.jar.sha1"
kafka_forget_damaged_download a.jar "$copy/fake-m2" 2>/dev/null
kafka_forget_damaged_download b.jar "$copy/fake-m2" 2>/dev/null
[ -f "$m2/good/a.jar" ] && [ ! -f "$m2/bad/b.jar" ] \
  || fail "a download matching its checksum must stay and one that differs must go"
echo "damaged-kafka-cache: 1 passed, 0 failed (a damaged and a missing jar fetched again, a damaged download forgotten)"
