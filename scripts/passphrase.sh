# Sourced by scripts/run.sh and scripts/bench-local.sh: exports IAC_PASSPHRASE, which encrypts
# the secrets in a stack's state (the local platform's keys and SCRAM passwords). The caller's
# own wins; without one, a random passphrase is made once and kept, mode 0600, beside the
# local platform's credentials in ~/.local/state/kafka-platform (outside the repository).
if [ -z "${IAC_PASSPHRASE:-}" ]; then
  passphrase_file="$HOME/.local/state/kafka-platform/passphrase"
  if [ ! -s "$passphrase_file" ]; then
    mkdir -p "$(dirname "$passphrase_file")"
    (umask 077 && head -c 32 /dev/urandom | base64 > "$passphrase_file.new" && mv "$passphrase_file.new" "$passphrase_file")
    echo "Made a passphrase for the stacks' secrets in $passphrase_file (set IAC_PASSPHRASE to use your own)."
  fi
  IAC_PASSPHRASE="$(cat "$passphrase_file")"
  export IAC_PASSPHRASE
fi
