//! The admin API as the CLI calls it (`smppd binds`, `message`, `unbind`): one
//! HTTP/1.1 request per connection, plain `http://` only (the listener has no TLS).

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{AUTHORIZATION, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use super::api;

/// How long one request may take, connect included.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Where the admin API is and the token to present.
#[derive(Clone)]
pub struct AdminClient {
    /// `host:port`.
    authority: String,
    /// The URL's path without its trailing `/` (empty at the root).
    base: String,
    token: String,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("authority", &self.authority)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    /// `url` as `http://host:port[/path]`.
    pub fn new(url: &str, token: &str) -> anyhow::Result<AdminClient> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("--admin-url {url:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!("--admin-url must be http://host:port (the admin listener has no TLS)");
        }
        let Some(authority) = uri.authority() else {
            bail!("--admin-url {url:?} has no host");
        };
        let authority = if authority.port().is_some() {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        if token.is_empty() {
            bail!("no token: pass --token or set SMPPD_ADMIN_TOKEN");
        }
        Ok(AdminClient {
            authority,
            base: uri.path().trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    pub async fn binds(&self) -> anyhow::Result<api::BindsReply> {
        self.call(Method::GET, "/api/binds").await
    }

    pub async fn message(&self, message_id: &str) -> anyhow::Result<api::Message> {
        if !super::message::valid_id(message_id) {
            bail!("{message_id:?} is not a message_id");
        }
        self.call(Method::GET, &format!("/api/messages/{message_id}"))
            .await
    }

    pub async fn unbind(&self, id: u64) -> anyhow::Result<api::UnbindReply> {
        self.call(Method::POST, &format!("/api/binds/{id}/unbind"))
            .await
    }

    async fn call<T: DeserializeOwned>(&self, method: Method, path: &str) -> anyhow::Result<T> {
        let (status, body) = tokio::time::timeout(TIMEOUT, self.send(method, path))
            .await
            .with_context(|| format!("no answer from {} within {TIMEOUT:?}", self.authority))??;
        if !status.is_success() {
            let why = serde_json::from_slice::<api::Error>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            bail!("{path}: {status}: {why}");
        }
        serde_json::from_slice(&body).with_context(|| format!("{path}: unexpected answer"))
    }

    async fn send(&self, method: Method, path: &str) -> anyhow::Result<(hyper::StatusCode, Bytes)> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .with_context(|| format!("cannot connect to the admin API at {}", self.authority))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(HOST, &self.authority)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Empty::<Bytes>::new())?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        drop(sender);
        let _ = driver.await;
        Ok((status, body))
    }
}
