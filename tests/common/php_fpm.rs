//! Debian's php-fpm as the WAS of a PHP stack: one pool per instance, listening on a
//! TCP address of 127.0.0.x as php-fpm does in a pod, with Debian's php.ini and the
//! pool defaults of Debian's `www.conf`. The only additions are test plumbing: files
//! under the test's directory and an access log naming each request's script, so a
//! test can tell which requests reached PHP at all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::process::wait_for_port;

/// The php-fpm executable: `$WEBTOON_TEST_PHP_FPM`, or Debian's
/// `/usr/sbin/php-fpm<version>`.
pub fn php_fpm_binary() -> PathBuf {
    if let Ok(path) = std::env::var("WEBTOON_TEST_PHP_FPM") {
        return PathBuf::from(path);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/sbin")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("php-fpm"))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .expect("php-fpm is missing: tests/run.sh installs Debian's php-fpm")
}

/// One running php-fpm master with its workers, killed with them when dropped.
pub struct PhpFpm {
    /// Name of its pool, used for its files.
    pub name: String,
    /// Where its pool listens.
    pub addr: SocketAddr,
    child: Option<Child>,
    dir: PathBuf,
}

impl PhpFpm {
    /// Starts a pool named `name` listening on `addr`; its files go to `dir/<name>`.
    pub fn start(dir: &Path, name: &str, addr: SocketAddr) -> PhpFpm {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("php-fpm directory");
        let d = dir.display();
        // As root, php-fpm's workers must run as another user: Debian's pool user.
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user = www-data\ngroup = www-data\n"
        } else {
            ""
        };
        let conf = format!(
            "[global]\npid = {d}/php-fpm.pid\nerror_log = {d}/error.log\ndaemonize = no\n\n\
             [{name}]\nlisten = {addr}\n{user}\
             pm = dynamic\npm.max_children = 5\npm.start_servers = 2\n\
             pm.min_spare_servers = 1\npm.max_spare_servers = 3\n\
             access.log = {d}/access.log\n\
             access.format = \"%R %m %{{REQUEST_URI}}e script=%f status=%s\"\n"
        );
        let conf_path = dir.join("php-fpm.conf");
        std::fs::write(&conf_path, conf).expect("write php-fpm.conf");
        std::fs::write(dir.join("access.log"), "").expect("access log");
        let mut command = Command::new(php_fpm_binary());
        command
            .arg("--nodaemonize")
            .arg("--fpm-config")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group: killing the pool kills its workers too, which
        // would otherwise keep accepting on the inherited socket.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("php-fpm starts");
        let mut fpm = PhpFpm {
            name: name.to_string(),
            addr,
            child: Some(child),
            dir,
        };
        if !wait_for_port(addr, Duration::from_secs(10)) {
            let exited = fpm.child.as_mut().map(Child::try_wait);
            panic!(
                "php-fpm does not listen on {addr} ({exited:?}):\n{}",
                fpm.log("error.log")
            );
        }
        fpm
    }

    /// A file of its directory, empty when missing.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// The lines of its access log: `client method request-uri script=... status=...`.
    pub fn access_lines(&self) -> Vec<String> {
        self.log("access.log").lines().map(str::to_string).collect()
    }

    /// Requests it has answered so far.
    pub fn requests(&self) -> usize {
        self.access_lines().len()
    }

    /// Kills the master and every worker at once, as when the pod dies.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) takes plain integers; the group is led by our own
                // unreaped child, so its id cannot have been reused.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
            let _ = child.wait();
            // The workers hold the listening socket until the kernel has ended them.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200))
                .is_ok()
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "killed php-fpm {} still accepts connections",
                    self.name
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && let Ok(pgid) = libc::pid_t::try_from(child.id())
        {
            // SAFETY: as in kill().
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            let _ = child.wait();
        }
    }
}
