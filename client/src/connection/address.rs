//! Checking a broker address before connecting to it.
//!
//! A malformed address can never work, so it fails at once with
//! [`ClientError::InvalidAddress`] instead of being retried like a broker that is not
//! up yet. The rules are those the standard library applies when it resolves a
//! `host:port` string (the port after the *last* colon, so `::1:7171` and
//! `[::1]:7171` both work), plus two it leaves to the connect to find out: the host
//! must not be empty, and port 0 is no port one can connect to. Whether the host name
//! resolves is not checked here: a name server can fail for a moment.

use crate::error::ClientError;

/// Pure: `Ok` if `addr` has the shape `HOST:PORT`.
pub(super) fn check(addr: &str) -> Result<(), ClientError> {
    let invalid = |reason: String| ClientError::InvalidAddress {
        addr: addr.to_string(),
        reason,
    };
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(invalid("there is no port".to_string()));
    };
    if host.is_empty() || host == "[]" {
        return Err(invalid("there is no host before the port".to_string()));
    }
    if host.chars().any(char::is_whitespace) {
        return Err(invalid(format!("the host {host:?} contains whitespace")));
    }
    match port.parse::<u16>() {
        Ok(0) => Err(invalid("port 0 cannot be connected to".to_string())),
        Ok(_) => Ok(()),
        Err(_) => Err(invalid(format!(
            "the port {port:?} is not a number from 1 to 65535"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_pass() {
        for addr in [
            "127.0.0.1:7171",
            "localhost:1",
            "broker.example.com:65535",
            "[::1]:7171",
            "::1:7171",
        ] {
            assert!(check(addr).is_ok(), "{addr}");
        }
    }

    #[test]
    fn malformed_addresses_say_what_is_wrong() {
        for (addr, reason) in [
            ("localhost", "no port"),
            ("127.0.0.1", "no port"),
            (":7171", "no host"),
            ("[]:7171", "no host"),
            ("host:http", "\"http\" is not a number"),
            ("host:70000", "\"70000\" is not a number"),
            ("host:", "\"\" is not a number"),
            ("host:0", "port 0"),
            ("my host:7171", "whitespace"),
        ] {
            let error = check(addr).unwrap_err();
            assert!(
                matches!(error, ClientError::InvalidAddress { .. }),
                "{addr}"
            );
            let text = error.to_string();
            assert!(text.contains(reason), "{addr}: {text}");
            assert!(text.contains("HOST:PORT"), "{addr}: {text}");
        }
    }
}
