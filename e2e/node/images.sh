#!/usr/bin/env bash
# Builds every image the local cluster's real node runs, from this machine's Debian
# packages and the project's own binaries, as docker-archive tarballs that
# `ctr -n k8s.io images import` loads: there is no registry to pull from. Where an
# image stands in for a default image of the operator it carries that image's ref,
# so an unchanged stack runs; e2e/node/IMAGE-CONTRACT.md says what each must do.
#
#   e2e/node/images.sh OUTDIR
#
# Prints one line per ref, REF=TARBALL (several refs may share a tarball); logs go
# to standard error. An image is rebuilt only when its inputs changed.
#
# Environment: WEBTOON_OPERATOR_BIN (default target/debug/webtoon-operator),
# WEBTOON_DEMO_WAS_BIN (default target/debug/examples/demo-was), WEBTOON_COREDNS_BIN
# (default: built by e2e/tools/build.sh coredns). nginx comes from tests/build-nginx.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out="$(cd "$1" && pwd)"

# Debian packages whose files go into the images.
need_apt=()
for pkg in busybox-static bash coreutils findutils grep sed gzip gawk libc-bin \
  mariadb-server mariadb-client redis-server redis-tools curl ca-certificates; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages for the node's images: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

operator_bin="${WEBTOON_OPERATOR_BIN:-$root/target/debug/webtoon-operator}"
was_bin="${WEBTOON_DEMO_WAS_BIN:-$root/target/debug/examples/demo-was}"
coredns_bin="${WEBTOON_COREDNS_BIN:-}"
if [ -z "$coredns_bin" ]; then
  coredns_bin="$("$root/e2e/tools/build.sh" coredns | sed -n 's/^coredns=//p')"
fi
nginx_bin="$("$root/tests/build-nginx.sh")"
for bin in "$operator_bin" "$was_bin" "$coredns_bin" "$nginx_bin"; do
  [ -x "$bin" ] || { echo "$bin is missing: build it first (cargo build --bin webtoon-operator --example demo-was)" >&2; exit 1; }
done

# The refs the operator defaults to, read where the product defines them.
default_image() {
  local ref
  ref="$(sed -n "s/^pub const $1: &str = \"\\(.*\\)\";/\\1/p" "$root/src/api/spec.rs")"
  [ -n "$ref" ] || { echo "src/api/spec.rs defines no $1" >&2; exit 1; }
  echo "$ref"
}
proxy_ref="$(default_image DEFAULT_PROXY_IMAGE)"
database_ref="$(default_image DEFAULT_DATABASE_IMAGE)"
cache_ref="$(default_image DEFAULT_CACHE_IMAGE)"
# DEFAULT_OPERATOR_IMAGE (src/render/mod.rs) is this repository at the binary's version.
operator_version="$("$operator_bin" --version | awk '{print $2}')"
operator_ref="ghcr.io/webtoon-operator/webtoon-operator:$operator_version"

# mime.types comes from nginx's own build.
nginx_prefix="$("$nginx_bin" -V 2>&1 | sed -n 's/.*--prefix=\([^ ]*\).*/\1/p')"
[ -n "$nginx_prefix" ] || { echo "$nginx_bin -V names no --prefix" >&2; exit 1; }

# The sandbox program, rebuilt from its source each run: Go's build cache makes that
# instant, and a reproducible build leaves the image's key unchanged.
mkdir -p "$out/.work"
(cd "$here/pause" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
  go build -trimpath -ldflags "-s -w -buildid=" -o "$out/.work/pause" .)

# GNU tools the database image's scripts call (the official image is Ubuntu's
# userland): date +%N, find -printf, base64 -w, iconv, stat -c and the rest.
gnu_tools=(
  /usr/bin/{basename,base64,cat,chmod,cp,cut,date,dirname,env,head,id,ln,ls,mkdir,mkfifo}
  /usr/bin/{mktemp,mv,printf,readlink,rm,sha256sum,sleep,sort,stat,sync,tail,tee,touch,tr}
  /usr/bin/{true,false,uname,wc}
  /usr/bin/{find,grep,sed,gzip,awk,iconv}
)
mariadb_tools=(
  /usr/sbin/mariadbd /usr/bin/{mariadb,mariadb-dump,mariadb-admin,mariadb-upgrade,mariadb-check}
  /usr/bin/{mariadb-install-db,my_print_defaults,resolveip}
)

python3 "$here/imagebuild.py" "$out" <<EOF
image pause
tag registry.k8s.io/pause:3.10
user 65535:65535
entrypoint ["/pause"]
copy /pause $out/.work/pause 0755

image coredns
tag registry.k8s.io/coredns/coredns:v1.14.0
user 65532:65532
entrypoint ["/coredns"]
expose 53/tcp
expose 53/udp
copy /coredns $coredns_bin 0755
# As the official image: port 53 as a non-root user, given NET_BIND_SERVICE.
xattr /coredns security.capability 0100000200040000000000000000000000000000
host /etc/ssl/certs/ca-certificates.crt

image webtoon-operator
tag $operator_ref
user 65532:65532
entrypoint ["/usr/local/bin/webtoon-operator"]
cmd ["run"]
expose 8080/tcp
copy /usr/local/bin/webtoon-operator $operator_bin 0755
libs $operator_bin
host /etc/ssl/certs/ca-certificates.crt
account nonroot 65532 65532 /home/nonroot

image demo-was
tag demo-was:1.0.0
tag registry.example/minitoon/was:1.0.0
tag demo-was:1.0.1 io.webtoon.demo-was.release=1.0.1
user 65532:65532
entrypoint ["/usr/local/bin/demo-was"]
expose 8080/tcp
copy /usr/local/bin/demo-was $was_bin 0755
libs $was_bin
host /etc/ssl/certs/ca-certificates.crt
account nonroot 65532 65532 /home/nonroot

image proxy
tag $proxy_ref
user 101:101
cmd ["nginx", "-g", "daemon off;"]
expose 8080/tcp
# nginx's graceful stop, as the official image.
stopsignal SIGQUIT
env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
copy /usr/sbin/nginx $nginx_bin 0755
libs $nginx_bin
copy /etc/nginx/mime.types $nginx_prefix/conf/mime.types 0644
dir /var/cache/nginx 0755 101:101
busybox sh cat ls sleep
account nginx 101 101 /var/cache/nginx

image mariadb
tag $database_ref
user 999:999
entrypoint ["docker-entrypoint.sh"]
cmd ["mariadbd"]
expose 3306/tcp
env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
bin /usr/bin/bash ${mariadb_tools[*]} ${gnu_tools[*]}
host /usr/share/mysql
busybox sh kill ps
copy /usr/local/bin/docker-entrypoint.sh $here/mariadb/docker-entrypoint.sh 0755
copy /usr/local/bin/healthcheck.sh $here/mariadb/healthcheck.sh 0755
copy /etc/mysql/my.cnf $here/mariadb/my.cnf 0644
dir /etc/mysql/conf.d 0755
dir /docker-entrypoint-initdb.d 0755
dir /var/lib/mysql 0755 999:999
dir /run/mysqld 0755 999:999
account mysql 999 999 /var/lib/mysql

image redis
tag $cache_ref
user 999:999
cmd ["redis-server"]
workdir /data
expose 6379/tcp
env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
bin /usr/bin/redis-server /usr/bin/redis-cli
busybox sh cat cut date echo grep ls printf sha256sum sleep tr
dir /data 0755 999:999
account redis 999 999 /data

image nettools
tag webtoon.local/nettools:1
user 65532:65532
cmd ["sleep", "2147483647"]
env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
bin /usr/bin/curl
host /etc/ssl/certs/ca-certificates.crt
busybox sh nc wget sleep cat echo env grep head ls nslookup printf tail timeout tr true false
account nonroot 65532 65532 /home/nonroot
EOF
