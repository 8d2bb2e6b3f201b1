//! The rendered Redis configuration and start script in a real Redis (Debian
//! `redis-server`) on 127.0.0.1. Only the port, the bind address and three
//! directories differ from what the pod runs, replaced in `redis_local_layout`.

mod common;

use common::process::free_port;
use common::servers::{Redis, redis_local_layout};
use common::stack_from_yaml;
use webtoon_operator::render::{Observed, render};

const PASSWORD: &str = "cache-pass-0123456789";

fn stack_yaml(cache: &str) -> String {
    format!(
        "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {{name: cachetoon, namespace: webtoon}}\nspec:\n  hosts: [cachetoon.example]\n  was: {{image: registry.example/was:1.0.0}}\n  cache: {cache}\n"
    )
}

/// redis.conf and start.sh as rendered for `cache` (YAML under `spec.cache`).
fn rendered(cache: &str) -> (String, String) {
    let children = render(&stack_from_yaml(&stack_yaml(cache)), &Observed::default());
    let data = children
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("cachetoon-cache-config"))
        .and_then(|c| c.data.clone())
        .expect("cache config map");
    (data["redis.conf"].clone(), data["start.sh"].clone())
}

fn start(name: &str, cache: &str) -> Redis {
    let (conf, script) = rendered(cache);
    // The directory `Redis::start` creates for `name`.
    let dir = common::root()
        .join("target/test-tmp")
        .join(format!("{name}-{}", std::process::id()));
    let (conf, script) = redis_local_layout(&conf, &script, &dir, free_port());
    Redis::start(name, &conf, &script, PASSWORD)
}

fn app() -> Option<(&'static str, &'static str)> {
    Some(("webtoon", PASSWORD))
}

#[test]
fn a_password_is_required_and_the_default_user_is_off() {
    let redis = start("redis-auth", "{}");
    assert!(redis.reply(None, &["get", "k"]).contains("NOAUTH"));
    assert!(redis.reply(None, &["set", "k", "v"]).contains("NOAUTH"));
    let wrong = redis.reply(Some(("webtoon", "wrong")), &["ping"]);
    assert!(wrong.contains("WRONGPASS"), "{wrong}");
    let default = redis.reply(Some(("default", "")), &["ping"]);
    assert!(!default.contains("PONG"), "default user is off: {default}");
    assert!(redis.reply(app(), &["ping"]).contains("PONG"));
    assert!(
        redis
            .reply(app(), &["set", "episode:1", "hello"])
            .contains("OK")
    );
    assert!(redis.reply(app(), &["get", "episode:1"]).contains("hello"));
    let acl = std::fs::read_to_string(redis.dir.0.join("users.acl")).expect("acl file");
    assert!(
        !acl.contains(PASSWORD),
        "only a hash of the password is on disk"
    );
}

#[test]
fn the_app_user_cannot_wipe_reconfigure_stall_or_scan() {
    let redis = start("redis-deny", "{}");
    for command in [
        &["flushall"][..],
        &["flushdb"],
        &["config", "get", "maxmemory"],
        &["config", "set", "maxmemory", "0"],
        &["keys", "*"],
        &["shutdown"],
        &["acl", "list"],
    ] {
        let reply = redis.reply(app(), command);
        assert!(reply.contains("NOPERM"), "{command:?}: {reply}");
    }
    // Redis 7 also refuses DEBUG to every client by default; the ACL denies it
    // whatever the server's own setting.
    let debug = redis.reply(app(), &["debug", "sleep", "0"]);
    assert!(
        debug.contains("NOPERM") || debug.contains("DEBUG command not allowed"),
        "{debug}"
    );
    let acl = std::fs::read_to_string(redis.dir.0.join("users.acl")).expect("acl file");
    assert!(acl.contains(" -debug"), "{acl}");
    // What a cache needs still works, including SCAN instead of KEYS.
    assert!(
        redis
            .reply(app(), &["set", "a", "1", "EX", "60"])
            .contains("OK")
    );
    assert!(redis.reply(app(), &["scan", "0"]).contains('a'));
    assert!(redis.reply(app(), &["del", "a"]).contains('1'));
}

#[test]
fn memory_limit_eviction_and_persistence_follow_the_spec() {
    let redis = start(
        "redis-memory",
        "{maxMemory: 64Mi, evictionPolicy: allkeys-lfu}",
    );
    let info = redis.reply(app(), &["info", "memory"]);
    assert!(info.contains("maxmemory:67108864"), "{info}");
    assert!(info.contains("maxmemory_policy:allkeys-lfu"), "{info}");
    let persistence = redis.reply(app(), &["info", "persistence"]);
    assert!(persistence.contains("aof_enabled:0"), "{persistence}");
    drop(redis);

    let redis = start(
        "redis-aof",
        "{evictionPolicy: volatile-ttl, persistence: {size: 1Gi}}",
    );
    let info = redis.reply(app(), &["info", "memory"]);
    assert!(info.contains("maxmemory_policy:volatile-ttl"), "{info}");
    let persistence = redis.reply(app(), &["info", "persistence"]);
    assert!(persistence.contains("aof_enabled:1"), "{persistence}");
}

#[test]
fn the_rendered_probes_pass_with_the_password_and_fail_without() {
    let redis = start("redis-probe", "{}");
    let children = render(&stack_from_yaml(&stack_yaml("{}")), &Observed::default());
    let container = children
        .stateful_sets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("cachetoon-cache"))
        .and_then(|s| s.spec.as_ref()?.template.spec.clone())
        .expect("cache pod")
        .containers
        .remove(0);
    for probe in [&container.readiness_probe, &container.liveness_probe] {
        let command = probe
            .as_ref()
            .and_then(|p| p.exec.as_ref()?.command.clone())
            .expect("exec probe");
        assert_eq!(command[..2], ["sh", "-c"]);
        assert!(
            !command[2].contains("--pass"),
            "no password on a command line"
        );
        // The pod's Redis listens on the default port; this one on its own.
        let local = command[2].replace("redis-cli ", &format!("redis-cli -p {} ", redis.port));
        for (password, passes) in [(PASSWORD, true), ("wrong", false)] {
            let status = std::process::Command::new("sh")
                .args(["-c", &local])
                .env("REDIS_PASSWORD", password)
                .status()
                .expect("sh runs");
            assert_eq!(status.success(), passes, "{local} with {password}");
        }
    }
}
