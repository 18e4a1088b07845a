#!/usr/bin/env bash
# Installs what the tests need, idempotently, caching outside the repository
# (KAFKA_PLATFORM_CACHE, default ~/.cache/kafka-platform). Source it or run it.
#
#   - the Rust toolchain must already be there (cargo, rustfmt, clippy);
#   - a Python virtualenv with moto[server] (the AWS API emulator), ansible-core
#     (ansible-inventory and ansible-playbook check the rendered inventory and playbooks, and
#     run the platform playbook against this machine), ansible-lint and schemathesis (fuzzes
#     the admin API from its OpenAPI document), pinned below;
#   - with KAFKA_PLATFORM_MONITORING=1 (the tests and the local platform): Prometheus,
#     Alertmanager and node_exporter (Debian packages prometheus, prometheus-alertmanager and
#     prometheus-node-exporter): their promtool and amtool validate the rendered files, the
#     local platform runs them;
#   - with KAFKA_PLATFORM_KAFKA=1 (the tests and the local platform): Apache Kafka (server,
#     tools, Connect), its SLF4J binding and the Prometheus JMX exporter agent, fetched with
#     Maven from scripts/kafka/pom.xml into KAFKA_PLATFORM_KAFKA_HOME (libs/, agent/,
#     config/log4j2.yaml); needs Java 17 or later and Maven.
set -euo pipefail

export KAFKA_PLATFORM_CACHE="${KAFKA_PLATFORM_CACHE:-$HOME/.cache/kafka-platform}"
mkdir -p "$KAFKA_PLATFORM_CACHE"

MOTO_VERSION="5.2.5"
# cp-ansible 8.3 supports ansible-core 2.16 to 2.18 (it fails on 2.19): the playbooks are
# checked with the version a deployment runs.
ANSIBLE_CORE_VERSION="2.18.19"
ANSIBLE_LINT_VERSION="26.10.1"
SCHEMATHESIS_VERSION="4.32.5"
VENV="$KAFKA_PLATFORM_CACHE/venv"
export KAFKA_PLATFORM_VENV="$VENV"

setup_fail() {
  echo "setup: $*" >&2
  return 1 2>/dev/null || exit 1
}

for tool in cargo rustfmt cargo-clippy python3; do
  command -v "$tool" >/dev/null 2>&1 || setup_fail "\`$tool\` is missing: install it first (Rust via rustup with rustfmt and clippy; python3 with venv)"
done

# The virtualenv is rebuilt only when the pinned requirements change.
requirements="moto[server]==$MOTO_VERSION ansible-core==$ANSIBLE_CORE_VERSION ansible-lint==$ANSIBLE_LINT_VERSION schemathesis==$SCHEMATHESIS_VERSION"
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$requirements" ]; then
  echo "setup: creating $VENV with $requirements"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || setup_fail "python3 -m venv failed: install the python3-venv package"
  # shellcheck disable=SC2086 # the requirements are separate words
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $requirements \
    || setup_fail "pip could not install $requirements"
  echo "$requirements" > "$VENV/.requirements"
fi

# The monitoring programs: the tests validate with them, the local platform runs them
# (scripts/test.sh and scripts/run.sh set KAFKA_PLATFORM_MONITORING=1). The dev environment
# on the emulator needs neither them nor root.
packages=()
if [ "${KAFKA_PLATFORM_MONITORING:-0}" = 1 ]; then
  command -v prometheus >/dev/null 2>&1 || packages+=(prometheus)
  command -v amtool >/dev/null 2>&1 || packages+=(prometheus-alertmanager)
  command -v prometheus-node-exporter >/dev/null 2>&1 || packages+=(prometheus-node-exporter)
  # Ansible's apt module, for the platform playbook's run against this machine.
  /usr/bin/python3 -c 'import apt' >/dev/null 2>&1 || packages+=(python3-apt)
  # ssh-keygen and ssh-agent, which the rendered deployment script uses (its tests run it).
  command -v ssh-agent >/dev/null 2>&1 || packages+=(openssh-client)
fi
if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    setup_fail "missing monitoring programs: install the Debian packages ${packages[*]} (sudo apt-get install ${packages[*]})"
  fi
  echo "setup: installing ${packages[*]} (the monitoring programs)"
  export DEBIAN_FRONTEND=noninteractive
  # Forbid the packages from starting their servers as system services: the local platform
  # starts its own, on its own ports.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
  fi
  installed=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >/dev/null || installed=$?
  [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
  [ "$installed" = 0 ] || setup_fail "apt-get could not install ${packages[*]}"
fi

# Apache Kafka from Maven Central (scripts/kafka/fetch.sh).
# shellcheck source=scripts/kafka/fetch.sh
source "$(dirname "${BASH_SOURCE[0]}")/kafka/fetch.sh"
if [ "${KAFKA_PLATFORM_KAFKA:-0}" = 1 ]; then
  kafka_setup
fi
