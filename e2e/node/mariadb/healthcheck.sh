#!/bin/bash
# The health check of the local node's MariaDB image, a stand-in for the official
# image's healthcheck.sh with the two tests the operator's probes run:
#
#   --connect              the server accepts network connections: false while the
#                          entrypoint's first-start server (socket only) runs
#   --innodb_initialized   InnoDB has finished starting (crash recovery included)
#
# Tests run in the order given; the first to fail fails the check. The client logs in
# as the healthcheck account the entrypoint created, from the data directory's
# .my-healthcheck.cnf (--datadir=DIR to look elsewhere).
set -euo pipefail

datadir=/var/lib/mysql
query() {
  local defaults=()
  if [ -r "$datadir/.my-healthcheck.cnf" ]; then
    defaults=(--defaults-extra-file="$datadir/.my-healthcheck.cnf")
  fi
  mariadb "${defaults[@]}" --protocol=socket --batch --skip-column-names -e "$1"
}

[ $# -gt 0 ] || { echo "usage: healthcheck.sh [--datadir=DIR] --connect|--innodb_initialized ..." >&2; exit 2; }
for arg in "$@"; do
  case $arg in
    --datadir=*) datadir=${arg#*=} ;;
    --connect)
      networking=$(query 'SELECT @@skip_networking') || { echo "healthcheck: cannot connect" >&2; exit 1; }
      [ "$networking" = 0 ] || { echo "healthcheck: the server does not listen on the network yet" >&2; exit 1; }
      ;;
    --innodb_initialized)
      innodb=$(query "SELECT 1 FROM information_schema.ENGINES WHERE ENGINE = 'InnoDB' AND SUPPORT IN ('YES', 'DEFAULT', 'ENABLED')") ||
        { echo "healthcheck: cannot connect" >&2; exit 1; }
      [ "$innodb" = 1 ] || { echo "healthcheck: InnoDB is not initialized" >&2; exit 1; }
      ;;
    *) echo "healthcheck: unknown test $arg" >&2; exit 2 ;;
  esac
done
