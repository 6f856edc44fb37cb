//! Streams read from sled at the reader's pace: a batch is read (off the
//! async workers, as background work) only when the previous one has been taken. A peer that
//! opens a stream and never reads it holds no thread and no sled iterator,
//! only this stream's small state; nothing runs for it until it reads.

use std::collections::VecDeque;

use futures::Stream;

/// One step of a walk: the state to carry on with (`None`: the walk is
/// over) and the items it produced.
pub type Step<S, T, E> = (Option<S>, Vec<Result<T, E>>);

/// A stream of the items `step` produces, one blocking batch at a time.
/// `stopped` is the item sent if a batch task dies (the walk then ends).
pub fn paced<S, T, E>(
    start: S,
    step: impl Fn(S) -> Step<S, T, E> + Clone + Send + Sync + 'static,
    stopped: fn() -> E,
) -> impl Stream<Item = Result<T, E>> + Send
where
    S: Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    futures::stream::unfold(
        (Some(start), VecDeque::new()),
        move |(mut state, mut queue)| {
            let step = step.clone();
            async move {
                loop {
                    if let Some(item) = queue.pop_front() {
                        return Some((item, (state, queue)));
                    }
                    let current = state.take()?;
                    let step = step.clone();
                    match crate::background::spawn_blocking(move || step(current)).await {
                        Ok((next, items)) => {
                            state = next;
                            queue.extend(items);
                        }
                        Err(_) => queue.push_back(Err(stopped())),
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[test]
    fn reads_a_batch_only_when_the_last_is_taken() {
        crate::test_support::run(async {
            let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counted = reads.clone();
            let stream = paced(
                0u32,
                move |n| {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let items: Vec<Result<u32, ()>> = (n..n + 3).map(Ok).collect();
                    ((n < 6).then_some(n + 3), items)
                },
                || (),
            );
            let mut stream = Box::pin(stream);
            assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 0);
            assert_eq!(stream.next().await, Some(Ok(0)));
            assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
            let rest: Vec<_> = stream.collect().await;
            assert_eq!(rest.len(), 8);
            assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 3);
        });
    }
}
