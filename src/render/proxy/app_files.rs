//! The application's public files in the proxy pods (PHP): php-fpm runs in the WAS
//! pods and serves no static file, so each proxy pod starts with an init container,
//! in the WAS image, that copies the document root into a volume nginx reads.
//!
//! The copy is what nginx may serve and run. Static files are copied with their
//! times (so that every proxy pod sends the same `Last-Modified`). Each `.php`
//! script becomes an empty placeholder: nginx checks that a script exists before it
//! passes the request to php-fpm, and no PHP source sits in the proxy. Other PHP
//! sources (`.phtml`, `.php5`, `.inc`, ...), `*.ini`, Composer's files, backups,
//! hidden files (`.env`, `.user.ini`, `.git`), `vendor/`, `node_modules/` and
//! symbolic links are left out, so they are never served and never run.

use k8s_openapi::api::core::v1::{Container, Volume};

use super::nginx_conf::APP_DIR;
use crate::api::ValidatedStack;
use crate::render::security::{container_security_context, scratch_volume};
use crate::render::volumes::mount;

/// Name of the pod volume holding the copy.
pub const VOLUME: &str = "app";

/// Largest copy of a document root; dependencies are not copied.
const SIZE_LIMIT: &str = "1Gi";

/// Copies the document root `$1` into `$2`, run by `/bin/sh -c` in the WAS image,
/// which needs a POSIX shell, `find`, `cp`, `mkdir` and `touch` (Debian and Alpine
/// images have them).
pub const COPY_SCRIPT: &str = r#"set -eu
root=$1
copy=$2
if [ "$root" = / ]; then
  echo "app-files: spec.was.fastcgiRoot is /, which would publish the whole image: set it to the document root, such as /var/www/html" >&2
  exit 1
fi
cd "$root"
find . \( -name '.?*' -o -name vendor -o -name node_modules \) -prune \
  -o -type d -exec sh -c 'set -e; for d in "$@"; do mkdir -p "$0/$d"; done' "$copy" {} +
find . \( -name '.?*' -o -name vendor -o -name node_modules \) -prune \
  -o -type f -exec sh -c '
set -e
for f in "$@"; do
  case "$f" in
    *.php) : > "$0/$f" ;;
    *.[Pp][Hh][Pp] | *.[Pp][Hh][Pp][0-9] | *.[Pp][Hh][Tt] | *.[Pp][Hh][Tt][Mm][Ll]) ;;
    *.[Pp][Hh][Pp][Ss] | *.[Pp][Hh][Aa][Rr] | *.[Ii][Nn][Cc] | *.[Ii][Nn][Ii]) ;;
    */composer.json | */composer.lock | *~ | *.bak | *.old | *.orig | *.save) ;;
    *.swp | *.sql | *.tmp | *.dist | *.log) ;;
    *)
      cp "$f" "$0/$f"
      touch -r "$f" "$0/$f"
      ;;
  esac
done' "$copy" {} +
echo "app-files: $(find "$copy" -type f | wc -l) files of $root ready in $copy"
"#;

/// The init container that fills the copy from the WAS image.
pub fn init_container(stack: &ValidatedStack) -> Container {
    let root = stack.spec.was.fastcgi_root.trim_end_matches('/');
    let root = if root.is_empty() { "/" } else { root };
    Container {
        name: "app-files".to_string(),
        image: Some(stack.spec.was.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            COPY_SCRIPT.to_string(),
            "app-files".to_string(),
            root.to_string(),
            APP_DIR.to_string(),
        ]),
        resources: Some(stack.spec.proxy.resources.clone()),
        security_context: Some(container_security_context(true)),
        // The pod's scratch volume: a read-only root leaves the shell no other /tmp.
        volume_mounts: Some(vec![
            mount(VOLUME, APP_DIR, false),
            mount("tmp", "/tmp", false),
        ]),
        ..Default::default()
    }
}

/// The volume holding the copy.
pub fn volume() -> Volume {
    scratch_volume(VOLUME, SIZE_LIMIT, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{parse_stacks, validated};
    use crate::render::proxy::nginx_conf::{NginxLayout, nginx_conf};
    use crate::render::proxy::pod_template;

    fn stack(was: &str) -> ValidatedStack {
        let yaml = format!(
            "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {{name: t, namespace: ns}}\nspec:\n  hosts: [t.example]\n  was: {{image: 'r.example/app:3', {was}}}\n"
        );
        validated(&parse_stacks("inline", &yaml).expect("parses")[0]).expect("valid")
    }

    fn pod(stack: &ValidatedStack) -> k8s_openapi::api::core::v1::PodSpec {
        let conf = nginx_conf(stack, &NginxLayout::in_cluster(stack));
        pod_template(stack, &conf).spec.expect("pod spec")
    }

    #[test]
    fn php_proxy_pods_copy_the_document_root_from_the_was_image_first() {
        let stack = stack("protocol: fastcgi, port: 9000, fastcgiRoot: /app/public/");
        let pod = pod(&stack);
        let init = &pod.init_containers.as_ref().expect("init containers")[0];
        assert_eq!(init.image.as_deref(), Some("r.example/app:3"));
        let command = init.command.as_ref().expect("command");
        assert_eq!(command[..2], ["/bin/sh", "-c"]);
        assert_eq!(command[2], COPY_SCRIPT);
        assert_eq!(command[4..], ["/app/public", APP_DIR]);
        let security = init.security_context.as_ref().expect("security context");
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        let init_mounts = init.volume_mounts.as_ref().expect("mounts");
        assert_eq!(
            (init_mounts[0].name.as_str(), init_mounts[0].read_only),
            (VOLUME, None)
        );
        let nginx_mount = pod.containers[0]
            .volume_mounts
            .as_ref()
            .expect("mounts")
            .iter()
            .find(|m| m.name == VOLUME)
            .expect("nginx mounts the copy");
        assert_eq!(
            (nginx_mount.mount_path.as_str(), nginx_mount.read_only),
            (APP_DIR, Some(true))
        );
        let volume = pod
            .volumes
            .as_ref()
            .expect("volumes")
            .iter()
            .find(|v| v.name == VOLUME)
            .expect("the copy's volume");
        assert!(
            volume
                .empty_dir
                .as_ref()
                .is_some_and(|e| e.size_limit.is_some())
        );
    }

    #[test]
    fn http_proxy_pods_have_no_copy() {
        let pod = pod(&stack("port: 8080"));
        assert!(pod.init_containers.is_none());
        assert!(
            pod.volumes
                .expect("volumes")
                .iter()
                .all(|v| v.name != VOLUME)
        );
    }
}
