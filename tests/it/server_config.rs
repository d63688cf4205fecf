//! Config loading, validation and the `check-config` command of the built binary.

use std::process::Command;
use std::time::Duration;

use smppd::config::{Config, Credential, EnvOverrides};

const SAMPLE: &str = include_str!("../../config.toml");

fn smppd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smppd"))
}

#[test]
fn sample_config_is_valid() {
    let c = Config::from_toml(SAMPLE, &EnvOverrides::default(), None).unwrap();
    assert_eq!(c.server.system_id, "smppd");
    assert_eq!(c.server.bind_timeout, Duration::from_secs(10));
    let a = c.account("test").unwrap();
    assert_eq!(a.credential, Credential::Plain("secret".into()));
    assert_eq!(a.default_validity, Duration::from_secs(48 * 3600));
    assert_eq!(a.throughput.unwrap().burst, 200);
    assert!(a.address_allowed("127.0.0.1".parse().unwrap()));
    assert!(!a.address_allowed("10.1.1.1".parse().unwrap()));
    // Today's behaviour unless an account says otherwise.
    assert_eq!(
        a.default_alphabet,
        smpp_protocol::text::DefaultAlphabet::Gsm7
    );
    assert_eq!(a.receipt_pdu, smppd::service::ReceiptPdu::DeliverSm);
}

#[test]
fn interop_keys_are_read_per_account() {
    let text = "[[esme]]\nsystem_id = \"a\"\npassword = \"x\"\ndefault_alphabet = \"latin1\"\n\
                receipt_pdu = \"data_sm\"\nmessage_id_format = \"short\"\n\
                [[esme]]\nsystem_id = \"b\"\npassword = \"x\"\n\
                default_alphabet = \"ascii\"\nreceipt_pdu = \"deliver_sm\"\n";
    let c = Config::from_toml(text, &EnvOverrides::default(), None).unwrap();
    let a = c.account("a").unwrap();
    let b = c.account("b").unwrap();
    use smpp_protocol::text::DefaultAlphabet;
    use smppd::service::ReceiptPdu;
    assert_eq!(
        (a.default_alphabet, a.receipt_pdu),
        (DefaultAlphabet::Latin1, ReceiptPdu::DataSm)
    );
    assert_eq!(
        (b.default_alphabet, b.receipt_pdu),
        (DefaultAlphabet::Ascii, ReceiptPdu::DeliverSm)
    );
    use smppd::service::MessageIdFormat;
    assert_eq!(
        (a.message_id_format, b.message_id_format),
        (MessageIdFormat::Short, MessageIdFormat::Hex)
    );
}

#[test]
fn environment_overrides_redis_and_mongodb() {
    let env = EnvOverrides {
        redis_url: Some("redis://10.0.0.1:7000".into()),
        mongodb_uri: Some("mongodb://10.0.0.2:27018".into()),
    };
    let c = Config::from_toml(SAMPLE, &env, None).unwrap();
    assert_eq!(c.redis.url, "redis://10.0.0.1:7000");
    assert_eq!(c.mongodb.uri, "mongodb://10.0.0.2:27018");
}

#[test]
fn cluster_keys_reach_the_store_and_their_problems_are_named() {
    let with = |extra: &str| SAMPLE.replace("[redis]\n", &format!("[redis]\n{extra}\n"));
    assert_ne!(with("x = 1"), SAMPLE, "the sample has a [redis] section");
    let c = Config::from_toml(
        &with("cluster = true\nseeds = [\"redis://10.0.0.12:6379\"]\nack_replicas = 1\nack_timeout = \"250ms\""),
        &EnvOverrides::default(),
        None,
    )
    .unwrap();
    let s = smppd::app::store_settings(&c);
    assert!(s.cluster);
    assert_eq!(s.redis_seeds, vec!["redis://10.0.0.12:6379".to_string()]);
    assert_eq!(
        (s.ack_replicas, s.ack_timeout),
        (1, Duration::from_millis(250))
    );

    let problems = Config::from_toml(
        &with("seeds = [\"http://x\"]\ntls_ca = \"/nonexistent/ca.pem\"\nack_replicas = 99"),
        &EnvOverrides::default(),
        None,
    )
    .unwrap_err()
    .to_string();
    for key in [
        "redis.seeds[0]",
        "redis.seeds:",
        "redis.tls_ca",
        "redis.ack_replicas",
    ] {
        assert!(problems.contains(key), "{key} not named in: {problems}");
    }
}

#[test]
fn debug_output_never_shows_passwords() {
    let c = Config::from_toml(SAMPLE, &EnvOverrides::default(), None).unwrap();
    assert!(!format!("{c:?}").contains("secret"));
}

#[test]
fn max_pending_reaches_the_store() {
    let c = Config::from_toml(SAMPLE, &EnvOverrides::default(), None).unwrap();
    assert_eq!(c.redis.max_pending, 1_000_000);
    let small = SAMPLE.replace("max_pending = 1000000", "max_pending = 5");
    assert_ne!(small, SAMPLE, "the sample sets max_pending");
    let c = Config::from_toml(&small, &EnvOverrides::default(), None).unwrap();
    assert_eq!(smppd::app::store_settings(&c).max_pending, 5);
}

#[test]
fn connection_limits_default_to_64_per_ip_and_half_unbound() {
    let c = Config::from_toml(SAMPLE, &EnvOverrides::default(), None).unwrap();
    assert_eq!(c.server.max_connections, 10_000);
    assert_eq!(c.server.max_connections_per_ip, 64);
    assert_eq!(c.server.max_unbound_connections, 5_000);
    let text = "[server]\nmax_connections = 100\nmax_unbound_connections = 101\n\
                max_connections_per_ip = 0\n";
    let problems = Config::from_toml(text, &EnvOverrides::default(), None).unwrap_err();
    let text = problems.to_string();
    assert!(
        text.contains("server.max_unbound_connections: must be between 1 and 100, got 101"),
        "{text}"
    );
    assert!(
        text.contains("server.max_connections_per_ip: must be between 1 and"),
        "{text}"
    );
}

const BAD: &str = r#"
[server]
listen = "nowhere"
bind_timeout = "soon"
tls_listen = "127.0.0.1:0"
log_format = "xml"

[redis]
max_pending = 0

[[esme]]
system_id = "a"
password = "x"

[[esme]]
system_id = "a"
password = "y"

[[esme]]
system_id = "c"
password_hash = "not-a-hash"
allowed_addresses = ["10.0.0/8", "192.168.0.0/16"]
allowed_bind_types = ["transmitter", "sender"]
window = 0
default_validity = "10d"
max_validity = "1d"
expiry_mode = "never"
default_alphabet = "utf8"
receipt_pdu = "submit_sm"
message_id_format = "base36"
"#;

#[test]
fn validation_reports_every_problem_with_its_key() {
    let problems = Config::from_toml(BAD, &EnvOverrides::default(), None).unwrap_err();
    let text: Vec<String> = problems.0.iter().map(|p| p.to_string()).collect();
    let expect = [
        "server.listen: invalid socket address \"nowhere\"",
        "server.bind_timeout: invalid duration \"soon\"",
        "server.tls_cert: required",
        "server.tls_key: required",
        "server.log_format:",
        "redis.max_pending: must be between 1 and",
        "esme[1].system_id: duplicate account \"a\"",
        "esme[2].password_hash: not an argon2 PHC string",
        "esme[2].allowed_addresses[0]: invalid CIDR \"10.0.0/8\"",
        "esme[2].allowed_bind_types[1]: unknown bind type \"sender\"",
        "esme[2].window: must be between",
        "esme[2].default_validity: must not be longer than max_validity",
        "esme[2].expiry_mode:",
        "esme[2].default_alphabet: must be \"gsm7\", \"ascii\" or \"latin1\", got \"utf8\"",
        "esme[2].receipt_pdu: must be \"deliver_sm\" or \"data_sm\", got \"submit_sm\"",
        "esme[2].message_id_format: must be \"hex\", \"decimal\" or \"short\", got \"base36\"",
    ];
    for e in expect {
        assert!(
            text.iter().any(|t| t.starts_with(e)),
            "missing {e:?} in {text:#?}"
        );
    }
    assert_eq!(text.len(), expect.len(), "{text:#?}");
}

#[test]
fn syntax_error_names_the_line() {
    let problems =
        Config::from_toml("[server]\nlisten = \n", &EnvOverrides::default(), None).unwrap_err();
    assert!(problems.0[0].path.contains("line 2"), "{problems}");
}

#[test]
fn unknown_keys_are_refused() {
    let problems = Config::from_toml(
        "[server]\nlisten_port = 1\n",
        &EnvOverrides::default(),
        None,
    )
    .unwrap_err();
    assert!(problems.0[0].message.contains("listen_port"), "{problems}");
}

#[test]
fn argon2_password_hash_is_accepted() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let hash = argon2::Argon2::default()
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
    let text = format!("[[esme]]\nsystem_id = \"h\"\npassword_hash = \"{hash}\"\n");
    let c = Config::from_toml(&text, &EnvOverrides::default(), None).unwrap();
    assert_eq!(c.accounts[0].credential, Credential::Argon2(hash));
}

#[test]
fn check_config_binary_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, BAD).unwrap();
    let out = smppd()
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("16 problem(s)"), "{err}");
    assert!(err.contains("esme[2].default_alphabet: must be"), "{err}");
    assert!(
        err.contains("esme[2].allowed_addresses[0]: invalid CIDR \"10.0.0/8\""),
        "{err}"
    );
    assert!(
        err.contains("server.listen: invalid socket address"),
        "{err}"
    );
}

#[test]
fn check_config_binary_accepts_the_sample_and_warns_on_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, SAMPLE).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = smppd()
        .args(["check-config", "--config"])
        .arg(&path)
        .env_remove("SMPPD_REDIS_URL")
        .env_remove("SMPPD_MONGODB_URI")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("config OK"), "{stdout}");
    assert!(stdout.contains("2 account(s)"), "{stdout}");
    assert!(stdout.contains("1 route(s)"), "{stdout}");
    assert!(stdout.contains("readable by group or others"), "{stdout}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = smppd()
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("readable by group"), "{stdout}");
}

#[test]
fn serve_with_bad_config_exits_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, BAD).unwrap();
    let out = smppd()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("problem(s) in config"), "{err}");
}

/// A PHC string with `params` and the given salt/hash parts ("" leaves one out).
fn phc_text(alg: &str, params: &str, salt: &str, hash: &str) -> String {
    let mut s = format!("${alg}$v=19${params}");
    for part in [salt, hash] {
        if !part.is_empty() {
            s.push('$');
            s.push_str(part);
        }
    }
    s
}

const SALT: &str = "c2FsdHNhbHRzYWx0";
const HASH: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn account(i: usize, key: &str, value: &str) -> String {
    format!("[[esme]]\nsystem_id = \"a{i}\"\n{key} = \"{value}\"\n")
}

fn check_config(text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    smppd()
        .args(["check-config", "--config"])
        .arg(&path)
        .env_remove("SMPPD_REDIS_URL")
        .env_remove("SMPPD_MONGODB_URI")
        .output()
        .unwrap()
}

/// Secrets nobody could bind with, or that make every bind expensive, are config
/// problems: an empty password, a PHC string without salt or hash, argon2d, argon2
/// costs above the ceiling (m ≤ 64 MiB, m×t ≤ 192 MiB passes).
#[test]
fn check_config_refuses_unusable_or_too_costly_secrets() {
    let bad = [
        ("password", String::new(), "must not be empty"),
        (
            "password_hash",
            phc_text("argon2id", "m=19456,t=2,p=1", "", ""),
            "has no salt",
        ),
        (
            "password_hash",
            phc_text("argon2id", "m=19456,t=2,p=1", SALT, ""),
            "has no hash",
        ),
        (
            "password_hash",
            phc_text("argon2d", "m=19456,t=2,p=1", SALT, HASH),
            "argon2d is refused",
        ),
        (
            "password_hash",
            phc_text("argon2id", "m=131072,t=1,p=1", SALT, HASH),
            "above the ceiling",
        ),
        (
            "password_hash",
            phc_text("argon2id", "m=65536,t=4,p=1", SALT, HASH),
            "above the ceiling",
        ),
    ];
    let text: String = bad
        .iter()
        .enumerate()
        .map(|(i, (key, value, _))| account(i, key, value))
        .collect();
    let out = check_config(&text);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&format!("{} problem(s)", bad.len())), "{err}");
    for (i, (key, _, want)) in bad.iter().enumerate() {
        assert!(
            err.contains(&format!("esme[{i}].{key}: ")) && err.contains(want),
            "esme[{i}] {want}: {err}"
        );
    }
    // At the ceiling is fine.
    let at_ceiling = account(
        0,
        "password_hash",
        &phc_text("argon2id", "m=65536,t=3,p=4", SALT, HASH),
    );
    assert!(check_config(&at_ceiling).status.success());
}

/// argon2 parameters below OWASP's minimum (m=19 MiB, t=2 or an equivalent) are
/// accepted with a warning naming the account; OWASP's settings pass silently.
#[test]
fn check_config_warns_about_weak_argon2_parameters() {
    let text: String = [
        ("argon2id", "m=8192,t=1,p=1"),
        ("argon2id", "m=19456,t=1,p=1"),
        ("argon2id", "m=19456,t=2,p=1"),
        ("argon2i", "m=47104,t=1,p=1"),
        ("argon2id", "m=12288,t=3,p=1"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (alg, params))| account(i, "password_hash", &phc_text(alg, params, SALT, HASH)))
    .collect();
    let out = check_config(&text);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("config OK"), "{stdout}");
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 2, "{stdout}");
    assert!(warnings[0].contains("esme[0].password_hash") && warnings[0].contains("OWASP"));
    assert!(warnings[1].contains("esme[1].password_hash"), "{stdout}");
}
