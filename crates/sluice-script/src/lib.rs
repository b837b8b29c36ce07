//! Sandboxed transform scripts (`on_before`, `on_after`) in JavaScript, run by QuickJS (through
//! rquickjs) on a few dedicated worker threads.
//!
//! A script sees ServiceNow's transform-script surface as globals: `source` (the staged row,
//! field → string), `target` (target field → value), `action` (`"insert"` or `"update"`),
//! `ignore`, `error`, `error_message`, `status_message`, `log.info/warn/error(msg)` and an empty
//! `map` object (so ServiceNow's `(function runTransformScript(source, map, log, target) {...})(source,
//! map, log, target);` boilerplate runs unchanged). After the script, those globals are read back
//! into a [`ScriptOutput`]. Values cross the boundary as JSON.
//!
//! The sandbox: QuickJS core only (no `std`/`os` modules, no module loader: no files, network or
//! processes); one `Runtime` per worker with a heap limit and a stack limit; an interrupt handler
//! that stops the script at a per-call deadline; a fresh `Context` per call, so nothing leaks
//! between rows or integrations. A runtime that hit a limit is replaced before the next call.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use failure::{Stage, classify, classify_exception, truncate};
use heap::OverLimit;
use rquickjs::context::intrinsic;
use rquickjs::function::Rest;
use rquickjs::{Coerced, Context, Ctx, Function, Object, Runtime, Value, qjs};
use serde_json::Map;

/// What one script call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Heap of the worker's QuickJS runtime (the whole call: context, values, script).
    pub memory_bytes: usize,
    /// Wall time of one call, from the moment a worker takes it up.
    pub time: Duration,
    /// Native stack QuickJS may use (deep recursion ends in [`ScriptError::StackOverflow`]).
    pub stack_bytes: usize,
}

impl Limits {
    /// The defaults, as a constant (the server's command line takes its defaults from it).
    pub const DEFAULT: Self =
        Self { memory_bytes: 16 * 1024 * 1024, time: Duration::from_millis(100), stack_bytes: 512 * 1024 };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Default number of worker threads.
pub const DEFAULT_WORKERS: usize = 2;

/// What a script sees.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScriptInput {
    /// The staged row: field → string.
    pub source: Map<String, serde_json::Value>,
    /// Target field → value.
    pub target: Map<String, serde_json::Value>,
    /// `"insert"` or `"update"`.
    pub action: String,
}

/// The globals a script left behind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScriptOutput {
    /// `target` after the script (any JSON values the script put there).
    pub target: Map<String, serde_json::Value>,
    pub ignore: bool,
    pub error: bool,
    /// `error_message`, when the script set a non-empty one.
    pub error_message: Option<String>,
    /// `status_message`, when the script set a non-empty one.
    pub status_message: Option<String>,
    /// `log.info/warn/error` calls: (level, message), at most [`MAX_LOG_ENTRIES`].
    pub log: Vec<(String, String)>,
}

/// Log entries kept per call; later ones are dropped (one last entry says so).
pub const MAX_LOG_ENTRIES: usize = 50;
/// Longest log entry or message kept, in characters; longer ones are cut.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// Why a script produced no output. The messages are fit for a row's `error_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("the script does not compile: {0}")]
    Compile(String),
    #[error("the script threw an exception: {0}")]
    Thrown(String),
    #[error("the script was stopped: it ran longer than its time limit")]
    Timeout,
    #[error("the script was stopped: it used more memory than its limit")]
    MemoryLimit,
    #[error("the script was stopped: it nested calls too deeply (stack limit)")]
    StackOverflow,
    #[error("the script engine failed: {0}")]
    Internal(String),
}

/// The intrinsics a script context gets: the language, `Date`, `RegExp`, `JSON`, `Map`/`Set` and
/// `Promise` (its jobs run before the results are read, under the same deadline). No typed
/// arrays, no `performance`, no `WeakRef`.
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::MapSet,
    intrinsic::Promise,
);

/// Promise jobs still run after a failed call, to empty the queue, before the runtime is
/// retired instead.
const MAX_JOBS_AFTER_FAILURE: usize = 10_000;

/// The file name scripts report in stack traces.
const SCRIPT_NAME: &CStr = c"script";

struct Job {
    source: Arc<str>,
    input: ScriptInput,
    reply: tokio::sync::oneshot::Sender<Result<ScriptOutput, ScriptError>>,
    /// Set by the worker when it takes the job up.
    started: Arc<AtomicBool>,
    /// Set by the caller when it gave up on a stuck worker and started a replacement: the worker
    /// exits after this job.
    abandoned: Arc<AtomicBool>,
}

type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

/// A pool of script worker threads. Cheap to share behind an `Arc`; dropping the last one lets
/// the workers finish their current call and exit.
pub struct ScriptEngine {
    limits: Limits,
    jobs: mpsc::Sender<Job>,
    queue: Queue,
    /// Workers running (for replacing a stuck one).
    workers: Arc<AtomicUsize>,
}

impl std::fmt::Debug for ScriptEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptEngine")
            .field("limits", &self.limits)
            .field("workers", &self.workers.load(Ordering::Relaxed))
            .finish()
    }
}

impl ScriptEngine {
    /// Starts `workers` (at least one) worker threads, each with its own QuickJS runtime.
    pub fn new(limits: Limits, workers: usize) -> Result<Self, ScriptError> {
        let (jobs, rx) = mpsc::channel();
        let engine = Self { limits, jobs, queue: Arc::new(Mutex::new(rx)), workers: Arc::new(AtomicUsize::new(0)) };
        for _ in 0..workers.max(1) {
            engine.spawn_worker()?;
        }
        Ok(engine)
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn spawn_worker(&self) -> Result<(), ScriptError> {
        let queue = self.queue.clone();
        let limits = self.limits;
        let count = self.workers.clone();
        let n = count.fetch_add(1, Ordering::Relaxed);
        // QuickJS measures its stack limit from where the context is entered; give the thread
        // that much plus room for Rust frames.
        std::thread::Builder::new()
            .name(format!("sluice-script-{n}"))
            .stack_size(limits.stack_bytes + 2 * 1024 * 1024)
            .spawn(move || {
                worker_loop(&queue, limits);
                count.fetch_sub(1, Ordering::Relaxed);
            })
            .map(drop)
            .map_err(|e| {
                self.workers.fetch_sub(1, Ordering::Relaxed);
                ScriptError::Internal(format!("cannot start a script worker: {e}"))
            })
    }

    /// Compiles a script without running it (when definitions are loaded).
    pub fn check(source: &str) -> Result<(), ScriptError> {
        let limits = Limits::default();
        let (runtime, over) = new_runtime(limits)?;
        let context = Context::custom::<Intrinsics>(&runtime).map_err(|e| internal(&e))?;
        context.with(|ctx| {
            compile(&ctx, source).map(drop).map_err(|e| classify(&ctx, e, false, over.happened(), Stage::Compile))
        })
    }

    /// Runs a script on one of the workers.
    pub async fn run(&self, source: Arc<str>, input: ScriptInput) -> Result<ScriptOutput, ScriptError> {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let started = Arc::new(AtomicBool::new(false));
        let abandoned = Arc::new(AtomicBool::new(false));
        let job = Job { source, input, reply, started: started.clone(), abandoned: abandoned.clone() };
        self.jobs.send(job).map_err(|_| ScriptError::Internal("the script workers stopped".into()))?;
        // The interrupt handler stops scripts at their deadline. Should a worker ever be stuck
        // inside one long built-in call, give up on it after a generous grace period and start a
        // replacement, so the pool keeps its size.
        let grace = self.limits.time * 4 + Duration::from_secs(1);
        let tick = self.limits.time.clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut running_since: Option<Instant> = None;
        loop {
            match tokio::time::timeout(tick, &mut answer).await {
                Ok(Ok(result)) => return result,
                Ok(Err(_)) => return Err(ScriptError::Internal("the script worker stopped".into())),
                Err(_) if started.load(Ordering::Acquire) => {
                    let since = *running_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > grace {
                        abandoned.store(true, Ordering::Release);
                        tracing::error!(
                            grace_ms = grace.as_millis() as u64,
                            "a script worker is stuck; starting a replacement"
                        );
                        if let Err(e) = self.spawn_worker() {
                            tracing::error!(error = %e, "cannot replace the stuck script worker");
                        }
                        return Err(ScriptError::Timeout);
                    }
                }
                Err(_) => {}
            }
        }
    }
}

fn worker_loop(queue: &Mutex<mpsc::Receiver<Job>>, limits: Limits) {
    let mut worker: Option<Worker> = None;
    loop {
        let job = {
            let rx = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            rx.recv()
        };
        let Ok(job) = job else { return };
        if job.reply.is_closed() {
            continue; // the caller went away (e.g. its request timed out)
        }
        job.started.store(true, Ordering::Release);
        let result = catch_unwind(AssertUnwindSafe(|| {
            let w = match &mut worker {
                Some(w) => w,
                None => worker.insert(Worker::new(limits)?),
            };
            Ok::<_, ScriptError>(w.run(&job.source, job.input))
        }));
        let result = match result {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // Whatever state the runtime is in, it is not used again (nor freed: see `retire`).
                if let Some(mut w) = worker.take() {
                    w.retire();
                }
                Err(ScriptError::Internal("the script worker panicked".into()))
            }
        };
        let _ = job.reply.send(result);
        if job.abandoned.load(Ordering::Acquire) {
            return; // a replacement has taken this worker's place
        }
    }
}

fn new_runtime(limits: Limits) -> Result<(Runtime, OverLimit), ScriptError> {
    let (heap, over) = heap::Capped::new(limits.memory_bytes);
    let runtime = Runtime::new_with_alloc(heap).map_err(|e| internal(&e))?;
    runtime.set_max_stack_size(limits.stack_bytes);
    Ok((runtime, over))
}

fn internal(e: &rquickjs::Error) -> ScriptError {
    match e {
        rquickjs::Error::Allocation => ScriptError::MemoryLimit,
        e => ScriptError::Internal(e.to_string()),
    }
}

/// One QuickJS runtime, owned by one worker thread. Between calls it holds no JavaScript object
/// at all (each call's context is freed), which is checked after every call.
struct Worker {
    runtime: Option<Runtime>,
    limits: Limits,
    deadline: Rc<Cell<Option<Instant>>>,
    interrupted: Rc<Cell<bool>>,
    over_limit: OverLimit,
    /// Promises of this call rejected with no handler (yet): the promise's address and why.
    /// One still here when the jobs have run fails the call, like an uncaught exception.
    unhandled: Rc<RefCell<Vec<(usize, ScriptError)>>>,
}

impl Worker {
    fn new(limits: Limits) -> Result<Self, ScriptError> {
        let (runtime, over_limit) = new_runtime(limits)?;
        let deadline: Rc<Cell<Option<Instant>>> = Rc::default();
        let interrupted: Rc<Cell<bool>> = Rc::default();
        let (d, i) = (deadline.clone(), interrupted.clone());
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let late = d.get().is_some_and(|d| Instant::now() >= d);
            if late {
                i.set(true);
            }
            late
        })));
        let unhandled: Rc<RefCell<Vec<(usize, ScriptError)>>> = Rc::default();
        let (u, over) = (unhandled.clone(), over_limit.clone());
        runtime.set_host_promise_rejection_tracker(Some(Box::new(move |_ctx, promise, reason, handled| {
            if !promise.is_object() {
                return;
            }
            // SAFETY: an object's JSValue holds its pointer in `u.ptr` (checked just above).
            let key = unsafe { promise.as_raw().u.ptr } as usize;
            let mut unhandled = u.borrow_mut();
            if handled {
                if let Some(at) = unhandled.iter().rposition(|(k, _)| *k == key) {
                    unhandled.remove(at);
                }
            } else {
                unhandled.push((key, classify_exception(&reason, over.happened(), Stage::Run)));
            }
        })));
        Ok(Self { runtime: Some(runtime), limits, deadline, interrupted, over_limit, unhandled })
    }

    fn run(&mut self, source: &str, input: ScriptInput) -> Result<ScriptOutput, ScriptError> {
        let Some(runtime) = &self.runtime else {
            return Err(ScriptError::Internal("the script runtime is gone".into()));
        };
        self.interrupted.set(false);
        self.unhandled.borrow_mut().clear();
        self.over_limit.reset();
        self.deadline.set(Some(Instant::now() + self.limits.time));
        let result = self.call(runtime, source, input);
        self.deadline.set(None);
        runtime.run_gc();
        if !is_clean(runtime) {
            // Something outlived its context (a QuickJS leak, or jobs that would not finish):
            // never let it reach the next call.
            tracing::warn!("a script left JavaScript objects behind; its runtime is replaced");
            let fresh = Worker::new(self.limits)?;
            drop(std::mem::replace(self, fresh));
        }
        result
    }

    fn call(&self, runtime: &Runtime, source: &str, input: ScriptInput) -> Result<ScriptOutput, ScriptError> {
        let context = Context::custom::<Intrinsics>(runtime).map_err(|e| internal(&e))?;
        let log: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
        let result = context.with(|ctx| {
            let interrupted = || self.interrupted.get();
            let fail = |e, stage| classify(&ctx, e, interrupted(), self.over_limit.happened(), stage);
            let result = (|| {
                install_globals(&ctx, &input, &log).map_err(|e| fail(e, Stage::Setup))?;
                let compiled = compile(&ctx, source).map_err(|e| fail(e, Stage::Compile))?;
                execute(&ctx, compiled).map_err(|e| fail(e, Stage::Run))?;
                // Promise reactions the script queued, under the same deadline.
                while ctx.execute_pending_job() {
                    if interrupted() {
                        return Err(ScriptError::Timeout);
                    }
                }
                if let Some((_, error)) = self.unhandled.borrow_mut().drain(..).next() {
                    return Err(error);
                }
                read_back(&ctx).map_err(|e| fail(e, Stage::ReadBack))?
            })();
            // After a failure, jobs may still be queued: run them off (past the deadline they
            // are interrupted at once), so none survives into the next call.
            for _ in 0..MAX_JOBS_AFTER_FAILURE {
                if !ctx.execute_pending_job() {
                    break;
                }
            }
            result
        });
        drop(context);
        let mut output = result?;
        output.log = log.take();
        Ok(output)
    }

    /// Takes the runtime out of service. A clean runtime is freed; one that still holds objects
    /// is leaked on purpose, because freeing it would trip QuickJS's leak assertion and abort
    /// the process.
    fn retire(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.run_gc();
            if is_clean(&runtime) {
                drop(runtime);
            } else {
                std::mem::forget(runtime);
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.retire();
    }
}

/// No JavaScript object and no pending job is left in the runtime.
fn is_clean(runtime: &Runtime) -> bool {
    !runtime.is_job_pending() && runtime.memory_usage().obj_count == 0
}

fn install_globals<'js>(
    ctx: &Ctx<'js>,
    input: &ScriptInput,
    log: &Rc<RefCell<Vec<(String, String)>>>,
) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    let json = |map: &Map<String, serde_json::Value>| serde_json::to_string(map).unwrap_or_else(|_| "{}".into());
    globals.set("source", ctx.json_parse(json(&input.source))?)?;
    globals.set("target", ctx.json_parse(json(&input.target))?)?;
    globals.set("action", input.action.as_str())?;
    globals.set("ignore", false)?;
    globals.set("error", false)?;
    globals.set("error_message", "")?;
    globals.set("status_message", "")?;
    globals.set("map", Object::new(ctx.clone())?)?;
    let logger = Object::new(ctx.clone())?;
    for level in ["info", "warn", "error"] {
        let entries = log.clone();
        let f = Function::new(ctx.clone(), move |parts: Rest<Value<'_>>| -> rquickjs::Result<()> {
            let kept = entries.borrow().len();
            if kept < MAX_LOG_ENTRIES {
                let mut text = Vec::with_capacity(parts.0.len());
                for part in parts.0 {
                    text.push(part.get::<Coerced<String>>()?.0);
                }
                entries.borrow_mut().push((level.to_owned(), truncate(text.join(" "))));
            } else if kept == MAX_LOG_ENTRIES {
                let note = format!("(further log entries dropped after {MAX_LOG_ENTRIES})");
                entries.borrow_mut().push(("warn".into(), note));
            }
            Ok(())
        })?;
        logger.set(level, f)?;
    }
    globals.set("log", logger)?;
    Ok(())
}

/// Compiles global (sloppy-mode) script code without running it.
fn compile<'js>(ctx: &Ctx<'js>, source: &str) -> rquickjs::Result<Value<'js>> {
    let text = CString::new(source)?;
    let flags = (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
    // SAFETY: `ctx` is a live context of this thread's runtime (we are inside `Context::with`);
    // `text` is NUL-terminated and `source.len()` bytes long, and outlives the call. The returned
    // value is owned by us: either the exception marker (not reference counted) or a compiled
    // function, handed to `Value::from_raw`, which frees it when dropped.
    unsafe {
        let value = qjs::JS_Eval(ctx.as_raw().as_ptr(), text.as_ptr(), source.len() as _, SCRIPT_NAME.as_ptr(), flags);
        if qjs::JS_IsException(value) {
            return Err(rquickjs::Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), value))
    }
}

/// Runs a script compiled by [`compile`].
fn execute<'js>(ctx: &Ctx<'js>, compiled: Value<'js>) -> rquickjs::Result<()> {
    // SAFETY: `compiled` is a compiled function of this context (from `compile`). `JS_EvalFunction`
    // consumes one reference, so we take a new one (`JS_DupValue`) and let `compiled` release its
    // own (and its context handle) as usual. The result is owned by us and freed by the `Value`
    // it is wrapped in.
    unsafe {
        let function = qjs::JS_DupValue(ctx.as_raw().as_ptr(), compiled.as_raw());
        drop(compiled);
        let result = qjs::JS_EvalFunction(ctx.as_raw().as_ptr(), function);
        if qjs::JS_IsException(result) {
            return Err(rquickjs::Error::Exception);
        }
        drop(Value::from_raw(ctx.clone(), result));
    }
    Ok(())
}

/// Reads the globals back. Getters or `toString`/`toJSON` the script defined run here, still
/// under the deadline.
fn read_back(ctx: &Ctx<'_>) -> rquickjs::Result<Result<ScriptOutput, ScriptError>> {
    let globals = ctx.globals();
    let target: Value = globals.get("target")?;
    let target = match ctx.json_stringify(target)? {
        Some(text) => text.to_string()?,
        None => "null".into(),
    };
    let target = match serde_json::from_str(&target) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return Ok(Err(ScriptError::Thrown("`target` must stay an object".into()))),
    };
    let flag = |name: &str| -> rquickjs::Result<bool> { Ok(globals.get::<_, Coerced<bool>>(name)?.0) };
    let text = |name: &str| -> rquickjs::Result<Option<String>> {
        let value: Value = globals.get(name)?;
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        let text = value.get::<Coerced<String>>()?.0;
        Ok(Some(truncate(text)).filter(|t| !t.is_empty()))
    };
    Ok(Ok(ScriptOutput {
        target,
        ignore: flag("ignore")?,
        error: flag("error")?,
        error_message: text("error_message")?,
        status_message: text("status_message")?,
        log: Vec::new(),
    }))
}

mod failure;
mod heap;
#[cfg(test)]
mod tests;
