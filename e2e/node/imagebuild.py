#!/usr/bin/env python3
"""Builds container images from files of this machine, as docker-archive tarballs.

Reads image specs on standard input and writes OUTDIR/NAME.tar for each, unless the
tarball of the same inputs is already there: the key is a SHA-256 over every entry
of the image (path, type, mode, owner, link target, content) and its configuration.
Prints `REF=TARBALL` for each ref on standard output; logs go to standard error.

The tarballs are deterministic (one layer, entries sorted, mtime 0) and hold what
`ctr images import` and `docker load` read: manifest.json, one config per entry
and the layer as `<diff id>/layer.tar`. Several refs of one image share its layer;
a ref with extra labels gets its own config, so its image id differs.

Spec lines (`#` starts a comment; paths are absolute inside the image):

    image NAME                   start an image; its tarball is OUTDIR/NAME.tar
    tag REF [LABEL=VALUE ...]    a ref of the image, with labels of its own
    user UID:GID                 the config's User
    entrypoint JSON-LIST | cmd JSON-LIST | workdir PATH | stopsignal SIGNAL
    env KEY=VALUE | label KEY=VALUE | expose PORT/PROTO
    host PATH ...                host files or directories, at the same place
    bin PATH ...                 host files at the same place, with the shared
                                 libraries `ldd` reports and the loader
    copy DEST SRC MODE           the host file SRC as DEST
    libs SRC ...                 the shared libraries and loader of host files
    dir PATH MODE [UID:GID]      a directory
    link PATH TARGET             a symbolic link
    busybox APPLET ...           /usr/bin/busybox and a link per applet
    account NAME UID GID HOME    a line of /etc/passwd and /etc/group
    xattr PATH KEY HEX           an extended attribute of an entry
"""

import hashlib
import io
import json
import os
import shlex
import stat
import subprocess
import sys
import tarfile
import time

# Every image starts from Debian's merged-/usr layout, so that the paths `ldd`
# reports (/lib/x86_64-linux-gnu/...) and the loader (/lib64/...) resolve as on the
# machine the files come from.
MERGED_USR = {"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib", "/lib64": "usr/lib64"}


def log(message):
    print(f"images: {message}", file=sys.stderr, flush=True)


class SpecError(Exception):
    """A spec line that cannot be built."""


class FileCache:
    """Content hashes and `ldd` answers of host files, kept across runs by file
    identity (device, inode, size, mtime), so that a run with nothing changed reads
    no file twice."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path) as f:
                self.data = json.load(f)
        except (OSError, ValueError):
            self.data = {}
        self.used = {}

    @staticmethod
    def _identity(path):
        st = os.stat(path)
        return f"{path}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"

    def _get(self, kind, path, compute):
        key = f"{kind}|{self._identity(path)}"
        value = self.data.get(key)
        if value is None:
            value = compute(path)
        self.used[key] = value
        return value

    def sha256(self, path):
        def compute(p):
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest()

        return self._get("sha256", path, compute)

    def libraries(self, path):
        return self._get("ldd", path, ldd)

    def save(self):
        tmp = self.path + ".partial"
        with open(tmp, "w") as f:
            json.dump(self.used, f, sort_keys=True)
        os.replace(tmp, self.path)


def ldd(path):
    """The shared libraries and loader of an ELF file, as paths `ldd` reports; none
    for a static binary or a script."""
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return []
    result = subprocess.run(["ldd", path], capture_output=True, text=True)
    if result.returncode != 0:
        if "not a dynamic executable" in result.stdout + result.stderr:
            return []
        raise SpecError(f"ldd {path} failed: {result.stderr.strip()}")
    libs = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if "=> not found" in line:
            raise SpecError(f"{path} needs {line.split()[0]}, which is not installed")
        if "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
        else:
            target = line.split("(")[0].strip()
        if target.startswith("/"):
            libs.append(target)
    return libs


class Image:
    """The filesystem and configuration of one image."""

    def __init__(self, name, cache):
        self.name = name
        self.cache = cache
        self.tags = []
        self.config = {}
        self.accounts = []
        # path -> entry dict: type (dir, file, link), mode, uid, gid, and src or target.
        self.entries = {}
        for path, target in MERGED_USR.items():
            self.link(path, target)
        self.dir("/tmp", 0o1777)

    # -- the filesystem -------------------------------------------------------

    def resolve(self, path):
        """The path inside the image with every symbolic link among its parents
        followed, so that /bin/sh lands in /usr/bin."""
        parts = [p for p in path.split("/") if p]
        resolved = []
        for i, part in enumerate(parts):
            candidate = "/" + "/".join(resolved + [part])
            entry = self.entries.get(candidate)
            last = i == len(parts) - 1
            if entry and entry["type"] == "link" and not last:
                target = entry["target"]
                base = "/" if target.startswith("/") else "/" + "/".join(resolved)
                resolved = [p for p in self.resolve(os.path.normpath(os.path.join(base, target))).split("/") if p]
            elif part == "..":
                resolved = resolved[:-1]
            elif part != ".":
                resolved.append(part)
        return "/" + "/".join(resolved)

    def _parents(self, path):
        parent = os.path.dirname(path)
        if parent != "/" and parent not in self.entries:
            self._parents(parent)
            self.entries[parent] = {"type": "dir", "mode": 0o755, "uid": 0, "gid": 0}

    def _put(self, path, entry):
        path = self.resolve(path)
        old = self.entries.get(path)
        if old and old != entry and not (old["type"] == "dir" and entry["type"] == "dir"):
            raise SpecError(f"{self.name}: {path} is given twice, differently")
        self._parents(path)
        # Two directories: the later wins, so that a `dir` line sets the mode and
        # owner of a directory that files were already put into.
        self.entries[path] = entry

    def dir(self, path, mode, uid=0, gid=0):
        self._put(path, {"type": "dir", "mode": mode, "uid": uid, "gid": gid})

    def link(self, path, target):
        self._put(path, {"type": "link", "target": target, "mode": 0o777, "uid": 0, "gid": 0})

    def file(self, path, src, mode=None):
        st = os.stat(src)
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(f"{self.name}: {src} is not a regular file")
        if mode is None:
            # No set-id bits: nothing in these images may gain privileges.
            mode = stat.S_IMODE(st.st_mode) & 0o1777
        self._put(path, {"type": "file", "src": src, "mode": mode, "uid": 0, "gid": 0,
                         "size": st.st_size, "sha256": self.cache.sha256(src)})

    def host(self, path, with_libraries=False):
        """The host path at the same place, every symbolic link on the way kept as
        a link; a directory with everything under it."""
        if not os.path.isabs(path):
            raise SpecError(f"{self.name}: {path} is not an absolute path")
        if not os.path.lexists(path):
            raise SpecError(f"{self.name}: {path} does not exist on this machine")
        parts = [p for p in path.split("/") if p]
        current = ""
        for i, part in enumerate(parts):
            current += "/" + part
            if os.path.islink(current):
                target = os.readlink(current)
                if current in MERGED_USR:
                    if MERGED_USR[current] != target:
                        raise SpecError(f"{current} links to {target}, not {MERGED_USR[current]}")
                else:
                    self.link(current, target)
                rest = "/".join(parts[i + 1:])
                target_path = os.path.normpath(os.path.join(os.path.dirname(current), target))
                return self.host(target_path + ("/" + rest if rest else ""), with_libraries)
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                self.host(os.path.join(path, name), with_libraries)
            if self.resolve(path) not in self.entries:
                self.dir(path, 0o755)
        else:
            self.file(path, path)
            if with_libraries:
                for lib in self.cache.libraries(path):
                    self.host(lib)

    # -- configuration --------------------------------------------------------

    def account(self, name, uid, gid, home):
        self.accounts.append((name, int(uid), int(gid), home))

    def finish(self, workdir):
        """Writes /etc/passwd and /etc/group from the accounts, if any."""
        if self.accounts:
            users = [("root", 0, 0, "/root")] + self.accounts
            passwd = "".join(f"{n}:x:{u}:{g}:{n}:{h}:/usr/sbin/nologin\n" for n, u, g, h in users)
            group = "".join(f"{n}:x:{g}:\n" for n, _, g, _ in users)
            for name, text in (("passwd", passwd), ("group", group)):
                src = os.path.join(workdir, f"{self.name}.{name}")
                with open(src, "w") as f:
                    f.write(text)
                self.file(f"/etc/{name}", src, 0o644)

    def key(self):
        """The SHA-256 that names this image's inputs."""
        h = hashlib.sha256()
        h.update(json.dumps([self.tags, self.config], sort_keys=True).encode())
        for path in sorted(self.entries):
            entry = {k: v for k, v in self.entries[path].items() if k != "src"}
            h.update(json.dumps([path, entry], sort_keys=True).encode())
        return h.hexdigest()


def tar_info(path, entry):
    info = tarfile.TarInfo(path.lstrip("/"))
    info.mtime = 0
    info.mode = entry["mode"]
    info.uid = entry["uid"]
    info.gid = entry["gid"]
    info.uname = info.gname = ""
    if entry["type"] == "dir":
        info.type = tarfile.DIRTYPE
    elif entry["type"] == "link":
        info.type = tarfile.SYMTYPE
        info.linkname = entry["target"]
    else:
        info.size = entry["size"]
    if "xattrs" in entry:
        # Binary values (file capabilities) travel as PAX records, as Docker and
        # containerd write and read them.
        info.pax_headers = {f"SCHILY.xattr.{k}": bytes.fromhex(v).decode("utf-8", "surrogateescape")
                            for k, v in sorted(entry["xattrs"].items())}
    return info


def sort_key(path):
    return path.split("/")


def write_layer(image, path):
    with open(path, "wb") as out:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry_path in sorted(image.entries, key=sort_key):
                entry = image.entries[entry_path]
                info = tar_info(entry_path, entry)
                if entry["type"] == "file":
                    with open(entry["src"], "rb") as f:
                        tar.addfile(info, f)
                    if os.stat(entry["src"]).st_size != entry["size"]:
                        raise SpecError(f"{entry['src']} changed while it was read")
                else:
                    tar.addfile(info)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.mode = 0o644
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_image(image, out):
    layer_tmp = out + ".layer"
    diff_id = write_layer(image, layer_tmp)
    configs = {}
    manifest = []
    groups = {}
    for ref, labels in image.tags:
        groups.setdefault(json.dumps(labels, sort_keys=True), []).append(ref)
    for labels_json, refs in sorted(groups.items()):
        config = dict(image.config)
        labels = dict(config.get("Labels", {}))
        labels.update(json.loads(labels_json))
        if labels:
            config["Labels"] = labels
        document = {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "e2e/node/images.sh"}],
        }
        data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.sha256(data).hexdigest()
        configs[f"{digest}.json"] = data
        manifest.append({"Config": f"{digest}.json", "RepoTags": refs,
                         "Layers": [f"{diff_id}/layer.tar"]})
    partial = out + ".partial"
    with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(diff_id)
        info.type = tarfile.DIRTYPE
        info.mtime = 0
        info.mode = 0o755
        tar.addfile(info)
        layer = tar.gettarinfo(layer_tmp, arcname=f"{diff_id}/layer.tar")
        layer.mtime = 0
        layer.mode = 0o644
        layer.uid = layer.gid = 0
        layer.uname = layer.gname = ""
        with open(layer_tmp, "rb") as f:
            tar.addfile(layer, f)
        for name in sorted(configs):
            add_bytes(tar, name, configs[name])
        add_bytes(tar, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
    os.remove(layer_tmp)
    os.replace(partial, out)


def owner(text):
    uid, _, gid = text.partition(":")
    return int(uid), int(gid or uid)


def parse(lines, cache):
    images = []
    image = None
    for number, raw in enumerate(lines, 1):
        words = shlex.split(raw, comments=True)
        if not words:
            continue
        op, args = words[0], words[1:]
        try:
            if op == "image":
                image = Image(args[0], cache)
                images.append(image)
                continue
            if image is None:
                raise SpecError("no `image` line before it")
            if op == "tag":
                image.tags.append((args[0], dict(a.split("=", 1) for a in args[1:])))
            elif op == "user":
                image.config["User"] = args[0]
            elif op in ("entrypoint", "cmd"):
                # JSON keeps its quotes: read the line as written.
                image.config[op.capitalize()] = json.loads(raw.split(None, 1)[1])
            elif op == "workdir":
                image.config["WorkingDir"] = args[0]
            elif op == "stopsignal":
                image.config["StopSignal"] = args[0]
            elif op == "env":
                image.config.setdefault("Env", []).append(args[0])
            elif op == "label":
                key, value = args[0].split("=", 1)
                image.config.setdefault("Labels", {})[key] = value
            elif op == "expose":
                image.config.setdefault("ExposedPorts", {})[args[0]] = {}
            elif op == "host":
                for path in args:
                    image.host(path)
            elif op == "bin":
                for path in args:
                    image.host(path, with_libraries=True)
            elif op == "libs":
                for path in args:
                    for lib in cache.libraries(path):
                        image.host(lib)
            elif op == "copy":
                image.file(args[0], args[1], int(args[2], 8))
            elif op == "dir":
                uid, gid = owner(args[2]) if len(args) > 2 else (0, 0)
                image.dir(args[0], int(args[1], 8), uid, gid)
            elif op == "link":
                image.link(args[0], args[1])
            elif op == "busybox":
                image.host("/usr/bin/busybox")
                for applet in args:
                    image.link(f"/usr/bin/{applet}", "busybox")
            elif op == "account":
                image.account(*args)
            elif op == "xattr":
                entry = image.entries[image.resolve(args[0])]
                entry.setdefault("xattrs", {})[args[1]] = args[2]
            else:
                raise SpecError(f"unknown instruction {op}")
        except (SpecError, IndexError, ValueError, KeyError, OSError) as e:
            raise SpecError(f"spec line {number} ({raw.strip()}): {e}") from e
    return images


def main():
    if len(sys.argv) != 2:
        print("usage: imagebuild.py OUTDIR < SPEC", file=sys.stderr)
        return 2
    out_dir = os.path.abspath(sys.argv[1])
    work = os.path.join(out_dir, ".work")
    os.makedirs(work, exist_ok=True)
    cache = FileCache(os.path.join(work, "files.json"))
    try:
        images = parse(sys.stdin.read().splitlines(), cache)
        lines = []
        for image in images:
            image.finish(work)
            if not image.tags:
                raise SpecError(f"image {image.name} has no tag")
            tarball = os.path.join(out_dir, f"{image.name}.tar")
            key_file = os.path.join(work, f"{image.name}.key")
            key = image.key()
            try:
                with open(key_file) as f:
                    built = f.read().strip()
            except OSError:
                built = ""
            if built == key and os.path.isfile(tarball):
                log(f"{image.name}: up to date ({os.path.getsize(tarball) >> 20} MiB)")
            else:
                started = time.monotonic()
                write_image(image, tarball)
                with open(key_file, "w") as f:
                    f.write(key + "\n")
                log(f"{image.name}: built {len(image.entries)} entries, "
                    f"{os.path.getsize(tarball) >> 20} MiB in {time.monotonic() - started:.1f} s")
            lines.extend(f"{ref}={tarball}" for ref, _ in image.tags)
        cache.save()
    except SpecError as e:
        log(str(e))
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
