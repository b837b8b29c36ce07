//! `sluice load FILE`: JSON lines and CSV through the Import Set pipeline (contract, transform,
//! history), on the server's store, with a file that does not parse refused before anything
//! is loaded.

use crate::backend;
use crate::helpers::Server;

#[tokio::test]
async fn a_file_loads_through_the_pipeline_and_a_broken_one_loads_nothing() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    std::fs::write(
        &jsonl,
        "{\"u_short_description\":\"Disk full on db-01\",\"u_urgency\":\"1\",\"u_correlation_id\":\"load:1\"}\n\
         \n\
         {\"u_short_description\":\"Disk still full on db-01\",\"u_correlation_id\":\"load:1\"}\n\
         {\"u_description\":\"no short description\"}\n",
    )
    .unwrap();
    let out = server.cli().arg("load").arg(&jsonl).arg("--data").arg(&server.data).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "a record in error fails the command: {stdout}{stderr}");
    assert!(stdout.contains("loaded 3 records from"), "{stdout}");
    assert!(stdout.contains("inserted 1  updated 1  ignored 0  skipped 0  error 1"), "{stdout}");
    assert!(stderr.contains("record 3: /u_short_description: "), "{stderr}");
    assert!(stderr.contains("sluice replay --integration u_incident_import"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no progress bar off a terminal: {stderr:?}");

    // Coalesced on the correlation id: one incident, updated, its history naming the loader.
    let (_, list) = server.get("/api/now/table/incident?sysparm_query=correlation_id=load:1").await;
    let incidents = list["result"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{list}");
    assert_eq!(incidents[0]["short_description"], "Disk still full on db-01");
    assert_eq!(incidents[0]["sys_created_by"], "admin");
    let sys_id = incidents[0]["sys_id"].as_str().unwrap();
    let (_, audit) = server.get(&format!("/api/now/table/sys_audit?sysparm_query=documentkey={sys_id}")).await;
    assert!(audit["result"].as_array().unwrap().iter().any(|a| a["fieldname"] == "short_description"), "{audit}");

    // Counted in the integration's statistics like an insertMultiple request.
    let (_, stats) = server.get("/api/sluice/v1/integrations/u_incident_import/stats?window=all").await;
    let r = &stats["result"];
    let counted = (r["received"].as_u64(), r["inserted"].as_u64(), r["updated"].as_u64(), r["error"].as_u64());
    assert_eq!(counted, (Some(1), Some(1), Some(1), Some(1)), "one batch of three rows: {stats}");
    assert_eq!(r["accounts"]["admin"]["inserted"], 1, "{stats}");

    // CSV, headers as labels or names; quoted commas kept.
    let csv = dir.path().join("tickets.csv");
    std::fs::write(&csv, "Short description,u_urgency\n\"Printer, 3rd floor\",3\nVPN down,1\n").unwrap();
    let out = server.cli().arg("load").arg(&csv).arg("--data").arg(&server.data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("inserted 2  updated 0"));
    let (_, list) = server.get("/api/now/table/incident?sysparm_query=short_description=Printer, 3rd floor").await;
    assert_eq!(list["result"].as_array().unwrap().len(), 1, "{list}");

    // A line that is not JSON: nothing of the file is loaded.
    let staged = backend::scalar(&server.data, "SELECT COUNT(*) FROM u_incident_import");
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(&broken, "{\"u_short_description\":\"fine\"}\n{not json\n").unwrap();
    let out = server.cli().arg("load").arg(&broken).arg("--data").arg(&server.data).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("broken.jsonl: line 2: "), "{stderr}");
    assert_eq!(backend::scalar(&server.data, "SELECT COUNT(*) FROM u_incident_import"), staged);
    let out = server.cli().arg("load").arg(dir.path().join("x.txt")).arg("--data").arg(&server.data).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("say --format jsonl or --format csv"));
}
