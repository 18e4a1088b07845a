#!/usr/bin/env bash
# Sourced by scripts/setup.sh: `kafka_setup` puts Apache Kafka from Maven Central in the cache
# (KAFKA_PLATFORM_CACHE): the jars of scripts/kafka/pom.xml in libs/ (the classpath), the JMX
# exporter agent in agent/, the logging configuration in config/. The folder is named by the
# digest of what made it, so a changed pin fetches again and an old folder is never
# half-updated; once complete it is used offline. Its `.complete` lists the SHA-256 of every
# jar as fetched: a jar since damaged or gone is named, and fetched again (its copy in Maven's
# local repository too, when that no longer matches Maven Central's checksum beside it).
# KAFKA_PLATFORM_JAVA names the java to run.

# Prints the jars of the Kafka folder `$1` that differ from its `.complete` list.
kafka_damaged_jars() {
  (cd "$1" && { sha256sum --quiet -c .complete 2>/dev/null || true; } | sed -n 's/: FAILED.*$//p')
}

# Deletes the copy of jar `$1` (a file name) in Maven's local repository `$2` when it no
# longer matches the SHA-1 Maven Central gave for it, so that Maven fetches it again.
kafka_forget_damaged_download() {
  local download
  while IFS= read -r download; do
    if [ "$(sha1sum < "$download" | cut -c1-40)" != "$(cut -c1-40 2>/dev/null < "$download.sha1")" ]; then
      echo "setup: $download differs from Maven Central's checksum: fetching it again" >&2
      rm -f "$download"
    fi
  done < <(find "$2" -name "$1" -type f 2>/dev/null)
}

kafka_setup() {
  local java="${KAFKA_PLATFORM_JAVA:-java}" version
  command -v "$java" >/dev/null 2>&1 \
    || setup_fail "\`$java\` is missing: Kafka needs Java 17 or later (Debian: apt-get install openjdk-17-jre-headless), or set KAFKA_PLATFORM_JAVA"
  version="$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
  case "$version" in
    1.* | [0-9] | 1[0-6] | "")
      setup_fail "\`$java\` is Java ${version:-of an unknown version}: Kafka 4.1 needs Java 17 or later (Debian: apt-get install openjdk-17-jre-headless), or set KAFKA_PLATFORM_JAVA" ;;
  esac
  local digest home sources damaged jar
  sources="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  digest="$(cat "$sources/pom.xml" "$sources/log4j2.yaml" | sha256sum | cut -c1-12)"
  home="$KAFKA_PLATFORM_CACHE/kafka-$digest"
  if [ -f "$home/.complete" ] && [ ! -s "$home/.complete" ]; then
    # Completed before the folder listed its jars: list them as they are.
    (cd "$home" && sha256sum libs/*.jar agent/*.jar > .complete.new && mv .complete.new .complete)
  fi
  if [ -f "$home/.complete" ]; then
    damaged="$(kafka_damaged_jars "$home")"
    if [ -n "$damaged" ]; then
      echo "setup: damaged or missing in $home: $(echo "$damaged" | tr '\n' ' ')- fetching Kafka again" >&2
      while IFS= read -r jar; do
        kafka_forget_damaged_download "$(basename "$jar")" "$KAFKA_PLATFORM_CACHE/m2"
      done <<< "$damaged"
      rm -f "$home/.complete"
    fi
  fi
  if [ ! -f "$home/.complete" ]; then
    command -v mvn >/dev/null 2>&1 || setup_fail "\`mvn\` is missing: Maven fetches Kafka (Debian: apt-get install maven)"
    echo "setup: fetching Apache Kafka and the JMX exporter with Maven into $home"
    rm -rf "$home.partial"
    mkdir -p "$home.partial/config"
    mvn -B -q -f "$sources/pom.xml" -Dmaven.repo.local="$KAFKA_PLATFORM_CACHE/m2" \
      -Doutput="$home.partial" \
      dependency:copy-dependencies@libs dependency:copy-dependencies@agent >&2 \
      || setup_fail "Maven could not fetch the jars of scripts/kafka/pom.xml (see its output above)"
    cp "$sources/log4j2.yaml" "$home.partial/config/"
    (cd "$home.partial" && sha256sum libs/*.jar agent/*.jar > .complete)
    rm -rf "$home"
    mv "$home.partial" "$home"
  fi
  # A stable name for the current copy: what stacks/envs/local.toml falls back to.
  ln -sfn "$home" "$KAFKA_PLATFORM_CACHE/kafka"
  export KAFKA_PLATFORM_KAFKA_HOME="$home"
  export KAFKA_PLATFORM_JAVA="$java"
}
