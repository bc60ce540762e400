//! Erasure that reaches every copy: a backup taken before a deletion cannot reveal the
//! deleted account once its epoch has passed (the control account still can), a restored
//! backup does not bring the deleted back, a crash in the middle of a rotation loses no live
//! key, and the files of a PostgreSQL cluster keep nothing readable of a deleted account.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use erasure::{
    clock::{Clock, ManualClock},
    config::Settings,
    domain::{Email, VseeId},
    startup::{Application, Roles},
    vault::{KeyOwner, SymmetricKey, rotation},
};
use erasure_testkit::{ServerSpace, ServerUrls};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const GONE: (&str, &str) = ("gone01", "ottoline.vantablack@example.org");
const KEPT: (&str, &str) = ("kept01", "kept01@example.org");
const ONE_DAY_EPOCHS: (&str, &str) = ("ERASURE_KEYS__EPOCH_DAYS", "1");

/// A copy of the database as a backup holds it: a SQLite file (`VACUUM INTO`) or a pg_dump.
enum Backup {
    Sqlite(PathBuf),
    Postgres(PathBuf),
}

async fn take_backup(app: &TestApp) -> Backup {
    let path = app
        .data_dir()
        .join(format!("backup-{}", uuid::Uuid::new_v4().simple()));
    match app.stack {
        Stack::Sqlite => {
            app.execute(&format!("VACUUM INTO '{}'", path.display())).await;
            Backup::Sqlite(path)
        }
        Stack::Server => {
            let out = Command::new("pg_dump")
                .args(["--no-owner", "--no-privileges", "-f"])
                .arg(&path)
                .arg(&app.vars["ERASURE_DATABASE__URL"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            Backup::Postgres(path)
        }
    }
}

/// A database the backup was restored into, and the variables that point a process at it
/// (the same data directory, hence the same key store and tombstone journal).
struct Restored {
    vars: HashMap<String, String>,
    _space: Option<ServerSpace>,
}

async fn restore(app: &TestApp, backup: &Backup) -> Restored {
    let mut vars = app.vars.clone();
    match backup {
        Backup::Sqlite(path) => {
            let restored = app.data_dir().join("restored.db");
            std::fs::copy(path, &restored).unwrap();
            vars.insert(
                "ERASURE_DATABASE__URL".into(),
                format!("sqlite://{}?mode=rwc", restored.display()),
            );
            Restored { vars, _space: None }
        }
        Backup::Postgres(path) => {
            let space = ServerSpace::provision(&server_urls().unwrap(), "restored")
                .await
                .unwrap();
            let out = Command::new("psql")
                .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &space.database_url, "-f"])
                .arg(path)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            // Its own queue too: the test's app must not work the restored database's jobs.
            vars.extend(space.vars().into_iter().map(|(k, v)| (k.to_owned(), v)));
            Restored {
                vars,
                _space: Some(space),
            }
        }
    }
}

async fn connect(url: &str) -> sea_orm::DatabaseConnection {
    sea_orm::Database::connect(url).await.unwrap()
}

async fn rows(conn: &sea_orm::DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    conn.query_all_raw(Statement::from_string(
        conn.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap()
}

/// The epoch keys the key store still has.
fn epoch_keys(data_dir: &Path) -> Vec<SymmetricKey> {
    std::fs::read_dir(data_dir.join("keys"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".key"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap();
            SymmetricKey::from_bytes(&hex::decode(text.trim()).unwrap()).unwrap()
        })
        .collect()
}

/// Every data key that any existing epoch key unwraps from the `data_keys` rows of the given
/// databases: all that an attacker holding them and the key store could use.
async fn every_readable_data_key(
    data_dir: &Path,
    databases: &[&sea_orm::DatabaseConnection],
) -> Vec<SymmetricKey> {
    let epochs = epoch_keys(data_dir);
    let mut found = Vec::new();
    for db in databases {
        for row in rows(db, "SELECT owner, wrapped FROM data_keys").await {
            let owner: String = row.try_get("", "owner").unwrap();
            let wrapped: String = row.try_get("", "wrapped").unwrap();
            for epoch in &epochs {
                if let Ok(bytes) = epoch.open(&format!("data_keys.wrapped|{owner}"), &wrapped) {
                    found.push(SymmetricKey::from_bytes(&bytes).unwrap());
                }
            }
        }
    }
    found
}

/// The account's id and sealed email in `db`, found by its blind index.
async fn sealed_email(app: &TestApp, db: &sea_orm::DatabaseConnection, vsee_id: &str) -> (i64, String) {
    let mut found = rows(
        db,
        &format!("SELECT id, email FROM accounts WHERE {}", app.account_is(vsee_id)),
    )
    .await;
    assert_eq!(found.len(), 1, "{vsee_id} is in that database");
    let row = found.remove(0);
    (row.try_get("", "id").unwrap(), row.try_get("", "email").unwrap())
}

async fn delete_through_the_api(app: &TestApp, (vsee_id, email): (&str, &str)) {
    let device = app.device();
    assert_eq!(device.log_in(vsee_id, PASSWORD).await.status(), StatusCode::OK);
    let receipt = device.request_deletion(email).await;
    app.wait_for_status(&receipt, "completed").await;
}

/// Past the next epoch, the rotation wraps the live keys anew and destroys the old epoch key
/// (no settling wait: no other process is storing keys).
async fn rotate_into_the_next_epoch(app: &TestApp) -> rotation::RotationReport {
    app.clock.advance(chrono::Duration::days(2));
    let report = rotation::rotate(&app.state.db, &app.state.vault, app.clock.now(), Duration::ZERO)
        .await
        .unwrap();
    assert!(!report.destroyed.is_empty(), "{report:?}");
    report
}

async fn a_backup_older_than_the_epoch_cannot_reveal_a_deleted_account(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[ONE_DAY_EPOCHS]).await;
    app.seed_small(GONE.0, GONE.1).await;
    app.seed_small(KEPT.0, KEPT.1).await;
    let backup = take_backup(&app).await;
    delete_through_the_api(&app, GONE).await;
    let report = rotate_into_the_next_epoch(&app).await;
    assert!(report.rewrapped > 0, "{report:?}");

    let restored = restore(&app, &backup).await;
    let dump = connect(&restored.vars["ERASURE_DATABASE__URL"]).await;
    let live = connect(&app.vars["ERASURE_DATABASE__URL"]).await;
    let (gone_id, gone_sealed) = sealed_email(&app, &dump, GONE.0).await;
    let (kept_id, kept_sealed) = sealed_email(&app, &dump, KEPT.0).await;
    // The backup holds the deleted account's wrapped key; the live database no longer does.
    let owned_by_gone = format!("SELECT owner FROM data_keys WHERE owner = 'account:{gone_id}'");
    assert_eq!(rows(&dump, &owned_by_gone).await.len(), 1);
    assert_eq!(rows(&live, &owned_by_gone).await.len(), 0);

    // With the backup and every key that still exists, try everything.
    let keys = every_readable_data_key(&app.data_dir(), &[&dump, &live]).await;
    assert!(!keys.is_empty());
    let opens = |id: i64, sealed: &str| -> Vec<String> {
        keys.iter()
            .filter_map(|k| k.open_text(&format!("accounts.email|account:{id}"), sealed).ok())
            .collect()
    };
    assert_eq!(
        opens(gone_id, &gone_sealed),
        Vec::<String>::new(),
        "the deleted account stays unreadable"
    );
    assert_eq!(opens(kept_id, &kept_sealed), [KEPT.1], "the control still reads");
}

async fn a_restored_backup_does_not_bring_a_deleted_account_back(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[]).await;
    app.seed_small(GONE.0, GONE.1).await;
    app.seed_small(KEPT.0, KEPT.1).await;
    let backup = take_backup(&app).await;
    delete_through_the_api(&app, GONE).await;

    let restored = restore(&app, &backup).await;
    let url = restored.vars["ERASURE_DATABASE__URL"].clone();
    let before = connect(&url).await;
    let gone_rows = format!("SELECT id FROM accounts WHERE {}", app.account_is(GONE.0));
    assert_eq!(
        rows(&before, &gone_rows).await.len(),
        1,
        "the backup has the account"
    );

    // The service starts on the restored database: the guard runs before the port opens.
    let settings = Settings::load_from(&restored.vars).unwrap();
    let started = Application::build(
        settings,
        Arc::new(ManualClock::starting_now()),
        Roles {
            http: true,
            workers: false,
        },
    )
    .await
    .unwrap();
    let address = format!("http://127.0.0.1:{}", started.port().unwrap());
    let state = started.state().clone();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(started.run_until_stopped(shutdown.clone()));

    // The very first requests: the deleted account is gone, the other one is there.
    let gone = Device::at(&address).log_in(GONE.0, PASSWORD).await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    let kept = Device::at(&address).log_in(KEPT.0, PASSWORD).await;
    assert_eq!(kept.status(), StatusCode::OK);
    assert_eq!(rows(&before, &gone_rows).await.len(), 0);

    // The ledger of the restored database records the second deletion, as the system's.
    let id = VseeId::parse(GONE.0).unwrap();
    let entries = rows(
        &before,
        &format!(
            "SELECT channel, actor_kind FROM ledger_entries WHERE event = 'account_deleted' AND subject = '{}'",
            state.vault.blind_vsee_id(&id)
        ),
    )
    .await;
    let facets: Vec<(String, String)> = entries
        .iter()
        .map(|r| {
            (
                r.try_get("", "channel").unwrap(),
                r.try_get("", "actor_kind").unwrap(),
            )
        })
        .collect();
    assert_eq!(facets, [("restore-guard".to_owned(), "system".to_owned())]);
    // Dealt with: a second look finds the database and the journal agreeing.
    assert!(matches!(
        erasure::services::restore_guard::inspect(state.env())
            .await
            .unwrap(),
        erasure::services::restore_guard::Inspection::Consistent
    ));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_erasure"))
        .arg("restore-guard")
        .env_clear()
        .envs(&restored.vars)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to do"));
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}

async fn a_crash_in_the_middle_of_a_rotation_loses_no_live_key(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[]).await;
    let vault = &app.state.vault;
    // Keys made under an epoch long gone, so that the next rotation has them all to move.
    let old = vault.epoch_at(app.clock.now()) - 3;
    vault.store().create(old).unwrap();
    let accounts = ["crash01", "crash02", "crash03"];
    for name in accounts {
        app.seed_small(name, &format!("{name}@example.org")).await;
    }
    // Enough keys for the rotation to take a while: addresses awaiting a confirmation.
    for batch in 0..8 {
        let tx = app.state.db.begin_write().await.unwrap();
        for i in 0..500 {
            let owner = KeyOwner::Confirmation(format!("filler-{batch}-{i}"));
            vault.create_key(&tx, &owner, app.clock.now()).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let total = app.count("SELECT COUNT(*) FROM data_keys").await;
    let moved_sql = format!("SELECT COUNT(*) FROM data_keys WHERE epoch <> {old}");

    // `erasure keys rotate` in a process of its own, killed once some keys have moved.
    let mut rotating = Command::new(env!("CARGO_BIN_EXE_erasure"))
        .args(["keys", "rotate"])
        .env_clear()
        .envs(&app.vars)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let moved = app.count(&moved_sql).await;
        if moved > 0 {
            rotating.kill().unwrap();
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the rotation never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = rotating.wait().unwrap();
    let moved = app.count(&moved_sql).await;
    assert!(
        !status.success() && moved > 0 && moved < total,
        "killed in the middle: {moved} of {total} keys moved ({status})"
    );
    figure!("rotation killed after moving {moved} of {total} keys");

    // Both epoch keys are still there; every live account logs in, and every key unwraps.
    assert!(vault.store().load(old).unwrap().is_some());
    for name in accounts {
        assert_eq!(app.device().log_in(name, PASSWORD).await.status(), StatusCode::OK);
    }
    // The next run finishes the move (the old key waits for its settling time)...
    let again = rotation::rotate(&app.state.db, vault, app.clock.now(), rotation::SETTLE)
        .await
        .unwrap();
    assert_eq!(again.rewrapped as i64, total - moved);
    assert_eq!(again.settling, [old]);
    // ...and once settled, it goes.
    let settled = rotation::rotate(&app.state.db, vault, app.clock.now(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((settled.rewrapped, settled.destroyed.clone()), (0, vec![old]));
    assert!(vault.store().load(old).unwrap().is_none());
    for name in accounts {
        assert_eq!(app.device().log_in(name, PASSWORD).await.status(), StatusCode::OK);
    }
    let owners = app.strings("SELECT owner FROM data_keys").await;
    for owner in &owners {
        let owner = match owner.split_once(':') {
            Some(("account", id)) => KeyOwner::Account(id.parse().unwrap()),
            Some(("confirmation", id)) => KeyOwner::Confirmation(id.to_owned()),
            other => panic!("unexpected owner {other:?}"),
        };
        assert!(vault.key(&app.state.db.conn, &owner).await.unwrap().is_some());
    }
}

async fn rows_from_before_encryption_are_sealed_while_the_service_serves(stack: Stack) {
    use erasure::{
        domain::{AccountStatus, IntakeDoor, Plan, TicketStatus},
        models::{account, ticket, ticket_note, ticket_reply},
    };
    use sea_orm::{ActiveModelTrait, Set};
    // Serving, with no worker of its own: the command below is what seals.
    let app = spawn_on(
        stack,
        Roles {
            http: true,
            workers: false,
        },
        &[],
    )
    .await;
    let conn = &app.state.db.conn;
    let now = app.clock.now();
    let hash =
        erasure::services::accounts::hash_password(&erasure::domain::Password::parse(PASSWORD).unwrap())
            .await
            .unwrap();
    let old = account::ActiveModel {
        vsee_id: Set("before01".into()),
        email: Set("before01@example.org".into()),
        first_name: Set("Winifred".into()),
        last_name: Set("Oldrow".into()),
        password_hash: Set(hash),
        plan: Set(Plan::Free),
        offline_notification_email: Set(None),
        offline_notification_enabled: Set(false),
        avatar_file: Set(None),
        status: Set(AccountStatus::Active),
        subscription_cancelled_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_login_at: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
    app.execute(&format!(
        "INSERT INTO devices (account_id, name, platform, push_token, last_seen_at) \
         VALUES ({}, 'Winifred''s phone', 'ios', 'push-before01', CURRENT_TIMESTAMP)",
        old.id
    ))
    .await;
    let ticket = ticket::ActiveModel {
        reference: Set("T-BEFORE01".into()),
        message_id: Set("<before01@mail.example>".into()),
        door: Set(IntakeDoor::Pipe),
        sender: Set("before01@example.org".into()),
        subject: Set("Close it".into()),
        body: Set("Please close Winifred's account".into()),
        account_id: Set(Some(old.id)),
        status: Set(TicketStatus::Open),
        received_at: Set(now),
        due_at: Set(now + chrono::Duration::days(30)),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
    ticket_reply::ActiveModel {
        ticket_id: Set(ticket.id),
        message_id: Set("<before02@mail.example>".into()),
        door: Set(IntakeDoor::Pipe),
        sender: Set("before01@example.org".into()),
        subject: Set("Re: Close it".into()),
        body: Set("Winifred again".into()),
        received_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
    assert!(
        crate::staff::create_staff(&app, "agent@staff.example", "agent", crate::staff::STAFF_PASSWORD)
            .status
            .success()
    );
    let agent: i64 = app.strings("SELECT CAST(id AS TEXT) FROM staff").await[0]
        .parse()
        .unwrap();
    ticket_note::ActiveModel {
        ticket_id: Set(ticket.id),
        staff_id: Set(agent),
        kind: Set("note".into()),
        body: Set("called Winifred".into()),
        notice_id: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
    erasure::models::quarantined_mail::ActiveModel {
        received_at: Set(now),
        door: Set(IntakeDoor::Pipe),
        reason: Set("it has no From address".into()),
        raw: Set(b"Subject: from Winifred\r\n\r\nunsigned".to_vec()),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
    let clear = [
        "SELECT COUNT(*) FROM quarantined_mail WHERE raw LIKE '%from Winifred%'",
        "SELECT COUNT(*) FROM accounts WHERE email = 'before01@example.org'",
        "SELECT COUNT(*) FROM devices WHERE push_token = 'push-before01'",
        "SELECT COUNT(*) FROM tickets WHERE sender = 'before01@example.org'",
        "SELECT COUNT(*) FROM ticket_replies WHERE body = 'Winifred again'",
        "SELECT COUNT(*) FROM ticket_notes WHERE body = 'called Winifred'",
    ];
    for sql in clear {
        assert_eq!(app.count(sql).await, 1, "{sql}");
    }
    // Read as they are meanwhile.
    assert_eq!(
        app.device().log_in("before01", PASSWORD).await.status(),
        StatusCode::OK
    );

    let out = app.cli(&["keys", "seal"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    // The account, its device, the ticket, its reply, its note and the quarantined message.
    assert!(said.contains("sealed 6 row(s)"), "{said}");
    for sql in clear {
        assert_eq!(app.count(sql).await, 0, "{sql}");
    }
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM accounts WHERE {}",
            app.account_is("before01")
        ))
        .await,
        1,
        "found by its blind index"
    );
    // Everything reads the same, opened.
    assert_eq!(
        app.device().log_in("before01", PASSWORD).await.status(),
        StatusCode::OK
    );
    let opened = app.tickets().await;
    assert_eq!(
        (opened[0].sender.as_str(), opened[0].body.as_str()),
        ("before01@example.org", "Please close Winifred's account")
    );
    let replies = erasure::services::intake::replies_of(app.state.env(), ticket.id)
        .await
        .unwrap();
    assert_eq!(replies[0].body, "Winifred again");
    let notes = erasure::services::tickets::notes(app.state.env(), ticket.id)
        .await
        .unwrap();
    assert_eq!(notes[0].body, "called Winifred");
    let kept = erasure::services::intake::quarantine::list(app.state.env(), 10)
        .await
        .unwrap();
    assert_eq!(kept[0].bytes, 34, "the size as it came");
    let raw = erasure::services::intake::quarantine::find(app.state.env(), kept[0].id)
        .await
        .unwrap()
        .raw;
    assert_eq!(raw, b"Subject: from Winifred\r\n\r\nunsigned");
    // Resumable: a second run finds nothing left.
    let again = app.cli(&["keys", "seal"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("sealed 0 row(s) and 0 file(s)"));
}

crate::on_both_stacks!(
    rows_from_before_encryption_are_sealed_while_the_service_serves,
    a_backup_older_than_the_epoch_cannot_reveal_a_deleted_account,
    a_restored_backup_does_not_bring_a_deleted_account_back,
    a_crash_in_the_middle_of_a_rotation_loses_no_live_key,
);

/// A PostgreSQL cluster of the test's own (initdb as the postgres user, on a free port), so
/// the test can read its files; stopped and removed when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of the server's programs, as postgres when the test runs as root (initdb refuses
    /// to run as root).
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if nix_is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("PostgreSQL's server binaries");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster { dir, bin, port };
        std::fs::create_dir(cluster.data()).unwrap();
        if nix_is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(cluster.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let owner = Command::new("chown")
                .arg("postgres:postgres")
                .arg(cluster.data())
                .status()
                .unwrap();
            assert!(owner.success());
        }
        let data = cluster.data().display().to_string();
        cluster.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        let options = format!(
            "-p {} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.port
        );
        let log = format!("{data}/server.log");
        cluster.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        cluster
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(erasure_server_stack),
    ignore = "server stack: set ERASURE_TEST_DATABASE_URL and ERASURE_TEST_REDIS_URL"
)]
async fn a_postgresql_cluster_keeps_nothing_readable_of_a_deleted_account() {
    let Some(urls) = server_urls() else { return };
    let cluster = Cluster::start();
    // A database of the test's in that cluster (and a Redis prefix of its own).
    let space = ServerSpace::provision(
        &ServerUrls {
            database: cluster.url(),
            redis: urls.redis.clone(),
        },
        "residue",
    )
    .await
    .unwrap();
    let mut extra: Vec<(&str, String)> = space.vars().to_vec();
    extra.push((ONE_DAY_EPOCHS.0, ONE_DAY_EPOCHS.1.to_owned()));
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_on(Stack::Server, Roles::ALL, &extra).await;
    assert!(app.vars["ERASURE_DATABASE__URL"].contains(&cluster.port.to_string()));
    let gone = app.seed_small(GONE.0, GONE.1).await;
    app.seed_small(KEPT.0, KEPT.1).await;
    // The deleted account's data key, unwrapped with the key store, before it goes.
    let wrapped = app
        .strings(&format!(
            "SELECT wrapped FROM data_keys WHERE owner = 'account:{}'",
            gone.account_id
        ))
        .await
        .remove(0);
    let place = format!("data_keys.wrapped|account:{}", gone.account_id);
    let raw = epoch_keys(&app.data_dir())
        .iter()
        .find_map(|k| k.open(&place, &wrapped).ok())
        .expect("the data key unwraps")
        .to_vec();

    delete_through_the_api(&app, GONE).await;
    rotate_into_the_next_epoch(&app).await;
    app.execute("CHECKPOINT").await;

    let files = cluster.data();
    // The scan reads the heap: the other account's blind index is there.
    let kept_index = app.state.vault.blind_email(&Email::parse(KEPT.1).unwrap());
    assert!(
        !crate::pipeline::files_containing(&files, kept_index.as_bytes()).is_empty(),
        "the scan sees the data"
    );
    let mut needles: Vec<Vec<u8>> = [GONE.0, GONE.1, "Ottoline", "wrote message"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    needles.push(hex::encode(&raw).into_bytes());
    {
        use base64::Engine;
        needles.push(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(&raw)
                .into_bytes(),
        );
    }
    needles.push(raw);
    for needle in &needles {
        let hits = crate::pipeline::files_containing(&files, needle);
        assert!(
            hits.is_empty(),
            "{:?} found in {hits:?}",
            String::from_utf8_lossy(needle)
        );
    }
    // Its wrapped form may linger in old WAL, but under an epoch key that no longer exists.
    assert!(
        epoch_keys(&app.data_dir())
            .iter()
            .all(|k| k.open(&place, &wrapped).is_err())
    );
}
