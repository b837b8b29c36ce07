//! The Attachment API: uploads (raw body and multipart form), metadata, downloads, deletes; the
//! parent record's rights; the content type decided by the bytes; bad input as structured
//! errors; attachments deleted with their record.

use serde_json::{Value, json};

use crate::helpers::*;

/// `hello attachment` and its SHA-256.
const HELLO: &[u8] = b"hello attachment";
const HELLO_SHA256: &str = "7fa36b95d5c98859ed72b4787f3c28b29eaa103970786755c9711cbb19be631c";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

async fn answer(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn as_user(req: reqwest::RequestBuilder, user: &str, password: &str) -> reqwest::RequestBuilder {
    req.basic_auth(user, Some(password))
}

async fn new_record(s: &Server, table: &str, body: Value) -> String {
    let r = s.admin(s.http.post(s.url(&format!("/api/now/table/{table}")))).json(&body).send().await.unwrap();
    let (status, _, body) = answer(r).await;
    assert_eq!(status, 201, "{body}");
    body["result"]["sys_id"].as_str().unwrap().to_owned()
}

fn upload_url(s: &Server, table: &str, sys_id: &str, file_name: &str) -> String {
    let mut url = reqwest::Url::parse(&s.url("/api/now/attachment/file")).unwrap();
    url.query_pairs_mut()
        .append_pair("table_name", table)
        .append_pair("table_sys_id", sys_id)
        .append_pair("file_name", file_name);
    url.to_string()
}

fn list_url(s: &Server, pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(&s.url("/api/now/attachment")).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// A `multipart/form-data` body with the given text fields, then (if any) the file part.
fn form(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "sluiceTestBoundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
        );
    }
    if let Some((file_name, content_type, content)) = file {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"uploadFile\"; filename=\"{file_name}\"\r\n\
                 Content-Type: {content_type}\r\n\r\n"
            )
            .bytes(),
        );
        body.extend(content);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(req: reqwest::RequestBuilder, (content_type, body): (String, Vec<u8>)) -> (u16, Value) {
    let (status, _, body) = answer(req.header("content-type", content_type).body(body).send().await.unwrap()).await;
    (status, body)
}

#[tokio::test]
async fn upload_read_download_and_delete() {
    let s = Server::start();
    let incident = new_record(&s, "incident", json!({"short_description": "Disk full"})).await;

    // A raw upload: labelled HTML, stored as what the bytes are.
    let r = s
        .admin(s.http.post(upload_url(&s, "incident", &incident, "evidence.png")))
        .header("content-type", "text/html")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    let (status, headers, body) = answer(r).await;
    assert_eq!(status, 201, "{body}");
    let meta = &body["result"];
    let id = meta["sys_id"].as_str().unwrap().to_owned();
    assert!(is_sys_id(&id));
    assert_eq!(headers["location"], s.url(&format!("/api/now/attachment/{id}")).as_str());
    assert_eq!(meta["download_link"], s.url(&format!("/api/now/attachment/{id}/file")));
    assert_eq!(meta["content_type"], "image/png", "sniffed, not the label");
    assert_eq!(meta["table_name"], "incident");
    assert_eq!(meta["table_sys_id"], incident.as_str());
    assert_eq!(meta["file_name"], "evidence.png");
    assert_eq!(meta["size_bytes"], PNG.len().to_string());
    assert_eq!(meta["sys_created_by"], "admin");
    assert!(is_datetime(meta["sys_created_on"].as_str().unwrap()));
    assert!(meta.as_object().unwrap().values().all(Value::is_string), "every value is a string: {meta}");

    // A form upload: HTML labelled text/html is served as plain text; the hash is recorded.
    let html = b"<html><script>alert(1)</script></html>";
    let upload = s.admin(s.http.post(s.url("/api/now/v1/attachment/upload")));
    let fields = [("table_name", "incident"), ("table_sys_id", incident.as_str())];
    let (status, body) = post_form(upload, form(&fields, Some((r#"Überblick \"1\".html"#, "text/html", html)))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["result"]["content_type"], "text/plain");
    assert_eq!(body["result"]["file_name"], "Überblick \"1\".html");
    let html_id = body["result"]["sys_id"].as_str().unwrap().to_owned();
    let r = s.admin(s.http.post(upload_url(&s, "incident", &incident, "hello.txt"))).body(HELLO).send().await.unwrap();
    let (status, _, body) = answer(r).await;
    assert_eq!(status, 201);
    assert_eq!(
        (body["result"]["hash"].as_str(), body["result"]["content_type"].as_str()),
        (Some(HELLO_SHA256), Some("text/plain"))
    );

    // The list, filtered by the encoded query, always with X-Total-Count.
    let query = format!("table_name=incident^table_sys_id={incident}^ORDERBYfile_name");
    let r = s.admin(s.http.get(list_url(&s, &[("sysparm_query", &query), ("sysparm_limit", "2")])));
    let (status, headers, body) = answer(r.send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-total-count"], "3");
    let names: Vec<&str> =
        body["result"].as_array().unwrap().iter().map(|a| a["file_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["evidence.png", "hello.txt"]);
    let r = s.admin(s.http.get(list_url(&s, &[("sysparm_query", "file_name=nothing.txt")])));
    let (_, headers, body) = answer(r.send().await.unwrap()).await;
    assert_eq!((headers["x-total-count"].to_str().unwrap(), body["result"].as_array().unwrap().len()), ("0", 0));

    // Metadata and content, under every prefix.
    let (status, shown) = s.get(&format!("/api/now/v2/attachment/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(&shown["result"], meta);
    let r = s.admin(s.http.get(s.url(&format!("/api/now/v1/attachment/{id}/file")))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"evidence.png\"; filename*=UTF-8''evidence.png"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
    let r = s.admin(s.http.get(s.url(&format!("/api/now/attachment/{html_id}/file")))).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"_berblick _1_.html\"; filename*=UTF-8''%C3%9Cberblick%20%221%22.html"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), html);

    // Deleting: 204, then gone, and sys_audit says who deleted which file.
    let r = s.admin(s.http.delete(s.url(&format!("/api/now/attachment/{id}")))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    for path in [format!("/api/now/attachment/{id}"), format!("/api/now/attachment/{id}/file")] {
        let (status, body) = s.get(&path).await;
        assert_eq!(status, 404, "{path}");
        assert_envelope(&body, "record_not_found");
    }
    let (_, audit) =
        s.get(&format!("/api/now/table/sys_audit?sysparm_query=tablename=sys_attachment^documentkey={id}")).await;
    let rows = audit["result"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{audit}");
    assert_eq!((rows[0]["fieldname"].as_str(), rows[0]["user"].as_str()), (Some("DELETED"), Some("admin")));
    assert_eq!(rows[0]["reason"], format!("Attachment API: evidence.png deleted from incident {incident}"));
}

#[tokio::test]
async fn the_parent_tables_rights_apply() {
    let s = Server::start();
    let itil = s.add_account("agent", &["itil"]);
    let loader = s.add_account("loader", &["import_set_loader"]);
    let incident = new_record(&s, "incident", json!({"short_description": "Printer"})).await;
    let user = new_record(&s, "sys_user", json!({"user_name": "bob", "name": "Bob"})).await;

    // itil writes incidents: it may attach to one, and sees what it attached.
    let r = as_user(s.http.post(upload_url(&s, "incident", &incident, "a.txt")), "agent", &itil).body("a");
    let (status, _, body) = answer(r.send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
    let on_incident = body["result"]["sys_id"].as_str().unwrap().to_owned();
    assert_eq!(body["result"]["sys_created_by"], "agent");
    // itil reads users but does not write them: no upload, no delete, but it may read.
    let r = as_user(s.http.post(upload_url(&s, "sys_user", &user, "b.txt")), "agent", &itil).body("b");
    let (status, _, body) = answer(r.send().await.unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert_envelope(&body, "forbidden");
    let r = s.admin(s.http.post(upload_url(&s, "sys_user", &user, "b.txt"))).body("b");
    let (_, _, body) = answer(r.send().await.unwrap()).await;
    let on_user = body["result"]["sys_id"].as_str().unwrap().to_owned();
    let r = as_user(s.http.get(s.url(&format!("/api/now/attachment/{on_user}/file"))), "agent", &itil);
    assert_eq!(r.send().await.unwrap().status(), 200);
    let r = as_user(s.http.delete(s.url(&format!("/api/now/attachment/{on_user}"))), "agent", &itil);
    let (status, _, body) = answer(r.send().await.unwrap()).await;
    assert_eq!(status, 403);
    assert_envelope(&body, "forbidden");
    let r = as_user(s.http.get(s.url("/api/now/attachment")), "agent", &itil);
    let (_, headers, _) = answer(r.send().await.unwrap()).await;
    assert_eq!(headers["x-total-count"], "2");

    // An import-only account reads no table: an empty list, and the others are not found.
    let r = as_user(s.http.get(s.url("/api/now/attachment")), "loader", &loader);
    let (status, headers, body) = answer(r.send().await.unwrap()).await;
    assert_eq!((status, headers["x-total-count"].to_str().unwrap()), (200, "0"));
    assert_eq!(body["result"], json!([]));
    for path in [format!("/api/now/attachment/{on_incident}"), format!("/api/now/attachment/{on_incident}/file")] {
        let (status, _, body) =
            answer(as_user(s.http.get(s.url(&path)), "loader", &loader).send().await.unwrap()).await;
        assert_eq!(status, 404, "{path}");
        assert_envelope(&body, "record_not_found");
    }
    let r = as_user(s.http.post(upload_url(&s, "incident", &incident, "c.txt")), "loader", &loader).body("c");
    assert_eq!(r.send().await.unwrap().status(), 403);
    let r = s.http.get(s.url("/api/now/attachment")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn bad_input_is_refused_with_structured_errors() {
    let s = Server::start_with(&["--max-attachment-bytes", "1000"]);
    let incident = new_record(&s, "incident", json!({"short_description": "Disk"})).await;
    let raw = |url: String, body: Vec<u8>| s.admin(s.http.post(url)).body(body);
    let expect = |status: u16, code: &'static str| {
        move |(got, body): (u16, Value)| {
            assert_eq!(got, status, "{body}");
            assert_envelope(&body, code);
            body
        }
    };
    let send = |req: reqwest::RequestBuilder| async move {
        let (status, _, body) = answer(req.send().await.unwrap()).await;
        (status, body)
    };

    let base = s.url("/api/now/attachment/file");
    for (query, missing) in [
        (format!("?table_sys_id={incident}&file_name=a.txt"), "table_name"),
        ("?table_name=incident&file_name=a.txt".to_owned(), "table_sys_id"),
        (format!("?table_name=incident&table_sys_id={incident}&file_name="), "file_name"),
    ] {
        let body = expect(400, "missing_parameter")(send(raw(format!("{base}{query}"), b"x".to_vec())).await);
        assert!(body["error"]["detail"].as_str().unwrap().contains(missing), "{body}");
    }
    expect(400, "invalid_table")(send(raw(upload_url(&s, "u_nope", &incident, "a.txt"), b"x".to_vec())).await);
    expect(400, "attachments_not_allowed")(send(raw(upload_url(&s, "sys_audit", &incident, "a"), b"x".to_vec())).await);
    let absent = "0123456789abcdef0123456789abcdef";
    expect(404, "parent_not_found")(send(raw(upload_url(&s, "incident", absent, "a.txt"), b"x".to_vec())).await);
    expect(404, "parent_not_found")(send(raw(upload_url(&s, "incident", "INC0010001", "a.txt"), b"x".to_vec())).await);
    expect(400, "invalid_parameter")(send(raw(upload_url(&s, "incident", &incident, "a\r\nb"), b"x".to_vec())).await);

    // Too large: declared, or streamed without a length.
    let big = vec![b'x'; 1001];
    let body =
        expect(413, "attachment_too_large")(send(raw(upload_url(&s, "incident", &incident, "a"), big.clone())).await);
    assert!(body["error"]["detail"].as_str().unwrap().contains("1000 bytes"));
    let path = upload_url(&s, "incident", &incident, "a").trim_start_matches(&s.url("")).to_owned();
    let (status, body) = chunked_post(&s, &path, &big);
    assert_eq!(status, 413, "{body}");
    assert_envelope(&serde_json::from_str(&body).unwrap(), "attachment_too_large");
    let ok = raw(upload_url(&s, "incident", &incident, "a"), vec![b'x'; 1000]);
    assert_eq!(send(ok).await.0, 201, "exactly the limit is taken");

    // Forms: not multipart, no file, a part after the file, too large.
    let url = s.url("/api/now/attachment/upload");
    let fields = [("table_name", "incident"), ("table_sys_id", incident.as_str())];
    let req = s.admin(s.http.post(&url)).header("content-type", "application/json").body("{}");
    expect(400, "malformed_multipart")(send(req).await);
    expect(400, "malformed_multipart")(post_form(s.admin(s.http.post(&url)), form(&fields, None)).await);
    let (ct, mut late) = form(&fields, Some(("a.txt", "text/plain", b"a")));
    let tail = "--sluiceTestBoundary7MA4YWxk--\r\n";
    late.truncate(late.len() - tail.len());
    late.extend(b"--sluiceTestBoundary7MA4YWxk\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n");
    late.extend(tail.bytes());
    let body = expect(400, "malformed_multipart")(post_form(s.admin(s.http.post(&url)), (ct, late)).await);
    assert!(body["error"]["detail"].as_str().unwrap().contains("last part"), "{body}");
    let missing = form(&[("table_name", "incident")], Some(("a.txt", "text/plain", b"a")));
    expect(400, "missing_parameter")(post_form(s.admin(s.http.post(&url)), missing).await);
    let large = form(&fields, Some(("a.txt", "text/plain", &big)));
    expect(413, "attachment_too_large")(post_form(s.admin(s.http.post(&url)), large).await);
    let (_, page) = s.get("/api/now/attachment").await;
    assert_eq!(page["result"].as_array().unwrap().len(), 1, "only the upload of exactly the limit was stored");
}

/// POSTs `content` as admin in chunks of 100 bytes (no `Content-Length`) over a plain socket;
/// the status and body of the answer.
fn chunked_post(s: &Server, path: &str, content: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let host = s.url("").trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut socket = std::net::TcpStream::connect(&host).unwrap();
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("admin:{ADMIN_PASSWORD}"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).unwrap();
    for chunk in content.chunks(100) {
        // The server may answer and close before the last chunk: later writes may fail.
        if socket.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_err()
            || socket.write_all(chunk).is_err()
            || socket.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn deleting_a_record_deletes_its_attachments() {
    let s = Server::start();
    let doomed = new_record(&s, "incident", json!({"short_description": "Doomed"})).await;
    let kept = new_record(&s, "incident", json!({"short_description": "Kept"})).await;
    let mut ids = Vec::new();
    for parent in [&doomed, &doomed, &kept] {
        let r = s.admin(s.http.post(upload_url(&s, "incident", parent, "x.txt"))).body("x").send().await.unwrap();
        let (_, _, body) = answer(r).await;
        ids.push(body["result"]["sys_id"].as_str().unwrap().to_owned());
    }
    let r = s.admin(s.http.delete(s.url(&format!("/api/now/table/incident/{doomed}")))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    for id in &ids[..2] {
        assert_eq!(s.get(&format!("/api/now/attachment/{id}")).await.0, 404);
    }
    let r = s.admin(s.http.get(s.url(&format!("/api/now/attachment/{}/file", ids[2])))).send().await.unwrap();
    assert_eq!(r.status(), 200, "another record's attachment stays");
    let (_, audit) = s.get("/api/now/table/sys_audit?sysparm_query=tablename=sys_attachment^fieldname=DELETED").await;
    assert_eq!(audit["result"].as_array().unwrap().len(), 2, "{audit}");
}
