//! Where OpenSSL keeps a connection's TLS secrets, per release line, and how
//! the key log lines are made from them.
//!
//! The offsets come from `keylog_offsets.txt`, which tests/keylog/offsets.sh
//! generates by compiling `offsetof` programs against each release's own
//! ssl/ssl_local.h. The BPF side (bpf/openssl.bpf.c, `emit_keys`) copies the
//! secrets once a handshake is done (`struct tls_keys_rec`); this file turns
//! them into NSS key log lines. OpenSSL stores TLS 1.3's application traffic
//! and exporter secrets as they are, but of the handshake traffic secrets
//! only the handshake secret and the transcript hash they were derived with:
//! those two are derived here with HKDF-Expand-Label (RFC 8446 §7.1), as
//! OpenSSL's tls13_change_cipher_state does.

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};

use super::version::{Flavor, SslVersion};
use crate::capture::abi::{abi_struct, c};
use crate::event::{Item, Secret, SecretLabel};

abi_struct!(
    /// `struct key_offsets` of bpf/abi.h.
    key_offsets(56) {
        valid: u32 = 0,
        flags: u32 = 4,
        ssl_s3: u32 = 8,
        client_random: u32 = 12,
        ssl_session: u32 = 16,
        sess_master_key_len: u32 = 20,
        sess_master_key: u32 = 24,
        sess_cipher: u32 = 28,
        cipher_id: u32 = 32,
        handshake_secret: u32 = 36,
        handshake_traffic_hash: u32 = 40,
        client_app_secret: u32 = 44,
        server_app_secret: u32 = 48,
        exporter_secret: u32 = 52,
    }
);

abi_struct!(
    /// `struct tls_keys_rec` of bpf/abi.h.
    tls_keys_rec(448) {
        h: [u8; 16] = 0,
        conn: u64 = 16,
        pid: u32 = 24,
        tid: u32 = 28,
        version: u32 = 32,
        cipher_id: u32 = 36,
        master_key_len: u32 = 40,
        lib_idx: u32 = 44,
        client_random: [u8; 32] = 48,
        master_key: [u8; 48] = 80,
        handshake_secret: [u8; 64] = 128,
        handshake_traffic_hash: [u8; 64] = 192,
        client_app_secret: [u8; 64] = 256,
        server_app_secret: [u8; 64] = 320,
        exporter_secret: [u8; 64] = 384,
    }
);

/// The table tests/keylog/offsets.sh writes.
const TABLE: &str = include_str!("keylog_offsets.txt");

/// One row of the table: a release and where it keeps what we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLayout {
    /// The release the row was compiled from, e.g. (3, 0, 8).
    pub release: (u32, u32, u32),
    pub ssl_version: u32,
    pub ssl_rbio: u32,
    pub ssl_wbio: u32,
    pub ssl_server: u32,
    /// 1.1.1: the SSL3_STATE pointer in the SSL (client_random is in it).
    pub ssl_s3: Option<u32>,
    pub client_random: u32,
    pub ssl_session: u32,
    pub sess_master_key_len: u32,
    pub sess_master_key: u32,
    pub sess_cipher: u32,
    pub cipher_id: u32,
    pub handshake_secret: u32,
    pub handshake_traffic_hash: u32,
    pub client_app_secret: u32,
    pub server_app_secret: u32,
    pub exporter_secret: u32,
}

impl KeyLayout {
    /// The rows of the table; a malformed row is a build-time mistake the
    /// unit tests catch, skipped here.
    pub fn table() -> Vec<KeyLayout> {
        TABLE.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(KeyLayout::parse_row).collect()
    }

    fn parse_row(line: &str) -> Option<KeyLayout> {
        let mut it = line.split_whitespace();
        let v = SslVersion::parse(it.next()?)?;
        let n: Vec<u32> = it.map(|x| x.parse().ok()).collect::<Option<_>>()?;
        if n.len() != 18 || n[17] != c::SECRET_MAX as u32 {
            return None;
        }
        Some(KeyLayout {
            release: (v.major, v.minor, v.patch),
            ssl_version: n[0],
            ssl_rbio: n[1],
            ssl_wbio: n[2],
            ssl_server: n[3],
            ssl_s3: (n[5] == 1).then_some(n[4]),
            client_random: n[6],
            ssl_session: n[7],
            sess_master_key_len: n[8],
            sess_master_key: n[9],
            sess_cipher: n[10],
            cipher_id: n[11],
            handshake_secret: n[12],
            handshake_traffic_hash: n[13],
            client_app_secret: n[14],
            server_app_secret: n[15],
            exporter_secret: n[16],
        })
    }

    /// Every offset moved by `d` bytes (the SSL grew before all of them).
    fn shifted(mut self, d: u32) -> KeyLayout {
        for f in [
            &mut self.ssl_version,
            &mut self.ssl_rbio,
            &mut self.ssl_wbio,
            &mut self.ssl_server,
            &mut self.client_random,
            &mut self.ssl_session,
            &mut self.handshake_secret,
            &mut self.handshake_traffic_hash,
            &mut self.client_app_secret,
            &mut self.server_app_secret,
            &mut self.exporter_secret,
        ] {
            *f += d;
        }
        self
    }

    /// `struct key_offsets` for this layout (all zero, valid 0, for None).
    pub fn to_bytes(layout: Option<&KeyLayout>) -> Vec<u8> {
        let mut b = vec![0u8; key_offsets::SIZE];
        let Some(l) = layout else { return b };
        key_offsets::valid.put(&mut b, 1);
        if let Some(s3) = l.ssl_s3 {
            key_offsets::flags.put(&mut b, c::KEY_F_S3_PTR as u32);
            key_offsets::ssl_s3.put(&mut b, s3);
        }
        key_offsets::client_random.put(&mut b, l.client_random);
        key_offsets::ssl_session.put(&mut b, l.ssl_session);
        key_offsets::sess_master_key_len.put(&mut b, l.sess_master_key_len);
        key_offsets::sess_master_key.put(&mut b, l.sess_master_key);
        key_offsets::sess_cipher.put(&mut b, l.sess_cipher);
        key_offsets::cipher_id.put(&mut b, l.cipher_id);
        key_offsets::handshake_secret.put(&mut b, l.handshake_secret);
        key_offsets::handshake_traffic_hash.put(&mut b, l.handshake_traffic_hash);
        key_offsets::client_app_secret.put(&mut b, l.client_app_secret);
        key_offsets::server_app_secret.put(&mut b, l.server_app_secret);
        key_offsets::exporter_secret.put(&mut b, l.exporter_secret);
        b
    }
}

/// Where the BPF side reads a library's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// OpenSSL: from where it stores them, once the handshake is done.
    Stored(KeyLayout),
    /// BoringSSL: at `bssl::ssl_log_secret`, as they are made; the client
    /// random is `ssl->s3->client_random` (offsets of the `s3` pointer in
    /// the SSL and of client_random in SSL3_STATE).
    LogSecret { ssl_s3: u32, client_random: u32 },
}

/// BoringSSL's `bssl::ssl_log_secret`, every mangled form: `(const SSL *,
/// const char *label, Span<const uint8_t> secret)` in boring-sys 4.22 and
/// 5.1, `(const SSLImpl *, ...)` with the Span's extent in its type in 5.4
/// (`..._ZN4bssl14ssl_log_secretEPKNS_7SSLImplEPKcNS_4SpanIKhLm18446744073709551615EEE`).
/// The Span (pointer, length) is trivially copyable: passed in two
/// registers, so the arguments are rdi, rsi, rdx, rcx in all of them.
pub const BORINGSSL_LOG_SECRET_PREFIX: &str = "_ZN4bssl14ssl_log_secretE";

/// Where BoringSSL keeps the client random: `SSL.s3` (the `SSL3_STATE *`)
/// and `SSL3_STATE.client_random`, as tests/boringssl/offsets.cc computes
/// them from BoringSSL's ssl/internal.h: the same in boring-sys 4.22.0,
/// 5.1.0 and 5.4.0 (tests/boringssl.rs compares).
pub const BORINGSSL_SSL_S3: u32 = 0x30;
pub const BORINGSSL_S3_CLIENT_RANDOM: u32 = 0x30;

impl KeySource {
    /// `struct key_offsets` for this source (all zero, valid 0, for None).
    pub fn to_bytes(src: Option<&KeySource>) -> Vec<u8> {
        match src {
            None => KeyLayout::to_bytes(None),
            Some(KeySource::Stored(l)) => KeyLayout::to_bytes(Some(l)),
            Some(KeySource::LogSecret { ssl_s3, client_random }) => {
                let mut b = vec![0u8; key_offsets::SIZE];
                key_offsets::valid.put(&mut b, 1);
                key_offsets::flags.put(&mut b, (c::KEY_F_S3_PTR | c::KEY_F_LOG_SECRET) as u32);
                key_offsets::ssl_s3.put(&mut b, *ssl_s3);
                key_offsets::client_random.put(&mut b, *client_random);
                b
            }
        }
    }
}

/// The layout of a library version, and which rows it came from; None when
/// no row serves it (the caller warns: no keys rather than wrong ones).
///
/// A row serves the releases of its line that share its layout:
/// - 1.1.1 (every letter release): the 1.1.1w row;
/// - 3.0.x: the 3.0.8 row (3.0.0 compiles to the same);
/// - 3.1.x: the 3.1.4 row;
/// - 3.2.0-3.2.3, 3.3.0-3.3.2, 3.4.0: their line's row (3.2.1, 3.3.2, 3.4.0);
/// - 3.2.4+, 3.3.3+: their line's row moved by what moved between 3.4.0 and
///   3.4.1 (the same change, made in the three lines at once; the table
///   shows it moves every offset alike, and Appendix A's `version` with them);
/// - 3.4.1+, 3.5.x, 3.6.x, 4.0.x: the 3.4.1, 3.5.5, 3.6.3, 4.0.3 rows.
pub fn layout_for(v: &SslVersion) -> Option<(KeyLayout, String)> {
    if v.flavor != Flavor::OpenSsl {
        return None;
    }
    let table = KeyLayout::table();
    let row = |r: (u32, u32, u32)| table.iter().find(|l| l.release == r).copied();
    let name = |r: (u32, u32, u32)| format!("{}.{}.{}", r.0, r.1, r.2);
    let plain = |r: (u32, u32, u32)| row(r).map(|l| (l, format!("offsets of {}", name(r))));
    match (v.major, v.minor, v.patch) {
        (1, 1, 1) => row((1, 1, 1)).map(|l| (l, "offsets of 1.1.1w".to_string())),
        (3, 0, _) => plain((3, 0, 8)),
        (3, 1, _) => plain((3, 1, 4)),
        (3, 2, p) | (3, 3, p) if p <= if v.minor == 2 { 3 } else { 2 } => plain(if v.minor == 2 { (3, 2, 1) } else { (3, 3, 2) }),
        (3, 2, _) | (3, 3, _) => {
            let base = if v.minor == 2 { (3, 2, 1) } else { (3, 3, 2) };
            let (old, new) = (row((3, 4, 0))?, row((3, 4, 1))?);
            let d = new.ssl_version.checked_sub(old.ssl_version)?;
            (old.shifted(d) == KeyLayout { release: old.release, ..new })
                .then(|| row(base).map(|l| (l.shifted(d), format!("offsets of {} moved by {d} as 3.4.0 to 3.4.1", name(base)))))
                .flatten()
        }
        (3, 4, 0) => plain((3, 4, 0)),
        (3, 4, _) => plain((3, 4, 1)),
        (3, 5, _) => plain((3, 5, 5)),
        (3, 6, _) => plain((3, 6, 3)),
        (4, 0, _) => plain((4, 0, 3)),
        _ => None,
    }
}

/// The NSS key log secrets of one `struct tls_keys_rec`, or why there are
/// none.
pub fn secrets_of(rec: &[u8]) -> Result<Vec<Secret>, &'static str> {
    use tls_keys_rec as r;
    if rec.len() < r::SIZE {
        return Err("short record");
    }
    let (pid, conn, client_random) = (r::pid.get(rec), r::conn.get(rec), r::client_random.get(rec));
    let secret = |label, secret: &[u8]| Secret { pid, conn, label, client_random, secret: secret.to_vec() };
    if client_random == [0; 32] {
        return Err("no client random");
    }
    match r::version.get(rec) {
        0x0304 => {
            // SSL_CIPHER.id of the TLS 1.3 suites: 0x0300 | the IANA number.
            let hash_len = match r::cipher_id.get(rec) {
                0x0300_1302 => 48, // TLS_AES_256_GCM_SHA384
                0x0300_1301 | 0x0300_1303 | 0x0300_1304 | 0x0300_1305 => 32,
                _ => return Err("TLS 1.3 cipher suite unknown"),
            };
            let hs = &r::handshake_secret.get(rec)[..hash_len];
            let hash = &r::handshake_traffic_hash.get(rec)[..hash_len];
            let cats = r::client_app_secret.get(rec);
            let sats = r::server_app_secret.get(rec);
            let exp = r::exporter_secret.get(rec);
            let (cats, sats, exp) = (&cats[..hash_len], &sats[..hash_len], &exp[..hash_len]);
            if [hs, hash, cats, sats, exp].iter().any(|s| s.iter().all(|&b| b == 0)) {
                return Err("TLS 1.3 secrets not all set when the handshake ended");
            }
            let derive = |label: &[u8]| expand_label(hs, label, hash).ok_or("HKDF failed");
            Ok(vec![
                secret(SecretLabel::ClientHandshakeTraffic, &derive(b"c hs traffic")?),
                secret(SecretLabel::ServerHandshakeTraffic, &derive(b"s hs traffic")?),
                secret(SecretLabel::ClientTraffic0, cats),
                secret(SecretLabel::ServerTraffic0, sats),
                secret(SecretLabel::Exporter, exp),
            ])
        }
        0x0300..=0x0303 | 0xfeff | 0xfefd | 0x0100 => {
            let mk = r::master_key.get(rec);
            if r::master_key_len.get(rec) as u64 != c::MASTER_KEY_LEN || mk.iter().all(|&b| b == 0) {
                return Err("no master secret when the handshake ended");
            }
            Ok(vec![secret(SecretLabel::ClientRandom, &mk)])
        }
        0 => Err("TLS version unknown"),
        _ => Err("TLS version not supported"),
    }
}

/// HKDF-Expand-Label(secret, label, context, Hash.length) of RFC 8446 §7.1,
/// with the hash of the secret's length (SHA-256 or SHA-384): one HMAC
/// block, as the output is one hash long.
pub fn expand_label(secret: &[u8], label: &[u8], context: &[u8]) -> Option<Vec<u8>> {
    let len = secret.len();
    let mut info = Vec::with_capacity(4 + 6 + label.len() + context.len() + 1);
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    info.push(1);
    // HMAC takes keys of any length: new_from_slice does not fail.
    fn block<M: Mac + hmac::digest::KeyInit>(key: &[u8], info: &[u8]) -> Option<Vec<u8>> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
        m.update(info);
        Some(m.finalize().into_bytes().to_vec())
    }
    if len == 48 {
        block::<Hmac<Sha384>>(secret, &info)
    } else {
        block::<Hmac<Sha256>>(secret, &info)
    }
}

/// Key records into items: the secrets, or why there are none.
pub fn push_keys(rec: &[u8], out: &mut Vec<Item>) {
    match secrets_of(rec) {
        Ok(secrets) => out.extend(secrets.into_iter().map(Item::Secret)),
        Err(why) => {
            let (pid, conn) = if rec.len() >= tls_keys_rec::SIZE {
                (tls_keys_rec::pid.get(rec), tls_keys_rec::conn.get(rec))
            } else {
                (0, 0)
            };
            out.push(Item::SecretUnusable { pid, conn, why });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn hkdf_expand_label_matches_an_independent_implementation() {
        // Python's hmac module: HMAC(secret, len16 || len8 "tls13 " label || len8 context || 0x01).
        let s: Vec<u8> = (0..32).collect();
        let h: Vec<u8> = (100..132).collect();
        assert_eq!(
            hex(&expand_label(&s, b"c hs traffic", &h).unwrap()),
            "0146ee683fccded1bcf8f35a3f8a5535c5a0c110ac2596c1a38e8cb662c78bec"
        );
        let s: Vec<u8> = (0..48).collect();
        let h: Vec<u8> = (100..148).collect();
        assert_eq!(
            hex(&expand_label(&s, b"s hs traffic", &h).unwrap()),
            "92b049cf278d40c7a70df81159f51612ba33f7e048bdba617db9216ae3ee3dd2dd87dac10836a508020a7d43652e4ac2"
        );
    }

    fn record(version: u32, cipher: u32) -> Vec<u8> {
        use tls_keys_rec as r;
        let mut b = vec![0u8; r::SIZE];
        r::pid.put(&mut b, 7);
        r::conn.put(&mut b, 0x1000);
        r::version.put(&mut b, version);
        r::cipher_id.put(&mut b, cipher);
        r::master_key_len.put(&mut b, 48);
        r::client_random.put(&mut b, [1; 32]);
        r::master_key.put(&mut b, [2; 48]);
        r::handshake_secret.put(&mut b, [3; 64]);
        r::handshake_traffic_hash.put(&mut b, [4; 64]);
        r::client_app_secret.put(&mut b, [5; 64]);
        r::server_app_secret.put(&mut b, [6; 64]);
        r::exporter_secret.put(&mut b, [7; 64]);
        b
    }

    #[test]
    fn secrets_of_tls12_and_tls13_records() {
        let s = secrets_of(&record(0x0303, 0x0300_c02f)).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].label, s[0].pid, s[0].conn, s[0].secret.clone()), (SecretLabel::ClientRandom, 7, 0x1000, vec![2; 48]));
        let s = secrets_of(&record(0x0304, 0x0300_1301)).unwrap();
        let labels: Vec<&str> = s.iter().map(|x| x.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0",
                "SERVER_TRAFFIC_SECRET_0",
                "EXPORTER_SECRET"
            ]
        );
        assert!(s.iter().all(|x| x.secret.len() == 32 && x.client_random == [1; 32]));
        assert_eq!(s[0].secret, expand_label(&[3; 32], b"c hs traffic", &[4; 32]).unwrap());
        assert_eq!(s[2].secret, vec![5; 32]);
        let s = secrets_of(&record(0x0304, 0x0300_1302)).unwrap();
        assert!(s.iter().all(|x| x.secret.len() == 48), "SHA-384 suite: 48-byte secrets");
    }

    #[test]
    fn unusable_records_say_why() {
        assert_eq!(secrets_of(&record(0x0304, 0x0300_ffff)).unwrap_err(), "TLS 1.3 cipher suite unknown");
        assert_eq!(secrets_of(&record(0, 0)).unwrap_err(), "TLS version unknown");
        assert_eq!(secrets_of(&record(0x0304, 0)).unwrap_err(), "TLS 1.3 cipher suite unknown");
        let mut r = record(0x0304, 0x0300_1301);
        tls_keys_rec::client_app_secret.put(&mut r, [0; 64]);
        assert!(secrets_of(&r).unwrap_err().contains("not all set"));
        let mut r = record(0x0303, 0);
        tls_keys_rec::master_key_len.put(&mut r, 0);
        assert!(secrets_of(&r).unwrap_err().contains("no master secret"));
        let mut r = record(0x0303, 0);
        tls_keys_rec::client_random.put(&mut r, [0; 32]);
        assert_eq!(secrets_of(&r).unwrap_err(), "no client random");
        assert_eq!(secrets_of(&r[..100]).unwrap_err(), "short record");
        let mut out = Vec::new();
        push_keys(&record(0, 0), &mut out);
        assert_eq!(out, vec![Item::SecretUnusable { pid: 7, conn: 0x1000, why: "TLS version unknown" }]);
    }

    #[test]
    fn the_table_parses_and_agrees_with_the_plaintext_offsets() {
        let rows = KeyLayout::table();
        let data_rows = TABLE.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
        assert_eq!(rows.len(), data_rows, "every row of keylog_offsets.txt parses");
        for l in &rows {
            let v = SslVersion::parse(&format!("{}.{}.{}", l.release.0, l.release.1, l.release.2)).unwrap();
            let (o, _) = v.offsets();
            let at = format!("{:?}", l.release);
            assert_eq!((o.ssl_version, o.ssl_rbio, o.ssl_wbio, o.ssl_server), (l.ssl_version, l.ssl_rbio, l.ssl_wbio, l.ssl_server), "{at}");
            assert_eq!(l.ssl_s3.is_some(), l.release.0 == 1, "{at}: SSL3_STATE behind a pointer in 1.1.1 only");
        }
    }

    #[test]
    fn which_versions_get_keys() {
        let got = |s: &str| layout_for(&SslVersion::parse(s).unwrap()).map(|(l, from)| (l.release, from));
        assert_eq!(got("3.0.19").unwrap().0, (3, 0, 8));
        assert_eq!(got("1.1.1k").unwrap().0, (1, 1, 1));
        assert_eq!(got("1.1.0l"), None, "no TLS 1.3 fields and no row: no keys");
        assert_eq!(got("4.1.0"), None, "beyond the table: no keys rather than wrong ones");
        assert_eq!(layout_for(&SslVersion::BORINGSSL), None);
        if KeyLayout::table().len() >= 11 {
            assert_eq!(got("3.4.0").unwrap().0, (3, 4, 0));
            assert_eq!(got("3.4.2").unwrap().0, (3, 4, 1));
            assert_eq!(got("3.2.3").unwrap().0, (3, 2, 1));
            let (l, from) = layout_for(&SslVersion::parse("3.2.4").unwrap()).unwrap();
            assert!(from.contains("moved by 8"), "{from}");
            assert_eq!(l.ssl_version, 0x48, "Appendix A: 3.2.4 has version at 0x48");
            assert_eq!(got("4.0.0").unwrap().0, (4, 0, 3));
        }
        let b = KeyLayout::to_bytes(layout_for(&SslVersion::parse("3.0.2").unwrap()).map(|x| x.0).as_ref());
        assert_eq!((key_offsets::valid.get(&b), key_offsets::client_random.get(&b)), (1, 352));
        assert_eq!(KeyLayout::to_bytes(None), vec![0; key_offsets::SIZE]);
    }

    #[test]
    fn boringssl_reads_secrets_at_ssl_log_secret() {
        let b = KeySource::to_bytes(Some(&KeySource::LogSecret { ssl_s3: 0x30, client_random: 0x30 }));
        assert_eq!(key_offsets::valid.get(&b), 1);
        assert_eq!(key_offsets::flags.get(&b), (c::KEY_F_S3_PTR | c::KEY_F_LOG_SECRET) as u32);
        assert_eq!((key_offsets::ssl_s3.get(&b), key_offsets::client_random.get(&b)), (0x30, 0x30));
        assert_eq!(key_offsets::ssl_session.get(&b), 0, "nothing else is read");
        let l = layout_for(&SslVersion::parse("3.0.2").unwrap()).unwrap().0;
        assert_eq!(KeySource::to_bytes(Some(&KeySource::Stored(l))), KeyLayout::to_bytes(Some(&l)));
    }
}
