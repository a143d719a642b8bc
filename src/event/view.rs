//! What message assembly understood of a payload, as plain data for the
//! renderers: an HTTP/1.x head and its decoded body, or the frames of an
//! HTTP/2 batch with their decoded header fields and data.

/// A decoded header field: (name, value).
pub type Field = (Vec<u8>, Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// An HTTP/1.x message, or a part of one.
    Http1 {
        /// Bytes of the head at the start of the payload (0: no head here).
        head_len: usize,
        /// The payload starts the message (has its head).
        starts: bool,
        /// The payload ends the message.
        complete: bool,
        /// The body de-chunked and decompressed, when that was done (None:
        /// the body is shown as received).
        body: Option<Vec<u8>>,
        /// What was done to the body, or why it was not.
        notes: Vec<String>,
    },
    /// A batch of complete HTTP/2 frames.
    Http2 {
        /// The batch starts with the client connection preface.
        preface: bool,
        frames: Vec<Frame>,
    },
}

pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const PRIORITY: u8 = 2;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PUSH_PROMISE: u8 = 5;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const WINDOW_UPDATE: u8 = 8;
pub const CONTINUATION: u8 = 9;

pub const END_STREAM: u8 = 0x1;
/// SETTINGS and PING use the END_STREAM bit as ACK.
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// The name of an HTTP/2 frame type.
pub fn frame_type_name(t: u8) -> String {
    match t {
        DATA => "DATA".into(),
        HEADERS => "HEADERS".into(),
        PRIORITY => "PRIORITY".into(),
        RST_STREAM => "RST_STREAM".into(),
        SETTINGS => "SETTINGS".into(),
        PUSH_PROMISE => "PUSH_PROMISE".into(),
        PING => "PING".into(),
        GOAWAY => "GOAWAY".into(),
        WINDOW_UPDATE => "WINDOW_UPDATE".into(),
        CONTINUATION => "CONTINUATION".into(),
        t => format!("UNKNOWN(0x{t:02x})"),
    }
}

/// One HTTP/2 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub len: u32,
    pub detail: Detail,
    /// Problems worth showing next to the frame (e.g. a DATA frame that
    /// did not decompress).
    pub note: Option<String>,
}

/// What one frame says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// A complete header block (HEADERS, or PUSH_PROMISE with its promised stream).
    Headers { fields: Vec<Field>, promised: Option<u32> },
    /// Part of a header block whose CONTINUATION frames are still to come.
    HeadersContinue,
    Data { data: Vec<u8>, decompressed: bool },
    Settings(Vec<(u16, u32)>),
    WindowUpdate(u32),
    Ping([u8; 8]),
    RstStream(u32),
    GoAway { last_stream: u32, code: u32, debug: Vec<u8> },
    Priority { depends_on: u32, weight: u16, exclusive: bool },
    Other,
    /// The frame could not be decoded; the rest of the connection goes on.
    Error(String),
}
