//! Which `Host:` headers the dashboard answers, against DNS rebinding: a web page the user
//! visits can point its own name at 127.0.0.1 and read the dashboard from the browser, but it
//! cannot make the browser send a loopback name in `Host:`.
//!
//! On loopback the dashboard answers only to `localhost` and loopback addresses with the port
//! it listens on, plus the names given with `--allow-host`. On an address other machines reach
//! (which needs a token) it answers to any IP address, `localhost`, and the `--allow-host`
//! names; when none are given, to any name (the token keeps strangers out).

use std::net::{IpAddr, SocketAddr};

/// The port a `Host:` without one means (plain HTTP).
const DEFAULT_PORT: u16 = 80;

/// The `Host:` headers one dashboard accepts.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// The port the dashboard listens on.
    port: u16,
    /// Whether it listens on a loopback address.
    loopback: bool,
    /// Extra names (`--allow-host`), in lower case, accepted with any port.
    names: Vec<String>,
}

impl Hosts {
    /// The policy for a dashboard listening on `bound`, with the extra host `names`.
    pub fn new(bound: SocketAddr, names: &[String]) -> Self {
        Hosts {
            port: bound.port(),
            loopback: bound.ip().is_loopback(),
            names: names.iter().map(|n| normalize(n)).collect(),
        }
    }

    /// Whether a request with this `Host:` header value is answered.
    pub fn allows(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        let name = normalize(name);
        if self.names.contains(&name) {
            return true;
        }
        let right_port = port.unwrap_or(DEFAULT_PORT) == self.port;
        match name.parse::<IpAddr>() {
            Ok(ip) if self.loopback => ip.is_loopback() && right_port,
            Ok(_) => true,
            Err(_) if name == "localhost" => right_port,
            Err(_) => !self.loopback && self.names.is_empty(),
        }
    }

    /// What a refused request is told.
    pub fn refusal(&self, host: &str) -> String {
        format!(
            "this trainctl dashboard does not answer to Host {host:?}: open it as \
             http://localhost:{}/ or http://127.0.0.1:{}/, or start it with --allow-host NAME \
             to reach it under another name\n",
            self.port, self.port
        )
    }
}

/// A host name in lower case, without the trailing dot of a fully qualified name.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// `name`, `name:port`, `[v6]` or `[v6]:port` into the name (brackets dropped) and the port.
/// `None` when it is none of those.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        match after {
            "" => (v6, None),
            _ => (v6, Some(after.strip_prefix(':')?)),
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if name.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(address: &str, names: &[&str]) -> Hosts {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        Hosts::new(address.parse().unwrap(), &names)
    }

    #[test]
    fn on_loopback_only_loopback_names_with_the_right_port_are_answered() {
        let h = on("127.0.0.1:8080", &[]);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST.:8080",
            "[::1]:8080",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for refused in [
            "attacker.example:8080",
            "attacker.example",
            "127.0.0.1:9999",
            "localhost",
            "10.0.0.1:8080",
            "",
            ":8080",
            "localhost:80x",
            "[::1",
            "[::1]x",
        ] {
            assert!(!h.allows(refused), "{refused}");
        }
        assert!(on("127.0.0.1:80", &[]).allows("localhost"));
    }

    #[test]
    fn names_given_by_flag_are_answered_with_any_port() {
        let h = on("127.0.0.1:8080", &["Dash.Example"]);
        assert!(h.allows("dash.example:443") && h.allows("dash.example"));
        assert!(!h.allows("other.example:8080"));
    }

    #[test]
    fn a_reachable_address_answers_ip_addresses_and_names_unless_names_are_given() {
        let open = on("0.0.0.0:8080", &[]);
        assert!(open.allows("gpu-box.lan:8080") && open.allows("10.1.2.3:8080"));
        let named = on("0.0.0.0:8080", &["gpu-box.lan"]);
        assert!(named.allows("gpu-box.lan:8080") && named.allows("10.1.2.3:8080"));
        assert!(named.allows("localhost:8080"));
        assert!(!named.allows("attacker.example:8080"));
    }
}
