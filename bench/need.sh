# Sourced by the benchmark scripts: `need COMMAND PACKAGE` installs the Debian PACKAGE
# when COMMAND is missing (apt-get update once per run).
need() {
  command -v "$1" >/dev/null && return
  echo "installing $2"
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
