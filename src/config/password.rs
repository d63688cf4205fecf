//! What an account's `password` or `password_hash` must be.
//!
//! A hash is an argon2id or argon2i PHC string with its salt and hash (argon2d is
//! refused: its data-dependent memory access leaks through side channels). Every
//! bind verifies it on a CPU, so its cost has a ceiling; that ceiling also keeps a
//! verification well inside the default `bind_failures.delay`, which hides how long
//! it took. Parameters below OWASP's minimum are accepted with a warning.

use argon2::{Algorithm, Params, PasswordHash, Version};

use super::Credential;

/// C-Octet String maximum of the bind PDU's password, counting characters (NUL excluded).
const MAX_PASSWORD_LEN: usize = 8;
/// argon2 memory ceiling in KiB (64 MiB, RFC 9106's second recommended setting).
pub const MAX_M_COST: u32 = 64 * 1024;
/// argon2 work ceiling: m × t in KiB passes (64 MiB × 3).
pub const MAX_WORK: u64 = 3 * 64 * 1024;
/// OWASP's minimum argon2id settings as (m KiB, t); meeting any one is enough.
const OWASP_MIN: [(u32, u32); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

/// The parameters of a valid password_hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    pub algorithm: Algorithm,
    /// Memory in KiB.
    pub m: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Argon2Cost {
    fn work(&self) -> u64 {
        u64::from(self.m) * u64::from(self.t)
    }

    /// Weaker than every one of OWASP's minimum settings.
    pub fn below_owasp(&self) -> bool {
        !OWASP_MIN.iter().any(|&(m, t)| self.m >= m && self.t >= t)
    }
}

/// A clear password: Err is the problem.
pub fn check_password(pw: &str) -> Result<(), String> {
    if pw.is_empty() {
        Err("must not be empty".into())
    } else if pw.len() > MAX_PASSWORD_LEN || !pw.is_ascii() {
        // Longer can never match what a bind PDU carries.
        Err(format!(
            "must be at most {MAX_PASSWORD_LEN} ASCII characters (SMPP limit)"
        ))
    } else {
        Ok(())
    }
}

/// A password_hash: its cost, or the problem.
pub fn check_hash(phc: &str) -> Result<Argon2Cost, String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("not an argon2 PHC string ({e})"))?;
    let algorithm = match Algorithm::try_from(hash.algorithm) {
        Ok(Algorithm::Argon2d) => {
            return Err("argon2d is refused (side channels); use argon2id".into())
        }
        Ok(a) => a,
        Err(_) => {
            return Err(format!(
                "unsupported algorithm \"{}\" (argon2id or argon2i only)",
                hash.algorithm
            ))
        }
    };
    if let Some(v) = hash.version {
        Version::try_from(v).map_err(|_| format!("unknown argon2 version {v}"))?;
    }
    if hash.salt.is_none() {
        return Err("has no salt: not a password hash".into());
    }
    if hash.hash.is_none() {
        return Err("has no hash: not a password hash".into());
    }
    let params = Params::try_from(&hash).map_err(|e| format!("invalid argon2 parameters ({e})"))?;
    let cost = Argon2Cost {
        algorithm,
        m: params.m_cost(),
        t: params.t_cost(),
        p: params.p_cost(),
    };
    if cost.m > MAX_M_COST || cost.work() > MAX_WORK {
        return Err(format!(
            "argon2 cost m={},t={} is above the ceiling (m at most {MAX_M_COST} KiB, m×t at \
             most {MAX_WORK}): every bind verifies it on a CPU",
            cost.m, cost.t
        ));
    }
    Ok(cost)
}

/// What a bind with an unknown system_id is verified against, so that it costs what
/// a known account's bind does: argon2 with the highest cost among `costs`, or a
/// clear password when no account has a hash. Nothing ever matches it.
pub fn unknown_account_credential(costs: impl IntoIterator<Item = Argon2Cost>) -> Credential {
    // 16-octet salt and 32-octet hash, as argon2's defaults make them.
    const SALT: &str = "c21wcGQtbm8tYWNjb3VudA";
    const HASH: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    match costs.into_iter().max_by_key(|c| (c.work(), c.p)) {
        None => Credential::Plain(String::new()),
        Some(c) => Credential::Argon2(format!(
            "${}$v=19$m={},t={},p={}${SALT}${HASH}",
            c.algorithm, c.m, c.t, c.p
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phc(alg: &str, params: &str) -> String {
        format!("${alg}$v=19${params}$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    }

    #[test]
    fn hashes_are_checked() {
        let ok = check_hash(&phc("argon2id", "m=19456,t=2,p=1"));
        assert!(ok.as_ref().is_ok_and(|c| !c.below_owasp()), "{ok:?}");
        assert!(check_hash(&phc("argon2i", "m=47104,t=1,p=1")).is_ok_and(|c| !c.below_owasp()));
        assert!(check_hash(&phc("argon2id", "m=8192,t=1,p=1")).is_ok_and(|c| c.below_owasp()));
        assert!(check_hash(&phc("argon2id", "m=19456,t=1,p=1")).is_ok_and(|c| c.below_owasp()));
        assert!(check_hash(&phc("argon2id", "m=65536,t=3,p=4")).is_ok());
        for (bad, want) in [
            (phc("argon2d", "m=19456,t=2,p=1"), "argon2d"),
            (phc("argon2id", "m=131072,t=1,p=1"), "ceiling"),
            (phc("argon2id", "m=65536,t=4,p=1"), "ceiling"),
            ("$argon2id$v=19$m=19456,t=2,p=1".into(), "no salt"),
            ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0".into(), "no hash"),
            (
                "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
                "unsupported",
            ),
        ] {
            let r = check_hash(&bad);
            assert!(r.as_ref().is_err_and(|e| e.contains(want)), "{bad}: {r:?}");
        }
    }

    #[test]
    fn unknown_accounts_cost_what_the_costliest_hash_costs() {
        assert_eq!(
            unknown_account_credential([]),
            Credential::Plain(String::new())
        );
        let costs = ["m=19456,t=2,p=1", "m=47104,t=1,p=2", "m=8192,t=1,p=1"]
            .map(|p| check_hash(&phc("argon2id", p)).unwrap_or_else(|e| panic!("{e}")));
        let Credential::Argon2(dummy) = unknown_account_credential(costs) else {
            panic!("expected an argon2 dummy");
        };
        assert_eq!(
            check_hash(&dummy),
            Ok(costs[1]),
            "{dummy} verifies like the costliest account"
        );
    }
}
