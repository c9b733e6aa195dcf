//! Scheduling priority of background threads. Work that can wait (the processors, the
//! index writer and the indexing and merge threads tantivy starts from it) runs at a
//! higher niceness than the threads that answer requests, so when the cores are short it
//! is the backlog that grows, within its bound, and not every request's latency: at
//! 10,000 simulated users on two cores a store's group commit passes through a few
//! threads, each of which waited its turn among ~17 runnable ones (BENCHMARKS.md).
//!
//! Only ever lowers a thread's priority, which needs no privilege. Threads a thread
//! starts inherit its niceness.

/// Lowers the calling thread's priority to niceness `nice` (0-19; 0 leaves it as is).
/// A thread already at least that nice stays; a refusal is logged and ignored: the
/// thread then runs at the priority it had.
pub fn lower_this_thread(nice: i32) {
    let nice = nice.clamp(0, 19);
    if nice == 0 {
        return;
    }
    lower(nice);
}

#[cfg(target_os = "linux")]
fn lower(nice: i32) {
    // SAFETY: gettid takes nothing; getpriority and setpriority take a thread id of this
    // process (Linux applies PRIO_PROCESS to the one thread) and plain integers.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        // getpriority returns -1 both as a niceness and as an error; either way the
        // thread is not nicer than asked.
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if now >= nice {
            return;
        }
        if libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0 {
            tracing::debug!(
                nice,
                error = %std::io::Error::last_os_error(),
                "could not lower a background thread's priority; it runs at its own"
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lower(_nice: i32) {
    // Elsewhere niceness is per process: background threads keep the requests' priority.
}

/// The calling thread's niceness (Linux; 0 elsewhere).
pub fn this_thread_nice() -> i32 {
    #[cfg(target_os = "linux")]
    // SAFETY: as in `lower`.
    unsafe {
        libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t)
    }
    #[cfg(not(target_os = "linux"))]
    0
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_lowered_and_the_threads_it_starts_inherit_it() {
        let before = this_thread_nice();
        let want = (before.max(0) + 3).min(19);
        let (mine, child) = std::thread::spawn(move || {
            lower_this_thread(want);
            let mine = this_thread_nice();
            let child = std::thread::spawn(this_thread_nice).join().expect("child");
            // Asking for less than it has never raises it back.
            lower_this_thread(1);
            assert_eq!(this_thread_nice(), mine);
            (mine, child)
        })
        .join()
        .expect("thread");
        assert_eq!(mine, want);
        assert_eq!(child, want, "a thread started by a lowered one inherits it");
        assert_eq!(
            this_thread_nice(),
            before,
            "only the one thread was lowered, not the process"
        );
    }

    #[test]
    fn zero_leaves_the_thread_alone() {
        std::thread::spawn(|| {
            let start = this_thread_nice();
            lower_this_thread(0);
            assert_eq!(this_thread_nice(), start);
        })
        .join()
        .expect("thread");
    }
}
