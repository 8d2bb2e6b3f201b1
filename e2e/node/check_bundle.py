#!/usr/bin/env python3
"""What e2e/node/check-images.sh needs beyond the shell: unpacking an image from its
tarball, writing a runc bundle that runs it as a pod would, and reading the
operator's rendered objects.

    check_bundle.py unpack TARBALL REF ROOTFS CONFIG
        the layers of REF into ROOTFS, its image config into CONFIG
    check_bundle.py bundle TEMPLATE CONFIG ROOTFS BUNDLE [OPTIONS] [-- ARGS...]
        BUNDLE/config.json from `runc spec`'s TEMPLATE: the image's entrypoint and
        cmd (or ARGS), env and working directory, a read-only root, no capability,
        no new privileges. OPTIONS: --user UID:GID, --env K=V, --emptydir PATH,
        --bind SRC:DST[:ro], --netns PATH (a pod's network; default: a new one),
        --cgroup PATH
    check_bundle.py configmap RENDERED NAME DIR
        each key of the rendered ConfigMap NAME as a file in DIR
    check_bundle.py env RENDERED CONTAINER
        the env of the first rendered container named CONTAINER as K=V lines; a
        value from a Secret reads `secret-<key>`
    check_bundle.py probe RENDERED CONTAINER PROBE
        the exec command of that container's probe, NUL-separated
    check_bundle.py has-xattr TARBALL PATH KEY
        exit 0 when the layer entry PATH carries the extended attribute KEY
"""

import json
import os
import sys
import tarfile


def image_entry(tarball, ref):
    with tarfile.open(tarball) as t:
        manifest = json.load(t.extractfile("manifest.json"))
        for entry in manifest:
            if ref in entry["RepoTags"]:
                return entry, json.load(t.extractfile(entry["Config"]))
    sys.exit(f"{tarball} has no image {ref}")


def unpack(tarball, ref, rootfs, config_out):
    entry, config = image_entry(tarball, ref)
    with tarfile.open(tarball) as t:
        for layer in entry["Layers"]:
            with tarfile.open(fileobj=t.extractfile(layer)) as lt:
                # Our own tarball, unpacked as it is: modes (the sticky /tmp),
                # owners and links kept.
                if hasattr(tarfile, "fully_trusted_filter"):
                    lt.extractall(rootfs, filter="fully_trusted")
                else:
                    lt.extractall(rootfs)
    with open(config_out, "w") as f:
        json.dump(config["config"], f)


def bundle(template, config_path, rootfs, bundle_dir, options):
    spec = json.load(open(template))
    image = json.load(open(config_path))
    args = None
    env = list(image.get("Env") or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    user = image.get("User", "0:0")
    mounts = spec["mounts"]
    netns = None
    cgroup = None
    i = 0
    while i < len(options):
        opt = options[i]
        if opt == "--":
            args = options[i + 1:]
            break
        value = options[i + 1]
        i += 2
        if opt == "--user":
            user = value
        elif opt == "--env":
            env.append(value)
        elif opt == "--emptydir":
            # As the kubelet makes an emptyDir: a fresh directory, mode 0777.
            source = f"{bundle_dir}/emptydir{len(mounts)}"
            os.mkdir(source)
            os.chmod(source, 0o777)
            mounts.append({"destination": value, "type": "bind", "source": source,
                           "options": ["rbind", "rw"]})
        elif opt == "--bind":
            parts = value.split(":")
            flags = ["rbind", "ro" if len(parts) > 2 and parts[2] == "ro" else "rw"]
            mounts.append({"destination": parts[1], "type": "bind", "source": parts[0],
                           "options": flags})
        elif opt == "--netns":
            netns = value
        elif opt == "--cgroup":
            cgroup = value
        else:
            sys.exit(f"unknown option {opt}")
    if args is None:
        args = (image.get("Entrypoint") or []) + (image.get("Cmd") or [])
    uid, _, gid = user.partition(":")
    process = spec["process"]
    process.update({
        "terminal": False,
        "args": args,
        "env": env,
        "cwd": image.get("WorkingDir") or "/",
        "user": {"uid": int(uid), "gid": int(gid or uid)},
        "noNewPrivileges": True,
        "capabilities": {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")},
    })
    spec["root"] = {"path": rootfs, "readonly": True}
    spec["hostname"] = "check"
    namespaces = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
    namespaces.append({"type": "network", "path": netns} if netns else {"type": "network"})
    spec["linux"]["namespaces"] = namespaces
    if cgroup:
        spec["linux"]["cgroupsPath"] = cgroup
    with open(f"{bundle_dir}/config.json", "w") as f:
        json.dump(spec, f, indent=1)


def rendered(path):
    import yaml

    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def containers(doc):
    if isinstance(doc, dict):
        if "containers" in doc:
            yield from doc.get("initContainers", []) + doc["containers"]
            return
        for v in doc.values():
            yield from containers(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from containers(v)


def find_container(path, name):
    for doc in rendered(path):
        for c in containers(doc):
            if c["name"] == name:
                return c
    sys.exit(f"{path} renders no container {name}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "unpack":
        unpack(*args)
    elif cmd == "bundle":
        bundle(args[0], args[1], args[2], args[3], args[4:])
    elif cmd == "configmap":
        for doc in rendered(args[0]):
            if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == args[1]:
                for key, value in doc.get("data", {}).items():
                    with open(f"{args[2]}/{key}", "w") as f:
                        f.write(value)
                return
        sys.exit(f"{args[0]} renders no ConfigMap {args[1]}")
    elif cmd == "env":
        for e in find_container(args[0], args[1]).get("env", []):
            if "value" in e:
                print(f"{e['name']}={e['value']}")
            else:
                print(f"{e['name']}=secret-{e['valueFrom']['secretKeyRef']['key']}")
    elif cmd == "probe":
        command = find_container(args[0], args[1])[args[2]]["exec"]["command"]
        sys.stdout.write("\0".join(command) + "\0")
    elif cmd == "has-xattr":
        tarball, path, key = args
        with tarfile.open(tarball) as t:
            entry = json.load(t.extractfile("manifest.json"))[0]
            with tarfile.open(fileobj=t.extractfile(entry["Layers"][0])) as lt:
                info = lt.getmember(path.lstrip("/"))
                sys.exit(0 if f"SCHILY.xattr.{key}" in info.pax_headers else 1)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
