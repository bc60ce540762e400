//! A real headless Chromium, driven through chromedriver's W3C WebDriver protocol (JSON over
//! loopback HTTP: a dozen commands, no client crate needed). The driver is the one named by
//! ERASURE_TEST_CHROMEDRIVER, which `.ci/setup` installs; the tests that need it are ignored,
//! with the reason, when it is not named.

use std::{path::PathBuf, process::Stdio, time::Duration};

use base64::Engine;
use serde_json::{Value, json};

use super::eventually;

/// One browser at a time: a Chromium beside a suite that fills both cores is slow enough
/// already, and two of them made the console's htmx swaps miss their waits.
static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// chromedriver on a free port, and one browser session on it; both end when dropped.
pub struct Browser {
    _turn: tokio::sync::SemaphorePermit<'static>,
    driver: std::process::Child,
    base: String,
    session: String,
    http: reqwest::Client,
    /// Where screenshots are kept (target/console-screenshots), as test artefacts.
    shots: PathBuf,
}

/// The W3C key an element reference is returned under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    pub async fn start(shots_for: &str) -> Browser {
        let turn = ONE_AT_A_TIME
            .acquire()
            .await
            .expect("the browsers' semaphore is never closed");
        let driver_path =
            std::env::var("ERASURE_TEST_CHROMEDRIVER").expect("ERASURE_TEST_CHROMEDRIVER names chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let driver = std::process::Command::new(driver_path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        eventually("chromedriver to listen", Duration::from_secs(20), || async {
            http.get(format!("{base}/status")).send().await.ok().map(|_| ())
        })
        .await;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,900",
            "--disable-dev-shm-usage",
        ];
        let options = json!({ "args": args });
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": options,
                "goog:loggingPrefs": { "browser": "ALL" },
            } } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_owned();
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/console-screenshots")
            .join(shots_for);
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            _turn: turn,
            driver,
            base,
            session,
            http,
            shots,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"]["error"].is_string() {
            panic!("webdriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    pub async fn go(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.command(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {found}"))
            .to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Waits until the page's source contains `text`; fails showing the page it is on.
    pub async fn wait_for_text(&self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let source = self.source().await;
            if source.contains(text) {
                return source;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{text:?} not on {} within 30 s:\n{source}", self.url().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the window as `<name>.png` among the test's artefacts.
    pub async fn screenshot(&self, name: &str) {
        let png = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).unwrap();
    }

    /// What the browser's console said at level SEVERE (script errors, CSP violations).
    pub async fn console_errors(&self) -> Vec<String> {
        let url = format!("{}/session/{}/se/log", self.base, self.session);
        let answer: Value = self
            .http
            .post(url)
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// Ends the browser session (chromedriver then stops its Chromium), then chromedriver itself:
/// a plain HTTP request, as a destructor cannot await.
impl Drop for Browser {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let address = self.base.trim_start_matches("http://");
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n",
                self.session
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
