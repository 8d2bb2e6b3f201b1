#!/usr/bin/env bash
# Builds the nginx that runs the proxy's in-cluster configuration in the tests:
# upstream `server ... resolve` needs open-source nginx 1.27.3 or newer, and Debian's
# is 1.22. The source is NGINX's own, as vendored by the `nginx-src` crate on
# crates.io (the registry this machine reaches), checked against the checksum the
# crates.io index publishes. Prints the binary's path; builds only when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

crate_version="1.28.5+1.28.3"
nginx_version="1.28.3"
sha256="60c9192630560c017a18e1da5b4c5de9d78450923f17325752c6f0f7f3911c86"
# The modules the rendered nginx.conf uses, and nothing that needs more libraries.
# Messages from before the configuration is read (and the error_log it names) go
# to standard error, not to a file under the build's prefix: in an image that
# prefix may lie under a directory a pod mounts over, such as /tmp.
configure_options=(--with-http_ssl_module --with-http_v2_module --with-http_realip_module
  --with-http_stub_status_module --error-log-path=stderr
  --without-mail_pop3_module --without-mail_imap_module --without-mail_smtp_module)
# Keyed by version and options: a change of either is another build.
options_key="$(printf '%s\n' "${configure_options[@]}" | sha256sum | cut -c1-8)"
prefix="$PWD/.tools/nginx-$nginx_version-$options_key"

if [ -x "$prefix/sbin/nginx" ]; then
  echo "$prefix/sbin/nginx"
  exit 0
fi

need_apt=()
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
for pkg in libpcre2-dev libssl-dev zlib1g-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages to build nginx: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "building nginx $nginx_version into $prefix" >&2
curl -fsSL --retry 3 -o "$work/nginx-src.crate" \
  "https://static.crates.io/crates/nginx-src/nginx-src-$crate_version.crate"
echo "$sha256  $work/nginx-src.crate" | sha256sum --check --quiet >&2
tar -xzf "$work/nginx-src.crate" -C "$work"
cd "$work/nginx-src-$crate_version/nginx"
# The crate vendors the repository layout, where configure lives in auto/.
./auto/configure --prefix="$prefix" "${configure_options[@]}" \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; exit 1; }
make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -50 "$work/make.log" >&2; exit 1; }
make install >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; exit 1; }
echo "$prefix/sbin/nginx"
