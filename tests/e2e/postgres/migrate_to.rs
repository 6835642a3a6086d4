//! `warden migrate --to <config>`: a directory store copied into PostgreSQL
//! by the `warden` binary, run again at will, never overwriting a session
//! the target holds as more recently used.

use std::collections::HashMap;

use serde_json::{Value, json};
use warden_tests::postgres::Postgres;

use super::{Agent, Cluster, Host, run};

/// `warden sessions list --json` on `host`'s store, by key.
fn listed(host: &Host) -> HashMap<String, Value> {
    let out = run(host.warden().args(["sessions", "list", "--json"]));
    let sessions: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    sessions.into_iter().map(|s| (s["id"].as_str().unwrap().to_string(), s)).collect()
}

/// `warden migrate --to` from `from`'s store into `to`'s; its report line.
fn migrate(from: &Host, to: &Host) -> String {
    run(from.warden().arg("migrate").arg("--to").arg(to.config())).trim().to_string()
}

/// `line` is the report of a copy of `copied` sessions that kept `kept`.
fn assert_report(line: &str, copied: u64, kept: u64) {
    assert!(
        line.starts_with(&format!("copied {copied} session(s) into storage-postgres ("))
            && line.ends_with(&format!("; kept {kept} the target held as recent or newer; skipped 0")),
        "expected {copied} copied and {kept} kept: {line}"
    );
}

#[test]
fn migrate_to_copies_a_directory_store_and_overwrites_nothing_newer() {
    let pg = Postgres::required("migrate_to_copies_a_directory_store_and_overwrites_nothing_newer");
    let cluster = Cluster::new(&pg, "migrate_to");
    let dir_host = Host::new(cluster.path("dir"), None, &cluster.project(), Agent::Fake);
    let pg_host = cluster.host("pg", Agent::Fake);

    let on_dir = dir_host.serve();
    let ping = on_dir.call("ping", json!({}));
    assert_eq!(ping.ok()["plugins"]["storage-backend"], "storage-dir", "{}", ping.text());
    for key in ["one", "two", "three"] {
        let turn = on_dir.call("codex", json!({"prompt": key, "sessionId": key, "cwd": cluster.project()}));
        assert_eq!(turn.ok()["content"], "done");
    }
    let in_dir = on_dir.sessions();
    drop(on_dir);
    assert!(listed(&pg_host).is_empty(), "the database starts empty");

    assert_report(&migrate(&dir_host, &pg_host), 3, 0);
    let in_pg = listed(&pg_host);
    assert_eq!(in_pg.len(), 3, "{in_pg:?}");
    for (key, session) in &in_dir {
        let copy = &in_pg[key];
        for field in ["turnCount", "threadId", "cwd", "createdAt", "lastAccessedAt"] {
            assert_eq!(copy[field], session[field], "{key}'s {field}: {copy} against {session}");
        }
    }
    let on_pg = pg_host.serve();
    assert_eq!(on_pg.sessions().len(), 3, "a Warden on the database lists them");

    // Again: nothing to copy.
    assert_report(&migrate(&dir_host, &pg_host), 0, 3);

    // "two" moves on in the database, then "three" in the directory store.
    let turn = on_pg.call("codex", json!({"prompt": "newer in pg", "sessionId": "two"}));
    assert_eq!(turn.ok()["content"], "done");
    drop(on_pg);
    let newer_in_pg = listed(&pg_host)["two"].clone();
    assert_eq!(newer_in_pg["turnCount"], 2);
    let on_dir = dir_host.serve();
    let turn = on_dir.call("codex", json!({"prompt": "newer in dir", "sessionId": "three"}));
    assert_eq!(turn.ok()["content"], "done");
    drop(on_dir);

    assert_report(&migrate(&dir_host, &pg_host), 1, 2);
    let in_pg = listed(&pg_host);
    assert_eq!(in_pg["two"], newer_in_pg, "the session newer in the database was kept");
    assert_eq!(in_pg["three"], listed(&dir_host)["three"], "the session newer in the directory was copied");
    assert_eq!(in_pg["three"]["turnCount"], 2);
    assert_eq!(in_pg["one"]["turnCount"], 1);
}
