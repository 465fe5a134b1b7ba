//! Properties of the dashboard's request parsing over generated input (proptest; the
//! libFuzzer target in fuzz/ goes further): the query of every route, the token in the query
//! and cookies, and the `Host:` check never panic; pages stay in bounds; any token reads back
//! from its encoding in a link or a cookie; and on loopback no name but `localhost` and no
//! address but a loopback one gets through.

use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use proptest::prelude::*;
use trainctl_web::access::{encode_token, presented};
use trainctl_web::charts::points_limit;
use trainctl_web::hosts::Hosts;
use trainctl_web::jobs::{ListQuery, MetricsQuery, MAX_PAGE};
use trainctl_web::live::LogsQuery;

/// Query strings with the routes' parameters, well and badly formed.
fn query() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "phase", "q", "offset", "limit", "replica", "tail", "attempt", "points", "token", "x",
    ]);
    let value = prop_oneof![
        "[0-9]{0,25}",
        "-[0-9]{1,3}",
        "[ -~]{0,8}",
        "%[0-9A-Fa-f]{0,2}"
    ];
    prop::collection::vec((key, value), 0..6).prop_map(|kv| {
        kv.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn route_queries_parse_or_are_refused_and_pages_stay_in_bounds(q in query()) {
        let Ok(uri) = format!("/api/jobs?{q}").parse::<Uri>() else {
            return Ok(());
        };
        if let Ok(Query(list)) = Query::<ListQuery>::try_from_uri(&uri) {
            let jobs = (0..9).map(|i| (format!("job-{i}"), "Failed".to_string(), i)).collect();
            let page = list.page(jobs);
            prop_assert!(page.items.len() <= page.limit);
            prop_assert!((1..=MAX_PAGE).contains(&page.limit));
        }
        let _ = Query::<LogsQuery>::try_from_uri(&uri);
        if let Ok(Query(m)) = Query::<MetricsQuery>::try_from_uri(&uri) {
            let _ = points_limit(m.points);
        }
        presented(&HeaderMap::new(), uri.query());
    }

    #[test]
    fn any_token_reads_back_from_a_link_and_a_cookie(token in "\\PC{1,20}") {
        let encoded = encode_token(&token);
        let uri: Uri = format!("/?token={encoded}").parse().unwrap();
        prop_assert_eq!(presented(&HeaderMap::new(), uri.query()), vec![token.clone()]);
        let mut headers = HeaderMap::new();
        let cookie = HeaderValue::from_str(&format!("other=1; trainctl_token={encoded}")).unwrap();
        headers.insert(header::COOKIE, cookie);
        prop_assert_eq!(presented(&headers, None), vec![token]);
    }

    #[test]
    fn any_cookie_header_is_read_without_panic(cookie in "[ -~]{0,60}") {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        presented(&headers, Some(&cookie));
    }

    #[test]
    fn on_loopback_only_loopback_hosts_get_through(
        name in prop_oneof![
            "[a-z0-9.-]{0,20}",
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
            "\\[[0-9a-f:.]{0,20}\\]",
            Just("localhost".to_string()),
        ],
        port in prop::option::of(any::<u16>()),
    ) {
        let hosts = Hosts::new("127.0.0.1:8080".parse().unwrap(), &[]);
        let host = match port {
            Some(p) => format!("{name}:{p}"),
            None => name.clone(),
        };
        if hosts.allows(&host) {
            prop_assert_eq!(port, Some(8080));
            let bare = name.trim_matches(|c| c == '[' || c == ']').trim_end_matches('.');
            let loopback = bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            prop_assert!(loopback || name.trim_end_matches('.') == "localhost", "{}", host);
        }
    }
}
