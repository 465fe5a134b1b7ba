//! The dashboard's request parsing: the query of every route (through axum's own `Query`
//! extractor, as the server runs it), the token in the query and cookies, the `Host:` check
//! and replica names. The input is three lines: query, cookie header, host header. No panic;
//! pages stay within their bounds; a token always reads back from its encoding.
#![no_main]

use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use trainctl_core::ReplicaId;
use trainctl_web::access::{encode_token, presented};
use trainctl_web::charts::points_limit;
use trainctl_web::hosts::Hosts;
use trainctl_web::jobs::{ListQuery, MetricsQuery, MAX_PAGE};
use trainctl_web::live::LogsQuery;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (query, cookie, host) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );

    if let Ok(uri) = format!("/api/jobs?{query}").parse::<Uri>() {
        if let Ok(Query(list)) = Query::<ListQuery>::try_from_uri(&uri) {
            let jobs = (0..7).map(|i| (format!("job-{i}"), "Running".to_string(), i)).collect();
            let page = list.page(jobs);
            assert!(page.items.len() <= page.limit && page.limit <= MAX_PAGE);
            assert!(page.total <= 7);
        }
        if let Ok(Query(logs)) = Query::<LogsQuery>::try_from_uri(&uri) {
            if let Some(replica) = logs.replica {
                if let Ok(id) = replica.parse::<ReplicaId>() {
                    assert_eq!(id.to_string().parse::<ReplicaId>().ok(), Some(id));
                }
            }
        }
        if let Ok(Query(metrics)) = Query::<MetricsQuery>::try_from_uri(&uri) {
            let _ = points_limit(metrics.points);
        }
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.insert(header::COOKIE, value);
        }
        presented(&headers, uri.query());
    }

    let hosts = Hosts::new("127.0.0.1:8080".parse().unwrap(), &[]);
    if hosts.allows(host) {
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        assert!(
            name == "localhost" || name.starts_with("127.") || name == "[::1]" || name.contains(':'),
            "{host:?} passed the loopback check"
        );
    }

    let encoded = encode_token(query);
    let uri: Uri = format!("/?token={encoded}").parse().expect("an encoded token fits a URI");
    assert_eq!(presented(&HeaderMap::new(), uri.query()), [query]);
    let cookie = HeaderValue::from_str(&format!("trainctl_token={encoded}")).expect("cookie-safe");
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, cookie);
    assert_eq!(presented(&headers, None), [query]);
});
