//! Servers of our own for fault tests: a Redis and a PostgreSQL on free loopback ports that a
//! test may kill and start again, an SMTP sink, and a TCP forwarder that can cut the network.
//! Only what these structs started is ever stopped (by the pid or data directory they hold);
//! the machine's shared PostgreSQL and Redis are never touched.

use std::{
    io::BufRead,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use tempfile::TempDir;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Waits until something accepts TCP connections on `port`.
fn wait_for_port(port: u16, within: Duration, what: &str) {
    crate::helpers::eventually_blocking(&format!("{what} on port {port}"), within, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether a Redis keeps its data across a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Append-only file, fsync on every write: a `kill -9` loses nothing.
    Aof,
    /// Memory only: a restart comes back empty.
    None,
}

/// A `redis-server` of our own.
pub struct RedisServer {
    pub port: u16,
    persistence: Persistence,
    dir: TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(persistence: Persistence) -> Self {
        let mut server = Self {
            port: free_port(),
            persistence,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port, with the same data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let appendonly = match self.persistence {
            Persistence::Aof => "yes",
            Persistence::None => "no",
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10), "redis-server");
    }

    /// SIGKILL: no shutdown, no final write.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Debian installs PostgreSQL's server programs under /usr/lib/postgresql/<major>/bin, off
/// the PATH: the newest major installed.
fn pg_bin() -> PathBuf {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server programs (apt-get install postgresql)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    majors.sort();
    majors
        .pop()
        .expect("a PostgreSQL major version under /usr/lib/postgresql")
        .1
}

/// A PostgreSQL cluster of our own (initdb'd as the postgres user, which PostgreSQL requires
/// since we run as root), with trust authentication on loopback.
pub struct PostgresServer {
    pub port: u16,
    // Kept for its lifetime: removed when the server is dropped.
    _root: TempDir,
    data: PathBuf,
    running: bool,
}

fn as_postgres(program: &str) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(pg_bin().join(program));
    command
}

fn run_ok(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PostgresServer {
    pub fn start() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        // The postgres user must reach its data directory inside our temporary one.
        std::fs::set_permissions(root.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let data = root.path().join("pg");
        run_ok(
            Command::new("install")
                .args(["-d", "-o", "postgres", "-m", "0700"])
                .arg(&data),
            "install -d",
        );
        run_ok(
            as_postgres("initdb")
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"])
                .arg(&data),
            "initdb",
        );
        let mut server = Self {
            port: free_port(),
            _root: root,
            data,
            running: false,
        };
        server.restart();
        server
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts it (again) on the same port and data directory; returns once it takes
    /// connections.
    pub fn restart(&mut self) {
        assert!(!self.running, "postgres already running");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.data.display()
        );
        run_ok(
            as_postgres("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.data.join("server.log"))
                .args(["-o", &options, "-w", "-t", "30", "start"])
                .stdout(Stdio::null()),
            "pg_ctl start",
        );
        self.running = true;
    }

    /// `pg_ctl stop -m immediate`: every backend is killed at once, as in a crash; recovery
    /// runs at the next start.
    pub fn crash(&mut self) {
        if self.running {
            run_ok(
                as_postgres("pg_ctl")
                    .arg("-D")
                    .arg(&self.data)
                    .args(["-m", "immediate", "-w", "stop"])
                    .stdout(Stdio::null()),
                "pg_ctl stop",
            );
            self.running = false;
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            let _ = as_postgres("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// tests/support/smtp_sink.py of our own (the one a server-stack test gets is not ours to
/// stop): stores each message it accepts as `<dir>/<n>.eml`.
pub struct SmtpSink {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl SmtpSink {
    pub fn start(dir: &Path) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (apt-get install python3-aiosmtpd)");
        let stdout = child.stdout.take().expect("sink stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the SMTP sink prints its port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the SMTP sink did not start: {line:?}"));
        Self {
            port,
            dir: dir.to_path_buf(),
            child,
        }
    }

    /// The messages received so far: (file name, raw text), in order of arrival.
    pub fn messages(&self) -> Vec<(String, String)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap_or_default(),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// The `To:` of every message received.
    pub fn recipients(&self) -> Vec<String> {
        self.messages()
            .iter()
            .filter_map(|(_, eml)| {
                eml.lines()
                    .find_map(|l| l.strip_prefix("To: "))
                    .map(str::to_owned)
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// What a `Forwarder` does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Bytes flow both ways.
    Up,
    /// Nothing listens on the port (connection refused); open connections are closed.
    Refused,
    /// Connections are accepted but nothing ever comes back; open connections freeze.
    Blackhole,
}

/// A TCP forwarder on a loopback port with a switch: the network between a process and one of
/// its dependencies, to cut at will.
pub struct Forwarder {
    pub port: u16,
    link: Arc<watch::Sender<Link>>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (link, _) = watch::channel(Link::Up);
        let link = Arc::new(link);
        let task = tokio::spawn(accept_loop(listener, port, target, link.clone()));
        Self { port, link, task }
    }

    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.set(Link::Refused);
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, port: u16, target: SocketAddr, link: Arc<watch::Sender<Link>>) {
    let mut rx = link.subscribe();
    let mut listener = Some(listener);
    loop {
        let state = *rx.borrow_and_update();
        match (state, listener.take()) {
            (Link::Refused, open) => {
                // The listener is closed: connections are refused until the link is back.
                drop(open);
                if rx.changed().await.is_err() {
                    return;
                }
            }
            (_, None) => {
                listener = Some(
                    TcpListener::bind(("127.0.0.1", port))
                        .await
                        .expect("re-bind the forwarder's port"),
                );
            }
            (_, Some(l)) => {
                tokio::select! {
                    accepted = l.accept() => {
                        if let Ok((client, _)) = accepted {
                            tokio::spawn(forward(client, target, link.subscribe()));
                        }
                        listener = Some(l);
                    }
                    changed = rx.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        listener = Some(l);
                    }
                }
            }
        }
    }
}

/// One connection, copied both ways while the link is up. In a black hole the bytes wait (a
/// network partition: nothing arrives, and what was sent is delivered once the link is back);
/// refused closes it.
async fn forward(client: TcpStream, target: SocketAddr, mut rx: watch::Receiver<Link>) {
    if !link_up(&mut rx).await {
        return;
    }
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let there = pump(client_read, server_write, rx.clone());
    let back = pump(server_read, client_write, rx);
    tokio::join!(there, back);
}

/// Waits until the link is up (true) or refused (false).
async fn link_up(rx: &mut watch::Receiver<Link>) -> bool {
    match rx.wait_for(|l| *l != Link::Blackhole).await {
        Ok(link) => *link == Link::Up,
        Err(_) => false,
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<Link>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !link_up(&mut rx).await {
            return;
        }
        // Reading is cancel-safe: a change of link interrupts it without losing bytes.
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
            _ = rx.changed() => continue,
        };
        if !link_up(&mut rx).await {
            return;
        }
        tokio::select! {
            written = to.write_all(&buf[..n]) => if written.is_err() { return },
            _ = rx.wait_for(|l| *l == Link::Refused) => return,
        }
    }
}
