//! A real S3-compatible server for the object-store tests: versitygw (built from its
//! Go module by e2e/tools/build.sh) with its posix backend on a temporary directory,
//! on 127.0.0.1 and a free port, with TLS from a CA made by the test, stopped on drop.
//! Also a TCP relay that can freeze a connection mid-transfer, to cut uploads off.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::TempDir;
use super::process::{free_port, terminate, wait_for_port};

/// The root account's access key id.
pub const ACCESS_KEY: &str = "WEBTOONTESTACCESSKEY";
/// The root account's secret key.
pub const SECRET_KEY: &str = "webtoon/test+secret/KEY0123456789abcdefXYZ";

/// The versitygw binary: `$WEBTOON_S3_SERVER`, which tests/run.sh sets.
pub fn server_binary() -> PathBuf {
    let path = std::env::var("WEBTOON_S3_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            panic!("WEBTOON_S3_SERVER is not set: run the tests with tests/run.sh, or set it to the path `e2e/tools/build.sh versitygw` prints")
        });
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs (apt install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// Makes a CA (`<name>.crt`, `<name>.key`) in `dir`.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
    dir.join(format!("{name}.crt"))
}

/// A server certificate for 127.0.0.1 signed by the CA `ca` in `dir`: (cert, key).
fn make_server_cert(dir: &Path, ca: &str) -> (PathBuf, PathBuf) {
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write san.ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
    (dir.join("server.crt"), dir.join("server.key"))
}

/// A running versitygw.
pub struct S3Server {
    /// Certificates, the backend's directory, logs.
    pub dir: TempDir,
    /// The posix backend's root: each directory in it is a bucket.
    pub root: PathBuf,
    /// `https://127.0.0.1:<port>` (or `http://` without TLS).
    pub endpoint: String,
    /// The address it listens on.
    pub address: SocketAddr,
    /// The CA that signed its certificate, when it speaks TLS.
    pub ca_file: Option<PathBuf>,
    child: Child,
}

impl S3Server {
    /// Starts versitygw on a free port, with TLS unless `tls` is false.
    pub fn start(name: &str, tls: bool) -> S3Server {
        let dir = TempDir::new(name);
        let root = dir.0.join("buckets");
        std::fs::create_dir_all(&root).expect("backend root");
        let port = free_port();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let mut command = Command::new(server_binary());
        command
            .arg("--port")
            .arg(address.to_string())
            .arg("--access")
            .arg(ACCESS_KEY)
            .arg("--secret")
            .arg(SECRET_KEY)
            .arg("--region")
            .arg("us-east-1");
        let ca_file = tls.then(|| {
            let ca = make_ca(&dir.0, "test-ca");
            let (cert, key) = make_server_cert(&dir.0, "test-ca");
            command.arg("--cert").arg(cert).arg("--key").arg(key);
            ca
        });
        let log = std::fs::File::create(dir.0.join("versitygw.log")).expect("log file");
        let child = command
            .arg("posix")
            .arg(&root)
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("versitygw starts");
        let mut server = S3Server {
            endpoint: format!("{}://{address}", if tls { "https" } else { "http" }),
            dir,
            root,
            address,
            ca_file,
            child,
        };
        if !wait_for_port(address, Duration::from_secs(60)) {
            let log = std::fs::read_to_string(server.dir.0.join("versitygw.log"));
            terminate(&mut server.child);
            panic!("versitygw did not listen on {address}: {log:?}");
        }
        server
    }

    /// Creates a bucket: a directory of the posix backend.
    pub fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root.join(bucket)).expect("bucket directory");
    }

    /// Multipart uploads begun and neither completed nor aborted in `bucket`.
    pub fn open_multipart_uploads(&self, bucket: &str) -> usize {
        let staging = self.root.join(bucket).join(".sgwtmp/multipart");
        let Ok(objects) = std::fs::read_dir(staging) else {
            return 0;
        };
        objects
            .flatten()
            .filter_map(|object| std::fs::read_dir(object.path()).ok())
            .map(|uploads| uploads.flatten().filter(|u| u.path().is_dir()).count())
            .sum()
    }

    /// The environment of `webtoon-operator backup` for `bucket` and `prefix`,
    /// trusting the server's CA.
    pub fn env(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("WEBTOON_S3_ENDPOINT", self.endpoint.clone()),
            ("WEBTOON_S3_BUCKET", bucket.to_string()),
            ("WEBTOON_S3_PREFIX", prefix.to_string()),
            ("WEBTOON_S3_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ];
        if let Some(ca) = &self.ca_file {
            env.push(("WEBTOON_S3_CA_FILE", ca.display().to_string()));
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// A TCP relay to a server that freezes the connection through which the bytes
/// sent towards the server, over all connections, pass `limit`: that connection then
/// forwards nothing more, while later connections pass freely.
pub struct FreezingRelay {
    /// Where clients connect.
    pub address: SocketAddr,
    frozen: mpsc::Receiver<()>,
    stop: Arc<AtomicBool>,
}

impl FreezingRelay {
    /// Relays 127.0.0.1:<free port> to `server`.
    pub fn start(server: SocketAddr, limit: u64) -> FreezingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let address = listener.local_addr().expect("relay address");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let (frozen_tx, frozen) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let froze_one = Arc::new(AtomicBool::new(false));
        // versitygw closes each connection after one request, so parts of an upload
        // travel on connections of their own: count them all.
        let sent = Arc::new(AtomicU64::new(0));
        let stop_accepting = stop.clone();
        std::thread::spawn(move || {
            while !stop_accepting.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(upstream) = TcpStream::connect(server) else {
                            continue;
                        };
                        relay(
                            client.try_clone().expect("clone"),
                            upstream.try_clone().expect("clone"),
                            Some((limit, sent.clone(), froze_one.clone(), frozen_tx.clone())),
                            stop_accepting.clone(),
                        );
                        relay(upstream, client, None, stop_accepting.clone());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FreezingRelay {
            address,
            frozen,
            stop,
        }
    }

    /// Waits until a connection has been frozen; false if none was within `within`.
    pub fn wait_frozen(&self, within: Duration) -> bool {
        self.frozen.recv_timeout(within).is_ok()
    }
}

impl Drop for FreezingRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

type Freeze = (u64, Arc<AtomicU64>, Arc<AtomicBool>, mpsc::Sender<()>);

/// Copies `from` to `to` on a thread; with `freeze`, stops forwarding (holding both
/// sockets open) once more than its limit has passed, if no connection froze yet.
fn relay(mut from: TcpStream, mut to: TcpStream, freeze: Option<Freeze>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(read) = from.read(&mut buffer) {
            if read == 0 {
                break;
            }
            if let Some((limit, sent, froze_one, frozen)) = &freeze {
                let total = sent.fetch_add(read as u64, Ordering::SeqCst) + read as u64;
                if total > *limit && !froze_one.swap(true, Ordering::SeqCst) {
                    let _ = frozen.send(());
                    while !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    break;
                }
            }
            if to.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
