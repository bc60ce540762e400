//! Staff: created from the command line (the password from standard input), sessions of their
//! own, roles as types, and the authorisation matrix of every staff operation.

use std::io::Write;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) const STAFF_PASSWORD: &str = "staff horse battery";

/// `erasure staff create`, the password on standard input.
pub(crate) fn create_staff(app: &TestApp, email: &str, role: &str, password: &str) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_erasure"))
        .args([
            "staff",
            "create",
            "--email",
            email,
            "--role",
            role,
            "--name",
            "Ada Staff",
        ])
        .env_clear()
        .envs(&app.vars)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) async fn staff_log_in(device: &Device, email: &str, password: &str) -> reqwest::Response {
    device
        .client
        .post(device.url("/api/v1/staff/sessions"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

/// A device logged in as a new staff member of `role`.
pub(crate) async fn staff_device(app: &TestApp, role: &str) -> Device {
    let email = format!("{role}@staff.example");
    let out = create_staff(app, &email, role, STAFF_PASSWORD);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let device = app.device();
    assert_eq!(
        staff_log_in(&device, &email, STAFF_PASSWORD).await.status(),
        StatusCode::OK
    );
    device
}

async fn call(device: &Device, method: Method, path: &str, body: Option<Value>) -> StatusCode {
    let mut request = device.client.request(method, device.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

async fn staff_have_sessions_of_their_own(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let agent = staff_device(&app, "agent").await;
    let me: Value = agent.get_json("/api/v1/staff/me").await;
    assert_eq!(
        (me["role"].as_str(), me["email"].as_str()),
        (Some("agent"), Some("agent@staff.example"))
    );
    let set_cookie = staff_log_in(&app.device(), "agent@staff.example", STAFF_PASSWORD).await;
    let cookie = set_cookie.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("erasure_staff=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Neither kind of session opens the other's doors.
    assert_eq!(agent.me().await.status(), StatusCode::UNAUTHORIZED);
    let user = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    let (status, code) = error_code(
        user.client
            .get(user.url("/api/v1/staff/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );

    // Wrong password, unknown email: one answer.
    let wrong = staff_log_in(&app.device(), "agent@staff.example", "not the password").await;
    let unknown = staff_log_in(&app.device(), "nobody@staff.example", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text().await.unwrap(), unknown.text().await.unwrap());

    // Sessions expire.
    app.clock.advance(chrono::Duration::hours(13));
    assert_eq!(
        call(&agent, Method::GET, "/api/v1/staff/me", None).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_disabled_staff_member_is_logged_out_at_once(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let auditor = staff_device(&app, "auditor").await;
    let out = app.cli(&["staff", "disable", "--email", "auditor@staff.example"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        call(&auditor, Method::GET, "/api/v1/staff/me", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        staff_log_in(&app.device(), "auditor@staff.example", STAFF_PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let out = app.cli(&["staff", "disable", "--email", "nobody@staff.example"]);
    assert_eq!(out.status.code(), Some(2), "an unknown member cannot be disabled");
}

async fn staff_creation_refuses_bad_input(stack: Stack) {
    let app = spawn_app_on(stack).await;
    for (email, role, password) in [
        ("a@staff.example", "root", STAFF_PASSWORD),
        ("not an email", "agent", STAFF_PASSWORD),
        ("b@staff.example", "agent", "12345678"),
    ] {
        let out = create_staff(&app, email, role, password);
        assert_eq!(out.status.code(), Some(2), "{email} {role}");
    }
    assert!(
        create_staff(&app, "c@staff.example", "admin", STAFF_PASSWORD)
            .status
            .success()
    );
    let again = create_staff(&app, "C@staff.example", "agent", STAFF_PASSWORD);
    assert_eq!(again.status.code(), Some(2), "one member per address");
    assert_eq!(app.count("SELECT COUNT(*) FROM staff").await, 1);
}

/// Who may call each staff operation: anonymous, an account holder, and each role. Every
/// staff operation has a row; adding one without a row fails `every_staff_operation_has_a_row`.
const MATRIX: &[(&str, &str, [u16; 5])] = &[
    //                                  anonymous user agent auditor admin
    ("GET", "/api/v1/staff/me", [401, 401, 200, 200, 200]),
    ("GET", "/api/v1/tickets", [401, 401, 200, 403, 200]),
    // No ticket 1 exists: whoever may look is told so; nobody else learns it.
    ("GET", "/api/v1/tickets/1", [401, 401, 404, 403, 404]),
    (
        "POST",
        "/api/v1/tickets/1/verification",
        [401, 401, 404, 403, 404],
    ),
    ("POST", "/api/v1/tickets/1/approval", [401, 401, 404, 403, 404]),
    ("POST", "/api/v1/tickets/1/rejection", [401, 401, 404, 403, 404]),
    ("POST", "/api/v1/tickets/1/assignment", [401, 401, 404, 403, 404]),
    ("POST", "/api/v1/tickets/1/notes", [401, 401, 404, 403, 404]),
    ("POST", "/api/v1/tickets/1/questions", [401, 401, 404, 403, 404]),
    ("POST", "/api/v1/tickets/1/extension", [401, 401, 404, 403, 404]),
    ("POST", "/api/v1/tickets/1/account", [401, 401, 422, 403, 422]),
    ("POST", "/api/v1/tickets/1/closure", [401, 401, 404, 403, 404]),
    ("POST", "/api/v1/tickets/1/merge", [401, 401, 404, 403, 404]),
    ("GET", "/api/v1/quarantine", [401, 401, 403, 403, 200]),
    ("GET", "/api/v1/quarantine/1", [401, 401, 403, 403, 404]),
    ("GET", "/api/v1/ledger", [401, 401, 403, 200, 200]),
    ("GET", "/api/v1/ledger/999999", [401, 401, 403, 404, 404]),
    (
        "GET",
        "/api/v1/ledger/export?format=ndjson",
        [401, 401, 403, 200, 200],
    ),
    ("POST", "/api/v1/ledger/lookup", [401, 401, 403, 200, 200]),
    (
        "POST",
        "/api/v1/tickets/1/deletion/cancellation",
        [401, 401, 404, 403, 404],
    ),
    ("GET", "/api/v1/processors/deliveries", [401, 401, 200, 403, 200]),
    ("GET", "/api/v1/processors", [401, 401, 403, 200, 200]),
    // No cool-off holds "nobody1": an admin is told so.
    (
        "POST",
        "/api/v1/admin/reuse-blocks/lift",
        [401, 401, 403, 403, 404],
    ),
];

/// Whether a concrete path is an instance of a spec path (`{id}` matches any one segment).
fn instance_of(path: &str, template: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let (a, b): (Vec<_>, Vec<_>) = (path.split('/').collect(), template.split('/').collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(p, t)| t.starts_with('{') || p == t)
}

async fn the_authorisation_matrix_holds(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let anonymous = app.device();
    let user = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    let agent = staff_device(&app, "agent").await;
    let auditor = staff_device(&app, "auditor").await;
    let admin = staff_device(&app, "admin").await;
    let callers = [&anonymous, &user, &agent, &auditor, &admin];
    for (method, path, expected) in MATRIX {
        for (caller, want) in callers.iter().zip(expected) {
            // A body every POST here accepts, so only authority decides.
            let body = (*method == "POST").then(
                || json!({ "reason": "checked by phone", "body": "a note", "days": 10, "assignee_id": null, "vsee_id": "nobody1", "into": "T-00000000", "identifier": "nobody1" }),
            );
            let status = call(caller, method.parse().unwrap(), path, body).await;
            assert_eq!(status.as_u16(), *want, "{method} {path}");
        }
    }

    // Every staff operation of the spec has a row.
    let spec = anonymous.get_json("/api/openapi.json").await;
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let secured = operation["security"].to_string().contains("StaffCookie");
            if secured {
                let path = format!("/api{path}");
                let method = method.to_uppercase();
                assert!(
                    MATRIX
                        .iter()
                        .any(|(m, p, _)| *m == method && instance_of(p, &path)),
                    "{method} {path} needs a row in the matrix"
                );
            }
        }
    }
}

crate::on_both_stacks!(
    staff_have_sessions_of_their_own,
    a_disabled_staff_member_is_logged_out_at_once,
    staff_creation_refuses_bad_input,
    the_authorisation_matrix_holds,
);
