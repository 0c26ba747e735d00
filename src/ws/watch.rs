//! The stop signal and the idle clock of a session that relays bytes, looked at after every
//! read that finds nothing.
//!
//! Polling a `oneshot` and a `Sleep` costs each its coop-budget bookkeeping and a check of
//! the waker it holds, every time: a tenth of a relayed message's instructions. Neither needs
//! polling once it holds the task's waker, since it wakes the task when it fires: a stop
//! shows in the gateway's stopping flag ([`Signal::fired`]) and a passed deadline in the
//! clock's own state ([`Sleep::is_elapsed`]), one atomic load each. So [`Watch::poll`] polls
//! them only when the waker is not the one they were given, or the clock was set again, and
//! otherwise only looks. The registering polls run outside the coop budget: a poll that the
//! budget refuses would register nothing, and the waker would be taken as given.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::task::coop::unconstrained;
use tokio::time::{Instant, Sleep, sleep};

use crate::shutdown::Signal;

/// The stop signal and the idle clock.
pub(super) struct Watch {
    /// Fires when the gateway stops.
    stop: Signal,
    /// The stop signal has fired (it must not be polled again).
    stopping: bool,
    /// Runs out every idle period (boxed: a `Sleep` must stay where it was polled).
    idle: Pin<Box<Sleep>>,
    /// The idle period.
    period: Duration,
    /// The waker the signal and the clock were polled with; none while they must be polled.
    waker: Option<Waker>,
}

/// The idle clock of a session that may fall asleep: it ticks every idle timeout, or every
/// `sleep_after` when that comes sooner. Returns the tick, and how many silent ticks make
/// the idle timeout.
pub(super) fn pace(idle_timeout: Duration, sleep_after: Option<Duration>) -> (Duration, u32) {
    let tick = sleep_after.map_or(idle_timeout, |s| s.min(idle_timeout));
    let ticks = idle_timeout.as_nanos().div_ceil(tick.as_nanos().max(1));
    (tick, u32::try_from(ticks).unwrap_or(u32::MAX))
}

/// What [`Watch::poll`] saw.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Seen {
    /// The gateway is stopping (seen once).
    Stop,
    /// An idle period ran out; the next starts now.
    Tick,
    /// Nothing has fired.
    Nothing,
}

impl Watch {
    /// Watches `stop`, and a clock that runs out every `period` (first one `period` from now).
    pub(super) fn new(stop: Signal, period: Duration) -> Self {
        Watch {
            stop,
            stopping: false,
            idle: Box::pin(sleep(period)),
            period,
            waker: None,
        }
    }

    /// The idle period.
    pub(super) fn period(&self) -> Duration {
        self.period
    }

    /// What has fired since the last look; whatever has not will wake `cx`'s task.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Seen {
        if self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            if self.stop_fired() {
                return Seen::Stop;
            }
            return match self.idle.is_elapsed() {
                true => self.tick(),
                false => Seen::Nothing,
            };
        }
        if !self.stopping
            && Pin::new(&mut unconstrained(&mut self.stop))
                .poll(cx)
                .is_ready()
        {
            self.stopping = true;
            return Seen::Stop;
        }
        if Pin::new(&mut unconstrained(self.idle.as_mut()))
            .poll(cx)
            .is_ready()
        {
            return self.tick();
        }
        self.waker = Some(cx.waker().clone());
        Seen::Nothing
    }

    /// True the first time it finds the gateway stopping, as [`poll`](Self::poll) would
    /// have said; registers nothing, for a look between polls.
    pub(super) fn stop_fired(&mut self) -> bool {
        let fired = !self.stopping && self.stop.fired();
        self.stopping |= fired;
        fired
    }

    /// True once the gateway is stopping; if it is not, the stop will wake `cx`'s task.
    pub(super) fn poll_stopping(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.stopping && Pin::new(&mut self.stop).poll(cx).is_ready() {
            self.stopping = true;
        }
        self.stopping
    }

    /// Completes when the gateway stops, or never if that was seen before: what began
    /// after the stop has bounds of its own.
    pub(super) async fn stopped(&mut self) {
        if self.stopping {
            return std::future::pending().await;
        }
        poll_fn(|cx| match self.poll_stopping(cx) {
            true => Poll::Ready(()),
            false => Poll::Pending,
        })
        .await;
    }

    /// Starts the next idle period; the clock is polled again to hold the waker.
    fn tick(&mut self) -> Seen {
        self.idle.as_mut().reset(Instant::now() + self.period);
        self.waker = None;
        Seen::Tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;

    /// Polls `watch` until it sees something, as a session waiting on a read would, and
    /// fails when nothing has woken it in 5 s. (The give-up clock is looked at first: a
    /// `timeout` would poll `watch` once more before giving up, and find what should have
    /// woken the task.)
    async fn next(watch: &mut Watch) -> Seen {
        let seen = poll_fn(|cx| match watch.poll(cx) {
            Seen::Nothing => Poll::Pending,
            seen => Poll::Ready(seen),
        });
        tokio::select! {
            biased;
            _ = tokio::time::sleep(Duration::from_secs(5)) => panic!("nothing woke the task"),
            seen = seen => seen,
        }
    }

    /// Runs `test` in a task of its own, as a session runs: the task's waker stays the same
    /// from poll to poll (a `block_on` future's need not).
    async fn in_a_task(test: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(test).await.unwrap();
    }

    const PERIOD: Duration = Duration::from_millis(30);

    #[tokio::test]
    async fn the_clock_ticks_each_period_and_wakes_the_task_that_only_looked() {
        in_a_task(async move {
            let shutdown = Shutdown::default();
            let mut watch = Watch::new(shutdown.signal(), PERIOD);
            let start = Instant::now();
            for period in 1..=3 {
                assert_eq!(next(&mut watch).await, Seen::Tick);
                assert!(start.elapsed() >= PERIOD * period, "{:?}", start.elapsed());
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_stop_wakes_a_task_that_only_looked_and_is_seen_once() {
        in_a_task(async move {
            let shutdown = Shutdown::default();
            let mut watch = Watch::new(shutdown.signal(), PERIOD * 10);
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                tokio::time::sleep(PERIOD).await;
                trigger.trigger();
            });
            // Many looks with the waker already given, as a busy session makes.
            let mut looks = 0;
            let seen = poll_fn(|cx| {
                looks += 1;
                match watch.poll(cx) {
                    Seen::Nothing if looks < 100 => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    Seen::Nothing => Poll::Pending,
                    seen => Poll::Ready(seen),
                }
            })
            .await;
            assert_eq!(seen, Seen::Stop);
            assert!(looks > 100, "{looks}");
            // After the stop, the clock still ticks and the stop is not seen again.
            assert_eq!(next(&mut watch).await, Seen::Tick);
        })
        .await;
    }

    #[tokio::test]
    async fn a_new_waker_is_registered_even_when_the_budget_is_spent() {
        in_a_task(async move {
            let shutdown = Shutdown::default();
            let mut watch = Watch::new(shutdown.signal(), Duration::from_secs(3600));
            // Spend the task's coop budget, then look for the first time.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
            for _ in 0..1000 {
                tx.send(()).unwrap();
            }
            let looked = poll_fn(|cx| {
                while let Poll::Ready(Some(())) = rx.poll_recv(cx) {}
                assert!(!tokio::task::coop::has_budget_remaining());
                Poll::Ready(watch.poll(cx))
            })
            .await;
            assert_eq!(looked, Seen::Nothing);
            // The stop comes once the task waits: only a registered signal can wake it.
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                trigger.trigger();
            });
            assert_eq!(next(&mut watch).await, Seen::Stop);
        })
        .await;
    }

    #[test]
    fn a_session_that_may_sleep_ticks_at_the_sooner_and_times_out_after_whole_ticks() {
        let (s, minute) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(pace(minute, None), (minute, 1));
        assert_eq!(pace(minute, Some(s)), (s, 60));
        // Not a whole number of ticks: the timeout is never cut short.
        assert_eq!(pace(minute, Some(7 * s)), (7 * s, 9));
        assert_eq!(pace(minute, Some(2 * minute)), (minute, 1));
    }
}
