//! The decoder of the common records (bpf/common.h): chunks of a read or
//! write call, reassembled into the call (`chunks`) and stamped with wall
//! time, and connection ends. Modules whose BPF objects send only these use
//! it as it is; a module with records of its own wraps it.

use std::time::Duration;

use super::chunks::{Call as RawCall, Reassembler};
use super::{DecodeStats, Decoder, Limits};
use crate::capture::abi::{c, secret_rec};
use crate::capture::record::{Body, Record};
use crate::event::{Call, Comm, Direction, Item, Meta, Role, Secret, SecretLabel};
use crate::time::WallClock;

/// A call whose remaining chunks have not come for this long is emitted
/// with the rest marked missing. Chunks of one call are sent back to back,
/// so only a loss makes this fire.
const PARTIAL_MAX_AGE: Duration = Duration::from_secs(1);
/// Bound on calls being reassembled at once.
const MAX_PARTIALS: usize = 1024;

pub struct CallDecoder {
    reasm: Reassembler,
    clock: WallClock,
    limits: Limits,
    unknown: u64,
    calls: Vec<RawCall>,
    /// `Decoder::keys_missing_why`.
    keys_missing_why: &'static str,
}

impl CallDecoder {
    pub fn new(clock: WallClock, limits: Limits) -> CallDecoder {
        let budget = limits.budget.max(limits.capture_cap as usize);
        CallDecoder {
            reasm: Reassembler::new(MAX_PARTIALS, budget),
            clock,
            limits,
            unknown: 0,
            calls: Vec::new(),
            keys_missing_why: super::NO_SECRETS,
        }
    }

    /// The decoder, saying `why` its connections have no keys when none came.
    pub fn keys_missing_why(mut self, why: &'static str) -> CallDecoder {
        self.keys_missing_why = why;
        self
    }

    fn hand_out(&mut self, out: &mut Vec<Item>) {
        for raw in self.calls.drain(..) {
            out.push(Item::Call(call_of(raw, &self.clock)));
        }
    }
}

impl Decoder for CallDecoder {
    fn push(&mut self, rec: Record, now_ns: u64, out: &mut Vec<Item>) {
        match rec.body {
            // No call is longer than the cap the BPF side was given: a
            // record that says otherwise is not reassembled (or allocated for).
            Body::Chunk(hdr, _) if hdr.captured_len > self.limits.capture_cap => {
                self.unknown += 1;
                log::debug!("chunk record of a {}-byte call, over the {}-byte cap", hdr.captured_len, self.limits.capture_cap);
            }
            Body::Chunk(hdr, data) => {
                self.reasm.push(hdr, data, now_ns, &mut self.calls);
                self.hand_out(out);
            }
            Body::Close { conn, pid, .. } => out.push(Item::Close { pid, conn }),
            Body::Other { kind, bytes } if kind as u64 == c::REC_SECRET => match secret_of(&bytes) {
                Some(s) => out.push(Item::Secret(s)),
                None => {
                    self.unknown += 1;
                    log::debug!("secret record out of bounds from object {}", rec.source);
                }
            },
            Body::Other { kind, .. } => {
                self.unknown += 1;
                log::debug!("record of unknown kind {kind} from object {}", rec.source);
            }
        }
    }

    fn tick(&mut self, now_ns: u64, out: &mut Vec<Item>) {
        self.reasm.expire(now_ns, PARTIAL_MAX_AGE.as_nanos() as u64, &mut self.calls);
        self.hand_out(out);
    }

    fn waiting(&self) -> bool {
        !self.reasm.is_empty()
    }

    fn finish(&mut self, out: &mut Vec<Item>) {
        self.reasm.flush(&mut self.calls);
        self.hand_out(out);
    }

    fn stats(&self) -> DecodeStats {
        let r = self.reasm.stats();
        DecodeStats {
            incomplete_calls: r.incomplete_calls,
            missing_bytes: r.missing_bytes,
            stray_chunks: r.stray_chunks,
            unknown_records: self.unknown,
            shed: r.shed,
        }
    }

    fn keys_missing_why(&self) -> &'static str {
        self.keys_missing_why
    }
}

/// A `struct secret_rec` as a `Secret`; None when it is short or its label
/// or length is out of bounds.
pub fn secret_of(rec: &[u8]) -> Option<Secret> {
    if rec.len() < secret_rec::SIZE {
        return None;
    }
    let label = match secret_rec::label.get(rec) as u64 {
        c::SECRET_CLIENT_RANDOM => SecretLabel::ClientRandom,
        c::SECRET_CLIENT_HANDSHAKE => SecretLabel::ClientHandshakeTraffic,
        c::SECRET_SERVER_HANDSHAKE => SecretLabel::ServerHandshakeTraffic,
        c::SECRET_CLIENT_TRAFFIC_0 => SecretLabel::ClientTraffic0,
        c::SECRET_SERVER_TRAFFIC_0 => SecretLabel::ServerTraffic0,
        c::SECRET_EXPORTER => SecretLabel::Exporter,
        c::SECRET_CLIENT_EARLY => SecretLabel::ClientEarlyTraffic,
        _ => return None,
    };
    let len = secret_rec::secret_len.get(rec) as usize;
    if !(16..=c::SECRET_MAX as usize).contains(&len) {
        return None;
    }
    let secret = secret_rec::secret.get(rec);
    Some(Secret {
        pid: secret_rec::pid.get(rec),
        conn: secret_rec::conn.get(rec),
        label,
        client_random: secret_rec::client_random.get(rec),
        secret: secret[..len].to_vec(),
    })
}

/// A reassembled call as the pipeline's `Call`.
pub fn call_of(raw: RawCall, clock: &WallClock) -> Call {
    let h = &raw.hdr;
    Call {
        meta: Meta {
            timestamp_ns: clock.to_wall(h.ts_ns),
            pid: h.pid,
            tid: h.tid,
            uid: h.uid,
            comm: Comm::from_bytes(&h.comm),
            fd: h.fd,
            direction: if h.is_write() { Direction::Write } else { Direction::Read },
            tls_version: h.tls_version,
            endpoints: h.endpoints(),
            role: h.is_server().map(|server| if server { Role::Server } else { Role::Client }),
            maybe_plain: h.maybe_plain(),
        },
        conn: h.conn,
        total_len: h.total_len,
        payload: raw.payload,
        missing: raw.missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_records_become_secrets() {
        let mut rec = vec![0u8; secret_rec::SIZE];
        crate::capture::abi::rec_hdr::kind.put(&mut rec, c::REC_SECRET as u32);
        secret_rec::pid.put(&mut rec, 42);
        secret_rec::conn.put(&mut rec, 0xc000_1234);
        secret_rec::label.put(&mut rec, c::SECRET_SERVER_TRAFFIC_0 as u32);
        secret_rec::secret_len.put(&mut rec, 48);
        secret_rec::client_random.put(&mut rec, [7; 32]);
        secret_rec::secret.put(&mut rec, [9; 64]);
        let mut d = CallDecoder::new(WallClock::with_offset(0), Limits::default());
        let mut out = Vec::new();
        d.push(Record::parse(&rec).unwrap(), 0, &mut out);
        let want = Secret { pid: 42, conn: 0xc000_1234, label: SecretLabel::ServerTraffic0, client_random: [7; 32], secret: vec![9; 48] };
        assert_eq!(out, vec![Item::Secret(want)]);
        for (field, bad) in [(secret_rec::secret_len, 65u32), (secret_rec::secret_len, 0), (secret_rec::label, 99)] {
            let mut r = rec.clone();
            field.put(&mut r, bad);
            assert_eq!(secret_of(&r), None);
        }
        assert_eq!(secret_of(&rec[..100]), None);
    }
    use crate::capture::record::tests::{chunk_record, hdr};

    #[test]
    fn chunks_become_one_call_and_closes_pass_through() {
        let mut d = CallDecoder::new(WallClock::with_offset(5), Limits::default());
        let mut out = Vec::new();
        let payload: Vec<u8> = (0..40u8).collect();
        let (a, b) = payload.split_at(30);
        for (off, part) in [(0u32, a), (30, b)] {
            let rec = Record::parse(&chunk_record(0, &hdr(9, 40, off, part.len() as u32), part)).unwrap();
            d.push(rec, 0, &mut out);
        }
        let mut close = vec![0u8; crate::capture::abi::close_rec::SIZE];
        crate::capture::abi::rec_hdr::kind.put(&mut close, crate::capture::abi::c::REC_CLOSE as u32);
        crate::capture::abi::close_rec::conn.put(&mut close, 0x5555_0000_1000);
        crate::capture::abi::close_rec::pid.put(&mut close, 100);
        d.push(Record::parse(&close).unwrap(), 0, &mut out);
        assert_eq!(out.len(), 2);
        let Item::Call(c) = &out[0] else { panic!("a call first") };
        assert_eq!(c.payload, payload);
        assert_eq!((c.meta.pid, c.meta.comm.as_str(), c.meta.direction, c.meta.timestamp_ns), (100, "curl", Direction::Write, 1_005));
        assert_eq!(out[1], Item::Close { pid: 100, conn: 0x5555_0000_1000 });
        assert_eq!(d.stats(), DecodeStats::default());
    }
}
