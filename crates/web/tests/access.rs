//! Who the dashboard answers, over real HTTP: the `Host:` check against DNS rebinding, the
//! token (header, cookie, query; URL-encoded; a stale cookie never hides a correct query
//! token), and the security headers on every response. Requests are written by hand so the
//! test controls every header, as a hostile page or a careless proxy would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use trainctl_local::Home;
use trainctl_web::access::Access;
use trainctl_web::headers::CONTENT_SECURITY_POLICY;
use trainctl_web::hosts::Hosts;
use trainctl_web::{router, Dashboard};

/// A dashboard over an empty state directory on `address`, with `token` and `allow` names.
struct Server {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
    _home: tempfile::TempDir,
}

impl Server {
    fn start(address: &str, token: Option<&str>, allow: &[&str]) -> Self {
        let home = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(address))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let names: Vec<String> = allow.iter().map(|n| n.to_string()).collect();
        let access = Access::new(token.map(str::to_string), Hosts::new(addr, &names));
        let app = router(Arc::new(Dashboard::new(Home::at(home.path()), access)));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Server {
            addr,
            _runtime: runtime,
            _home: home,
        }
    }

    /// `GET path` with `Host: host` and the extra header lines; the status and the headers
    /// (lower-case names) of the answer.
    fn get(&self, host: &str, path: &str, extra: &[&str]) -> (u16, Vec<(String, String)>) {
        let connect_to: SocketAddr = format!("127.0.0.1:{}", self.addr.port()).parse().unwrap();
        let mut stream = TcpStream::connect(connect_to).unwrap();
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for line in extra {
            request.push_str(&format!("{line}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let head = answer.split("\r\n\r\n").next().unwrap();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers)
    }

    fn status(&self, host: &str, path: &str, extra: &[&str]) -> u16 {
        self.get(host, path, extra).0
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn on_loopback_a_page_that_rebinds_its_name_to_127_0_0_1_is_refused() {
    let s = Server::start("127.0.0.1:0", None, &[]);
    let p = s.port();
    for path in ["/", "/api/jobs", "/assets/app.js", "/api/jobs/x/logs/live"] {
        assert_eq!(
            s.status(&format!("attacker.example:{p}"), path, &[]),
            403,
            "{path}"
        );
    }
    assert_eq!(s.status("attacker.example", "/api/jobs", &[]), 403);
    assert_eq!(
        s.status(&format!("localhost:{}", p ^ 1), "/api/jobs", &[]),
        403
    );
    assert_eq!(s.status(&format!("10.0.0.1:{p}"), "/api/jobs", &[]), 403);
    for host in [
        format!("localhost:{p}"),
        format!("127.0.0.1:{p}"),
        format!("127.0.0.2:{p}"),
    ] {
        assert_eq!(s.status(&host, "/api/jobs", &[]), 200, "{host}");
    }
    let no_host = {
        let mut stream = TcpStream::connect(s.addr).unwrap();
        stream.write_all(b"GET /api/jobs HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    assert_eq!(no_host.split(' ').nth(1), Some("403"), "{no_host}");
}

#[test]
fn names_given_with_allow_host_are_answered() {
    let s = Server::start("127.0.0.1:0", None, &["dash.internal"]);
    assert_eq!(s.status("dash.internal", "/api/jobs", &[]), 200);
    assert_eq!(s.status("DASH.internal:8443", "/api/jobs", &[]), 200);
    let (status, headers) = s.get("evil.internal", "/api/jobs", &[]);
    assert_eq!(status, 403);
    assert!(header(&headers, "content-type").is_some_and(|t| t.starts_with("text/plain")));
}

#[test]
fn every_response_carries_the_security_headers() {
    let s = Server::start("127.0.0.1:0", Some("s3cret"), &[]);
    let host = format!("localhost:{}", s.port());
    let bearer = "Authorization: Bearer s3cret";
    for (path, extra, host, status) in [
        ("/", vec![bearer], host.as_str(), 200),
        ("/assets/app.js", vec![bearer], host.as_str(), 200),
        ("/api/jobs", vec![bearer], host.as_str(), 200),
        ("/api/jobs/nope", vec![bearer], host.as_str(), 404),
        ("/no/such/page", vec![bearer], host.as_str(), 404),
        ("/api/jobs", vec![], host.as_str(), 401),
        ("/api/jobs", vec![bearer], "attacker.example", 403),
    ] {
        let (got, headers) = s.get(host, path, &extra);
        assert_eq!(got, status, "{path}");
        assert_eq!(
            header(&headers, "content-security-policy"),
            Some(CONTENT_SECURITY_POLICY),
            "{path}"
        );
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&headers, "x-frame-options"), Some("DENY"));
        assert_eq!(header(&headers, "referrer-policy"), Some("no-referrer"));
    }
    assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
}

#[test]
fn a_correct_query_token_wins_over_a_stale_cookie() {
    let s = Server::start("127.0.0.1:0", Some("new-token"), &[]);
    let host = format!("127.0.0.1:{}", s.port());
    let stale = "Cookie: trainctl_token=old-token";
    assert_eq!(s.status(&host, "/api/jobs", &[stale]), 401);
    let (status, headers) = s.get(&host, "/?token=new-token", &[stale]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "set-cookie"),
        Some("trainctl_token=new-token; Path=/; HttpOnly; SameSite=Strict")
    );
}

#[test]
fn a_token_unsafe_in_a_cookie_is_url_decoded_from_the_query_and_encoded_in_the_cookie() {
    let token = "a;b c=d,\"e\"%";
    let s = Server::start("127.0.0.1:0", Some(token), &[]);
    let host = format!("127.0.0.1:{}", s.port());
    let (status, headers) = s.get(&host, "/?token=a%3Bb+c%3Dd%2C%22e%22%25", &[]);
    assert_eq!(status, 200);
    let cookie = header(&headers, "set-cookie").unwrap();
    let value = cookie
        .strip_prefix("trainctl_token=")
        .and_then(|c| c.split_once("; Path=/; HttpOnly; SameSite=Strict"))
        .map(|(v, rest)| {
            assert_eq!(rest, "");
            v
        })
        .unwrap_or_else(|| panic!("{cookie}"));
    assert!(
        value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "*-._+%".contains(c)),
        "{cookie}"
    );
    // The browser sends the cookie back as it got it, and it opens the app.
    let back = format!("Cookie: trainctl_token={value}");
    assert_eq!(s.status(&host, "/api/jobs", &[&back]), 200);
}

#[test]
fn a_reachable_address_with_a_token_answers_its_names_and_addresses() {
    let s = Server::start("0.0.0.0:0", Some("t"), &[]);
    let bearer = "Authorization: Bearer t";
    assert_eq!(s.status("gpu-box.lan:1234", "/api/jobs", &[bearer]), 200);
    let named = Server::start("0.0.0.0:0", Some("t"), &["gpu-box.lan"]);
    assert_eq!(named.status("gpu-box.lan", "/api/jobs", &[bearer]), 200);
    assert_eq!(named.status("10.0.0.7:80", "/api/jobs", &[bearer]), 200);
    assert_eq!(
        named.status("attacker.example", "/api/jobs", &[bearer]),
        403
    );
}
