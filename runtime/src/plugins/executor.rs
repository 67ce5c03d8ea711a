//! Runs a plugin call's future to its end on the calling thread.
//!
//! Plugin calls are async so that no host call a plugin makes (a WASI clock
//! poll, a blocking read) can hold a thread past the plugin's deadline: the
//! call is a future, and a timer drops it at the deadline wherever it is
//! waiting. The future is polled on the thread that asked for the call (a
//! plugin worker, the CLI, a test); the timers behind WASI clocks and
//! deadlines run on one small shared thread, so this works the same inside
//! or outside an async runtime.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

/// The runtime whose timer thread drives WASI clocks and call deadlines.
fn timers() -> &'static tokio::runtime::Runtime {
    static TIMERS: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    TIMERS.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .thread_name("weft-plugin-timers")
            .build()
            // Only fails when the OS refuses a thread: nothing runs without one.
            .unwrap_or_else(|e| panic!("cannot start the plugin timer thread: {e}"))
    })
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it is ready, parking in between.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let _timers = timers().enter();
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn timers_fire_and_timeouts_cut_a_wait_short() {
        let started = Instant::now();
        let out = super::block_on(async {
            tokio::time::timeout(
                Duration::from_millis(20),
                tokio::time::sleep(Duration::from_secs(10)),
            )
            .await
        });
        assert!(out.is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn works_inside_an_async_runtime_too() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let v = rt.block_on(async {
            super::block_on(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                7
            })
        });
        assert_eq!(v, 7);
    }
}
