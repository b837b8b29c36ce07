use super::*;
use serde_json::json;

fn engine() -> ScriptEngine {
    ScriptEngine::new(Limits::default(), 2).unwrap()
}

fn input(source: serde_json::Value, target: serde_json::Value, action: &str) -> ScriptInput {
    ScriptInput {
        source: source.as_object().unwrap().clone(),
        target: target.as_object().unwrap().clone(),
        action: action.into(),
    }
}

fn script(text: &str) -> Arc<str> {
    Arc::from(text)
}

/// A plain script still works on the same engine (run it more often than there are workers, so
/// every worker is exercised).
async fn still_works(engine: &ScriptEngine) {
    for _ in 0..4 {
        let out = engine
            .run(
                script("target.impact = source.u_sev === 'critical' ? '1' : '3';"),
                input(json!({"u_sev": "critical"}), json!({}), "insert"),
            )
            .await
            .unwrap();
        assert_eq!(out.target["impact"], "1");
    }
}

#[tokio::test]
async fn reads_source_sets_target_and_flags() {
    let e = engine();
    let out = e
        .run(
            script(
                r#"
                target.short_description = source.u_summary.toUpperCase();
                target.impact = source.u_sev === "critical" ? "1" : "3";
                target.urgency = 2;
                if (action === "update") status_message = "updated by script";
                log.info("mapped", source.u_summary);
                log.warn("careful");
                "#,
            ),
            input(json!({"u_summary": "disk full", "u_sev": "critical"}), json!({"short_description": "x"}), "update"),
        )
        .await
        .unwrap();
    assert_eq!(out.target["short_description"], "DISK FULL");
    assert_eq!(out.target["impact"], "1");
    assert_eq!(out.target["urgency"], 2);
    assert!(!out.ignore && !out.error);
    assert_eq!(out.status_message.as_deref(), Some("updated by script"));
    assert_eq!(out.error_message, None);
    assert_eq!(
        out.log,
        vec![("info".to_owned(), "mapped disk full".to_owned()), ("warn".to_owned(), "careful".to_owned())]
    );
}

#[tokio::test]
async fn ignore_and_error_are_read_back() {
    let e = engine();
    let out = e.run(script("ignore = true; status_message = 'duplicate';"), ScriptInput::default()).await.unwrap();
    assert!(out.ignore);
    assert_eq!(out.status_message.as_deref(), Some("duplicate"));
    let out = e.run(script("error = true; error_message = 'no ' + 'caller';"), ScriptInput::default()).await.unwrap();
    assert!(out.error);
    assert_eq!(out.error_message.as_deref(), Some("no caller"));
}

#[tokio::test]
async fn servicenow_boilerplate_runs_unchanged() {
    let e = engine();
    let text = r#"
(function runTransformScript(source, map, log, target /*undefined onStart*/ ) {
    if (source.u_state == "closed") {
        ignore = true;
        return;
    }
    target.category = "network";
})(source, map, log, target);
"#;
    let out = e.run(script(text), input(json!({"u_state": "open"}), json!({}), "insert")).await.unwrap();
    assert_eq!(out.target["category"], "network");
    let out = e.run(script(text), input(json!({"u_state": "closed"}), json!({}), "insert")).await.unwrap();
    assert!(out.ignore);
}

#[tokio::test]
async fn nothing_leaks_from_one_call_to_the_next() {
    let e = ScriptEngine::new(Limits::default(), 1).unwrap();
    e.run(script("var leaked = 1; globalThis.other = 2; Object.prototype.polluted = 3;"), ScriptInput::default())
        .await
        .unwrap();
    let out = e
        .run(
            script("target.seen = [typeof leaked, typeof other, typeof ({}).polluted].join(',');"),
            ScriptInput::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.target["seen"], "undefined,undefined,undefined");
}

#[tokio::test]
async fn no_host_access() {
    let e = engine();
    let out = e
        .run(
            script(
                "target.seen = [typeof require, typeof std, typeof os, typeof process, typeof fetch, \
                 typeof XMLHttpRequest, typeof setTimeout, typeof performance, typeof WebAssembly].join(',');",
            ),
            ScriptInput::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.target["seen"], ["undefined"; 9].join(","));
    // A dynamic import has no loader to reach: the promise is rejected.
    let out = e
        .run(
            script("import('os').then(() => { target.loaded = true; }, (e) => { target.refused = String(e); });"),
            ScriptInput::default(),
        )
        .await
        .unwrap();
    assert!(out.target.get("loaded").is_none(), "{out:?}");
    assert!(out.target["refused"].as_str().unwrap().contains("os"), "{out:?}");
}

#[tokio::test]
async fn promise_reactions_run_before_the_results_are_read() {
    let e = ScriptEngine::new(Limits { time: Duration::from_millis(50), ..Limits::default() }, 1).unwrap();
    let out = e
        .run(script("Promise.resolve('2').then((v) => { target.impact = v; }); (async () => { status_message = 'done'; })();"), ScriptInput::default())
        .await
        .unwrap();
    assert_eq!(out.target["impact"], "2");
    assert_eq!(out.status_message.as_deref(), Some("done"));
    // An endless chain of reactions is stopped like an endless loop, and none survives the call.
    let err =
        e.run(script("(function f() { Promise.resolve().then(f); })();"), ScriptInput::default()).await.unwrap_err();
    assert_eq!(err, ScriptError::Timeout);
    let out = e.run(script("target.after = 1;"), ScriptInput::default()).await.unwrap();
    assert_eq!(out.target["after"], 1);
}

#[test]
fn check_compiles_without_running() {
    assert_eq!(ScriptEngine::check("while (true) {}"), Ok(()));
    assert_eq!(ScriptEngine::check("target.x = 1;"), Ok(()));
    match ScriptEngine::check("target.x = ;\n") {
        Err(ScriptError::Compile(m)) => assert!(m.contains("SyntaxError") && m.contains("line 1"), "{m}"),
        other => panic!("{other:?}"),
    }
    match ScriptEngine::check("var a = 1;\nif (a {\n}") {
        Err(ScriptError::Compile(m)) => assert!(m.contains("line 2"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(ScriptEngine::check("a\0b"), Err(ScriptError::Compile(_))));
}

#[tokio::test]
async fn a_compile_error_at_run_time_is_a_compile_error() {
    let e = engine();
    let err = e.run(script("if ("), ScriptInput::default()).await.unwrap_err();
    assert!(matches!(err, ScriptError::Compile(_)), "{err:?}");
    still_works(&e).await;
}

#[tokio::test]
async fn a_thrown_exception_is_reported_with_its_message_and_line() {
    let e = engine();
    let err = e.run(script("var x = 1;\nthrow new TypeError('bad row');"), ScriptInput::default()).await.unwrap_err();
    assert_eq!(err, ScriptError::Thrown("TypeError: bad row (line 2)".into()));
    assert!(err.to_string().contains("bad row"));
    let err = e.run(script("throw 'plain';"), ScriptInput::default()).await.unwrap_err();
    assert_eq!(err, ScriptError::Thrown("plain".into()));
    let err = e.run(script("source.nope.deeper;"), ScriptInput::default()).await.unwrap_err();
    assert!(matches!(&err, ScriptError::Thrown(m) if m.starts_with("TypeError")), "{err:?}");
    let err = e.run(script("target = 5;"), ScriptInput::default()).await.unwrap_err();
    assert!(matches!(&err, ScriptError::Thrown(m) if m.contains("target")), "{err:?}");
    still_works(&e).await;
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_the_deadline() {
    let limits = Limits { time: Duration::from_millis(50), ..Limits::default() };
    let e = ScriptEngine::new(limits, 2).unwrap();
    for text in [
        "while (true) {}",
        "for (;;) { try { while (true) {} } catch (e) {} }",
        "target.x = 1; for (var i = 0; ; i++) { target.x = i; }",
    ] {
        let started = Instant::now();
        let err = e.run(script(text), ScriptInput::default()).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(err, ScriptError::Timeout, "{text}");
        assert!(took >= Duration::from_millis(50) && took < Duration::from_secs(2), "{text}: {took:?}");
        still_works(&e).await;
    }
}

#[tokio::test]
async fn a_getter_that_loops_while_results_are_read_is_stopped_too() {
    let e = ScriptEngine::new(Limits { time: Duration::from_millis(50), ..Limits::default() }, 1).unwrap();
    let err = e
        .run(script("Object.defineProperty(globalThis, 'ignore', { get() { for (;;) {} } });"), ScriptInput::default())
        .await
        .unwrap_err();
    assert_eq!(err, ScriptError::Timeout);
    let err = e.run(script("target.x = { toJSON() { for (;;) {} } };"), ScriptInput::default()).await.unwrap_err();
    assert_eq!(err, ScriptError::Timeout);
    still_works(&e).await;
}

#[tokio::test]
async fn endless_allocation_hits_the_memory_limit() {
    let e = engine();
    for text in [
        "var s = 'x'; while (true) { s = s + s; }",
        "var parts = []; for (;;) { parts.push(new Array(100000).fill(1)); }",
        "'x'.repeat(1 << 29)",
    ] {
        let started = Instant::now();
        let err = e.run(script(text), ScriptInput::default()).await.unwrap_err();
        assert_eq!(err, ScriptError::MemoryLimit, "{text}");
        assert!(started.elapsed() < Duration::from_secs(2), "{text}: {:?}", started.elapsed());
        still_works(&e).await;
    }
    // Many small objects: the heap fills up more slowly (the collector runs ever more often),
    // so whichever limit comes first stops it.
    let started = Instant::now();
    let err = e
        .run(script("var a = []; while (true) { a.push({ n: a.length, s: 'x' + a.length }); }"), ScriptInput::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ScriptError::MemoryLimit | ScriptError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    still_works(&e).await;
}

#[tokio::test]
async fn endless_recursion_hits_the_stack_limit() {
    let e = engine();
    for text in [
        "function f(n) { return f(n + 1) + 1; } f(0);",
        "var o = {}; o.toString = function () { return '' + this; }; '' + o;",
    ] {
        let err = e.run(script(text), ScriptInput::default()).await.unwrap_err();
        assert_eq!(err, ScriptError::StackOverflow, "{text}");
        still_works(&e).await;
    }
    // Caught by the script: then it is just a value.
    let out = e
        .run(
            script("function f() { return f(); } try { f(); } catch (e) { target.caught = e.name; }"),
            ScriptInput::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.target["caught"], "RangeError");
}

#[tokio::test]
async fn catastrophic_regex_backtracking_is_stopped() {
    let e = ScriptEngine::new(Limits { time: Duration::from_millis(50), ..Limits::default() }, 1).unwrap();
    let started = Instant::now();
    let err = e.run(script("/^(a+)+$/.test('a'.repeat(40) + 'b')"), ScriptInput::default()).await.unwrap_err();
    assert_eq!(err, ScriptError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    still_works(&e).await;
}

#[tokio::test]
async fn the_log_is_bounded() {
    let e = engine();
    let out = e
        .run(script("for (var i = 0; i < 500; i++) log.info('x'.repeat(5000));"), ScriptInput::default())
        .await
        .unwrap();
    assert_eq!(out.log.len(), MAX_LOG_ENTRIES + 1);
    assert!(out.log[0].1.chars().count() <= MAX_MESSAGE_CHARS + 1);
    assert!(out.log.last().unwrap().1.contains("dropped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_calls() {
    let e = Arc::new(engine());
    let text = script("target.n = source.n * 2; target.who = action;");
    let calls: Vec<_> = (0..20)
        .map(|n| {
            let e = e.clone();
            let text = text.clone();
            tokio::spawn(async move {
                let out = e.run(text, input(json!({"n": n}), json!({}), "insert")).await.unwrap();
                (n, out)
            })
        })
        .collect();
    for call in calls {
        let (n, out) = call.await.unwrap();
        assert_eq!(out.target["n"], n * 2);
        assert_eq!(out.target["who"], "insert");
    }
    // And mixed with failures.
    let mut calls = Vec::new();
    for n in 0..20 {
        let e = e.clone();
        let text = script(match n % 4 {
            0 => "while (true) {}",
            1 => "throw new Error('no')",
            _ => "target.ok = true;",
        });
        calls.push(tokio::spawn(async move { (n, e.run(text, ScriptInput::default()).await) }));
    }
    for call in calls {
        let (n, result) = call.await.unwrap();
        match n % 4 {
            0 => assert_eq!(result, Err(ScriptError::Timeout)),
            1 => assert!(matches!(result, Err(ScriptError::Thrown(_)))),
            _ => assert_eq!(result.unwrap().target["ok"], true),
        }
    }
}

/// A rough cost per call; run with `--nocapture` to see it.
#[tokio::test]
async fn time_per_call() {
    let e = ScriptEngine::new(Limits::default(), 1).unwrap();
    let text =
        script("target.impact = source.u_sev === 'critical' ? '1' : '3'; target.short_description = source.u_summary;");
    let row = input(
        json!({"u_sev": "critical", "u_summary": "Disk full on db-01"}),
        json!({"correlation_id": "a"}),
        "insert",
    );
    for _ in 0..20 {
        e.run(text.clone(), row.clone()).await.unwrap();
    }
    let n = 500;
    let started = Instant::now();
    for _ in 0..n {
        e.run(text.clone(), row.clone()).await.unwrap();
    }
    let per_call = started.elapsed() / n;
    println!("time per script call: {per_call:?}");
    assert!(per_call < Duration::from_millis(50), "{per_call:?}");
}

type Expected = fn(&ScriptError) -> bool;

/// A promise job that exhausts a limit, or throws without a handler, fails the whole call: what
/// the script set before it is not returned.
#[tokio::test]
async fn limits_hold_inside_promise_jobs_and_nothing_partial_is_returned() {
    // Time enough to fill the heap in a debug build.
    let e = ScriptEngine::new(Limits { time: Duration::from_secs(2), ..Limits::default() }, 1).unwrap();
    let cases: [(&str, Expected); 7] = [
        // Not a job, for comparison: QuickJS throws `null` when even its error does not fit.
        ("target.a = 1; (() => { const k = []; for (;;) k.push({ n: k.length }); })();", |e| {
            *e == ScriptError::MemoryLimit
        }),
        ("Promise.resolve().then(() => { target.a = 1; let s = 'x'; for (;;) s += s; });", |e| {
            *e == ScriptError::MemoryLimit
        }),
        ("Promise.resolve().then(() => { target.a = 1; const k = []; for (;;) k.push({ n: k.length }); });", |e| {
            *e == ScriptError::MemoryLimit
        }),
        ("Promise.resolve().then(() => { target.a = 1; (function f() { f(); })(); });", |e| {
            *e == ScriptError::StackOverflow
        }),
        ("Promise.resolve().then(() => { target.a = 1; for (;;) {} });", |e| *e == ScriptError::Timeout),
        (
            "(async () => { target.a = 1; await null; throw new Error('late'); })();",
            |e| matches!(e, ScriptError::Thrown(m) if m.contains("Error: late")),
        ),
        (
            "Promise.reject(new TypeError('nobody listens')); target.a = 1;",
            |e| matches!(e, ScriptError::Thrown(m) if m.contains("TypeError: nobody listens")),
        ),
    ];
    for (source, expected) in cases {
        let err = e.run(script(source), ScriptInput::default()).await.unwrap_err();
        assert!(expected(&err), "{source}: {err:?}");
        still_works(&e).await;
    }
    // A rejection that is handled, even later in the same call, is no failure.
    let out = e
        .run(
            script("const p = Promise.reject(new Error('x')); Promise.resolve().then(() => p.catch(() => { target.b = 2; }));"),
            ScriptInput::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.target["b"], 2);
}
