//! The background runtime: work nobody waits on at a desk (replicating notices and index
//! rows, importing a list, serving a peer's bulk pulls, reminders) runs on threads at a
//! lower scheduling priority (nice [`NICE`]) than the calls someone waits on (a screening,
//! an evaluation for a peer, an operator's command).
//!
//! On a busy machine the scheduler then gives the waiting calls the CPU first. Measured
//! with `tessera-soak --no-flood` (a 100,000-notice import replicated between two nodes on
//! two cores while one screens): the screening p99 of the import's first 30 s went from
//! 166 to 74 ms (BENCHMARKS.md).
//!
//! `tessera-node` installs the runtime once at start ([`install`]); without it (tests that
//! run several nodes in one process) everything runs on the current runtime, as before.
//! The index rows themselves are built on their own pool at the lowest priority
//! (`matching::holder`).

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// The niceness of background threads: above the calls someone waits on (0), below
/// them enough that a busy machine serves those first, and not so low that a background
/// thread holding a store lock a waiting call needs is starved (index rows, which hold
/// no lock, are built at 19).
pub const NICE: i32 = 10;

static HANDLE: OnceLock<Handle> = OnceLock::new();

/// Builds the background runtime: `threads` workers (and its blocking pool), every thread
/// at nice [`NICE`].
pub fn runtime(threads: usize) -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("tessera-bg")
        .on_thread_start(lower_priority)
        .enable_all()
        .build()
}

/// Makes `handle` the runtime background work runs on, for the rest of the process. A
/// second call is ignored.
pub fn install(handle: Handle) {
    let _ = HANDLE.set(handle);
}

/// Lowers the calling thread to nice [`NICE`]. Lowering one's own priority needs no
/// privilege; if refused anyway, the thread keeps its priority.
fn lower_priority() {
    // The crate maps 0..=99 onto niceness 19..=-20 (39 steps): 22 is nice 10 on Linux,
    // as the test below checks.
    let lowered = thread_priority::ThreadPriorityValue::try_from(22u8)
        .map_err(|_| ())
        .and_then(|p| {
            thread_priority::set_current_thread_priority(
                thread_priority::ThreadPriority::Crossplatform(p),
            )
            .map_err(|_| ())
        });
    if lowered.is_err() {
        tracing::debug!("background thread kept its priority");
    }
}

/// Runs `future` as a background task.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match HANDLE.get() {
        Some(h) => h.spawn(future),
        None => tokio::spawn(future),
    }
}

/// Runs blocking `f` on the background runtime's blocking pool.
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match HANDLE.get() {
        Some(h) => h.spawn_blocking(f),
        None => tokio::task::spawn_blocking(f),
    }
}

/// Runs `future` on the background runtime and waits for it. A panic in it is raised
/// here; `None` if the background runtime stopped before it finished. If the wait is
/// dropped (a caller gave up on its call), the work is cancelled with it, as it would be
/// on the current runtime: a peer cannot leave work running after its call is gone.
pub async fn run<F>(future: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    run_on(HANDLE.get(), future).await
}

async fn run_on<F>(handle: Option<&Handle>, future: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match handle {
        Some(h) => {
            let mut task = AbortOnDrop(h.spawn(future));
            match (&mut task.0).await {
                Ok(out) => Some(out),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => None,
            }
        }
        None => Some(future.await),
    }
}

/// Cancels its task when dropped (a no-op once the task is done).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The niceness of the calling thread, from /proc (field 19 after the command name).
    fn nice_of_this_thread() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        after
            .split(' ')
            .nth(16)
            .and_then(|n| n.parse().ok())
            .expect("nice")
    }

    #[test]
    fn background_threads_run_below_the_waiting_calls() {
        let rt = runtime(1).unwrap();
        let on_worker = rt.block_on(async { tokio::spawn(async { nice_of_this_thread() }).await });
        let on_blocking =
            rt.block_on(async { tokio::task::spawn_blocking(nice_of_this_thread).await });
        assert_eq!(on_worker.unwrap(), NICE);
        assert_eq!(on_blocking.unwrap(), NICE);
    }

    #[test]
    fn work_whose_caller_gave_up_is_cancelled() {
        let bg = runtime(1).unwrap();
        let handle = bg.handle().clone();
        let caller = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = finished.clone();
        caller.block_on(async move {
            let work = run_on(Some(&handle), async move {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            // The caller gives up after 50 ms.
            let gave_up = tokio::time::timeout(std::time::Duration::from_millis(50), work).await;
            assert!(gave_up.is_err());
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(
            !finished.load(std::sync::atomic::Ordering::SeqCst),
            "the work went on after its caller left"
        );
        assert_eq!(
            caller.block_on(run_on(Some(bg.handle()), async { 5 })),
            Some(5),
            "work runs on the background runtime and comes back"
        );
    }

    #[test]
    fn without_a_background_runtime_work_runs_on_the_current_one() {
        crate::test_support::run(async {
            assert_eq!(run(async { 7 }).await, Some(7));
            assert_eq!(spawn_blocking(|| 8).await.unwrap(), 8);
            assert_eq!(spawn(async { 9 }).await.unwrap(), 9);
        });
    }
}
