//! A real IMAP server: Debian's dovecot (`.ci/setup` installs dovecot-imapd; the tests that
//! need it run when ERASURE_TEST_DOVECOT names its binary), an instance of its own per test, in a temporary directory, on a free loopback port, run as `nobody` when
//! the tests run as root (dovecot refuses to run its users as root). One mailbox, `help`, with
//! the password `secret`. Stopped with SIGTERM when dropped.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use async_imap::{Client, Session};
use tokio::net::TcpStream;

use super::eventually;

pub const IMAP_USER: &str = "help";
pub const IMAP_PASSWORD: &str = "secret";

pub struct Dovecot {
    child: Child,
    pub port: u16,
    /// Removed when dropped, after the server stopped.
    _dir: tempfile::TempDir,
}

fn owner() -> (u32, u32, String, String) {
    let text = |args: &[&str]| {
        let out = Command::new("id").args(args).output().expect("id runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let uid: u32 = text(&["-u"]).parse().unwrap();
    if uid == 0 {
        (65534, 65534, "nobody".into(), "nogroup".into())
    } else {
        (
            uid,
            text(&["-g"]).parse().unwrap(),
            text(&["-un"]),
            text(&["-gn"]),
        )
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path, port: u16, (uid, gid): (u32, u32), (user, group): (&str, &str)) -> String {
    let d = dir.display();
    format!(
        "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {d}/run\nstate_dir = {d}/state\n\
         log_path = {d}/dovecot.log\ninstance_name = erasure-test-{port}\nssl = no\n\
         disable_plaintext_auth = no\nmail_location = maildir:{d}/mail/%n/Maildir\n\
         default_internal_user = {user}\ndefault_login_user = {user}\ndefault_internal_group = {group}\nfirst_valid_uid = {uid}\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%n {d}/users\n}}\n\
         userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/mail/%n\n}}\n\
         service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  \
         inet_listener imaps {{\n    port = 0\n  }}\n}}\nservice anvil {{\n  chroot =\n}}\n"
    )
}

impl Dovecot {
    pub async fn start() -> Dovecot {
        let binary = std::env::var("ERASURE_TEST_DOVECOT").unwrap_or_else(|_| "/usr/sbin/dovecot".into());
        assert!(
            Path::new(&binary).exists(),
            "{binary} is not there: run `bash .ci/setup` (it installs dovecot-imapd)"
        );
        let (uid, gid, user, group) = owner();
        // Not under the tests' own temporary root: `nobody` must reach it.
        let dir = tempfile::Builder::new()
            .prefix("erasure-dovecot-")
            .tempdir_in("/tmp")
            .unwrap();
        let port = free_port();
        let root: PathBuf = dir.path().to_path_buf();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        std::fs::write(
            root.join("users"),
            format!("{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n"),
        )
        .unwrap();
        std::fs::write(
            root.join("dovecot.conf"),
            config(&root, port, (uid, gid), (&user, &group)),
        )
        .unwrap();
        let chown = Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}"), &root.display().to_string()])
            .status()
            .unwrap();
        assert!(chown.success());
        let conf = root.join("dovecot.conf").display().to_string();
        let mut command = if uid == 65534 {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={user}"),
                &format!("--regid={group}"),
                "--clear-groups",
                &binary,
            ]);
            c
        } else {
            Command::new(&binary)
        };
        let child = command
            .args(["-F", "-c", &conf])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot starts");
        let dovecot = Dovecot {
            child,
            port,
            _dir: dir,
        };
        eventually(
            "dovecot accepts IMAP log-ins",
            Duration::from_secs(20),
            || async { dovecot.session().await.ok().map(|_| ()) },
        )
        .await;
        dovecot
    }

    pub fn url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.port)
    }

    pub async fn session(&self) -> anyhow::Result<Session<TcpStream>> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mut client = Client::new(tcp);
        client
            .read_response()
            .await?
            .ok_or_else(|| anyhow::anyhow!("no greeting"))?;
        client
            .login(IMAP_USER, IMAP_PASSWORD)
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))
    }

    /// Delivers `raw` to `mailbox`, as the MTA would.
    pub async fn append(&self, mailbox: &str, raw: &str) {
        let mut session = self.session().await.unwrap();
        session.append(mailbox, None, None, raw.as_bytes()).await.unwrap();
        session.logout().await.unwrap();
    }

    pub async fn create(&self, mailbox: &str) {
        let mut session = self.session().await.unwrap();
        session.create(mailbox).await.unwrap();
        session.logout().await.unwrap();
    }

    /// The UIDs in `mailbox` matching `query` (`ALL`, `UNSEEN`, …).
    pub async fn search(&self, mailbox: &str, query: &str) -> Vec<u32> {
        let mut session = self.session().await.unwrap();
        session.select(mailbox).await.unwrap();
        let mut uids: Vec<u32> = session.uid_search(query).await.unwrap().into_iter().collect();
        uids.sort_unstable();
        session.logout().await.unwrap();
        uids
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // TERM lets the master stop its children (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
