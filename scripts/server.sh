# Starting and stopping a local test server on 127.0.0.1 by PID, for scripts/moto.sh and
# scripts/kafka.sh (sourced, not run). The PID and log live in the cache's run/ folder.
#
#   server_main <start|stop> <name> <port> <command...>
#
# SERVER_START_SECONDS (default 10) is how long `start` waits for the port.
# `start` launches the command unless this name and port already run (and refuses a port
# something else answers on), waits until the port accepts connections, and prints
# `export KAFKA_PLATFORM_<NAME>_STARTED=0|1` (1 when this call started it) and
# `export KAFKA_PLATFORM_<NAME>_PID=<pid>`; `stop` stops it by its PID and waits until it has
# exited.

server_main() {
  local action="$1" name="$2" port="$3"
  shift 3
  local run_dir="$KAFKA_PLATFORM_CACHE/run"
  local pid_file="$run_dir/$name-$port.pid" log_file="$run_dir/$name-$port.log"
  local prefix
  prefix="KAFKA_PLATFORM_$(echo "$name" | tr '[:lower:]' '[:upper:]')"
  mkdir -p "$run_dir"
  running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }
  answering() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
  case "$action" in
    start)
      if running; then
        echo "export ${prefix}_STARTED=0"
        echo "export ${prefix}_PID=$(cat "$pid_file")"
        return 0
      fi
      if answering; then
        echo "$name: 127.0.0.1:$port is already in use by a process this script did not start" >&2
        return 1
      fi
      echo "export ${prefix}_STARTED=1"
      "$@" >"$log_file" 2>&1 &
      echo $! > "$pid_file"
      echo "export ${prefix}_PID=$!"
      for _ in $(seq 1 $((${SERVER_START_SECONDS:-10} * 10))); do
        if answering; then return 0; fi
        running || { cat "$log_file" >&2; echo "$name exited" >&2; return 1; }
        sleep 0.1
      done
      answering || { echo "$name did not answer on 127.0.0.1:$port (log: $log_file)" >&2; return 1; }
      ;;
    stop)
      # Waits until it has exited (and freed its port): SIGTERM, then SIGKILL after 10 s.
      if running; then
        local pid
        pid="$(cat "$pid_file")"
        kill "$pid"
        for _ in $(seq 1 100); do
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
      fi
      rm -f "$pid_file"
      ;;
    *)
      return 2
      ;;
  esac
}
