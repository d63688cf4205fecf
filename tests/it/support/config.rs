//! The one builder of the config.toml a test starts smppd with: in-process through
//! `support::server_harness` (with the recording service) or `support::e2e::Env`
//! (the whole smppd, also as the spawned binary), or written by a test itself.
//!
//! ```ignore
//! let mut c = TestConfig::new();
//! c.set("server.max_connections", 5)
//!     .set("server.bind_failures.delay", "300ms")
//!     .esme("acme", "")
//!     .esme("secure", "tls_required = true")
//!     .toml("[[route]]\ndestination = \"^4477\"\ntarget = \"esme:acme\"\n");
//! let server = start(&c).await;
//! ```
//!
//! Values are TOML values (`"2s"`, `5`, `true`, `vec!["transmitter"]`); the text is
//! written by the `toml` crate, so whatever a test sets is quoted right. The format is
//! the sample `config.toml`'s (`src/config.rs`).

use toml::{Table, Value};

/// The password of every test account unless it says otherwise.
pub const PW: &str = "pw";

/// A config.toml under construction; [`TestConfig::text`] is the file.
#[derive(Clone, Debug)]
pub struct TestConfig {
    doc: Table,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TestConfig {
    /// What every test's smppd starts from: `[server]` on 127.0.0.1:0 (system_id
    /// `smppd-test`) with short timers — bind_timeout 5 s, enquire_link_interval
    /// 30 s, response_timeout 2 s, shutdown_grace 3 s — and
    /// `[server.bind_failures]` that never slows or blocks a test (100 failures, no
    /// delay). No account, no `[redis]` / `[mongodb]` (their defaults).
    pub fn new() -> TestConfig {
        let mut c = TestConfig { doc: Table::new() };
        c.set("server.system_id", "smppd-test")
            .set("server.listen", "127.0.0.1:0")
            .set("server.bind_timeout", "5s")
            .set("server.enquire_link_interval", "30s")
            .set("server.response_timeout", "2s")
            .set("server.shutdown_grace", "3s")
            .set("server.bind_failures.max_failures", 100)
            .set("server.bind_failures.delay", "0");
        c
    }

    /// Sets the value at a dotted path (`"server.bind_timeout"`, `"redis.cluster"`,
    /// `"server.bind_failures.delay"`), creating the tables on the way.
    pub fn set(&mut self, path: &str, value: impl Into<Value>) -> &mut Self {
        let (table, key) = self.table_of(path);
        table.insert(key.to_owned(), value.into());
        self
    }

    /// Removes the value (or table) at a dotted path, if there is one.
    pub fn remove(&mut self, path: &str) -> &mut Self {
        let (table, key) = self.table_of(path);
        table.remove(key);
        self
    }

    /// The value at a dotted path.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.').peekable();
        let mut table = &self.doc;
        while let Some(part) = parts.next() {
            let v = table.get(part)?;
            if parts.peek().is_none() {
                return Some(v);
            }
            table = v.as_table()?;
        }
        None
    }

    /// The Redis and MongoDB to use, keys under `<name>:` and database `name`.
    pub fn stores(&mut self, redis_url: &str, mongo_uri: &str, name: &str) -> &mut Self {
        self.set("redis.url", redis_url)
            .set("redis.key_prefix", format!("{name}:"))
            .set("mongodb.uri", mongo_uri)
            .set("mongodb.database", name)
    }

    /// Account `system_id` (`[[esme]]`), `extra` being TOML lines of its keys: added
    /// with password [`PW`] unless `extra` gives a `password` or `password_hash`, or,
    /// when it is there already, changed by `extra`.
    pub fn esme(&mut self, system_id: &str, extra: &str) -> &mut Self {
        let extra: Table = toml::from_str(extra)
            .unwrap_or_else(|e| panic!("account {system_id}: not TOML: {e}\n{extra}"));
        let esmes = self
            .doc
            .entry("esme")
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .expect("esme is an array of tables");
        let found = esmes.iter_mut().find_map(|e| {
            let t = e.as_table_mut()?;
            (t.get("system_id")?.as_str()? == system_id).then_some(t)
        });
        match found {
            Some(account) => account.extend(extra),
            None => {
                let mut account = Table::new();
                account.insert("system_id".into(), system_id.into());
                if !extra.contains_key("password") && !extra.contains_key("password_hash") {
                    account.insert("password".into(), PW.into());
                }
                account.extend(extra);
                esmes.push(Value::Table(account));
            }
        }
        self
    }

    /// The system_ids of the accounts, in order.
    pub fn esme_ids(&self) -> Vec<String> {
        let Some(Value::Array(esmes)) = self.doc.get("esme") else {
            return Vec::new();
        };
        esmes
            .iter()
            .filter_map(|e| Some(e.get("system_id")?.as_str()?.to_owned()))
            .collect()
    }

    /// More TOML (`[[route]]`, `[[simulate]]`, `[delivery]`, `[admin]`…): tables
    /// are merged key by key, arrays of tables appended to.
    pub fn toml(&mut self, text: &str) -> &mut Self {
        let more: Table = toml::from_str(text).unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"));
        merge(&mut self.doc, more);
        self
    }

    /// The text of config.toml.
    pub fn text(&self) -> String {
        toml::to_string(&self.doc).expect("a TOML table serializes")
    }

    /// The table holding the last part of `path`, and that part.
    fn table_of<'a>(&mut self, path: &'a str) -> (&mut Table, &'a str) {
        let (tables, key) = match path.rsplit_once('.') {
            Some((tables, key)) => (Some(tables), key),
            None => (None, path),
        };
        let mut table = &mut self.doc;
        for part in tables.into_iter().flat_map(|t| t.split('.')) {
            table = table
                .entry(part)
                .or_insert_with(|| Value::Table(Table::new()))
                .as_table_mut()
                .unwrap_or_else(|| panic!("{part} of {path} is not a table"));
        }
        (table, key)
    }
}

fn merge(into: &mut Table, more: Table) {
    for (key, value) in more {
        match (into.get_mut(&key), value) {
            (Some(Value::Table(old)), Value::Table(new)) => merge(old, new),
            (Some(Value::Array(old)), Value::Array(new)) => old.extend(new),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}
