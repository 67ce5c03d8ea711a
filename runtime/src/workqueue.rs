//! The plugin workers' queue: bounded, fair across routes, and no route
//! may hold every worker.
//!
//! Each route has its own lane. Workers take from the lanes in turn (round
//! robin over the routes with work waiting), so a burst on one route does
//! not queue another route's messages behind it; and a route runs on at
//! most its *share* of the workers (all of them but one, when there are two
//! or more), so a route whose plugins are slow or hostile (each call held
//! to its deadline) leaves a worker free for every other route. Within a
//! route, messages are taken in the order they came.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

use tokio::sync::Semaphore;

/// The queue was closed: the pipeline is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

struct Lane<T> {
    jobs: VecDeque<T>,
    running: usize,
}

struct State<T> {
    lanes: HashMap<String, Lane<T>>,
    /// Routes with jobs waiting, in the order they get their next turn.
    turns: VecDeque<String>,
    queued: usize,
    closed: bool,
}

/// A bounded queue of jobs, each on a route's lane.
pub struct WorkQueue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    /// One permit per free place: senders wait on it when the queue is full.
    space: Semaphore,
    share: usize,
}

/// A job taken by a worker; its route's place is given back when this is
/// dropped (after the job has run).
pub struct Turn<'a, T> {
    queue: &'a WorkQueue<T>,
    route: String,
}

impl<T> Drop for Turn<'_, T> {
    fn drop(&mut self) {
        let mut st = self.queue.lock();
        if let Some(lane) = st.lanes.get_mut(&self.route) {
            lane.running = lane.running.saturating_sub(1);
            if lane.running == 0 && lane.jobs.is_empty() {
                st.lanes.remove(&self.route);
            }
        }
        drop(st);
        // A lane that was at its share may be taken from again.
        self.queue.ready.notify_all();
    }
}

impl<T> WorkQueue<T> {
    /// A queue holding at most `capacity` waiting jobs, for `workers`
    /// workers: a route runs on at most `workers - 1` of them (1 when
    /// there is only one worker).
    pub fn new(capacity: usize, workers: usize) -> WorkQueue<T> {
        WorkQueue {
            state: Mutex::new(State {
                lanes: HashMap::new(),
                turns: VecDeque::new(),
                queued: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            space: Semaphore::new(capacity.max(1)),
            share: workers.saturating_sub(1).max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many workers one route may occupy at once.
    pub fn share(&self) -> usize {
        self.share
    }

    /// Queues `job` on `route`'s lane, waiting while the queue is full.
    pub async fn push(&self, route: &str, job: T) -> Result<(), Closed> {
        let permit = self.space.acquire().await.map_err(|_| Closed)?;
        let mut st = self.lock();
        if st.closed {
            return Err(Closed);
        }
        permit.forget();
        // A route's name is copied only when its lane is new or was idle.
        let lane = match st.lanes.get_mut(route) {
            Some(lane) => lane,
            None => st.lanes.entry(route.to_string()).or_insert(Lane {
                jobs: VecDeque::new(),
                running: 0,
            }),
        };
        lane.jobs.push_back(job);
        if lane.jobs.len() == 1 {
            st.turns.push_back(route.to_string());
        }
        st.queued += 1;
        drop(st);
        self.ready.notify_all();
        Ok(())
    }

    /// True when a job can be queued now without waiting.
    pub fn has_room(&self) -> bool {
        self.space.available_permits() > 0
    }

    /// Jobs waiting for a worker.
    pub fn len(&self) -> usize {
        self.lock().queued
    }

    /// True when no job is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next job for a worker: from the first route, in turn order,
    /// that is under its share. Blocks until there is one; `None` once the
    /// queue is closed and empty.
    pub fn take(&self) -> Option<(T, Turn<'_, T>)> {
        let mut st = self.lock();
        loop {
            let share = self.share;
            let State { lanes, turns, .. } = &mut *st;
            let pick = turns
                .iter()
                .position(|r| lanes.get(r).is_some_and(|l| l.running < share));
            if let Some(i) = pick {
                let route = turns.remove(i).unwrap_or_default();
                // A route in `turns` always has a lane with a job.
                let Some(lane) = lanes.get_mut(&route) else {
                    continue;
                };
                let Some(job) = lane.jobs.pop_front() else {
                    continue;
                };
                lane.running += 1;
                if !lane.jobs.is_empty() {
                    // Its next job waits for every other route's turn.
                    turns.push_back(route.clone());
                }
                st.queued -= 1;
                drop(st);
                self.space.add_permits(1);
                return Some((job, Turn { queue: self, route }));
            }
            if st.closed && st.queued == 0 {
                return None;
            }
            st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Takes no more jobs; the workers finish the queued ones.
    pub fn close(&self) {
        self.lock().closed = true;
        self.space.close();
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn push(q: &WorkQueue<u32>, route: &str, job: u32) {
        crate::plugins::executor::block_on(q.push(route, job)).unwrap();
    }

    #[test]
    fn routes_take_turns_and_keep_their_order() {
        let q = WorkQueue::new(16, 8);
        for j in 0..4 {
            push(&q, "flood", j);
        }
        push(&q, "other", 100);
        push(&q, "other", 101);
        let mut got = Vec::new();
        let mut turns = Vec::new();
        for _ in 0..6 {
            let (job, turn) = q.take().unwrap();
            got.push(job);
            turns.push(turn);
        }
        assert_eq!(got, vec![0, 100, 1, 101, 2, 3]);
    }

    #[test]
    fn a_route_never_holds_every_worker() {
        let q = Arc::new(WorkQueue::new(16, 2));
        assert_eq!(q.share(), 1);
        push(&q, "slow", 1);
        push(&q, "slow", 2);
        push(&q, "fast", 3);
        let (first, _held) = q.take().unwrap();
        assert_eq!(first, 1);
        // The second worker skips the slow route (at its share) for the
        // fast one, though the slow route's job came first.
        let (second, done) = q.take().unwrap();
        assert_eq!(second, 3);
        drop(done);
        // Nothing else is runnable until the slow route's job ends.
        let q2 = q.clone();
        let waiter = std::thread::spawn(move || q2.take().map(|(j, _)| j));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        drop(_held);
        assert_eq!(waiter.join().unwrap(), Some(2));
    }

    #[test]
    fn full_queue_waits_and_close_drains() {
        let q = WorkQueue::new(2, 2);
        push(&q, "a", 1);
        push(&q, "a", 2);
        assert!(!q.has_room());
        let (_, t) = q.take().unwrap();
        drop(t);
        assert!(q.has_room());
        q.close();
        assert!(crate::plugins::executor::block_on(q.push("a", 3)).is_err());
        assert_eq!(q.take().map(|(j, _)| j), Some(2));
        assert!(q.take().is_none());
    }
}
