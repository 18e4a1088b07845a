#!/bin/sh
# The deployment of stack `{{ env }}`, rendered from the applied stack: `stacks apply {{ env }}`
# runs `sh deploy/deploy.sh STEP` in this folder for each step, in this order: nodes (host
# entries, node_exporter), kafka (cp-ansible {{ cp_ansible }}), then platform and connect.
# Later runs of kafka are `deploy.sh kafka rolling`: cp-ansible's rolling deployment, one node
# at a time, each checked before the next. `deploy.sh node HOST NAME ROLE` deploys onto
# one replaced controller or broker (the inventory's HOST, the node NAME, its ROLE) while the
# others roll after it: host entries, node_exporter and Kafka on that node only.
# Each prints Ansible's recap; the whole output goes to {{ logs }}/deploy-STEP.log.
# Do not edit by hand: change the environment and apply.
#
#   KAFKA_PLATFORM_BIN_DIR     the services built for the nodes (deploy.bin_dir)
#   KAFKA_PLATFORM_COLLECTION  cp-ansible as a tarball or folder (deploy.collection; unset:
#                              confluent.platform {{ cp_ansible }} from Ansible Galaxy)
#   ANSIBLE_PRIVATE_KEY_FILE   the SSH key (deploy.ssh_private_key; unset: ssh-agent), also for the
#                              hop through the platform node
set -eu
step=${1:-}
strategy= host= name= role=
case $step/$#/${2:-}/${4:-} in
  nodes/1// | kafka/1// | platform/1// | connect/1//) ;;
  kafka/2/rolling/) strategy=rolling ;;
  node/4/*/controller | node/4/*/broker) host=$2 name=$3 role=$4 ;;
  *)
    echo "usage: deploy.sh nodes|kafka|platform|connect, deploy.sh kafka rolling, or deploy.sh node HOST NAME controller|broker" >&2
    exit 2
    ;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${KAFKA_PLATFORM_CACHE:-$HOME/.cache/kafka-platform}/ansible-core-{{ ansible_core }}
logs={{ logs }}
mkdir -p "$logs"
log=$logs/deploy-$step${name:+-$name}.log
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
if [ "$step" = kafka ] || [ "$step" = node ]; then
  collection=${KAFKA_PLATFORM_COLLECTION:-confluent.platform:=={{ cp_ansible }}}
  if ! "$venv/bin/ansible-galaxy" collection list confluent.platform -p "$venv/collections" 2>/dev/null | grep -q " {{ cp_ansible }}"; then
    "$venv/bin/ansible-galaxy" collection install --force "$collection" -p "$venv/collections" >>"$log" 2>&1 \
      || fail "cannot install cp-ansible from $collection (without Ansible Galaxy, name a downloaded tarball in deploy.collection)"
  fi
  playbook=confluent.platform.all
else
  playbook=$here/ansible/$step.yml
fi
# Every node but the platform node is reached through it, and that hop does not see Ansible's
# --private-key: the deployment's key goes into an SSH agent of this run's own.
if [ -n "${ANSIBLE_PRIVATE_KEY_FILE:-}" ]; then
  eval "$(ssh-agent -s)" >/dev/null
  trap 'ssh-agent -k >/dev/null 2>&1' EXIT
  ssh-add -q "$ANSIBLE_PRIVATE_KEY_FILE" >>"$log" 2>&1 || fail "cannot add the SSH key $ANSIBLE_PRIVATE_KEY_FILE to an agent"
fi
# A replaced node keeps its address but not its host key: the key kept under its name goes.
if [ "$step" = node ] && [ -f "$HOME/.ssh/known_hosts" ]; then
  ssh-keygen -R "$name" -f "$HOME/.ssh/known_hosts" >>"$log" 2>&1 || true
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
set -- "$@" -e "kafka_platform_bin_dir=${KAFKA_PLATFORM_BIN_DIR:-$here/../bin}"
playbook() {
  if ! "$venv/bin/ansible-playbook" -i "$here/ansible/hosts.yml" "$@" >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    fail "the $step step failed"
  fi
}
if [ "$step" = node ]; then
  set -- "$@" --limit "$host"
  # A new controller joins with the cluster's id (cp-ansible would format it with a new one):
  # read from the meta.properties of another controller.
  if [ "$role" = controller ]; then
    cluster_id=$("$venv/bin/ansible" "kafka_controller:!$host" -i "$here/ansible/hosts.yml" -b \
      -m ansible.builtin.command -a "cat {{ controller_meta }}" 2>>"$log" | sed -n 's/^cluster\.id=//p' | head -n 1)
    [ -n "$cluster_id" ] || fail "no other controller tells the cluster's id ({{ controller_meta }}): check that the other controllers run and answer SSH through the platform node (the log: $log)"
    set -- "$@" -e "clusterid=$cluster_id"
  fi
  playbook "$@" "$here/ansible/nodes.yml"
fi
playbook "$@" "$playbook"
sed -n '/^PLAY RECAP/,$p' "$log"
