//! Handshake slots: how many TLS handshakes a listener runs at once, in all
//! and per source address.
//!
//! A socket that has not sent its ClientHello yet has cost its owner nothing
//! but a TCP connect, so it never keeps a newer connection out: when a
//! source (or the whole listener) is at its cap, the oldest of its
//! handshakes still waiting for a ClientHello is cut to make room. Only
//! handshakes past their ClientHello hold a slot until their deadline, and at
//! most `per_source` of them per address.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

/// One handshake in flight.
struct Pending {
    source: IpAddr,
    /// The ClientHello has arrived: the slot is held until the deadline.
    hello: bool,
    cut: CancellationToken,
}

#[derive(Default)]
struct Table {
    next: u64,
    /// By admission order, so the first match is the oldest.
    pending: BTreeMap<u64, Pending>,
}

/// The handshake slots of one listener.
#[derive(Clone)]
pub struct Slots {
    table: Arc<Mutex<Table>>,
    max: usize,
    per_source: usize,
}

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This address already has `per_source` handshakes past their ClientHello.
    Source,
    /// The listener has `max` handshakes past their ClientHello.
    Listener,
}

/// A held slot: released on drop; `cut` fires if a newer connection takes it.
pub struct Slot {
    id: u64,
    slots: Slots,
    pub cut: CancellationToken,
}

impl Slots {
    pub fn new(max: usize, per_source: usize) -> Self {
        Self {
            table: Arc::new(Mutex::new(Table::default())),
            max: max.max(1),
            per_source: per_source.max(1),
        }
    }

    /// A slot for a new connection from `source`, cutting an idle one if
    /// needed; refused only when every slot in the way is past its ClientHello.
    pub fn admit(&self, source: IpAddr) -> Result<Slot, Refused> {
        let mut table = self.lock();
        let from_source = table
            .pending
            .values()
            .filter(|p| p.source == source)
            .count();
        if from_source >= self.per_source {
            table
                .cut_oldest_idle(|p| p.source == source)
                .ok_or(Refused::Source)?;
        }
        if table.pending.len() >= self.max {
            table.cut_oldest_idle(|_| true).ok_or(Refused::Listener)?;
        }
        let id = table.next;
        table.next += 1;
        let cut = CancellationToken::new();
        table.pending.insert(
            id,
            Pending {
                source,
                hello: false,
                cut: cut.clone(),
            },
        );
        Ok(Slot {
            id,
            slots: self.clone(),
            cut,
        })
    }

    /// Handshakes in flight.
    pub fn in_flight(&self) -> usize {
        self.lock().pending.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Table {
    fn cut_oldest_idle(&mut self, matches: impl Fn(&Pending) -> bool) -> Option<()> {
        let id = self
            .pending
            .iter()
            .find(|(_, p)| !p.hello && matches(p))
            .map(|(id, _)| *id)?;
        if let Some(p) = self.pending.remove(&id) {
            p.cut.cancel();
        }
        Some(())
    }
}

impl Slot {
    /// The ClientHello arrived: this slot is no longer cut for newcomers.
    pub fn hello_received(&self) {
        if let Some(p) = self.slots.lock().pending.get_mut(&self.id) {
            p.hello = true;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().pending.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn idle_sockets_make_room_and_started_handshakes_are_capped() {
        let slots = Slots::new(4, 2);
        let a1 = slots.admit(A).unwrap();
        let a2 = slots.admit(A).unwrap();
        // A third from A cuts A's oldest idle socket, not B's.
        let a3 = slots.admit(A).unwrap();
        assert!(a1.cut.is_cancelled() && !a2.cut.is_cancelled());
        drop(a1);
        a2.hello_received();
        a3.hello_received();
        // A's two slots are past their ClientHello: a fourth from A is refused.
        assert_eq!(slots.admit(A).err(), Some(Refused::Source));
        let b1 = slots.admit(B).unwrap();
        let b2 = slots.admit(B).unwrap();
        assert_eq!(slots.in_flight(), 4);
        // The listener is full: B's newcomer cuts B's oldest idle one.
        let b3 = slots.admit(B).unwrap();
        assert!(b1.cut.is_cancelled() && !b2.cut.is_cancelled());
        drop(b1);
        b2.hello_received();
        b3.hello_received();
        let c = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(slots.admit(c).err(), Some(Refused::Listener));
        drop(a2);
        assert!(
            slots.admit(c).is_ok(),
            "a finished handshake frees its slot"
        );
    }
}
