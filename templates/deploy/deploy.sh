#!/bin/sh
# The deployment of stack `{{ env }}`, rendered from the applied stack: `stacks apply {{ env }}`
# runs `sh deploy/deploy.sh STEP` in this folder for each step, in this order: nodes (host
# entries, node_exporter), kafka (cp-ansible {{ cp_ansible }}), then platform and connect.
# Later runs of kafka are `deploy.sh kafka rolling`: cp-ansible's rolling deployment, one node
# at a time, each checked before the next.
# Each prints Ansible's recap; the whole output goes to {{ logs }}/deploy-STEP.log.
# Do not edit by hand: change the environment and apply.
#
#   KAFKA_PLATFORM_BIN_DIR     the services built for the nodes (deploy.bin_dir)
#   KAFKA_PLATFORM_COLLECTION  cp-ansible as a tarball or folder (deploy.collection; unset:
#                              confluent.platform {{ cp_ansible }} from Ansible Galaxy)
#   ANSIBLE_PRIVATE_KEY_FILE   the SSH key (deploy.ssh_private_key; unset: ssh-agent)
set -eu
step=${1:-}
strategy=${2:-}
case $step/$strategy in
  nodes/ | kafka/ | kafka/rolling | platform/ | connect/) ;;
  *)
    echo "usage: deploy.sh nodes|kafka|platform|connect, or deploy.sh kafka rolling" >&2
    exit 2
    ;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${KAFKA_PLATFORM_CACHE:-$HOME/.cache/kafka-platform}/ansible-core-{{ ansible_core }}
logs={{ logs }}
mkdir -p "$logs"
log=$logs/deploy-$step.log
: >"$log"
fail() {
  echo "$1: see $log" >&2
  exit 1
}
# ansible-core {{ ansible_core }}: cp-ansible {{ cp_ansible }} supports 2.16 to 2.18.
if [ ! -x "$venv/bin/ansible-playbook" ]; then
  { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check "ansible-core=={{ ansible_core }}"; } >>"$log" 2>&1 \
    || { rm -rf "$venv"; fail "cannot make the Ansible virtualenv $venv (it needs python3 with venv, and PyPI)"; }
fi
export ANSIBLE_CONFIG="$here/ansible/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$venv/collections"
if [ "$step" = kafka ]; then
  collection=${KAFKA_PLATFORM_COLLECTION:-confluent.platform:=={{ cp_ansible }}}
  if ! "$venv/bin/ansible-galaxy" collection list confluent.platform -p "$venv/collections" 2>/dev/null | grep -q " {{ cp_ansible }}"; then
    "$venv/bin/ansible-galaxy" collection install --force "$collection" -p "$venv/collections" >>"$log" 2>&1 \
      || fail "cannot install cp-ansible from $collection (without Ansible Galaxy, name a downloaded tarball in deploy.collection)"
  fi
  playbook=confluent.platform.all
else
  playbook=$here/ansible/$step.yml
fi
{%- if let Some(secrets) = secrets %}
# The secrets cp-ansible and the playbooks need (never a vault password).
set -- -e "@{{ secrets }}"
{%- else %}
set --
{%- endif %}
if [ "$strategy" = rolling ]; then
  set -- "$@" -e deployment_strategy=rolling
fi
if ! "$venv/bin/ansible-playbook" -i "$here/ansible/hosts.yml" "$@" \
  -e "kafka_platform_bin_dir=${KAFKA_PLATFORM_BIN_DIR:-$here/../bin}" "$playbook" >>"$log" 2>&1; then
  tail -n 40 "$log" >&2
  fail "the $step step failed"
fi
sed -n '/^PLAY RECAP/,$p' "$log"
