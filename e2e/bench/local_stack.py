"""Writes what `webtoon-operator render` gives a stack with `spec.monitoring` (nginx's
configuration with its syslog access log, the access log exporter's configuration,
MariaDB's configuration and init script, Redis's configuration and start script, and
the exporters' and the WAS's arguments and environment) into a directory, changed
only as far as running every server on 127.0.0.1 needs: ports, paths, two static
WAS upstreams instead of the cluster's DNS name, and passwords in place of the
Secret references. Every change must match the rendered text, or this fails: a
render that moved on is noticed, not silently half-applied.

    python3 local_stack.py RENDER.yaml DIR PORTS.json PASSWORDS.json

PORTS.json names the ports (http, health, syslog, access_log, nginx_exporter,
mysqld_exporter, redis_exporter, database, cache, was: [first, second]).
PASSWORDS.json maps the credentials Secret's keys to passwords. Writes DIR/nginx/,
DIR/database/, DIR/cache/ and DIR/cmd/<container>.args (one argument a line) and
DIR/cmd/<container>.env (NAME=VALUE a line).
"""

import json
import re
import sys
from pathlib import Path

import yaml


def replace(text, old, new, count=1, what="the rendered file"):
    """`text` with `old` replaced; exactly `count` occurrences (0: at least one)."""
    found = text.count(old)
    if found == 0 or (count and found != count):
        raise SystemExit(f"{what}: expected {count or 'some'} of {old!r}, found {found}")
    return text.replace(old, new)


def sub(text, pattern, new, what):
    out, n = re.subn(pattern, new, text, flags=re.MULTILINE)
    if n == 0:
        raise SystemExit(f"{what}: nothing matches {pattern!r}")
    return out


def main():
    render, out, ports, passwords = sys.argv[1:5]
    out = Path(out)
    ports = json.loads(Path(ports).read_text())
    passwords = json.loads(Path(passwords).read_text())
    docs = [d for d in yaml.safe_load_all(Path(render).read_text()) if d]

    def config_map(suffix):
        for d in docs:
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith(suffix):
                return d["data"]
        raise SystemExit(f"the render has no ConfigMap *{suffix}")

    containers = {}
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            for c in d["spec"]["template"]["spec"]["containers"]:
                containers[c["name"]] = c
    for name in ("nginx-exporter", "access-log-exporter", "mysqld-exporter", "redis-exporter"):
        if name not in containers:
            raise SystemExit(f"the render has no {name} container: is spec.monitoring set?")

    # nginx: the proxy's own configuration, listening on 127.0.0.1 in `out/nginx`.
    proxy = config_map("-proxy-config")
    d = out / "nginx"
    (d / "images" / "ep1").mkdir(parents=True, exist_ok=True)
    conf = proxy["nginx.conf"]
    w = "nginx.conf"
    conf = replace(conf, "pid /tmp/nginx.pid;", f"pid {d}/nginx.pid;", what=w)
    conf = replace(conf, "error_log /dev/stderr warn;", f"error_log {d}/error.log warn;", what=w)
    conf = replace(conf, "_temp_path /tmp/", f"_temp_path {d}/", count=0, what=w)
    conf = replace(conf, "access_log /dev/stdout webtoon;", f"access_log {d}/access.log webtoon;", what=w)
    conf = sub(conf, r"syslog:server=127\.0\.0\.1:\d+", f"syslog:server=127.0.0.1:{ports['syslog']}", w)
    conf = replace(conf, "/var/cache/nginx/webtoon", f"{d}/cache", what=w)
    conf = sub(conf, r"^\s*resolver(_timeout)? .*;\n", "", w)
    first, second = ports["was"]
    conf = sub(
        conf,
        r"^(\s*)server \S+ resolve (.*);$",
        rf"\1server 127.0.0.1:{first} \2;\n\1server 127.0.0.1:{second} \2;",
        w,
    )
    conf = replace(conf, "listen 8080", f"listen 127.0.0.1:{ports['http']}", count=0, what=w)
    conf = replace(conf, "listen 8081;", f"listen 127.0.0.1:{ports['health']};", what=w)
    conf = sub(conf, r"alias /srv/images/;", f"alias {d}/images/;", w)
    (d / "nginx.conf").write_text(conf)

    access = proxy["access-log-exporter.yaml"]
    w = "access-log-exporter.yaml"
    access = sub(access, r"^  port: \d+$", f"  port: {ports['access_log']}", w)
    access = replace(access, "address: 0.0.0.0", "address: 127.0.0.1", what=w)
    access = sub(access, r"udp://127\.0\.0\.1:\d+", f"udp://127.0.0.1:{ports['syslog']}", w)
    (d / "access-log-exporter.yaml").write_text(access)

    # MariaDB: the rendered server options, then the local paths; the init script as is.
    d = out / "database"
    d.mkdir(parents=True, exist_ok=True)
    database = config_map("-database-config")
    init = config_map("-database-init")
    cnf = replace(database["webtoon.cnf"], "bind-address = 0.0.0.0", "bind-address = 127.0.0.1", what="webtoon.cnf")
    # The bench machine is small: a smaller buffer pool than the pod's memory gives.
    cnf = sub(cnf, r"^innodb_buffer_pool_size = .*$", "innodb_buffer_pool_size = 64M", "webtoon.cnf")
    cnf = replace(
        cnf,
        "[mysqld]\n",
        f"[mysqld]\ndatadir = {d}/data\nsocket = {d}/mysqld.sock\nport = {ports['database']}\n"
        f"pid-file = {d}/mysqld.pid\nlog-error = {d}/error.log\n",
        what="webtoon.cnf",
    )
    cnf = replace(cnf, "[client]\n", f"[client]\nsocket = {d}/mysqld.sock\n", what="webtoon.cnf")
    (d / "my.cnf").write_text(cnf)
    (init_name, init_script), = init.items()
    (d / init_name).write_text(init_script)

    # Redis: the rendered configuration and start script, with local paths.
    d = out / "cache"
    d.mkdir(parents=True, exist_ok=True)
    cache = config_map("-cache-config")
    conf = cache["redis.conf"]
    w = "redis.conf"
    conf = sub(conf, r"^port \d+$", f"port {ports['cache']}", w)
    conf = replace(conf, "bind 0.0.0.0", "bind 127.0.0.1", what=w)
    conf = sub(conf, r"^dir .*$", f"dir {d}", w)
    conf = sub(conf, r"^aclfile .*$", f"aclfile {d}/users.acl", w)
    (d / "redis.conf").write_text(conf)
    start = cache["start.sh"]
    start = replace(start, "> /run/redis/users.acl", f"> {d}/users.acl", what="start.sh")
    start = sub(start, r"^exec redis-server \S+$", f"exec redis-server {d}/redis.conf", "start.sh")
    (d / "start.sh").write_text(start)

    # Arguments and environment of the processes, as their containers have them.
    local = {
        ":9113": f"127.0.0.1:{ports['nginx_exporter']}",
        ":9104": f"127.0.0.1:{ports['mysqld_exporter']}",
        ":9121": f"127.0.0.1:{ports['redis_exporter']}",
        "127.0.0.1:8081": f"127.0.0.1:{ports['health']}",
        "127.0.0.1:3306": f"127.0.0.1:{ports['database']}",
        "127.0.0.1:6379": f"127.0.0.1:{ports['cache']}",
        "/etc/webtoon-access-log-exporter/": f"{out}/nginx/",
    }

    def localise(value):
        for old, new in local.items():
            value = re.sub(rf"(^|=|//){re.escape(old)}", lambda m: m.group(1) + new, value)
        return value

    def env(container, overrides=None):
        lines = []
        for e in container.get("env", []):
            if "value" in e:
                value = e["value"]
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                if ref["key"] not in passwords:
                    if ref.get("optional"):
                        continue
                    raise SystemExit(f"no password for the Secret key {ref['key']}")
                value = passwords[ref["key"]]
            value = (overrides or {}).get(e["name"], localise(value))
            lines.append(f"{e['name']}={value}")
        return "\n".join(lines) + "\n"

    d = out / "cmd"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in ("nginx-exporter", "access-log-exporter", "mysqld-exporter", "redis-exporter"):
        c = containers[name]
        (d / f"{name}.args").write_text("".join(localise(a) + "\n" for a in c.get("args", [])))
        (d / f"{name}.env").write_text(env(c))
    for name in ("mariadb", "redis"):
        (d / f"{name}.env").write_text(env(containers[name]))
    (d / "was.env").write_text(
        env(
            containers["was"],
            {
                "WEBTOON_DB_HOST": "127.0.0.1",
                "WEBTOON_DB_PORT": str(ports["database"]),
                "WEBTOON_REDIS_HOST": "127.0.0.1",
                "WEBTOON_REDIS_PORT": str(ports["cache"]),
                "WEBTOON_IMAGES_DIR": f"{out}/nginx/images",
            },
        )
    )


if __name__ == "__main__":
    main()
