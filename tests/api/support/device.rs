//! A browser or API client of the test's server, and typed requests that keep tests readable.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use super::{PASSWORD, TestApp};

/// One browser or API client: its own cookie jar.
pub struct Device {
    pub client: Client,
    base: String,
}

impl TestApp {
    pub fn device(&self) -> Device {
        Device::at(&self.address)
    }

    /// Signs up a free account through the API and returns a device logged in to it.
    pub async fn signed_up_and_logged_in(&self, vsee_id: &str, email: &str) -> Device {
        let device = self.device();
        let r = device.sign_up(vsee_id, email).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        let r = device.log_in(vsee_id, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
        device
    }
}

impl Device {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn sign_up(&self, vsee_id: &str, email: &str) -> Response {
        self.client
            .post(self.url("/api/v1/accounts"))
            .json(&json!({ "vsee_id": vsee_id, "email": email, "password": PASSWORD,
                           "first_name": "Zebediah", "last_name": "Quillfeather" }))
            .send()
            .await
            .unwrap()
    }

    /// A device talking to the server at `address` (another process than the test's app).
    pub fn at(address: &str) -> Device {
        Device {
            client: Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: address.to_owned(),
        }
    }

    pub async fn log_in(&self, vsee_id: &str, password: &str) -> Response {
        self.client
            .post(self.url("/api/v1/sessions"))
            .json(&json!({ "vsee_id": vsee_id, "password": password }))
            .send()
            .await
            .unwrap()
    }

    pub async fn me(&self) -> Response {
        self.client.get(self.url("/api/v1/me")).send().await.unwrap()
    }

    pub async fn patch_me(&self, body: Value) -> Response {
        self.client
            .patch(self.url("/api/v1/me"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn confirm_deletion(&self, typed_email: &str) -> Response {
        self.client
            .post(self.url("/api/v1/me/deletion"))
            .json(&json!({ "confirm_email": typed_email }))
            .send()
            .await
            .unwrap()
    }

    pub async fn reauthenticate(&self, password: &str) -> Response {
        self.client
            .post(self.url("/api/v1/me/reauthentication"))
            .json(&json!({ "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// Confirms the deletion of this device's account and returns the receipt id.
    pub async fn request_deletion(&self, typed_email: &str) -> String {
        let r = self.confirm_deletion(typed_email).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = r.json().await.unwrap();
        body["receipt_id"].as_str().unwrap().to_owned()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn deletion_status(&self, receipt: &str) -> Response {
        self.client
            .get(self.url(&format!("/api/v1/deletions/{receipt}")))
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` as JSON to `path`.
    pub async fn post_json(&self, path: &str, body: Value) -> Response {
        self.client.post(self.url(path)).json(&body).send().await.unwrap()
    }

    pub async fn get_page(&self, path: &str) -> (StatusCode, String) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// Loads `form_page`, then posts `fields` plus the page's CSRF token to `action`.
    pub async fn submit_form(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let (_, html) = self.get_page(form_page).await;
        let token = csrf_token(&html);
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(fields);
        self.client
            .post(self.url(action))
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}

pub fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the page has a CSRF token") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

pub async fn error_code(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}
